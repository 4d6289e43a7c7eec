#!/usr/bin/env python3
# serve-client.py: a hand-made client of `chjournal serve` (common/proto.h)
# for t1241: runs CMD... (ssh to the serve, or the serve itself), says hello
# and sends one request of kind CASE, raw, as a hostile client would. Prints
# each answer frame as one line ("OK", "ERR CODE MESSAGE", "FILE INDEX ERRNO
# SIZE", "DATA N", "EOF" when the connection ended) and, last, "exit STATUS".
#
#   serve-client.py fetch PATH -- CMD...     a FETCH of PATH
#   serve-client.py begin CONSUMER -- CMD... a BEGIN of CONSUMER
#   serve-client.py type N -- CMD...         an empty request of type N
#   serve-client.py oversized -- CMD...      a frame claiming 2 GB
#   serve-client.py badcrc -- CMD...         a FETCH whose CRC is wrong
#   serve-client.py longfield -- CMD...      a FETCH of an 8000-byte path
import struct
import subprocess
import sys
import zlib

MAGIC = b"chjournal-serve 1"
FETCH, BEGIN, OK, ERR, FILE, DATA, FERR, NOTE, HELLO = 9, 2, 64, 65, 74, 69, 75, 66, 1


def frame(ftype, fields, crc_xor=0):
    body = bytes([ftype]) + b"".join(struct.pack(">I", len(f)) + f for f in fields)
    return struct.pack(">I", len(body)) + body + struct.pack(">I", zlib.crc32(body) ^ crc_xor)


def u64(v):
    return struct.pack(">Q", v)


def read_exact(f, n):
    b = b""
    while len(b) < n:
        c = f.read(n - len(b))
        if not c:
            return None
        b += c
    return b


def read_frame(f):
    head = read_exact(f, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = read_exact(f, n + 4)
    if body is None:
        return None
    ftype, pos, fields = body[0], 1, []
    while pos < n:
        (fl,) = struct.unpack(">I", body[pos:pos + 4])
        fields.append(body[pos + 4:pos + 4 + fl])
        pos += 4 + fl
    return ftype, fields


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    case, rest, cmd = args[0], args[1:sep], args[sep + 1:]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdin.write(frame(HELLO, [MAGIC]))
    if case == "fetch":
        req = frame(FETCH, [rest[0].encode()])
    elif case == "begin":
        req = frame(BEGIN, [rest[0].encode(), u64(0)])
    elif case == "type":
        req = frame(int(rest[0]), [])
    elif case == "oversized":
        req = struct.pack(">I", 0x7FFFFFF0) + b"\x09" * 64
    elif case == "badcrc":
        req = frame(FETCH, [b"/etc/hostname"], crc_xor=1)
    elif case == "longfield":
        req = frame(FETCH, [b"/" + b"a" * 8000])
    else:
        sys.exit("unknown case " + case)
    p.stdin.write(req)
    p.stdin.flush()
    while True:
        fr = read_frame(p.stdout)
        if fr is None:
            print("EOF")
            break
        ftype, fields = fr
        if ftype == HELLO:
            continue
        if ftype == OK:
            print("OK")
            break
        if ftype == ERR:
            print("ERR %d %s" % (struct.unpack(">Q", fields[0])[0], fields[2].decode(errors="replace")))
            break
        if ftype == FILE:
            print("FILE %d %d %d" % (struct.unpack(">Q", fields[0])[0],
                                      struct.unpack(">Q", fields[1])[0], struct.unpack(">Q", fields[3])[0]))
        elif ftype == DATA:
            print("DATA %d" % len(fields[0]))
        elif ftype == FERR:
            print("FERR " + fields[0].decode(errors="replace"))
        elif ftype == NOTE:
            print("NOTE " + fields[0].decode(errors="replace"))
        else:
            print("TYPE %d" % ftype)
    p.stdin.close()
    print("exit %d" % p.wait())


main()
