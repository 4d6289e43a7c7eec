#!/usr/bin/env python3
# bench/peers.py: chjournal against what users would pick instead, each figure
# with the peer's measured in the same run (`make bench-peers`; run by `make bench`).
#
# Environment:
#   CHJ_BUILDDIR       build directory holding daemon/chjournald, agent/chjournal
#   PEERS_FILES        files in the tree (default 200000; BIG=1: 1300000), in
#                      PEERS_FILES / 13 Cyrus-like mailboxes (bench/gen-tree)
#   PEERS_RUNS         rounds of the Watchman comparison (default 12; medians)
#   PEERS_BACKUP_RUNS  rounds of the backup tools' incrementals (default 3)
#   PEERS_TOOLS        peers to measure (default "watchman restic borg tar"); one
#                      that is missing and cannot be apt-get installed shows n/a
#   PEERS_BASE_BUILDDIR  a build of another commit: its agent (chjournal) takes
#                      every other round of W), against the same daemon and
#                      Watchman (e.g. before a change to begin)
#   BENCH_TMP, BENCH_SEED, BENCH_KEEP as for bench/run.sh
#
# W) Watchman at its own game: chjournald and a watchman server watch the same
#    tree (inotify both). Readiness: exec until the first answer (ours: `status`
#    says running, then a `sync` returns; Watchman's: `watch`, then a query that
#    waits, as every query does by default, for its cookie: the crawl done).
#    Resident memory of both. Then, each round: 1% of the files changed (half
#    appended to, half touched) after a Watchman clock and a committed run;
#    Watchman's `since` query (`watchman -j`, its default sync: a cookie file
#    observed, so both have seen every change) against, round by round in
#    turn, `chjournal begin --list -0` (one process) or `begin` + `list -0`
#    (two) (+ `commit`), in alternating order, the outputs read by this
#    script (the consumer) and checked to hold every changed file. Medians.
# B) Backup tools, each the same tool twice on the same 1% change: walking the
#    tree itself (restic backup ROOT with its parent snapshot; borg create
#    ROOT with its files cache; GNU tar --listed-incremental) against fed the
#    list (`chjournal begin` + `list`, then restic --files-from-raw, borg
#    --paths-from-stdin, tar --null -T), alternating which goes first. Fed,
#    restic and borg make a snapshot of the changed files only (an
#    incremental in tar's sense); walking, a full snapshot that shares the rest.
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CHJ_BUILDDIR", SRCDIR)
CHJ = os.path.join(BUILD, "agent", "chjournal")
CHJD = os.path.join(BUILD, "daemon", "chjournald")
BASE = os.environ.get("PEERS_BASE_BUILDDIR")
CHJ_BASE = os.path.join(BASE, "agent", "chjournal") if BASE else None
FILES = int(os.environ.get("PEERS_FILES", "1300000" if os.environ.get("BIG") == "1" else "200000"))
RUNS = int(os.environ.get("PEERS_RUNS", "12"))
BRUNS = int(os.environ.get("PEERS_BACKUP_RUNS", "3"))
TOOLS = os.environ.get("PEERS_TOOLS", "watchman restic borg tar").split()
SEED = int(os.environ.get("BENCH_SEED", "1"))
BTMP = os.environ.get("BENCH_TMP", "/var/tmp")
PACKAGES = {"watchman": ("watchman", "watchman"), "restic": ("restic", "restic"),
            "borg": ("borg", "borgbackup"), "tar": ("tar", "tar")}


def note(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def die(msg):
    note(msg)
    sys.exit(1)


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(argv, stdin=None, env=None, check=True):
    """Runs argv; returns (seconds, stdout bytes)."""
    t = time.perf_counter()
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t
    if check and p.returncode != 0:
        die("%s failed (%d): %s" % (" ".join(argv[:3]), p.returncode,
                                    p.stderr.decode(errors="replace").strip()[-400:]))
    return dt, p.stdout


def ensure_tools():
    """The peers that are there, installing a missing one with apt-get as root."""
    have = []
    for t in TOOLS:
        if t not in PACKAGES:
            die("PEERS_TOOLS: unknown peer '%s'" % t)
        prog, pkg = PACKAGES[t]
        if shutil.which(prog) is None and os.geteuid() == 0 and shutil.which("apt-get"):
            note("installing %s (apt-get) for the comparison ..." % pkg)
            subprocess.run(["apt-get", "install", "-y", "-q", pkg], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if shutil.which(prog) is None:
            note("%s could not be installed: its figures say n/a" % pkg)
        else:
            have.append(t)
    return have


class Daemon:
    def __init__(self, w, root):
        self.conf = os.path.join(w, "chjournal.conf")
        self.log = os.path.join(w, "daemon.log")
        with open(self.conf, "w") as f:
            f.write("journal = %s/state/journal.db\nroot = %s\nflush_interval_ms = 1000\n"
                    "sync_timeout = 900\nlog_level = info\n" % (w, root))
        self.proc = None

    def chj(self, *args, check=True, agent=CHJ):
        return run([agent, "-c", self.conf] + list(args), check=check)

    def start(self):
        """Exec until `status` says running and ready (the crawl done) and a
        sync has returned (seconds)."""
        t = time.perf_counter()
        self.proc = subprocess.Popen([CHJD, "-c", self.conf], stderr=open(self.log, "w"))
        while True:
            if self.proc.poll() is not None:
                die("chjournald exited: %s" % open(self.log).read().strip()[-400:])
            p = subprocess.run([CHJ, "-c", self.conf, "status"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
            if p.returncode == 0 and any(line.split()[1:2] == [b"running"] and
                                         line.rstrip().endswith(b", ready")
                                         for line in p.stdout.splitlines()
                                         if line.startswith(b"daemon:")):
                break
            time.sleep(0.002)
        self.chj("sync")
        return time.perf_counter() - t

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait()
        self.proc = None


class Watchman:
    def __init__(self, w, root):
        self.root = root
        self.base = ["watchman", "-U", os.path.join(w, "wm.sock"), "-o", os.path.join(w, "wm.log"),
                     "--pidfile=" + os.path.join(w, "wm.pid"), "-n", "--no-pretty"]
        self.pid = None

    def cmd(self, *args):
        return run(self.base + list(args))

    def query(self, q):
        dt, out = run(self.base + ["-j"], stdin=json.dumps(["query", self.root, q]).encode())
        return dt, json.loads(out)

    def start(self):
        """Exec of the client that spawns the server until the first answer."""
        t = time.perf_counter()
        self.cmd("watch", self.root)
        self.query({"expression": ["name", "no-such-name"], "fields": ["name"]})
        dt = time.perf_counter() - t
        self.pid = json.loads(self.cmd("get-pid")[1])["pid"]
        return dt

    def clock(self):
        return json.loads(self.cmd("clock", self.root)[1])["clock"]

    def stop(self):
        if self.pid is not None:
            subprocess.run(self.base + ["shutdown-server"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            self.pid = None


def change_pct(files, seed):
    """Changes 1% of the files (half appended to, half touched); their paths."""
    rng = random.Random(seed)
    pick = rng.sample(files, max(1, len(files) // 100))
    for i, p in enumerate(pick):
        if i % 2:
            os.utime(p)
        else:
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"X-Bench: appended\r\n")
            os.close(fd)
    return pick


def med(xs):
    return statistics.median(xs) if xs else None


def bench_watchman(res, w, root, files, d):
    wm = Watchman(w, root)
    try:
        note("W) watchman: watch until the first answer ...")
        res["wm_ready"] = wm.start()
        res["wm_rss"] = rss_mib(wm.pid)
        res["chj_rss"] = rss_mib(d.proc.pid)
        d.chj("begin", "wm")
        d.chj("list", "wm", "-0")
        d.chj("commit", "wm")
        tw, tb, tl, tc, nw, nl = [], [], [], [], [], []
        t1, t1c = [], []
        base = {"b": [], "l": [], "c": []}
        # each round one way of asking: `begin` then `list` (two
        # processes), `begin --list` (one), or the base build's agent
        modes = ["two", "one"] + (["base"] if CHJ_BASE else [])
        note("W) %d rounds of 1%% changed: watchman since against begin+list / begin --list ..." % RUNS)
        for r in range(RUNS):
            clock = wm.clock()
            changed = change_pct(files, SEED * 1000 + r)
            rel = {os.path.relpath(p, root) for p in changed}
            mode = modes[r % len(modes)]

            def watchman_round():
                dt, ans = wm.query({"since": clock, "fields": ["name"]})
                got = set(ans["files"])
                if not rel <= got:
                    die("watchman since missed %d changed files" % len(rel - got))
                tw.append(dt)
                nw.append(len(got))

            def check_listed(out):
                got = set(p.decode() for p in out.split(b"\0") if p)
                if not set(changed) <= got:
                    die("list missed %d changed files" % len(set(changed) - got))
                return len(got)

            def consumer_round(name, agent):
                b, out = d.chj("begin", name, agent=agent)
                if not out.startswith(b"incremental"):
                    die("begin: %s" % out.decode(errors="replace").strip())
                lt, out = d.chj("list", name, "-0", agent=agent)
                n = check_listed(out)
                ct, _ = d.chj("commit", name, agent=agent)
                return b, lt, ct, n

            def one_round():
                b, out = d.chj("begin", "wm", "--list", "-0")
                if not out.startswith(b"incremental\n"):
                    die("begin --list: %s" % out[:200].decode(errors="replace").strip())
                n = check_listed(out[len(b"incremental\n"):])
                ct, _ = d.chj("commit", "wm")
                t1.append(b)
                t1c.append(b + ct)
                nl.append(n)

            def chjournal_round():
                if mode == "one":
                    return one_round()
                b, lt, ct, n = consumer_round("wm", CHJ_BASE if mode == "base" else CHJ)
                if mode == "base":
                    base["b"].append(b)
                    base["l"].append(lt)
                    base["c"].append(ct)
                    return
                tb.append(b)
                tl.append(lt)
                tc.append(ct)
                nl.append(n)

            if (r // len(modes)) % 2:
                chjournal_round()
                watchman_round()
            else:
                watchman_round()
                chjournal_round()
        res.update(nchanged=len(changed), nrounds=len(tb), nrounds1=len(t1), nrounds_wm=len(tw),
                   wm_since=med(tw), begin=med(tb), list=med(tl),
                   commit=med(tc), begin_list=med([b + l for b, l in zip(tb, tl)]),
                   begin_list_commit=med([b + l + c for b, l, c in zip(tb, tl, tc)]),
                   begin_dash_list=med(t1), begin_dash_list_commit=med(t1c),
                   wm_listed=int(med(nw)), chj_listed=int(med(nl)),
                   wm_rss_after=rss_mib(wm.pid), chj_rss_after=rss_mib(d.proc.pid))
        if CHJ_BASE:
            res.update(base_begin=med(base["b"]), base_list=med(base["l"]),
                       base_begin_list=med([b + l for b, l in zip(base["b"], base["l"])]))
    finally:
        wm.stop()


def backup_env(w):
    e = dict(os.environ)
    e.update(RESTIC_PASSWORD="bench", RESTIC_REPOSITORY=os.path.join(w, "restic"),
             RESTIC_CACHE_DIR=os.path.join(w, "restic-cache"),
             BORG_REPO=os.path.join(w, "borg"), BORG_BASE_DIR=os.path.join(w, "borg-base"),
             BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
    return e


def walk_cmd(tool, w, root, r):
    if tool == "restic":
        return ["restic", "backup", "-q", "--host", "bench", root]
    if tool == "borg":
        return ["borg", "create", "::walk-%d" % r, root]
    return ["tar", "--listed-incremental=" + os.path.join(w, "tar.snar"), "-cf",
            os.path.join(w, "tar-walk-%d.tar" % r), "-C", "/", root.lstrip("/")]


def fed_cmd(tool, w, r, list0, listnl):
    """(argv, stdin) of the tool fed the list."""
    if tool == "restic":
        return ["restic", "backup", "-q", "--host", "bench", "--files-from-raw", list0], None
    if tool == "borg":
        return ["borg", "create", "--paths-from-stdin", "::fed-%d" % r], open(listnl, "rb").read()
    return ["tar", "--null", "-T", list0, "-cf", os.path.join(w, "tar-fed-%d.tar" % r)], None


def bench_backup(res, w, root, files, d, tools):
    env = backup_env(w)
    list0, listnl = os.path.join(w, "list0"), os.path.join(w, "list.nl")
    for t in tools:
        note("B) %s: full backup of the tree ..." % t)
        if t == "restic":
            run(["restic", "init", "-q"], env=env)
            res["full_restic"] = run(["restic", "backup", "-q", "--host", "bench", root], env=env)[0]
        elif t == "borg":
            run(["borg", "init", "-e", "none"], env=env)
            res["full_borg"] = run(["borg", "create", "::full", root], env=env)[0]
        else:
            res["full_tar"] = run(walk_cmd("tar", w, root, 0), env=env)[0]
    d.chj("begin", "bk")
    d.chj("list", "bk", "-0")
    d.chj("commit", "bk")
    bl, walk, fed = [], {t: [] for t in tools}, {t: [] for t in tools}
    for r in range(1, BRUNS + 1):
        note("B) round %d of %d: 1%% changed, each tool walking and fed ..." % (r, BRUNS))
        changed = change_pct(files, SEED * 7919 + r)
        b, out = d.chj("begin", "bk")
        lt, out = d.chj("list", "bk", "-0")
        bl.append(b + lt)
        paths = [p for p in out.split(b"\0") if p]
        if not {p.encode() for p in changed} <= set(paths):
            die("list missed changed files")
        with open(list0, "wb") as f:
            f.write(out)
        with open(listnl, "wb") as f:
            f.write(b"\n".join(paths) + b"\n")
        for t in tools:
            argv, stdin = fed_cmd(t, w, r, list0, listnl)
            order = ("walk", "fed") if r % 2 else ("fed", "walk")
            for o in order:
                if o == "walk":
                    walk[t].append(run(walk_cmd(t, w, root, r), env=env)[0])
                else:
                    fed[t].append(run(argv, stdin=stdin, env=env)[0])
        d.chj("commit", "bk")
    res["nchanged_b"] = len(changed)
    res["begin_list_b"] = med(bl)
    for t in tools:
        res["walk_" + t] = med(walk[t])
        res["fed_" + t] = med(fed[t])


def fmt(v, scale=1.0, prec=3):
    return "n/a" if v is None else "%.*f" % (prec, v * scale)


def ratio(a, b):
    return "-" if a is None or b is None or b <= 0 else "%.2f" % (a / b)


def table(res, tools, tree, load0, load1):
    print()
    print("chjournal against its peers, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("kernel: %s, CPUs: %d, load average at start %s, at end %s" % (
        os.uname().release, os.cpu_count(), load0, load1))
    print(tree)
    print()
    have = set(tools)
    if "watchman" in TOOLS:
        print("| W) Watchman at its own game (inotify both) | chjournal | Watchman | chjournal / Watchman |")
        print("|---|---|---|---|")
        g = res.get
        wmok = "watchman" in have
        print("| readiness: exec until the first answer (s) | %s | %s | %s |" % (
            fmt(g("chj_ready")), fmt(g("wm_ready")) if wmok else "n/a", ratio(g("chj_ready"), g("wm_ready"))))
        print("| RSS when ready (MiB) | %s | %s | %s |" % (
            fmt(g("chj_rss"), prec=1), fmt(g("wm_rss"), prec=1), ratio(g("chj_rss"), g("wm_rss"))))
        print("| 1%% changed (%s files): `begin --list -0` vs `since` query, medians of %s and %s rounds (ms) | %s | %s | %s |" % (
            g("nchanged", "-"), g("nrounds1", "-"), g("nrounds_wm", "-"), fmt(g("begin_dash_list"), 1000, 1),
            fmt(g("wm_since"), 1000, 1), ratio(g("begin_dash_list"), g("wm_since"))))
        print("| the same, `begin`+`list -0` (two processes), median of %s (ms) | %s | %s | %s |" % (
            g("nrounds", "-"), fmt(g("begin_list"), 1000, 1), fmt(g("wm_since"), 1000, 1),
            ratio(g("begin_list"), g("wm_since"))))
        print("| of which `begin` / `list` (ms) | %s / %s | | |" % (
            fmt(g("begin"), 1000, 1), fmt(g("list"), 1000, 1)))
        if CHJ_BASE:
            print("| the other rounds, the agent of PEERS_BASE_BUILDDIR: `begin`+`list` (`begin` / `list`) (ms) | %s (%s / %s) | %s | %s |" % (
                fmt(g("base_begin_list"), 1000, 1), fmt(g("base_begin"), 1000, 1),
                fmt(g("base_list"), 1000, 1), fmt(g("wm_since"), 1000, 1),
                ratio(g("base_begin_list"), g("wm_since"))))
        print("| `begin --list`+`commit` / `begin`+`list`+`commit` vs `since` query (ms) | %s / %s | %s | %s / %s |" % (
            fmt(g("begin_dash_list_commit"), 1000, 1), fmt(g("begin_list_commit"), 1000, 1),
            fmt(g("wm_since"), 1000, 1), ratio(g("begin_dash_list_commit"), g("wm_since")),
            ratio(g("begin_list_commit"), g("wm_since"))))
        print("| paths answered (Watchman: files and their directories) | %s | %s | |" % (
            g("chj_listed", "-"), g("wm_listed", "-")))
        print("| RSS after the rounds (MiB) | %s | %s | %s |" % (
            fmt(g("chj_rss_after"), prec=1), fmt(g("wm_rss_after"), prec=1),
            ratio(g("chj_rss_after"), g("wm_rss_after"))))
        print()
    bt = [t for t in TOOLS if t != "watchman"]
    if bt:
        print("| B) 1%% changed (%s files), median of %d (s) | fed `chjournal list` (begin+list included) | walking the tree | fed / walking |"
              % (res.get("nchanged_b", "-"), BRUNS))
        print("|---|---|---|---|")
        print("| `chjournal begin` + `list` | %s | | |" % fmt(res.get("begin_list_b")))
        names = {"restic": "restic backup (--files-from-raw / parent snapshot)",
                 "borg": "borg create (--paths-from-stdin / files cache)",
                 "tar": "GNU tar (--null -T / --listed-incremental)"}
        for t in bt:
            if t not in have:
                print("| %s | n/a | n/a | - |" % names[t])
                continue
            f = res.get("fed_" + t)
            f = None if f is None else f + res.get("begin_list_b", 0)
            print("| %s | %s | %s | %s |" % (names[t], fmt(f), fmt(res.get("walk_" + t)),
                                             ratio(f, res.get("walk_" + t))))
        for t in bt:
            if "full_" + t in res:
                print("| (first full backup, %s) | | %s | |" % (t, fmt(res["full_" + t])))
        print()


def main():
    for p in (CHJ, CHJD):
        if not os.access(p, os.X_OK):
            die("'%s' not built (set CHJ_BUILDDIR or run make bench-peers)" % p)
    tools = ensure_tools()
    if not os.path.isdir(BTMP):
        die("BENCH_TMP '%s' is not a directory" % BTMP)
    st = os.statvfs(BTMP)
    need = FILES * 1100 * 5 + (1 << 30)   # the tree, restic, borg, two tars
    if st.f_bavail * st.f_frsize < need:
        die("only %d MiB free in '%s'; %d MiB needed (set BENCH_TMP elsewhere)" % (
            st.f_bavail * st.f_frsize >> 20, BTMP, need >> 20))
    w = tempfile.mkdtemp(prefix="chj-peers.", dir=BTMP)
    root = os.path.join(w, "spool")
    d = Daemon(w, root)
    res = {}
    load0 = loadavg()
    try:
        dirs = max(1, FILES // 13)
        note("generating %d mailboxes / %d messages in %s ..." % (dirs, FILES, root))
        t = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(SRCDIR, "bench", "gen-tree"), "--dirs", str(dirs),
                        "--files", str(FILES), "--seed", str(SEED), "--out", root,
                        "--manifest", os.path.join(w, "manifest")], check=True, stdout=subprocess.DEVNULL)
        files = open(os.path.join(w, "manifest")).read().split("\n")[:-1]
        ndirs = sum(1 for _ in os.walk(root))
        tree = "tree: %d directories, %d files (generated in %.0f s)" % (ndirs, len(files), time.perf_counter() - t)
        subprocess.run(["find", root, "-type", "f", "-name", "x"], stdout=subprocess.DEVNULL)  # warm
        note("W) chjournald: start until the first answer ...")
        res["chj_ready"] = d.start()
        if "watchman" in tools:
            bench_watchman(res, w, root, files, d)
        bt = [t for t in tools if t != "watchman"]
        if bt:
            bench_backup(res, w, root, files, d, bt)
        d.stop()
        # before the work directory goes: removing it takes minutes
        table(res, tools, tree, load0, loadavg())
        sys.stdout.flush()
    finally:
        d.stop()
        if os.environ.get("BENCH_KEEP"):
            note("work directory kept: %s" % w)
        else:
            note("removing %s ..." % w)
            shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
