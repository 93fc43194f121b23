# owned by the net part of the core: Check suites for connections, TLS
# and the queue. They open sockets on 127.0.0.1 only.
check_PROGRAMS += tests/check_net tests/check_queue
TESTS += tests/check_net tests/check_queue
tests_check_net_SOURCES = tests/check_net.c
tests_check_net_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_net_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_net_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_net_LDFLAGS = $(SANITIZE_LDFLAGS)
tests_check_queue_SOURCES = tests/check_queue.c
tests_check_queue_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_queue_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_queue_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_queue_LDFLAGS = $(SANITIZE_LDFLAGS)
TESTS += tests/test_net.py
EXTRA_DIST += tests/test_net.py
TESTS += tests/test_queue_recovery.py tests/test_queue_sync_order.py \
	tests/test_queue_journal.py
EXTRA_DIST += tests/test_queue_recovery.py tests/test_queue_sync_order.py \
	tests/test_queue_journal.py
# the privileged reload helper: what it binds and reads (core/privops.c)
check_PROGRAMS += tests/check_privops
TESTS += tests/check_privops
tests_check_privops_SOURCES = tests/check_privops.c
tests_check_privops_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_privops_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_privops_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_privops_LDFLAGS = $(SANITIZE_LDFLAGS)

# The message API (core/message.c) with the real queue.
check_PROGRAMS += tests/check_message
TESTS += tests/check_message
tests_check_message_SOURCES = tests/check_message.c
tests_check_message_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_message_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_message_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_message_LDFLAGS = $(SANITIZE_LDFLAGS)
