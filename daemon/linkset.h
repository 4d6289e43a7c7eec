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
 * build (a name that no longer resolves is left out). Returns 0, or -1 with
 * journal_errmsg() (the old set is kept). */
int linkset_refresh(struct linkset *s, struct journal *j);
/* Returns 1 with the inode number when id is a known file, else 0. */
int linkset_find(const struct linkset *s, const struct watcher_file_id *id, uint64_t *ino);
/* The number of files in the set. */
size_t linkset_count(const struct linkset *s);

#endif
