/* SPDX-License-Identifier: MIT */
/*
 * tests/check_net.c - Check suite for core/net_*.c: sc_conn_getline
 * semantics, read stop/start re-announcement, output flushing, the idle
 * memory footprint, TLS handshakes on 127.0.0.1 (generated
 * certificate, DANE-EE, PKIX failure, junk) and sc_tls_server_pem. Runs a
 * real libuv loop on the test thread.
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

#define MAXREC 32

struct rec {
	int ret;
	char line[256];
	size_t len;
	bool bare;
};

static struct {
	struct sc_core core;
	struct sc_gen gen;
	struct sc_main_config cfg;
	char dir[64];
	int lfd;			/* raw listening socket */
	struct sockaddr_in addr;
	struct rec rec[MAXREC];
	int nrec;
	int data_events, eof_events, drained, errors, timeouts;
	size_t max;
	bool in_call;			/* inside a read_start call */
	bool announced_in_call;
	/* TLS */
	int tls_done;
	bool tls_ok[2];
	char tls_err[2][256];
	struct sc_conn *client;
	int connect_err;
	bool connected;
} t;

static void
run_until(bool (*cond)(void), unsigned ms)
{
	uint64_t end = uv_now(t.core.loop) + ms;

	while (!cond() && uv_now(t.core.loop) < end) {
		uv_run(t.core.loop, UV_RUN_NOWAIT);
		usleep(1000);
		uv_update_time(t.core.loop);
	}
}

static void
spin(unsigned ms)
{
	uint64_t end;

	uv_update_time(t.core.loop);
	end = uv_now(t.core.loop) + ms;
	while (uv_now(t.core.loop) < end) {
		uv_run(t.core.loop, UV_RUN_NOWAIT);
		usleep(1000);
		uv_update_time(t.core.loop);
	}
}

static void
setup(void)
{
	socklen_t len = sizeof(t.addr);
	int one = 1;

	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	snprintf(t.dir, sizeof(t.dir), "/tmp/check_net.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	t.cfg.hostname = "mail.example.test";
	t.cfg.state_dir = t.dir;
	t.gen.cfg = &t.cfg;
	t.gen.refcount = 1;
	t.core.gen = &t.gen;
	t.max = 10;
	t.lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(t.lfd, 0);
	setsockopt(t.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	t.addr.sin_family = AF_INET;
	t.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(t.lfd, (struct sockaddr *)&t.addr,
			      sizeof(t.addr)), 0);
	ck_assert_int_eq(listen(t.lfd, 8), 0);
	ck_assert_int_eq(getsockname(t.lfd, (struct sockaddr *)&t.addr,
				     &len), 0);
}

static void
teardown(void)
{
	char cmd[128];

	spin(20);
	close(t.lfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", t.dir);
	sc_core = NULL;
}

/* pair - a raw client socket and the server conn of the same TCP
 * connection */
static struct sc_conn *
pair(int *client_r)
{
	struct sc_conn *c;
	char *err = NULL;
	int cfd = socket(AF_INET, SOCK_STREAM, 0), sfd;

	ck_assert_int_ge(cfd, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&t.addr,
				 sizeof(t.addr)), 0);
	sfd = accept(t.lfd, NULL, NULL);
	ck_assert_int_ge(sfd, 0);
	c = sc_conn_new_fd(sfd, &err);
	ck_assert_msg(c != NULL, "%s", err ? err : "");
	ck_assert_str_eq(sc_conn_peer_ip(c), "127.0.0.1");
	*client_r = cfd;
	return c;
}

static void
on_event(struct sc_conn *c, enum sc_conn_event ev, void *arg)
{
	(void)arg;
	switch (ev) {
	case SC_CONN_DATA:
		t.data_events++;
		if (t.in_call)
			t.announced_in_call = true;
		for (;;) {
			const char *line = NULL;
			size_t len = 0;
			bool bare = false;
			int r = sc_conn_getline(c, t.max, &line, &len, &bare);
			struct rec *rc;

			if (r == 0 || t.nrec >= MAXREC)
				break;
			rc = &t.rec[t.nrec++];
			rc->ret = r;
			rc->len = len;
			rc->bare = bare;
			if (r == 1)
				snprintf(rc->line, sizeof(rc->line), "%.*s",
					 (int)len, line);
		}
		break;
	case SC_CONN_EOF:
		t.eof_events++;
		break;
	case SC_CONN_DRAINED:
		t.drained++;
		break;
	case SC_CONN_ERROR:
		t.errors++;
		break;
	case SC_CONN_TIMEOUT:
		t.timeouts++;
		break;
	}
}

static void
send_str(int fd, const char *s)
{
	ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static int want_rec;
static bool
have_rec(void)
{
	return t.nrec >= want_rec;
}

static bool
have_eof(void)
{
	return t.eof_events > 0;
}

START_TEST(test_getline)
{
	int cfd;
	struct sc_conn *c = pair(&cfd);
	char big[200];

	sc_conn_set_handler(c, on_event, NULL);
	sc_conn_read_start(c);
	send_str(cfd, "abc\r\ndef\n\r\n");
	want_rec = 3;
	run_until(have_rec, 2000);
	ck_assert_int_eq(t.nrec, 3);
	ck_assert_int_eq(t.rec[0].ret, 1);
	ck_assert_str_eq(t.rec[0].line, "abc");
	ck_assert(!t.rec[0].bare);
	ck_assert_str_eq(t.rec[1].line, "def");
	ck_assert(t.rec[1].bare);
	ck_assert_int_eq(t.rec[2].ret, 1);
	ck_assert_int_eq(t.rec[2].len, 0);

	/* a line split over two packets */
	send_str(cfd, "par");
	spin(30);
	ck_assert_int_eq(t.nrec, 3);
	send_str(cfd, "tial\r\n");
	want_rec = 4;
	run_until(have_rec, 2000);
	ck_assert_str_eq(t.rec[3].line, "partial");

	/* exactly max bytes is fine, max + 1 is not */
	send_str(cfd, "0123456789\r\n0123456789X\r\nok\r\n");
	want_rec = 7;
	run_until(have_rec, 2000);
	ck_assert_int_eq(t.rec[4].ret, 1);
	ck_assert_str_eq(t.rec[4].line, "0123456789");
	ck_assert_int_eq(t.rec[5].ret, -1);
	ck_assert_int_eq(t.rec[5].len, 13);
	ck_assert_str_eq(t.rec[6].line, "ok");

	/* an over-long line without its LF yet: -1 once, the rest up to the
	 * LF discarded silently */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	send_str(cfd, big);
	want_rec = 8;
	run_until(have_rec, 2000);
	ck_assert_int_eq(t.rec[7].ret, -1);
	ck_assert_uint_ge(t.rec[7].len, 12);
	send_str(cfd, big);
	send_str(cfd, "yyy\r\nnext\r\n");
	want_rec = 9;
	run_until(have_rec, 2000);
	ck_assert_int_eq(t.nrec, 9);
	ck_assert_int_eq(t.rec[8].ret, 1);
	ck_assert_str_eq(t.rec[8].line, "next");

	close(cfd);
	run_until(have_eof, 2000);
	ck_assert_int_eq(t.eof_events, 1);
	sc_conn_free(c);
}
END_TEST

START_TEST(test_read_stop_start)
{
	int cfd;
	struct sc_conn *c = pair(&cfd);
	char buf[64];
	ssize_t n;
	size_t got = 0;

	sc_conn_set_handler(c, on_event, NULL);
	sc_conn_read_stop(c);
	send_str(cfd, "one\r\ntwo\r\n");
	spin(50);
	ck_assert_int_eq(t.data_events, 0);
	/* start: the buffered input is announced from the loop, not from
	 * within the call */
	t.in_call = true;
	sc_conn_read_start(c);
	t.in_call = false;
	spin(50);
	ck_assert(!t.announced_in_call);
	ck_assert_int_eq(t.data_events, 1);
	ck_assert_int_eq(t.nrec, 2);
	ck_assert_str_eq(t.rec[1].line, "two");

	/* output: two writes leave together, then DRAINED */
	sc_conn_write(c, "hello ", 6);
	sc_conn_printf(c, "%s %d\r\n", "world", 42);
	ck_assert_uint_eq(sc_conn_output_pending(c), 16);
	spin(50);
	ck_assert_uint_eq(sc_conn_output_pending(c), 0);
	ck_assert_int_ge(t.drained, 1);
	while (got < 16 && (n = read(cfd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	ck_assert_uint_eq(got, 16);
	ck_assert(memcmp(buf, "hello world 42\r\n", 16) == 0);

	/* an idle plaintext connection holds (almost) nothing */
	ck_assert_uint_lt(sc_net_conn_memory(c), 16384);
	close(cfd);
	sc_conn_free(c);
}
END_TEST

static bool
have_timeout(void)
{
	return t.timeouts > 0;
}

START_TEST(test_timeout)
{
	int cfd;
	struct sc_conn *c = pair(&cfd);

	sc_conn_set_handler(c, on_event, NULL);
	sc_conn_read_start(c);
	sc_conn_set_timeout(c, 50);
	run_until(have_timeout, 2000);
	ck_assert_int_eq(t.timeouts, 1);
	close(cfd);
	sc_conn_free(c);
}
END_TEST

/* ---- TLS ---- */

static void
tls_cb(struct sc_conn *c, bool ok, const char *error, void *arg)
{
	int side = (int)(intptr_t)arg;

	(void)c;
	t.tls_ok[side] = ok;
	snprintf(t.tls_err[side], sizeof(t.tls_err[side]), "%s",
		 error ? error : "");
	t.tls_done |= 1 << side;
}

static void
connect_cb(struct sc_conn *c, int error, void *arg)
{
	(void)arg;
	t.client = c;
	t.connect_err = error;
	t.connected = true;
}

static bool
is_connected(void)
{
	return t.connected;
}

static int tls_want;
static bool
tls_both(void)
{
	return (t.tls_done & tls_want) == tls_want;
}

static void
load_certificate(void)
{
	char *err = NULL;

	ck_assert_msg(sc_tls_ensure_certificate(&t.cfg, &err) == 0, "%s",
		      err ? err : "");
	ck_assert_msg(sc_net_init(&err) == 0, "%s", err ? err : "");
}

/* client_pair - an outbound conn (sc_conn_connect) and the server conn */
static struct sc_conn *
client_pair(void)
{
	char *err = NULL;
	struct sc_conn *s;
	int sfd;

	ck_assert_int_eq(sc_conn_connect((struct sockaddr *)&t.addr, 2000,
					 connect_cb, NULL), 0);
	run_until(is_connected, 2000);
	ck_assert(t.connected);
	ck_assert_int_eq(t.connect_err, 0);
	ck_assert_ptr_nonnull(t.client);
	sfd = accept(t.lfd, NULL, NULL);
	ck_assert_int_ge(sfd, 0);
	s = sc_conn_new_fd(sfd, &err);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* cert_der - the generated certificate in DER */
static unsigned char *
cert_der(size_t *len_r)
{
	char path[128];
	gnutls_datum_t pem, der = { NULL, 0 };
	gnutls_x509_crt_t crt;
	unsigned char *out;

	snprintf(path, sizeof(path), "%s/tls/cert.pem", t.dir);
	ck_assert_int_eq(gnutls_load_file(path, &pem), 0);
	gnutls_x509_crt_init(&crt);
	ck_assert_int_eq(gnutls_x509_crt_import(crt, &pem,
						GNUTLS_X509_FMT_PEM), 0);
	ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER,
						 &der), 0);
	out = malloc(der.size + 3);
	out[0] = 3;	/* DANE-EE */
	out[1] = 0;	/* full certificate */
	out[2] = 0;	/* exact match */
	memcpy(out + 3, der.data, der.size);
	*len_r = der.size + 3;
	gnutls_free(der.data);
	gnutls_free(pem.data);
	gnutls_x509_crt_deinit(crt);
	return out;
}

static void
tls_run(struct sc_conn *server, const struct sc_tls_client_opts *o)
{
	ck_assert_int_eq(sc_conn_starttls(server, tls_cb, (void *)0), 0);
	ck_assert_int_eq(sc_conn_starttls_client(t.client, o, tls_cb,
						 (void *)1), 0);
	tls_want = 3;
	run_until(tls_both, 5000);
}

START_TEST(test_tls_handshake)
{
	struct sc_tls_client_opts o = {
		.server_name = "mail.example.test",
		.verify = SC_TLS_VERIFY_DANE,
	};
	size_t tlen;
	unsigned char *tlsa;
	const unsigned char *tlsa_data[1];
	struct sc_conn *s;
	const char *d;

	load_certificate();
	tlsa = cert_der(&tlen);
	tlsa_data[0] = tlsa;
	o.tlsa_count = 1;
	o.tlsa_data = tlsa_data;
	o.tlsa_len = &tlen;
	s = client_pair();
	sc_conn_set_handler(s, on_event, NULL);
	/* plaintext pipelined before the handshake must vanish */
	tls_run(s, &o);
	ck_assert_msg(t.tls_ok[0] && t.tls_ok[1], "server: %s / client: %s",
		      t.tls_err[0], t.tls_err[1]);
	ck_assert(sc_conn_tls_active(s));
	ck_assert(sc_conn_tls_active(t.client));
	d = sc_conn_tls_desc(s);
	ck_assert_ptr_nonnull(d);
	ck_assert_msg(strncmp(d, "TLS1.3 with cipher ", 19) == 0 ||
		      strncmp(d, "TLS1.2 with cipher ", 19) == 0, "%s", d);

	/* data both ways through TLS */
	sc_conn_read_start(s);
	sc_conn_write(t.client, "secret line\r\n", 13);
	want_rec = 1;
	t.max = 100;
	run_until(have_rec, 3000);
	ck_assert_int_eq(t.nrec, 1);
	ck_assert_str_eq(t.rec[0].line, "secret line");
	sc_conn_close(t.client);
	run_until(have_eof, 3000);
	ck_assert_int_eq(t.eof_events, 1);
	sc_conn_free(s);
	free(tlsa);
}
END_TEST

START_TEST(test_tls_verify_failures)
{
	struct sc_tls_client_opts pkix = {
		.server_name = "mail.example.test",
		.verify = SC_TLS_VERIFY_PKIX,
	};
	struct sc_tls_client_opts dane = {
		.server_name = "mail.example.test",
		.verify = SC_TLS_VERIFY_DANE,
	};
	const unsigned char *tlsa_data[1];
	size_t tlen;
	unsigned char *tlsa;
	struct sc_conn *s;

	load_certificate();
	/* a self-signed certificate is not trusted by PKIX */
	s = client_pair();
	tls_run(s, &pkix);
	ck_assert_int_eq(t.tls_done & 2, 2);
	ck_assert(!t.tls_ok[1]);
	ck_assert_msg(strstr(t.tls_err[1], "verif") != NULL, "%s",
		      t.tls_err[1]);
	sc_conn_close(t.client);
	sc_conn_free(s);
	spin(20);

	/* DANE with a TLSA record for another certificate */
	t.connected = false;
	t.tls_done = 0;
	tlsa = cert_der(&tlen);
	tlsa[tlen - 5] ^= 0xff;
	tlsa_data[0] = tlsa;
	dane.tlsa_count = 1;
	dane.tlsa_data = tlsa_data;
	dane.tlsa_len = &tlen;
	s = client_pair();
	tls_run(s, &dane);
	ck_assert(!t.tls_ok[1]);
	ck_assert_msg(strstr(t.tls_err[1], "DANE") != NULL, "%s",
		      t.tls_err[1]);
	sc_conn_close(t.client);
	sc_conn_free(s);
	free(tlsa);
}
END_TEST

START_TEST(test_tls_junk)
{
	int cfd;
	struct sc_conn *s;

	load_certificate();
	/* plaintext SMTP to an implicit-TLS port */
	s = pair(&cfd);
	sc_conn_set_handler(s, on_event, NULL);
	ck_assert_int_eq(sc_conn_starttls(s, tls_cb, (void *)0), 0);
	send_str(cfd, "EHLO client.example\r\nMAIL FROM:<a@b>\r\n");
	tls_want = 1;
	run_until(tls_both, 3000);
	ck_assert_int_eq(t.tls_done, 1);
	ck_assert(!t.tls_ok[0]);
	ck_assert(!sc_conn_tls_active(s));
	ck_assert_ptr_null(sc_conn_tls_desc(s));
	sc_conn_free(s);
	close(cfd);

	/* a client that vanishes mid-handshake */
	t.tls_done = 0;
	s = pair(&cfd);
	ck_assert_int_eq(sc_conn_starttls(s, tls_cb, (void *)0), 0);
	send_str(cfd, "\x16\x03\x01\x02\x00\x01");
	close(cfd);
	run_until(tls_both, 3000);
	ck_assert_int_eq(t.tls_done, 1);
	ck_assert(!t.tls_ok[0]);
	sc_conn_free(s);
}
END_TEST

START_TEST(test_certificate_once)
{
	char path[128], *err = NULL;
	struct stat st1, st2;

	ck_assert_int_eq(sc_tls_ensure_certificate(&t.cfg, &err), 0);
	snprintf(path, sizeof(path), "%s/tls/key.pem", t.dir);
	ck_assert_int_eq(stat(path, &st1), 0);
	ck_assert_int_eq(st1.st_mode & 0777, 0600);
	ck_assert_int_eq(sc_tls_ensure_certificate(&t.cfg, &err), 0);
	ck_assert_int_eq(stat(path, &st2), 0);
	ck_assert_int_eq(st1.st_ino, st2.st_ino);	/* not regenerated */
	/* a configured certificate that does not exist is an error */
	t.cfg.tls_certificate = "/nonexistent/cert.pem";
	t.cfg.tls_key = "/nonexistent/key.pem";
	ck_assert_int_eq(sc_tls_ensure_certificate(&t.cfg, &err), -1);
	ck_assert_ptr_nonnull(err);
	free(err);
}
END_TEST

/* sc_tls_server_pem: -1 before a certificate is loaded; then the
 * certificate served, in PEM, and the key that goes with it */
START_TEST(test_server_pem)
{
	char *cert = (char *)"x", *key = (char *)"x";
	size_t clen = 1, klen = 1, idlen1 = 64, idlen2 = 64;
	unsigned char id1[64], id2[64];
	gnutls_datum_t d;
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t pk;
	unsigned char *der;
	size_t derlen;

	ck_assert_int_eq(sc_tls_server_pem(&cert, &clen, &key, &klen), -1);
	ck_assert_ptr_null(cert);
	ck_assert_ptr_null(key);
	load_certificate();
	ck_assert_int_eq(sc_tls_server_pem(&cert, &clen, &key, &klen), 0);
	ck_assert_uint_eq(strlen(cert), clen);
	ck_assert_uint_eq(strlen(key), klen);
	ck_assert_ptr_nonnull(strstr(key, "PRIVATE KEY-----"));
	d.data = (unsigned char *)cert;
	d.size = (unsigned)clen;
	ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM),
			 0);
	/* the certificate of state_dir/tls/cert.pem */
	der = cert_der(&derlen);
	ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER,
						 &d), 0);
	ck_assert_uint_eq(d.size, derlen - 3);
	ck_assert_int_eq(memcmp(d.data, der + 3, d.size), 0);
	gnutls_free(d.data);
	free(der);
	d.data = (unsigned char *)key;
	d.size = (unsigned)klen;
	ck_assert_int_eq(gnutls_x509_privkey_init(&pk), 0);
	ck_assert_int_eq(gnutls_x509_privkey_import(pk, &d,
						    GNUTLS_X509_FMT_PEM), 0);
	ck_assert_int_eq(gnutls_x509_crt_get_key_id(crt, 0, id1, &idlen1), 0);
	ck_assert_int_eq(gnutls_x509_privkey_get_key_id(pk, 0, id2, &idlen2),
			 0);
	ck_assert_uint_eq(idlen1, idlen2);
	ck_assert_int_eq(memcmp(id1, id2, idlen1), 0);
	gnutls_x509_privkey_deinit(pk);
	gnutls_x509_crt_deinit(crt);
	sc_tls_pem_free(cert, clen);
	sc_tls_pem_free(key, klen);
	sc_tls_pem_free(NULL, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("net");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_getline);
	tcase_add_test(tc, test_read_stop_start);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_tls_handshake);
	tcase_add_test(tc, test_tls_verify_failures);
	tcase_add_test(tc, test_tls_junk);
	tcase_add_test(tc, test_certificate_once);
	tcase_add_test(tc, test_server_pem);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
