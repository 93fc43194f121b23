/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_relay.c - doctor's open relay check: relay_networks
 * ranges that let the internet relay, then a live probe of the running
 * daemon's first mx listener (EHLO, MAIL, RCPT to a foreign domain, no
 * AUTH), which must answer 550 5.7.1. satchelctl process, blocking I/O
 * with bounded waits.
 */
#include "doctor.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

/* One SMTP reply in the open-relay probe. */
#define DIAG_SMTP_TIMEOUT_MS	10000

/* cidr_private - is c inside a private, loopback or link-local range? */
static bool
cidr_private(const struct sc_cidr *c)
{
	static const char *const ranges[] = {
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
		"fc00::/7", "fe80::/10", "::1/128", NULL
	};

	for (size_t i = 0; ranges[i] != NULL; i++) {
		struct sc_cidr r;
		unsigned bits;

		if (sc_cidr_parse(ranges[i], &r) < 0 ||
		    r.family != c->family || c->prefix < r.prefix)
			continue;
		bits = r.prefix;
		if (memcmp(r.addr, c->addr, bits / 8) != 0)
			continue;
		if (bits % 8 != 0) {
			unsigned char m =
				(unsigned char)(0xff << (8 - bits % 8));
			if ((r.addr[bits / 8] & m) != (c->addr[bits / 8] & m))
				continue;
		}
		return true;
	}
	return false;
}

/* relay_cidrs - the relay_networks of an smtp instance, parsed */
static size_t
relay_cidrs(const struct sc_inst_conf *ic, struct sc_cidr *out, size_t max,
	    const char **texts)
{
	const struct sc_ynode *l = sc_ynode_get(ic->root, "relay_networks");
	size_t n = 0;

	if (l == NULL || l->type != SC_YSEQ)
		return 0;
	for (size_t i = 0; i < l->n && n < max; i++) {
		if (l->items[i]->type != SC_YSCALAR ||
		    sc_cidr_parse(l->items[i]->scalar, &out[n]) < 0)
			continue;
		texts[n++] = l->items[i]->scalar;
	}
	return n;
}

/* smtp_reply - reads one (multi-line) reply; its code, and the last
 * line's text in buf; -1 on timeout or close */
static int
smtp_reply(int fd, char *buf, size_t size, char *in, size_t *inlen)
{
	for (;;) {
		char *nl = memchr(in, '\n', *inlen);

		if (nl != NULL) {
			size_t l = (size_t)(nl - in);
			int code = -1;
			bool last;

			if (l > 0 && in[l - 1] == '\r')
				in[l - 1] = '\0';
			in[l] = '\0';
			last = l < 4 || in[3] != '-';
			if (l >= 3 && isdigit((unsigned char)in[0]) &&
			    isdigit((unsigned char)in[1]) &&
			    isdigit((unsigned char)in[2]))
				code = atoi(in);
			snprintf(buf, size, "%s", in);
			memmove(in, nl + 1, *inlen - l - 1);
			*inlen -= l + 1;
			if (code < 0)
				return -1;
			if (last)
				return code;
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (*inlen >= 4095 ||
		    poll(&pfd, 1, DIAG_SMTP_TIMEOUT_MS) <= 0)
			return -1;
		r = read(fd, in + *inlen, 4095 - *inlen);
		if (r <= 0)
			return -1;
		*inlen += (size_t)r;
	}
}

/* smtp_cmd - sends line, returns the reply code (-1 on failure) */
static int
smtp_cmd(int fd, const char *line, char *buf, size_t size, char *in,
	 size_t *inlen)
{
	size_t l = strlen(line);

	if (write(fd, line, l) != (ssize_t)l || write(fd, "\r\n", 2) != 2)
		return -1;
	return smtp_reply(fd, buf, size, in, inlen);
}

/* by_pop_before_smtp - is name (the word after "relay allowed by ") the
 * pop_before_smtp module or one of its instances? */
static bool
by_pop_before_smtp(const struct doctor *d, const char *name, size_t len)
{
	if (len == strlen("pop_before_smtp") &&
	    strncmp(name, "pop_before_smtp", len) == 0)
		return true;
	for (size_t i = 0; i < d->cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &d->cfg->insts[i];

		if (strlen(ic->name) == len && strncmp(ic->name, name, len) == 0)
			return strcmp(ic->module, "pop_before_smtp") == 0;
	}
	return false;
}

/*
 * relay_accepted - the probe's RCPT got a 2xx. smtp's 250 says which
 * module let it through ("250 2.1.5 Ok, relay allowed by MODULE ...",
 * see the relay hook in satchel/hook.h). pop_before_smtp allowing this
 * machine's own address (a POP3 or IMAP login from it) is by design, not
 * an open relay; anything else is one.
 */
static void
relay_accepted(struct doctor *d, const struct lsn *l, const char *reply)
{
	const char *by = strstr(reply, "relay allowed by ");
	size_t len = 0;

	if (by != NULL) {
		by += strlen("relay allowed by ");
		len = strcspn(by, " ");
	}
	if (by != NULL && by_pop_before_smtp(d, by, len)) {
		report(d, 0, "relay (live): %s: %s: this machine's address "
		       "logged in to POP3 or IMAP recently, so it may relay "
		       "(not an open relay; everyone sharing a client's "
		       "address may, though)", l->addr.text,
		       by - strlen("relay allowed by "));
		return;
	}
	report(d, 2, "relay (live): %s accepted RCPT to a foreign domain "
	       "without authentication: OPEN RELAY%s%.*s%s, spammers will "
	       "use it; remove wide ranges from relay_networks and the "
	       "modules that allow it", l->addr.text,
	       by != NULL ? " (relay allowed by " : "", (int)len,
	       by != NULL ? by : "", by != NULL ? ")" : "");
}

/* relay_probe - tries to relay through the mx listener l without AUTH;
 * reports the outcome. relay is the instance's relay_networks. */
static void
relay_probe(struct doctor *d, const struct lsn *l,
	    const struct sc_cidr_list *relay)
{
	struct sockaddr_storage ss = l->addr.ss, me;
	socklen_t slen = sizeof(me);
	char buf[512], in[4096], ip[INET6_ADDRSTRLEN];
	size_t inlen = 0;
	int fd, code, flags;

	/* a wildcard listener is reachable on loopback */
	if (l->wildcard && ss.ss_family == AF_INET)
		((struct sockaddr_in *)(void *)&ss)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
	else if (l->wildcard)
		((struct sockaddr_in6 *)(void *)&ss)->sin6_addr =
			in6addr_loopback;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		report(d, 1, "relay (live): socket: %s", strerror(errno));
		return;
	}
	/* a bounded connect */
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&ss, l->addr.len) < 0 &&
	    errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = ETIMEDOUT;
		socklen_t el = sizeof(err);

		if (poll(&pfd, 1, DIAG_SMTP_TIMEOUT_MS) == 1)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		errno = err;
	} else {
		errno = 0;
	}
	if (errno != 0) {
		report(d, 1, "relay (live): cannot connect to the mx "
		       "listener %s: %s", l->addr.text, strerror(errno));
		close(fd);
		return;
	}
	fcntl(fd, F_SETFL, flags);
	if (getsockname(fd, (struct sockaddr *)&me, &slen) == 0 &&
	    sc_cidr_list_match(relay, (struct sockaddr *)&me)) {
		if (me.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)
					     &me)->sin_addr, ip, sizeof(ip));
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)
					      &me)->sin6_addr, ip, sizeof(ip));
		report(d, 0, "relay (live): not tried: this machine's "
		       "address %s is in relay_networks, so it may relay "
		       "by design", ip);
		close(fd);
		return;
	}
	code = smtp_reply(fd, buf, sizeof(buf), in, &inlen);
	if (code != 220) {
		report(d, 1, "relay (live): %s did not greet with 220: %s",
		       l->addr.text, code < 0 ? "no answer" : buf);
		close(fd);
		return;
	}
	code = smtp_cmd(fd, "EHLO doctor.invalid", buf, sizeof(buf), in,
			&inlen);
	if (code == 250)
		code = smtp_cmd(fd, "MAIL FROM:<doctor@example.invalid>",
				buf, sizeof(buf), in, &inlen);
	if (code != 250) {
		report(d, 1, "relay (live): %s refused EHLO/MAIL, so the "
		       "relay test could not run: %s", l->addr.text,
		       code < 0 ? "no answer" : buf);
		close(fd);
		return;
	}
	code = smtp_cmd(fd, "RCPT TO:<doctor@example.invalid>", buf,
			sizeof(buf), in, &inlen);
	if (code == 550 && strstr(buf, "5.7.1") != NULL)
		report(d, 0, "relay (live): %s refuses to relay without "
		       "authentication (%s)", l->addr.text, buf);
	else if (code >= 200 && code < 300)
		relay_accepted(d, l, buf);
	else
		report(d, 1, "relay (live): %s answered RCPT to a foreign "
		       "domain with %s, expected 550 5.7.1",
		       l->addr.text, code < 0 ? "nothing" : buf);
	smtp_cmd(fd, "QUIT", buf, sizeof(buf), in, &inlen);
	close(fd);
}

/* doctor_relay - relay_networks, then a live probe of the first mx
 * listener of the daemon */
void
doctor_relay(struct doctor *d)
{
	const struct lsn_list *ll = d->ll;
	const struct lsn *mx = NULL;
	struct sc_cidr cidrs[64];
	const char *texts[64];
	struct sc_cidr_list relay = { 0, cidrs };
	bool bad = false;

	if (ll == NULL)
		return;
	for (size_t i = 0; i < d->cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &d->cfg->insts[i];
		size_t n;

		if (!inst_enabled(ic, "smtp"))
			continue;
		n = relay_cidrs(ic, cidrs, 64, texts);
		for (size_t k = 0; k < n; k++) {
			const struct sc_cidr *c = &cidrs[k];
			bool v4 = c->family == AF_INET;

			if (c->prefix == 0) {
				report(d, 2, "relay_networks: %s in %s lets "
				       "the whole internet relay: OPEN "
				       "RELAY; list only your own networks",
				       texts[k], ic->file);
				bad = true;
			} else if (!cidr_private(c) &&
				   c->prefix < (v4 ? 24u : 48u)) {
				report(d, 2, "relay_networks: %s in %s is a "
				       "wide public range: everyone in it may "
				       "relay; narrow it to your own hosts",
				       texts[k], ic->file);
				bad = true;
			}
		}
	}
	if (!bad)
		report(d, 0, "relay_networks: only private or narrow "
		       "ranges");
	if (!d->daemon_up) {
		report(d, 1, "relay (live): satcheld is not running: the "
		       "open relay test needs it; start it and run doctor "
		       "again");
		return;
	}
	for (size_t i = 0; i < ll->n && mx == NULL; i++)
		if (strcmp(ll->v[i].proto, "smtp") == 0 &&
		    !ll->v[i].submission && ll->v[i].tls != LSN_IMPLICIT)
			mx = &ll->v[i];
	if (mx == NULL) {
		report(d, 0, "relay (live): no mx listener to test");
		return;
	}
	relay.n = relay_cidrs(mx->ic, cidrs, 64, texts);
	relay_probe(d, mx, &relay);
}
