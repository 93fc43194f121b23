/* SPDX-License-Identifier: MIT */
/*
 * modules/web/web_int.h - what the web module's files share: the config,
 * the instance, the pages' entry points, and the pure helpers of
 * web_parse.c (which the fuzz target compiles alone, without the core).
 * Module-private: never installed.
 */
#ifndef SATCHEL_WEB_INT_H
#define SATCHEL_WEB_INT_H

#include <stdbool.h>
#include <stddef.h>

/* ---- web_parse.c: pure (no sc_ calls), fuzzed ---- */

/* A growing text buffer; on out-of-memory it stops growing and sets
 * failed (the page then answers 500). */
struct web_buf {
	char *s;
	size_t len, cap;
	bool failed;
};

void web_buf_add(struct web_buf *b, const char *s, size_t n);
void web_buf_puts(struct web_buf *b, const char *s);
void web_buf_printf(struct web_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s with & < > " ' as XML/HTML entities */
void web_buf_xml(struct web_buf *b, const char *s);
/* s as a JSON string literal, quotes included */
void web_buf_json(struct web_buf *b, const char *s);
void web_buf_free(struct web_buf *b);

/* Checks and normalises a mail address a client sent (the emailaddress
 * query, the autodiscover body): local@domain, printable ASCII or UTF-8
 * without spaces, controls, quotes or angle brackets, at most 254 bytes;
 * the domain lower-cased. 0 with out filled, -1 when it is no address. */
int web_address_clean(const char *in, size_t len, char *out, size_t outlen);

/* The <EMailAddress> of an Outlook autodiscover request body (POX,
 * "http://schemas.microsoft.com/exchange/autodiscover/outlook/
 * requestschema/2006"), checked with web_address_clean. 0 or -1. */
int web_autodiscover_address(const char *body, size_t len, char *out,
			     size_t outlen);

#ifndef WEB_PARSE_ONLY

#include <satchel/satchel.h>
#include <microhttpd.h>

struct web_listen_conf {
	struct sc_sockaddr address;
	int tls;			/* 0 none, 1 implicit                */
};

struct web_conf {
	struct sc_list listen;
	struct sc_cidr_list allow;
	bool metrics;
	bool autoconfig;
	bool status_page;
};

struct web_server;

struct web_inst {
	struct sc_instance *inst;
	const struct web_conf *conf;
	struct web_sockets *socks;	/* the bound sockets (the state)     */
	struct web_server *servers;	/* one per listener, once started    */
	size_t nservers;
	time_t started;
};

/* A page's answer: status, type, body (malloc'd, owned by the caller). */
struct web_reply {
	unsigned status;
	const char *type;
	struct web_buf body;
	const char *disposition;	/* Content-Disposition, or NULL       */
};

/* web_metrics.c: /metrics */
void web_metrics_page(struct web_inst *wi, struct web_reply *r);

/* web_autoconfig.c: Thunderbird, Outlook, Apple. address may be NULL
 * (Thunderbird's well-known URL: the %EMAILADDRESS% placeholder). */
void web_autoconfig_thunderbird(struct web_inst *wi, const char *address,
				struct web_reply *r);
void web_autoconfig_outlook(struct web_inst *wi, const char *address,
			    struct web_reply *r);
void web_autoconfig_apple(struct web_inst *wi, const char *address,
			  struct web_reply *r);

/* web_status.c: / and /status.json */
void web_status_page(struct web_inst *wi, struct web_reply *r);
void web_status_json(struct web_inst *wi, struct web_reply *r);
void web_status_script(struct web_inst *wi, struct web_reply *r);

#endif
#endif
