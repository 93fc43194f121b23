/* SPDX-License-Identifier: MIT */
/*
 * relay_client.c - the relay's SMTP commands and what it does with each
 * reply: the greeting, EHLO (or HELO) and its keywords, the loop check on
 * the peer's name, AUTH at a smarthost, the transaction (MAIL, RCPT...,
 * DATA; pipelined when the peer offers PIPELINING) and the reply to the
 * final dot. relay_conn.c reads the replies; relay_tls.c does STARTTLS.
 * Event loop thread.
 */
#include "relay_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* param_value - the value of KEY= in an ESMTP parameter string ("" for a
 * bare keyword), copied into out; false when absent or longer than out
 * holds (a cut ORCPT or ENVID must not go to the next hop). */
static bool
param_value(const char *params, const char *key, char *out, size_t olen)
{
	size_t klen = strlen(key);
	const char *p = params;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len >= klen && strncasecmp(p, key, klen) == 0 &&
		    (len == klen || p[klen] == '=')) {
			const char *v = len == klen ? p + len : p + klen + 1;
			size_t vl = (size_t)(p + len - v);
			if (vl >= olen)
				return false;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

/* ---- the SMTP conversation ---- */

void
job_send(struct relay_job *job, uint64_t timeout_ms, const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	sc_conn_write(job->conn, buf, (size_t)n);
	sc_conn_write(job->conn, "\r\n", 2);
	sc_conn_set_timeout(job->conn, timeout_ms);
	job_deadline(job, timeout_ms);
}

/* job_reply_text - "host X said: 550 5.1.1 text" for logs and DSNs. */
static void
job_reply_text(const struct relay_job *job, char *out, size_t len,
	       const char *after)
{
	sfmt(out, len, "host %s said: %d %s%s%s (in reply to %s)",
		 job->peer, job->code, job->esc, job->esc[0] ? " " : "",
		 job->text, after);
}

static const char *
default_esc(int code)
{
	if (code >= 500)
		return "5.0.0";
	if (code >= 400)
		return "4.0.0";
	return "2.0.0";
}

void
job_ehlo_keyword(struct relay_job *job, const char *kw)
{
	char word[32];
	size_t n = 0;

	while (kw[n] != '\0' && kw[n] != ' ' && kw[n] != '=' &&
	       n < sizeof(word) - 1) {
		word[n] = (char)toupper((unsigned char)kw[n]);
		n++;
	}
	word[n] = '\0';
	const char *rest = kw + n;
	while (*rest == ' ' || *rest == '=')
		rest++;
	if (strcmp(word, "PIPELINING") == 0) {
		job->ext_pipelining = true;
	} else if (strcmp(word, "STARTTLS") == 0) {
		job->ext_starttls = true;
	} else if (strcmp(word, "8BITMIME") == 0) {
		job->ext_8bitmime = true;
	} else if (strcmp(word, "SMTPUTF8") == 0) {
		job->ext_smtputf8 = true;
	} else if (strcmp(word, "DSN") == 0) {
		job->ext_dsn = true;
	} else if (strcmp(word, "SIZE") == 0) {
		job->ext_size = true;
		job->size_limit = strtoull(rest, NULL, 10);
	} else if (strcmp(word, "AUTH") == 0) {
		char mechs[256];
		sfmt(mechs, sizeof(mechs), " %s ", rest);
		for (char *p = mechs; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		if (strstr(mechs, " PLAIN ") != NULL)
			job->ext_auth_plain = true;
		if (strstr(mechs, " LOGIN ") != NULL)
			job->ext_auth_login = true;
	}
}

/* job_is_loop - the peer calls itself by our name: we talk to ourselves. */
bool
job_is_loop(struct relay_job *job, const char *text)
{
	char name[256];
	size_t n = 0;

	while (text[n] != '\0' && text[n] != ' ' && n < sizeof(name) - 1) {
		name[n] = text[n];
		n++;
	}
	name[n] = '\0';
	return n > 0 && (strcasecmp(name, relay_hostname()) == 0 ||
			 strcasecmp(name, relay_helo(job->r)) == 0);
}

void
job_loop_detected(struct relay_job *job)
{
	job_fail_all(job, SC_DENY, 554, "5.4.6",
		     "mail for %s loops back to myself (%s greets as %s)",
		     job->domain, job->peer, relay_hostname());
	job_finish(job);
}

void
job_send_ehlo(struct relay_job *job)
{
	job->ext_pipelining = job->ext_starttls = job->ext_8bitmime = false;
	job->ext_smtputf8 = job->ext_dsn = job->ext_size = false;
	job->ext_auth_plain = job->ext_auth_login = false;
	job->size_limit = 0;
	job->ehlo_first_line = true;
	job->st = JS_EHLO;
	job_send(job, job->r->conf->timeouts.ehlo, "EHLO %s",
		 relay_helo(job->r));
}

/* job_ready - EHLO is done (after TLS when it applies): authenticate or
 * start the mail transaction. */
void
job_ready(struct relay_job *job)
{
	struct relay *r = job->r;

	if (job->use_auth && r->password != NULL && !job->authenticated) {
		if (!job->tls_active) {
			job_set_error(job, SC_DENYSOFT, 451, "4.7.10",
				      "refusing to send credentials to %s "
				      "without TLS", job->peer);
			job_host_failed(job);
			return;
		}
		char buf[600], b64[820];
		if (job->ext_auth_plain) {
			int n = snprintf(buf, sizeof(buf), "%c%s%c%s", 0,
					 r->conf->smarthost_auth.user, 0,
					 r->password);
			if (n < 0 || (size_t)n >= sizeof(buf))
				n = (int)sizeof(buf) - 1;
			/* n < 600 always fits the 820 bytes of b64 */
			(void)sc_base64_encode(buf, (size_t)n, b64,
					       sizeof(b64));
			explicit_bzero(buf, sizeof(buf));
			job->st = JS_AUTH;
			job_send(job, r->conf->timeouts.ehlo, "AUTH PLAIN %s",
				 b64);
			explicit_bzero(b64, sizeof(b64));
			return;
		}
		if (job->ext_auth_login) {
			job->st = JS_AUTH_USER;
			job_send(job, r->conf->timeouts.ehlo, "AUTH LOGIN");
			return;
		}
		job_set_error(job, SC_DENYSOFT, 451, "4.7.12",
			      "%s offers neither AUTH PLAIN nor AUTH LOGIN",
			      job->peer);
		job_host_failed(job);
		return;
	}
	/* a peer without 8BITMIME: look at the body first, whatever BODY=
	 * says, since clients send 8-bit without declaring it too */
	if (!job->ext_8bitmime && !job->scanned) {
		job->st = JS_SCAN;
		if (job->scan_running)
			return;	/* still on the pool from an earlier host */
		job->scan_running = true;
		job_ref(job);
		if (sc_work_submit_inst(r->inst, job_scan_work,
					job_scan_done, job) < 0) {
			/* not knowing is no reason to bounce: retry later */
			job_unref(job);
			job->scan_running = false;
			job_set_error(job, SC_DENYSOFT, 451, "4.3.0",
				      "cannot schedule the scan of the body "
				      "for 8-bit data");
			job_host_failed(job);
		}
		return;
	}
	job->st = JS_TRANSACTION;
	job_start_transaction(job);
}

/* job_start_transaction - MAIL, RCPT..., DATA, pipelined when offered. */
void
job_start_transaction(struct relay_job *job)
{
	struct relay *r = job->r;
	struct sc_delivery *d = job->batch->d;
	const char *mp = sc_delivery_params(d);
	char mail[1100], v[300];
	size_t n;

	if (job->has_8bit && !job->ext_8bitmime) {
		job_fail_all(job, SC_DENY, 554, "5.6.3",
			     "host %s does not accept 8-bit data (no "
			     "8BITMIME) and the message is 8-bit", job->peer);
		job_finish(job);
		return;
	}
	if (param_value(mp, "SMTPUTF8", v, sizeof(v)) && !job->ext_smtputf8) {
		job_fail_all(job, SC_DENY, 553, "5.6.7",
			     "host %s does not support SMTPUTF8, which the "
			     "message needs", job->peer);
		job_finish(job);
		return;
	}
	if (job->ext_size && job->size_limit > 0 &&
	    job->size > job->size_limit) {
		job_fail_all(job, SC_DENY, 552, "5.3.4",
			     "message size %llu exceeds the limit %llu of "
			     "host %s", (unsigned long long)job->size,
			     (unsigned long long)job->size_limit, job->peer);
		job_finish(job);
		return;
	}
	n = (size_t)snprintf(mail, sizeof(mail), "MAIL FROM:<%s>",
			     sc_delivery_sender(d));
	if (job->ext_size && n < sizeof(mail))
		n += (size_t)snprintf(mail + n, sizeof(mail) - n, " SIZE=%llu",
				      (unsigned long long)job->size);
	if (job->ext_8bitmime && param_value(mp, "BODY", v, sizeof(v)) &&
	    n < sizeof(mail))
		n += (size_t)snprintf(mail + n, sizeof(mail) - n, " BODY=%s",
				      v);
	if (job->ext_smtputf8 && param_value(mp, "SMTPUTF8", v, sizeof(v)) &&
	    n < sizeof(mail))
		n += (size_t)snprintf(mail + n, sizeof(mail) - n,
				      " SMTPUTF8");
	if (job->ext_dsn) {
		if (param_value(mp, "RET", v, sizeof(v)) && n < sizeof(mail))
			n += (size_t)snprintf(mail + n, sizeof(mail) - n,
					      " RET=%s", v);
		if (param_value(mp, "ENVID", v, sizeof(v)) &&
		    n < sizeof(mail))
			n += (size_t)snprintf(mail + n, sizeof(mail) - n,
					      " ENVID=%s", v);
	}

	job->ncmd = job->cmd_head = 0;
	job->accepted = 0;
	job->cmds[job->ncmd++] = (struct relay_cmd){ CMD_MAIL, 0 };
	job_send(job, r->conf->timeouts.mail, "%s", mail);
	for (size_t k = 0; k < job->nrcpt; k++) {
		if (job->rs[k] == RS_DONE)
			continue;
		job->cmds[job->ncmd++] = (struct relay_cmd){ CMD_RCPT, k };
		job->rs[k] = RS_SENT;
		if (!job->ext_pipelining)
			continue;	/* sent one by one in the replies */
		const char *rp = sc_delivery_rcpt_params(d, job->idx[k]);
		char extra[600] = "";
		if (job->ext_dsn && rp != NULL) {
			char nv[300], ov[512];	/* ORCPT: 500 (RFC 3461) */
			size_t e = 0;
			if (param_value(rp, "NOTIFY", nv, sizeof(nv)))
				e += (size_t)snprintf(extra + e,
						      sizeof(extra) - e,
						      " NOTIFY=%s", nv);
			if (param_value(rp, "ORCPT", ov, sizeof(ov)) &&
			    e < sizeof(extra))
				sfmt(extra + e, sizeof(extra) - e,
					 " ORCPT=%s", ov);
		}
		job_send(job, r->conf->timeouts.rcpt, "RCPT TO:<%s>%s",
			 sc_delivery_rcpt(d, job->idx[k]), extra);
	}
	job->cmds[job->ncmd++] = (struct relay_cmd){ CMD_DATA, 0 };
	if (job->ext_pipelining) {
		job_send(job, r->conf->timeouts.data, "DATA");
		/* the replies come in order: first the one to MAIL */
		job_deadline(job, r->conf->timeouts.mail);
	}
}

/* cmd_timeout - how long the reply to a transaction command may take. */
static uint64_t
cmd_timeout(const struct relay *r, enum cmd_kind kind)
{
	switch (kind) {
	case CMD_MAIL:
		return r->conf->timeouts.mail;
	case CMD_RCPT:
		return r->conf->timeouts.rcpt;
	case CMD_DATA:
		break;
	}
	return r->conf->timeouts.data;
}

/* job_send_cmd - without PIPELINING: the command at position i. */
static void
job_send_cmd(struct relay_job *job, size_t i)
{
	struct relay *r = job->r;
	struct sc_delivery *d = job->batch->d;
	const struct relay_cmd *cmd = &job->cmds[i];

	if (cmd->kind == CMD_DATA) {
		job_send(job, r->conf->timeouts.data, "DATA");
		return;
	}
	const char *rp = sc_delivery_rcpt_params(d, job->idx[cmd->rcpt]);
	char extra[600] = "", nv[300], ov[512];
	size_t e = 0;
	if (job->ext_dsn && rp != NULL) {
		if (param_value(rp, "NOTIFY", nv, sizeof(nv)))
			e += (size_t)snprintf(extra + e, sizeof(extra) - e,
					      " NOTIFY=%s", nv);
		if (param_value(rp, "ORCPT", ov, sizeof(ov)) &&
		    e < sizeof(extra))
			sfmt(extra + e, sizeof(extra) - e, " ORCPT=%s",
				 ov);
	}
	job_send(job, r->conf->timeouts.rcpt, "RCPT TO:<%s>%s",
		 sc_delivery_rcpt(d, job->idx[cmd->rcpt]), extra);
}

/* job_handle_reply - one complete reply (job->code, job->text) arrived. */
void
job_handle_reply(struct relay_job *job)
{
	struct relay *r = job->r;
	int code = job->code;
	char msg[900];

	switch (job->st) {
	case JS_GREETING:
		if (code / 100 != 2) {
			job_reply_text(job, msg, sizeof(msg), "the greeting");
			/* a refusing host is no verdict on the mail: try
			 * the next one, and defer if none takes it */
			job_set_error(job, SC_DENYSOFT,
				      code >= 500 ? 451 : code, "4.4.2", "%s",
				      msg);
			job_host_failed(job);
			return;
		}
		if (job_is_loop(job, job->text)) {
			job_loop_detected(job);
			return;
		}
		job_send_ehlo(job);
		return;
	case JS_EHLO:
		if (code / 100 == 2) {
			job_after_ehlo(job);
			return;
		}
		job->st = JS_HELO;
		job_send(job, r->conf->timeouts.ehlo, "HELO %s",
			 relay_helo(r));
		return;
	case JS_HELO:
		if (code / 100 != 2) {
			job_reply_text(job, msg, sizeof(msg), "HELO");
			job_set_error(job, SC_DENYSOFT, 451, "4.4.2", "%s",
				      msg);
			job_host_failed(job);
			return;
		}
		if (job_is_loop(job, job->text)) {
			job_loop_detected(job);
			return;
		}
		job_after_ehlo(job);
		return;
	case JS_STARTTLS:
		if (code != 220) {
			job_reply_text(job, msg, sizeof(msg), "STARTTLS");
			if (job_tls_optional(job)) {
				/* refused, but the session goes on */
				sc_log_info("relay: %s", msg);
				job_ready(job);
				return;
			}
			job_set_error(job, SC_DENYSOFT, 450, "4.7.5", "%s",
				      msg);
			job_host_failed(job);
			return;
		}
		job_start_tls(job);
		return;
	case JS_AUTH_USER:
	case JS_AUTH_PASS:
		if (code == 334) {
			char b64[820];
			const char *v = job->st == JS_AUTH_USER
				? r->conf->smarthost_auth.user : r->password;
			/* a value too long to encode is sent empty: the
			 * server refuses it, and the mail is deferred */
			if (sc_base64_encode(v, strlen(v), b64,
					     sizeof(b64)) < 0)
				b64[0] = '\0';
			job->st = job->st == JS_AUTH_USER ? JS_AUTH_PASS
							  : JS_AUTH;
			job_send(job, r->conf->timeouts.ehlo, "%s", b64);
			return;
		}
		/* FALLTHROUGH */
	case JS_AUTH:
		if (code == 235) {
			/* for this connection only: the next address (after
			 * a 4xx or a lost connection) must AUTH again */
			job->authenticated = true;
			job_ready(job);
			return;
		}
		job_reply_text(job, msg, sizeof(msg), "AUTH");
		/* wrong credentials are our configuration problem: keep
		 * the mail and retry rather than bounce it */
		job_set_error(job, SC_DENYSOFT, 451, "4.7.8", "%s", msg);
		job_host_failed(job);
		return;
	case JS_TRANSACTION:
		break;
	case JS_DOT:
		job_reply_text(job, msg, sizeof(msg), "end of data");
		for (size_t k = 0; k < job->nrcpt; k++) {
			if (job->rs[k] != RS_ACCEPTED)
				continue;
			if (code / 100 == 2)
				job_result(job, k, SC_OK, code,
					   job->esc[0] ? job->esc : "2.0.0",
					   msg);
			else
				job_result(job, k, code / 100 == 5
						   ? SC_DENY : SC_DENYSOFT,
					   code, job->esc[0] ? job->esc
						: default_esc(code), msg);
		}
		job_send(job, r->conf->timeouts.ehlo, "QUIT");
		if (!job_all_done(job)) {
			/* recipients deferred at RCPT keep their error */
			job_set_error(job, SC_DENYSOFT, 451, "4.4.1",
				      "%s", msg);
		}
		job_finish(job);
		return;
	default:
		return;
	}

	/* JS_TRANSACTION: replies to MAIL, RCPT..., DATA in order */
	if (job->cmd_head >= job->ncmd)
		return;
	const struct relay_cmd *cmd = &job->cmds[job->cmd_head++];
	switch (cmd->kind) {
	case CMD_MAIL:
		if (code / 100 != 2) {
			job_reply_text(job, msg, sizeof(msg), "MAIL FROM");
			if (code / 100 == 5) {
				job_fail_all(job, SC_DENY, code,
					     job->esc[0] ? job->esc : "5.0.0",
					     "%s", msg);
				job_send(job, r->conf->timeouts.ehlo, "QUIT");
				job_finish(job);
				return;
			}
			job_set_error(job, SC_DENYSOFT, code,
				      job->esc[0] ? job->esc : "4.0.0", "%s",
				      msg);
			job_send(job, r->conf->timeouts.ehlo, "QUIT");
			job_host_failed(job);
			return;
		}
		break;
	case CMD_RCPT:
		if (code / 100 == 2) {
			job->rs[cmd->rcpt] = RS_ACCEPTED;
			job->accepted++;
		} else {
			job_reply_text(job, msg, sizeof(msg), "RCPT TO");
			job_result(job, cmd->rcpt,
				   code / 100 == 5 ? SC_DENY : SC_DENYSOFT,
				   code, job->esc[0] ? job->esc
						     : default_esc(code), msg);
		}
		break;
	case CMD_DATA:
		if (code == 354 && job->accepted > 0) {
			job->st = JS_BODY;
			job->off = 0;
			job->at_bol = true;
			job->prev_cr = false;
			sc_conn_set_timeout(job->conn,
					    r->conf->timeouts.data_block);
			job_deadline(job, r->conf->timeouts.data_block);
			job_body_pump(job);
			return;
		}
		if (job->accepted == 0) {
			/* every RCPT failed: DATA was only pipelined along */
			if (code == 354)
				sc_conn_write(job->conn, ".\r\n", 3);
			job_send(job, r->conf->timeouts.ehlo, "QUIT");
			job_finish(job);
			return;
		}
		job_reply_text(job, msg, sizeof(msg), "DATA");
		for (size_t k = 0; k < job->nrcpt; k++)
			if (job->rs[k] == RS_ACCEPTED)
				job_result(job, k, code / 100 == 5
						   ? SC_DENY : SC_DENYSOFT,
					   code, job->esc[0] ? job->esc
						: default_esc(code), msg);
		job_send(job, r->conf->timeouts.ehlo, "QUIT");
		job_finish(job);
		return;
	}
	/* with PIPELINING the next reply is due in its own time; without,
	 * the next command goes now */
	if (job->ext_pipelining && job->cmd_head < job->ncmd)
		job_deadline(job,
			     cmd_timeout(r, job->cmds[job->cmd_head].kind));
	if (!job->ext_pipelining && job->cmd_head < job->ncmd) {
		const struct relay_cmd *next = &job->cmds[job->cmd_head];
		if (next->kind == CMD_DATA && job->accepted == 0) {
			job_send(job, r->conf->timeouts.ehlo, "QUIT");
			job_finish(job);
			return;
		}
		job_send_cmd(job, job->cmd_head);
	}
}
