#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/compare.sh - satchel against Debian's Postfix and smtp-sink, side by
# side in one run (one command, as root):
#
#     bench/compare.sh [--rounds 3] [--quick] [--skip tls,idle,callgrind]
#
# 1. installs Debian's postfix (smtp-source and smtp-sink come with it) when
#    missing, WITHOUT starting the system instance: a policy-rc.d that
#    refuses starts during the install, and the unit disabled and stopped
#    after it. Postfix is deliberately not in .ci/packages: installing it
#    there would start an MTA on CI, and CI does not run this benchmark.
# 2. builds satchel from this tree in $SATCHEL_BUILDDIR (default
#    _build-bench: an optimised build without sanitizers);
# 3. runs bench/compare.py in a network namespace with only loopback
#    (tests/run-test.sh): a private Postfix, smtp-sink and satcheld, each
#    from its own temp dir; it prints the table README's "Performance"
#    section holds.
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "compare.sh: run as root (apt-get, namespaces, Postfix)" >&2
	exit 1
fi
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SATCHEL_BUILDDIR:-$SRC/_build-bench}

need=
[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/postfix ] || need=postfix
installed_postfix=$need
for t in valgrind:valgrind openssl:openssl ip:iproute2 unshare:util-linux \
	 callgrind_annotate:valgrind; do
	command -v "${t%%:*}" >/dev/null 2>&1 || need="$need ${t#*:}"
done
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need="$need python3-yaml"
if [ -n "$need" ]; then
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		# invoke-rc.d asks it before starting a service: 101 = never
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
		install -y --no-install-recommends $need ||
		{ [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
	[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
if [ -n "$installed_postfix" ]; then
	# installed by us: the system instance stays off and disabled
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl disable --now postfix.service >/dev/null 2>&1 || true
	elif command -v update-rc.d >/dev/null; then
		update-rc.d postfix disable >/dev/null 2>&1 || true
	fi
	if postfix status >/dev/null 2>&1; then
		postfix stop
	fi
fi

# a fresh satchel from this tree
if [ ! -f "$BUILD/Makefile" ]; then
	[ -x "$SRC/configure" ] || (cd "$SRC" && ./autogen.sh)
	mkdir -p "$BUILD"
	(cd "$BUILD" && "$SRC/configure" >/dev/null)
fi
make -C "$BUILD" -j"$(nproc)" >/dev/null

SATCHEL_BUILDDIR=$BUILD
SATCHEL_SRCDIR=$SRC
export SATCHEL_BUILDDIR SATCHEL_SRCDIR
exec "$SRC/tests/run-test.sh" /usr/bin/python3 "$SRC/bench/compare.py" "$@"
