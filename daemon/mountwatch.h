/* mountwatch.h: the mount table as a source of changes. A file system
 * mounted or unmounted at or below a root (or under a root, replacing it)
 * replaces what the paths below the mount point show: the core journals the
 * mount point as replaced (its old entries in --deleted, its new ones listed
 * whole) and has the watcher watch it again. Noticed from the table itself:
 * the kernel marks /proc/self/mountinfo with POLLPRI when it changes, and the
 * state of each root at the last run is kept in the journal (meta key
 * "mounts:ROOT"), so a mount made while the daemon was down is found at
 * start. */
#ifndef CHJ_MOUNTWATCH_H
#define CHJ_MOUNTWATCH_H

#include <stddef.h>

#include "error.h"

struct config;
struct journal;
struct mountwatch;

/* Called with each path whose mount changed (at or below a root). */
typedef int (*mountwatch_fn)(void *ctx, const char *path);

/* Opens the mount table. NULL with e filled on failure (CHJ_ERR_SYS,
 * CHJ_ERR_NOMEM). */
struct mountwatch *mountwatch_new(struct chj_error *e);
void mountwatch_free(struct mountwatch *mw);
/* The descriptor to poll for POLLPRI. */
int mountwatch_fd(const struct mountwatch *mw);
/* Reads the table and compares it with the state of each root of cfg
 * recorded in the journal (the last comparison, at start the last run's; a
 * root without a record is only recorded), calls fn for each path whose
 * mount changed, and records the states now. Call it at start and whenever
 * the descriptor polls POLLPRI. Returns the number of changes, or -1 with
 * e filled (the mount table's or the journal's error, CHJ_ERR_NOMEM). */
int mountwatch_compare(struct mountwatch *mw, const struct config *cfg, struct journal *j,
    mountwatch_fn fn, void *ctx, struct chj_error *e);

#endif
