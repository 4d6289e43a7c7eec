#!/usr/bin/env python3
"""ports.py DIR PID N: prints N free TCP ports, reserved for process PID.

test-lib's test_ports. A port is free when a socket can be bound to it on
every address (nothing is bound to it, in any state). Ports are taken below
the kernel's ephemeral range (net.ipv4.ip_local_port_range), where no
outgoing connection is given one between this check and the test's server
binding it, and out of net.ipv4.ip_local_reserved_ports. Each is reserved
by creating DIR/PORT (O_EXCL) holding PID; test-lib's cleanup removes the
files of its pid, and a file whose process is gone is taken over. So tests
run side by side (make -j check, or another checkout's run) never get the
same port."""

import errno
import os
import random
import socket
import sys

SPAN = 10000


def read_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    high = low - 1
    low = max(1024, high - SPAN + 1)
    return low, high


def read_reserved():
    out = set()
    try:
        with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as f:
            text = f.read().strip()
    except OSError:
        return out
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def bindable(port):
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 here
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reserve(path, pid):
    """Creates path holding pid; takes over a file whose process is gone."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
            except (OSError, ValueError):
                return False
            if owner and alive(owner):
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        os.write(fd, b"%d\n" % pid)
        os.close(fd)
        return True
    return False


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: ports.py DIR PID N")
    d, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    try:
        os.makedirs(d, mode=0o1777, exist_ok=True)
        os.chmod(d, 0o1777)
    except PermissionError:
        pass
    low, high = read_range()
    reserved = read_reserved()
    ports = list(range(low, high + 1))
    random.shuffle(ports)
    got = []
    for p in ports:
        if len(got) == n:
            break
        if p in reserved:
            continue
        path = os.path.join(d, str(p))
        if not reserve(path, pid):
            continue
        if not bindable(p):
            os.unlink(path)
            continue
        got.append(p)
    if len(got) < n:
        for p in got:
            os.unlink(os.path.join(d, str(p)))
        sys.exit("ports.py: no %d free ports in %d..%d" % (n, low, high))
    print(" ".join(map(str, got)))


if __name__ == "__main__":
    main()
