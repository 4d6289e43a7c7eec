/* linkset.h: the file handles of the multiply-linked files the journal knows
 * names of, so that the daemon can tell, from a fanotify event's own file
 * handle, that a file written through a name outside the roots has names
 * inside them (hard links) to journal. Rebuilt from the journal's links
 * table when it changed. */
#ifndef CHJ_LINKSET_H
#define CHJ_LINKSET_H

#include <stdint.h>
#include <time.h>

#include "watch.h"

struct journal;
struct linkset;

/* NULL only on ENOMEM. */
struct linkset *linkset_new(void);
void linkset_free(struct linkset *s);
/* Rebuilds the set when the journal's links_generation moved since the last
 * build (a name that no longer resolves is left out). Returns 1 when it was
 * rebuilt, 0 when unchanged, or -1 with journal_errmsg() (the old set is
 * kept). */
int linkset_refresh(struct linkset *s, struct journal *j);
/* A file's key in the set (a 64-bit hash of its file system id and handle). */
uint64_t linkset_key(const struct watcher_file_id *id);
/* Returns 1 with the inode number when the file of key is known, else 0. */
int linkset_find(const struct linkset *s, uint64_t key, uint64_t *ino);
/* Remembers the key of a file written outside the roots that the set does
 * not know, at monotonic time now_ms: a name noted since the last build
 * (the set follows the journal at each flush) may make it known. */
void linkset_recent(struct linkset *s, uint64_t key, int64_t now_ms);
/* After a rebuild: calls fn with each inode whose file was written outside
 * the roots in the last window_ms and is known now (each once). */
void linkset_recheck(struct linkset *s, int64_t now_ms, int64_t window_ms,
    void (*fn)(void *ctx, uint64_t ino), void *ctx);
/* The number of files in the set. */
size_t linkset_count(const struct linkset *s);

#endif
