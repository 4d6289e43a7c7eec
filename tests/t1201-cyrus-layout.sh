#!/bin/bash
# t1201-cyrus-layout: common/cyrus/ against a real Cyrus 3.6 (../shared/cyrus-lab
# or tests/cyrus-lab.sh via CYRUS_LAB): in the uuid and the legacy hashed
# layout, the mailbox list (through cyr_dbtool) and every mailbox's path equal
# what Cyrus's own mbpath says, the cyrus.header fallback finds the same
# mailboxes, the user files equal mbpath -j's, every path maps back to its
# user, and the reader lock waits for a writer's exclusive index lock.
. "$(dirname "$0")/test-lib.sh"

CYRBIN=/usr/lib/cyrus/bin
LAB=${CYRUS_LAB:-$CHJ_SRCDIR/../shared/cyrus-lab/cyrus-lab.sh}
LAYOUT="$CHJ_BUILDDIR/tests/cyrus-layout"
require_root
[ -x "$CYRBIN/master" ] || skip_all "Cyrus IMAP is not installed ($CYRBIN/master)"
[ -f "$LAB" ] || skip_all "no cyrus-lab.sh ($LAB)"
id cyrus >/dev/null 2>&1 || skip_all "no cyrus user"
command -v python3 >/dev/null || skip_all "needs python3"
chmod 755 "$TRASH"

LABS=
test_cleanup_extra='for d in $LABS; do bash "$LAB" stop "$d" >/dev/null 2>&1; done'

# start_lab DIR LEGACY: a populated, churned instance
start_lab() {
	_sl_ports=$(test_ports 3) || return 1
	set -- "$1" "$2" $_sl_ports
	LABS="$LABS $1"
	CYRUS_LAB_IMAP_PORT=$3 CYRUS_LAB_LMTP_PORT=$4 CYRUS_LAB_SIEVE_PORT=$5 CYRUS_LAB_SYSLOG=0 \
	CYRUS_LAB_LEGACY_DIRS=$2 CYRUS_LAB_HASHSPOOL=$2 bash "$LAB" start "$1" >"$1.log" 2>&1 &&
	bash "$LAB" populate "$1" 2 12 >>"$1.log" 2>&1 &&
	bash "$LAB" churn "$1" 2 >>"$1.log" 2>&1 &&
	python3 - "$3" >>"$1.log" 2>&1 <<'PY'
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1])); m.login('admin', 'x')
for f in ('user/j.doe', 'user/j.doe/x.y', 'user/user01/a.b', 'user/Zed', 'user/9nine'):
    assert m.create('"%s"' % f)[0] == 'OK', f
m.logout()
PY
}

as_cyrus() {
	su -s /bin/sh cyrus -c "$*"
}

# external NAME: Cyrus's external name of an internal one (unixhierarchysep)
external() {
	printf '%s\n' "$1" | sed -e 's|\.|/|g' -e 's|\^|.|g'
}

# check_lab DIR: list, paths, fallback, user files and owners
check_lab() {
	D=$1
	"$LAYOUT" "$D/imapd.conf" list >list.txt || return 1
	[ "$(wc -l <list.txt)" -ge 20 ] || { echo "only $(wc -l <list.txt) mailboxes"; return 1; }
	: >ours.txt
	: >theirs.txt
	while IFS='	' read -r name uid mbtype user path; do
		printf '%s\n' "$path" >>ours.txt
		as_cyrus "$CYRBIN/mbpath -C $D/imapd.conf '$(external "$name")'" >>theirs.txt || return 1
		[ -d "$path" ] || { echo "missing directory $path"; return 1; }
	done <list.txt
	test_cmp theirs.txt ours.txt || return 1
	# the sieve mailbox and a delayed delete are there
	grep -q '^user\.user01\.#sieve	' list.txt && grep -q '^DELETED\.user\.user01\.' list.txt &&
	grep -q '^user\.j^doe\.x^y	.*	j\.doe	' list.txt || return 1
	# one user's list is that user's part of the whole
	"$LAYOUT" "$D/imapd.conf" list user01 >one.txt &&
	awk -F'\t' '$4 == "user01"' list.txt >want.txt && test_cmp want.txt one.txt || return 1
	# the fallback without cyr_dbtool, from the cyrus.header files
	awk -F'\t' '{print $1 "\t" $2 "\t" $5}' list.txt >want.txt
	CHJ_CYRUS_TOOLSDIR=/nonexistent "$LAYOUT" "$D/imapd.conf" list |
		awk -F'\t' '{print $1 "\t" $2 "\t" $5}' >got.txt
	test_cmp want.txt got.txt || return 1
	for u in user01 j.doe; do
		as_cyrus "$CYRBIN/mbpath -C $D/imapd.conf -j 'user/$u'" >mbp.json || return 1
		python3 - "$u" >want.txt <<'PY' || return 1
import json, os, sys
j = json.load(open('mbp.json'))['user']
out = [j[k] for k in ('seen', 'sub', 'dav') if os.path.exists(j[k])]
s = j['sieve']
if os.path.isdir(s):
    out += [os.path.join(s, f) for f in os.listdir(s)]
for p in sorted(out):
    print(p)
PY
		"$LAYOUT" "$D/imapd.conf" files "$u" >got.txt && test_cmp want.txt got.txt || return 1
	done
	# every file of every mailbox, and the user files, map back to their user
	while IFS='	' read -r name uid mbtype user path; do
		for f in "$path"/*; do printf '%s\t%s\n' "$f" "$user"; done
	done <list.txt >want.txt
	"$LAYOUT" "$D/imapd.conf" files user01 | sed 's/$/\tuser01/' >>want.txt
	cut -f1 want.txt | xargs "$LAYOUT" "$D/imapd.conf" owner >got.txt && test_cmp want.txt got.txt
}

expect_success 'uuid layout: list, paths, fallback, user files, owners equal Cyrus' '
	start_lab "$TRASH/lab-uuid" 0 && check_lab "$TRASH/lab-uuid" &&
	! grep -q "	el	" list.txt
'

expect_success 'legacy hashed layout: list, paths, fallback, user files, owners equal Cyrus' '
	start_lab "$TRASH/lab-legacy" 1 && check_lab "$TRASH/lab-legacy" &&
	grep -q "/u/user/user01/Sent\$" list.txt && grep -q "/q/user/9nine\$" list.txt
'

# hold_wrlck FILE: an exclusive fcntl lock on FILE, as a Cyrus writer takes on
# cyrus.index, until holder.in is written to
lock_blocks() {
	D=$1
	name=$2
	path=$(awk -F'\t' -v n="$name" '$1 == n {print $5}' list.txt)
	# the holder's output of the test before would pass the wait below at
	# once, before this holder's redirection (in its child) empties it
	rm -f holder.in holder.out
	mkfifo holder.in
	python3 -c '
import fcntl, sys
f = open(sys.argv[1], "r+b"); fcntl.lockf(f, fcntl.LOCK_EX)
print("held", flush=True); open(sys.argv[2]).read()' "$path/cyrus.index" holder.in >holder.out &
hp=$!
wait_for 10 grep -q held holder.out || return 1
start=$(date +%s%N)
if "$LAYOUT" "$D/imapd.conf" lock "$name" 400 </dev/null >lock.out 2>lock.err; then
	echo "locked while a writer held cyrus.index"; echo >holder.in; return 1
fi
waited=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "timed out" lock.err && [ "$waited" -ge 390 ] || { cat lock.err; echo "waited $waited ms"; echo >holder.in; return 1; }
echo >holder.in
wait $hp
"$LAYOUT" "$D/imapd.conf" lock "$name" 2000 </dev/null >lock.out && grep -q locked lock.out
}

expect_success 'the reader lock waits for a writer (uuid), then gets it' '
	"$LAYOUT" "$TRASH/lab-uuid/imapd.conf" list >list.txt && lock_blocks "$TRASH/lab-uuid" user.user01 &&
	ls "$TRASH/lab-uuid/conf/lock/$(awk -F"\t" "\$1 == \"user.user01\" {print \$2}" list.txt).lock"
'

expect_success 'the reader lock waits for a writer (legacy), then gets it' '
	"$LAYOUT" "$TRASH/lab-legacy/imapd.conf" list >list.txt && lock_blocks "$TRASH/lab-legacy" user.user01.Sent &&
	ls "$TRASH/lab-legacy/conf/lock/u/user/user01/Sent.lock"
'

test_done
