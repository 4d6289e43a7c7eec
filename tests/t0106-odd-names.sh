#!/bin/bash
# t0106-odd-names: file names are bytes. Names with spaces, a leading dash, a
# newline, a tab, a backslash, quotes, invalid UTF-8, 255-byte names and deep
# paths come out of `list -0` exactly (byte for byte); `list` without -0
# refuses only the paths with a newline (exit 1, the path named escaped on
# stderr) and still prints the others; `query --json` carries paths that are
# not UTF-8 as path_hex.
. "$(dirname "$0")/test-lib.sh"

D="$SPOOL/user/odd"
NL=$'new\nline'
TAB=$'tab\there'
BAD=$'\xff\xfe'
LONG=$(printf 'L%.0s' $(seq 1 255))
DEEP="$D/deep"
for i in $(seq 1 30); do
	DEEP="$DEEP/$(printf 'd%02d' "$i")$(printf 'x%.0s' $(seq 1 95))"
done

# the odd names, made in $1 (a directory that exists)
make_odd() {
	echo a >"$1/with space" &&
	echo a >"$1/-leading-dash" &&
	echo a >"$1/$NL" &&
	echo a >"$1/$TAB" &&
	echo a >"$1/back\\slash" &&
	echo a >"$1/$BAD" &&
	echo a >"$1/$LONG" &&
	echo a >"$1/quote\"s'q" &&
	echo a >"$1/utf8-é" &&
	echo a >"$1/.hidden" &&
	echo a >"$1/ lead and trail "
}

# odd_paths DIR: the paths make_odd makes in DIR, NUL-terminated, unsorted
odd_paths() {
	printf '%s\0' "$1/with space" "$1/-leading-dash" "$1/$NL" "$1/$TAB" \
		"$1/back\\slash" "$1/$BAD" "$1/$LONG" "$1/quote\"s'q" "$1/utf8-é" \
		"$1/.hidden" "$1/ lead and trail "
}

# hex STRING: its bytes in lower-case hex
hex() {
	printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

test_eq() {
	[ "$2" -eq "$3" ] && return 0
	echo "$1: expected $2, got $3" >&2
	return 1
}

mkdir -p "$D"

expect_success 'start; empty first run' '
	start_daemon &&
	chj begin c1 >mode.out &&
	grep "^full: " mode.out &&
	chj list c1 -0 >list.raw &&
	test_cmp /dev/null list.raw &&
	chj commit c1
'

expect_success 'odd names in a watched directory: list -0 gives them byte for byte' '
	make_odd "$D" &&
	mkdir -p "$DEEP" &&
	echo deep >"$DEEP/$NL deep file" &&
	chj begin c1 &&
	chj list c1 -0 >list.raw &&
	{ odd_paths "$D" && printf "%s\0" "$DEEP/$NL deep file"; } | LC_ALL=C sort -z >expect.raw &&
	test_eq "entries" 12 "$(tr -cd "\0" <expect.raw | wc -c)" &&
	cmp expect.raw list.raw
'

expect_success 'the deep path is really deep, the long name really 255 bytes' '
	test "${#DEEP}" -gt 3000 &&
	test "$(printf %s "$LONG" | wc -c)" -eq 255
'

expect_success 'list without -0 refuses the newline paths, prints the others' '
	chj list c1 >plain.out 2>plain.err
	test_eq "exit status" 1 $? &&
	odd_paths "$D" | tr "\0" "\n" | grep -vxF -e "$D/new" -e line |
		LC_ALL=C sort >expect.plain &&
	test_eq "lines" 10 "$(wc -l <expect.plain)" &&
	test_cmp expect.plain plain.out &&
	grep -F "$D/new\\nline" plain.err &&
	grep -F "2 path(s) with a newline" plain.err &&
	test_eq "stderr lines" 3 "$(wc -l <plain.err)"
'

expect_success 'the refusal names a deep newline path in full' '
	grep -F "$(printf %s "$DEEP" | tail -c 200)/new\\nline deep file" plain.err
'

expect_success 'query --json gives path_hex exactly for paths not UTF-8' '
	chj query --json >query.json &&
	odd_paths "$D" >want.raw &&
	grep -F "\"path_hex\":\"$(hex "$D/$BAD")\"" query.json &&
	test_eq "path_hex rows" 1 "$(grep -c path_hex query.json)" &&
	python3 -c "
import json, sys
want = set(p for p in open(sys.argv[1], \"rb\").read().split(b\"\\0\") if p)
got = set()
for line in open(sys.argv[2], \"rb\"):
    r = json.loads(line)
    if r[\"type\"] != \"change\":
        continue
    p = bytes.fromhex(r[\"path_hex\"]) if \"path_hex\" in r else r[\"path\"].encode()
    if \"path_hex\" not in r and b\"\\xff\" in p:
        sys.exit(\"bad path without hex: %r\" % p)
    got.add(p)
missing = want - got
if missing:
    sys.exit(\"not in query: %r\" % sorted(missing))
" want.raw query.json
'

expect_success 'query -0 gives the raw path, query escapes it to one line' '
	chj query -0 >query.raw &&
	tr "\0" "\n" <query.raw | grep -F "$D/$BAD" >/dev/null &&
	chj query >query.txt &&
	grep -F "$D/new\\nline" query.txt &&
	grep -F "$D/\\xff\\xfe" query.txt &&
	grep -F "$D/tab\\there" query.txt &&
	grep -F "$D/back\\\\slash" query.txt &&
	test_eq "lines" "$(tr -cd "\0" <query.raw | wc -c)" "$(wc -l <query.txt)"
'

expect_success 'commit; odd names in a new directory with an odd name' '
	chj commit c1 &&
	mkdir "$D/$NL dir $BAD" &&
	make_odd "$D/$NL dir $BAD" &&
	chj begin c1 &&
	chj list c1 -0 >list.raw &&
	odd_paths "$D/$NL dir $BAD" | LC_ALL=C sort -z >expect.raw &&
	cmp expect.raw list.raw &&
	chj commit c1
'

expect_success 'later changes below odd directory names come back byte for byte' '
	echo more >>"$D/$NL dir $BAD/$TAB" &&
	echo more >>"$D/$NL dir $BAD/$LONG" &&
	echo more >>"$DEEP/$NL deep file" &&
	echo new >"$DEEP/$BAD" &&
	chmod 600 "$D/-leading-dash" &&
	rm "$D/back\\slash" "$D/$NL" &&
	chj begin c1 &&
	chj list c1 -0 >list.raw &&
	printf "%s\0" "$D/$NL dir $BAD/$TAB" "$D/$NL dir $BAD/$LONG" "$DEEP/$NL deep file" \
		"$DEEP/$BAD" "$D/-leading-dash" | LC_ALL=C sort -z >expect.raw &&
	cmp expect.raw list.raw &&
	chj list c1 --deleted -0 >deleted.raw &&
	printf "%s\0" "$D/back\\slash" "$D/$NL" | LC_ALL=C sort -z >expect.raw &&
	cmp expect.raw deleted.raw &&
	must_fail chj list c1 --deleted >deleted.plain 2>deleted.err &&
	printf "%s\n" "$D/back\\slash" >expect.plain &&
	test_cmp expect.plain deleted.plain &&
	grep -F "$D/new\\nline" deleted.err &&
	chj commit c1
'

expect_success 'renames between odd names: new name listed, old name deleted' '
	mv "$D/$TAB" "$D/$NL again" &&
	mv "$D/$NL dir $BAD" "$D/$TAB dir" &&
	chj begin c1 &&
	chj list c1 -0 >list.raw &&
	{ printf "%s\0" "$D/$NL again"; odd_paths "$D/$TAB dir"; } | LC_ALL=C sort -z >expect.raw &&
	cmp expect.raw list.raw &&
	chj list c1 --deleted -0 >deleted.raw &&
	printf "%s\0" "$D/$NL dir $BAD" "$D/$TAB" | LC_ALL=C sort -z >expect.raw &&
	cmp expect.raw deleted.raw &&
	chj commit c1 &&
	echo later >>"$D/$TAB dir/$BAD" &&
	chj begin c1 &&
	chj list c1 -0 >list.raw &&
	printf "%s\0" "$D/$TAB dir/$BAD" >expect.raw &&
	cmp expect.raw list.raw &&
	chj commit c1
'

expect_success 'a full run of a new consumer gives every odd path byte for byte' '
	chj begin c2 &&
	chj list c2 -0 >list.raw &&
	find "$SPOOL" -type f -print0 | LC_ALL=C sort -z >expect.raw &&
	cmp expect.raw list.raw &&
	must_fail chj list c2 >plain.out 2>plain.err &&
	grep -F "path(s) with a newline" plain.err &&
	chj commit c2
'

# deeper than PATH_MAX (4096): such paths cannot be opened by name in one
# call; they are journaled and listed whole like any other (t0112 in detail)
expect_success 'changes in directories deeper than PATH_MAX are listed whole' '
	N200=$(printf "n%.0s" $(seq 1 200)) &&
	(cd "$D" && mkdir toodeep && cd toodeep &&
	 for i in $(seq 1 25); do mkdir "$N200" && cd "$N200" || exit 1; done &&
	 echo deep >deepfile) &&
	TOODEEP="$D/toodeep$(printf "/$N200%.0s" $(seq 1 25))" &&
	chj begin c1 &&
	chj list c1 -0 >list.raw 2>list.err &&
	test ! -s list.err &&
	printf "%s\0" "$TOODEEP/deepfile" >expect.raw &&
	cmp expect.raw list.raw &&
	chj commit c1 &&
	(cd "$D/toodeep" && for i in $(seq 1 25); do cd "$N200" || exit 1; done &&
	 echo more >>deepfile && echo new >newfile) &&
	chj begin c1 &&
	chj list c1 -0 >list.raw 2>list.err &&
	test ! -s list.err &&
	printf "%s\0" "$TOODEEP/deepfile" "$TOODEEP/newfile" >expect.raw &&
	cmp expect.raw list.raw &&
	chj commit c1
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
