/* SPDX-License-Identifier: MIT */
/*
 * smtp_envelope.c - the envelope commands MAIL and RCPT: the path syntax,
 * their ESMTP parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH; NOTIFY,
 * ORCPT) checked and normalised, the sender, mail, relay and rcpt hooks,
 * and the recipient list of the transaction.
 *
 * Runs on the event loop thread, like the rest of the module.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

/* ---- xtext (RFC 3461) ---- */

/* xtext_ok - RFC 3461 4: xtext is printable ASCII without '+' and '='
 * except the "+XX" hex escape. */
static bool
xtext_ok(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '+') {
			if (!isxdigit((unsigned char)s[1]) ||
			    !isxdigit((unsigned char)s[2]))
				return false;
			s += 2;
		} else if (ch < 33 || ch > 126 || ch == '=')
			return false;
	}
	return true;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* orcpt_ok - RFC 3461 4.2: ORCPT=addr-type;xtext, the addr-type an atom
 * and the xtext a non-empty address that decodes to no control byte: the
 * value goes into DSNs and to the next hop as it is. */
static bool
orcpt_ok(const char *v)
{
	const char *semi = strchr(v, ';'), *p;

	if (semi == NULL || semi == v || semi[1] == '\0' ||
	    !xtext_ok(semi + 1))
		return false;
	for (p = v; p < semi; p++)	/* RFC 5322 atext, ASCII only */
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') &&
		    strchr("!#$%&'*+-/=?^_`{|}~", *p) == NULL)
			return false;
	for (p = semi + 1; *p; p++)
		if (*p == '+') {	/* xtext_ok saw two hex digits */
			int ch = hexval(p[1]) * 16 + hexval(p[2]);

			if (ch < 0x20 || ch == 0x7f)
				return false;
			p += 2;
		}
	return true;
}

/* ---- MAIL / RCPT address parsing ---- */

/* parse_path - splits "FROM:<addr> params" (after the keyword) into the
 * address inside <> and the parameters. -1 on bad syntax. */
static int
parse_path(char *args, const char *kw, char **addr_r, char **params_r)
{
	size_t kl = strlen(kw);
	char *p, *q;
	bool quoted = false;

	if (strncasecmp(args, kw, kl) != 0)
		return -1;
	p = args + kl;
	while (*p == ' ')	/* some clients put a space after ':' */
		p++;
	if (*p != '<')
		return -1;
	p++;
	for (q = p; *q; q++) {
		if (*q == '\\' && quoted && q[1] != '\0')
			q++;
		else if (*q == '"')
			quoted = !quoted;
		else if (*q == '>' && !quoted)
			break;
	}
	if (*q != '>')
		return -1;
	*q++ = '\0';
	if (*q != '\0' && *q != ' ')
		return -1;
	while (*q == ' ')
		q++;
	*addr_r = p;
	*params_r = q;
	return 0;
}

static bool
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* strbuf_add - appends " word" to a malloc'd parameter string. */
static int
strbuf_add(char **buf, const char *word)
{
	size_t old = *buf ? strlen(*buf) : 0;
	char *n = realloc(*buf, old + strlen(word) + 2);

	if (n == NULL)
		return -1;
	if (old)
		n[old++] = ' ';
	strcpy(n + old, word);
	*buf = n;
	return 0;
}

/* param_once - refuses a parameter given twice (which of two ENVIDs or
 * ORCPTs would the next hop see?); bit is the parameter's own flag. */
static bool
param_once(struct smtp_session *ss, unsigned *seen, unsigned bit,
	   const char *name)
{
	if (*seen & bit) {
		smtp_reply(ss, 501, "5.5.4", "Duplicate %s parameter", name);
		return false;
	}
	*seen |= bit;
	return true;
}

/* ---- MAIL ---- */

static void
mail_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	if (out->result != SC_CONT && out->result != SC_OK) {
		smtp_reply_outcome(ss, out, 550, "5.7.1", "Sender rejected");
		smtp_tx_free(&ss->tx);
		return;
	}
	sc_session_set_busy(ss->s, true);
	smtp_emit(ss, SC_EVENT_MAIL, ss->tx != NULL ? ss->tx->sender : NULL,
		  NULL, NULL);
	smtp_reply(ss, 250, "2.1.0", "Ok");
}

/* sender_then - enforce_sender: a module (the router, for aliases) may
 * let the user send as an address that is not their login */
static void
sender_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	if (out->result != SC_OK) {
		smtp_reply(ss, 553, "5.7.1", "<%s>: Sender address rejected: "
			   "not owned by user %s", ss->sreq.address,
			   ss->sreq.user);
		smtp_tx_free(&ss->tx);
		return;
	}
	smtp_run_hook(ss, SC_HOOK_MAIL, &ss->mreq, mail_then);
}

/* relay_note - keeps who let a relay through, for the 250 reply:
 * the hook's own text, or its instance's name */
static void
relay_note(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	if (out->reply.text != NULL && out->reply.text[0] != '\0')
		snprintf(ss->relay_note, sizeof(ss->relay_note), "%s",
			 out->reply.text);
	else
		snprintf(ss->relay_note, sizeof(ss->relay_note),
			 "relay allowed by %s",
			 out->instance != NULL ? out->instance : "a module");
}

/* submit_then - the submit hook's verdict on an unauthenticated MAIL on a
 * submission listener */
static void
submit_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	char *args = ss->mail_args;

	ss->mail_args = NULL;
	if (out->result == SC_OK) {
		relay_note(ss, out);
		ss->relay_session_ok = true;
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: submission without "
			       "AUTH from %s: %s", sc_session_client_ip(ss->s),
			       ss->relay_note);
		smtp_cmd_mail(ss, args);
	} else if (out->result != SC_CONT) {
		smtp_reply_outcome(ss, out, 530, "5.7.0",
				   "Authentication required");
	} else {
		smtp_reply(ss, 530, "5.7.0", "Authentication required");
	}
	free(args);
}

void
smtp_cmd_mail(struct smtp_session *ss, char *args)
{
	const struct smtp_conf *conf = ss->conf;
	const char *auth = sc_session_auth_user(ss->s);
	struct sc_address a;
	const char *err = NULL;
	char *addr = NULL, *params = NULL, *word, *save = NULL, *norm = NULL;
	char abuf[400];
	unsigned seen = 0;
	bool utf8 = false;

	memset(&a, 0, sizeof(a));

	if (ss->lc->mode == MODE_SUBMISSION && auth == NULL &&
	    ss->lc->tls == TLS_STARTTLS && !sc_session_tls(ss->s)) {
		/* AUTH needs TLS here: say what to do first (Postfix's
		 * words) rather than ask for AUTH the client cannot do yet */
		smtp_reply(ss, 530, "5.7.0", "Must issue a STARTTLS command "
			   "first");
		return;
	}
	if (ss->lc->mode == MODE_SUBMISSION && auth == NULL &&
	    !ss->relay_session_ok) {
		/* a module may still let it in (pop_before_smtp with
		 * `listeners: [submission]`): the submit hook; MAIL runs
		 * again once it said OK */
		free(ss->mail_args);
		ss->mail_args = strdup(args);
		if (ss->mail_args == NULL) {
			smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
			return;
		}
		smtp_run_hook(ss, SC_HOOK_SUBMIT, NULL, submit_then);
		return;
	}
	if (parse_path(args, "FROM:", &addr, &params) != 0) {
		smtp_reply(ss, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	/* RFC 5321 4.1.1.2: accept and ignore a source route */
	if (addr[0] == '@') {
		char *colon = strchr(addr, ':');

		if (colon == NULL) {
			smtp_reply(ss, 501, "5.1.7", "Bad sender address "
				   "syntax");
			return;
		}
		addr = colon + 1;
	}
	for (word = strtok_r(params, " ", &save); word != NULL;
	     word = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(word, '=');
		const char *val = eq ? eq + 1 : NULL;
		size_t kl = eq ? (size_t)(eq - word) : strlen(word);

		if (kl == 4 && strncasecmp(word, "SIZE", 4) == 0 && val) {
			char *end = NULL;
			unsigned long long n;

			if (!param_once(ss, &seen, 0x01, "SIZE"))
				goto fail;
			errno = 0;
			n = strtoull(val, &end, 10);
			if (*val < '0' || *val > '9' || *end || errno) {
				smtp_reply(ss, 501, "5.5.4", "Bad SIZE "
					   "parameter");
				goto fail;
			}
			if (n > conf->max_message_size) {
				smtp_reply(ss, 552, "5.3.4", "Message size "
					   "exceeds fixed maximum message "
					   "size");
				goto fail;
			}
		} else if (kl == 4 && strncasecmp(word, "BODY", 4) == 0 &&
			   val) {
			if (!param_once(ss, &seen, 0x02, "BODY"))
				goto fail;
			if (strcasecmp(val, "7BIT") != 0 &&
			    strcasecmp(val, "8BITMIME") != 0) {
				smtp_reply(ss, 555, "5.5.4", "Unsupported BODY "
					   "type");
				goto fail;
			}
			snprintf(abuf, sizeof(abuf), "BODY=%s",
				 strcasecmp(val, "7BIT") == 0 ? "7BIT" :
				 "8BITMIME");
			if (strbuf_add(&norm, abuf) != 0)
				goto oom;
		} else if (kl == 8 && strncasecmp(word, "SMTPUTF8", 8) == 0 &&
			   !val) {
			if (!param_once(ss, &seen, 0x04, "SMTPUTF8"))
				goto fail;
			utf8 = true;
			if (strbuf_add(&norm, "SMTPUTF8") != 0)
				goto oom;
		} else if (kl == 3 && strncasecmp(word, "RET", 3) == 0 &&
			   val) {
			if (!param_once(ss, &seen, 0x08, "RET"))
				goto fail;
			if (strcasecmp(val, "FULL") != 0 &&
			    strcasecmp(val, "HDRS") != 0) {
				smtp_reply(ss, 501, "5.5.4", "Bad RET "
					   "parameter");
				goto fail;
			}
			snprintf(abuf, sizeof(abuf), "RET=%s",
				 strcasecmp(val, "FULL") == 0 ? "FULL" :
				 "HDRS");
			if (strbuf_add(&norm, abuf) != 0)
				goto oom;
		} else if (kl == 5 && strncasecmp(word, "ENVID", 5) == 0 &&
			   val) {
			if (!param_once(ss, &seen, 0x10, "ENVID"))
				goto fail;
			if (!xtext_ok(val) || strlen(val) > 100) {
				smtp_reply(ss, 501, "5.5.4", "Bad ENVID "
					   "parameter");
				goto fail;
			}
			snprintf(abuf, sizeof(abuf), "ENVID=%s", val);
			if (strbuf_add(&norm, abuf) != 0)
				goto oom;
		} else if (kl == 4 && strncasecmp(word, "AUTH", 4) == 0 &&
			   val) {
			/* RFC 4954 5: accepted; we trust only our own AUTH */
			if (!param_once(ss, &seen, 0x20, "AUTH"))
				goto fail;
			if (strcmp(val, "<>") != 0 && !xtext_ok(val)) {
				smtp_reply(ss, 501, "5.5.4", "Bad AUTH "
					   "parameter");
				goto fail;
			}
		} else {
			smtp_reply(ss, 555, "5.5.4", "Unsupported option: "
				   "%.60s", word);
			goto fail;
		}
	}
	if (has_8bit(addr) && !utf8) {
		smtp_reply(ss, 553, "5.6.7", "Non-ASCII address needs "
			   "SMTPUTF8");
		goto fail;
	}
	if (addr[0] == '\0') {
		abuf[0] = '\0';
	} else {
		if (sc_address_parse(addr, &a, &err) != 0) {
			smtp_reply(ss, 501, "5.1.7", "Bad sender address "
				   "syntax: %s", err != NULL ? err : "invalid");
			goto fail;
		}
		sc_address_format(&a, abuf, sizeof(abuf));
	}
	ss->tx = calloc(1, sizeof(*ss->tx));
	if (ss->tx == NULL)
		goto oom;
	ss->tx->sender = strdup(abuf);
	ss->tx->mail_params = norm ? norm : strdup("");
	norm = NULL;
	ss->tx->smtputf8 = utf8;
	if (ss->tx->sender == NULL || ss->tx->mail_params == NULL) {
		smtp_tx_free(&ss->tx);
		goto oom;
	}
	ss->mreq.address = ss->tx->sender;
	ss->mreq.params = ss->tx->mail_params;
	if (conf->enforce_sender && auth != NULL && abuf[0] != '\0' &&
	    strcasecmp(abuf, auth) != 0) {
		/* not the login itself: perhaps one of the user's aliases */
		free(ss->arg_local);
		free(ss->arg_domain);
		ss->arg_local = strdup(a.local);
		ss->arg_domain = strdup(a.domain);
		if (ss->arg_local == NULL || ss->arg_domain == NULL) {
			smtp_tx_free(&ss->tx);
			goto oom;
		}
		ss->sreq.address = ss->tx->sender;
		ss->sreq.local_part = ss->arg_local;
		ss->sreq.domain = ss->arg_domain;
		ss->sreq.user = auth;
		smtp_run_hook(ss, SC_HOOK_SENDER, &ss->sreq, sender_then);
		return;
	}
	smtp_run_hook(ss, SC_HOOK_MAIL, &ss->mreq, mail_then);
	return;
oom:
	smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
fail:
	free(norm);
}

/* ---- RCPT ---- */

static void
rcpt_accept(struct smtp_session *ss)
{
	struct smtp_tx *tx = ss->tx;
	struct smtp_rcpt *r;

	if (tx->rcpt_count == tx->rcpt_alloc) {
		size_t n = tx->rcpt_alloc ? tx->rcpt_alloc * 2 : 4;

		r = realloc(tx->rcpts, n * sizeof(*r));
		if (r == NULL) {
			smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
			return;
		}
		tx->rcpts = r;
		tx->rcpt_alloc = n;
	}
	r = &tx->rcpts[tx->rcpt_count];
	r->address = ss->arg_address;
	r->params = ss->arg_params;
	ss->arg_address = ss->arg_params = NULL;
	tx->rcpt_count++;
	smtp_emit(ss, SC_EVENT_RCPT, tx->sender, r->address, NULL);
	if (ss->rcpt_relayed)
		/* say who let it through: doctor's relay probe reads it */
		smtp_reply(ss, 250, "2.1.5", "Ok, %s", ss->relay_note);
	else
		smtp_reply(ss, 250, "2.1.5", "Ok");
	ss->rcpt_relayed = false;
}

static void
rcpt_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	if (out->result == SC_OK) {
		rcpt_accept(ss);
		return;
	}
	if (out->result != SC_CONT) {
		smtp_reply_outcome(ss, out, 550, "5.1.1", "Recipient rejected");
		return;
	}
	/* nobody claimed it: a local domain's unknown mailbox is refused
	 * (Haraka's safe default), others were allowed to relay already */
	if (ss->arg_routing == SC_ROUTING_LOCAL) {
		smtp_reply(ss, 550, "5.1.1", "<%s>: no such user here",
			   ss->arg_address);
		return;
	}
	rcpt_accept(ss);
}

static void
rcpt_run(struct smtp_session *ss)
{
	ss->rreq.address = ss->arg_address;
	ss->rreq.local_part = ss->arg_local;
	ss->rreq.domain = ss->arg_domain;
	ss->rreq.params = ss->arg_params;
	ss->rreq.mail_from = ss->tx->sender;
	ss->rreq.rcpt_count = ss->tx->rcpt_count;
	smtp_run_hook(ss, SC_HOOK_RCPT, &ss->rreq, rcpt_then);
}

static void
relay_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	if (out->result == SC_OK) {
		relay_note(ss, out);
		ss->rcpt_relayed = true;
		rcpt_run(ss);
		return;
	}
	if (out->result != SC_CONT) {
		smtp_reply_outcome(ss, out, 550, "5.7.1", "Relay access "
				   "denied");
		return;
	}
	sc_log_session(SC_LOG_INFO, ss->s, "smtp: relay to <%s> from %s "
		       "refused", ss->arg_address,
		       sc_session_client_ip(ss->s));
	smtp_reply(ss, 550, "5.7.1", "Please turn on SMTP Authentication in "
		   "your mail client. %s is not permitted to relay through "
		   "this server without authentication.",
		   sc_session_client_ip(ss->s));
}

static bool
local_domain(const char *domain)
{
	enum sc_routing r = sc_config_domain_routing(domain);

	return r == SC_ROUTING_LOCAL || r == SC_ROUTING_BACKUP ||
	       r == SC_ROUTING_AUTO;
}

void
smtp_cmd_rcpt(struct smtp_session *ss, char *args)
{
	struct smtp_tx *tx = ss->tx;
	struct sc_address a;
	const char *err = NULL;
	char *addr = NULL, *params = NULL, *word, *save = NULL, *norm = NULL;
	char abuf[400];
	unsigned seen = 0;

	memset(&a, 0, sizeof(a));
	if (tx == NULL || tx->data_started) {
		smtp_reply(ss, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (parse_path(args, "TO:", &addr, &params) != 0) {
		smtp_reply(ss, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	if (addr[0] == '\0') {
		/* <> is a sender only (RFC 5321 4.5.5) */
		smtp_reply(ss, 501, "5.1.3", "Bad recipient address syntax: "
			   "the null address <> cannot receive mail");
		return;
	}
	if (tx->rcpt_count >= ss->conf->max_recipients) {
		smtp_reply(ss, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	for (word = strtok_r(params, " ", &save); word != NULL;
	     word = strtok_r(NULL, " ", &save)) {
		if (strncasecmp(word, "NOTIFY=", 7) == 0) {
			char tmp[64], *t, *sv = NULL;
			bool never = false, other = false;

			if (!param_once(ss, &seen, 0x01, "NOTIFY"))
				goto fail;
			snprintf(tmp, sizeof(tmp), "%s", word + 7);
			for (t = strtok_r(tmp, ",", &sv); t != NULL;
			     t = strtok_r(NULL, ",", &sv)) {
				if (strcasecmp(t, "NEVER") == 0)
					never = true;
				else if (strcasecmp(t, "SUCCESS") == 0 ||
					 strcasecmp(t, "FAILURE") == 0 ||
					 strcasecmp(t, "DELAY") == 0)
					other = true;
				else {
					never = other = true;
					break;
				}
			}
			if (never == other || strlen(word + 7) >= sizeof(tmp)) {
				smtp_reply(ss, 501, "5.5.4", "Bad NOTIFY "
					   "parameter");
				goto fail;
			}
			for (char *u = word + 7; *u; u++)
				*u = (char)toupper((unsigned char)*u);
		} else if (strncasecmp(word, "ORCPT=", 6) == 0) {
			if (!param_once(ss, &seen, 0x02, "ORCPT"))
				goto fail;
			if (!orcpt_ok(word + 6) || strlen(word) > 500) {
				smtp_reply(ss, 501, "5.5.4", "Bad ORCPT "
					   "parameter");
				goto fail;
			}
		} else {
			smtp_reply(ss, 555, "5.5.4", "Unsupported option: "
				   "%.60s", word);
			goto fail;
		}
		if (strbuf_add(&norm, word) != 0)
			goto oom;
	}
	if (strcasecmp(addr, "postmaster") == 0) {
		/* RFC 5321 4.5.1: <postmaster> without a domain */
		const char *d = NULL;

		for (size_t i = 0; sc_config_domain(i) != NULL; i++)
			if (sc_config_domain_routing(sc_config_domain(i)) ==
			    SC_ROUTING_LOCAL) {
				d = sc_config_domain(i);
				break;
			}
		if (d == NULL) {
			smtp_reply(ss, 550, "5.1.1", "<postmaster>: no such "
				   "user here");
			goto fail;
		}
		snprintf(abuf, sizeof(abuf), "postmaster@%s", d);
		addr = abuf;
	}
	if (addr[0] == '@') {
		smtp_reply(ss, 550, "5.7.1", "<%s>: source routes are not "
			   "permitted", addr);
		goto fail;
	}
	if (has_8bit(addr) && !tx->smtputf8) {
		smtp_reply(ss, 553, "5.6.7", "Non-ASCII address needs "
			   "SMTPUTF8");
		goto fail;
	}
	if (sc_address_parse(addr, &a, &err) != 0) {
		smtp_reply(ss, 501, "5.1.3", "Bad recipient address syntax: %s",
			   err != NULL ? err : "invalid");
		goto fail;
	}
	if (a.domain[0] == '\0') {
		/* cannot happen for a non-empty path; never trust err here */
		smtp_reply(ss, 501, "5.1.3", "Bad recipient address syntax: "
			   "missing @domain");
		goto fail;
	}
	if (sc_address_is_routing_trick(&a)) {
		sc_log_session(SC_LOG_NOTICE, ss->s, "smtp: relay trick "
			       "<%s> from %s refused", addr,
			       sc_session_client_ip(ss->s));
		smtp_reply(ss, 550, "5.7.1", "<%s>: relaying through routing "
			   "characters in the address is not permitted", addr);
		goto fail;
	}
	free(ss->arg_address);
	free(ss->arg_local);
	free(ss->arg_domain);
	free(ss->arg_params);
	ss->arg_address = strdup(sc_address_format(&a, abuf, sizeof(abuf)));
	ss->arg_local = strdup(a.local);
	ss->arg_domain = strdup(a.domain);
	ss->arg_params = norm ? norm : strdup("");
	norm = NULL;
	if (ss->arg_address == NULL || ss->arg_local == NULL ||
	    ss->arg_domain == NULL || ss->arg_params == NULL)
		goto oom;
	ss->arg_routing = sc_config_domain_routing(a.domain);
	ss->rreq.address = ss->arg_address;
	ss->rreq.local_part = ss->arg_local;
	ss->rreq.domain = ss->arg_domain;
	ss->rreq.params = ss->arg_params;
	ss->rreq.mail_from = tx->sender;
	ss->rreq.rcpt_count = tx->rcpt_count;
	ss->rcpt_relayed = false;
	if (!local_domain(a.domain) && sc_session_auth_user(ss->s) == NULL &&
	    !sc_session_relay_allowed(ss->s)) {
		if (!ss->relay_session_ok) {
			smtp_run_hook(ss, SC_HOOK_RELAY, &ss->rreq,
				      relay_then);
			return;
		}
		ss->rcpt_relayed = true;	/* allowed at MAIL */
	}
	rcpt_run(ss);
	return;
oom:
	smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
fail:
	free(norm);
}
