#!/usr/bin/env python3
"""cyrus-state.py: the test oracle for the Cyrus archive, independent of
chjournal's own code: it asks the real Cyrus (cyr_dbtool, mbpath) which
folders a user has and where, and copies them.

  cyrus-state.py snapshot LABDIR USER OUT   copy the user's live folders (every
        file but cyrus.cache) to OUT/spool/PARTITION/REL, the user's files of
        the config and sieve directories to OUT/conf/REL and OUT/sieve/REL;
        OUT/folders.txt lists "NAME<TAB>PARTITION/REL"
  cyrus-state.py compare SNAP RESTORED      exit 1, naming each difference,
        unless RESTORED holds exactly SNAP's folders, byte for byte, and
        every per-user file restored equals SNAP's (sub.db must be there)
  cyrus-state.py compare --recent SNAP RESTORED   the same, but a cyrus.index
        (minor version 17) may differ in the header fields a read-only
        session's SELECT rewrites: recentuid (104), recenttime (108) and the
        header CRC (156), each a valid CRC of its own header
"""
import os
import shutil
import subprocess
import struct
import sys
import zlib

CYRBIN = "/usr/lib/cyrus/bin"


def lab_env(lab):
    env = {}
    with open(os.path.join(lab, "lab.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def as_cyrus(args):
    return subprocess.run(["runuser", "-u", "cyrus", "--"] + args, check=True,
                          capture_output=True).stdout


def mailboxes(env, user):
    """[(external name, partition)] of user's live folders, from mailboxes.db."""
    out = []
    for prefix in ("Nuser\x1f" + user,):
        raw = as_cyrus([CYRBIN + "/cyr_dbtool", "-C", env["CONFIG"],
                        env["CONFIGDIR"] + "/mailboxes.db", "twoskip", "show", prefix])
        for line in raw.decode("latin-1").splitlines():
            key, _, val = line.partition("\t")
            name = key[1:]
            if name != "user\x1f" + user and not name.startswith("user\x1f" + user + "\x1f"):
                continue
            fields = val.strip("%()").split()
            t = fields[fields.index("T") + 1] if "T" in fields else ""
            if "d" in t:
                continue
            part = fields[fields.index("P") + 1] if "P" in fields else "default"
            out.append((name.replace("\x1f", "/"), part))
    return out


def partition_dir(env, part):
    with open(env["CONFIG"]) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == "partition-" + part:
                return v.strip()
    raise SystemExit("no partition " + part)


def snapshot(lab, user, out):
    env = lab_env(lab)
    boxes = mailboxes(env, user)
    paths = as_cyrus([CYRBIN + "/mbpath", "-C", env["CONFIG"]] +
                     [b[0] for b in boxes]).decode().splitlines()
    if len(paths) != len(boxes):
        raise SystemExit("mbpath gave %d paths for %d folders" % (len(paths), len(boxes)))
    listing = []
    for (name, part), path in zip(boxes, paths):
        rel = os.path.relpath(path, partition_dir(env, part))
        dest = os.path.join(out, "spool", part, rel)
        os.makedirs(dest, exist_ok=True)
        for fn in sorted(os.listdir(path)):
            src = os.path.join(path, fn)
            if fn == "cyrus.cache" or not os.path.isfile(src) or os.path.islink(src):
                continue
            shutil.copyfile(src, os.path.join(dest, fn))
        listing.append("%s\t%s/%s" % (name, part, rel))
    with open(os.path.join(out, "folders.txt"), "w") as f:
        f.write("".join(line + "\n" for line in sorted(listing)))
    # per-user files: everything of the user's in the config and sieve dirs
    for kind, base in (("conf", env["CONFIGDIR"]), ("sieve", env["SIEVEDIR"])):
        for root, dirs, files in os.walk(base):
            for fn in files:
                src = os.path.join(root, fn)
                rel = os.path.relpath(src, base)
                if not owned_by(rel, user, inbox_uid(paths, boxes, user)):
                    continue
                dest = os.path.join(out, kind, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), dest)
                else:
                    shutil.copyfile(src, dest)


def inbox_uid(paths, boxes, user):
    for (name, _), path in zip(boxes, paths):
        if name == "user/" + user:
            return os.path.basename(path)
    return None


def owned_by(rel, user, inbox):
    parts = rel.split("/")
    if parts[0] == "user" and inbox and inbox in parts:
        return True          # uuid: conf/user/uuid/c1/c2/INBOXUID/...
    if parts[0] == "uuid" and inbox and inbox in parts:
        return True          # sieve/uuid/c1/c2/INBOXUID/...
    if parts[0] == "user" and parts[-1].startswith(user + "."):
        return True          # legacy conf/user/h/USER.seen
    if user in parts[:-1] and parts[0] != "user":
        return True          # legacy sieve/h/USER/...
    return False


def files_of(d):
    res = {}
    for root, dirs, files in os.walk(d):
        for fn in files:
            p = os.path.join(root, fn)
            res[os.path.relpath(p, d)] = p
    return res


def same_but_recent(a, b):
    """a and b, two v17 cyrus.index images, equal but for recentuid,
    recenttime and the header CRC, both headers sealed by a right CRC"""
    if len(a) != len(b) or len(a) < 160 or a[8:12] != b"\0\0\0\x11" or b[8:12] != a[8:12]:
        return False
    for x in (a, b):
        if zlib.crc32(x[:156]) != struct.unpack(">I", x[156:160])[0]:
            return False
    return a[:104] == b[:104] and a[112:156] == b[112:156] and a[160:] == b[160:]


def compare(snap, restored, recent=False):
    problems = []
    want_dirs = set()
    with open(os.path.join(snap, "folders.txt")) as f:
        for line in f:
            want_dirs.add(line.rstrip("\n").split("\t")[1])
    got_dirs = set()
    spool = os.path.join(restored, "spool")
    for root, dirs, files in os.walk(spool):
        if "cyrus.header" in files:
            got_dirs.add(os.path.relpath(root, spool))
    for d in sorted(want_dirs - got_dirs):
        problems.append("folder missing from the restore: " + d)
    for d in sorted(got_dirs - want_dirs):
        problems.append("folder restored that the spool did not have: " + d)
    for d in sorted(want_dirs & got_dirs):
        a = files_of(os.path.join(snap, "spool", d))
        b = files_of(os.path.join(spool, d))
        for fn in sorted(set(a) - set(b)):
            problems.append("%s/%s: missing from the restore" % (d, fn))
        for fn in sorted(set(b) - set(a)):
            problems.append("%s/%s: restored but not in the spool" % (d, fn))
        for fn in sorted(set(a) & set(b)):
            with open(a[fn], "rb") as x, open(b[fn], "rb") as y:
                xb, yb = x.read(), y.read()
                if xb != yb and not (recent and fn == "cyrus.index" and same_but_recent(xb, yb)):
                    problems.append("%s/%s: content differs" % (d, fn))
    for kind in ("conf", "sieve"):
        rdir = os.path.join(restored, kind)
        for rel, p in sorted(files_of(rdir).items()):
            s = os.path.join(snap, kind, rel)
            if os.path.islink(p):
                if not os.path.islink(s) or os.readlink(s) != os.readlink(p):
                    problems.append("%s/%s: link differs" % (kind, rel))
            elif not os.path.isfile(s):
                problems.append("%s/%s: restored but not in the snapshot" % (kind, rel))
            else:
                with open(s, "rb") as x, open(p, "rb") as y:
                    if x.read() != y.read():
                        problems.append("%s/%s: content differs" % (kind, rel))
        for rel in files_of(os.path.join(snap, kind)):
            if os.path.basename(rel) in ("sub.db", "seen.db") or rel.endswith((".sub", ".seen")):
                if not os.path.lexists(os.path.join(rdir, rel)):
                    problems.append("%s/%s: missing from the restore" % (kind, rel))
    for p in problems:
        print(p)
    return 1 if problems else 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2], sys.argv[3], sys.argv[4])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "compare" and sys.argv[2] == "--recent":
        return compare(sys.argv[3], sys.argv[4], recent=True)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
