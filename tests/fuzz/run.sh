#!/bin/sh
# tests/fuzz/run.sh [BUILDDIR]: builds the libFuzzer targets of tests/fuzz/
# with clang (-fsanitize=fuzzer,address,undefined) into BUILDDIR (default
# $CHJ_BUILDDIR/fuzz) and runs each for FUZZ_SECONDS (default 60) on a copy of
# its seed corpus (tests/fuzz/corpus/TARGET). FUZZ_SECONDS=0 only replays the
# seeds once (a quick regression check). FUZZ_TARGETS="config path" limits the
# targets; FUZZ_CC picks the compiler (default clang); FUZZ_CFLAGS adds flags.
#
# Prints a table (target, executions, corpus files, result) and exits non-zero
# when any target crashed, leaked, timed out or ran out of memory; the input
# that did it is kept in BUILDDIR/artifacts/TARGET/ and the log in
# BUILDDIR/TARGET.log. Exits 0 with a message when clang has no libFuzzer.
set -u

srcdir=${CHJ_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
fuzzdir=$srcdir/tests/fuzz
if [ $# -ge 1 ]; then
	builddir=$1
elif [ -n "${CHJ_BUILDDIR:-}" ]; then
	builddir=$CHJ_BUILDDIR/fuzz
else
	echo "usage: $0 BUILDDIR (or set CHJ_BUILDDIR)" >&2
	exit 2
fi
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-config consumer path cyrus-header cyrus-index manifest archive imapd-conf}
cc=${FUZZ_CC:-clang}
case $seconds in
*[!0-9]*|'') echo "run.sh: FUZZ_SECONDS must be a number of seconds" >&2; exit 2 ;;
esac

mkdir -p "$builddir" || exit 1
builddir=$(cd "$builddir" && pwd)

# Skip cleanly when clang or its libFuzzer runtime is missing.
probe=$builddir/probe
cat >"$probe.c" <<'EOC'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOC
if ! command -v "$cc" >/dev/null 2>&1 ||
   ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe" "$probe.c" >"$probe.log" 2>&1; then
	echo "fuzz: SKIP: $cc with libFuzzer (-fsanitize=fuzzer) is not available" \
	     "(Debian 12: apt-get install clang libclang-rt-14-dev)"
	rm -f "$probe" "$probe.c"
	exit 0
fi
rm -f "$probe" "$probe.c" "$probe.log"

# sources each target needs besides its own file
sources_of() {
	case $1 in
	config) echo "common/config.c common/path.c common/error.c" ;;
	consumer) echo "common/consumer.c common/path.c common/array.c common/atomicfile.c common/error.c common/stateperm.c" ;;
	path) echo "common/path.c" ;;
	cyrus-header) echo "common/cyrus/meta.c common/cyrus/dlist.c common/cyrus/conf.c common/error.c" ;;
	cyrus-index) echo "common/cyrus/meta.c common/cyrus/dlist.c common/cyrus/conf.c common/error.c" ;;
	imapd-conf) echo "common/cyrus/conf.c common/error.c" ;;
	manifest) echo "common/archive/manifest.c common/array.c common/error.c" ;;
	archive) echo "common/archive/archive.c common/archive/archive-append.c common/archive/archive-fetch.c common/archive/archive-io.c common/archive/archive-lib.c common/archive/archive-ops.c common/archive/archive-query.c common/archive/archive-sidecar.c common/archive/pdeflate.c common/array.c common/atomicfile.c common/error.c" ;;
	*) echo "run.sh: unknown target '$1'" >&2; return 1 ;;
	esac
}

# libraries each target links with
libs_of() {
	case $1 in
	cyrus-header|cyrus-index|imapd-conf) echo "-lz" ;;
	archive) echo "-lsqlite3 -lz -lcrypto -pthread" ;;
	esac
}

CFLAGS_FUZZ="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wall -Wextra -D_GNU_SOURCE ${FUZZ_CFLAGS:-}"
status=0
for t in $targets; do
	srcs=$(sources_of "$t") || exit 2
	set -- "$fuzzdir/fuzz-$t.c"
	for s in $srcs; do set -- "$@" "$srcdir/$s"; done
	echo "fuzz: building fuzz-$t"
	# shellcheck disable=SC2086
	if ! "$cc" $CFLAGS_FUZZ -I "$srcdir/common" -o "$builddir/fuzz-$t" "$@" $(libs_of "$t"); then
		echo "fuzz: cannot build fuzz-$t" >&2
		exit 1
	fi
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

results=$builddir/results
: >"$results"
for t in $targets; do
	corpus=$builddir/corpus/$t
	artifacts=$builddir/artifacts/$t
	log=$builddir/$t.log
	rm -rf "$corpus"
	mkdir -p "$corpus" "$artifacts"
	cp "$fuzzdir/corpus/$t"/* "$corpus"/ 2>/dev/null
	set -- -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/"
	[ -f "$fuzzdir/$t.dict" ] && set -- "$@" -dict="$fuzzdir/$t.dict"
	if [ "$seconds" -eq 0 ]; then
		echo "fuzz: fuzz-$t: replaying the seed corpus"
		set -- "$@" -runs=0 "$corpus"
	else
		echo "fuzz: fuzz-$t: fuzzing for $seconds s"
		set -- "$@" -max_total_time="$seconds" "$corpus"
	fi
	"$builddir/fuzz-$t" "$@" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs="?"
	files=$(find "$corpus" -type f | wc -l)
	if [ $rc -eq 0 ] && ! grep -q '^==[0-9]*==ERROR\|^SUMMARY: \|runtime error:' "$log"; then
		result=ok
	else
		status=1
		kind=$(grep -o 'ERROR: libFuzzer: [a-z-]*\|ERROR: [A-Za-z]*Sanitizer: [a-z-]*\|runtime error\|check failed: .*' "$log" | head -n 1)
		art=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | head -n 1)
		result="FAIL (${kind:-exit $rc}) input: ${art:-none}, log: $log"
	fi
	printf '%-14s %12s %8s  %s\n' "fuzz-$t" "$runs" "$files" "$result" >>"$results"
done

printf '%-14s %12s %8s  %s\n' target runs corpus result
cat "$results"
exit $status
