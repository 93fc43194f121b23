# owned by the config part of the core
# Check suites for core/config*.c and core/address.c.
check_PROGRAMS += tests/check_config tests/check_address
TESTS += tests/check_config tests/check_address

tests_check_config_SOURCES = tests/check_config.c
tests_check_config_CPPFLAGS = $(CORE_CPPFLAGS) \
	-DSC_TEST_SRCDIR='"$(abs_top_srcdir)"'
tests_check_config_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_config_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_config_LDFLAGS = $(SANITIZE_LDFLAGS)

tests_check_address_SOURCES = tests/check_address.c
tests_check_address_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_address_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_address_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_address_LDFLAGS = $(SANITIZE_LDFLAGS)

# The shipped conf/ and plugins.d/ files against the real satcheld -t and
# satchelctl check.
TESTS += tests/test_config_check.py
EXTRA_DIST += tests/test_config_check.py
