/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_config.c - the YAML config loader (core/config.c,
 * core/config_keys.c): a module's plugins.d keys parsed against a schema
 * with every key type (nested objects and lists of maps included), and
 * the main satchel.yaml with two plugins.d files it may include.
 *
 * Input: up to three files separated by a line "#8<" - the first is
 * parsed against the schema and then loaded as satchel.yaml (the others
 * are plugins.d/a.yaml and b.yaml). Checks: an error always names
 * FILE:LINE:COL (the contract's config error format) and nothing leaks.
 */
#include "core.h"
#include "fuzz.h"

#include <ctype.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fz_item {
	char *name;
	uint64_t weight;
	struct sc_str_list tags;
};

struct fz_obj {
	uint64_t timeout;
	char *note;
	struct fz_obj_inner { bool on; struct sc_rate rate; } inner;
};

struct fz_conf {
	char *str;
	char *path;
	bool flag;
	uint64_t count;
	uint64_t size;
	uint64_t duration;
	struct sc_rate rate;
	int mode;
	struct sc_sockaddr address;
	struct sc_cidr_list networks;
	struct sc_str_list names;
	struct sc_u64_list retry;
	struct sc_str_map routes;
	struct fz_obj obj;
	struct sc_list items;
};

static const struct sc_config_key item_keys[] = {
	{ "name", SC_KEY_STR, offsetof(struct fz_item, name), NULL,
	  SC_KEY_REQUIRED, "", NULL, NULL, 0 },
	{ "weight", SC_KEY_UINT, offsetof(struct fz_item, weight), "1", 0,
	  "", NULL, NULL, 0 },
	{ "tags", SC_KEY_STR_LIST, offsetof(struct fz_item, tags), "[a, b]",
	  0, "", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};
static const struct sc_config_key inner_keys[] = {
	{ "on", SC_KEY_BOOL, offsetof(struct fz_obj_inner, on), "yes", 0, "",
	  NULL, NULL, 0 },
	{ "rate", SC_KEY_RATE, offsetof(struct fz_obj_inner, rate), "10/1m",
	  0, "", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};
static const struct sc_config_key obj_keys[] = {
	{ "timeout", SC_KEY_DURATION, offsetof(struct fz_obj, timeout), "5m",
	  0, "", NULL, NULL, 0 },
	{ "note", SC_KEY_STR, offsetof(struct fz_obj, note), NULL, 0, "",
	  NULL, NULL, 0 },
	{ "inner", SC_KEY_OBJECT, offsetof(struct fz_obj, inner), NULL, 0, "",
	  NULL, inner_keys, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};
static const struct sc_config_key fz_keys[] = {
	{ "str", SC_KEY_STR, offsetof(struct fz_conf, str), "text", 0, "",
	  NULL, NULL, 0 },
	{ "path", SC_KEY_PATH, offsetof(struct fz_conf, path), "rel/file", 0,
	  "", NULL, NULL, 0 },
	{ "flag", SC_KEY_BOOL, offsetof(struct fz_conf, flag), "false", 0, "",
	  NULL, NULL, 0 },
	{ "count", SC_KEY_UINT, offsetof(struct fz_conf, count), "100", 0, "",
	  NULL, NULL, 0 },
	{ "size", SC_KEY_SIZE, offsetof(struct fz_conf, size), "50M", 0, "",
	  NULL, NULL, 0 },
	{ "duration", SC_KEY_DURATION, offsetof(struct fz_conf, duration),
	  "30s", 0, "", NULL, NULL, 0 },
	{ "rate", SC_KEY_RATE, offsetof(struct fz_conf, rate), "60/1m", 0, "",
	  NULL, NULL, 0 },
	{ "mode", SC_KEY_ENUM, offsetof(struct fz_conf, mode), "mx", 0, "",
	  "mx|submission|other", NULL, 0 },
	{ "address", SC_KEY_ADDRESS, offsetof(struct fz_conf, address),
	  "127.0.0.1:25", 0, "", NULL, NULL, 0 },
	{ "networks", SC_KEY_CIDR_LIST, offsetof(struct fz_conf, networks),
	  "[127.0.0.0/8, ::1]", 0, "", NULL, NULL, 0 },
	{ "names", SC_KEY_STR_LIST, offsetof(struct fz_conf, names), "[]", 0,
	  "", NULL, NULL, 0 },
	{ "retry", SC_KEY_DURATION_LIST, offsetof(struct fz_conf, retry),
	  "[5m, 10m, 1h]", 0, "", NULL, NULL, 0 },
	{ "routes", SC_KEY_STR_MAP, offsetof(struct fz_conf, routes), NULL, 0,
	  "", NULL, NULL, 0 },
	{ "obj", SC_KEY_OBJECT, offsetof(struct fz_conf, obj), NULL, 0, "",
	  NULL, obj_keys, 0 },
	{ "items", SC_KEY_LIST, offsetof(struct fz_conf, items), NULL, 0, "",
	  NULL, item_keys, sizeof(struct fz_item) },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

static char dir[64];

/* check_error - "FILE:LINE:COL: message" for one of our files */
static void
check_error(const char *error, bool need_position)
{
	const char *p;

	FUZZ_CHECK(error != NULL, "failure without an error");
	p = strstr(error, ".yaml:");
	FUZZ_CHECK(p != NULL, "error names no file: %s", error);
	if (!need_position)
		return;
	p += 6;
	FUZZ_CHECK(isdigit((unsigned char)p[0]) && p[0] != '0',
		   "error without a line: %s", error);
	while (isdigit((unsigned char)*p))
		p++;
	FUZZ_CHECK(*p == ':' && isdigit((unsigned char)p[1]) && p[1] != '0',
		   "error without a column: %s", error);
}

static void
write_file(const char *name, const char *data, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) ||
	    fclose(f) != 0)
		abort();
}

/* the schema against a fuzzed document */
static void
fuzz_keys(const char *text)
{
	struct sc_ydoc *doc = NULL;
	struct fz_conf conf;
	char *error = NULL;

	if (sc_yaml_parse_string(text, "fuzz.yaml", &doc, &error) != 0) {
		check_error(error, false);
		free(error);
		return;
	}
	if (doc == NULL)
		return;
	memset(&conf, 0, sizeof(conf));
	if (doc->root != NULL && doc->root->type == SC_YMAP) {
		if (sc_config_parse_map(doc->root, NULL, "/base", fz_keys, NULL,
					false, &conf, &error) != 0) {
			check_error(error, true);
			free(error);
		} else {
			FUZZ_CHECK(conf.str != NULL && conf.path != NULL,
				   "defaults not applied");
			FUZZ_CHECK(conf.path[0] == '/', "path %s not made "
				   "absolute", conf.path);
			FUZZ_CHECK(conf.mode >= 0 && conf.mode <= 2,
				   "enum index %d", conf.mode);
			for (size_t i = 0; i < conf.items.n; i++)
				FUZZ_CHECK(((struct fz_item *)conf.items.v)[i]
					   .name != NULL, "required key "
					   "missing in list item %zu", i);
		}
		sc_config_free_keys(fz_keys, &conf);
	}
	sc_ydoc_free(doc);
}

static void
cleanup(void)
{
	static const char *const names[] = { "plugins.d/a.yaml",
		"plugins.d/b.yaml", "satchel.yaml" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/plugins.d", dir);
	rmdir(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[128];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/satchel-fuzz-config.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/plugins.d", dir);
	if (mkdir(path, 0755) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n#8<\n";
	char *text = fuzz_strndup(data, size, 65536), *seg[3] = { NULL };
	char *p = text, path[128];
	struct sc_main_config *cfg = NULL;
	char *error = NULL;
	int n = 0;

	/* the files: text up to a NUL, cut at the separators */
	while (n < 3) {
		char *s = strstr(p, sep);

		seg[n++] = p;
		if (s == NULL)
			break;
		*s = '\0';
		p = s + sizeof(sep) - 1;
	}
	fuzz_keys(seg[0]);

	/* includes stay inside the test directory */
	if (strstr(seg[0], "include") != NULL && strchr(seg[0], '/') != NULL) {
		free(text);
		return 0;
	}
	write_file("satchel.yaml", seg[0], strlen(seg[0]));
	write_file("plugins.d/a.yaml", seg[1] ? seg[1] : "", seg[1] ?
		   strlen(seg[1]) : 0);
	write_file("plugins.d/b.yaml", seg[2] ? seg[2] : "", seg[2] ?
		   strlen(seg[2]) : 0);
	snprintf(path, sizeof(path), "%s/satchel.yaml", dir);
	if (sc_main_config_load(path, &cfg, &error) == 0) {
		FUZZ_CHECK(cfg != NULL && error == NULL, "no config, no error");
		FUZZ_CHECK(cfg->hostname != NULL && cfg->state_dir != NULL,
			   "defaults not applied");
		sc_main_config_free(&cfg);
	} else {
		FUZZ_CHECK(cfg == NULL, "config with an error");
		check_error(error, false);
		free(error);
	}
	free(text);
	return 0;
}
