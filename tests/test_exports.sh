#!/bin/sh
# Every function the installed headers declare SC_API must be exported by
# satcheld (modules resolve them at dlopen time) and satchelctl (which
# loads modules to check their keys); nothing else named sc_ may leak.
set -u
b=${SATCHEL_BUILDDIR:-.}
s=${SATCHEL_SRCDIR:-..}
fail=0
api=$(sed -n 's/.*SC_API[^(]*[ *]\(sc_[a-z0-9_]*\)(.*/\1/p' \
	"$s"/core/include/satchel/*.h | sort -u)
n=$(echo "$api" | wc -l)
[ "$n" -gt 50 ] || { echo "found only $n SC_API functions: parser broken"; exit 1; }
for prog in satcheld satchelctl; do
	bin=$b/core/$prog
	[ -f "$b/core/.libs/$prog" ] && bin=$b/core/.libs/$prog
	exported=$(nm -D --defined-only "$bin" | awk '$2 == "T" {print $3}' | sort -u)
	missing=$(echo "$api" | while read -r f; do
		echo "$exported" | grep -qx "$f" || echo "$f"; done)
	if [ -n "$missing" ]; then
		echo "$prog does not export:"; echo "$missing"; fail=1
	fi
	# Internal functions stay hidden (-fvisibility=hidden).
	extra=$(echo "$exported" | grep '^sc_' | while read -r f; do
		echo "$api" | grep -qx "$f" || echo "$f"; done)
	if [ -n "$extra" ]; then
		echo "$prog exports internal functions:"; echo "$extra"; fail=1
	fi
	echo "$prog: $n SC_API functions checked"
done
exit $fail
