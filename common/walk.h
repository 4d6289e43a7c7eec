/* walk.h: a depth-first directory walker (openat + d_type, no symlink
 * following, excluded paths and sync cookies skipped) used by the daemon's
 * crawl, by `list` to expand new directories and resolve rescans, and by full
 * runs. With WALK_SORTED the callbacks come in bytewise path order, so a full
 * list streams without holding every path. */
#ifndef CHJ_WALK_H
#define CHJ_WALK_H

#include <stddef.h>
#include <sys/stat.h>

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
	char errmsg[1024];         /* the first error */
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

#endif
