#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/test_install_conf.sh - `make install` never overwrites a config
# file: a first install into an empty DESTDIR puts every shipped file in
# place and the pristine copies in $(docdir)/examples; after an admin's
# edit (and a deleted file) a second install keeps the edit, says so, and
# puts back only the missing file; `make uninstall` removes the unchanged
# files and keeps the edited one.
set -u
umask 022

: "${SATCHEL_BUILDDIR:?}" "${SATCHEL_SRCDIR:?}"

fail() { echo "FAIL: $*"; exit 1; }

tmp=$(mktemp -d /tmp/test_install_conf.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
prefix=/usr/satchel-test
# the same prefix, sysconfdir and docdir for every make call
mk() {
	make -s -C "$SATCHEL_BUILDDIR" "$@" DESTDIR="$dest" prefix="$prefix" \
		sysconfdir="$prefix/etc" docdir="$prefix/share/doc/satchel" \
		>"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "make $*"; }
}
etc=$dest$prefix/etc/satchel
examples=$dest$prefix/share/doc/satchel/examples

echo "== first make install"
mk install
for f in satchel.yaml plugins.d/50-smtp.yaml plugins.d/20-pop_before_smtp.yaml; do
	case $f in plugins.d/*) src=$SATCHEL_SRCDIR/$f;; *) src=$SATCHEL_SRCDIR/conf/$f;; esac
	cmp -s "$src" "$etc/$f" || fail "$etc/$f is not the shipped file"
	cmp -s "$src" "$examples/$f" || fail "no pristine copy $examples/$f"
done
n_src=$(ls "$SATCHEL_SRCDIR"/plugins.d/*.yaml | wc -l)
n_etc=$(ls "$etc"/plugins.d/*.yaml | wc -l)
[ "$n_src" = "$n_etc" ] || fail "$n_etc plugins.d files installed, $n_src shipped"
grep -q '^enabled: false' "$etc/plugins.d/20-pop_before_smtp.yaml" ||
	fail "POP-before-SMTP is not shipped switched off"

echo "== an admin edits satchel.yaml and 50-smtp.yaml, deletes 70-relay.yaml"
echo "# edited by the admin" >>"$etc/satchel.yaml"
sed -i 's/^max_recipients: .*/max_recipients: 7/' "$etc/plugins.d/50-smtp.yaml"
rm "$etc/plugins.d/70-relay.yaml"

echo "== second make install"
mk install
cat "$tmp/make.log"
tail -n 1 "$etc/satchel.yaml" | grep -q '^# edited by the admin$' ||
	fail "make install overwrote the edited satchel.yaml"
grep -q '^max_recipients: 7$' "$etc/plugins.d/50-smtp.yaml" ||
	fail "make install overwrote the edited 50-smtp.yaml"
grep -q "kept $etc/satchel.yaml" "$tmp/make.log" ||
	fail "make install did not say it kept satchel.yaml"
grep -q "kept $etc/plugins.d/50-smtp.yaml" "$tmp/make.log" ||
	fail "make install did not say it kept 50-smtp.yaml"
grep -q "kept .*10-ratelimit.yaml" "$tmp/make.log" &&
	fail "make install reports an unchanged file as kept"
cmp -s "$SATCHEL_SRCDIR/plugins.d/70-relay.yaml" "$etc/plugins.d/70-relay.yaml" ||
	fail "make install did not put back the deleted 70-relay.yaml"
cmp -s "$SATCHEL_SRCDIR/plugins.d/50-smtp.yaml" "$examples/plugins.d/50-smtp.yaml" ||
	fail "the pristine 50-smtp.yaml is not in $examples"

echo "== make uninstall"
mk uninstall
[ -f "$etc/satchel.yaml" ] && [ -f "$etc/plugins.d/50-smtp.yaml" ] ||
	fail "make uninstall removed an edited config file"
[ ! -e "$etc/plugins.d/10-ratelimit.yaml" ] ||
	fail "make uninstall left the unchanged 10-ratelimit.yaml"
[ -z "$(ls "$examples/plugins.d" 2>/dev/null)" ] ||
	fail "make uninstall left pristine copies"
echo "PASS"
