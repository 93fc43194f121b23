# ratelimit: see satchel-ratelimit(5).
mod_LTLIBRARIES += modules/ratelimit/ratelimit.la
modules_ratelimit_ratelimit_la_SOURCES = \
	modules/ratelimit/ratelimit.c \
	modules/ratelimit/ratelimit_int.h \
	modules/ratelimit/ratelimit_store.c
modules_ratelimit_ratelimit_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_ratelimit_ratelimit_la_CFLAGS = $(MODULE_CFLAGS)
modules_ratelimit_ratelimit_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/ratelimit/satchel-ratelimit.5
TESTS += modules/ratelimit/tests/test_ratelimit.py \
	modules/ratelimit/tests/test_ratelimit_store.py
EXTRA_DIST += modules/ratelimit/tests/test_ratelimit.py \
	modules/ratelimit/tests/test_ratelimit_store.py
