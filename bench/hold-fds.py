#!/usr/bin/env python3
"""hold-fds.py N K MODE DIR [MAPPED]: N processes holding K descriptors each,
for the cost of begin's scan of the files open for writing
(bench/open-writers.sh). MODE read: K read-only opens of DIR/shared; write:
K O_WRONLY opens of a file of each process's own in DIR (outside the roots:
every descriptor is checked, none is journaled); map: as read, and each
process maps MAPPED (a file under a root) read-only and shared, its
descriptor opened read-only and closed, as a Cyrus imapd maps cyrus.index
(the scan reads the process's smaps to know the mapping cannot be made
writable); maps: MAPPED mapped so, then K anonymous mappings (no
descriptors), which smaps lists before it: the scan reads a process's whole
smaps, in parts, to find the mapping's entry. Prints "ready" once all hold them; ends them when its stdin
closes."""
import mmap
import os
import sys

n, k, mode, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
shared = os.path.join(d, "shared")
open(shared, "a").close()
ready_r, ready_w = os.pipe()
rel_r, rel_w = os.pipe()
pids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(rel_w)
        if mode == "maps":
            mfd = os.open(sys.argv[5], os.O_RDONLY)
            m = mmap.mmap(mfd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
            os.close(mfd)
            # alternate protections: adjacent mappings are not merged
            anon = [mmap.mmap(-1, 4096, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                              mmap.PROT_READ if j % 2 else 0) for j in range(k)]
        elif mode in ("read", "map"):
            fds = [os.open(shared, os.O_RDONLY) for _ in range(k)]
            if mode == "map":
                mfd = os.open(sys.argv[5], os.O_RDONLY)
                m = mmap.mmap(mfd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
                os.close(mfd)
        else:
            own = os.path.join(d, "w%d" % i)
            fds = [os.open(own, os.O_WRONLY | os.O_CREAT, 0o600) for _ in range(k)]
        os.write(ready_w, b"r")
        os.read(rel_r, 1)
        os._exit(0)
    pids.append(pid)
os.close(ready_w)
os.close(rel_r)
got = 0
while got < n:
    b = os.read(ready_r, n)
    if not b:
        sys.exit("hold-fds: a child died")
    got += len(b)
print("ready", flush=True)
sys.stdin.read()
os.close(rel_w)
for pid in pids:
    os.waitpid(pid, 0)
