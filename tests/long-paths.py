#!/usr/bin/env python3
"""long-paths.py: file operations on paths longer than PATH_MAX, for
t0112-long-paths. The kernel refuses such a path in one call, so every
operation here opens the directories on the way one component at a time
(dir_fd) and acts on the last name relative to its parent.

Paths are bytes (argv through os.fsencode). Commands:
  chain BASE NAMEFMT N       make BASE/NAME1/.../NAMEN (NAMEFMT % level when
                             it has a %, levels 1..N; existing ones kept),
                             print the path
  mkdirs PATH                mkdir -p
  write PATH TEXT            create PATH if missing and append TEXT
  symlink TARGET PATH        make the symlink PATH -> TARGET
  mv OLD NEW                 rename
  rm PATH...                 unlink files, remove directory trees
  files DIR                  every regular file and symlink below DIR,
                             sorted bytewise, NUL-terminated
  rescan DIR SINCE           what `list` resolves for a rescan record of DIR:
                             files whose ctime or mtime is at or after SINCE,
                             and every file below a directory (not DIR
                             itself) changed since then; sorted, NUL-terminated
  dirs DIR                   the number of directories at and below DIR
  len PATH                   the length of PATH in bytes
"""
import os
import stat
import sys

RD = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def opendir(path, create=False):
    """A descriptor of the directory path (absolute), opened component by
    component; with create, missing directories are made."""
    fd = os.open(b"/", RD)
    try:
        for comp in path.split(b"/"):
            if not comp:
                continue
            if create:
                try:
                    os.mkdir(comp, dir_fd=fd)
                except FileExistsError:
                    pass
            nfd = os.open(comp, RD, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def split(path):
    """(descriptor of the parent directory, last name)."""
    parent, _, name = path.rstrip(b"/").rpartition(b"/")
    return opendir(parent or b"/"), name


def remove(dfd, name):
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    # depth first without recursion: a tree may be thousands of levels deep
    stack = [(dfd, name, False)]
    while stack:
        pfd, n, done = stack.pop()
        if done:
            os.rmdir(n, dir_fd=pfd)
            if pfd != dfd:
                os.close(pfd)
            continue
        fd = os.open(n, RD, dir_fd=pfd)
        stack.append((pfd, n, True))
        for child in map(os.fsencode, os.listdir(fd)):
            cst = os.stat(child, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(cst.st_mode):
                stack.append((os.dup(fd), child, False))
            else:
                os.unlink(child, dir_fd=fd)
        os.close(fd)


def walk(top):
    """Yields (path, stat, under) for every entry below top; under is the
    list of paths of the directories between top and it."""
    stack = [(opendir(top), top, [])]
    while stack:
        fd, path, above = stack.pop()
        try:
            for name in map(os.fsencode, os.listdir(fd)):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                p = path + b"/" + name
                yield p, st, above
                if stat.S_ISDIR(st.st_mode):
                    stack.append((os.open(name, RD, dir_fd=fd), p, above + [(p, st)]))
        finally:
            os.close(fd)


def changed(st, since):
    return st.st_ctime_ns // 10**9 >= since or st.st_mtime_ns // 10**9 >= since


def listed(top, since):
    out = set()
    for p, st, above in walk(top):
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        if b"/.chjournal-cookie." in p:
            continue        # a sync cookie (made in a root by begin) is not data
        if changed(st, since) or any(changed(dst, since) for _, dst in above):
            out.add(p)
    return sorted(out)


def main():
    cmd, args = sys.argv[1], [os.fsencode(a) for a in sys.argv[2:]]
    out = sys.stdout.buffer
    if cmd == "chain":
        base, fmt, n = args[0], args[1], int(args[2])
        path = base + b"".join(b"/" + (fmt % i if b"%" in fmt else fmt)
                               for i in range(1, n + 1))
        os.close(opendir(path, create=True))
        out.write(path + b"\n")
    elif cmd == "mkdirs":
        os.close(opendir(args[0], create=True))
    elif cmd == "write":
        dfd, name = split(args[0])
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644,
                     dir_fd=dfd)
        os.write(fd, args[1] + b"\n")
        os.close(fd)
        os.close(dfd)
    elif cmd == "symlink":
        dfd, name = split(args[1])
        os.symlink(args[0], name, dir_fd=dfd)
        os.close(dfd)
    elif cmd == "mv":
        sfd, sname = split(args[0])
        dfd, dname = split(args[1])
        os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
        os.close(sfd)
        os.close(dfd)
    elif cmd == "rm":
        for p in args:
            dfd, name = split(p)
            remove(dfd, name)
            os.close(dfd)
    elif cmd == "files":
        for p in listed(args[0], 0):
            out.write(p + b"\0")
    elif cmd == "rescan":
        for p in listed(args[0], int(args[1])):
            out.write(p + b"\0")
    elif cmd == "dirs":
        out.write(b"%d\n" % (1 + sum(1 for _, st, _ in walk(args[0])
                                     if stat.S_ISDIR(st.st_mode))))
    elif cmd == "len":
        out.write(b"%d\n" % len(args[0]))
    else:
        sys.exit("long-paths.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
