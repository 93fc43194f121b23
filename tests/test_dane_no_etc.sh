#!/bin/sh
# DANE verification must not depend on /etc/hosts or /etc/resolv.conf:
# containers and chroots may lack them, and gnutls-dane's own resolver
# (which satchel never uses: TLSA records come from core/dns.c) reads both
# when its state is created. Runs tests/check_net, whose TLS test verifies
# a certificate by DANE, in a mount namespace where both files are gone.
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (mount namespace)"; exit 77; }
check_net=${SATCHEL_BUILDDIR:-.}/tests/check_net
t=$(mktemp -d) || exit 99
trap 'rmdir "$t"' EXIT
unshare -m --propagation unchanged sh -c '
	# private, or the overlay below would show outside this namespace
	mount --make-rprivate / 2>/dev/null ||
		{ echo "SKIP: / cannot be made private (a chroot?)"; exit 77; }
	t=$1
	mount -t tmpfs tmpfs "$t" || exit 77
	mkdir "$t/u" "$t/w"
	mount -t overlay overlay -o "lowerdir=/etc,upperdir=$t/u,workdir=$t/w" \
		/etc || { echo "SKIP: no overlayfs"; exit 77; }
	rm -f /etc/hosts /etc/resolv.conf
	if [ -e /etc/hosts ] || [ -e /etc/resolv.conf ]; then
		echo "could not hide /etc/hosts and /etc/resolv.conf"; exit 99
	fi
	exec "$0"' "$check_net" "$t"
