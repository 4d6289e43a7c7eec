#!/usr/bin/env python3
"""make-big-archive.py OUT RUNS PER_RUN: writes a valid chjournal archive of
RUNS runs (one gzip member each, a pax tar ending in runs/NAME), 12 hours
apart and ending at the last 12:30 UTC, each of about PER_RUN entries: a new folder (user
eve, folder user.eve.fK) with PER_RUN - 3 messages files/<sha1>, its
cyrus.header, a minor version 17 cyrus.index whose records carry the
messages' GUIDs and sizes, its imap/ link and the manifest, which names
every folder made so far. So every run restores (with messages), verify
finds nothing, and compact has runs to drop (one a day is kept)."""
import gzip
import hashlib
import io
import struct
import sys
import tarfile
import time
import zlib

out, nruns, per_run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time()) - 60
# the last run at 12:30 UTC (today's, or yesterday's when that is still to
# come), so runs fall two per UTC day whatever the time of the test: a
# compaction keeping the last run of each day keeps exactly half of them
last = now // 86400 * 86400 + 45000
if last > now:
    last -= 86400


def header(uid, name):
    return (b"\xa1\x02\x8b\x0dCyrus mailbox header\n"
            b"\"The best thing about this system was that it had lots of goals.\"\n"
            b"\t--Jim Morris on Andrew\n"
            b"%(T e N " + name.encode() + b" I " + uid.encode() + b" A %(eve lrswipkxtecdan))\n")


def index(msgs):
    n = len(msgs)
    h = bytearray(160)
    struct.pack_into(">IIIIII", h, 0, 1, 0, 17, 160, 112, n)
    struct.pack_into(">I", h, 28, n)            # last_uid
    struct.pack_into(">I", h, 44, 4242)         # uidvalidity
    struct.pack_into(">I", h, 84, n)            # exists
    struct.pack_into(">I", h, 156, zlib.crc32(bytes(h[:156])))
    out = bytes(h)
    for i, m in enumerate(msgs):
        r = bytearray(112)
        struct.pack_into(">II", r, 0, i + 1, now)
        struct.pack_into(">I", r, 12, len(m))
        r[60:80] = hashlib.sha1(m).digest()
        struct.pack_into(">I", r, 108, zlib.crc32(bytes(r[:108])))
        out += bytes(r)
    return out


folders = []
with open(out, "wb") as f:
    for k in range(nruns):
        t = last - (nruns - 1 - k) * 43200
        name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
        uid = "%024x" % (0xabc000 + k)
        fname = "user.eve.f%d" % k
        rel = "uuid/%s/%s/%s" % (uid[0], uid[1], uid)
        folders.append((uid, rel, fname))
        msgs = [("From: a@example.org\r\nSubject: run %d message %d\r\n\r\n%s\r\n"
                 % (k, i, "x" * (i % 97))).encode() for i in range(max(per_run - 3, 0))]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            def add(n, data=None, link=None):
                ti = tarfile.TarInfo(n)
                ti.mtime = t
                ti.mode = 0o600
                if link is not None:
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = link
                    tf.addfile(ti)
                else:
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
            for m in msgs:
                add("files/" + hashlib.sha1(m).hexdigest(), m)
            add("folders/%s/cyrus.header" % uid, header(uid, fname))
            add("folders/%s/cyrus.index" % uid, index(msgs))
            add("imap/" + fname, link="../folders/" + uid)
            man = "chjournal-run 1\ntime %d\nseq %d\nuser eve\n" % (t, k + 1)
            man += "".join("folder %s\tdefault\t%s\t%s\n" % fo for fo in sorted(folders, key=lambda x: x[2]))
            add("runs/" + name, man.encode())
        f.write(gzip.compress(buf.getvalue(), compresslevel=1))
