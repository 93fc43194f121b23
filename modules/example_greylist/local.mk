# example_greylist: the sample module of the SDK documentation.
mod_LTLIBRARIES += modules/example_greylist/example_greylist.la
modules_example_greylist_example_greylist_la_SOURCES = \
	modules/example_greylist/example_greylist.c
modules_example_greylist_example_greylist_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_example_greylist_example_greylist_la_CFLAGS = $(MODULE_CFLAGS)
modules_example_greylist_example_greylist_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/example_greylist/satchel-example_greylist.5
TESTS += modules/example_greylist/tests/test_greylist.py
EXTRA_DIST += modules/example_greylist/tests/test_greylist.py
