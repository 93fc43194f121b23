# auth_pam: see satchel-auth_pam(5).
mod_LTLIBRARIES += modules/auth_pam/auth_pam.la
modules_auth_pam_auth_pam_la_SOURCES = \
	modules/auth_pam/auth_pam.c
modules_auth_pam_auth_pam_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_auth_pam_auth_pam_la_CFLAGS = $(MODULE_CFLAGS)
modules_auth_pam_auth_pam_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/auth_pam/satchel-auth_pam.5
TESTS += modules/auth_pam/tests/test_auth_pam.py
EXTRA_DIST += modules/auth_pam/tests/test_auth_pam.py
