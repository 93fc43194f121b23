# web: see satchel-web(5). HTTP through libmicrohttpd on satchel's loop.
mod_LTLIBRARIES += modules/web/web.la
# The module's sources. tests/fuzz/fuzz_web compiles web_parse.c, what
# the module reads from clients itself, on its own.
WEB_MODULE_FILES = \
	modules/web/web.c \
	modules/web/web_int.h \
	modules/web/web_parse.c \
	modules/web/web_metrics.c \
	modules/web/web_autoconfig.c \
	modules/web/web_status.c
modules_web_web_la_SOURCES = $(WEB_MODULE_FILES)
modules_web_web_la_CPPFLAGS = $(MODULE_CPPFLAGS) $(MICROHTTPD_CFLAGS)
modules_web_web_la_CFLAGS = $(MODULE_CFLAGS)
modules_web_web_la_LDFLAGS = $(MODULE_LDFLAGS)
modules_web_web_la_LIBADD = $(MICROHTTPD_LIBS) -lm
dist_man_MANS += modules/web/satchel-web.5

# Integration tests: the real satcheld with real HTTP clients, promtool
# and headless chromium (selenium) on loopback.
WEB_TESTS = \
	modules/web/tests/test_web_metrics.py \
	modules/web/tests/test_web_autoconfig.py \
	modules/web/tests/test_web_http.py \
	modules/web/tests/test_web_status.py \
	modules/web/tests/test_web_tls.py
TESTS += $(WEB_TESTS)
EXTRA_DIST += $(WEB_TESTS) modules/web/tests/webcommon.py
