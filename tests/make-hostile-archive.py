#!/usr/bin/env python3
"""make-hostile-archive.py OUT KIND: writes a chjournal archive (one gzip
member, a pax tar ending in runs/) whose manifest or entries try to make
`restore` write outside its target. KIND:
  relpath    a folder whose spool path is ../../escaped
  partition  a folder whose partition is ../..
  abspath    a folder whose spool path is absolute
  userfile   a per-user file named user/conf/../../escaped
  linkdir    a per-user symlink user/sieve/s -> OUTSIDE, then user/sieve/s/f
  setuid     a valid folder whose meta files carry mode 06755
  ok         a valid folder (for the existing-file and symlinked-target cases)
The folder's cyrus.index is a valid empty minor version 17 index."""
import gzip
import io
import os
import struct
import sys
import tarfile
import time
import zlib

out, kind = sys.argv[1], sys.argv[2]
outside = os.environ.get("OUTSIDE", "/tmp/outside")
UID = "abcdefghijklmnopqrstuvwx"


def index_v17():
    h = bytearray(160)
    struct.pack_into(">IIIIII", h, 0, 1, 0, 17, 160, 112, 0)
    struct.pack_into(">I", h, 44, 12345)           # uidvalidity
    struct.pack_into(">I", h, 156, zlib.crc32(bytes(h[:156])))
    return bytes(h)


def header():
    return (b"\xa1\x02\x8b\x0dCyrus mailbox header\n"
            b"\"The best thing about this system was that it had lots of goals.\"\n"
            b"\t--Jim Morris on Andrew\n"
            b"%(T e N user.eve.Evil I " + UID.encode() + b" A %(eve lrswipkxtecdan))\n")


entries = []


def add_file(name, data, mode=0o600):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = time.time()
    entries.append((ti, data))


def add_link(name, target):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.SYMTYPE
    ti.linkname = target
    ti.mtime = time.time()
    entries.append((ti, None))


relpath, partition, files = "uuid/a/b/" + UID, "default", []
if kind == "relpath":
    relpath = "../../escaped"
elif kind == "partition":
    partition = "../.."
elif kind == "abspath":
    relpath = outside + "/escaped"
elif kind == "userfile":
    add_file("user/conf/../../escaped", b"evil\n")
    files.append("user/conf/../../escaped")
elif kind == "linkdir":
    add_link("user/sieve/s", outside)
    add_file("user/sieve/s/f", b"evil\n")
    files += ["user/sieve/s", "user/sieve/s/f"]
mode = 0o6755 if kind == "setuid" else 0o600
add_file("folders/%s/cyrus.header" % UID, header(), mode)
add_file("folders/%s/cyrus.index" % UID, index_v17(), mode)
add_link("imap/user.eve.Evil", "../folders/" + UID)
manifest = "chjournal-run 1\ntime %d\nseq 1\nuser eve\n" % int(time.time())
manifest += "folder %s\t%s\t%s\tuser.eve.Evil\n" % (UID, partition, relpath)
manifest += "".join("file %s\n" % f for f in sorted(files))
add_file("runs/20260101T000000Z", manifest.encode())

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for ti, data in entries:
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
with open(out, "wb") as f:
    f.write(gzip.compress(buf.getvalue()))
