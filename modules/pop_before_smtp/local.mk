# pop_before_smtp: see satchel-pop_before_smtp(5).
mod_LTLIBRARIES += modules/pop_before_smtp/pop_before_smtp.la
modules_pop_before_smtp_pop_before_smtp_la_SOURCES = \
	modules/pop_before_smtp/pop_before_smtp.c \
	modules/pop_before_smtp/pop_before_smtp_file.c \
	modules/pop_before_smtp/pop_before_smtp_int.h \
	modules/pop_before_smtp/pop_before_smtp_store.c
modules_pop_before_smtp_pop_before_smtp_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_pop_before_smtp_pop_before_smtp_la_CFLAGS = $(MODULE_CFLAGS)
modules_pop_before_smtp_pop_before_smtp_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/pop_before_smtp/satchel-pop_before_smtp.5
TESTS += modules/pop_before_smtp/tests/test_pop_before_smtp.py \
	modules/pop_before_smtp/tests/test_pop_before_smtp_store.py
EXTRA_DIST += modules/pop_before_smtp/tests/test_pop_before_smtp.py \
	modules/pop_before_smtp/tests/test_pop_before_smtp_store.py
