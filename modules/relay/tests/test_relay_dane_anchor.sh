#!/bin/sh
# `tls: dane` needs the DNSSEC root trust anchor (dns-root-data): without
# it no TLSA answer validates and DANE would silently be opportunistic, so
# satcheld must refuse to start, naming the file and the package. Runs the
# daemon in a mount namespace where /usr/share/dns/root.key is hidden, then
# (as a control) with it.
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (mount namespace)"; exit 77; }
[ -r /usr/share/dns/root.key ] || { echo "dns-root-data is not installed"; exit 99; }
b=${SATCHEL_BUILDDIR:?}
d=$(mktemp -d) || exit 99
trap 'rm -rf "$d"' EXIT
mkdir "$d/plugins.d" "$d/state" "$d/modules" "$d/overlay"
ln -s "$b/modules/relay/.libs/relay.so" "$d/modules/relay.so"
cat > "$d/satchel.yaml" <<YAML
hostname: mail.example.test
state_dir: $d/state
module_dir: $d/modules
user: ""
domains: {example.test: {routing: local}}
include: plugins.d/*.yaml
YAML
printf 'module: relay\ntls: dane\n' > "$d/plugins.d/70-relay.yaml"

# without the anchor: a fatal error at start
unshare -m --propagation unchanged sh -c '
	# private, or the overlay below would show outside this namespace
	mount --make-rprivate / 2>/dev/null ||
		{ echo "SKIP: / cannot be made private (a chroot?)"; exit 77; }
	t=$2 && mount -t tmpfs tmpfs "$t" && mkdir "$t/u" "$t/w" &&
	mount -t overlay overlay -o \
		"lowerdir=/usr/share/dns,upperdir=$t/u,workdir=$t/w" \
		/usr/share/dns || exit 77
	rm -f /usr/share/dns/root.key
	[ ! -e /usr/share/dns/root.key ] || exit 99
	exec timeout 30 "$0" -f -c "$1"' "$b/core/satcheld" "$d/satchel.yaml" \
	"$d/overlay" >"$d/out" 2>&1
rc=$?
[ $rc -eq 77 ] && { cat "$d/out"; exit 77; }
cat "$d/out"
if [ $rc -ne 1 ]; then
	echo "FAIL: satcheld exited $rc without the trust anchor, expected 1"
	exit 1
fi
grep -q 'tls: dane needs DNSSEC validation, but the root trust anchor /usr/share/dns/root.key is missing (install the Debian package dns-root-data)' "$d/out" ||
	{ echo "FAIL: no clear error"; exit 1; }

# with it: the daemon starts
"$b/core/satcheld" -f -c "$d/satchel.yaml" >"$d/out2" 2>&1 &
pid=$!
i=0
until grep -q 'satcheld ready' "$d/out2"; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		cat "$d/out2"; echo "FAIL: satcheld did not start with the anchor"
		kill $pid 2>/dev/null; exit 1
	fi
	sleep 0.1
done
kill $pid
wait $pid
echo "PASS"
