/* SPDX-License-Identifier: MIT */
/*
 * satchel/config.h - module key schemas and the main config.
 *
 * A module declares its keys in a table; the core parses the module's
 * plugins.d file against it (types, defaults, required keys, the
 * constraints: non-empty, host names, ranges, enums), then calls the
 * module's validate callback for rules across keys, and reports errors as
 * FILE:LINE:COL before any other module code runs - at `satcheld -t` and
 * `satchelctl check` as well as at start and reload. The names module,
 * name, enabled and hook_timeout are the core's in every plugins.d file:
 * a module whose table declares one of them is refused at load. The
 * filled struct is owned by the core and freed with the instance.
 */
#ifndef SATCHEL_CONFIG_H
#define SATCHEL_CONFIG_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sc_key_type {
	SC_KEY_STR = 1,		/* char *                                  */
	SC_KEY_PATH,		/* char *, relative paths made absolute
				   against the directory of the file       */
	SC_KEY_BOOL,		/* bool: true/false/yes/no                 */
	SC_KEY_UINT,		/* uint64_t                                */
	SC_KEY_SIZE,		/* uint64_t bytes: 512K, 50M, 1G, 1024     */
	SC_KEY_DURATION,	/* uint64_t milliseconds: 30s, 5m, 2h, 5d  */
	SC_KEY_RATE,		/* struct sc_rate: 60/1m                   */
	SC_KEY_ENUM,		/* int: index into enum_values "a|b|c"     */
	SC_KEY_ADDRESS,		/* struct sc_sockaddr: host:port, [v6]:port */
	SC_KEY_CIDR_LIST,	/* struct sc_cidr_list: [10.0.0.0/8, ::1]  */
	SC_KEY_STR_LIST,	/* struct sc_str_list: [a, b]              */
	SC_KEY_DURATION_LIST,	/* struct sc_u64_list: [5m, 10m]           */
	SC_KEY_STR_MAP,		/* struct sc_str_map: {k: v, ...}          */
	SC_KEY_OBJECT,		/* nested map; sub keys write into the same
				   struct at offset + their own offset     */
	SC_KEY_LIST,		/* struct sc_list of sub-structs, each a map
				   described by sub (sub_size bytes each)  */
};

/* Since ABI 1.2. A range for struct sc_config_key's enum_values: min and
 * max are string literals in the key's own syntax ("1", "30s", "50M"),
 * either may be "" (no bound): SC_KEY_RANGE("1s", "1h"). */
#define SC_KEY_RANGE(min, max) min ".." max

/* flags */
#define SC_KEY_REQUIRED 0x1u	/* the file must set it                    */
/* Since ABI 1.2. A value given must not be empty: a string, a list or a
 * map (add SC_KEY_REQUIRED to demand the key as well). */
#define SC_KEY_NONEMPTY 0x2u
/* Since ABI 1.2. SC_KEY_STR or SC_KEY_STR_LIST: each value must be a host
 * name (letters, digits, hyphens; dot-separated labels of 1-63, at most
 * 253 in all, no hyphen at a label's ends). */
#define SC_KEY_HOSTNAME 0x4u

struct sc_config_key {
	const char *name;	/* YAML key, snake_case; NULL ends a table  */
	enum sc_key_type type;
	size_t offset;		/* offsetof(struct your_conf, field)        */
	const char *def;	/* default, in YAML scalar syntax; NULL = none
				   (zero/NULL/empty). For lists: "[a, b]"    */
	unsigned flags;		/* SC_KEY_REQUIRED, _NONEMPTY, _HOSTNAME    */
	const char *doc;	/* one line for `satchelctl modules --keys`  */
	/* SC_KEY_ENUM: the values, "none|starttls|implicit". Since ABI
	 * 1.2, for SC_KEY_UINT, SC_KEY_SIZE, SC_KEY_DURATION and each item
	 * of SC_KEY_DURATION_LIST: the allowed range, SC_KEY_RANGE(min,
	 * max). NULL = any value. */
	const char *enum_values;
	const struct sc_config_key *sub; /* SC_KEY_OBJECT / SC_KEY_LIST      */
	size_t sub_size;	/* SC_KEY_LIST: sizeof one element          */
};

struct sc_rate {
	uint64_t count;
	uint64_t period_ms;
};

struct sc_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];		/* as written in the config, normalised    */
};

struct sc_cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct sc_cidr_list { size_t n; struct sc_cidr *v; };
struct sc_str_list  { size_t n; char **v; };
struct sc_u64_list  { size_t n; uint64_t *v; };
struct sc_str_map   { size_t n; char **keys; char **values; };
struct sc_list      { size_t n; void *v; /* n elements of sub_size */ };

/* True when addr (a sockaddr_in/in6; v4-mapped v6 is treated as v4)
 * lies in one of the CIDRs. */
SC_API bool sc_cidr_list_match(const struct sc_cidr_list *list,
			       const struct sockaddr *addr);

/* Parses "1.2.3.0/24", "::1", "10.0.0.1" into *out. 0 or -1. */
SC_API int sc_cidr_parse(const char *text, struct sc_cidr *out);

/* Value parsers shared with the config loader. 0 or -1. */
SC_API int sc_parse_size(const char *text, uint64_t *bytes_r);
SC_API int sc_parse_duration(const char *text, uint64_t *ms_r);
SC_API int sc_parse_rate(const char *text, struct sc_rate *rate_r);
SC_API int sc_parse_sockaddr(const char *text, struct sc_sockaddr *out);

/* ---- validating a module's config (Since ABI 1.2) ---- */

/* What struct sc_module's validate callback reports errors into. */
struct sc_config_check;

/* Reports a config error found by a validate callback at key, a dotted
 * path into the module's plugins.d file ("zones", "timeouts.connect",
 * "listen.0.address"; NULL, or a key the file does not set: the file's
 * top), as "FILE:LINE:COL: KEY: message" - what `satcheld -t`,
 * `satchelctl check` and a refused reload print. The first report counts.
 * Returns -1, so validate can end with `return sc_config_check_error(...)`.
 */
SC_API int sc_config_check_error(struct sc_config_check *check,
				 const char *key, const char *fmt, ...)
	SC_PRINTF(3, 4);

/* ---- main config (satchel.yaml), read-only for modules ---- */

enum sc_routing {
	SC_ROUTING_NONE = 0,	/* the domain is not configured here */
	SC_ROUTING_LOCAL,
	SC_ROUTING_BACKUP,
	SC_ROUTING_REMOTE,
	SC_ROUTING_AUTO,
};

/* The banner/EHLO name. */
SC_API const char *sc_config_hostname(void);
/* The state directory (absolute). */
SC_API const char *sc_config_state_dir(void);
/* The unprivileged user the daemon runs as ("" when not dropping). */
SC_API const char *sc_config_user(void);
/* The routing of a mail domain (case-insensitive); NONE when unlisted. */
SC_API enum sc_routing sc_config_domain_routing(const char *domain);
/* The configured mail domains, for iteration: index 0..n-1, NULL past
 * the end. */
SC_API const char *sc_config_domain(size_t index);
/* "local", "backup", "remote", "auto" or "none". */
SC_API const char *sc_routing_name(enum sc_routing r);

/* ---- the configured listeners, for modules that describe them (the web
 * module's mail client autoconfiguration, as `satchelctl connect`) ---- */

/* One entry of an instance's `listen` list. Valid during the callback
 * only; fields may be appended (the core owns the struct). Since ABI 1.3. */
struct sc_listener_info {
	const char *instance;		/* instance name ("50-smtp")        */
	const char *module;		/* its module ("smtp", "pop3", ...) */
	const struct sc_sockaddr *address;
	unsigned port;			/* address's port                   */
	const char *mode;		/* the entry's `mode` ("mx",
					   "submission"), or NULL: no such key */
	const char *tls;		/* the entry's `tls` ("none", "starttls",
					   "implicit"), or NULL: no such key */
};

typedef void (*sc_listener_fn)(const struct sc_listener_info *l, void *data);

/* Calls fn for every entry of the `listen` list (a list of maps with an
 * `address`, and optional `mode` and `tls` enums, as smtp and pop3 have)
 * of every enabled instance of inst's configuration - the generation inst
 * belongs to, which is the running one unless a reload replaced it - in
 * plugins.d file order, defaults applied. Since ABI 1.3. */
SC_API void sc_config_listeners(const struct sc_instance *inst,
				sc_listener_fn fn, void *data);

/* One instance of a configuration, for a list of what is loaded (the web
 * module's status page). Valid during the callback only; fields may be
 * appended (the core owns the struct). Since ABI 1.3. */
struct sc_instance_info {
	const char *instance;		/* instance name ("50-smtp")        */
	const char *module;		/* its module ("smtp")              */
	const char *version;		/* the module's version ("1.0")     */
	const char *file;		/* its plugins.d file               */
};

typedef void (*sc_instance_info_fn)(const struct sc_instance_info *i,
				    void *data);

/* Calls fn for every enabled instance of inst's configuration (as for
 * sc_config_listeners), in plugins.d file order. Since ABI 1.3. */
SC_API void sc_config_instances(const struct sc_instance *inst,
				sc_instance_info_fn fn, void *data);

#ifdef __cplusplus
}
#endif

#endif
