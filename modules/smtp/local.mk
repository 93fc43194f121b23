# smtp: the SMTP listener module; see satchel-smtp(5).
mod_LTLIBRARIES += modules/smtp/smtp.la
# The module's sources; tests/fuzz/fuzz_smtp compiles them too.
SMTP_MODULE_FILES = \
	modules/smtp/smtp_int.h \
	modules/smtp/smtp.c \
	modules/smtp/smtp_auth.c \
	modules/smtp/smtp_command.c \
	modules/smtp/smtp_envelope.c \
	modules/smtp/smtp_message.c \
	modules/smtp/smtp_rdns.c \
	modules/smtp/smtp_session.c
modules_smtp_smtp_la_SOURCES = $(SMTP_MODULE_FILES)
modules_smtp_smtp_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_smtp_smtp_la_CFLAGS = $(MODULE_CFLAGS)
modules_smtp_smtp_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/smtp/satchel-smtp.5

TESTS += \
	modules/smtp/tests/test_smtp.py \
	modules/smtp/tests/test_smtp_auth.py \
	modules/smtp/tests/test_smtp_crash.py \
	modules/smtp/tests/test_smtp_input.py \
	modules/smtp/tests/test_smtp_params.py \
	modules/smtp/tests/test_smtp_received.py \
	modules/smtp/tests/test_smtp_submission.py \
	modules/smtp/tests/test_smtp_wipe.py
EXTRA_DIST += \
	modules/smtp/tests/test_smtp.py \
	modules/smtp/tests/test_smtp_auth.py \
	modules/smtp/tests/test_smtp_crash.py \
	modules/smtp/tests/test_smtp_input.py \
	modules/smtp/tests/test_smtp_params.py \
	modules/smtp/tests/test_smtp_received.py \
	modules/smtp/tests/test_smtp_submission.py \
	modules/smtp/tests/test_smtp_wipe.py
