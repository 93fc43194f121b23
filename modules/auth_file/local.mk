# auth_file: see satchel-auth_file(5).
mod_LTLIBRARIES += modules/auth_file/auth_file.la
# The module's sources; tests/fuzz/fuzz_auth_file compiles them too.
AUTH_FILE_MODULE_FILES = \
	modules/auth_file/auth_file.c
modules_auth_file_auth_file_la_SOURCES = $(AUTH_FILE_MODULE_FILES)
modules_auth_file_auth_file_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_auth_file_auth_file_la_CFLAGS = $(MODULE_CFLAGS) $(LIBCRYPT_CFLAGS)
modules_auth_file_auth_file_la_LDFLAGS = $(MODULE_LDFLAGS)
modules_auth_file_auth_file_la_LIBADD = $(LIBCRYPT_LIBS)
dist_man_MANS += modules/auth_file/satchel-auth_file.5
TESTS += modules/auth_file/tests/test_auth_file.py
EXTRA_DIST += modules/auth_file/tests/test_auth_file.py
