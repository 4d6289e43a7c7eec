/* snapshot.h: a copy of a mirror after each backup run, so that one full
 * mirror kept up to date by incremental runs restores any run as a full (a
 * "synthetic full"). On btrfs, when the mirror is a subvolume, a read-only
 * snapshot (`btrfs subvolume snapshot -r`: constant time, shared extents);
 * elsewhere a reflink copy (`cp -a --reflink=always`: xfs, btrfs, and others
 * that share extents; it reads every directory, copies no data, and keeps
 * every mode as it is, so it is not read-only: DIR's permissions guard it). Each
 * is made under a hidden name in DIR and renamed to its own, the UTC time it
 * was taken, YYYYmmddTHHMMSSZ (".N" for a second one in a second), once
 * complete: a listing never shows a partial one. Which ones to keep is
 * prune.h's policy. Nothing here prints. */
#ifndef CHJ_SNAPSHOT_H
#define CHJ_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum snapshot_kind {
	SNAPSHOT_AUTO,         /* btrfs when the mirror is a subvolume, else reflink */
	SNAPSHOT_BTRFS,
	SNAPSHOT_REFLINK,
};

struct snapshot {
	char name[48];         /* YYYYmmddTHHMMSSZ[.N] */
	int64_t time;          /* the time in the name */
};

/* Parses "btrfs", "reflink" or "auto". Returns 0, or -1 (not a kind). */
int snapshot_kind_parse(const char *s, enum snapshot_kind *kind);
const char *snapshot_kind_name(enum snapshot_kind kind);

/* The kind SNAPSHOT_AUTO means for mirror. Returns 0, or -1 with e
 * (CHJ_ERR_NOTFOUND, CHJ_ERR_SYS: mirror cannot be stat()ed). */
int snapshot_kind_of(const char *mirror, enum snapshot_kind *kind, struct chj_error *e);

/* The time a snapshot's name says, or -1 when name is not one. */
int64_t snapshot_name_time(const char *name);

/* The snapshots in dir, oldest first, into *out (caller frees; *n of them).
 * Returns 0, or -1 with e. */
int snapshot_list(const char *dir, struct snapshot **out, size_t *n, struct chj_error *e);

/* The name a snapshot taken at now would get in dir. Returns 0, or -1
 * with e (dir missing or not a directory: one line naming it). */
int snapshot_next_name(const char *dir, int64_t now, struct snapshot *s, struct chj_error *e);

/* Takes a snapshot (kind: not AUTO) of mirror into dir/s->name
 * (from snapshot_next_name), through a hidden name, then syncs its file
 * system. Returns 0, or -1 with e (nothing left in dir under its name). */
int snapshot_take(const char *mirror, const char *dir, const struct snapshot *s,
    enum snapshot_kind kind, struct chj_error *e);

/* Removes dir/name: a btrfs subvolume with `btrfs subvolume delete`, a copy
 * with `rm -rf`. Returns 0, or -1 with e. */
int snapshot_remove(const char *dir, const char *name, struct chj_error *e);

#endif
