#!/bin/sh
# Runs one test inside a network namespace that has only loopback, so no
# packet or DNS query can leave the machine whatever a library does.
# Usage: run-test.sh INTERPRETER TEST [ARGS...]
# SATCHEL_NO_NETNS=1 runs in the current namespace (debugging only).
if [ "${SATCHEL_NO_NETNS:-0}" = 1 ] || [ "${SATCHEL_IN_NETNS:-0}" = 1 ]; then
	exec "$@"
fi
if ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
	echo "run-test.sh: unshare (util-linux) and ip (iproute2) are needed" >&2
	exit 99
fi
SATCHEL_IN_NETNS=1
export SATCHEL_IN_NETNS
exec unshare --net -- sh -c 'ip link set lo up || exit 99; exec "$@"' \
	run-test "$@"
