#!/usr/bin/env python3
"""open_writer.py: a process that writes files with no inotify or fanotify
event, driven one command at a time for tests/t0116-open-writers.sh.

    open_writer.py CMD_FIFO ACK_FIFO
    open_writer.py --hold-deep DIR LEVELS -- CMD [ARGS]

Reads one command per line from CMD_FIFO and answers each on ACK_FIFO with
"ok" once it is done (or "error: WHY"), so the test waits on a real handshake:

    map PATH        open O_RDWR, mmap MAP_SHARED PROT_READ|PROT_WRITE, close the fd
    map-inflight PATH   the same, but the fd is first sent over a unix socket
                    that never receives it: the file description outlives the
                    munmap, so no IN_CLOSE_WRITE is ever made for it
    mwrite TEXT     write TEXT at the start of the mapping (no event)
    unmap           munmap
    aio PATH        open O_RDWR|O_DIRECT (held), io_setup
    aio-write TEXT  one 4096-byte block starting with TEXT at offset 0, by
                    io_submit (native AIO: no IN_MODIFY), waited for
    hold PATH       open O_WRONLY, held
    read PATH       open O_RDONLY, held
    private PATH    open O_RDWR, mmap MAP_PRIVATE, close the fd, write through
                    the mapping (copy on write: the file does not change)
    spawn N K OUTSIDE ROFILE [WFILE]   N children each holding K descriptors
                    (K-1 read-only opens of ROFILE, one O_WRONLY open of a
                    file of their own in the directory OUTSIDE), the last one
                    also WFILE open for writing; answered once all hold them
    reap            end the children
    exit

The second form makes LEVELS directories of 200 bytes each under DIR, one
level at a time, opens "held" in the last O_WRONLY|O_CREAT (a name too long
for /proc), runs CMD while holding it and exits with its status.
"""
import ctypes
import os
import platform
import socket
import subprocess
import sys

PAGE = 4096
PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 1, 2, 0x20
IOCB_CMD_PWRITE = 1
# io_setup, io_submit, io_getevents
AIO_SYSCALLS = {"x86_64": (206, 209, 208), "aarch64": (0, 2, 4)}

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.syscall.restype = ctypes.c_long


class IOCB(ctypes.Structure):
    # struct iocb, little endian
    _fields_ = [("data", ctypes.c_uint64), ("key", ctypes.c_uint32),
                ("rw_flags", ctypes.c_int32), ("opcode", ctypes.c_uint16),
                ("reqprio", ctypes.c_int16), ("fildes", ctypes.c_uint32),
                ("buf", ctypes.c_uint64), ("nbytes", ctypes.c_uint64),
                ("offset", ctypes.c_int64), ("reserved2", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("resfd", ctypes.c_uint32)]


class IOEvent(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("obj", ctypes.c_uint64),
                ("res", ctypes.c_int64), ("res2", ctypes.c_int64)]


def mmap_fd(fd, prot, flags):
    addr = libc.mmap(None, PAGE, prot, flags, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "mmap")
    return addr


class Writer:
    def __init__(self):
        self.map = None
        self.held = []
        self.sockets = []
        self.aio_fd = None
        self.aio_ctx = None
        self.children = []
        self.release = None

    def map_file(self, path, inflight=False):
        fd = os.open(path, os.O_RDWR)
        self.map = mmap_fd(fd, PROT_READ | PROT_WRITE, MAP_SHARED)
        if inflight:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            socket.send_fds(a, [b"x"], [fd])
            self.sockets += [a, b]
        os.close(fd)

    def mwrite(self, text):
        data = text.encode()
        ctypes.memmove(self.map, data, len(data))

    def unmap(self):
        libc.munmap(self.map, PAGE)
        self.map = None

    def aio(self, path):
        nums = AIO_SYSCALLS.get(platform.machine())
        if nums is None:
            raise OSError(0, "no native AIO syscall numbers for " + platform.machine())
        self.aio_fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        ctx = ctypes.c_ulong(0)
        if libc.syscall(nums[0], 8, ctypes.byref(ctx)) != 0:
            raise OSError(ctypes.get_errno(), "io_setup")
        self.aio_ctx = ctx

    def aio_write(self, text):
        nums = AIO_SYSCALLS[platform.machine()]
        buf = mmap_fd(-1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        data = text.encode()
        ctypes.memmove(buf, data, len(data))
        cb = IOCB(opcode=IOCB_CMD_PWRITE, fildes=self.aio_fd, buf=buf, nbytes=PAGE, offset=0)
        cbs = (ctypes.POINTER(IOCB) * 1)(ctypes.pointer(cb))
        if libc.syscall(nums[1], self.aio_ctx, 1, cbs) != 1:
            raise OSError(ctypes.get_errno(), "io_submit")
        ev = IOEvent()
        if libc.syscall(nums[2], self.aio_ctx, 1, 1, ctypes.byref(ev), None) != 1:
            raise OSError(ctypes.get_errno(), "io_getevents")
        libc.munmap(buf, PAGE)
        if ev.res != PAGE:
            raise OSError(-ev.res if ev.res < 0 else 0, "aio write: %d" % ev.res)

    def private(self, path):
        fd = os.open(path, os.O_RDWR)
        addr = mmap_fd(fd, PROT_READ | PROT_WRITE, MAP_PRIVATE)
        os.close(fd)
        ctypes.memmove(addr, b"private", 7)
        self.held.append(("map", addr))

    def spawn(self, n, k, outside, rofile, wfile=None):
        ready_r, ready_w = os.pipe()
        rel_r, rel_w = os.pipe()
        for i in range(n):
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                os.close(rel_w)
                fds = [os.open(rofile, os.O_RDONLY) for _ in range(k - 1)]
                fds.append(os.open(os.path.join(outside, "w%d" % i),
                                   os.O_WRONLY | os.O_CREAT, 0o600))
                if wfile is not None and i == n - 1:
                    fds.append(os.open(wfile, os.O_WRONLY))
                os.write(ready_w, b"r")
                os.read(rel_r, 1)       # EOF when released
                os._exit(0)
            self.children.append(pid)
        os.close(ready_w)
        os.close(rel_r)
        got = 0
        while got < n:
            b = os.read(ready_r, n - got)
            if not b:
                raise OSError(0, "a child died")
            got += len(b)
        os.close(ready_r)
        self.release = rel_w

    def reap(self):
        if self.release is not None:
            os.close(self.release)
            self.release = None
        for pid in self.children:
            os.waitpid(pid, 0)
        self.children = []

    def run(self, words):
        cmd, args = words[0], words[1:]
        if cmd == "map":
            self.map_file(args[0])
        elif cmd == "map-inflight":
            self.map_file(args[0], inflight=True)
        elif cmd == "mwrite":
            self.mwrite(args[0])
        elif cmd == "unmap":
            self.unmap()
        elif cmd == "aio":
            self.aio(args[0])
        elif cmd == "aio-write":
            self.aio_write(args[0])
        elif cmd == "hold":
            self.held.append(("fd", os.open(args[0], os.O_WRONLY)))
        elif cmd == "read":
            self.held.append(("fd", os.open(args[0], os.O_RDONLY)))
        elif cmd == "private":
            self.private(args[0])
        elif cmd == "spawn":
            self.spawn(int(args[0]), int(args[1]), args[2], args[3],
                       args[4] if len(args) > 4 else None)
        elif cmd == "reap":
            self.reap()
        else:
            raise OSError(0, "unknown command " + cmd)


def hold_deep_and_run(top, levels, cmd):
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("d" * 200, dir_fd=fd)
        nfd = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    held = os.open("held", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    rc = subprocess.run(cmd).returncode
    os.close(held)
    os.close(fd)
    return rc


def main():
    if sys.argv[1] == "--hold-deep":
        sys.exit(hold_deep_and_run(sys.argv[2], int(sys.argv[3]), sys.argv[5:]))
    cmds = open(sys.argv[1], "r")
    acks = open(sys.argv[2], "w")
    w = Writer()
    for line in cmds:
        words = line.split()
        if not words:
            continue
        if words[0] == "exit":
            break
        try:
            w.run(words)
            acks.write("ok\n")
        except OSError as e:
            acks.write("error: %s %s\n" % (e.strerror or "", e.filename or e))
        acks.flush()
    w.reap()
    acks.write("ok\n")
    acks.flush()


if __name__ == "__main__":
    main()
