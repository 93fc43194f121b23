#!/bin/sh
# Runs one libFuzzer target for a while (make fuzz runs every target).
# Usage: run-fuzz.sh TARGET SECONDS SRCDIR   (from the build directory)
# The seeds (SRCDIR/tests/fuzz/corpus/TARGET) are read, new inputs go to
# fuzz-out/TARGET/corpus; a crash, leak, timeout or sanitizer report fails
# with its input saved in fuzz-out/TARGET/. Extra libFuzzer flags:
# FUZZ_FLAGS (e.g. FUZZ_FLAGS=-jobs=4).
set -u
t=$1 secs=$2 src=$3
bin=tests/fuzz/fuzz_$t
out=fuzz-out/$t
mkdir -p "$out/corpus"
set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$out/"
[ -f "$src/tests/fuzz/dict/$t.dict" ] && set -- "$@" -dict="$src/tests/fuzz/dict/$t.dict"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	"$bin" "$@" ${FUZZ_FLAGS:-} "$out/corpus" "$src/tests/fuzz/corpus/$t" \
	>"$out/log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -n 1)
if [ $rc -ne 0 ]; then
	echo "FUZZ FAIL: $t (exit $rc) after ${runs:-?} runs; the end of $out/log:"
	tail -n 60 "$out/log"
	echo "inputs kept in $out/:"
	ls "$out" | grep -v -e '^corpus$' -e '^log$' | sed 's/^/  /'
	echo "(fix it, then add the input to tests/fuzz/corpus/$t/ as its regression test)"
	exit 1
fi
echo "fuzz ok: $t, $secs s, ${runs:-?} runs, corpus $(ls "$out/corpus" | wc -l) new + $(ls "$src/tests/fuzz/corpus/$t" | wc -l) seeds"
