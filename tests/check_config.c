/* SPDX-License-Identifier: MIT */
/*
 * tests/check_config.c - unit tests for core/config.c and config_keys.c:
 * the value parsers, every key type against a test schema, the main config
 * keys, includes and the plugins.d file rules, with exact FILE:LINE:COL
 * errors. Table-driven (Postfix TEST_DATA style); single-threaded.
 */
#include "core.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a scratch directory per test ---- */

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
teardown(void)
{
	rm_rf(tmpdir);
}

/* write_file - tmpdir/name with text and mode (directories created) */
static void
write_file(const char *name, const char *text, mode_t mode)
{
	char path[512], *slash;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	for (slash = strchr(path + strlen(tmpdir) + 1, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* strip_tmp - the error with tmpdir replaced by "T", for comparisons */
static char *
strip_tmp(const char *err)
{
	static char buf[2048];
	size_t tl = strlen(tmpdir), o = 0;
	const char *p = err;

	while (*p != '\0' && o + 2 < sizeof(buf)) {
		if (strncmp(p, tmpdir, tl) == 0) {
			buf[o++] = 'T';
			p += tl;
		} else {
			buf[o++] = *p++;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* load - writes satchel.yaml (and a list of NAME\0TEXT files) and loads */
static int
load(const char *main_text, struct sc_main_config **cfg_r, char **err_r)
{
	char path[512];

	write_file("satchel.yaml", main_text, 0644);
	snprintf(path, sizeof(path), "%s/satchel.yaml", tmpdir);
	*cfg_r = NULL;
	*err_r = NULL;
	return sc_main_config_load(path, cfg_r, err_r);
}

/* ---- value parsers ---- */

static const struct { const char *in; int ret; uint64_t v; } size_cases[] = {
	{ "0", 0, 0 },
	{ "1024", 0, 1024 },
	{ "512K", 0, 512 * 1024 },
	{ "512k", 0, 512 * 1024 },
	{ "50M", 0, 50ull * 1024 * 1024 },
	{ "50MB", 0, 50ull * 1024 * 1024 },
	{ "1G", 0, 1024ull * 1024 * 1024 },
	{ "2T", 0, 2ull << 40 },
	{ "100B", 0, 100 },
	{ "", -1, 0 },
	{ "M", -1, 0 },
	{ "-1", -1, 0 },
	{ "1.5M", -1, 0 },
	{ "10X", -1, 0 },
	{ " 10", -1, 0 },
	{ "10 M", -1, 0 },
	{ "99999999999999999999", -1, 0 },
	{ "99999999999T", -1, 0 },
};

START_TEST(test_parse_size)
{
	uint64_t v = 12345;
	int ret = sc_parse_size(size_cases[_i].in, &v);

	ck_assert_msg(ret == size_cases[_i].ret, "'%s': ret %d",
		      size_cases[_i].in, ret);
	if (ret == 0)
		ck_assert_uint_eq(v, size_cases[_i].v);
}
END_TEST

static const struct { const char *in; int ret; uint64_t v; } dur_cases[] = {
	{ "30s", 0, 30000 },
	{ "5m", 0, 300000 },
	{ "2h", 0, 7200000 },
	{ "5d", 0, 5ull * 86400000 },
	{ "1w", 0, 7ull * 86400000 },
	{ "250ms", 0, 250 },
	{ "30", 0, 30000 },
	{ "0", 0, 0 },
	{ "1h30m", 0, 5400000 },
	{ "", -1, 0 },
	{ "s", -1, 0 },
	{ "5x", -1, 0 },
	{ "-5s", -1, 0 },
	{ "5 s", -1, 0 },
	{ "5s ", -1, 0 },
	{ "1.5h", -1, 0 },
	{ "99999999999999999999d", -1, 0 },
	{ "9999999999999999d", -1, 0 },
};

START_TEST(test_parse_duration)
{
	uint64_t v = 12345;
	int ret = sc_parse_duration(dur_cases[_i].in, &v);

	ck_assert_msg(ret == dur_cases[_i].ret, "'%s': ret %d",
		      dur_cases[_i].in, ret);
	if (ret == 0)
		ck_assert_uint_eq(v, dur_cases[_i].v);
}
END_TEST

static const struct {
	const char *in; int ret; uint64_t count, period;
} rate_cases[] = {
	{ "60/1m", 0, 60, 60000 },
	{ "500/1h", 0, 500, 3600000 },
	{ "10/10m", 0, 10, 600000 },
	{ "3/m", 0, 3, 60000 },
	{ "5/30s", 0, 5, 30000 },
	{ "0/1m", 0, 0, 60000 },
	{ "60", -1, 0, 0 },
	{ "60/", -1, 0, 0 },
	{ "/1m", -1, 0, 0 },
	{ "60/0s", -1, 0, 0 },
	{ "60/1x", -1, 0, 0 },
	{ "a/1m", -1, 0, 0 },
	{ "60/minute", -1, 0, 0 },
};

START_TEST(test_parse_rate)
{
	struct sc_rate r = { 7, 7 };
	int ret = sc_parse_rate(rate_cases[_i].in, &r);

	ck_assert_msg(ret == rate_cases[_i].ret, "'%s': ret %d",
		      rate_cases[_i].in, ret);
	if (ret == 0) {
		ck_assert_uint_eq(r.count, rate_cases[_i].count);
		ck_assert_uint_eq(r.period_ms, rate_cases[_i].period);
	}
}
END_TEST

static const struct {
	const char *in; const char *text; int family; unsigned port;
} sa_cases[] = {
	{ "127.0.0.1:25", "127.0.0.1:25", AF_INET, 25 },
	{ "0.0.0.0:587", "0.0.0.0:587", AF_INET, 587 },
	{ "[::1]:25", "[::1]:25", AF_INET6, 25 },
	{ "[2001:DB8::0001]:465", "[2001:db8::1]:465", AF_INET6, 465 },
	{ "*:25", "*:25", AF_INET6, 25 },
	{ "localhost:2525", "127.0.0.1:2525", AF_INET, 2525 },
	{ "127.0.0.1:0", "127.0.0.1:0", AF_INET, 0 },
	{ "127.0.0.1:65535", "127.0.0.1:65535", AF_INET, 65535 },
	{ "127.0.0.1", NULL, 0, 0 },
	{ "127.0.0.1:", NULL, 0, 0 },
	{ "127.0.0.1:65536", NULL, 0, 0 },
	{ "127.0.0.1:-1", NULL, 0, 0 },
	{ "127.0.0.1:2x", NULL, 0, 0 },
	{ "::1:25", NULL, 0, 0 },
	{ "[::1]", NULL, 0, 0 },
	{ "[::1:25", NULL, 0, 0 },
	{ "[127.0.0.1]:25", NULL, 0, 0 },
	{ "mail.example.test:25", NULL, 0, 0 },
	{ "256.1.1.1:25", NULL, 0, 0 },
	{ ":25", NULL, 0, 0 },
	{ "", NULL, 0, 0 },
};

START_TEST(test_parse_sockaddr)
{
	struct sc_sockaddr sa;
	int ret = sc_parse_sockaddr(sa_cases[_i].in, &sa);

	if (sa_cases[_i].text == NULL) {
		ck_assert_msg(ret == -1, "'%s' accepted", sa_cases[_i].in);
		return;
	}
	ck_assert_msg(ret == 0, "'%s' refused", sa_cases[_i].in);
	ck_assert_str_eq(sa.text, sa_cases[_i].text);
	ck_assert_int_eq(sa.ss.ss_family, sa_cases[_i].family);
	if (sa.ss.ss_family == AF_INET) {
		ck_assert_uint_eq(sa.len, sizeof(struct sockaddr_in));
		ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&sa.ss)
					->sin_port), sa_cases[_i].port);
	} else {
		ck_assert_uint_eq(sa.len, sizeof(struct sockaddr_in6));
		ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&sa.ss)
					->sin6_port), sa_cases[_i].port);
	}
}
END_TEST

static const struct {
	const char *in; int ret; unsigned prefix;
} cidr_cases[] = {
	{ "10.0.0.0/8", 0, 8 },
	{ "10.1.2.3/8", 0, 8 },
	{ "192.0.2.1", 0, 32 },
	{ "::1", 0, 128 },
	{ "2001:db8::/32", 0, 32 },
	{ "0.0.0.0/0", 0, 0 },
	{ "10.0.0.0/33", -1, 0 },
	{ "::/129", -1, 0 },
	{ "10.0.0.0/", -1, 0 },
	{ "10.0.0/8", -1, 0 },
	{ "/8", -1, 0 },
	{ "10.0.0.0/8x", -1, 0 },
	{ "example.test", -1, 0 },
	{ "", -1, 0 },
};

START_TEST(test_cidr_parse)
{
	struct sc_cidr c;
	int ret = sc_cidr_parse(cidr_cases[_i].in, &c);

	ck_assert_msg(ret == cidr_cases[_i].ret, "'%s': ret %d",
		      cidr_cases[_i].in, ret);
	if (ret == 0)
		ck_assert_uint_eq(c.prefix, cidr_cases[_i].prefix);
}
END_TEST

static void
make_addr(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return;
	}
	ck_assert_int_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	sin6->sin6_family = AF_INET6;
}

static const struct { const char *addr; bool match; } match_cases[] = {
	{ "10.9.8.7", true },		/* 10.0.0.0/8 (written 10.1.2.3/8) */
	{ "11.0.0.1", false },
	{ "192.168.1.200", true },	/* 192.168.1.128/25 */
	{ "192.168.1.127", false },
	{ "::ffff:10.0.0.1", true },	/* v4-mapped matches the v4 CIDR */
	{ "::ffff:11.0.0.1", false },
	{ "::1", true },
	{ "::2", false },
	{ "2001:db8:1::5", true },	/* 2001:db8::/33 */
	{ "2001:db8:8000::1", false },
	{ "127.0.0.1", true },		/* 127.0.0.1 as a /32 */
	{ "127.0.0.2", false },
};

START_TEST(test_cidr_match)
{
	static const char *const nets[] = {
		"10.1.2.3/8", "192.168.1.128/25", "::1", "2001:db8::/33",
		"127.0.0.1",
	};
	struct sc_cidr v[5];
	struct sc_cidr_list list = { 5, v };
	struct sockaddr_storage ss;
	size_t i;

	for (i = 0; i < 5; i++)
		ck_assert_int_eq(sc_cidr_parse(nets[i], &v[i]), 0);
	make_addr(match_cases[_i].addr, &ss);
	ck_assert_msg(sc_cidr_list_match(&list, (struct sockaddr *)&ss) ==
		      match_cases[_i].match, "%s", match_cases[_i].addr);
	list.n = 0;
	ck_assert(!sc_cidr_list_match(&list, (struct sockaddr *)&ss));
}
END_TEST

/* ---- the key schema: one key of every type ---- */

struct t_listen {
	struct sc_sockaddr address;
	int mode;
	int tls;
	char *name;
};

struct t_conf {
	char *str;
	char *path;
	bool flag;
	uint64_t count;
	uint64_t size;
	uint64_t dur;
	struct sc_rate rate;
	int mode;
	struct sc_sockaddr addr;
	struct sc_cidr_list nets;
	struct sc_str_list names;
	struct sc_u64_list retry;
	struct sc_str_map routes;
	struct {
		uint64_t command;
		uint64_t data;
		struct { bool deep; } inner;
	} timeouts;
	struct sc_list listen;
	char *req;
	char *lit;
};

static const struct sc_config_key inner_keys[] = {
	{ "deep", SC_KEY_BOOL, 0, "yes", 0, "", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key timeout_keys[] = {
	{ "command", SC_KEY_DURATION, 0, "5m", 0, "", NULL, NULL, 0 },
	{ "data", SC_KEY_DURATION, sizeof(uint64_t), "10m", 0, "", NULL,
	  NULL, 0 },
	{ "inner", SC_KEY_OBJECT, 2 * sizeof(uint64_t), NULL, 0, "", NULL,
	  inner_keys, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key listen_keys[] = {
	{ "address", SC_KEY_ADDRESS, offsetof(struct t_listen, address), NULL,
	  SC_KEY_REQUIRED, "", NULL, NULL, 0 },
	{ "mode", SC_KEY_ENUM, offsetof(struct t_listen, mode), "mx", 0, "",
	  "mx|submission", NULL, 0 },
	{ "tls", SC_KEY_ENUM, offsetof(struct t_listen, tls), "starttls", 0,
	  "", "none|starttls|implicit", NULL, 0 },
	{ "name", SC_KEY_STR, offsetof(struct t_listen, name), NULL, 0, "",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

#define K(n, t, f, d, fl) \
	{ n, t, offsetof(struct t_conf, f), d, fl, "", NULL, NULL, 0 }
static const struct sc_config_key test_keys[] = {
	K("str", SC_KEY_STR, str, "hello", 0),
	K("path", SC_KEY_PATH, path, "data/x.db", 0),
	K("flag", SC_KEY_BOOL, flag, "true", 0),
	K("count", SC_KEY_UINT, count, "100", 0),
	K("size", SC_KEY_SIZE, size, "50M", 0),
	K("dur", SC_KEY_DURATION, dur, "5m", 0),
	K("rate", SC_KEY_RATE, rate, "60/1m", 0),
	{ "mode", SC_KEY_ENUM, offsetof(struct t_conf, mode), "submission",
	  0, "", "mx|submission", NULL, 0 },
	K("addr", SC_KEY_ADDRESS, addr, "*:25", 0),
	K("nets", SC_KEY_CIDR_LIST, nets, "[]", 0),
	K("names", SC_KEY_STR_LIST, names, "[a, b]", 0),
	K("retry", SC_KEY_DURATION_LIST, retry, "[5m, 10m, 1h]", 0),
	K("routes", SC_KEY_STR_MAP, routes, NULL, 0),
	{ "timeouts", SC_KEY_OBJECT, offsetof(struct t_conf, timeouts), NULL,
	  0, "", NULL, timeout_keys, 0 },
	{ "listen", SC_KEY_LIST, offsetof(struct t_conf, listen),
	  "[{address: '127.0.0.1:25'}, {address: '[::1]:587', "
	  "mode: submission}]", 0, "", NULL, listen_keys,
	  sizeof(struct t_listen) },
	K("req", SC_KEY_STR, req, NULL, SC_KEY_REQUIRED),
	K("lit", SC_KEY_STR, lit, "%d/%u", 0),
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* parse_plugin - loads a config including one plugins.d file with body
 * text and parses its keys against test_keys */
static int
parse_plugin(const char *text, struct t_conf *conf, char **err_r)
{
	struct sc_main_config *cfg;
	int ret;

	write_file("plugins.d/50-test.yaml", text, 0644);
	ret = load("hostname: mail.example.test\n"
		   "include: plugins.d/*.yaml\n", &cfg, err_r);
	if (ret < 0)
		return ret;
	ck_assert_uint_eq(cfg->inst_count, 1);
	memset(conf, 0, sizeof(*conf));
	ret = sc_config_parse_keys(&cfg->insts[0], test_keys, conf, err_r);
	if (ret < 0) {
		/* a failed parse leaves nothing behind to free */
		ck_assert_ptr_null(conf->str);
		ck_assert_ptr_null(conf->path);
		ck_assert_ptr_null(conf->names.v);
		ck_assert_ptr_null(conf->retry.v);
		ck_assert_ptr_null(conf->routes.keys);
		ck_assert_ptr_null(conf->listen.v);
		ck_assert_ptr_null(conf->req);
		ck_assert_ptr_null(conf->lit);
	}
	sc_main_config_free(&cfg);
	ck_assert_ptr_null(cfg);
	return ret;
}

START_TEST(test_keys_defaults)
{
	struct t_conf c;
	struct t_listen *l;
	char *err, want[512];

	ck_assert_int_eq(parse_plugin("module: test\nreq: x\n", &c, &err),
			 0);
	ck_assert_str_eq(c.str, "hello");
	snprintf(want, sizeof(want), "%s/plugins.d/data/x.db", tmpdir);
	ck_assert_str_eq(c.path, want);
	ck_assert(c.flag);
	ck_assert_uint_eq(c.count, 100);
	ck_assert_uint_eq(c.size, 50ull << 20);
	ck_assert_uint_eq(c.dur, 300000);
	ck_assert_uint_eq(c.rate.count, 60);
	ck_assert_uint_eq(c.rate.period_ms, 60000);
	ck_assert_int_eq(c.mode, 1);
	ck_assert_str_eq(c.addr.text, "*:25");
	ck_assert_uint_eq(c.nets.n, 0);
	ck_assert_uint_eq(c.names.n, 2);
	ck_assert_str_eq(c.names.v[1], "b");
	ck_assert_uint_eq(c.retry.n, 3);
	ck_assert_uint_eq(c.retry.v[2], 3600000);
	ck_assert_uint_eq(c.routes.n, 0);
	ck_assert_uint_eq(c.timeouts.command, 300000);
	ck_assert_uint_eq(c.timeouts.data, 600000);
	ck_assert(c.timeouts.inner.deep);
	ck_assert_uint_eq(c.listen.n, 2);
	l = c.listen.v;
	ck_assert_str_eq(l[0].address.text, "127.0.0.1:25");
	ck_assert_int_eq(l[0].mode, 0);
	ck_assert_int_eq(l[0].tls, 1);
	ck_assert_str_eq(l[1].address.text, "[::1]:587");
	ck_assert_int_eq(l[1].mode, 1);
	ck_assert_ptr_null(l[1].name);
	ck_assert_str_eq(c.req, "x");
	ck_assert_str_eq(c.lit, "%d/%u");
	sc_config_free_keys(test_keys, &c);
	ck_assert_ptr_null(c.str);
	ck_assert_ptr_null(c.listen.v);
	ck_assert_uint_eq(c.names.n, 0);
}
END_TEST

START_TEST(test_keys_values)
{
	struct t_conf c;
	struct t_listen *l;
	char *err;

	ck_assert_int_eq(parse_plugin(
		"module: test\n"
		"name: tester\n"
		"enabled: false\n"
		"hook_timeout: 5s\n"
		"str: \"quoted: yes\"\n"
		"path: /abs/file\n"
		"flag: no\n"
		"count: 0\n"
		"size: 512K\n"
		"dur: 2h\n"
		"rate: 500/1h\n"
		"mode: mx\n"
		"addr: \"[::1]:2525\"\n"
		"nets: [10.0.0.0/8, \"::1\"]\n"
		"names: single\n"
		"retry: [1m]\n"
		"routes: {partner.test: \"127.0.0.2:25\", b.test: x}\n"
		"timeouts:\n"
		"  data: 1m\n"
		"  inner: {deep: off}\n"
		"listen:\n"
		"  - address: 127.0.0.1:2525\n"
		"    tls: implicit\n"
		"    name: one\n"
		"  - {address: '*:587', mode: submission, tls: none}\n"
		"  - address: 127.0.0.1:25\n"
		"req: ~/x\n"
		"lit: plain\n", &c, &err), 0);
	ck_assert_str_eq(c.str, "quoted: yes");
	ck_assert_str_eq(c.path, "/abs/file");
	ck_assert(!c.flag);
	ck_assert_uint_eq(c.count, 0);
	ck_assert_uint_eq(c.size, 512 * 1024);
	ck_assert_uint_eq(c.dur, 7200000);
	ck_assert_uint_eq(c.rate.count, 500);
	ck_assert_int_eq(c.mode, 0);
	ck_assert_str_eq(c.addr.text, "[::1]:2525");
	ck_assert_uint_eq(c.nets.n, 2);
	ck_assert_int_eq(c.nets.v[1].family, AF_INET6);
	ck_assert_uint_eq(c.names.n, 1);
	ck_assert_str_eq(c.names.v[0], "single");
	ck_assert_uint_eq(c.retry.n, 1);
	ck_assert_uint_eq(c.routes.n, 2);
	ck_assert_str_eq(c.routes.keys[0], "partner.test");
	ck_assert_str_eq(c.routes.values[0], "127.0.0.2:25");
	ck_assert_uint_eq(c.timeouts.command, 300000);
	ck_assert_uint_eq(c.timeouts.data, 60000);
	ck_assert(!c.timeouts.inner.deep);
	ck_assert_uint_eq(c.listen.n, 3);
	l = c.listen.v;
	ck_assert_int_eq(l[0].tls, 2);
	ck_assert_str_eq(l[0].name, "one");
	ck_assert_str_eq(l[1].address.text, "*:587");
	ck_assert_int_eq(l[1].mode, 1);
	ck_assert_int_eq(l[1].tls, 0);
	ck_assert_int_eq(l[2].tls, 1);
	ck_assert_str_eq(c.req, "~/x");
	sc_config_free_keys(test_keys, &c);
}
END_TEST

/* Errors: the plugins.d body and the exact message (T = the tmpdir). */
#define F "T/plugins.d/50-test.yaml:"
static const struct { const char *yaml; const char *error; } key_errors[] = {
	{ "module: test\n",
	  F "1:1: missing required key 'req'" },
	{ "module: test\nreq:\n",
	  F "2:1: missing required key 'req'" },
	{ "module: test\nreq: x\nlsiten: []\n",
	  F "3:1: unknown key 'lsiten' (did you mean 'listen'?)" },
	{ "module: test\nreq: x\nenable: false\n",
	  F "3:1: unknown key 'enable' (did you mean 'enabled'?)" },
	{ "module: test\nreq: x\nbogus_key: 1\n",
	  F "3:1: unknown key 'bogus_key'" },
	{ "module: test\nreq: x\ncount: -1\n",
	  F "3:8: count: expected a non-negative whole number, got '-1'" },
	{ "module: test\nreq: x\ncount: [1]\n",
	  F "3:8: count: expected a number, got a list" },
	{ "module: test\nreq: [x]\n",
	  F "2:6: req: expected a string, got a list" },
	{ "module: test\nreq: x\nflag: maybe\n",
	  F "3:7: flag: expected true or false, got 'maybe'" },
	{ "module: test\nreq: x\nsize: 50Q\n",
	  F "3:7: size: expected a size such as 512K, 50M or 1G (or plain "
	  "bytes), got '50Q'" },
	{ "module: test\nreq: x\ndur: 5 minutes\n",
	  F "3:6: dur: expected a duration such as 30s, 5m, 2h or 5d, got "
	  "'5 minutes'" },
	{ "module: test\nreq: x\nrate: 60\n",
	  F "3:7: rate: expected a rate such as 60/1m (count/duration), got "
	  "'60'" },
	{ "module: test\nreq: x\nmode: relay\n",
	  F "3:7: mode: expected one of mx|submission, got 'relay'" },
	{ "module: test\nreq: x\naddr: 127.0.0.1\n",
	  F "3:7: addr: expected an address such as 127.0.0.1:25, [::1]:25 "
	  "or *:25, got '127.0.0.1'" },
	{ "module: test\nreq: x\nnets: [10.0.0.0/8, 300.1.1.1]\n",
	  F "3:20: nets[1]: expected an IP address or CIDR such as "
	  "192.0.2.0/24 or 2001:db8::/32, got '300.1.1.1'" },
	{ "module: test\nreq: x\nnames: {a: b}\n",
	  F "3:8: names: expected a list, got a map" },
	{ "module: test\nreq: x\nnames: [a, [b]]\n",
	  F "3:12: names[1]: expected a string, got a list" },
	{ "module: test\nreq: x\nretry: [5m, soon]\n",
	  F "3:13: retry[1]: expected a duration such as 30s, 5m, 2h or 5d, "
	  "got 'soon'" },
	{ "module: test\nreq: x\nroutes: [a]\n",
	  F "3:9: routes: expected a map (key: value), got a list" },
	{ "module: test\nreq: x\nroutes: {a.test: [x]}\n",
	  F "3:18: routes.a.test: expected a string, got a list" },
	{ "module: test\nreq: x\ntimeouts: 5m\n",
	  F "3:11: timeouts: expected a map (key: value), got '5m'" },
	{ "module: test\nreq: x\ntimeouts:\n  comand: 5m\n",
	  F "4:3: unknown key 'timeouts.comand' (did you mean 'command'?)" },
	{ "module: test\nreq: x\ntimeouts:\n  inner: {deep: 2}\n",
	  F "4:17: timeouts.inner.deep: expected true or false, got '2'" },
	{ "module: test\nreq: x\nlisten: {address: '*:25'}\n",
	  F "3:9: listen: expected a list, got a map" },
	{ "module: test\nreq: x\nlisten: ['*:25']\n",
	  F "3:10: listen[0]: expected a map (key: value), got '*:25'" },
	{ "module: test\nreq: x\nlisten:\n"
	  "  - address: 127.0.0.1:25\n"
	  "  - address: 127.0.0.1:587\n"
	  "    tls: yes\n",
	  F "6:10: listen[1].tls: expected one of none|starttls|implicit, "
	  "got 'yes'" },
	{ "module: test\nreq: x\nlisten:\n  - mode: mx\n",
	  F "4:5: missing required key 'listen[0].address'" },
	{ "module: test\nreq: x\nlisten:\n  - address: 127.0.0.1:25\n"
	  "    adress: 1\n",
	  F "5:5: unknown key 'listen[0].adress' (did you mean 'address'?)" },
	{ "module: test\nreq: x\nreq: y\n",
	  F "3:1: duplicate key 'req' (first at line 2)" },
	{ "module: test\nreq: x\nnames: [a\n",
	  F "4:1: YAML syntax error: did not find expected ',' or ']' "
	  "(while parsing a flow sequence)" },
	{ "module: test\nreq: x\n  bad: indent\n",
	  F "3:6: YAML syntax error: mapping values are not allowed in this "
	  "context" },
	{ "module: test\nreq: &a x\nstr: *a\n",
	  F "3:6: YAML aliases (*a) are not supported; write the value out" },
	{ "module: test\nreq: x\n---\nmodule: test\n",
	  F "3:1: only one YAML document per file is allowed" },
	{ "module: test\nreq: x\n[a]: 1\n",
	  F "3:1: a key must be a plain name, not a list" },
	{ "- module: test\n",
	  F "1:1: expected a map of settings (key: value) at the top level, "
	  "got a list" },
	{ "req: x\n",
	  F "1:1: missing required key 'module'" },
	{ "module: ../evil\nreq: x\n",
	  F "1:9: module: '../evil' is not a module name (lower-case "
	  "letters, digits and _)" },
	{ "module: test\nname: has space\nreq: x\n",
	  F "2:7: name: 'has space' is not a valid instance name (letters, "
	  "digits, '.', '_' and '-')" },
	{ "module: test\nenabled: 1\nreq: x\n",
	  F "2:10: enabled: expected true or false, got '1'" },
	{ "module: test\nhook_timeout: forever\nreq: x\n",
	  F "2:15: hook_timeout: expected a duration such as 30s, 5m, 2h or "
	  "5d, got 'forever'" },
	{ "module: test\nreq: \"a\\0b\"\n",
	  F "2:6: a NUL character is not allowed in a value" },
};
#undef F

START_TEST(test_keys_errors)
{
	struct t_conf c;
	char *err = NULL;

	ck_assert_int_eq(parse_plugin(key_errors[_i].yaml, &c, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(strip_tmp(err), key_errors[_i].error);
	free(err);
}
END_TEST

START_TEST(test_keys_none)
{
	struct sc_main_config *cfg;
	char *err = NULL;

	/* a module without keys: anything but the reserved ones is unknown */
	write_file("plugins.d/10-a.yaml", "module: a\nname: x\n", 0644);
	write_file("plugins.d/20-b.yaml", "module: b\nextra: 1\n", 0644);
	ck_assert_int_eq(load("include: plugins.d/*.yaml\n", &cfg, &err), 0);
	ck_assert_int_eq(sc_config_parse_keys(&cfg->insts[0], NULL, NULL,
					      &err), 0);
	ck_assert_int_eq(sc_config_parse_keys(&cfg->insts[1], NULL, NULL,
					      &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/plugins.d/20-b.yaml:2:1: unknown "
			 "key 'extra'");
	free(err);
	sc_main_config_free(&cfg);
}
END_TEST

/* ---- the main config ---- */

START_TEST(test_main_defaults)
{
	struct sc_main_config *cfg;
	char *err = NULL, want[512];

	ck_assert_int_eq(load("", &cfg, &err), 0);
	snprintf(want, sizeof(want), "%s/satchel.yaml", tmpdir);
	ck_assert_str_eq(cfg->file, want);
	ck_assert(cfg->hostname != NULL && cfg->hostname[0] != '\0');
	ck_assert_str_eq(cfg->state_dir, SC_STATEDIR);
	ck_assert_str_eq(cfg->module_dir, SC_MODULEDIR);
	ck_assert_str_eq(cfg->user, "satchel");
	ck_assert_int_eq(cfg->log_level, SC_LOG_INFO);
	ck_assert_ptr_null(cfg->tls_certificate);
	ck_assert_ptr_null(cfg->tls_key);
	ck_assert_uint_eq(cfg->dns_servers.n, 0);
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 30000);
	/* no domains: the machine's name, when it is a domain name */
	if (strchr(cfg->hostname, '.') != NULL &&
	    strncmp(cfg->hostname, "localhost.", 10) != 0) {
		ck_assert_uint_eq(cfg->domain_count, 1);
		ck_assert_str_eq(cfg->domains[0].name, cfg->hostname);
	} else {
		ck_assert_uint_eq(cfg->domain_count, 0);
	}
	ck_assert_uint_eq(cfg->inst_count, 0);
	sc_main_config_free(&cfg);
}
END_TEST

/* Without a domains: key the server's own name is a local domain (the
 * packaged config works for user@host); a domains: key, even an empty
 * one, is exactly the list. */
START_TEST(test_main_default_domain)
{
	struct sc_main_config *cfg;
	char *err = NULL;

	ck_assert_int_eq(load("hostname: Mail.Example.TEST\n", &cfg, &err), 0);
	ck_assert_uint_eq(cfg->domain_count, 1);
	ck_assert_str_eq(cfg->domains[0].name, "mail.example.test");
	sc_config_set_current(cfg);
	ck_assert_int_eq(sc_config_domain_routing("mail.example.test"),
			 SC_ROUTING_LOCAL);
	ck_assert_int_eq(sc_config_domain_routing("example.test"),
			 SC_ROUTING_NONE);
	sc_main_config_free(&cfg);

	ck_assert_int_eq(load("hostname: mail.example.test\ndomains: {}\n",
			      &cfg, &err), 0);
	ck_assert_uint_eq(cfg->domain_count, 0);
	sc_main_config_free(&cfg);
	ck_assert_int_eq(load("hostname: mail.example.test\ndomains:\n",
			      &cfg, &err), 0);
	ck_assert_uint_eq(cfg->domain_count, 0);
	sc_main_config_free(&cfg);
	ck_assert_int_eq(load("hostname: mail.example.test\ndomains: "
			      "{other.test: local}\n", &cfg, &err), 0);
	ck_assert_uint_eq(cfg->domain_count, 1);
	ck_assert_str_eq(cfg->domains[0].name, "other.test");
	sc_main_config_free(&cfg);
	/* a single label or localhost is no mail domain */
	ck_assert_int_eq(load("hostname: mailhost\n", &cfg, &err), 0);
	ck_assert_uint_eq(cfg->domain_count, 0);
	sc_main_config_free(&cfg);
	ck_assert_int_eq(load("hostname: localhost.localdomain\n", &cfg, &err),
			 0);
	ck_assert_uint_eq(cfg->domain_count, 0);
	sc_main_config_free(&cfg);
}
END_TEST

START_TEST(test_main_values)
{
	struct sc_main_config *cfg;
	char *err = NULL, want[512];

	ck_assert_int_eq(load(
		"# a comment\n"
		"hostname: mail.example.test\n"
		"state_dir: state\n"
		"module_dir: /usr/lib/satchel/modules\n"
		"user: \"\"\n"
		"log: {level: debug}\n"
		"tls:\n"
		"  certificate: tls/cert.pem\n"
		"  key: /etc/key.pem\n"
		"dns: {servers: [127.0.0.1:5353, \"::1\", \"[::1]:53\"]}\n"
		"domains:\n"
		"  Example.TEST: {routing: local}\n"
		"  partner.test: {routing: remote}\n"
		"  backup.test: {routing: backup}\n"
		"  auto.test.: auto\n"
		"  bare.test:\n"
		"shutdown_grace: 5s\n", &cfg, &err), 0);
	ck_assert_str_eq(cfg->hostname, "mail.example.test");
	snprintf(want, sizeof(want), "%s/state", tmpdir);
	ck_assert_str_eq(cfg->state_dir, want);
	ck_assert_str_eq(cfg->user, "");
	ck_assert_int_eq(cfg->log_level, SC_LOG_DEBUG);
	snprintf(want, sizeof(want), "%s/tls/cert.pem", tmpdir);
	ck_assert_str_eq(cfg->tls_certificate, want);
	ck_assert_str_eq(cfg->tls_key, "/etc/key.pem");
	ck_assert_uint_eq(cfg->dns_servers.n, 3);
	ck_assert_str_eq(cfg->dns_servers.v[0], "127.0.0.1:5353");
	ck_assert_uint_eq(cfg->shutdown_grace_ms, 5000);
	ck_assert_uint_eq(cfg->domain_count, 5);
	ck_assert_str_eq(cfg->domains[0].name, "example.test");
	ck_assert_str_eq(cfg->domains[3].name, "auto.test");

	/* the public getters read the current config */
	ck_assert_int_eq(sc_config_domain_routing("example.test"),
			 SC_ROUTING_NONE);
	sc_config_set_current(cfg);
	ck_assert_str_eq(sc_config_hostname(), "mail.example.test");
	ck_assert_str_eq(sc_config_user(), "");
	snprintf(want, sizeof(want), "%s/state", tmpdir);
	ck_assert_str_eq(sc_config_state_dir(), want);
	ck_assert_int_eq(sc_config_domain_routing("EXAMPLE.test"),
			 SC_ROUTING_LOCAL);
	ck_assert_int_eq(sc_config_domain_routing("example.test."),
			 SC_ROUTING_LOCAL);
	ck_assert_int_eq(sc_config_domain_routing("partner.test"),
			 SC_ROUTING_REMOTE);
	ck_assert_int_eq(sc_config_domain_routing("backup.test"),
			 SC_ROUTING_BACKUP);
	ck_assert_int_eq(sc_config_domain_routing("auto.test"),
			 SC_ROUTING_AUTO);
	ck_assert_int_eq(sc_config_domain_routing("bare.test"),
			 SC_ROUTING_LOCAL);
	ck_assert_int_eq(sc_config_domain_routing("other.test"),
			 SC_ROUTING_NONE);
	ck_assert_int_eq(sc_config_domain_routing("sub.example.test"),
			 SC_ROUTING_NONE);
	ck_assert_str_eq(sc_config_domain(1), "partner.test");
	ck_assert_ptr_null(sc_config_domain(5));
	ck_assert_str_eq(sc_routing_name(SC_ROUTING_BACKUP), "backup");
	ck_assert_str_eq(sc_routing_name(SC_ROUTING_AUTO), "auto");
	ck_assert_str_eq(sc_routing_name(SC_ROUTING_NONE), "none");
	ck_assert_str_eq(sc_routing_name((enum sc_routing)99), "none");
	sc_main_config_free(&cfg);
	/* freeing the current config unsets it */
	ck_assert_int_eq(sc_config_domain_routing("example.test"),
			 SC_ROUTING_NONE);
	ck_assert_ptr_null(sc_config_domain(0));
}
END_TEST

#define M "T/satchel.yaml:"
static const struct { const char *yaml; const char *error; } main_errors[] = {
	{ "hostnme: x\n",
	  M "1:1: unknown key 'hostnme' (did you mean 'hostname'?)" },
	{ "incude: x\n",
	  M "1:1: unknown key 'incude' (did you mean 'include'?)" },
	{ "hostname: [a]\n",
	  M "1:11: hostname: expected a string, got a list" },
	{ "hostname: bad_host!\n",
	  M "1:11: hostname: 'bad_host!' is not a valid host name" },
	{ "log: {level: loud}\n",
	  M "1:14: log.level: expected one of debug|info|notice|warning|"
	  "error, got 'loud'" },
	{ "log: {lvl: info}\n",
	  M "1:7: unknown key 'log.lvl'" },
	{ "tls: {certificate: /a.pem}\n",
	  M "1:6: tls: give both certificate and key, or neither (to use a "
	  "generated certificate)" },
	{ "dns: {servers: [ns.example.test]}\n",
	  M "1:17: dns.servers[0]: expected an IP address with an optional "
	  "port (127.0.0.1:5353, [::1]:53), got 'ns.example.test'" },
	{ "shutdown_grace: soon\n",
	  M "1:17: shutdown_grace: expected a duration such as 30s, 5m, 2h "
	  "or 5d, got 'soon'" },
	{ "domains: [example.test]\n",
	  M "1:10: domains: expected a map of domain: {routing: local|backup|"
	  "remote|auto}" },
	{ "domains:\n  example.test: {routing: elsewhere}\n",
	  M "2:27: domains.example.test.routing: expected one of local|"
	  "backup|remote|auto, got 'elsewhere'" },
	{ "domains:\n  example.test: nowhere\n",
	  M "2:17: domains.example.test.routing: expected one of local|"
	  "backup|remote|auto, got 'nowhere'" },
	{ "domains:\n  example.test: {routng: local}\n",
	  M "2:18: unknown key 'domains.example.test.routng' (did you mean "
	  "'routing'?)" },
	{ "domains:\n  example.test: local\n  EXAMPLE.test: remote\n",
	  M "3:3: domains: 'example.test' is listed twice (first at line 2)" },
	{ "domains:\n  -bad.test: local\n",
	  M "2:3: domains: '-bad.test' is not a valid domain name" },
	{ "domains:\n  a..test: local\n",
	  M "2:3: domains: 'a..test' is not a valid domain name" },
	{ "include: {a: b}\n",
	  M "1:10: include: expected a glob or a list of globs" },
	{ "include: [[a]]\n",
	  M "1:11: include: expected a file name or glob such as "
	  "plugins.d/*.yaml" },
	{ "include: missing.yaml\n",
	  M "1:10: include: T/missing.yaml: No such file or directory" },
	{ "hostname: a\n hostname: b\n",
	  M "2:10: YAML syntax error: mapping values are not allowed in this "
	  "context" },
	{ "hostname: \"unterminated\n",
	  M "2:1: YAML syntax error: found unexpected end of stream (while "
	  "scanning a quoted scalar)" },
	{ "[a, b]\n",
	  M "1:1: expected a map of settings (key: value) at the top level, "
	  "got a list" },
	{ "just text\n",
	  M "1:1: expected a map of settings (key: value) at the top level, "
	  "got a single value" },
};
#undef M

START_TEST(test_main_errors)
{
	struct sc_main_config *cfg;
	char *err = NULL;

	ck_assert_int_eq(load(main_errors[_i].yaml, &cfg, &err), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(strip_tmp(err), main_errors[_i].error);
	free(err);
}
END_TEST

/* ---- files: includes, name rules, permissions ---- */

START_TEST(test_include_order)
{
	struct sc_main_config *cfg;
	char *err = NULL, want[512];

	write_file("plugins.d/50-smtp.yaml", "module: smtp\n", 0644);
	write_file("plugins.d/10-ratelimit.yaml", "module: ratelimit\n", 0644);
	write_file("plugins.d/40-router.yaml",
		   "module: router\nname: r1\nenabled: no\n"
		   "hook_timeout: 2s\n", 0644);
	write_file("plugins.d/Z_extra.yaml", "module: smtp\n", 0644);
	write_file("plugins.d/9.yaml", "module: maildir\n", 0640);
	/* ignored: not [0-9A-Za-z._-]+\.yaml */
	write_file("plugins.d/50-smtp.yaml.dpkg-old", "bad: [", 0644);
	write_file("plugins.d/50-smtp.yaml~", "bad: [", 0644);
	write_file("plugins.d/60-x.yaml.rpmnew", "bad: [", 0644);
	write_file("plugins.d/70-x.yml", "bad: [", 0644);
	write_file("plugins.d/70 space.yaml", "bad: [", 0644);
	write_file("plugins.d/70+plus.yaml", "bad: [", 0644);
	write_file("plugins.d/.yaml", "bad: [", 0644);
	write_file("other/99-last.yaml", "module: relay\n", 0644);
	ck_assert_msg(load("include:\n  - plugins.d/*.yaml\n"
			   "  - ./*.yaml\n"
			      "  - ./other/*.yaml\n"
			      "  - plugins.d/50-smtp.yaml\n"
			      "  - nothing/*.yaml\n", &cfg, &err) == 0,
		      "%s", err);
	ck_assert_uint_eq(cfg->inst_count, 6);
	/* bytewise order: digits before upper case */
	ck_assert_str_eq(cfg->insts[0].name, "10-ratelimit");
	ck_assert_str_eq(cfg->insts[0].module, "ratelimit");
	ck_assert(cfg->insts[0].enabled);
	ck_assert_uint_eq(cfg->insts[0].hook_timeout_ms, 30000);
	ck_assert_str_eq(cfg->insts[1].name, "r1");
	ck_assert(!cfg->insts[1].enabled);
	ck_assert_uint_eq(cfg->insts[1].hook_timeout_ms, 2000);
	ck_assert_str_eq(cfg->insts[2].name, "50-smtp");
	ck_assert_str_eq(cfg->insts[3].name, "9");
	ck_assert_str_eq(cfg->insts[4].name, "Z_extra");
	ck_assert_str_eq(cfg->insts[5].name, "99-last");
	snprintf(want, sizeof(want), "%s/other/99-last.yaml", tmpdir);
	ck_assert_str_eq(cfg->insts[5].file, want);
	ck_assert_ptr_nonnull(cfg->insts[5].root);
	ck_assert_int_eq(cfg->insts[5].root->type, SC_YMAP);
	sc_main_config_free(&cfg);
}
END_TEST

START_TEST(test_include_empty_file)
{
	struct sc_main_config *cfg;
	char *err = NULL;

	write_file("plugins.d/10-a.yaml", "# only a comment\n", 0644);
	ck_assert_int_eq(load("include: plugins.d/*.yaml\n", &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/plugins.d/10-a.yaml:1:1: "
			 "missing required key 'module'");
	free(err);
}
END_TEST

START_TEST(test_include_duplicate_name)
{
	struct sc_main_config *cfg;
	char *err = NULL;

	write_file("plugins.d/10-a.yaml", "module: smtp\nname: mx\n", 0644);
	write_file("plugins.d/20-b.yaml", "module: smtp\nname: mx\n", 0644);
	ck_assert_int_eq(load("include: plugins.d/*.yaml\n", &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/plugins.d/20-b.yaml:2:7: "
			 "instance name 'mx' is already used by "
			 "T/plugins.d/10-a.yaml");
	free(err);

	/* the same stem from two directories */
	rm_rf(tmpdir);
	ck_assert_int_eq(mkdir(tmpdir, 0700), 0);
	write_file("a/50-smtp.yaml", "module: smtp\n", 0644);
	write_file("b/50-smtp.yaml", "module: smtp\n", 0644);
	ck_assert_int_eq(load("include: [a/*.yaml, b/*.yaml]\n", &cfg, &err),
			 -1);
	ck_assert_str_eq(strip_tmp(err), "T/b/50-smtp.yaml: instance name "
			 "'50-smtp' is already used by T/a/50-smtp.yaml; set "
			 "'name:' to tell them apart");
	free(err);
}
END_TEST

START_TEST(test_include_explicit_bad_name)
{
	struct sc_main_config *cfg;
	char *err = NULL;

	write_file("extra.yml", "module: smtp\n", 0644);
	ck_assert_int_eq(load("include: extra.yml\n", &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/satchel.yaml:1:10: include: "
			 "T/extra.yml: only files named [0-9A-Za-z._-]+.yaml "
			 "are read");
	free(err);
}
END_TEST

START_TEST(test_file_permissions)
{
	struct sc_main_config *cfg;
	char *err = NULL, path[512];

	write_file("plugins.d/50-smtp.yaml", "module: smtp\n", 0664);
	ck_assert_int_eq(load("include: plugins.d/*.yaml\n", &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/plugins.d/50-smtp.yaml: writable "
			 "by group or others; a config file must not be (fix: "
			 "chmod go-w T/plugins.d/50-smtp.yaml)");
	free(err);

	write_file("plugins.d/50-smtp.yaml", "module: smtp\n", 0646);
	ck_assert_int_eq(load("include: plugins.d/*.yaml\n", &cfg, &err), -1);
	free(err);

	/* the main config itself */
	write_file("plugins.d/50-smtp.yaml", "module: smtp\n", 0600);
	write_file("satchel.yaml", "hostname: x.test\n", 0666);
	snprintf(path, sizeof(path), "%s/satchel.yaml", tmpdir);
	ck_assert_int_eq(sc_main_config_load(path, &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/satchel.yaml: writable by group "
			 "or others; a config file must not be (fix: chmod "
			 "go-w T/satchel.yaml)");
	free(err);

	/* owned by someone else: only testable as root */
	if (geteuid() == 0) {
		write_file("satchel.yaml", "hostname: x.test\n", 0644);
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(sc_main_config_load(path, &cfg, &err), -1);
		ck_assert_str_eq(strip_tmp(err), "T/satchel.yaml: owned by "
				 "uid 65534; a config file must be owned by "
				 "root or uid 0 (fix: chown root "
				 "T/satchel.yaml)");
		free(err);
	}
}
END_TEST

START_TEST(test_missing_and_odd_files)
{
	struct sc_main_config *cfg;
	char *err = NULL, path[512];

	snprintf(path, sizeof(path), "%s/nope.yaml", tmpdir);
	ck_assert_int_eq(sc_main_config_load(path, &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/nope.yaml: cannot open: No such "
			 "file or directory");
	free(err);

	/* a directory that matches the glob */
	snprintf(path, sizeof(path), "%s/plugins.d/10-dir.yaml", tmpdir);
	write_file("plugins.d/keep", "", 0644);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(load("include: plugins.d/*.yaml\n", &cfg, &err), -1);
	ck_assert_str_eq(strip_tmp(err), "T/plugins.d/10-dir.yaml: not a "
			 "regular file");
	free(err);
}
END_TEST

START_TEST(test_relative_config_path)
{
	struct sc_main_config *cfg;
	char *err = NULL, cwd[512], want[600];

	write_file("conf/satchel.yaml", "hostname: x.test\n"
		   "include: plugins.d/*.yaml\n", 0644);
	write_file("conf/plugins.d/10-a.yaml", "module: a\n", 0644);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmpdir), 0);
	ck_assert_int_eq(sc_main_config_load("./conf/satchel.yaml", &cfg,
					     &err), 0);
	ck_assert_int_eq(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/conf/satchel.yaml", tmpdir);
	ck_assert_str_eq(cfg->file, want);
	snprintf(want, sizeof(want), "%s/conf/plugins.d/10-a.yaml", tmpdir);
	ck_assert_str_eq(cfg->insts[0].file, want);
	sc_main_config_free(&cfg);
}
END_TEST

/* The shipped conf/satchel.yaml and plugins.d/ must load and every file
 * must name a module; the module keys are checked by `satcheld -t`. */
START_TEST(test_shipped_config)
{
	const char *srcdir = getenv("SATCHEL_SRCDIR");
	struct sc_main_config *cfg;
	char *err = NULL, cmd[1024], path[600];
	size_t i;

	if (srcdir == NULL)
		srcdir = SC_TEST_SRCDIR;
	snprintf(cmd, sizeof(cmd), "cp '%s/conf/satchel.yaml' '%s/' && "
		 "mkdir '%s/plugins.d' && cp '%s'/plugins.d/*.yaml "
		 "'%s/plugins.d/' && chmod -R go-w '%s'", srcdir, tmpdir,
		 tmpdir, srcdir, tmpdir, tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/satchel.yaml", tmpdir);
	ck_assert_msg(sc_main_config_load(path, &cfg, &err) == 0, "%s", err);
	ck_assert_uint_eq(cfg->inst_count, 10);
	for (i = 0; i < cfg->inst_count; i++)
		ck_assert_ptr_nonnull(cfg->insts[i].module);
	ck_assert_str_eq(cfg->insts[0].module, "ratelimit");
	ck_assert_str_eq(cfg->insts[3].module, "auth_pam");
	ck_assert(!cfg->insts[3].enabled);
	ck_assert_str_eq(cfg->insts[8].module, "relay");
	ck_assert_str_eq(cfg->insts[9].module, "web");
	ck_assert(!cfg->insts[9].enabled);
	sc_main_config_free(&cfg);
}
END_TEST

/* Random damage to a valid config never crashes the loader or leaks, and
 * every error names the file it is about. */
START_TEST(test_fuzz_mutations)
{
	static const char base[] =
		"hostname: mail.example.test\n"
		"log: {level: debug}\n"
		"dns: {servers: [127.0.0.1:5353]}\n"
		"domains:\n  example.test: {routing: local}\n"
		"  b.test: backup\n"
		"include: [plugins.d/*.yaml]\n";
	static const char plugin[] =
		"module: test\nreq: x\nlisten:\n"
		"  - {address: \"*:25\", mode: mx, tls: none}\n"
		"  - address: 127.0.0.1:587\n    tls: implicit\n"
		"timeouts: {command: 5m, inner: {deep: no}}\n"
		"routes: {a.test: b}\nnets: [10.0.0.0/8]\n"
		"retry: [1m, 2h]\nrate: 5/1m\nsize: 1M\n";
	static const char junk[] = "{}[]:,-'\"&*!|>%@#\n \t?\\\x01\xff";
	char text[sizeof(plugin) + 8], *err;
	unsigned seed = 4242;
	struct sc_main_config *cfg;
	struct t_conf c;
	size_t i, j, n, len;

	for (i = 0; i < 1500; i++) {
		bool main_file = i % 3 == 0;
		const char *src = main_file ? base : plugin;

		len = strlen(src);
		memcpy(text, src, len + 1);
		n = 1 + (size_t)rand_r(&seed) % 4;
		for (j = 0; j < n; j++) {
			size_t at = (size_t)rand_r(&seed) % len;

			text[at] = junk[(size_t)rand_r(&seed) %
					(sizeof(junk) - 1)];
		}
		if (main_file) {
			write_file("plugins.d/50-test.yaml", plugin, 0644);
			err = NULL;
			if (load(text, &cfg, &err) == 0) {
				sc_main_config_free(&cfg);
			} else {
				ck_assert_ptr_nonnull(err);
				ck_assert_msg(strncmp(err, tmpdir,
						      strlen(tmpdir)) == 0,
					      "%s", err);
				free(err);
			}
			continue;
		}
		err = NULL;
		if (parse_plugin(text, &c, &err) == 0) {
			sc_config_free_keys(test_keys, &c);
		} else {
			ck_assert_ptr_nonnull(err);
			ck_assert_msg(strncmp(err, tmpdir, strlen(tmpdir)) == 0,
				      "%s", err);
			free(err);
		}
	}
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_parse_size, 0,
			    sizeof(size_cases) / sizeof(size_cases[0]));
	tcase_add_loop_test(tc, test_parse_duration, 0,
			    sizeof(dur_cases) / sizeof(dur_cases[0]));
	tcase_add_loop_test(tc, test_parse_rate, 0,
			    sizeof(rate_cases) / sizeof(rate_cases[0]));
	tcase_add_loop_test(tc, test_parse_sockaddr, 0,
			    sizeof(sa_cases) / sizeof(sa_cases[0]));
	tcase_add_loop_test(tc, test_cidr_parse, 0,
			    sizeof(cidr_cases) / sizeof(cidr_cases[0]));
	tcase_add_loop_test(tc, test_cidr_match, 0,
			    sizeof(match_cases) / sizeof(match_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_keys_defaults);
	tcase_add_test(tc, test_keys_values);
	tcase_add_loop_test(tc, test_keys_errors, 0,
			    sizeof(key_errors) / sizeof(key_errors[0]));
	tcase_add_test(tc, test_keys_none);
	suite_add_tcase(s, tc);

	tc = tcase_create("main");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_main_defaults);
	tcase_add_test(tc, test_main_default_domain);
	tcase_add_test(tc, test_main_values);
	tcase_add_loop_test(tc, test_main_errors, 0,
			    sizeof(main_errors) / sizeof(main_errors[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_include_order);
	tcase_add_test(tc, test_include_empty_file);
	tcase_add_test(tc, test_include_duplicate_name);
	tcase_add_test(tc, test_include_explicit_bad_name);
	tcase_add_test(tc, test_file_permissions);
	tcase_add_test(tc, test_missing_and_odd_files);
	tcase_add_test(tc, test_relative_config_path);
	tcase_add_test(tc, test_shipped_config);
	tcase_add_test(tc, test_fuzz_mutations);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
