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
  dotdot     an entry named files/../../escaped
  absname    an entry named /tmp/escaped (absolute)
  linkescape imap/user.eve.Evil -> ../../../escaped (a link out of the archive)
  bigpax     a pax header of 2 MB (a path attribute) before the folder
  badsha1    a files/<sha1> entry whose data does not hash to its name
  idxtrunc   the folder's cyrus.index cut in its first record
  idxcrc     the folder's cyrus.index with a bad header CRC
  idxversion the folder's cyrus.index of minor version 99
The folder's cyrus.index is a valid empty minor version 17 index (but for
the idx* kinds)."""
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


def index_v17_records(n):
    """A v17 index with n records (GUIDs not in the archive)."""
    h = bytearray(160)
    struct.pack_into(">IIIIII", h, 0, 1, 0, 17, 160, 112, n)
    struct.pack_into(">I", h, 28, n)
    struct.pack_into(">I", h, 44, 12345)
    struct.pack_into(">I", h, 84, n)
    struct.pack_into(">I", h, 156, zlib.crc32(bytes(h[:156])))
    out = bytes(h)
    for i in range(n):
        r = bytearray(112)
        struct.pack_into(">III", r, 0, i + 1, 1700000000, 10)
        r[60:80] = bytes([i + 1] * 20)
        struct.pack_into(">I", r, 108, zlib.crc32(bytes(r[:108])))
        out += bytes(r)
    return out


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
elif kind == "dotdot":
    add_file("files/../../escaped", b"evil\n")
elif kind == "absname":
    add_file(outside + "/escaped", b"evil\n")
elif kind == "badsha1":
    add_file("files/" + "0" * 40, b"not what the name says\n")
mode = 0o6755 if kind == "setuid" else 0o600
add_file("folders/%s/cyrus.header" % UID, header(), mode)
idx = index_v17()
if kind == "idxtrunc":
    idx = index_v17_records(2)[:160 + 112 + 50]
elif kind == "idxcrc":
    idx = idx[:156] + b"\0\0\0\0"
elif kind == "idxversion":
    idx = bytearray(idx)
    struct.pack_into(">I", idx, 8, 99)
    idx = bytes(idx)
add_file("folders/%s/cyrus.index" % UID, idx, mode)
if kind == "bigpax":
    entries[-1][0].pax_headers = {"comment": "x" * (2 << 20)}
add_link("imap/user.eve.Evil", "../../../escaped" if kind == "linkescape" else "../folders/" + UID)
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
