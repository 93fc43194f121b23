/* SPDX-License-Identifier: MIT */
/*
 * tests/check_privops.c - Check suite for core/privops.c, the privileged
 * reload helper: it binds only what the config it reads itself names (an
 * enabled instance's address), passes the listening socket over, and hands
 * out the configured certificate and key; nothing when none is configured.
 * The helper is a real forked process; the addresses are on 127.0.0.1.
 */
#include "core.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

static struct {
	struct sc_core core;
	char dir[64];
	char config[128];
	int port_named, port_other, port_disabled;
} t;

/* free_port - a port nobody listens on now */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t.dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
}

/* write_config - satchel.yaml (tls: when with_tls) and two instances:
 * one enabled naming port_named, one disabled naming port_disabled */
static void
write_config(bool with_tls)
{
	char buf[1024], sub[128];

	snprintf(sub, sizeof(sub), "%s/plugins.d", t.dir);
	(void)mkdir(sub, 0755);
	snprintf(buf, sizeof(buf),
		 "hostname: mail.example.test\n"
		 "state_dir: %s/state\n"
		 "module_dir: %s\n"
		 "user: nobody\n"
		 "%s"
		 "include: plugins.d/*.yaml\n", t.dir, t.dir,
		 with_tls ? "tls:\n  certificate: cert.pem\n"
		 "  key: key.pem\n" : "");
	write_file("satchel.yaml", buf);
	snprintf(buf, sizeof(buf), "module: smtp\nlisten:\n"
		 "  - address: 127.0.0.1:%d\n    mode: mx\n", t.port_named);
	write_file("plugins.d/50-smtp.yaml", buf);
	snprintf(buf, sizeof(buf), "module: smtp\nenabled: false\nlisten:\n"
		 "  - address: 127.0.0.1:%d\n", t.port_disabled);
	write_file("plugins.d/51-off.yaml", buf);
}

static void
setup(void)
{
	char *err = NULL;

	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	t.core.privops.fd = -1;
	sc_core = &t.core;
	snprintf(t.dir, sizeof(t.dir), "/tmp/check_privops.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	ck_assert_int_eq(chmod(t.dir, 0755), 0);
	snprintf(t.config, sizeof(t.config), "%s/satchel.yaml", t.dir);
	t.port_named = free_port();
	t.port_other = free_port();
	t.port_disabled = free_port();
	write_config(false);
	ck_assert_int_eq(sc_privops_start(t.config, &err), 0);
	ck_assert(sc_privops_available());
}

static void
teardown(void)
{
	char cmd[128];

	sc_privops_stop();
	ck_assert(!sc_privops_available());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", t.dir);
	sc_core = NULL;
}

static int
bind_text(const char *fmt, int port, char **err)
{
	struct sc_sockaddr a;
	char text[64];

	snprintf(text, sizeof(text), fmt, port);
	ck_assert_int_eq(sc_parse_sockaddr(text, &a), 0);
	return sc_privops_bind(&a, err);
}

START_TEST(test_binds_a_named_address)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char *err = NULL;
	int fd, c, acc = -1;

	fd = bind_text("127.0.0.1:%d", t.port_named, &err);
	ck_assert_msg(fd >= 0, "%s", err ? err : "?");
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	ck_assert_int_eq(ntohs(a.sin_port), t.port_named);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* it listens: a client connects and is accepted */
	c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	for (int i = 0; i < 200 && acc < 0; i++) {
		acc = accept(fd, NULL, NULL);	/* non-blocking socket */
		if (acc < 0)
			usleep(5000);
	}
	ck_assert_int_ge(acc, 0);
	close(acc);
	close(c);
	close(fd);
}
END_TEST

START_TEST(test_refuses_what_the_config_does_not_name)
{
	char *err = NULL;

	ck_assert_int_eq(bind_text("127.0.0.1:%d", t.port_other, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "is not an address of an enabled "
				     "instance"));
	free(err);
	err = NULL;
	/* a disabled instance's address is not bound either */
	ck_assert_int_eq(bind_text("127.0.0.1:%d", t.port_disabled, &err),
			 -1);
	ck_assert_ptr_nonnull(err);
	free(err);
	err = NULL;
	/* nor the named port on another address */
	ck_assert_int_eq(bind_text("127.0.0.2:%d", t.port_named, &err), -1);
	free(err);
	/* and the helper still answers */
	ck_assert(sc_privops_available());
}
END_TEST

START_TEST(test_tls_files)
{
	struct sc_privops_tls tls;
	char *err = NULL;

	/* none configured: the generated one is the daemon's own */
	ck_assert_int_eq(sc_privops_tls(&tls, &err), 0);
	ck_assert_ptr_null(err);
	/* configured: read anew at each request (the config too); the
	 * certificate as it is, the key in DER */
	gnutls_x509_privkey_t pk;
	gnutls_datum_t pem, der;

	ck_assert_int_ge(gnutls_x509_privkey_init(&pk), 0);
	ck_assert_int_ge(gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	ck_assert_int_ge(gnutls_x509_privkey_export2(pk, GNUTLS_X509_FMT_PEM,
						     &pem), 0);
	ck_assert_int_ge(gnutls_x509_privkey_export2_pkcs8(pk,
		GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN, &der), 0);
	write_file("cert.pem", "CERT DATA\n");
	write_file("key.pem", (const char *)pem.data);
	write_config(true);
	ck_assert_int_eq(sc_privops_tls(&tls, &err), 1);
	ck_assert_str_eq(tls.cert, "CERT DATA\n");
	ck_assert_uint_eq(tls.key_len, der.size);
	ck_assert_mem_eq(tls.key, der.data, der.size);
	ck_assert_ptr_nonnull(strstr(tls.cert_path, "/cert.pem"));
	sc_privops_tls_free(&tls);
	ck_assert_ptr_null(tls.key);
	gnutls_free(pem.data);
	gnutls_free(der.data);
	gnutls_x509_privkey_deinit(pk);
	/* not a key: an error naming it */
	write_file("key.pem", "KEY DATA\n");
	ck_assert_int_eq(sc_privops_tls(&tls, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "key.pem: not a usable private "
				     "key"));
	free(err);
	err = NULL;
	/* a key that is missing: an error naming it */
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/key.pem", t.dir);
		ck_assert_int_eq(unlink(path), 0);
	}
	ck_assert_int_eq(sc_privops_tls(&tls, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "key.pem"));
	free(err);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("privops");
	TCase *tc = tcase_create("privops");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_binds_a_named_address);
	tcase_add_test(tc, test_refuses_what_the_config_does_not_name);
	tcase_add_test(tc, test_tls_files);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
