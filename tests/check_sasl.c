/* SPDX-License-Identifier: MIT */
/*
 * tests/check_sasl.c - base64 and SASL PLAIN (core/sasl.c), table-driven.
 */
#include "core.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *in;
	const char *out;	/* NULL: must be refused */
	size_t len;
} decode_data[] = {
	{ "", "", 0 },
	{ "=", "", 0 },				/* RFC 4954 empty response */
	{ "Zg==", "f", 1 },
	{ "Zm8=", "fo", 2 },
	{ "Zm9v", "foo", 3 },
	{ "Zm9vYmFy", "foobar", 6 },
	{ "AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13 },
	{ "Zm9", NULL, 0 },			/* not a multiple of 4 */
	{ "Zm9v\r\n", NULL, 0 },		/* whitespace */
	{ "Z=9v", NULL, 0 },			/* padding inside */
	{ "Zg=a", NULL, 0 },			/* data after padding */
	{ "Z===", NULL, 0 },
	{ "Zm9v!A==", NULL, 0 },
};

START_TEST(test_decode)
{
	size_t len = 99;
	char *out = sc_base64_decode(decode_data[_i].in, &len);

	if (decode_data[_i].out == NULL) {
		ck_assert_msg(out == NULL, "accepted '%s'", decode_data[_i].in);
		return;
	}
	ck_assert_msg(out != NULL, "refused '%s'", decode_data[_i].in);
	ck_assert_uint_eq(len, decode_data[_i].len);
	ck_assert(memcmp(out, decode_data[_i].out, len) == 0);
	ck_assert_int_eq(out[len], '\0');
	free(out);
}
END_TEST

START_TEST(test_encode_roundtrip)
{
	unsigned char in[64];
	char enc[100], small[8];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(in); n++) {
		size_t len;
		int el = sc_base64_encode(in, n, enc, sizeof(enc));
		char *back;

		ck_assert_int_eq(el, (int)((n + 2) / 3 * 4));
		back = sc_base64_decode(enc, &len);
		ck_assert(back != NULL);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(back, in, n) == 0);
		free(back);
	}
	ck_assert_int_eq(sc_base64_encode("foobar", 6, small, sizeof(small)),
			 -1);
	ck_assert_int_eq(sc_base64_encode("foo", 3, small, 5), 4);
	ck_assert_str_eq(small, "Zm9v");
}
END_TEST

static const struct {
	const char *buf;
	size_t len;
	int ok;
	const char *authz, *authc, *pass;
} split_data[] = {
	{ "\0alice\0secret", 13, 0, "", "alice", "secret" },
	{ "alice\0alice\0secret", 18, 0, "alice", "alice", "secret" },
	{ "\0alice\0", 7, 0, "", "alice", "" },	/* empty password */
	{ "alice\0secret", 12, -1, NULL, NULL, NULL },	/* one NUL */
	{ "\0\0secret", 8, -1, NULL, NULL, NULL },	/* empty authcid */
	{ "\0alice\0sec\0ret", 14, -1, NULL, NULL, NULL }, /* NUL in pw */
	{ "", 0, -1, NULL, NULL, NULL },
};

START_TEST(test_plain_split)
{
	const char *z = NULL, *c = NULL, *p = NULL;
	int r = sc_sasl_plain_split(split_data[_i].buf, split_data[_i].len,
				    &z, &c, &p);

	ck_assert_int_eq(r, split_data[_i].ok);
	if (r == 0) {
		ck_assert_str_eq(z, split_data[_i].authz);
		ck_assert_str_eq(c, split_data[_i].authc);
		ck_assert_str_eq(p, split_data[_i].pass);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc = tcase_create("base64+plain");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_decode, 0,
			    sizeof(decode_data) / sizeof(decode_data[0]));
	tcase_add_test(tc, test_encode_roundtrip);
	tcase_add_loop_test(tc, test_plain_split, 0,
			    sizeof(split_data) / sizeof(split_data[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
