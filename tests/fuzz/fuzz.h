/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz.h - what every fuzz target shares: the libFuzzer entry
 * points and FUZZ_CHECK, the target's own assertions (a failed one aborts,
 * which libFuzzer and the corpus replay both report as a crash).
 *
 * Each target is built twice: linked with libFuzzer (`make fuzz`, clang,
 * --enable-fuzzing) and with replay.c's main(), which runs it over its
 * corpus (tests/fuzz/corpus/TARGET/) as a `make check` test with any
 * compiler - so every input that once crashed stays a regression test.
 */
#ifndef SATCHEL_FUZZ_H
#define SATCHEL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, once before the first input (libFuzzer's name for it). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: fuzz check failed: %s: ",	\
			__FILE__, __LINE__, #cond);			\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

/* fuzz_strndup - the input as a NUL-terminated string (at most max
 * bytes); NULs inside it stay, so C string code sees a prefix. */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size, size_t max)
{
	char *s;

	if (size > max)
		size = max;
	s = malloc(size + 1);
	if (s == NULL)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
