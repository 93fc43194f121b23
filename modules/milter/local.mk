# milter: see satchel-milter(5).
mod_LTLIBRARIES += modules/milter/milter.la
# The module's sources. tests/fuzz/fuzz_milter compiles milter_proto.c,
# the wire format, on its own.
MILTER_MODULE_FILES = \
	modules/milter/milter.c \
	modules/milter/milter_int.h \
	modules/milter/milter_proto.h \
	modules/milter/milter_proto.c \
	modules/milter/milter_conn.c \
	modules/milter/milter_stage.c \
	modules/milter/milter_message.c
modules_milter_milter_la_SOURCES = $(MILTER_MODULE_FILES)
modules_milter_milter_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_milter_milter_la_CFLAGS = $(MODULE_CFLAGS)
modules_milter_milter_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/milter/satchel-milter.5

# Integration tests: real satcheld with real milters from Debian
# (python3-milter scripts, OpenDKIM, rspamd) on loopback.
MILTER_TESTS = \
	modules/milter/tests/test_milter_actions.py \
	modules/milter/tests/test_milter_failure.py \
	modules/milter/tests/test_milter_opendkim.py \
	modules/milter/tests/test_milter_rspamd.py
TESTS += $(MILTER_TESTS)
EXTRA_DIST += $(MILTER_TESTS) \
	modules/milter/tests/miltercommon.py \
	modules/milter/tests/scripted_milter.py
