# relay: see satchel-relay(5).
mod_LTLIBRARIES += modules/relay/relay.la
# The module's sources; tests/fuzz/fuzz_relay compiles them too.
RELAY_MODULE_FILES = \
	modules/relay/relay.c \
	modules/relay/relay_int.h \
	modules/relay/relay_job.c \
	modules/relay/relay_route.c \
	modules/relay/relay_conn.c \
	modules/relay/relay_client.c \
	modules/relay/relay_tls.c \
	modules/relay/relay_body.c
modules_relay_relay_la_SOURCES = $(RELAY_MODULE_FILES)
modules_relay_relay_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_relay_relay_la_CFLAGS = $(MODULE_CFLAGS)
modules_relay_relay_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/relay/satchel-relay.5

# Integration tests: real satcheld, dnsmasq (tests/harness/dnsserver.py)
# and aiosmtpd peers on 127.0.0.x.
TESTS += modules/relay/tests/test_relay.py \
	modules/relay/tests/test_relay_tls.py \
	modules/relay/tests/test_relay_queue.py \
	modules/relay/tests/test_relay_limits.py \
	modules/relay/tests/test_relay_replies.py \
	modules/relay/tests/test_relay_dsn.py \
	modules/relay/tests/test_relay_record_sync.py \
	modules/relay/tests/test_relay_dane_anchor.sh
EXTRA_DIST += modules/relay/tests/test_relay.py \
	modules/relay/tests/test_relay_tls.py \
	modules/relay/tests/test_relay_queue.py \
	modules/relay/tests/test_relay_limits.py \
	modules/relay/tests/test_relay_replies.py \
	modules/relay/tests/test_relay_dsn.py \
	modules/relay/tests/test_relay_record_sync.py \
	modules/relay/tests/test_relay_dane_anchor.sh \
	modules/relay/tests/relaycommon.py
