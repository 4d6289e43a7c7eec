#!/bin/sh
# t1211-archive-tools: `chjournal verify`, `reindex` and `show` on archives
# alone (no configuration, no journal): exit statuses and messages on a good
# archive written by another tool (Python's tarfile: pax, one gzip member per
# run), a flipped byte, a torn tail and a hostile archive (.., absolute
# names, a symlink then a file through it, an oversized pax header).
. "$(dirname "$0")/test-lib.sh"

command -v python3 >/dev/null 2>&1 || skip_all "needs python3 to write test archives"
unset CHJOURNAL_CONF
A="$CHJOURNAL"

# status_is N CMD...: CMD exits with status N (not killed by a signal)
status_is() {
	_si_want=$1
	shift
	"$@"
	_si_rc=$?
	[ "$_si_rc" -eq "$_si_want" ] && return 0
	echo "exit $_si_rc, wanted $_si_want: $*" >&2
	return 1
}

# mkarch OUT KIND: writes a test archive (KIND good or hostile)
mkarch() {
	python3 - "$1" "$2" <<'PY'
import gzip, hashlib, io, sys, tarfile
out, kind = sys.argv[1], sys.argv[2]
def member(entries, when):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, link in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = when
            ti.mode = 0o600
            if link is not None:
                ti.type = tarfile.SYMTYPE
                ti.linkname = link
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return gzip.compress(b.getvalue(), 6)
def f(data):
    return ("files/" + hashlib.sha1(data).hexdigest(), data, None)
def idx(uidvalidity):
    # a valid empty cyrus.index, minor version 17 (verify parses each one)
    import struct, zlib
    h = bytearray(160)
    struct.pack_into(">IIIIII", h, 0, 1, 0, 17, 160, 112, 0)
    struct.pack_into(">I", h, 44, uidvalidity)
    struct.pack_into(">I", h, 156, zlib.crc32(bytes(h[:156])))
    return bytes(h)
m1, m2, m3 = b"From: a\r\n\r\none\r\n", b"From: b\r\n\r\ntwo\r\n", b"From: c\r\n\r\nthree\r\n"
def man(t):
    return ("runs/%s" % __import__("time").strftime("%Y%m%dT%H%M%SZ", __import__("time").gmtime(t)),
            b"chjournal-run 1\ntime %d\nseq 1\nuser u\n" % t, None)
if kind == "forms":
    # three runs of no folder: 2024-01-01 10:00 and 12:00, 2024-01-03 00:00
    with open(out, "wb") as o:
        for t in (1704103200, 1704110400, 1704240000):
            o.write(member([man(t)], t))
    sys.exit(0)
if kind == "good":
    runs = [
        [f(m1), f(m2), ("folders/u1/cyrus.index", idx(1), None),
         ("imap/INBOX", None, "../folders/u1"), ("runs/20240101T000000Z", b"run 1\n", None)],
        [f(m3), ("folders/u1/cyrus.index", idx(2), None), ("folders/u2/cyrus.index", idx(3), None),
         ("imap/Sent", None, "../folders/u2"), ("runs/20240102T000000Z", b"run 2\n", None)],
    ]
else:
    runs = [
        [("../evil", b"x", None), ("/etc/evil", b"x", None),
         ("user/ln", None, "/etc"), ("user/ln/passwd", b"root::0:0\n", None),
         ("imap/Up", None, "../../../outside"),
         ("folders/" + "x" * 300000, b"long", None),
         ("files/0000000000000000000000000000000000000000", b"not that", None),
         ("runs/20240101T000000Z", b"hostile\n", None)],
    ]
with open(out, "wb") as o:
    for i, r in enumerate(runs):
        o.write(member(r, 1704067200 + 86400 * i))
PY
}

expect_success 'usage errors exit 2' '
	must_fail "$A" verify 2>err &&
	grep -q "usage: chjournal verify" err &&
	status_is 2 "$A" reindex &&
	status_is 2 "$A" show &&
	status_is 2 "$A" show a b
'

expect_success 'a missing archive: exit 1 naming it' '
	status_is 1 "$A" verify nothere.tar.gz 2>err &&
	grep -q "cannot open archive .nothere.tar.gz." err &&
	status_is 1 "$A" show nothere.tar.gz 2>err &&
	grep -q "nothere.tar.gz" err
'

expect_success 'a good archive without sidecar: verify and show read it without writing one; reindex writes it' '
	mkarch good.tar.gz good &&
	rm -f good.idx &&
	tar -tzif good.tar.gz >list && test $(wc -l <list) -eq 10 &&
	"$A" verify good.tar.gz >out 2>err &&
	grep -q "note: sidecar .*good.idx. is missing (reindex or the next backup writes it)" err &&
	grep -q "good.tar.gz: ok" out &&
	test ! -e good.idx &&
	"$A" show good.tar.gz >out && grep -q "^2 " out && test ! -e good.idx &&
	: restore opens the archive as show does, tested on the forms archive below &&
	"$A" reindex good.tar.gz >out &&
	grep -q "good.tar.gz: 2 runs, 10 entries indexed" out &&
	test "$(stat -c %a good.idx)" = 600 &&
	"$A" verify good.tar.gz >out &&
	grep -q "good.tar.gz: ok" out
'

expect_success 'an empty or truncated-to-nothing archive fails verify, one line naming it' '
	: >empty.tar.gz &&
	status_is 1 "$A" verify empty.tar.gz >out 2>err &&
	grep -q "empty.tar.gz: the archive holds no complete run" err &&
	! grep -q ": ok" out &&
	test ! -e empty.idx &&
	head -c 100 good.tar.gz >cut.tar.gz &&
	status_is 1 "$A" verify cut.tar.gz >out 2>err &&
	grep -q "cut.tar.gz: the archive holds no complete run" err
'

expect_success 'show: the runs, and one run' '
	"$A" show good.tar.gz >out &&
	grep -q "^1 .*20240101T000000Z *2024-01-01T00:00:00Z *5 " out &&
	grep -q "^2 .*20240102T000000Z" out &&
	"$A" show good.tar.gz --at 1 >out &&
	grep -qx "folders 1" out && grep -qx "messages 2" out &&
	grep -qx "folder INBOX -> ../folders/u1" out &&
	"$A" show good.tar.gz --at 2024-01-02T12:00:00Z >out &&
	grep -qx "folders 2" out && grep -qx "messages 3" out &&
	grep -q "^live " out &&
	"$A" show good.tar.gz --at 20240101T000000Z >out && grep -q "^run 1 " out &&
	status_is 1 "$A" show good.tar.gz --at 2023-12-31 2>err &&
	status_is 2 "$A" show good.tar.gz --at bogus 2>err &&
	grep -q "bad --at" err &&
	status_is 1 "$A" show good.tar.gz --at 9 2>err
'

# at_picks AT RUN NAME: show and restore --at AT both pick run RUN, NAME
at_picks() {
	"$A" show forms.tar.gz --at "$1" >out && grep -qx "run $2 $3 .*" out &&
	rm -rf r && "$A" restore forms.tar.gz --at "$1" --to r/a/b >out &&
	grep -q "^restored run $3 of user .u.: 0 folders" out || { echo "--at $1"; cat out; return 1; }
}

expect_success 'show and restore read every form of --at alike; --to makes missing parents' '
	mkarch forms.tar.gz forms &&
	at_picks 2 2 20240101T120000Z &&
	at_picks 20240101T100000Z 1 20240101T100000Z &&
	at_picks 20240102T000000Z 2 20240101T120000Z &&
	at_picks 2024-01-01T11:59:59Z 1 20240101T100000Z &&
	at_picks "2024-01-01 12:00:00" 2 20240101T120000Z &&
	at_picks 2024-01-01 2 20240101T120000Z &&
	at_picks 2024-01-02 2 20240101T120000Z &&
	at_picks 2024-01-03 3 20240103T000000Z &&
	at_picks @1704240000 3 20240103T000000Z &&
	at_picks @1704239999 2 20240101T120000Z &&
	test -d r/a/b &&
	status_is 1 "$A" restore forms.tar.gz --at 4 --to r2 2>err &&
	grep -qx "chjournal: archive .forms.tar.gz. has no run 4 (its runs are numbered 1 to 3)" err &&
	status_is 2 "$A" restore forms.tar.gz --at 2024-02-30 --to r2 2>err &&
	grep -q "bad --at .2024-02-30.: no such date" err && test ! -e r2
'

expect_success 'a flipped byte: verify names the member, exit 1' '
	cp good.tar.gz flip.tar.gz && cp good.idx flip.idx &&
	size=$(stat -c %s flip.tar.gz) &&
	printf "\\377" | dd of=flip.tar.gz bs=1 seek=$((size - 30)) conv=notrunc 2>/dev/null &&
	status_is 1 "$A" verify flip.tar.gz 2>err &&
	grep -q "flip.tar.gz: member at offset [0-9]*: gzip member" err &&
	grep -q "problem" err
'

expect_success 'a torn tail: reindex leaves it out; verify notes it (crash residue) or, with no sidecar to vouch, names it' '
	cp good.tar.gz torn.tar.gz &&
	head -c 40 good.tar.gz >>torn.tar.gz &&
	"$A" reindex torn.tar.gz >out &&
	grep -q "2 runs" out &&
	status_is 0 "$A" verify torn.tar.gz 2>err &&
	grep -q "note: 40 bytes after the last run (offset [0-9]*) are an interrupted run" err &&
	rm torn.idx &&
	status_is 1 "$A" verify torn.tar.gz 2>err &&
	grep -q "40 bytes after the last complete run" err
'

expect_success 'a hostile archive: no crash, verify names each problem' '
	mkarch hostile.tar.gz hostile &&
	status_is 0 "$A" reindex hostile.tar.gz >out &&
	grep -q "1 run, 8 entries indexed" out &&
	status_is 1 "$A" verify hostile.tar.gz 2>err &&
	grep -q "unsafe entry name.*\.\./evil" err &&
	grep -q "unsafe entry name.*/etc/evil" err &&
	grep -q "user/ln/passwd. lies below a symlink entry" err &&
	grep -q "symlink .user/ln. points outside" err &&
	grep -q "symlink .imap/Up. points outside" err &&
	grep -q "files/0000000000000000000000000000000000000000. does not hash to its name" err &&
	grep -q "unsafe entry name.*(long name)" err &&
	status_is 0 "$A" show hostile.tar.gz >out &&
	status_is 0 "$A" show hostile.tar.gz --at 1 >out &&
	grep -qx "messages 1" out &&
	test ! -e ../evil && test ! -e /etc/evil
'

expect_success 'garbage that is not gzip at all' '
	head -c 5000 /dev/urandom >junk.tar.gz &&
	status_is 1 "$A" verify junk.tar.gz 2>err &&
	grep -q "member at offset 0" err &&
	"$A" reindex junk.tar.gz >out &&
	grep -q "0 runs" out &&
	status_is 1 "$A" show junk.tar.gz 2>err &&
	grep -q "^chjournal: archive .junk.tar.gz. holds no complete run (5000 bytes that are not one" err
'

test_done
