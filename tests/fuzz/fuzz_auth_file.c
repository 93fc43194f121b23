/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_auth_file.c - the auth_file module's password file
 * parser (modules/auth_file/, linked as it is) on the fake core of
 * shim.h: the input is the file; the module loads it at start and again
 * from its reload timer (which the shim fires, with the file changed), and
 * the ACCOUNT hook looks up every address the file seems to name, in the
 * case the file has and in upper case. No AUTH: crypt() of a fuzzed hash
 * could take minutes ($6$rounds=...), which is the file owner's choice.
 *
 * Checks: a looked-up account is found only when its line has the shape
 * user@domain:{SCHEME}$hash or user@domain:$hash (no false positives from
 * a line that is not one), lookups ignore case, nothing leaks.
 */
#include "shim.h"

#include <ctype.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct sc_module sc_module_auth_file;

static char path[64];
static struct sc_instance *inst;

static void
cleanup(void)
{
	if (inst != NULL)
		shim_instance_free(inst);
	unlink(path);
}

static void
write_file(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) ||
	    fclose(f) != 0)
		abort();
}

/* looks_valid - could line (len bytes) be an entry for addr? A coarse
 * superset of what the module accepts: "addr:" then '{' or '$'. */
static bool
looks_valid(const char *line, size_t len, const char *addr)
{
	size_t al = strlen(addr);

	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	return len > al + 1 && strncasecmp(line, addr, al) == 0 &&
	       line[al] == ':' && (line[al + 1] == '{' || line[al + 1] == '$');
}

static enum sc_result
account(const char *addr)
{
	struct sc_account_request req;
	char local[256], *at;

	snprintf(local, sizeof(local), "%s", addr);
	at = strchr(local, '@');
	if (at != NULL)
		*at = '\0';
	req.address = addr;
	req.local_part = local;
	req.domain = at != NULL ? at + 1 : "";
	return shim_run_chain(SC_HOOK_ACCOUNT, &req);
}

/* check_lines - every "addr:" at a line start: found only if some line
 * for it looks valid; found in upper case too */
static void
check_lines(const uint8_t *data, size_t size)
{
	size_t pos = 0, n = 0;

	while (pos < size && n < 64) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t ll = (nl ? (size_t)(nl - data) : size) - pos;
		const char *line = (const char *)data + pos;
		const char *colon = memchr(line, ':', ll);
		char addr[256], upper[256];
		bool any_valid = false;
		enum sc_result r;
		size_t p2 = 0;

		pos += ll + 1;
		if (colon == NULL || colon == line ||
		    (size_t)(colon - line) >= sizeof(addr) ||
		    memchr(line, '\0', (size_t)(colon - line)) != NULL)
			continue;
		memcpy(addr, line, (size_t)(colon - line));
		addr[colon - line] = '\0';
		if (addr[0] == ' ' || addr[0] == '\t')
			continue;
		n++;
		/* any line of the file may be the one for addr */
		while (p2 < size) {
			const uint8_t *nl2 = memchr(data + p2, '\n', size - p2);
			size_t l2 = (nl2 ? (size_t)(nl2 - data) : size) - p2;

			if (looks_valid((const char *)data + p2, l2, addr))
				any_valid = true;
			p2 += l2 + 1;
		}
		r = account(addr);
		FUZZ_CHECK(r == SC_OK || r == SC_CONT, "ACCOUNT gave %s",
			   sc_result_name(r));
		FUZZ_CHECK(r != SC_OK || any_valid, "%s found, but no line "
			   "of the file is an entry for it", addr);
		for (size_t i = 0; i <= strlen(addr); i++)
			upper[i] = (char)toupper((unsigned char)addr[i]);
		FUZZ_CHECK(account(upper) == r, "lookup of %s depends on "
			   "case", addr);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/satchel-fuzz-passwd.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	close(fd);
	atexit(cleanup);
	shim_init();
	shim_script_hooks(false);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char conf[128];
	struct stat st;

	shim_begin(NULL, 0);
	write_file(data, size);
	/* start: the first load, synchronous */
	snprintf(conf, sizeof(conf), "path: %s\n", path);
	inst = shim_instance(&sc_module_auth_file, conf);
	check_lines(data, size);
	/* the reload timer after the file changed: a pool job reads it */
	write_file(data, size / 2);
	if (stat(path, &st) == 0) {
		struct timespec ts[2] = { st.st_atim, st.st_mtim };

		ts[1].tv_sec += 1;	/* a change the stamp must notice */
		utimensat(AT_FDCWD, path, ts, 0);
	}
	shim_run(true);
	check_lines(data, size / 2);
	shim_instance_free(inst);
	inst = NULL;
	shim_end();
	return 0;
}
