/* walk.h: a depth-first directory walker (openat + d_type, no symlink
 * following, excluded paths and sync cookies skipped) used by the daemon's
 * crawl, by `list` to expand new directories and resolve rescans, and by full
 * runs. With WALK_SORTED the callbacks come in bytewise path order, so a full
 * list streams without holding every path. */
#ifndef CHJ_WALK_H
#define CHJ_WALK_H

#include <stddef.h>
#include <sys/stat.h>

#include "error.h"

struct config;

#define WALK_SORTED 0x1   /* visit entries in bytewise order of full path */
#define WALK_STAT   0x2   /* lstat every entry (st is never NULL then) */
#define WALK_DIRS   0x4   /* visit directories only (d_type filters at readdir) */
#define WALK_INO    0x8   /* without WALK_STAT: st is never NULL below the start,
                           * only its st_ino is set (the entry's d_ino) */

/* What the callback returns */
#define WALK_CONTINUE 0
#define WALK_SKIP     1   /* for a directory: do not descend */
#define WALK_STOP     2

/* type is a DT_* value (DT_DIR, DT_REG, DT_LNK, ...); st is NULL unless
 * WALK_STAT or the file system gave no d_type. The start directory itself is
 * visited first (depth 0). */
typedef int (*walk_fn)(void *ctx, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth);

struct walk_result {
	unsigned long dirs;
	unsigned long files;
	unsigned long errors;      /* unreadable directories (not vanished ones) */
	struct chj_error err;      /* the first error (CHJ_ERR_SYS, CHJ_ERR_NOMEM) */
};

/* Walks the tree at start. Returns 0, or -1 when a directory could not be
 * read (errors counted, walk went on) or a callback stopped it (then 1). A
 * start that does not exist is not an error (returns 0, nothing visited). */
int walk_tree(const char *start, int flags, const struct config *cfg, walk_fn fn,
    void *ctx, struct walk_result *res);

/* Called for each directory (or entry) that could not be read or stat'ed. */
typedef void (*walk_error_fn)(void *ctx, const char *path, int err);
/* walk_tree() that also reports every error to on_error (may be NULL). */
int walk_tree_ex(const char *start, int flags, const struct config *cfg, walk_fn fn,
    void *ctx, walk_error_fn on_error, void *error_ctx, struct walk_result *res);

/* The walk on several threads, for a walk whose cost is the lstat() of
 * every entry (a rescan of a large tree: warm, the stats spread over the
 * cores; cold, more of them in flight keep the disks busy). fn is called
 * from nthreads threads at once, with the calling thread's number (0 ..
 * nthreads-1: per-thread results need no lock), for start (depth 0, first,
 * thread 0) and every entry below it, in no particular order except that a
 * directory comes before what is below it; st is never NULL (every entry
 * is lstat()ed). *mark holds the mark of the entry's directory (0 for
 * start); what fn leaves there for a directory is the mark its own entries
 * get (so a property of a directory reaches its whole subtree).
 * Excluded paths and sync cookies in a root are skipped as by walk_tree().
 * Returns as walk_tree() does (errors counted over the threads, the first
 * message kept); WALK_STOP from any call stops every thread. */
typedef int (*walk_par_fn)(void *ctx, unsigned thread, const char *path, size_t len,
    unsigned char type, const struct stat *st, int depth, unsigned *mark);
int walk_tree_parallel(const char *start, unsigned nthreads, const struct config *cfg,
    walk_par_fn fn, void *ctx, struct walk_result *res);

#endif
