/* SPDX-License-Identifier: MIT */
/*
 * check_alias - Check unit tests of the router's aliases file parser and
 * lookup (modules/router/alias.c). Single-threaded test program.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"

static struct alias_table *
parse_ok(const char *text)
{
	struct alias_table *t = NULL;
	char *err = NULL;

	ck_assert_msg(alias_parse("aliases", text, strlen(text), &t, &err) == 0,
		      "parse failed: %s", err ? err : "(null)");
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_null(err);
	return t;
}

START_TEST(test_empty)
{
	struct alias_table *t = parse_ok("");

	ck_assert_uint_eq(t->n, 0);
	ck_assert_ptr_null(alias_lookup(t, "a", "example.test", 1));
	alias_table_free(&t);
	ck_assert_ptr_null(t);
	t = parse_ok("# only a comment\n\n   \n\t# indented\n");
	ck_assert_uint_eq(t->n, 0);
	alias_table_free(&t);
	/* a NULL table looks nothing up */
	ck_assert_ptr_null(alias_lookup(NULL, "a", "b", 1));
}
END_TEST

START_TEST(test_basic)
{
	struct alias_table *t = parse_ok(
	    "# the team\n"
	    "info: alice, bob@example.test  # two targets\n"
	    "sales@Other.Test: carol@Remote.TEST\n"
	    "abuse:postmaster\n"
	    "last: x"		/* no final newline */
	);
	const struct alias_entry *e;

	ck_assert_uint_eq(t->n, 4);
	e = alias_lookup(t, "info", "example.test", 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_null(e->domain);
	ck_assert_uint_eq(e->target_count, 2);
	ck_assert_str_eq(e->targets[0], "alice");
	ck_assert_str_eq(e->targets[1], "bob@example.test");
	ck_assert_uint_eq(e->line, 2);
	/* domain-less aliases only with any_domain */
	ck_assert_ptr_null(alias_lookup(t, "info", "example.test", 0));
	/* case-insensitive */
	ck_assert_ptr_eq(alias_lookup(t, "INFO", "x.test", 1), e);
	e = alias_lookup(t, "sales", "other.test", 0);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->domain, "other.test");
	ck_assert_str_eq(e->targets[0], "carol@remote.test");
	ck_assert_ptr_nonnull(alias_lookup(t, "Sales", "OTHER.test", 1));
	ck_assert_ptr_null(alias_lookup(t, "sales", "example.test", 1));
	e = alias_lookup(t, "abuse", "a.test", 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->targets[0], "postmaster");
	e = alias_lookup(t, "last", "a.test", 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->targets[0], "x");
	ck_assert_ptr_null(alias_lookup(t, "nobody", "a.test", 1));
	alias_table_free(&t);
}
END_TEST

/* An entry for one domain wins over the domain-less one. */
START_TEST(test_specific_first)
{
	struct alias_table *t = parse_ok(
	    "info: generic\n"
	    "info@a.test: specific\n");
	const struct alias_entry *e;

	e = alias_lookup(t, "info", "a.test", 1);
	ck_assert_str_eq(e->targets[0], "specific");
	e = alias_lookup(t, "info", "b.test", 1);
	ck_assert_str_eq(e->targets[0], "generic");
	alias_table_free(&t);
}
END_TEST

START_TEST(test_crlf_and_hash)
{
	struct alias_table *t = parse_ok("a: b#c\r\nd: e # comment\r\n");

	ck_assert_str_eq(alias_lookup(t, "a", "x", 1)->targets[0], "b#c");
	ck_assert_str_eq(alias_lookup(t, "d", "x", 1)->targets[0], "e");
	alias_table_free(&t);
}
END_TEST

static const struct {
	const char *text;
	const char *error;
} bad[] = {
	{ "no colon here\n", "aliases:1: missing ':' after the alias" },
	{ "\n: x\n", "aliases:2: missing alias before ':'" },
	{ "a:\n", "aliases:1: alias without a target" },
	{ "a: , ,\n", "aliases:1: alias without a target" },
	{ "a: b c\n", "aliases:1: invalid character in address" },
	{ "a: |/bin/sh\n", "aliases:1: pipes and files are not supported" },
	{ "a: /etc/passwd\n", "aliases:1: pipes and files are not supported" },
	{ "a: b@c@d\n", "aliases:1: more than one @ in address" },
	{ "a: @d\n", "aliases:1: empty local part" },
	{ "a: b@\n", "aliases:1: empty domain" },
	{ "a b: c\n", "aliases:1: invalid character in address" },
	{ "a: x\nb: y\nA: z\n",
	  "aliases:3: duplicate alias A (first on line 1)" },
	{ "a@x.test: x\na@X.TEST: y\n",
	  "aliases:2: duplicate alias a@x.test (first on line 1)" },
	{ "a: x\0y\n", "aliases:0: NUL byte in file" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: b\n",	/* 65 */
	  "aliases:1: local part too long" },
};

START_TEST(test_bad)
{
	struct alias_table *t = NULL;
	char *err = NULL;
	/* the NUL case needs its real length */
	size_t len = _i == 13 ? 7 : strlen(bad[_i].text);

	ck_assert_int_eq(alias_parse("aliases", bad[_i].text, len, &t, &err),
			 -1);
	ck_assert_ptr_null(t);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, bad[_i].error);
	free(err);
}
END_TEST

static Suite *
alias_suite(void)
{
	Suite *s = suite_create("alias");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_specific_first);
	tcase_add_test(tc, test_crlf_and_hash);
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(alias_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
