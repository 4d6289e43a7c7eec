#!/bin/bash
# t1103-bad-input-table: a table of bad inputs (beyond the malformed
# configurations of t0401): roots that are symlink loops or too long,
# unreadable configurations, consumer names with quotes, slashes, newlines,
# 65 characters or non-ASCII bytes, bad option values of every agent command,
# journals that are a directory, a symlink, not SQLite, a foreign SQLite
# database, a truncated chjournal database, an unsupported schema or a
# malformed journal id, corrupt consumer cursors (garbage, truncated, a bad
# journal id length, a bad or overflowing seq, an over-long line); and the
# Cyrus archive side: archives (built with Python) holding a truncated or
# corrupt cyrus.index, entries named with '..' or absolutely, a symlink out
# of the archive, an oversized pax header, a files/ entry not matching its
# SHA1 name, data that is not gzip, a torn tail, a missing archive; bad
# imapd.conf files for `backup -C`; bad --at for restore and show (one
# reader, the same messages), bad --keep-days for compact. verify's first
# problem line is compared (vfirst).
# Each case checks the exit status and the exact first line of stderr (1: the
# only line; 2: followed by a usage line); nothing may die of a signal. At
# the end the journal and the good consumer are intact.
. "$(dirname "$0")/test-lib.sh"

CF="$TRASH/cf"
BADJ="$TRASH/badj"
mkdir -p "$CF" "$BADJ" "$SPOOL/user/a"
echo a >"$SPOOL/user/a/1."
ln -s loop2 "$TRASH/loop1"
ln -s loop1 "$TRASH/loop2"

# conf NAME LINE...: $CF/NAME.conf (printf %b per line)
conf() {
	_c_name=$1
	shift
	: >"$CF/$_c_name.conf"
	for _c_l in "$@"; do
		printf "%b\n" "$_c_l" >>"$CF/$_c_name.conf"
	done
}

# a world-readable directory for the configuration `nobody` cannot read
NOBODY_OK=no
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$CHJOURNAL" --version >/dev/null 2>&1; then
	NOBODY_OK=yes
	PUBDIR=$(mktemp -d "${TMPDIR:-/tmp}/chj-t1103-pub.XXXXXX")
	chmod 755 "$PUBDIR"
	test_cleanup_extra='rm -rf "$PUBDIR"'
	printf 'journal = %s\nroot = %s\n' "$PUBDIR/j.db" "$PUBDIR" >"$PUBDIR/unreadable.conf"
	chmod 000 "$PUBDIR/unreadable.conf"
fi
NOBODY() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}

longname=$(printf 'a%.0s' $(seq 1 5000))
conf loop "journal = $BADJ/loop.db" "root = $TRASH/loop1"
conf longroot "journal = $BADJ/long.db" "root = /$longname"
conf binkey "journal = $BADJ/bin.db" "root = $SPOOL" "\\xff\\xfe = 1"
conf sync-big "journal = $BADJ/s.db" "root = $SPOOL" "sync_timeout = 86401"
conf batch-hex "journal = $BADJ/b.db" "root = $SPOOL" "batch_size = 0x10"
conf level-upper "journal = $BADJ/l.db" "root = $SPOOL" "log_level = ERROR"
conf exclude-empty-group "journal = $BADJ/e.db" "root = $SPOOL" "exclude = a{2,1}"
conf jdir "journal = $BADJ/dir.db" "root = $SPOOL"
conf jtext "journal = $BADJ/text.db" "root = $SPOOL"
conf jforeign "journal = $BADJ/foreign.db" "root = $SPOOL"
conf jtrunc "journal = $BADJ/trunc.db" "root = $SPOOL"
conf jlink "journal = $BADJ/link.db" "root = $SPOOL"
conf jschema "journal = $BADJ/schema.db" "root = $SPOOL"
conf jbadid "journal = $BADJ/badid.db" "root = $SPOOL"
conf dupjournal "journal = $BADJ/dup1.db" "journal = $BADJ/dup2.db" "root = $SPOOL"
conf jinroot "journal = $SPOOL/journal.db" "root = $SPOOL"
conf jproc "journal = /proc/chj-t1103-nonexistent/j.db" "root = $SPOOL"
mkdir "$BADJ/dir.db"
echo "hello, not a database" >"$BADJ/text.db"
ln -s "$STATE/journal.db" "$BADJ/link.db"

# The real journal and a good consumer, then the bad journals made from it.
start_daemon || exit 1
backup c1 || exit 1
cursor_good=$(cat "$STATE/consumers/c1")
stop_daemon || exit 1
if command -v sqlite3 >/dev/null 2>&1; then
	HAVE_SQLITE3=yes
	sqlite3 "$BADJ/foreign.db" 'CREATE TABLE t(x); INSERT INTO t VALUES (1);'
	cp "$STATE/journal.db" "$BADJ/schema.db"
	sqlite3 "$BADJ/schema.db" "UPDATE meta SET value = 99 WHERE key = 'schema_version'"
	cp "$STATE/journal.db" "$BADJ/badid.db"
	sqlite3 "$BADJ/badid.db" "UPDATE meta SET value = 'abc' WHERE key = 'journal_id'"
else
	HAVE_SQLITE3=no
fi
# the daemon checkpointed the WAL on exit: the first 100 bytes are the header
head -c 100 "$STATE/journal.db" >"$BADJ/trunc.db"

for f in text.db trunc.db foreign.db schema.db badid.db; do
	[ ! -e "$BADJ/$f" ] || cp "$BADJ/$f" "$TRASH/orig-$f"
done

# Corrupt cursors next to the good one.
C="$STATE/consumers"
echo "garbage" >"$C/g1"
printf '%s\n' "$cursor_good" | sed 's/^committed_journal_id=.*/committed_journal_id=abc/' >"$C/b1"
printf '%s\n' "$cursor_good" | sed 's/^committed_seq=.*/committed_seq=12x/' >"$C/s1"
printf '%s\n' "$cursor_good" | sed 's/^committed_seq=.*/committed_seq=99999999999999999999/' >"$C/o1"
printf '%s\n' "$cursor_good" | head -c 90 >"$C/tr1"
{ printf 'has_committed=1\n'; printf 'x%.0s' $(seq 1 300); printf '\n'; } >"$C/long1"

# Hostile and broken archives (Python's tarfile and gzip), bad imapd.conf.
AR="$TRASH/ar"
mkdir -p "$AR"
for k in ok dotdot absname linkescape bigpax badsha1 idxtrunc idxcrc idxversion; do
	OUTSIDE="$TRASH/outside" python3 "$CHJ_SRCDIR/tests/make-hostile-archive.py" "$AR/$k.tar.gz" $k || exit 1
done
head -c 1000 /dev/urandom >"$AR/notgz.tar.gz"
cat "$AR/ok.tar.gz" "$AR/ok.tar.gz" >"$AR/two.tar.gz"
head -c $(( $(stat -c %s "$AR/two.tar.gz") - 30 )) "$AR/two.tar.gz" >"$AR/torn.tar.gz"
rm -f "$AR/two.tar.gz"
conf imapd-vd "configdirectory: $TRASH/cyr" "partition-default: $SPOOL" "virtdomains: userid"
conf imapd-nopart "configdirectory: $TRASH/cyr" "defaultpartition: other" "partition-default: $SPOOL"
conf imapd-noconfdir "partition-default: $SPOOL"
conf imapd-notkv "configdirectory $TRASH/cyr"
conf imapd-bool "configdirectory: $TRASH/cyr" "partition-default: $SPOOL" "hashimapspool: maybe"

# vfirst ARCHIVE: verify's exit status and its first problem (the line
# saying a missing sidecar was rebuilt left out) as the only stderr line
vfirst() {
	"$CHJOURNAL" verify "$1" 2>vfirst.err >/dev/null
	_v_rc=$?
	grep -v "was missing: rebuilt from the archive\$" vfirst.err | head -n 1 >&2
	return $_v_rc
}

start_daemon || exit 1

# The table: description | exit | how (= exact, ~ ERE) | stderr's first line | command
# In the last two columns @T@ is $TRASH, @S@ $SPOOL, @ST@ $STATE, @J@ $BADJ, @CF@ $CF.
# The command is run by bash -c (it may hold '|'; the other columns may not):
# chj is the agent on the good configuration.
# A command starting with NOBODY runs as user nobody (skipped if impossible);
# one starting with SQLITE needs the sqlite3 tool for its fixture.
table=$(cat <<'EOF'
root a symlink loop (agent) | 1 | = | chjournal: @CF@/loop.conf:2: key 'root': '@T@/loop1' is a symlink that cannot be resolved: Too many levels of symbolic links | "$CHJOURNAL" -c "$CF/loop.conf" status
root a symlink loop (daemon) | 1 | = | chjournald: @CF@/loop.conf:2: key 'root': '@T@/loop1' is a symlink that cannot be resolved: Too many levels of symbolic links | "$CHJOURNALD" -c "$CF/loop.conf"
root longer than PATH_MAX | 1 | = | chjournal: @CF@/longroot.conf:2: key 'root': path too long | "$CHJOURNAL" -c "$CF/longroot.conf" status
non-ASCII bytes as a key | 1 | ~ | ^chjournal: @CF@/binkey.conf:3: key '.+': unknown key$ | "$CHJOURNAL" -c "$CF/binkey.conf" status
sync_timeout 86401 | 1 | = | chjournal: @CF@/sync-big.conf:3: key 'sync_timeout': '86401' is not a number of seconds from 1 to 86400 | "$CHJOURNAL" -c "$CF/sync-big.conf" sync
batch_size in hex | 1 | = | chjournald: @CF@/batch-hex.conf:3: key 'batch_size': '0x10' is not a number from 1 to 10000000 | "$CHJOURNALD" -c "$CF/batch-hex.conf"
log_level in capitals | 1 | = | chjournald: @CF@/level-upper.conf:3: key 'log_level': unknown level 'ERROR' (expected error, warning, info or debug) | "$CHJOURNALD" -c "$CF/level-upper.conf"
exclude with an invalid interval | 1 | ~ | ^chjournal: @CF@/exclude-empty-group.conf:3: key 'exclude': bad regular expression 'a\{2,1\}': .+$ | "$CHJOURNAL" -c "$CF/exclude-empty-group.conf" status
configuration unreadable (nobody, agent) | 1 | = | chjournal: @PUB@/unreadable.conf: cannot read configuration: Permission denied | NOBODY "$CHJOURNAL" -c "$PUBDIR/unreadable.conf" status
configuration unreadable (nobody, daemon) | 1 | = | chjournald: @PUB@/unreadable.conf: cannot read configuration: Permission denied | NOBODY "$CHJOURNALD" -c "$PUBDIR/unreadable.conf"
configuration a symlink loop | 1 | = | chjournal: @T@/loop1: cannot read configuration: Too many levels of symbolic links | "$CHJOURNAL" -c "$TRASH/loop1" status
$CHJOURNAL_CONF names a missing file | 1 | = | chjournal: @T@/nosuch.conf: cannot read configuration: No such file or directory | CHJOURNAL_CONF="$TRASH/nosuch.conf" "$CHJOURNAL" status
-c without a file | 2 | = | chjournal: option '-c' needs a file | "$CHJOURNAL" -c
unknown global option | 2 | = | chjournal: unknown option '--frob' | "$CHJOURNAL" --frob status
unknown command | 2 | = | chjournal: unknown command 'frob' | chj frob
daemon: unknown option | 2 | ~ | chjournald: unrecognized option '--bogus'$ | "$CHJOURNALD" --bogus
daemon: -c without a file | 2 | ~ | chjournald: option requires an argument -- 'c'$ | "$CHJOURNALD" -c
daemon: extra argument | 2 | = | chjournald: unexpected argument 'extra' | "$CHJOURNALD" -c "$CONF" extra
journal is a directory (agent) | 1 | = | chjournal: journal '@J@/dir.db': cannot open: not a regular file | "$CHJOURNAL" -c "$CF/jdir.conf" status
journal is a directory (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/dir.db': cannot open: not a regular file$ | "$CHJOURNALD" -c "$CF/jdir.conf"
journal is a symlink to a journal (agent) | 1 | = | chjournal: journal '@J@/link.db': cannot open: not a regular file | "$CHJOURNAL" -c "$CF/jlink.conf" query
journal is a symlink to a journal (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/link.db': cannot open: not a regular file$ | "$CHJOURNALD" -c "$CF/jlink.conf"
journal is a text file (agent) | 1 | ~ | ^chjournal: journal '@J@/text.db': cannot read the schema \(not an SQLite database\?\): file is not a database | "$CHJOURNAL" -c "$CF/jtext.conf" status
journal is a text file (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/text.db': cannot read the schema \(not an SQLite database\?\): file is not a database$ | "$CHJOURNALD" -c "$CF/jtext.conf"
journal is a foreign SQLite database (agent) | 1 | ~ | ^chjournal: journal '@J@/foreign.db': not a chjournal database \(no schema\) | SQLITE "$CHJOURNAL" -c "$CF/jforeign.conf" begin c1
journal is a foreign SQLite database (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/foreign.db': not a chjournal database \(it holds other tables\)$ | SQLITE "$CHJOURNALD" -c "$CF/jforeign.conf"
journal is a truncated chjournal database (agent) | 1 | ~ | ^chjournal: journal '@J@/trunc.db': cannot read the schema \(not an SQLite database\?\): database disk image is malformed | "$CHJOURNAL" -c "$CF/jtrunc.conf" status --json
journal is a truncated chjournal database (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/trunc.db': cannot read the schema \(not an SQLite database\?\): database disk image is malformed$ | "$CHJOURNALD" -c "$CF/jtrunc.conf"
journal with an unsupported schema version (agent) | 1 | ~ | ^chjournal: journal '@J@/schema.db': schema version 99 is not supported \(expected 1\) | SQLITE "$CHJOURNAL" -c "$CF/jschema.conf" status
journal with an unsupported schema version (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/schema.db': schema version 99 is not supported \(expected 1\)$ | SQLITE "$CHJOURNALD" -c "$CF/jschema.conf"
journal with a malformed journal id (daemon) | 1 | ~ | ^[0-9T:-]+ chjournald: error: journal '@J@/badid.db': journal id missing or malformed$ | SQLITE "$CHJOURNALD" -c "$CF/jbadid.conf"
journal in a directory that cannot be created | 1 | = | chjournald: cannot create the directory of journal '/proc/chj-t1103-nonexistent/j.db': No such file or directory | "$CHJOURNALD" -c "$CF/jproc.conf"
consumer name with a quote | 1 | = | chjournal: invalid consumer name 'a'b': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj begin "a'b"
consumer name with SQL | 1 | = | chjournal: invalid consumer name 'x';DROP TABLE changes;--': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj commit "x';DROP TABLE changes;--"
consumer name with a slash | 1 | = | chjournal: invalid consumer name 'a/b': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj begin a/b
consumer name going up | 1 | = | chjournal: invalid consumer name '../journal.db': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj forget ../journal.db
consumer name with a newline (shown escaped) | 1 | = | chjournal: invalid consumer name 'a\nb': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj begin $'a\nb'
consumer name of 65 characters | 1 | = | chjournal: invalid consumer name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj begin xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
consumer name in UTF-8 (shown as bytes) | 1 | = | chjournal: invalid consumer name '\xc3\xa9t\xc3\xa9': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj begin $'\xc3\xa9t\xc3\xa9'
empty consumer name | 1 | = | chjournal: invalid consumer name '': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj list ""
consumer name starting with a dot | 1 | = | chjournal: invalid consumer name '.c1': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj abort .c1
consumer name starting with a dash (after --) | 1 | = | chjournal: invalid consumer name '-c1': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj begin -- -c1
consumer name starting with a dash is an option | 2 | = | chjournal begin: unknown option '-c1' | chj begin -c1
consumer name with a space | 1 | = | chjournal: invalid consumer name 'a b': use 1 to 64 of A-Z a-z 0-9 . _ @ + - (not starting with '.' or '-') | chj forget "a b"
begin --timeout 0 | 2 | = | chjournal begin: bad --timeout '0': seconds from 1 to 86400 | chj begin c1 --timeout 0
begin --timeout abc | 2 | = | chjournal begin: bad --timeout 'abc': seconds from 1 to 86400 | chj begin c1 --timeout abc
begin --timeout=86401 | 2 | = | chjournal begin: bad --timeout '86401': seconds from 1 to 86400 | chj begin c1 --timeout=86401
begin --timeout -1 | 2 | = | chjournal begin: bad --timeout '-1': seconds from 1 to 86400 | chj begin c1 --timeout -1
begin --timeout without a value | 2 | = | chjournal begin: --timeout needs a number of seconds | chj begin c1 --timeout
begin with two consumers | 2 | = | chjournal begin: unexpected argument 'c2' | chj begin c1 c2
sync --timeout 1.5 | 2 | = | chjournal sync: bad --timeout '1.5': seconds from 1 to 86400 | chj sync --timeout 1.5
list with an unknown option | 2 | = | chjournal list: unknown option '--bogus' | chj list c1 --bogus
list with an extra argument | 2 | = | chjournal list: unexpected argument 'extra' | chj list c1 extra
list without a consumer | 2 | = | chjournal list: expected a consumer name | chj list -0
status --json --prometheus | 2 | = | chjournal status: --json and --prometheus do not go together | chj status --json --prometheus
status with an unknown option | 2 | = | chjournal status: unknown option '--bogus' | chj status --bogus
query --json -0 | 2 | = | chjournal query: --json and -0 do not go together | chj query --json -0
query --under a relative path | 2 | = | chjournal query: --under needs an absolute path | chj query --under spool
query --since garbage | 2 | = | chjournal query: bad --since 'garbage' | chj query --since garbage
query --since @garbage | 2 | = | chjournal query: bad --since '@abc' | chj query --since @abc
query --since empty | 2 | = | chjournal query: bad --since '' | chj query --since ""
query --since negative | 2 | = | chjournal query: bad --since '-1' | chj query --since -1
query --since before 1970 | 2 | = | chjournal query: bad --since '@-5' | chj query --since @-5
query --since with a unit | 2 | = | chjournal query: bad --since '5x' | chj query --since=5x
query --since without a value | 2 | = | chjournal query: --since needs SEQ, TIME or @UNIXTIME | chj query --since
help for an unknown command | 2 | = | chjournal help: unknown command 'nosuch' | chj help nosuch
consumers with an argument | 2 | = | chjournal consumers: unexpected argument 'c1' | chj consumers c1
forget a missing consumer | 1 | = | chjournal: no consumer 'nosuch' | chj forget nosuch
commit with no open run | 1 | = | chjournal: consumer 'c1' has no open run to commit (run `chjournal begin c1` first) | chj commit c1
list with no open run | 1 | = | chjournal: consumer 'c1' has no open run (run `chjournal begin c1` first) | chj list c1
cursor of garbage (begin) | 1 | = | chjournal: consumer 'g1': '@ST@/consumers/g1' line 1 is corrupt | chj begin g1
cursor of garbage (list) | 1 | = | chjournal: consumer 'g1': '@ST@/consumers/g1' line 1 is corrupt | chj list g1
cursor of garbage (abort) | 1 | = | chjournal: consumer 'g1': '@ST@/consumers/g1' line 1 is corrupt | chj abort g1
cursor with a short journal id | 1 | = | chjournal: consumer 'b1': '@ST@/consumers/b1' line 3 is corrupt | chj begin b1
cursor with a bad seq | 1 | = | chjournal: consumer 's1': '@ST@/consumers/s1' line 4 is corrupt | chj commit s1
cursor with an overflowing seq | 1 | = | chjournal: consumer 'o1': '@ST@/consumers/o1' line 4 is corrupt | chj begin o1
cursor truncated in a key | 1 | = | chjournal: consumer 'tr1': '@ST@/consumers/tr1' line 3 is corrupt | chj begin tr1
query --since overflow | 2 | = | chjournal query: bad --since '99999999999999999999' | chj query --since 99999999999999999999
query --since @overflow | 2 | = | chjournal query: bad --since '@99999999999999999999' | chj query --since @99999999999999999999
duplicate journal key (daemon) | 1 | ~ | ^chjournald: @CF@/dupjournal.conf:2: key 'journal': | "$CHJOURNALD" -c "$CF/dupjournal.conf"
journal inside a root (daemon) | 1 | ~ | ^chjournald: @CF@/jinroot.conf:[0-9]+: key '[a-z]+': .*inside | "$CHJOURNALD" -c "$CF/jinroot.conf"
status with corrupt cursors | 1 | = | chjournal: consumer 'b1': '@ST@/consumers/b1' line 3 is corrupt | chj status --prometheus 2>st.err >/dev/null; rc=$?; head -n 1 st.err >&2; exit $rc
cursor with a 300-byte line | 1 | = | chjournal: consumer 'long1': '@ST@/consumers/long1' line 2 is corrupt | chj begin long1
verify: cyrus.index truncated in a record | 1 | = | chjournal: @T@/ar/idxtrunc.tar.gz: folders/abcdefghijklmnopqrstuvwx/cyrus.index: cyrus.index: truncated at record 2 of 2 | vfirst "$TRASH/ar/idxtrunc.tar.gz"
restore: cyrus.index truncated in a record | 1 | = | chjournal: folder 'user.eve.Evil': the archived cyrus.index is unreadable: cyrus.index: truncated at record 2 of 2 | chj restore "$TRASH/ar/idxtrunc.tar.gz" --to "$TRASH/r1"
verify: cyrus.index with a bad header CRC | 1 | = | chjournal: @T@/ar/idxcrc.tar.gz: folders/abcdefghijklmnopqrstuvwx/cyrus.index: cyrus.index: header: bad CRC | vfirst "$TRASH/ar/idxcrc.tar.gz"
restore: cyrus.index with a bad header CRC | 1 | = | chjournal: folder 'user.eve.Evil': the archived cyrus.index is unreadable: cyrus.index: header: bad CRC | chj restore "$TRASH/ar/idxcrc.tar.gz" --to "$TRASH/r2"
restore: cyrus.index of minor version 99 | 1 | = | chjournal: folder 'user.eve.Evil': the archived cyrus.index is unreadable: cyrus.index: unsupported minor version 99 | chj restore "$TRASH/ar/idxversion.tar.gz" --to "$TRASH/r3"
verify: an entry named with '..' | 1 | = | chjournal: @T@/ar/dotdot.tar.gz: member at offset 0: unsafe entry name (absolute, '..', empty part or too long) 'files/../../escaped' | vfirst "$TRASH/ar/dotdot.tar.gz"
verify: an absolute entry name | 1 | = | chjournal: @T@/ar/absname.tar.gz: member at offset 0: unsafe entry name (absolute, '..', empty part or too long) '@T@/outside/escaped' | vfirst "$TRASH/ar/absname.tar.gz"
verify: a symlink out of the archive | 1 | = | chjournal: @T@/ar/linkescape.tar.gz: run 1: symlink 'imap/user.eve.Evil' points outside the archive ('../../../escaped') | vfirst "$TRASH/ar/linkescape.tar.gz"
verify: a 2 MB pax header | 1 | = | chjournal: @T@/ar/bigpax.tar.gz: member at offset 0: Special header too large | vfirst "$TRASH/ar/bigpax.tar.gz"
restore: a 2 MB pax header | 1 | = | chjournal: archive '@T@/ar/bigpax.tar.gz' holds no complete run | chj restore "$TRASH/ar/bigpax.tar.gz" --to "$TRASH/r4"
verify: files/SHA1 not matching its data | 1 | = | chjournal: @T@/ar/badsha1.tar.gz: run 1: 'files/0000000000000000000000000000000000000000' does not hash to its name | vfirst "$TRASH/ar/badsha1.tar.gz"
verify: data that is not gzip | 1 | = | chjournal: @T@/ar/notgz.tar.gz: member at offset 0: gzip member at offset 0: incorrect header check | vfirst "$TRASH/ar/notgz.tar.gz"
show: data that is not gzip | 1 | = | chjournal: archive '@T@/ar/notgz.tar.gz' holds no complete run (1000 bytes that are not one; see `chjournal verify`) | chj show "$TRASH/ar/notgz.tar.gz"
restore: data that is not gzip | 1 | = | chjournal: archive '@T@/ar/notgz.tar.gz' holds no complete run | chj restore "$TRASH/ar/notgz.tar.gz" --to "$TRASH/r5"
verify: a torn tail | 1 | ~ | ^chjournal: @T@/ar/torn.tar.gz: member at offset [0-9]+: gzip member at offset [0-9]+ is truncated | vfirst "$TRASH/ar/torn.tar.gz"
verify: a missing archive | 1 | = | chjournal: cannot open archive '@T@/ar/none.tar.gz': No such file or directory | chj verify "$TRASH/ar/none.tar.gz"
restore: a missing archive | 1 | = | chjournal: cannot open archive '@T@/ar/none.tar.gz': No such file or directory | chj restore "$TRASH/ar/none.tar.gz" --to "$TRASH/r6"
show: a missing archive | 1 | = | chjournal: cannot open archive '@T@/ar/none.tar.gz': No such file or directory | chj show "$TRASH/ar/none.tar.gz"
reindex: a missing archive | 1 | = | chjournal: cannot open archive '@T@/ar/none.tar.gz': No such file or directory | chj reindex "$TRASH/ar/none.tar.gz"
backup -C a missing imapd.conf | 1 | = | chjournal: cannot open '@T@/nosuch-imapd.conf': No such file or directory | chj backup -C "$TRASH/nosuch-imapd.conf" --to "$TRASH/bk"
backup -C imapd.conf with virtdomains | 1 | = | chjournal: @CF@/imapd-vd.conf: virtdomains is on: virtual domains are not supported by this version | chj backup -C "$CF/imapd-vd.conf" --to "$TRASH/bk"
backup -C imapd.conf without the default partition | 1 | = | chjournal: @CF@/imapd-nopart.conf: no partition-other for the default partition | chj backup -C "$CF/imapd-nopart.conf" --to "$TRASH/bk"
backup -C imapd.conf without configdirectory | 1 | = | chjournal: @CF@/imapd-noconfdir.conf: no configdirectory | chj backup -C "$CF/imapd-noconfdir.conf" --to "$TRASH/bk"
backup -C imapd.conf with a line not key: value | 1 | = | chjournal: @CF@/imapd-notkv.conf:1: not a 'key: value' line | chj backup -C "$CF/imapd-notkv.conf" --to "$TRASH/bk"
backup -C imapd.conf with a bad boolean | 1 | = | chjournal: @CF@/imapd-bool.conf:3: 'hashimapspool' wants yes or no, not 'maybe' | chj backup -C "$CF/imapd-bool.conf" --to "$TRASH/bk"
backup -C without a value | 2 | = | chjournal backup: -C needs a value | chj backup --to "$TRASH/bk" -C
backup --user without a value | 2 | = | chjournal backup: --user needs a value | chj backup --to "$TRASH/bk" --user
restore --at nonsense | 2 | = | chjournal restore: bad --at 'nonsense': expected a run number, a run name (YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME | chj restore "$TRASH/ar/ok.tar.gz" --to "$TRASH/r7" --at nonsense
restore --at month 13 | 2 | = | chjournal restore: bad --at '2026-13-01': no such date | chj restore "$TRASH/ar/ok.tar.gz" --to "$TRASH/r7" --at 2026-13-01
restore --at without a value | 2 | = | chjournal restore: --at needs a time or a run | chj restore "$TRASH/ar/ok.tar.gz" --to "$TRASH/r7" --at
restore --at a run it does not have | 1 | = | chjournal: archive '@T@/ar/ok.tar.gz' has no run 99 (its runs are numbered 1 to 1) | chj restore "$TRASH/ar/ok.tar.gz" --to "$TRASH/r7" --at 99
restore --at a time before every run | 1 | = | chjournal: archive '@T@/ar/ok.tar.gz' has no run at or before '@1000' (the first is 20260101T000000Z) | chj restore "$TRASH/ar/ok.tar.gz" --to "$TRASH/r7" --at @1000
show --at @abc | 2 | = | chjournal show: bad --at '@abc': expected @ and the seconds since 1970-01-01 (UTC) | chj show "$TRASH/ar/ok.tar.gz" --at @abc
show --at 0 | 2 | = | chjournal show: bad --at '0': runs are numbered from 1 | chj show "$TRASH/ar/ok.tar.gz" --at 0
show --at February 30 | 2 | = | chjournal show: bad --at '2026-02-30': no such date | chj show "$TRASH/ar/ok.tar.gz" --at 2026-02-30
show --at 24 o'clock | 2 | = | chjournal show: bad --at '2026-01-01T24:00:00Z': no such time of day | chj show "$TRASH/ar/ok.tar.gz" --at 2026-01-01T24:00:00Z
show --at a run it does not have | 1 | = | chjournal: archive '@T@/ar/ok.tar.gz' has no run 99 (its runs are numbered 1 to 1) | chj show "$TRASH/ar/ok.tar.gz" --at 99
show --at a run name it does not have | 1 | = | chjournal: archive '@T@/ar/ok.tar.gz' has no run named '20260101T000000Z.3' | chj show "$TRASH/ar/ok.tar.gz" --at 20260101T000000Z.3
show --at a day before every run | 1 | = | chjournal: archive '@T@/ar/ok.tar.gz' has no run at or before '1999-01-01' (the first is 20260101T000000Z) | chj show "$TRASH/ar/ok.tar.gz" --at 1999-01-01
compact --keep-days 0 | 2 | = | chjournal compact: --keep-days '0': expected 1 to 36500 | chj compact "$TRASH/ar/ok.tar.gz" --keep-days 0
compact --keep-days abc | 2 | = | chjournal compact: --keep-days 'abc': expected 1 to 36500 | chj compact "$TRASH/ar/ok.tar.gz" --keep-days abc
compact --keep-days without a value | 2 | = | chjournal compact: --keep-days needs a number of days | chj compact "$TRASH/ar/ok.tar.gz" --keep-days
compact --keep-weekly 0 | 2 | = | chjournal compact: --keep-weekly '0': expected 1 to 100000 | chj compact "$TRASH/ar/ok.tar.gz" --keep-weekly 0
compact --keep-days with a rule | 2 | = | chjournal compact: --keep-days and --keep-monthly do not go together | chj compact "$TRASH/ar/ok.tar.gz" --keep-days 3 --keep-monthly 2
EOF
)

# subst TEXT: the placeholders replaced
subst() {
	_s=$1
	_s=${_s//@PUB@/${PUBDIR:-@PUB@}}
	_s=${_s//@ST@/$STATE}
	_s=${_s//@CF@/$CF}
	_s=${_s//@J@/$BADJ}
	_s=${_s//@S@/$SPOOL}
	_s=${_s//@T@/$TRASH}
	printf '%s' "$_s"
}

# trim TEXT: without leading and trailing blanks
trim() {
	_t=$1
	_t=${_t#"${_t%%[! ]*}"}
	_t=${_t%"${_t##*[! ]}"}
	printf '%s' "$_t"
}

export CHJOURNAL CHJOURNALD CONF CF TRASH
export PUBDIR=${PUBDIR:-}
export -f chj NOBODY vfirst

# run_case EXIT HOW EXPECTED COMMAND
run_case() {
	_want_rc=$1 _how=$2 _want=$3 _cmd=$4
	timeout 20 bash -c "$_cmd" </dev/null >case.out 2>case.err
	_rc=$?
	if [ "$_rc" -ge 124 ]; then
		echo "exit $_rc: killed or timed out"
		cat case.err
		return 1
	fi
	[ "$_rc" -eq "$_want_rc" ] || { echo "exit $_rc, want $_want_rc"; cat case.err; return 1; }
	_first=$(head -n 1 case.err)
	case $_how in
	=)
		[ "$_first" = "$_want" ] ;;
	\~)
		printf '%s\n' "$_first" | grep -qE -- "$_want" ;;
	*)
		echo "bad table: how '$_how'"; false ;;
	esac || {
		echo "stderr differs"
		echo "want: $_want"
		echo "got:  $_first"
		return 1
	}
	_lines=$(wc -l <case.err)
	if [ "$_want_rc" -eq 1 ] && [ "$_lines" -ne 1 ]; then
		echo "want one line of stderr, got $_lines:"
		cat case.err
		return 1
	fi
	if [ "$_want_rc" -eq 2 ] && [ "$_lines" -gt 1 ] &&
	   ! sed -n 2p case.err | grep -q '^usage: chjournal'; then
		echo "want a usage line after the message:"
		cat case.err
		return 1
	fi
	return 0
}

descs=() rcs=() hows=() wants=() cmds=()
while IFS= read -r line; do
	[ -n "$line" ] || continue
	descs+=("$(trim "${line%%|*}")"); rest=${line#*|}
	rcs+=("$(trim "${rest%%|*}")"); rest=${rest#*|}
	hows+=("$(trim "${rest%%|*}")"); rest=${rest#*|}
	wants+=("$(subst "$(trim "${rest%%|*}")")")
	cmds+=("$(trim "${rest#*|}")")
done <<<"$table"

expect_success 'the table holds at least 40 cases' '
	echo "${#descs[@]} cases" &&
	test "${#descs[@]}" -ge 40
'

for i in "${!descs[@]}"; do
	cmd=${cmds[$i]}
	case $cmd in
	NOBODY\ *)
		if [ "$NOBODY_OK" != yes ]; then
			echo "ok - ${descs[$i]} # skip: needs root and setpriv to run as nobody"
			continue
		fi ;;
	SQLITE\ *)
		if [ "$HAVE_SQLITE3" != yes ]; then
			echo "ok - ${descs[$i]} # skip: needs the sqlite3 tool"
			continue
		fi
		cmds[$i]=${cmd#SQLITE } ;;
	esac
	expect_success "${descs[$i]}: exit ${rcs[$i]} and its message" \
		"run_case \"\${rcs[$i]}\" \"\${hows[$i]}\" \"\${wants[$i]}\" \"\${cmds[$i]}\""
done

expect_success 'consumers: exit 1, one error line per corrupt cursor, the good one listed' '
	chj consumers >consumers.out 2>consumers.err
	test $? = 1 &&
	grep -q "^c1	" consumers.out &&
	for n in b1 g1 long1 o1 s1 tr1; do
		grep -c "^chjournal: consumer .$n.: .$STATE/consumers/$n. line [0-9]* is corrupt$" consumers.err || return 1
	done &&
	test "$(wc -l <consumers.err)" -eq 6
'

expect_success 'after all that: the daemon runs, the journal and consumer c1 are intact' '
	printf "%s\n" "$cursor_good" >cursor.want &&
	test_cmp cursor.want "$STATE/consumers/c1" &&
	for n in g1 b1 s1 o1 tr1 long1; do
		chj forget $n || return 1
	done &&
	chj status >status.out &&
	grep "^daemon: *running" status.out &&
	echo b >"$SPOOL/user/a/2." &&
	backup c1 &&
	grep -q "^incremental" mode.out &&
	in_list "$SPOOL/user/a/2." &&
	# the refused files are untouched: not converted to WAL, no -wal/-shm
	for f in text.db trunc.db foreign.db schema.db badid.db; do
		[ ! -e "$BADJ/$f" ] || cmp "$BADJ/$f" "$TRASH/orig-$f" || return 1
	done &&
	ls "$BADJ" >badj.ls &&
	! grep -e "-wal\$" -e "-shm\$" badj.ls &&
	stop_daemon
'

test_done
