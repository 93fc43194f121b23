# Tests: Check unit suites for the core, fixture modules, and integration
# tests that start the real satcheld (see tests/harness/).
include tests/config.mk
include tests/runtime.mk
include tests/net.mk
EXTRA_DIST += tests/run-test.sh tests/harness/satchel_harness.py \
	tests/harness/dnsserver.py
TESTS += tests/test_satchelctl_diag.py
EXTRA_DIST += tests/test_satchelctl_diag.py
TESTS += tests/test_exports.sh
EXTRA_DIST += tests/test_exports.sh
