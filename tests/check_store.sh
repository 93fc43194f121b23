#!/bin/sh
# Runs tests/check_store (the store's Check suite, which starts a real
# redis-server on loopback) inside the tests' network namespace: make
# check runs .sh tests through tests/run-test.sh, plain programs not.
exec "${SATCHEL_BUILDDIR:-.}/tests/check_store"
