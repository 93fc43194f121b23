# router: see satchel-router(5).
mod_LTLIBRARIES += modules/router/router.la
modules_router_router_la_SOURCES = \
	modules/router/router.c \
	modules/router/alias.c \
	modules/router/alias.h
modules_router_router_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_router_router_la_CFLAGS = $(MODULE_CFLAGS)
modules_router_router_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/router/satchel-router.5

# Unit test of the aliases parser (pure code, no daemon).
check_PROGRAMS += modules/router/tests/check_alias
modules_router_tests_check_alias_SOURCES = \
	modules/router/tests/check_alias.c \
	modules/router/alias.c \
	modules/router/alias.h
modules_router_tests_check_alias_CPPFLAGS = -I$(top_srcdir)/modules/router
modules_router_tests_check_alias_CFLAGS = $(WARN_CFLAGS) $(SANITIZE_CFLAGS) \
	$(CHECK_CFLAGS)
modules_router_tests_check_alias_LDADD = $(CHECK_LIBS)
modules_router_tests_check_alias_LDFLAGS = $(SANITIZE_LDFLAGS)
TESTS += modules/router/tests/check_alias

# Integration tests against the real daemon.
TESTS += modules/router/tests/test_router.py
EXTRA_DIST += modules/router/tests/test_router.py
