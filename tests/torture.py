#!/usr/bin/env python3
"""torture.py: a randomized torture test of chjournald + chjournal.

A seeded random workload runs against a spool watched by the daemon. Each
round:

  baseline   begin / list -0 / commit (the consumer's cursor moves up)
  scan1      a full scan of the spool (path, inode, size, mtime_ns, ctime_ns,
             mode, nlink, sha1 of the content; symlinks by their target)
  workload   N random operations (files, directories, renames in, out and
             within the root, exchanges (renameat2 RENAME_EXCHANGE) of files
             and directories, hard links and writes through any of their
             names, symlinks, odd names; files held open across rounds with a
             shared writable mapping and written through it, which makes no
             event (begin must find them); as root, tmpfs file systems
             mounted on directories of the spool and unmounted; now and then
             the daemon is SIGKILLed and restarted with changes made while it
             is down, or SIGSTOPped under heavy churn)
  list       begin + list -0: the listed paths
  scan2      a second full scan
  check      changed = paths of scan2 that are new, or whose inode, size,
             mtime, ctime, mode or content differ from scan1;
             missed  = changed - listed: must be empty (the journal must never
             silently miss a change); printed, and the run exits 1;
             false positives = listed - changed (allowed, reported as a ratio);
             gone = files and directories of the round's start that are gone:
             each must be in `list --deleted` or below a path of it, or its
             nearest existing directory in `list --reconcile`
             (deletion_cover.py); one that is not is a miss too
  commit

Documented limits of inotify that the ground truth accepts:
  - a ctime change that comes only with a change of the link count (a hard
    link to the inode made or removed under another name) is not counted:
    inotify reports such an IN_ATTRIB only to watches on the inode itself,
    not to the directories of the inode's other names;
  - likewise a ctime-only change of an inode whose other name was renamed,
    linked or unlinked in the round (the workload tracks those inodes);
  (content and attribute changes are made through any name, hard-linked or
  not: every name of the file under the root must then be listed).

After each round the daemon's inotify watches (/proc/PID/fdinfo) are also
compared with the spool's directories: a directory nobody watches means later
changes in it would be missed, so it fails the run too (--watch-check).

Usage: torture.py [--seed N] [--ops N] [--rounds N] [--low-queue]
         [--kill-prob P] [--stop-prob P] [--watch-check fail|warn|off]
         [--keep] [--keep-on-failure] [--trace FILE] [-v]
The binaries come from $CHJ_BUILDDIR (agent/chjournal, daemon/chjournald).
Exit 0: nothing missed; 1: changes missed or directories unwatched (listed on
stderr); 2: the run itself failed (setup error, unexpected exception).
"""

import argparse
import ctypes
import errno
import hashlib
import mmap
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deletion_cover  # noqa: E402  (beside this file)

LIBC = ctypes.CDLL(None, use_errno=True)     # renameat2 for exchanges

COOKIE_PREFIX = b".chjournal-cookie."
MAX_QUEUE_SYSCTL = "/proc/sys/fs/inotify/max_queued_events"


class SetupError(Exception):
    pass


def die_with_parent():
    """In the daemon's child before exec: SIGKILL it if torture.py dies, so
    no daemon outlives a killed run."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)          # PR_SET_PDEATHSIG
    except Exception:
        pass


# ---------------------------------------------------------------- scanning

def scan(root):
    """Full scan: {path(bytes): (ino, size, mtime_ns, ctime_ns, mode, nlink, digest)}
    for every regular file and symlink below root."""
    out = {}
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                if e.name.startswith(COOKIE_PREFIX):
                    continue
                try:
                    st = os.lstat(e.path)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    digest = b"->" + os.readlink(e.path)
                elif stat.S_ISREG(st.st_mode):
                    h = hashlib.sha1()
                    with open(e.path, "rb") as f:
                        h.update(f.read())
                    digest = h.hexdigest().encode()
                else:
                    continue
                out[e.path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                               st.st_mode, st.st_nlink, digest)
    return out


def all_paths(root):
    """Every file and directory below root (not root itself), cookies left out:
    what a gone path is looked up in."""
    out = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for e in it:
                if e.name.startswith(COOKIE_PREFIX):
                    continue
                out.append(e.path)
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return out


def changed_paths(scan1, scan2, link_inos):
    changed = set()
    for p, s2 in scan2.items():
        s1 = scan1.get(p)
        if s1 is None:
            changed.add(p)
            continue
        ino1, size1, mt1, ct1, mode1, nl1, dg1 = s1
        ino2, size2, mt2, ct2, mode2, nl2, dg2 = s2
        if (ino1, size1, mt1, mode1, dg1) != (ino2, size2, mt2, mode2, dg2):
            changed.add(p)
        elif ct1 != ct2:
            # ctime only: a link-count change, or a namespace operation on
            # another name of the inode, is not reported to this name
            if nl1 != nl2 or ino2 in link_inos:
                continue
            changed.add(p)
    return changed


def show(p):
    return repr(p)[2:-1]


def has_inotify_fd(pid):
    fddir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fddir):
            try:
                if os.readlink(os.path.join(fddir, fd)) == "anon_inode:inotify":
                    return True
            except FileNotFoundError:
                continue
    except FileNotFoundError:
        pass
    return False


def watched_inodes(pid):
    """The inodes the daemon's inotify instances watch (from /proc/PID/fdinfo)."""
    inos = set()
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            if os.readlink(os.path.join(fddir, fd)) != "anon_inode:inotify":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("inotify wd:"):
                        for field in line.split():
                            if field.startswith("ino:"):
                                inos.add(int(field[4:], 16))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return inos


def unwatched_dirs(root, pid):
    """Directories below root (root included) that no inotify watch of the
    daemon covers: changes in them would go unreported."""
    inos = watched_inodes(pid)
    out = []
    for dp, dn, fn in os.walk(root):
        try:
            st = os.lstat(dp)
        except FileNotFoundError:
            continue
        if st.st_ino not in inos:
            out.append(dp)
    return sorted(out)


# ---------------------------------------------------------------- the daemon

class Daemon:
    def __init__(self, builddir, conf, logpath, verbose):
        self.chjd = os.path.join(builddir, "daemon", "chjournald")
        self.chj = os.path.join(builddir, "agent", "chjournal")
        for b in (self.chjd, self.chj):
            if not os.access(b, os.X_OK):
                raise SetupError("not executable: %s (set CHJ_BUILDDIR)" % b)
        self.conf = conf
        self.logpath = logpath
        self.proc = None
        self.stopped = False
        self.verbose = verbose

    def agent(self, *args, check=True, timeout=120):
        r = subprocess.run([self.chj, "-c", self.conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and r.returncode != 0:
            raise SetupError("chjournal %s: exit %d: %s" % (
                " ".join(args), r.returncode, r.stderr.decode(errors="replace").strip()))
        return r

    def log_has(self, text):
        try:
            with open(self.logpath, "rb") as f:
                return text in f.read()
        except FileNotFoundError:
            return False

    def start(self, low_queue=None):
        # the log is appended to: restarts keep the earlier lines
        before = os.path.getsize(self.logpath) if os.path.exists(self.logpath) else 0
        log = open(self.logpath, "ab")
        saved = None
        if low_queue is not None:
            with open(MAX_QUEUE_SYSCTL) as f:
                saved = f.read().strip()
            with open(MAX_QUEUE_SYSCTL, "w") as f:
                f.write(str(low_queue))
        try:
            self.proc = subprocess.Popen([self.chjd, "-c", self.conf, "-v"],
                                         stdout=subprocess.DEVNULL, stderr=log,
                                         preexec_fn=die_with_parent)
            self.stopped = False
            deadline = time.time() + 30
            while saved is not None and time.time() < deadline:
                # the queue size is fixed once the instance exists: restore
                # the sysctl at once, other inotify users share it
                if self.proc.poll() is not None or has_inotify_fd(self.proc.pid):
                    with open(MAX_QUEUE_SYSCTL, "w") as f:
                        f.write(saved)
                    saved = None
                    break
                time.sleep(0.001)
            while True:
                if self.proc.poll() is not None:
                    raise SetupError("chjournald exited with %d; see %s" %
                                     (self.proc.returncode, self.logpath))
                with open(self.logpath, "rb") as f:
                    f.seek(before)
                    ready = b"ready:" in f.read()
                if ready:
                    r = self.agent("status", check=False)
                    if r.returncode == 0 and b"daemon:      running" in r.stdout:
                        break
                if time.time() > deadline:
                    raise SetupError("chjournald not ready after 30 s; see %s" % self.logpath)
                time.sleep(0.02)
        finally:
            log.close()
            if saved is not None:
                with open(MAX_QUEUE_SYSCTL, "w") as f:
                    f.write(saved)

    def sigstop(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def kill(self):
        if self.proc is None:
            return
        if self.stopped:
            self.sigcont()
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is None:
            return 0
        if self.stopped:
            self.sigcont()
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc


# ---------------------------------------------------------------- workload

def can_mount(base):
    """1 when this process can mount a tmpfs (root, a kernel that lets it):
    tried once on a scratch directory."""
    if os.geteuid() != 0:
        return False
    probe = os.path.join(base, "mount-probe")
    os.makedirs(probe, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if ok:
        subprocess.run(["umount", probe], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.rmdir(probe)
    return ok


MAX_MAPPED = 6          # files held open with a shared writable mapping
MAX_MOUNTS = 3          # tmpfs file systems mounted in the spool at a time


class Workload:
    def __init__(self, rng, root, outside, verbose, mounts=False):
        self.rng = rng
        self.root = root
        self.outside = outside
        self.verbose = verbose
        self.serial = 0
        self.link_inos = set()
        self.counts = {}
        self.trace = []
        self.mapped = []          # (path when mapped, fd, mmap), held across rounds
        self.can_mount = mounts
        self.mounts = []          # mount points made by op_mount, newest last
        self.refresh()

    def refresh(self):
        dirs, files = [self.root], []
        stack = [self.root]
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with it:
                for e in it:
                    if e.name.startswith(COOKIE_PREFIX):
                        continue
                    if e.is_dir(follow_symlinks=False):
                        dirs.append(e.path)
                        stack.append(e.path)
                    else:
                        files.append(e.path)
        dirs.sort()
        files.sort()
        self.dirs, self.files = dirs, files
        outs = []
        for e in sorted(os.listdir(self.outside)):
            outs.append(os.path.join(self.outside, e))
        self.outs = outs

    # -- names

    def name(self):
        self.serial += 1
        r = self.rng.random()
        base = b"%s%d" % (self.rng.choice([b"f", b"msg", b"cur", b"new", b"x"]), self.serial)
        if r < 0.06:
            return base + b" with space"
        if r < 0.09:
            return base + b"\nnewline"
        if r < 0.12:
            return base + b"\xff\xfe-latin\xe9"
        if r < 0.14:
            return b"-" + base
        if r < 0.16:
            return base + b":2,S"
        return base

    def pick_dir(self, nonroot=False):
        cands = self.dirs[1:] if nonroot else self.dirs
        return self.rng.choice(cands) if cands else None

    def pick_file(self):
        return self.rng.choice(self.files) if self.files else None

    def pick_regular_file(self):
        """A regular file, whatever its link count: a write through one name
        of a hard-linked file must list its other names too."""
        for _ in range(8):
            p = self.pick_file()
            if p is None:
                return None
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                return p
        return None

    def note_links_below(self, top):
        """Inodes with more than one name below top (top being removed or
        moved out): their other names' ctime changes unreported."""
        for dp, dn, fn in os.walk(top):
            for n in fn:
                try:
                    st = os.lstat(os.path.join(dp, n))
                except FileNotFoundError:
                    continue
                if st.st_nlink > 1:
                    self.link_inos.add(st.st_ino)

    def note_link(self, path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            self.link_inos.add(st.st_ino)

    def content(self):
        n = self.rng.choice([0, 1, 10, 100, 700, 3000])
        return bytes(self.rng.getrandbits(8) for _ in range(min(n, 64))) * (1 + n // 64)

    def record(self, op, *args):
        if op != "round":
            self.counts[op] = self.counts.get(op, 0) + 1
        self.trace.append((op,) + args)
        if self.verbose > 1:
            print("  op %s %s" % (op, " ".join(show(a) if isinstance(a, bytes) else str(a)
                                                for a in args)))

    # -- operations (each returns True if it did something)

    def op_create(self):
        d = self.pick_dir()
        p = os.path.join(d, self.name())
        with open(p, "wb") as f:
            f.write(self.content())
        self.files.append(p)
        self.record("create", p)

    def op_write(self):
        p = self.pick_regular_file()
        if p is None:
            return False
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.seek(self.rng.randint(0, size))
            f.write(bytes([self.rng.getrandbits(8)]) * self.rng.randint(1, 50))
        self.record("write", p)

    def op_overwrite_same(self):
        # same size, content changes: only mtime/ctime and the hash tell
        p = self.pick_regular_file()
        if p is None:
            return False
        size = os.path.getsize(p)
        if size == 0:
            return False
        with open(p, "r+b") as f:
            f.seek(self.rng.randrange(size))
            f.write(bytes([self.rng.getrandbits(8)]))
        self.record("overwrite1", p)

    def op_append(self):
        p = self.pick_regular_file()
        if p is None:
            return False
        with open(p, "ab") as f:
            f.write(b"appended %d\n" % self.serial)
        self.record("append", p)

    def op_truncate(self):
        p = self.pick_regular_file()
        if p is None:
            return False
        size = os.path.getsize(p)
        os.truncate(p, self.rng.randint(0, max(0, size - 1)) if size else 0)
        self.record("truncate", p)

    def op_chmod(self):
        p = self.pick_regular_file()
        if p is None:
            return False
        os.chmod(p, self.rng.choice([0o600, 0o640, 0o644, 0o755, 0o400]))
        self.record("chmod", p)

    def op_touch(self):
        p = self.pick_regular_file()
        if p is None:
            return False
        if self.rng.random() < 0.5:
            os.utime(p, None)
        else:
            t = time.time() - self.rng.randint(1, 10 ** 7)
            os.utime(p, (t, t))
        self.record("touch", p)

    def op_delete(self):
        p = self.pick_file()
        if p is None:
            return False
        self.note_link(p)
        os.unlink(p)
        self.files.remove(p)
        self.record("delete", p)

    def op_mkdir_deep(self):
        d = self.pick_dir()
        path = d
        for _ in range(self.rng.randint(1, 4)):
            path = os.path.join(path, b"d" + self.name())
        os.makedirs(path)
        # files at once, at several levels: the race with the new watches
        p = path
        created = []
        while len(p) > len(d):
            for _ in range(self.rng.randint(0, 2)):
                f = os.path.join(p, self.name())
                with open(f, "wb") as fh:
                    fh.write(self.content())
                created.append(f)
            p = os.path.dirname(p)
        self.record("mkdir_deep", path, len(created))
        self.refresh()

    def op_mkdir_rename_fill(self):
        # mkdir, a file, rename the directory at once, a file in the renamed one
        d = self.pick_dir()
        a = os.path.join(d, b"d" + self.name())
        os.mkdir(a)
        os.mkdir(os.path.join(a, b"sub"))
        with open(os.path.join(a, b"sub", self.name()), "wb") as f:
            f.write(b"1")
        b = os.path.join(self.pick_dir(), b"d" + self.name())
        os.rename(a, b)
        with open(os.path.join(b, b"sub", self.name()), "wb") as f:
            f.write(b"2")
        with open(os.path.join(b, self.name()), "wb") as f:
            f.write(b"3")
        self.record("mkdir_rename_fill", a, b)
        self.refresh()

    def op_mkdir_rename_parent(self):
        # a new directory, then at once a rename of its parent: the daemon
        # reads the CREATE after the rename happened
        parent = self.pick_dir(nonroot=True)
        if parent is None:
            return False
        d = os.path.join(parent, b"d" + self.name())
        os.mkdir(d)
        grand = self.pick_dir()
        if grand == parent or grand.startswith(parent + b"/"):
            grand = os.path.dirname(parent)
        dst = os.path.join(grand, b"r" + self.name())
        os.rename(parent, dst)
        self.record("mkdir_rename_parent", d, dst)
        self.refresh()

    def op_rename_dir_over_empty(self):
        # rename a directory over an empty one (which it replaces)
        empties = [d for d in self.dirs[1:] if not os.listdir(d)]
        src = self.pick_dir(nonroot=True)
        if not empties or src is None:
            return False
        dst = self.rng.choice(empties)
        if dst == src or dst.startswith(src + b"/") or src.startswith(dst + b"/"):
            return False
        os.rename(src, dst)
        self.record("rename_dir_over_empty", src, dst)
        self.refresh()

    def op_recreate_same_name(self):
        # a directory renamed away and at once a new one under its old name,
        # filled at once: events read late name the wrong directory
        src = self.pick_dir(nonroot=True)
        if src is None:
            return False
        dst = os.path.join(os.path.dirname(src), b"away" + self.name())
        os.rename(src, dst)
        os.makedirs(os.path.join(src, b"sub"))
        with open(os.path.join(src, self.name()), "wb") as f:
            f.write(b"in the new one")
        with open(os.path.join(src, b"sub", self.name()), "wb") as f:
            f.write(b"below the new one")
        with open(os.path.join(dst, self.name()), "wb") as f:
            f.write(b"in the old one")
        self.record("recreate_same_name", src, dst)
        self.refresh()

    def op_rename_file(self):
        p = self.pick_file()
        if p is None:
            return False
        r = self.rng.random()
        if r < 0.2 and len(self.files) > 1:
            target = self.pick_file()           # over an existing file
            if target == p:
                return False
            self.note_link(target)
        elif r < 0.6:
            target = os.path.join(os.path.dirname(p), self.name())
        else:
            target = os.path.join(self.pick_dir(), self.name())
        self.note_link(p)
        os.rename(p, target)
        self.record("rename_file", p, target)
        self.refresh()

    def op_rename_dir(self):
        src = self.pick_dir(nonroot=True)
        if src is None:
            return False
        parent = self.pick_dir()
        if parent == src or parent.startswith(src + b"/"):
            return False
        dst = os.path.join(parent, b"d" + self.name())
        os.rename(src, dst)
        self.record("rename_dir", src, dst)
        self.refresh()

    def op_move_out(self):
        src = self.pick_dir(nonroot=True)
        if src is None:
            return False
        self.note_links_below(src)
        dst = os.path.join(self.outside, b"o" + self.name())
        os.rename(src, dst)
        if self.rng.random() < 0.5:
            # changed while outside: must count once moved back in
            with open(os.path.join(dst, self.name()), "wb") as f:
                f.write(b"made outside")
        self.record("move_out", src, dst)
        self.refresh()

    def op_move_in(self):
        if not self.outs or self.rng.random() < 0.3:
            src = os.path.join(self.outside, b"fresh" + self.name())
            os.makedirs(os.path.join(src, b"a", b"b"))
            for sub in (b"", b"a", b"a/b"):
                for _ in range(self.rng.randint(0, 3)):
                    with open(os.path.join(src, sub, self.name()), "wb") as f:
                        f.write(self.content())
            old = time.time() - 86400 * 30
            for dp, dn, fn in os.walk(src):
                for n in fn:
                    os.utime(os.path.join(dp, n), (old, old))
        else:
            src = self.rng.choice(self.outs)
        dst = os.path.join(self.pick_dir(), b"i" + self.name())
        os.rename(src, dst)
        self.record("move_in", src, dst)
        self.refresh()

    def op_hardlink(self):
        p = self.pick_file()
        if p is None or os.path.islink(p):
            return False
        dst = os.path.join(self.pick_dir(), self.name())
        os.link(p, dst)
        self.note_link(dst)
        self.files.append(dst)
        self.record("hardlink", p, dst)

    def op_symlink(self):
        d = self.pick_dir()
        dst = os.path.join(d, self.name())
        target = self.rng.choice([b"../nowhere", b"/etc/passwd", b"target-" + self.name()])
        os.symlink(target, dst)
        self.files.append(dst)
        self.record("symlink", dst, target)

    def op_resymlink(self):
        # replace a symlink by one with another target (rename over it)
        links = [p for p in self.files[-50:] if os.path.islink(p)]
        if not links:
            return False
        p = self.rng.choice(links)
        tmp = os.path.join(os.path.dirname(p), b"tmp" + self.name())
        os.symlink(b"new-target-" + self.name(), tmp)
        os.rename(tmp, p)
        self.record("resymlink", p)

    def op_rmtree(self):
        src = self.pick_dir(nonroot=True)
        if src is None or self.rng.random() < 0.5:
            return False
        self.note_links_below(src)
        shutil.rmtree(src)
        self.record("rmtree", src)
        self.refresh()

    def op_exchange(self):
        # renameat2(RENAME_EXCHANGE) of two entries, files or directories,
        # neither below the other
        a = self.rng.choice(self.dirs[1:] + self.files) if len(self.dirs) > 1 else None
        b = self.rng.choice(self.dirs[1:] + self.files) if a is not None else None
        if a is None or a == b or a.startswith(b + b"/") or b.startswith(a + b"/"):
            return False
        for p in (a, b):
            if os.path.isdir(p) and not os.path.islink(p):
                self.note_links_below(p)
            else:
                self.note_link(p)
        if LIBC.renameat2(-100, a, -100, b, 2) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        self.record("exchange", a, b)
        self.refresh()

    def op_replace_dir_with_file(self):
        # rmdir a (possibly empty) directory, a file of the same name
        empties = [d for d in self.dirs[1:] if not os.listdir(d)]
        if not empties:
            return False
        d = self.rng.choice(empties)
        os.rmdir(d)
        with open(d, "wb") as f:
            f.write(b"was a directory")
        self.record("dir_to_file", d)
        self.refresh()

    # -- files held open: writes through a shared mapping make no event

    def op_map(self):
        """Opens a regular file read-write and maps it shared, kept open
        across rounds (a database, a mailbox index)."""
        if len(self.mapped) >= MAX_MAPPED:
            return False
        p = self.pick_regular_file()
        if p is None or os.path.getsize(p) == 0:
            return False
        fd = os.open(p, os.O_RDWR)
        try:
            m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED,
                          mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError):
            os.close(fd)
            return False
        self.mapped.append((p, fd, m))
        self.record("map", p)

    def op_map_write(self):
        """Writes through a held mapping: no system call, no event."""
        if not self.mapped:
            return False
        p, fd, m = self.rng.choice(self.mapped)
        # a truncate since the map: a page past the end of the file is a
        # SIGBUS, so only what the file still holds is written
        limit = min(len(m), os.fstat(fd).st_size)
        if limit == 0:
            return False
        off = self.rng.randrange(limit)
        n = min(limit - off, self.rng.randint(1, 40))
        m[off:off + n] = bytes(self.rng.getrandbits(8) for _ in range(n))
        self.record("map_write", p)

    def op_unmap(self):
        if not self.mapped:
            return False
        i = self.rng.randrange(len(self.mapped))
        p, fd, m = self.mapped.pop(i)
        m.close()
        os.close(fd)
        self.record("unmap", p)

    def close_mappings(self):
        for p, fd, m in self.mapped:
            try:
                m.close()
                os.close(fd)
            except (OSError, ValueError):
                pass
        self.mapped = []

    # -- mounts (as root): a tmpfs on a directory of the spool hides what
    # was there and shows its own files; its unmount shows them again

    def current_mounts(self, below=None):
        """The mount points below the root (or below) now (a directory
        renamed takes its mounts along, in or out of the root), deepest
        first."""
        top = (below or self.root) + b"/"
        out = []
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                point = line.split(b" ")[4]
                for esc, ch in ((b"\\040", b" "), (b"\\011", b"\t"), (b"\\012", b"\n"),
                                (b"\\134", b"\\")):
                    point = point.replace(esc, ch)
                if point.startswith(top):
                    out.append(point)
        return sorted(out, key=len, reverse=True)

    def op_mount(self):
        if not self.can_mount:
            return False
        self.mounts = self.current_mounts()
        if len(self.mounts) >= MAX_MOUNTS:
            return False
        d = self.pick_dir(nonroot=True)
        if d is None or any(d == m or d.startswith(m + b"/") or m.startswith(d + b"/")
                            for m in self.mounts):
            return False
        # what the mount hides: names it had, whose links go unreported
        self.note_links_below(d)
        r = subprocess.run([b"mount", b"-t", b"tmpfs", b"-o", b"size=8m", b"tmpfs", d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return False
        for i in range(self.rng.randint(0, 3)):
            with open(os.path.join(d, self.name()), "wb") as f:
                f.write(self.content())
        self.record("mount", d)
        self.refresh()

    def op_umount(self):
        if not self.can_mount:
            return False
        self.mounts = self.current_mounts()
        if not self.mounts:
            return False
        d = self.rng.choice(self.mounts)   # none is mounted inside another
        self.note_links_below(d)
        for p, fd, m in list(self.mapped):
            if p.startswith(d + b"/"):
                self.mapped.remove((p, fd, m))
                m.close()
                os.close(fd)
        r = subprocess.run([b"umount", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return False
        self.record("umount", d)
        self.refresh()

    def umount_all(self):
        self.close_mappings()
        if not self.can_mount:
            return
        # the spool's, and those moved out with a directory
        for d in self.current_mounts(below=os.path.dirname(self.root)):
            subprocess.run([b"umount", b"-l", d], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    OPS = [
        ("create", 20), ("write", 10), ("overwrite_same", 4), ("append", 8),
        ("truncate", 3), ("chmod", 4), ("touch", 4), ("delete", 7),
        ("mkdir_deep", 4), ("mkdir_rename_fill", 2), ("mkdir_rename_parent", 1),
        ("rename_dir_over_empty", 1), ("recreate_same_name", 1), ("rename_file", 8),
        ("rename_dir", 3), ("move_out", 2), ("move_in", 2), ("hardlink", 3),
        ("symlink", 3), ("resymlink", 1), ("rmtree", 1), ("replace_dir_with_file", 1),
        ("exchange", 2), ("map", 1), ("map_write", 4), ("unmap", 1), ("mount", 1),
        ("umount", 1),
    ]

    DIR_OPS = [
        ("mkdir_deep", 3), ("mkdir_rename_fill", 2), ("mkdir_rename_parent", 3),
        ("rename_dir_over_empty", 1), ("recreate_same_name", 3), ("rename_dir", 4),
        ("move_out", 2), ("move_in", 2), ("rmtree", 1), ("create", 4), ("write", 2),
        ("exchange", 2),
    ]

    def random_op(self, ops=None):
        ops = ops or self.OPS
        names = [n for n, _ in ops]
        weights = [w for _, w in ops]
        for _ in range(5):
            op = self.rng.choices(names, weights)[0]
            try:
                if getattr(self, "op_" + op)() is not False:
                    return op
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError,
                    FileExistsError) as e:
                # a stale pick: refresh and try another
                if self.verbose > 1:
                    print("  (%s: %s)" % (op, e))
                self.refresh()
            except OSError as e:
                # EXDEV, EBUSY: a rename or link across a mount, a mount
                # point moved or removed
                if e.errno in (errno.ENOTEMPTY, errno.EINVAL, errno.EISDIR,
                               errno.ENAMETOOLONG, errno.EXDEV, errno.EBUSY):
                    self.refresh()
                    continue
                raise
        return None

    def churn(self, n):
        """Heavy churn: many small files in a few existing (watched) directories,
        every fifth renamed, and a new directory with more."""
        targets = [self.pick_dir() for _ in range(3)]
        fresh = os.path.join(self.pick_dir(), b"churn" + self.name())
        os.mkdir(fresh)
        targets.append(fresh)
        tag = self.serial
        for i in range(n):
            d = targets[i % len(targets)]
            p = os.path.join(d, b"c%d-%d" % (tag, i))
            with open(p, "wb") as f:
                f.write(b"%d" % i)
            if i % 5 == 0:
                os.rename(p, p + b".r")
        self.record("churn", fresh, n)
        self.refresh()


# ---------------------------------------------------------------- main

def run(args):
    builddir = os.environ.get("CHJ_BUILDDIR")
    if not builddir:
        here = os.path.dirname(os.path.abspath(__file__))
        builddir = os.path.dirname(here)
    builddir = os.path.abspath(builddir)
    if args.backend == "fanotify":
        if args.low_queue:
            raise SetupError("--low-queue sets an inotify sysctl: not with --backend fanotify")
        args.watch_check = "off"     # no per-directory watches to check
    if args.low_queue and os.geteuid() != 0:
        raise SetupError("--low-queue needs root (it lowers fs.inotify.max_queued_events)")

    base = tempfile.mkdtemp(prefix="chj-torture.")
    root = os.path.join(base, "spool").encode()
    outside = os.path.join(base, "outside").encode()
    state = os.path.join(base, "state")
    os.makedirs(root)
    os.makedirs(outside)
    os.makedirs(state)
    conf = os.path.join(base, "chjournal.conf")
    with open(conf, "w") as f:
        f.write("journal = %s/journal.db\nroot = %s\nflush_interval_ms = 50\n"
                "sync_timeout = 60\nbackend = %s\n" % (state, root.decode(), args.backend))
    logpath = os.path.join(base, "daemon.log")
    daemon = Daemon(builddir, conf, logpath, args.verbose)
    rng = random.Random(args.seed)
    ok = False
    wl = None
    try:
        # initial population
        for u in range(6):
            for sub in (b"cur", b"new", b"tmp"):
                d = os.path.join(root, b"user%d" % u, sub)
                os.makedirs(d)
                for i in range(rng.randint(0, 5)):
                    with open(os.path.join(d, b"m%d" % i), "wb") as fh:
                        fh.write(b"mail %d %d\n" % (u, i))
        low = args.low_queue_size if args.low_queue else None
        daemon.start(low_queue=low)
        mounts = args.mounts and can_mount(base)
        wl = Workload(rng, root, outside, args.verbose, mounts=mounts)
        per_round = max(1, args.ops // args.rounds)
        totals = {"ops": 0, "changed": 0, "listed": 0, "missed": 0, "fp": 0,
                  "kills": 0, "stops": 0, "unwatched": 0, "gone": 0, "gone_missed": 0,
                  "reconcile": 0}
        rows = []
        failed = False
        for rnd in range(1, args.rounds + 1):
            nops = per_round if rnd < args.rounds else args.ops - per_round * (args.rounds - 1)
            daemon.agent("begin", "torture")
            daemon.agent("list", "torture", "-0")
            daemon.agent("commit", "torture")
            wl.link_inos = set()
            wl.record("round", rnd)
            wl.refresh()
            scan1 = scan(root)
            before = all_paths(root)
            done = 0
            kills = stops = 0
            while done < nops:
                r = rng.random()
                if daemon.proc is None:
                    # down until the end of the round: plain ops
                    if wl.random_op():
                        done += 1
                    continue
                if r < args.kill_prob:
                    # crash, changes while down, restart; now and then it
                    # stays down and the round's backup runs without it
                    daemon.kill()
                    kills += 1
                    wl.record("daemon_sigkill")
                    for _ in range(rng.randint(5, 40)):
                        if wl.random_op():
                            done += 1
                    if rng.random() < 0.3:
                        wl.record("daemon_stays_down")
                        continue
                    daemon.start(low_queue=low)
                    wl.record("daemon_restart")
                    continue
                if r < args.kill_prob + args.stop_prob:
                    daemon.sigstop()
                    stops += 1
                    wl.record("daemon_sigstop")
                    if rng.random() < 0.5:
                        # the daemon lags behind a burst of directory changes:
                        # it reads events naming paths that moved since
                        for _ in range(rng.randint(10, 60)):
                            if wl.random_op(Workload.DIR_OPS):
                                done += 1
                    else:
                        wl.churn(rng.randint(200, 1500 if args.low_queue else 600))
                    for _ in range(rng.randint(5, 40)):
                        if wl.random_op():
                            done += 1
                    daemon.sigcont()
                    wl.record("daemon_sigcont")
                    continue
                if wl.random_op():
                    done += 1
            daemon.agent("begin", "torture")
            out = daemon.agent("list", "torture", "-0").stdout
            listed = set(p for p in out.split(b"\0") if p)
            scan2 = scan(root)
            changed = changed_paths(scan1, scan2, wl.link_inos)
            missed = changed - listed
            # deletions: every gone path in --deleted (or below one), or its
            # nearest existing directory in --reconcile
            deleted = [p for p in daemon.agent("list", "torture", "--deleted", "-0")
                       .stdout.split(b"\0") if p]
            reconcile = [p for p in daemon.agent("list", "torture", "--reconcile", "-0")
                         .stdout.split(b"\0") if p]
            gone_missed = deletion_cover.uncovered(before, deleted, reconcile, [root])
            fps = listed - changed
            unwatched = (unwatched_dirs(root, daemon.proc.pid)
                         if args.watch_check != "off" and daemon.proc is not None else [])
            ratio = len(fps) / len(listed) if listed else 0.0
            gone = sum(1 for p in before if not os.path.lexists(p))
            rows.append((rnd, done, kills, stops, len(changed), len(listed), len(missed),
                         gone, len(gone_missed), len(reconcile), len(unwatched), ratio))
            for k, v in (("ops", done), ("changed", len(changed)), ("listed", len(listed)),
                         ("missed", len(missed)), ("fp", len(fps)), ("kills", kills),
                         ("stops", stops), ("unwatched", len(unwatched)), ("gone", gone),
                         ("gone_missed", len(gone_missed)), ("reconcile", len(reconcile))):
                totals[k] += v
            if missed:
                print("round %d: %d changed paths MISSED (seed %d):" % (rnd, len(missed), args.seed),
                      file=sys.stderr)
                for p in sorted(missed):
                    below = [d for d in unwatched if p.startswith(d + b"/")]
                    print("  missed: %s%s\n    before: %s\n    after:  %s" % (
                        show(p), " (below an unwatched directory)" if below else "",
                        scan1.get(p), scan2[p]), file=sys.stderr)
            if gone_missed:
                print("round %d: %d gone paths MISSED: in neither --deleted nor below a "
                      "--reconcile directory (seed %d):" % (rnd, len(gone_missed), args.seed),
                      file=sys.stderr)
                for p in gone_missed:
                    print("  gone, not covered: %s" % show(p), file=sys.stderr)
            if unwatched:
                print("round %d: %d directories NOT WATCHED by the daemon (seed %d): later "
                      "changes in them would be missed:" % (rnd, len(unwatched), args.seed),
                      file=sys.stderr)
                for p in unwatched:
                    print("  unwatched: %s" % show(p), file=sys.stderr)
            if missed or gone_missed or (unwatched and args.watch_check == "fail"):
                failed = True
                # no commit: the journal keeps the round's rows for inspection
                break
            daemon.agent("commit", "torture")
            if daemon.proc is None:
                daemon.start(low_queue=low)
                wl.record("daemon_restart")
        rc = daemon.stop()
        overflows = daemon.log_has(b"inotify queue overflow")
        print("torture: seed %d, %d rounds, %d ops (%d daemon SIGKILL, %d SIGSTOP%s%s)" % (
            args.seed, args.rounds, totals["ops"], totals["kills"], totals["stops"],
            ", queue overflow seen" if overflows else "",
            "" if wl.can_mount else ", no mounts (not root)"))
        fmt = "%-6s %6s %6s %6s %8s %7s %7s %6s %8s %9s %9s %9s"
        print(fmt % ("round", "ops", "kills", "stops", "changed", "listed", "missed", "gone",
                     "g-missed", "reconcile", "unwatched", "fp-ratio"))
        for r in rows:
            print("%-6d %6d %6d %6d %8d %7d %7d %6d %8d %9d %9d %9.3f" % r)
        ratio = totals["fp"] / totals["listed"] if totals["listed"] else 0.0
        print("%-6s %6d %6d %6d %8d %7d %7d %6d %8d %9d %9d %9.3f" % (
            "total", totals["ops"], totals["kills"], totals["stops"], totals["changed"],
            totals["listed"], totals["missed"], totals["gone"], totals["gone_missed"],
            totals["reconcile"], totals["unwatched"], ratio))
        print("ops by kind: " + ", ".join("%s=%d" % kv for kv in sorted(wl.counts.items())))
        if rc != 0:
            print("torture: chjournald exited %d on SIGTERM; log %s" % (rc, logpath),
                  file=sys.stderr)
            return 1
        if failed:
            print("torture: FAILED (seed %d): %d changed paths missed, %d gone paths not "
                  "covered, %d directories not watched" % (
                      args.seed, totals["missed"], totals["gone_missed"], totals["unwatched"]),
                  file=sys.stderr)
            return 1
        ok = True
        return 0
    finally:
        try:
            daemon.kill()
        except Exception:
            pass
        if wl is not None:
            wl.umount_all()
        if not ok and args.trace and wl is not None:
            # the operations so far (all rounds), for a failure of any kind
            with open(args.trace, "w") as tf:
                for t in wl.trace:
                    tf.write(" ".join(show(a) if isinstance(a, bytes) else str(a)
                                      for a in t) + "\n")
        if args.keep or (not ok and args.keep_on_failure):
            print("torture: kept %s" % base, file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="randomized torture test of chjournald")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds (default: one per 500 ops, at least 3)")
    ap.add_argument("--kill-prob", type=float, default=0.002,
                    help="per step probability of a daemon SIGKILL + restart")
    ap.add_argument("--stop-prob", type=float, default=0.002,
                    help="per step probability of a SIGSTOP under heavy churn")
    ap.add_argument("--low-queue", action="store_true",
                    help="start the daemon with fs.inotify.max_queued_events lowered "
                         "(root; restored at once) so SIGSTOP churn overflows the queue")
    ap.add_argument("--low-queue-size", type=int, default=256)
    ap.add_argument("--watch-check", choices=["fail", "warn", "off"], default="fail",
                    help="after each round, every directory of the spool must be watched by "
                         "the daemon (/proc/PID/fdinfo): an unwatched one is a miss waiting "
                         "to happen (default: fail)")
    ap.add_argument("--no-mounts", dest="mounts", action="store_false",
                    help="no tmpfs mounts in the spool (made only as root)")
    ap.add_argument("--backend", choices=["inotify", "fanotify"], default="inotify",
                    help="the daemon's backend (fanotify: no watch check, no --low-queue)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--keep-on-failure", action="store_true")
    ap.add_argument("--trace", help="append the operations of a failing round to this file")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    if args.rounds is None:
        args.rounds = max(3, args.ops // 500)
    args.rounds = max(1, min(args.rounds, args.ops))
    # SIGTERM (a timeout) unwinds like an exception: the finally clauses stop
    # the daemon, restore the sysctl and remove the temporary directory
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
    try:
        return run(args)
    except SetupError as e:
        print("torture: %s" % e, file=sys.stderr)
        return 2
    except (Exception, KeyboardInterrupt):
        # a broken run is not a verdict on the journal: exit 2, not 1
        import traceback
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
