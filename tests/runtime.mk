# owned by the runtime part of the core: Check suites for the module loader
# and hook chains, their fixture modules, and the out-of-tree SDK test.

# Fixture modules: built only for `make check`, never installed. Each file
# stem is also the module name the loader looks up (sc_module_<stem>).
FIXTURE_LDFLAGS = -module -avoid-version -shared -rpath /nowhere \
	$(SANITIZE_LDFLAGS)
check_LTLIBRARIES += tests/modules/fx_good.la tests/modules/fx_abi.la \
	tests/modules/fx_sig.la tests/modules/fx_nosym.la \
	tests/modules/fx_name.la tests/modules/fx_fail.la \
	tests/modules/fx_dep.la tests/modules/fx_work.la \
	tests/modules/fx_sigtime.la tests/modules/fx_sigold.la \
	tests/modules/fx_hook.la tests/modules/fx_dns.la \
	tests/modules/fx_events.la
tests_modules_fx_good_la_SOURCES = tests/modules/fx_good.c
tests_modules_fx_good_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_good_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_good_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_abi_la_SOURCES = tests/modules/fx_abi.c
tests_modules_fx_abi_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_abi_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_abi_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_sig_la_SOURCES = tests/modules/fx_sig.c
tests_modules_fx_sig_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_sig_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_sig_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_nosym_la_SOURCES = tests/modules/fx_nosym.c
tests_modules_fx_nosym_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_nosym_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_nosym_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_name_la_SOURCES = tests/modules/fx_name.c
tests_modules_fx_name_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_name_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_name_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_fail_la_SOURCES = tests/modules/fx_fail.c
tests_modules_fx_fail_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_fail_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_fail_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_dep_la_SOURCES = tests/modules/fx_dep.c
tests_modules_fx_dep_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_dep_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_dep_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_work_la_SOURCES = tests/modules/fx_work.c
tests_modules_fx_work_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_work_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_work_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_sigtime_la_SOURCES = tests/modules/fx_sigtime.c
tests_modules_fx_sigtime_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_sigtime_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_sigtime_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_sigold_la_SOURCES = tests/modules/fx_sigold.c
tests_modules_fx_sigold_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_sigold_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_sigold_la_LDFLAGS = $(FIXTURE_LDFLAGS)
# fx_hook and fx_dns run in the real satcheld (the .py tests below, the
# ratelimit tests).
tests_modules_fx_hook_la_SOURCES = tests/modules/fx_hook.c
tests_modules_fx_hook_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_hook_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_hook_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_events_la_SOURCES = tests/modules/fx_events.c
tests_modules_fx_events_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_events_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_events_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_dns_la_SOURCES = tests/modules/fx_dns.c
tests_modules_fx_dns_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_dns_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_dns_la_LDFLAGS = $(FIXTURE_LDFLAGS)
# Reload-surviving instance state, as two modules from one source.
check_LTLIBRARIES += tests/modules/fx_state.la tests/modules/fx_state_b.la
tests_modules_fx_state_la_SOURCES = tests/modules/fx_state.c
tests_modules_fx_state_la_CPPFLAGS = $(MODULE_CPPFLAGS)
tests_modules_fx_state_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_state_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_modules_fx_state_b_la_SOURCES = tests/modules/fx_state.c
tests_modules_fx_state_b_la_CPPFLAGS = $(MODULE_CPPFLAGS) -DFXS_OTHER
tests_modules_fx_state_b_la_CFLAGS = $(MODULE_CFLAGS)
tests_modules_fx_state_b_la_LDFLAGS = $(FIXTURE_LDFLAGS)

# The unit tests export the core's API to the fixtures like satcheld does.
check_PROGRAMS += tests/check_module tests/check_hook
TESTS += tests/check_module tests/check_hook
tests_check_module_SOURCES = tests/check_module.c
tests_check_module_CPPFLAGS = $(CORE_CPPFLAGS) \
	-DFIXTURE_DIR='"$(abs_top_builddir)/tests/modules/.libs"'
tests_check_module_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_module_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_module_LDFLAGS = -export-dynamic $(SANITIZE_LDFLAGS) \
	$(CORE_WHOLE_ARCHIVE)
tests_check_hook_SOURCES = tests/check_hook.c
tests_check_hook_CPPFLAGS = $(CORE_CPPFLAGS)
tests_check_hook_CFLAGS = $(CORE_CFLAGS) $(CHECK_CFLAGS)
tests_check_hook_LDADD = core/libsatchel-core.la $(CHECK_LIBS)
tests_check_hook_LDFLAGS = $(SANITIZE_LDFLAGS)

# The module SDK, used out of tree: install, build a module with cc and
# pkg-config only, load it and see its hook run.
TESTS += tests/test_sdk.sh
EXTRA_DIST += tests/test_sdk.sh tests/sdk/hello.c tests/sdk/hellocpp.cc \
	tests/sdk/zones.c

# The daemon's runtime end to end (reload, status, ctl, graceful stop).
TESTS += tests/modules/test_daemon.py
EXTRA_DIST += tests/modules/test_daemon.py

# A generation retired by a reload waits for its instances' pool jobs.
TESTS += tests/modules/test_work_reload.py
EXTRA_DIST += tests/modules/test_work_reload.py

# Hook calls answered after hook_timeout; DNS lookups of an instance across
# a reload, cancelled, and PTR (fx_hook, fx_dns).
TESTS += tests/modules/test_hook_late.py tests/modules/test_dns_lifetime.py
EXTRA_DIST += tests/modules/test_hook_late.py \
	tests/modules/test_dns_lifetime.py
# The helo, mail and rcpt events: only what passed the whole chain
# (fx_events).
TESTS += tests/modules/test_events.py
EXTRA_DIST += tests/modules/test_events.py
