# Tests: Check unit suites for the core, fixture modules, and integration
# tests that start the real satcheld (see tests/harness/).
include tests/config.mk
include tests/runtime.mk
include tests/net.mk
EXTRA_DIST += tests/run-test.sh tests/harness/satchel_harness.py tests/valgrind.supp \
	tests/harness/dnsserver.py \
	tests/harness/procmem.py \
	tests/harness/redis_server.py
TESTS += tests/test_satchelctl_diag.py
EXTRA_DIST += tests/test_satchelctl_diag.py
# A burst of connections while the loop is stopped: none overflows the
# listen backlog (issue 15).
TESTS += tests/test_listen_backlog.py
EXTRA_DIST += tests/test_listen_backlog.py
TESTS += tests/test_docs.py tests/test_dovecot_imap.py
EXTRA_DIST += tests/test_docs.py tests/test_dovecot_imap.py
TESTS += tests/test_exports.sh
EXTRA_DIST += tests/test_exports.sh
TESTS += tests/test_install_conf.sh
EXTRA_DIST += tests/test_install_conf.sh

check_PROGRAMS += tests/check_work
TESTS += tests/check_work
tests_check_work_SOURCES = tests/check_work.c
tests_check_work_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_work_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_work_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_work_LDFLAGS = $(SANITIZE_LDFLAGS)

# The store against a real redis-server, in the network namespace.
check_PROGRAMS += tests/check_store
TESTS += tests/check_store.sh
EXTRA_DIST += tests/check_store.sh
tests_check_store_SOURCES = tests/check_store.c
tests_check_store_CPPFLAGS = $(CORE_CPPFLAGS) -I$(top_srcdir)/core
tests_check_store_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_store_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_store_LDFLAGS = $(SANITIZE_LDFLAGS)

check_PROGRAMS += tests/check_sasl
TESTS += tests/check_sasl
tests_check_sasl_SOURCES = tests/check_sasl.c
tests_check_sasl_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_sasl_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_sasl_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_sasl_LDFLAGS = $(SANITIZE_LDFLAGS)

# Root never works through what the daemon's user planted in state_dir.
TESTS += tests/test_privdrop.py
EXTRA_DIST += tests/test_privdrop.py
TESTS += tests/test_reload_privileged.py
EXTRA_DIST += tests/test_reload_privileged.py
TESTS += tests/test_tls_server.py
EXTRA_DIST += tests/test_tls_server.py
# ... nor does satchelctl run as root.
TESTS += tests/test_satchelctl_root.py
EXTRA_DIST += tests/test_satchelctl_root.py

TESTS += tests/test_dane_no_etc.sh
EXTRA_DIST += tests/test_dane_no_etc.sh

# The message API (issue 12) through an out-of-tree module built against
# the installed headers (tests/sdk/msgedit.c).
TESTS += tests/test_message_api.py
EXTRA_DIST += tests/test_message_api.py tests/sdk/msgedit.c
# The metric registry (core/metrics.c).
check_PROGRAMS += tests/check_metrics
TESTS += tests/check_metrics
tests_check_metrics_SOURCES = tests/check_metrics.c
tests_check_metrics_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_metrics_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_metrics_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_metrics_LDFLAGS = $(SANITIZE_LDFLAGS)
