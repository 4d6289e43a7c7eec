#!/usr/bin/env python3
"""make-seeds.py: (re)writes the generated seed files of the Cyrus and
archive fuzz targets under tests/fuzz/corpus/ (cyrus-index: synthetic
indexes of every minor version 10..20 with and without records; archive:
small valid archives, one gzip member per run, each ending in runs/NAME,
plus a torn one). The real files (tests/data/cyrus/) are copied too."""
import gzip
import io
import os
import shutil
import struct
import tarfile
import zlib

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus")
data = os.path.join(here, "..", "data", "cyrus")

# version: header size, record size, crc, (num_records, last_uid, uidvalidity, exists offsets)
LAYOUT = {10: (96, 88, 0), 11: (96, 96, 1), 12: (128, 96, 1), 13: (128, 104, 1),
          14: (160, 104, 1), 15: (160, 104, 1), 16: (160, 112, 1), 17: (160, 112, 1),
          18: (160, 112, 1), 19: (160, 112, 1), 20: (192, 144, 1)}


def index(v, nrec):
    hs, rs, crc = LAYOUT[v]
    h = bytearray(hs)
    struct.pack_into(">IIIII", h, 0, 1, 0, v, hs, rs)
    struct.pack_into(">I", h, 20, nrec)                 # num_records
    struct.pack_into(">I", h, 28 if v < 20 else 88, nrec)  # last_uid
    struct.pack_into(">I", h, 44 if v < 20 else 92, 777)   # uidvalidity
    if v >= 12:
        struct.pack_into(">I", h, 84 if v < 20 else 60, nrec)  # exists
    if crc:
        struct.pack_into(">I", h, hs - 4, zlib.crc32(bytes(h[:hs - 4])))
    out = bytes(h)
    for i in range(nrec):
        r = bytearray(rs)
        struct.pack_into(">I", r, 0, i + 1)
        if v < 20:
            struct.pack_into(">II", r, 4, 1700000000, 100 + i)
        else:
            struct.pack_into(">QQ", r, 8, 1700000000 * 10**9, 100 + i)
        r[60:80] = bytes([(i * 7 + k) & 0xff for k in range(20)])
        if crc:
            struct.pack_into(">I", r, rs - 4, zlib.crc32(bytes(r[:rs - 4])))
        out += bytes(r)
    return out


def write(target, name, blob):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


for v in LAYOUT:
    write("cyrus-index", "v%d-empty" % v, index(v, 0))
    write("cyrus-index", "v%d-3" % v, index(v, 3))
shutil.copy(os.path.join(data, "v17.index"), os.path.join(corpus, "cyrus-index", "real-v17"))
for h in ("v2.header", "v3.header"):
    shutil.copy(os.path.join(data, h), os.path.join(corpus, "cyrus-header", h))

UID = "abcdefghijklmnopqrstuvwx"
HEADER = (b"\xa1\x02\x8b\x0dCyrus mailbox header\n"
          b"\"The best thing about this system was that it had lots of goals.\"\n"
          b"\t--Jim Morris on Andrew\n"
          b"%(T e N user.eve.Sent I " + UID.encode() + b" A %(eve lrswipkxtecdan))\n")


def member(entries, run):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, blob, link in entries + [("runs/" + run, manifest(run), None)]:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.mode = 0o600
            if link is not None:
                ti.type = tarfile.SYMTYPE
                ti.linkname = link
                t.addfile(ti)
            else:
                ti.size = len(blob)
                t.addfile(ti, io.BytesIO(blob))
    return gzip.compress(buf.getvalue(), mtime=0)


def manifest(run):
    return ("chjournal-run 1\ntime 1700000000\nseq 1\nuser eve\n"
            "folder %s\tdefault\tuuid/a/b/%s\tuser.eve.Sent\nfile user/conf/eve.seen\n"
            % (UID, UID)).encode()


import hashlib
msg = b"From: a@b\r\nSubject: hi\r\n\r\nbody\r\n"
sha = hashlib.sha1(msg).hexdigest()
run1 = [("files/" + sha, msg, None),
        ("folders/%s/cyrus.header" % UID, HEADER, None),
        ("folders/%s/cyrus.index" % UID, index(17, 0), None),
        ("imap/user.eve.Sent", None, "../folders/" + UID),
        ("user/conf/eve.seen", b"seen\n", None)]
one = member(run1, "20260101T000000Z")
two = one + member([("folders/%s/cyrus.index" % UID, index(17, 1), None)], "20260102T000000Z")
write("archive", "one-run", one)
write("archive", "two-runs", two)
write("archive", "torn-tail", two[:len(two) - 20])
write("archive", "empty-run", member([], "20260103T000000Z"))
write("archive", "bad-sha1", member([("files/" + "0" * 40, msg, None)], "20260104T000000Z"))

MAN = manifest("x")
write("manifest", "valid", MAN)
write("manifest", "minimal", b"chjournal-run 1\nuser u\n")
write("manifest", "two-folders", MAN + ("folder u2\tp2\tr/2\tuser.eve.A\n").encode())
write("manifest", "bad-line", b"chjournal-run 1\nuser u\nbogus\n")
write("manifest", "no-newline", b"chjournal-run 1\nuser u")

write("imapd-conf", "debian", b"configdirectory: /var/lib/cyrus\npartition-default: /var/spool/cyrus/mail\n"
      b"sievedir: /var/lib/cyrus/sieve\nhashimapspool: true\nunixhierarchysep: no\n"
      b"# comment\n\nmailbox_legacy_dirs: yes\nfulldirhash: 0\n")
write("imapd-conf", "partitions", b"configdirectory: /c\ndefaultpartition: two\npartition-one: /p1\n"
      b"partition-two: /p2\nmboxname_lockpath: /l\nmboxlist_db: skiplist\nmboxlist_db_path: /m.db\n")
write("imapd-conf", "virtdomains", b"configdirectory: /c\npartition-default: /p\nvirtdomains: userid\n")
write("imapd-conf", "no-partition", b"configdirectory: /c\n")
write("imapd-conf", "bad-bool", b"configdirectory: /c\npartition-default: /p\nhashimapspool: maybe\n")
write("imapd-conf", "not-kv", b"configdirectory /c\n")
