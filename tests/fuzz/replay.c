/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/replay.c - main() for a fuzz target without libFuzzer: runs
 * LLVMFuzzerTestOneInput over every file of the target's corpus (or of the
 * files and directories given as arguments), in name order, in one
 * process like libFuzzer does. `make check` runs it for each target under
 * whatever compiler and sanitizers the build uses, so the corpus - the
 * seeds and every crash ever found - is a regression suite.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* asprintf */
#endif
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET (the corpus directory name) must be defined"
#endif

/* LLVMFuzzerInitialize is optional: weak, NULL when a target lacks it. */
#pragma weak LLVMFuzzerInitialize

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* run_file - one input; a crash ends the process (the name is printed
 * first, so the log says which file it was). */
static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (nb == NULL)
				abort();
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	/* a copy of exactly len bytes, so ASan sees reads past the end */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (exact == NULL)
			abort();
		if (len)
			memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	free(buf);
	return 0;
}

/* run_path - a file, or every regular file of a directory */
static int
run_path(const char *path, size_t *count)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			if (nn == NULL)
				abort();
			names = nn;
		}
		if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0)
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			if (run_file(names[i]) < 0)
				ret = -1;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int
main(int argc, char **argv)
{
	size_t count = 0;
	int ret = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_path(argv[i], &count) < 0)
				ret = 1;
	} else {
		const char *src = getenv("SATCHEL_SRCDIR");
		char *dir;

		if (asprintf(&dir, "%s/tests/fuzz/corpus/%s",
			     src != NULL ? src : ".", FUZZ_TARGET) < 0)
			abort();
		if (run_path(dir, &count) < 0)
			ret = 1;
		free(dir);
	}
	/* an empty corpus would make this a test that cannot fail */
	if (count == 0) {
		fprintf(stderr, "replay %s: no inputs found\n", FUZZ_TARGET);
		ret = 1;
	}
	printf("replay %s: %zu inputs%s\n", FUZZ_TARGET, count,
	       ret ? ", some unreadable" : " ran without a finding");
	return ret;
}
