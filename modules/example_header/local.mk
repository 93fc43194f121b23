# example_header: the sample module of the message API (SDK documentation).
mod_LTLIBRARIES += modules/example_header/example_header.la
modules_example_header_example_header_la_SOURCES = \
	modules/example_header/example_header.c
modules_example_header_example_header_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_example_header_example_header_la_CFLAGS = $(MODULE_CFLAGS)
modules_example_header_example_header_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/example_header/satchel-example_header.5
TESTS += modules/example_header/tests/test_example_header.py
EXTRA_DIST += modules/example_header/tests/test_example_header.py
