#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/test_sdk.sh - the module SDK used the way a third party uses it:
# install satchel into a temporary prefix, build tests/sdk/hello.c (C),
# hellocpp.cc (C++) and zones.c out of tree with nothing but a compiler
# and pkg-config, check configs that load them (satcheld -t, satchelctl
# check: zones.c's constraints and validate callback refuse bad ones with
# FILE:LINE:COL), then run satcheld and see the connect hooks run.
# Runs inside tests/run-test.sh (loopback-only network namespace).
set -u
umask 022

: "${SATCHEL_BUILDDIR:?}" "${SATCHEL_SRCDIR:?}"
CC=${CC:-cc}
PY=/usr/bin/python3

fail() { echo "FAIL: $*"; [ -f "$tmp/satcheld.log" ] && cat "$tmp/satcheld.log"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

command -v "$CC" >/dev/null 2>&1 || skip "no C compiler ($CC)"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed"

tmp=$(mktemp -d /tmp/test_sdk.XXXXXX) || exit 99
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
# the daemon drops to nobody and must reach its state_dir below $tmp
chmod 0755 "$tmp"
prefix=$tmp/prefix

echo "== make install prefix=$prefix"
make -s -C "$SATCHEL_BUILDDIR" install prefix="$prefix" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install into a temporary prefix"; }
[ -x "$prefix/sbin/satcheld" ] || fail "satcheld not installed in $prefix/sbin"

# satchel.pc holds the configure-time prefix; the temporary install moved
# it, so tell pkg-config where it went (what --define-prefix would guess).
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pc() { pkg-config --define-variable=prefix="$prefix" "$@" satchel; }
cflags=$(pc --cflags) || fail "pkg-config --cflags satchel"
moddir=$(pc --variable=moduledir) || fail "pkg-config --variable=moduledir"
[ "$moddir" = "$prefix/lib/satchel/modules" ] ||
	fail "moduledir is $moddir, expected $prefix/lib/satchel/modules"
echo "cflags: $cflags"
echo "moduledir: $moddir"

echo "== build hello.so out of tree"
mkdir "$tmp/src" && cp "$SATCHEL_SRCDIR/tests/sdk/hello.c" "$tmp/src/" || exit 99
(cd "$tmp/src" &&
	$CC -shared -fPIC -Wall -Wextra -Werror $cflags hello.c -o "$moddir/hello.so") ||
	fail "cc -shared -fPIC \$(pkg-config --cflags satchel) hello.c"
nm -D --defined-only "$moddir/hello.so" | grep -q ' sc_module_hello$' ||
	fail "hello.so does not export sc_module_hello"

echo "== build hellocpp.so (C++) and zones.so, zonesbad.so out of tree"
CXX=${CXX:-c++}
command -v "$CXX" >/dev/null 2>&1 || skip "no C++ compiler ($CXX)"
cp "$SATCHEL_SRCDIR/tests/sdk/hellocpp.cc" "$SATCHEL_SRCDIR/tests/sdk/zones.c" \
	"$tmp/src/" || exit 99
(cd "$tmp/src" &&
	$CXX -std=c++20 -shared -fPIC -Wall -Wextra -Werror $cflags hellocpp.cc \
		-o "$moddir/hellocpp.so") ||
	fail "c++ -std=c++20 -shared -fPIC \$(pkg-config --cflags satchel) hellocpp.cc"
nm -D --defined-only "$moddir/hellocpp.so" | grep -q ' sc_module_hellocpp$' ||
	fail "hellocpp.so does not export sc_module_hellocpp (C linkage)"
(cd "$tmp/src" &&
	$CC -shared -fPIC -Wall -Wextra -Werror $cflags zones.c -o "$moddir/zones.so" &&
	$CC -DZONES_RESERVED_KEY -shared -fPIC -Wall -Wextra -Werror $cflags zones.c \
		-o "$moddir/zonesbad.so") ||
	fail "cc zones.c"

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/etc/plugins.d"
cat >"$tmp/etc/satchel.yaml" <<EOC
hostname: mail.example.test
state_dir: $tmp/state
module_dir: $moddir
user: nobody
log: {level: info}
domains:
  example.test: {routing: local}
include: plugins.d/*.yaml
EOC
cat >"$tmp/etc/plugins.d/10-hello.yaml" <<EOC
module: hello
greeting: sdk-hello
EOC
cat >"$tmp/etc/plugins.d/11-hellocpp.yaml" <<EOC
module: hellocpp
greeting: sdk-hello
EOC
cat >"$tmp/etc/plugins.d/20-smtp.yaml" <<EOC
module: smtp
listen:
  - {address: "127.0.0.1:$port", mode: mx, tls: none}
EOC
[ "$(id -u)" = 0 ] || sed -i 's/^user: nobody/user: ""/' "$tmp/etc/satchel.yaml"

echo "== satcheld -t"
out=$("$prefix/sbin/satcheld" -t -c "$tmp/etc/satchel.yaml" 2>&1) ||
	fail "satcheld -t refused the config: $out"
[ "$out" = "satcheld: configuration $tmp/etc/satchel.yaml is valid (3 module instances enabled)" ] ||
	fail "unexpected -t output: $out"

# the module's key schema is enforced: an unknown key is FILE:LINE:COL
echo "colour: blue" >>"$tmp/etc/plugins.d/10-hello.yaml"
out=$("$prefix/sbin/satcheld" -t -c "$tmp/etc/satchel.yaml" 2>&1) &&
	fail "satcheld -t accepted an unknown key"
echo "$out" | grep -q "10-hello.yaml:3:1: .*colour" ||
	fail "no FILE:LINE:COL for the unknown key: $out"
sed -i '/^colour/d' "$tmp/etc/plugins.d/10-hello.yaml"

# the key table's constraints and the module's validate callback, as
# `satchelctl check` and `satcheld -t` report them: FILE:LINE:COL
ctl() { "$prefix/sbin/satchelctl" -c "$tmp/etc/satchel.yaml" "$@"; }
zones=$tmp/etc/plugins.d/30-zones.yaml
expect_check() {	# expect_check WHAT REGEX: check fails, printing REGEX
	out=$(ctl check 2>&1) && fail "satchelctl check accepted $1"
	echo "$out" | grep -Eq "$2" || fail "$1: no '$2' in: $out"
	out=$("$prefix/sbin/satcheld" -t -c "$tmp/etc/satchel.yaml" 2>&1) &&
		fail "satcheld -t accepted $1"
	echo "$out" | grep -Eq "$2" || fail "$1 (satcheld -t): no '$2' in: $out"
	echo "refused $1: $(echo "$out" | grep -E "$2")"
}
printf 'module: zones\nzones: []\n' >"$zones"
expect_check "an empty list" "30-zones.yaml:2:8: zones: must not be empty"
printf 'module: zones\nzones: [example.test, "bad zone"]\n' >"$zones"
expect_check "a bad host name" "30-zones.yaml:2:23: zones: 'bad zone' is not a host name"
printf 'module: zones\nzones: [example.test]\nttl: 2d\n' >"$zones"
expect_check "a value out of range" "30-zones.yaml:3:6: ttl: '2d' is above the greatest allowed value, 1d"
printf 'module: zones\nzones: [example.test, example.org]\nprimary: example.net\n' >"$zones"
expect_check "what validate refuses" "30-zones.yaml:3:1: primary: 'example.net' is not one of the zones"
printf 'module: zonesbad\nzones: [example.test]\n' >"$zones"
expect_check "a module declaring a reserved key" 'module zonesbad .*: its key table declares "name", a name the core keeps'
printf 'module: zones\nzones: [example.test, example.org]\nprimary: example.org\nttl: 1d\n' >"$zones"
out=$(ctl check 2>&1) || fail "satchelctl check refused a valid zones config: $out"
rm -f "$zones"

echo "== satchelctl modules"
out=$("$prefix/sbin/satchelctl" -c "$tmp/etc/satchel.yaml" modules --keys 2>&1)
echo "$out" | grep -q '^hello 0.0.1 (ABI [0-9]*\.[0-9]*): SDK test module' ||
	fail "satchelctl modules does not list hello: $out"
echo "$out" | grep -q 'greeting: string, default hello' ||
	fail "satchelctl modules --keys does not show hello's key: $out"

echo "== run satcheld with hello.so"
"$prefix/sbin/satcheld" -f -c "$tmp/etc/satchel.yaml" 2>"$tmp/satcheld.log" &
pid=$!
i=0
until grep -q 'satcheld ready' "$tmp/satcheld.log"; do
	i=$((i + 1))
	[ $i -le 150 ] || fail "satcheld not ready after 15 s"
	kill -0 "$pid" 2>/dev/null || { pid=; fail "satcheld exited during start-up"; }
	sleep 0.1
done
out=$("$prefix/sbin/satchelctl" -c "$tmp/etc/satchel.yaml" modules 2>&1)
echo "$out" | grep -q 'instance 10-hello: hooks connect;' ||
	fail "the running daemon does not report hello's connect hook: $out"

# a TCP client connects to the smtp listener: the connect hook logs
banner=$($PY - "$port" <<'EOP'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.settimeout(10)
try:
    print(s.recv(512).decode(errors="replace").strip())
except OSError as e:
    print("no banner: %s" % e)
s.close()
EOP
)
echo "banner: $banner"
i=0
until grep -q 'sdk-hello: connect from 127.0.0.1' "$tmp/satcheld.log"; do
	i=$((i + 1))
	if [ $i -gt 50 ]; then
		case $banner in
		220*) fail "the smtp listener answered but hello's hook did not log" ;;
		*) skip "the smtp listener does not answer yet ($banner); hello.so loaded and was checked" ;;
		esac
	fi
	sleep 0.1
done
echo "hook ran: $(grep 'sdk-hello: connect' "$tmp/satcheld.log")"
i=0
until grep -q 'sdk-hello (c++): connect from 127.0.0.1' "$tmp/satcheld.log"; do
	i=$((i + 1))
	[ $i -le 50 ] || fail "the C++ module's connect hook did not log"
	sleep 0.1
done
echo "C++ hook ran: $(grep 'sdk-hello (c++): connect' "$tmp/satcheld.log")"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc = 0 ] || fail "satcheld exited with $rc after SIGTERM"
echo "PASS"
exit 0
