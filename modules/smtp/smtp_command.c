/* SPDX-License-Identifier: MIT */
/*
 * smtp_command.c - the command table and its generic checks (after
 * OpenSMTPD's smtp_session.c: verb, flags, syntax, proceed), and the
 * commands that need no file of their own: HELO/EHLO (the EHLO keywords),
 * STARTTLS, RSET, NOOP, QUIT, VRFY, EXPN, HELP and the HTTP verbs. MAIL
 * and RCPT are in smtp_envelope.c, DATA and BDAT in smtp_message.c, AUTH
 * in smtp_auth.c.
 *
 * Runs on the event loop thread, like the rest of the module.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

#define SMTP_CMD_MAX	510	/* RFC 5321 4.5.3.1.4: 512 with CRLF   */

/* command flags (Postfix/OpenSMTPD style) */
#define F_HELO		0x01	/* needs HELO/EHLO first               */
#define F_NOARGS	0x02	/* takes no argument                    */
#define F_ARGS		0x04	/* needs an argument                    */
#define F_NOTX		0x08	/* not inside a mail transaction        */

struct smtp_cmd {
	const char *verb;
	unsigned flags;
	const char *syntax;	/* for 501 replies                     */
	void (*proceed)(struct smtp_session *ss, char *args);
};

/* ---- HELO / EHLO ---- */

static void
helo_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	const struct smtp_conf *conf = ss->conf;
	bool tls = sc_conn_tls_active(ss->c);
	struct sc_conn *c = ss->c;

	if (out->result != SC_CONT && out->result != SC_OK) {
		smtp_reply_outcome(ss, out, 550, "5.7.1", "Rejected");
		return;
	}
	smtp_tx_reset(ss);
	sc_session_set_helo(ss->s, ss->helo_arg);
	smtp_enter_state(ss, S_READY);
	ss->errors = 0;
	smtp_emit(ss, SC_EVENT_HELO, NULL, NULL, ss->helo_arg);
	if (!ss->esmtp) {
		smtp_reply(ss, 250, NULL, "%s", sc_config_hostname());
		return;
	}
	sc_conn_printf(c, "250-%s Hello %s [%s]\r\n", sc_config_hostname(),
		       ss->helo_arg, sc_session_client_ip(ss->s));
	sc_conn_printf(c, "250-PIPELINING\r\n");
	sc_conn_printf(c, "250-SIZE %llu\r\n",
		       (unsigned long long)conf->max_message_size);
	sc_conn_printf(c, "250-8BITMIME\r\n");
	sc_conn_printf(c, "250-ENHANCEDSTATUSCODES\r\n");
	if (!tls && ss->lc->tls == TLS_STARTTLS)
		sc_conn_printf(c, "250-STARTTLS\r\n");
	if (sc_session_auth_user(ss->s) == NULL &&
	    (tls || ss->lc->tls == TLS_NONE))
		sc_conn_printf(c, "250-AUTH PLAIN LOGIN\r\n");
	sc_conn_printf(c, "250-SMTPUTF8\r\n");
	sc_conn_printf(c, "250-CHUNKING\r\n");
	sc_conn_printf(c, "250 DSN\r\n");
	sc_log_session(SC_LOG_DEBUG, ss->s, "smtp >>> 250 EHLO reply");
}

static void
do_helo(struct smtp_session *ss, char *args, bool esmtp)
{
	char *end = args + strlen(args);

	/* the domain or address literal is the first word */
	for (char *p = args; *p; p++)
		if (*p == ' ' || *p == '\t') {
			end = p;
			break;
		}
	*end = '\0';
	for (const unsigned char *p = (const unsigned char *)args; *p; p++)
		if (*p < 33 || *p > 126) {
			smtp_reply(ss, 501, "5.5.4", "Syntax: %s hostname",
				   esmtp ? "EHLO" : "HELO");
			return;
		}
	free(ss->helo_arg);
	ss->helo_arg = strdup(args);
	if (ss->helo_arg == NULL) {
		smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
		return;
	}
	ss->esmtp = esmtp;
	smtp_run_hook(ss, SC_HOOK_HELO, ss->helo_arg, helo_then);
}

static void
cmd_helo(struct smtp_session *ss, char *args)
{
	do_helo(ss, args, false);
}

static void
cmd_ehlo(struct smtp_session *ss, char *args)
{
	do_helo(ss, args, true);
}

/* ---- STARTTLS ---- */

static void
cmd_starttls(struct smtp_session *ss, char *args)
{
	(void)args;
	if (sc_conn_tls_active(ss->c)) {
		smtp_reply(ss, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (ss->lc->tls != TLS_STARTTLS) {
		smtp_reply(ss, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	smtp_reply(ss, 220, "2.0.0", "Ready to start TLS");
	smtp_enter_state(ss, S_TLS);
	smtp_ss_pause(ss);
	if (sc_conn_starttls(ss->c, smtp_tls_done, ss) != 0) {
		sc_log_session(SC_LOG_WARNING, ss->s, "smtp: cannot start "
			       "TLS");
		ss->pending = false;
		smtp_ss_close_soon(ss);
		return;
	}
	sc_conn_set_timeout(ss->c, ss->conf->timeouts.command);
}

/* ---- the rest ---- */

static void
cmd_rset(struct smtp_session *ss, char *args)
{
	(void)args;
	smtp_tx_reset(ss);
	smtp_reply(ss, 250, "2.0.0", "Ok");
}

static void
cmd_noop(struct smtp_session *ss, char *args)
{
	(void)args;
	smtp_reply(ss, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtp_session *ss, char *args)
{
	(void)args;
	smtp_reply(ss, 221, "2.0.0", "Bye");
	smtp_ss_close_soon(ss);
}

static void
cmd_vrfy(struct smtp_session *ss, char *args)
{
	(void)args;
	smtp_reply(ss, 252, "2.5.2", "Cannot VRFY user, but will accept "
		   "message and attempt delivery");
}

static void
cmd_expn(struct smtp_session *ss, char *args)
{
	(void)args;
	smtp_reply(ss, 502, "5.5.1", "Error: command not implemented");
}

static void
cmd_help(struct smtp_session *ss, char *args)
{
	(void)args;
	smtp_reply(ss, 214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA BDAT "
		   "RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
}

/* cmd_http - a web browser or proxy abuse (cross-protocol attack):
 * nothing more to say. */
static void
cmd_http(struct smtp_session *ss, char *args)
{
	(void)args;
	sc_log_session(SC_LOG_NOTICE, ss->s, "smtp: HTTP request from %s",
		       sc_session_client_ip(ss->s));
	smtp_reply(ss, 421, "4.7.0", "%s Error: this is an SMTP server",
		   sc_config_hostname());
}

/* ---- the table ---- */

static const struct smtp_cmd smtp_cmds[] = {
	{ "HELO",	F_ARGS,		"HELO hostname", cmd_helo },
	{ "EHLO",	F_ARGS,		"EHLO hostname", cmd_ehlo },
	{ "MAIL",	F_HELO | F_ARGS | F_NOTX, "MAIL FROM:<address>",
	  smtp_cmd_mail },
	{ "RCPT",	F_HELO | F_ARGS, "RCPT TO:<address>", smtp_cmd_rcpt },
	{ "DATA",	F_HELO | F_NOARGS,	"DATA", smtp_cmd_data },
	{ "BDAT",	F_HELO | F_ARGS,	"BDAT size [LAST]",
	  smtp_cmd_bdat },
	{ "RSET",	F_NOARGS,		"RSET", cmd_rset },
	{ "NOOP",	0,			"NOOP", cmd_noop },
	{ "QUIT",	F_NOARGS,		"QUIT", cmd_quit },
	{ "VRFY",	F_ARGS,		"VRFY address", cmd_vrfy },
	{ "EXPN",	0,			"EXPN list", cmd_expn },
	{ "HELP",	0,			"HELP", cmd_help },
	{ "STARTTLS",	F_NOARGS | F_NOTX, "STARTTLS", cmd_starttls },
	{ "AUTH",	F_HELO | F_ARGS | F_NOTX,
	  "AUTH mechanism [initial-response]", smtp_cmd_auth },
	{ "GET",	0,			NULL, cmd_http },
	{ "POST",	0,			NULL, cmd_http },
	{ "CONNECT",	0,			NULL, cmd_http },
	{ NULL, 0, NULL, NULL },
};

/* smtp_command - one command line: the table's generic checks, then the
 * command's own function. */
void
smtp_command(struct smtp_session *ss, char *line, size_t len)
{
	const struct smtp_cmd *cmd;
	char *args;
	size_t vl;

	for (size_t i = 0; i < len; i++)
		if (line[i] == '\0') {
			smtp_reply(ss, 500, "5.5.2", "Error: NUL in command");
			return;
		}
	vl = strcspn(line, " ");
	args = line + vl;
	while (*args == ' ')
		args++;
	/* tolerate trailing blanks (RFC 5321 4.1.1: be liberal) */
	for (char *e = args + strlen(args); e > args && (e[-1] == ' ' ||
	     e[-1] == '\t' || e[-1] == '\r'); e--)
		e[-1] = '\0';
	for (cmd = smtp_cmds; cmd->verb != NULL; cmd++)
		if (strlen(cmd->verb) == vl &&
		    strncasecmp(line, cmd->verb, vl) == 0)
			break;
	if (cmd->verb == NULL) {
		smtp_reply(ss, 500, "5.5.2", "Error: command not recognized");
		return;
	}
	if (len > SMTP_CMD_MAX && strcmp(cmd->verb, "AUTH") != 0) {
		smtp_reply(ss, 500, "5.5.2", "Error: line too long");
		return;
	}
	if (sc_log_enabled(SC_LOG_DEBUG))
		sc_log_session(SC_LOG_DEBUG, ss->s, "smtp <<< %.*s", (int)(
			strcmp(cmd->verb, "AUTH") == 0 ? vl : len), line);
	if ((cmd->flags & F_ARGS) && *args == '\0') {
		smtp_reply(ss, 501, "5.5.4", "Syntax: %s", cmd->syntax);
		return;
	}
	if ((cmd->flags & F_NOARGS) && *args != '\0') {
		smtp_reply(ss, 501, "5.5.4", "Syntax: %s", cmd->syntax);
		return;
	}
	if ((cmd->flags & F_HELO) && ss->state == S_HELO) {
		smtp_reply(ss, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if ((cmd->flags & F_NOTX) && ss->tx != NULL) {
		if (strcmp(cmd->verb, "MAIL") == 0)
			smtp_reply(ss, 503, "5.5.1", "Error: nested MAIL "
				   "command");
		else
			smtp_reply(ss, 503, "5.5.1", "Error: %s not permitted "
				   "during a mail transaction", cmd->verb);
		return;
	}
	cmd->proceed(ss, args);
}
