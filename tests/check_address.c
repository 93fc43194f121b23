/* SPDX-License-Identifier: MIT */
/*
 * tests/check_address.c - unit tests for core/address.c: RFC 5321 path
 * syntax with SMTPUTF8, the relay tricks and formatting. Table-driven
 * (Postfix TEST_DATA style); single-threaded.
 */
#include "core.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A local part of n 'a's, and one of 64 'a's plus extra. */
#define A16 "aaaaaaaaaaaaaaaa"
#define A64 A16 A16 A16 A16
#define L63 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const struct {
	const char *in;
	const char *local;	/* NULL: must be refused */
	const char *domain;
	bool quoted;
	bool trick;
	const char *formatted;	/* NULL: same as in */
	const char *error;	/* for refusals: the exact error */
} cases[] = {
	/* plain addresses */
	{ "alice@example.test", "alice", "example.test", false, false, NULL,
	  NULL },
	{ "Alice.Smith@Example.TEST", "Alice.Smith", "example.test", false,
	  false, "Alice.Smith@example.test", NULL },
	{ "a+tag@example.test", "a+tag", "example.test", false, false, NULL,
	  NULL },
	{ "x!#$&'*+-/=?^_`{|}~y@example.test", "x!#$&'*+-/=?^_`{|}~y",
	  "example.test", false, true, NULL, NULL },
	{ "", "", "", false, false, NULL, NULL },
	{ "user@example.test.", "user", "example.test", false, false,
	  "user@example.test", NULL },
	{ "user@localhost", "user", "localhost", false, false, NULL, NULL },
	{ "user@a-b.c-d.test", "user", "a-b.c-d.test", false, false, NULL,
	  NULL },
	{ "user@123.test", "user", "123.test", false, false, NULL, NULL },
	/* address literals */
	{ "user@[192.0.2.1]", "user", "[192.0.2.1]", false, false, NULL,
	  NULL },
	{ "user@[IPv6:2001:DB8::1]", "user", "[IPv6:2001:db8::1]", false,
	  false, "user@[IPv6:2001:db8::1]", NULL },
	{ "user@[ipv6:::1]", "user", "[IPv6:::1]", false, false,
	  "user@[IPv6:::1]", NULL },
	{ "user@[300.1.1.1]", NULL, NULL, false, false, NULL,
	  "unsupported address literal (use [1.2.3.4] or [IPv6:...])" },
	{ "user@[x-tag:foo]", NULL, NULL, false, false, NULL,
	  "unsupported address literal (use [1.2.3.4] or [IPv6:...])" },
	{ "user@[192.0.2.1", NULL, NULL, false, false, NULL,
	  "malformed address literal" },
	/* quoted local parts */
	{ "\"john doe\"@example.test", "john doe", "example.test", true,
	  false, NULL, NULL },
	{ "\"a\\\"b\"@example.test", "a\"b", "example.test", true, false,
	  NULL, NULL },
	{ "\"plain\"@example.test", "plain", "example.test", true, false,
	  "plain@example.test", NULL },
	{ "\"\"@example.test", "", "example.test", true, false, NULL, NULL },
	{ "\"a..b\"@example.test", "a..b", "example.test", true, false,
	  NULL, NULL },
	{ "\"unterminated@example.test", NULL, NULL, false, false, NULL,
	  "unterminated quoted local part" },
	{ "\"a\"b@example.test", NULL, NULL, false, false, NULL,
	  "expected '@' after the quoted local part" },
	{ "\"a\x01\"@example.test", NULL, NULL, false, false, NULL,
	  "control character in local part" },
	{ "\"a\\\x01\"@example.test", NULL, NULL, false, false, NULL,
	  "bad escape in quoted local part" },
	/* relay tricks: syntactically valid, flagged */
	{ "user%remote.test@example.test", "user%remote.test",
	  "example.test", false, true, NULL, NULL },
	{ "remote.test!user@example.test", "remote.test!user",
	  "example.test", false, true, NULL, NULL },
	{ "\"user@remote.test\"@example.test", "user@remote.test",
	  "example.test", true, true, NULL, NULL },
	{ "\"user%remote.test\"@example.test", "user%remote.test",
	  "example.test", true, true, "user%remote.test@example.test",
	  NULL },
	{ "\"@remote.test:user@x.test\"@example.test",
	  "@remote.test:user@x.test", "example.test", true, true, NULL,
	  NULL },
	{ "@a.test:user@example.test", NULL, NULL, false, false, NULL,
	  "source routes (<@host:user@domain>) are not accepted" },
	{ "@a.test,@b.test:user@example.test", NULL, NULL, false, false,
	  NULL, "source routes (<@host:user@domain>) are not accepted" },
	/* SMTPUTF8 */
	{ "j\xc3\xb6rg@b\xc3\xbc" "cher.test", "j\xc3\xb6rg",
	  "b\xc3\xbc" "cher.test", false, false, NULL, NULL },
	{ "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test",
	  "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.test", false,
	  false, NULL, NULL },
	{ "j\xc3@example.test", NULL, NULL, false, false, NULL,
	  "invalid UTF-8 in local part" },
	{ "\xc0\xafx@example.test", NULL, NULL, false, false, NULL,
	  "invalid UTF-8 in local part" },
	{ "\xed\xa0\x80@example.test", NULL, NULL, false, false, NULL,
	  "invalid UTF-8 in local part" },
	{ "user@b\xff.test", NULL, NULL, false, false, NULL,
	  "invalid UTF-8 in domain" },
	/* bad syntax */
	{ "alice", NULL, NULL, false, false, NULL, "missing @domain" },
	{ "alice@", NULL, NULL, false, false, NULL,
	  "missing domain after '@'" },
	{ "@example.test", NULL, NULL, false, false, NULL,
	  "source routes (<@host:user@domain>) are not accepted" },
	{ ".alice@example.test", NULL, NULL, false, false, NULL,
	  "misplaced '.' in local part" },
	{ "alice.@example.test", NULL, NULL, false, false, NULL,
	  "misplaced '.' in local part" },
	{ "al..ice@example.test", NULL, NULL, false, false, NULL,
	  "misplaced '.' in local part" },
	{ "al ice@example.test", NULL, NULL, false, false, NULL,
	  "invalid character in local part" },
	{ "al(ice)@example.test", NULL, NULL, false, false, NULL,
	  "invalid character in local part" },
	{ "al\"ice@example.test", NULL, NULL, false, false, NULL,
	  "misplaced '\"' in local part" },
	{ "a@b@example.test", NULL, NULL, false, false, NULL,
	  "invalid character in domain" },
	{ "<alice@example.test>", NULL, NULL, false, false, NULL,
	  "invalid character in local part" },
	{ "alice@example.test>", NULL, NULL, false, false, NULL,
	  "invalid character in domain" },
	{ "alice@exa mple.test", NULL, NULL, false, false, NULL,
	  "invalid character in domain" },
	{ "alice@example.test\r\n", NULL, NULL, false, false, NULL,
	  "invalid character in domain" },
	{ "alice@example_x.test", NULL, NULL, false, false, NULL,
	  "invalid character in domain" },
	{ "alice@-example.test", NULL, NULL, false, false, NULL,
	  "malformed domain" },
	{ "alice@example-.test", NULL, NULL, false, false, NULL,
	  "malformed domain" },
	{ "alice@example..test", NULL, NULL, false, false, NULL,
	  "malformed domain" },
	{ "alice@.example.test", NULL, NULL, false, false, NULL,
	  "malformed domain" },
	{ "alice@example.test..", NULL, NULL, false, false, NULL,
	  "malformed domain" },
	{ "alice@.", NULL, NULL, false, false, NULL, "malformed domain" },
	/* lengths */
	{ A64 "@example.test", A64, "example.test", false, false, NULL,
	  NULL },
	{ A64 "a@example.test", NULL, NULL, false, false, NULL,
	  "local part longer than 64 octets" },
	{ "\"" A64 "\"@example.test", NULL, NULL, false, false, NULL,
	  "local part longer than 64 octets" },
	{ "\"" A16 A16 A16 "aaaaaaaaaaaaaa\"@example.test",
	  A16 A16 A16 "aaaaaaaaaaaaaa", "example.test", true, false,
	  A16 A16 A16 "aaaaaaaaaaaaaa@example.test", NULL },
	{ "u@" L63 ".test", "u", L63 ".test", false, false, NULL, NULL },
	{ "u@" L63 "b.test", NULL, NULL, false, false, NULL,
	  "domain label longer than 63 octets" },
	{ "u@" L63 "." L63 "." L63 "." L63 ".test", NULL, NULL, false, false,
	  NULL, "domain longer than 255 octets" },
	{ "u@" L63 "." L63 "." L63 "." L63,
	  "u", L63 "." L63 "." L63 "." L63, false, false, NULL, NULL },
};

START_TEST(test_parse)
{
	struct sc_address a;
	const char *err = NULL;
	char buf[400];
	int ret;

	memset(&a, 'x', sizeof(a));
	ret = sc_address_parse(cases[_i].in, &a, &err);
	if (cases[_i].local == NULL) {
		ck_assert_msg(ret == -1, "'%s' accepted", cases[_i].in);
		ck_assert_ptr_nonnull(err);
		ck_assert_str_eq(err, cases[_i].error);
		return;
	}
	ck_assert_msg(ret == 0, "'%s' refused: %s", cases[_i].in, err);
	ck_assert_str_eq(a.local, cases[_i].local);
	ck_assert_str_eq(a.domain, cases[_i].domain);
	ck_assert_int_eq(a.quoted, cases[_i].quoted);
	ck_assert_int_eq(sc_address_is_routing_trick(&a), cases[_i].trick);
	sc_address_format(&a, buf, sizeof(buf));
	ck_assert_str_eq(buf, cases[_i].formatted != NULL ?
			 cases[_i].formatted : cases[_i].in);
}
END_TEST

START_TEST(test_format_truncates)
{
	struct sc_address a;
	const char *err;
	char buf[8];
	size_t len;

	ck_assert_int_eq(sc_address_parse("\"a b\\\\c\"@example.test", &a,
					  &err), 0);
	for (len = 1; len <= sizeof(buf); len++) {
		memset(buf, 'Z', sizeof(buf));
		ck_assert_ptr_eq(sc_address_format(&a, buf, len), buf);
		ck_assert_uint_lt(strlen(buf), len);
	}
	ck_assert_ptr_eq(sc_address_format(&a, buf, 0), buf);
}
END_TEST

START_TEST(test_null_is_not_trick)
{
	struct sc_address a;
	const char *err;

	ck_assert_int_eq(sc_address_parse("", &a, &err), 0);
	ck_assert(!sc_address_is_routing_trick(&a));
	ck_assert_int_eq(sc_address_parse(NULL, &a, &err), -1);
}
END_TEST

/* Random bytes must never crash the parser or overrun the struct. */
START_TEST(test_fuzz)
{
	struct sc_address a;
	const char *err;
	char in[400], buf[400];
	unsigned seed = 12345;
	size_t i, j, len;

	for (i = 0; i < 20000; i++) {
		len = (size_t)(rand_r(&seed) % (sizeof(in) - 1));
		for (j = 0; j < len; j++) {
			int r = rand_r(&seed) % 8;

			in[j] = r == 0 ? '@' : r == 1 ? '"' : r == 2 ? '.' :
				(char)(rand_r(&seed) % 255 + 1);
		}
		in[len] = '\0';
		if (sc_address_parse(in, &a, &err) == 0) {
			ck_assert_uint_le(strlen(a.local), 64);
			ck_assert_uint_le(strlen(a.domain), 255);
			sc_address_format(&a, buf, sizeof(buf));
		}
	}
}
END_TEST

static Suite *
address_suite(void)
{
	Suite *s = suite_create("address");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse, 0,
			    sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_format_truncates);
	tcase_add_test(tc, test_null_is_not_trick);
	tcase_add_test(tc, test_fuzz);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(address_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
