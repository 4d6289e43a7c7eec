#!/usr/bin/env python3
"""deletion_cover.py: checks the promise of `list --deleted` and `list
--reconcile`: every path that existed at the last committed begin and is gone
now is in the deleted list or below a path in it, or its nearest existing
directory (an ancestor a file replaced is gone) is in the reconcile list (a consumer makes the entries
directly in each reconcile directory match the file system: the nearest
existing ancestor of a gone path lost it, or lost the directory above it).

    deletion_cover.py BEFORE DELETED RECONCILE ROOT...

BEFORE, DELETED and RECONCILE are NUL-separated path lists (BEFORE: every file
and directory under the roots when the last run was committed, e.g. from
`find ROOT -mindepth 1 -print0`). Prints each gone path not covered and exits
1 when there is one; with -v also prints the reconcile directories that lost
nothing (the cost of the promise, not an error). Imported by torture.py.
"""
import os
import stat
import sys


def read_list(path):
    with open(path, "rb") as f:
        return [p for p in f.read().split(b"\0") if p]


def exists(path):
    try:
        os.lstat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False


def ancestors(path, roots):
    """The directories above path, nearest first, down to its root."""
    out = []
    root = max((r for r in roots if path == r or path.startswith(r + b"/")), key=len,
               default=None)
    while root is not None and path != root:
        path = os.path.dirname(path)
        out.append(path)
    return out


def is_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def uncovered(before, deleted, reconcile, roots, exists=exists, is_dir=is_dir):
    """The gone paths of before that neither list covers, sorted. An ancestor
    that is not a directory now is gone too (a file took its name)."""
    deleted = set(deleted)
    reconcile = set(reconcile)
    missed = []
    for p in before:
        if exists(p):
            continue
        above = ancestors(p, roots)
        if p in deleted or any(a in deleted for a in above):
            continue
        gone_above = [a for a in above if not is_dir(a)]
        rest = above[len(gone_above):]
        if rest and rest[0] in reconcile:
            continue
        missed.append(p)
    return sorted(missed)


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    if len(args) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    before, deleted, reconcile = (read_list(a) for a in args[:3])
    roots = [os.fsencode(r.rstrip("/")) for r in args[3:]]
    missed = uncovered(before, deleted, reconcile, roots)
    for p in missed:
        print("not covered: %s" % p.decode(errors="backslashreplace"))
    if verbose:
        before_dirs = set(os.path.dirname(p) for p in before if not exists(p))
        for d in sorted(set(reconcile) - before_dirs):
            print("reconciled, lost nothing: %s" % d.decode(errors="backslashreplace"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
