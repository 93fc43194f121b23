# pop3: see satchel-pop3(5).
mod_LTLIBRARIES += modules/pop3/pop3.la
# The module's sources; tests/fuzz/fuzz_pop3 compiles them too.
POP3_MODULE_FILES = \
	modules/pop3/pop3.c \
	modules/pop3/pop3_session.c \
	modules/pop3/pop3_auth.c \
	modules/pop3/pop3_trans.c \
	modules/pop3/pop3_retr.c \
	modules/pop3/pop3_maildir.c \
	modules/pop3/pop3_int.h
modules_pop3_pop3_la_SOURCES = $(POP3_MODULE_FILES)
modules_pop3_pop3_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_pop3_pop3_la_CFLAGS = $(MODULE_CFLAGS)
modules_pop3_pop3_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/pop3/satchel-pop3.5
TESTS += modules/pop3/tests/test_pop3.py modules/pop3/tests/test_pop3_wipe.py
EXTRA_DIST += modules/pop3/tests/test_pop3.py modules/pop3/tests/popcommon.py \
	modules/pop3/tests/test_pop3_wipe.py
