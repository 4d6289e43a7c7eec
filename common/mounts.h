/* mounts.h: the mount table (/proc/self/mountinfo), read and compared, so
 * that a mount or an unmount at or below a root, while the daemon runs or
 * while it is down, is noticed from the table itself (not a timer). The
 * kernel signals a change of the table by POLLPRI on the open file. */
#ifndef CHJ_MOUNTS_H
#define CHJ_MOUNTS_H

#include <stddef.h>

#include "error.h"

#define MOUNTS_FILE "/proc/self/mountinfo"

struct mount_entry {
	int id, parent;
	unsigned major, minor;
	char *root;                  /* the directory of its file system mounted */
	char *point;                 /* where (unescaped) */
	char *fstype;
	char *source;
};

struct mount_table {
	struct mount_entry *v;
	size_t n, cap;
	struct chj_error err;        /* why reading the table failed */
};

/* Reads the table from fd (rewound; -1: opens MOUNTS_FILE). Returns 0, or
 * -1 with t->err (CHJ_ERR_SYS, CHJ_ERR_NOMEM). The previous content of t is freed. */
int mount_table_read(struct mount_table *t, int fd);
/* Parses mountinfo text (tests). Returns 0, or -1 with t->err. */
int mount_table_parse(struct mount_table *t, const char *text, size_t len);
void mount_table_free(struct mount_table *t);

/* The mount path is on: the last-mounted entry whose mount point is path or
 * the deepest above it. NULL when none. */
const struct mount_entry *mount_table_of(const struct mount_table *t, const char *path);

/* Another place that shows the files under a root: a mount of the root's
 * file system (a bind mount) whose directory holds the root's or lies below
 * it. The file named from + REST is the root's to + REST. */
struct mount_alias {
	char *from;
	char *to;
};

/* Appends to *v (n entries, cap allocated) the places other than root
 * itself where t shows root's files: every mount of the file system of the
 * mount holding root whose directory overlaps root's; none for a root no
 * mount holds. A place that shows them under another directory of t's
 * namespace only: names are as this process sees them. Returns 0, or -1
 * out of memory (*v keeps what it had). */
int mount_table_aliases(const struct mount_table *t, const char *root, struct mount_alias **v,
    size_t *n, size_t *cap);
void mount_aliases_free(struct mount_alias *v, size_t n);

/* path (len bytes) under one of the n aliases, as the root's file: written
 * into buf (size bytes) and returned; NULL when under none (or too long).
 * The last-listed alias that holds path wins over the ones before it only
 * if its from is longer (the deepest place). */
const char *mount_alias_translate(const struct mount_alias *v, size_t n, const char *path,
    size_t len, char *buf, size_t size);

/* The state of the mounts that decide what is seen under root, one line per
 * mount ("POINT\tMAJOR:MINOR\tFSROOT\tFSTYPE"; POINT escaped as in
 * mountinfo): the mount holding root and every mount below it, sorted.
 * Returns an allocated string ("" when none), NULL on ENOMEM. */
char *mount_table_state(const struct mount_table *t, const char *root);

/* Compares two states of one root: calls fn with each path at or below root
 * whose mount changed (mounted, unmounted, replaced); a change of the mount
 * holding root itself gives root. A mount gone (in no place of after) whose
 * mount point's parent directory is gone too was last where nobody looked:
 * a directory above it was renamed or removed since before was read (the
 * kernel does not signal that), so where the files it covered are now is
 * unknown, and root is given for it. Returns the number of calls (fn's -1
 * stops and is returned). */
typedef int (*mount_change_fn)(void *ctx, const char *path);
int mount_state_diff(const char *root, const char *before, const char *after,
    mount_change_fn fn, void *ctx);

#endif
