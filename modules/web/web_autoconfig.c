/* SPDX-License-Identifier: MIT */
/*
 * modules/web/web_autoconfig.c - mail client autoconfiguration from the
 * configured listeners and domains, the facts `satchelctl connect` shows:
 * Thunderbird's config-v1.1.xml, Outlook's autodiscover (POX) answer and
 * an Apple configuration profile (.mobileconfig, unsigned). POP3
 * listeners are the incoming servers, submission listeners the outgoing
 * ones (mx listeners are for other servers); recommended first: implicit
 * TLS, then STARTTLS, then none. Loop thread.
 */
#include "web_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define MAX_SERVERS 16

enum sec { SEC_IMPLICIT = 0, SEC_STARTTLS, SEC_NONE };

struct server {
	unsigned port;
	enum sec sec;
};

struct servers {
	struct server pop3[MAX_SERVERS], smtp[MAX_SERVERS];
	size_t npop3, nsmtp;
};

static enum sec
sec_of(const char *tls)
{
	if (tls != NULL && strcmp(tls, "implicit") == 0)
		return SEC_IMPLICIT;
	if (tls != NULL && strcmp(tls, "none") == 0)
		return SEC_NONE;
	return SEC_STARTTLS;
}

/* insert - l into v (n entries) after those of the same or better
 * security, so config order holds within each */
static void
insert(struct server *v, size_t *n, unsigned port, enum sec sec)
{
	size_t i = *n;

	if (*n >= MAX_SERVERS)
		return;
	for (size_t j = 0; j < *n; j++)
		if (v[j].port == port && v[j].sec == sec)
			return;	/* the same port twice (v4 and v6) */
	while (i > 0 && v[i - 1].sec > sec) {
		v[i] = v[i - 1];
		i--;
	}
	v[i].port = port;
	v[i].sec = sec;
	(*n)++;
}

static void
collect_one(const struct sc_listener_info *l, void *data)
{
	struct servers *s = data;

	if (strcmp(l->module, "pop3") == 0)
		insert(s->pop3, &s->npop3, l->port, sec_of(l->tls));
	else if (strcmp(l->module, "smtp") == 0 && l->mode != NULL &&
		 strcmp(l->mode, "submission") == 0)
		insert(s->smtp, &s->nsmtp, l->port, sec_of(l->tls));
}

static void
collect(struct web_inst *wi, struct servers *s)
{
	memset(s, 0, sizeof(*s));
	sc_config_listeners(wi->inst, collect_one, s);
}

/* domain_ok - the address's domain is one this server knows (not a
 * remote one: settings for it would send a user's password here) */
static bool
domain_ok(const char *address)
{
	const char *d = strrchr(address, '@');
	enum sc_routing r;

	if (d == NULL)
		return false;
	r = sc_config_domain_routing(d + 1);
	return r == SC_ROUTING_LOCAL || r == SC_ROUTING_AUTO;
}

static void
not_found(struct web_reply *r, const char *address)
{
	r->status = 404;
	r->type = "text/plain; charset=utf-8";
	web_buf_printf(&r->body, "no mail domain here for %s\n", address);
}

/* ---- Thunderbird ---- */

static const char *const tb_socket[] = { "SSL", "STARTTLS", "plain" };

static void
tb_server(struct web_buf *b, const char *tag, const char *type,
	  const struct server *sv, const char *user)
{
	web_buf_printf(b, "    <%s type=\"%s\">\n      <hostname>", tag, type);
	web_buf_xml(b, sc_config_hostname());
	web_buf_printf(b, "</hostname>\n      <port>%u</port>\n"
		       "      <socketType>%s</socketType>\n"
		       "      <authentication>password-cleartext"
		       "</authentication>\n      <username>", sv->port,
		       tb_socket[sv->sec]);
	web_buf_xml(b, user);
	web_buf_printf(b, "</username>\n    </%s>\n", tag);
}

void
web_autoconfig_thunderbird(struct web_inst *wi, const char *address,
			   struct web_reply *r)
{
	struct web_buf *b = &r->body;
	struct servers s;
	const char *user = address != NULL ? address : "%EMAILADDRESS%";
	const char *dom;

	if (address != NULL && !domain_ok(address))
		return not_found(r, address);
	collect(wi, &s);
	r->status = 200;
	r->type = "application/xml; charset=utf-8";
	web_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<clientConfig version=\"1.1\">\n"
		     "  <emailProvider id=\"");
	dom = address != NULL ? strrchr(address, '@') + 1 :
		sc_config_hostname();
	web_buf_xml(b, dom);
	web_buf_puts(b, "\">\n");
	if (address != NULL) {
		web_buf_puts(b, "    <domain>");
		web_buf_xml(b, dom);
		web_buf_puts(b, "</domain>\n");
	} else {
		for (size_t i = 0; sc_config_domain(i) != NULL; i++) {
			enum sc_routing rt =
				sc_config_domain_routing(sc_config_domain(i));

			if (rt != SC_ROUTING_LOCAL && rt != SC_ROUTING_AUTO)
				continue;
			web_buf_puts(b, "    <domain>");
			web_buf_xml(b, sc_config_domain(i));
			web_buf_puts(b, "</domain>\n");
		}
	}
	web_buf_puts(b, "    <displayName>");
	web_buf_xml(b, sc_config_hostname());
	web_buf_puts(b, "</displayName>\n    <displayShortName>");
	web_buf_xml(b, dom);
	web_buf_puts(b, "</displayShortName>\n");
	for (size_t i = 0; i < s.npop3; i++)
		tb_server(b, "incomingServer", "pop3", &s.pop3[i], user);
	for (size_t i = 0; i < s.nsmtp; i++)
		tb_server(b, "outgoingServer", "smtp", &s.smtp[i], user);
	web_buf_puts(b, "  </emailProvider>\n</clientConfig>\n");
}

/* ---- Outlook ---- */

static const char *const ol_encryption[] = { "SSL", "TLS", "None" };

static void
ol_protocol(struct web_buf *b, const char *type, const struct server *sv,
	    const char *user)
{
	web_buf_printf(b, "      <Protocol>\n        <Type>%s</Type>\n"
		       "        <Server>", type);
	web_buf_xml(b, sc_config_hostname());
	web_buf_printf(b, "</Server>\n        <Port>%u</Port>\n"
		       "        <LoginName>", sv->port);
	web_buf_xml(b, user);
	web_buf_printf(b, "</LoginName>\n        <DomainRequired>off"
		       "</DomainRequired>\n        <SPA>off</SPA>\n"
		       "        <SSL>%s</SSL>\n        <Encryption>%s"
		       "</Encryption>\n        <AuthRequired>on"
		       "</AuthRequired>\n      </Protocol>\n",
		       sv->sec == SEC_NONE ? "off" : "on",
		       ol_encryption[sv->sec]);
}

void
web_autoconfig_outlook(struct web_inst *wi, const char *address,
		       struct web_reply *r)
{
	struct web_buf *b = &r->body;
	struct servers s;

	if (!domain_ok(address))
		return not_found(r, address);
	collect(wi, &s);
	r->status = 200;
	r->type = "application/xml; charset=utf-8";
	web_buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		"<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
		"autodiscover/responseschema/2006\">\n"
		"  <Response xmlns=\"http://schemas.microsoft.com/exchange/"
		"autodiscover/outlook/responseschema/2006a\">\n"
		"    <Account>\n      <AccountType>email</AccountType>\n"
		"      <Action>settings</Action>\n");
	/* Outlook takes one server per type: the recommended one */
	if (s.npop3 > 0)
		ol_protocol(b, "POP3", &s.pop3[0], address);
	if (s.nsmtp > 0)
		ol_protocol(b, "SMTP", &s.smtp[0], address);
	web_buf_puts(b, "    </Account>\n  </Response>\n</Autodiscover>\n");
}

/* ---- Apple ---- */

static void
uuid_put(struct web_buf *b)
{
	unsigned char u[16] = { 0 };

	if (getrandom(u, sizeof(u), GRND_NONBLOCK) != (ssize_t)sizeof(u))
		for (size_t i = 0; i < sizeof(u); i++)	/* unique enough */
			u[i] = (unsigned char)(i * 37u + (unsigned)b->len);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);	/* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	web_buf_printf(b, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
		       "%02X%02X%02X%02X%02X%02X", u[0], u[1], u[2], u[3],
		       u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		       u[12], u[13], u[14], u[15]);
}

static void
plist_str(struct web_buf *b, const char *key, const char *value)
{
	web_buf_printf(b, "      <key>%s</key>\n      <string>", key);
	web_buf_xml(b, value);
	web_buf_puts(b, "</string>\n");
}

static void
plist_server(struct web_buf *b, const char *which, const struct server *sv,
	     const char *user)
{
	char key[64];

	snprintf(key, sizeof(key), "%sMailServerHostName", which);
	plist_str(b, key, sc_config_hostname());
	web_buf_printf(b, "      <key>%sMailServerPortNumber</key>\n"
		       "      <integer>%u</integer>\n"
		       "      <key>%sMailServerUseSSL</key>\n      <%s/>\n"
		       "      <key>%sMailServerAuthentication</key>\n"
		       "      <string>EmailAuthPassword</string>\n",
		       which, sv->port, which,
		       sv->sec == SEC_IMPLICIT ? "true" : "false", which);
	snprintf(key, sizeof(key), "%sMailServerUsername", which);
	plist_str(b, key, user);
}

void
web_autoconfig_apple(struct web_inst *wi, const char *address,
		     struct web_reply *r)
{
	struct web_buf *b = &r->body;
	struct servers s;
	const char *dom = strrchr(address, '@') + 1;
	char id[300];

	if (!domain_ok(address))
		return not_found(r, address);
	collect(wi, &s);
	if (s.npop3 == 0 || s.nsmtp == 0) {
		r->status = 404;
		r->type = "text/plain; charset=utf-8";
		web_buf_puts(b, "a profile needs a pop3 and a submission "
			     "listener\n");
		return;
	}
	/* a reverse-DNS identifier from the domain */
	snprintf(id, sizeof(id), "%s", dom);
	r->status = 200;
	r->type = "application/x-apple-aspen-config";
	r->disposition = "attachment; filename=\"satchel.mobileconfig\"";
	web_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		"<plist version=\"1.0\">\n<dict>\n"
		"  <key>PayloadContent</key>\n  <array>\n    <dict>\n");
	plist_str(b, "EmailAccountDescription", address);
	plist_str(b, "EmailAccountType", "EmailTypePOP");
	plist_str(b, "EmailAddress", address);
	plist_server(b, "Incoming", &s.pop3[0], address);
	plist_server(b, "Outgoing", &s.smtp[0], address);
	web_buf_puts(b, "      <key>OutgoingPasswordSameAsIncomingPassword"
		     "</key>\n      <true/>\n");
	plist_str(b, "PayloadDisplayName", address);
	web_buf_puts(b, "      <key>PayloadIdentifier</key>\n      <string>");
	web_buf_xml(b, id);
	web_buf_puts(b, ".satchel.mail.account</string>\n"
		     "      <key>PayloadType</key>\n"
		     "      <string>com.apple.mail.managed</string>\n"
		     "      <key>PayloadUUID</key>\n      <string>");
	uuid_put(b);
	web_buf_puts(b, "</string>\n      <key>PayloadVersion</key>\n"
		     "      <integer>1</integer>\n    </dict>\n  </array>\n");
	web_buf_puts(b, "  <key>PayloadDisplayName</key>\n  <string>");
	web_buf_xml(b, address);
	web_buf_puts(b, " (");
	web_buf_xml(b, sc_config_hostname());
	web_buf_puts(b, ")</string>\n  <key>PayloadIdentifier</key>\n"
		     "  <string>");
	web_buf_xml(b, id);
	web_buf_puts(b, ".satchel.mail</string>\n"
		     "  <key>PayloadType</key>\n"
		     "  <string>Configuration</string>\n"
		     "  <key>PayloadUUID</key>\n  <string>");
	uuid_put(b);
	web_buf_puts(b, "</string>\n  <key>PayloadVersion</key>\n"
		     "  <integer>1</integer>\n</dict>\n</plist>\n");
}
