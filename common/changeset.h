/* changeset.h: turns a consumer's window of the journal into the exact set of
 * files to back up: changed rows checked against the file system, created or
 * moved-in directories expanded into the files below them, rescan records
 * resolved by walking only their subtree for entries whose ctime or mtime is
 * at or after the record's time. Sorted (bytewise), no duplicates. */
#ifndef CHJ_CHANGESET_H
#define CHJ_CHANGESET_H

#include <stddef.h>
#include <stdint.h>

#include "walk.h"

struct config;
struct journal;

struct changeset {
	char **paths;          /* regular files and symlinks to back up */
	size_t npaths, cap_paths;
	char **deleted;        /* paths deleted in the window (no longer present) */
	size_t ndeleted, cap_deleted;
	unsigned long rows;    /* journal rows read */
	unsigned long rescans; /* rescan records resolved */
	unsigned long errors;  /* unreadable directories met while expanding */
	char errmsg[1024];     /* first error */
};

/* Builds the changeset for rows after after_seq. Returns 0, or -1 with
 * cs->errmsg (journal error, or a directory that could not be read: then the
 * set would be incomplete and must not be used as complete). */
int changeset_build(struct changeset *cs, struct journal *j, const struct config *cfg,
    int64_t after_seq);
void changeset_free(struct changeset *cs);

/* Calls fn for every entry under every root in bytewise path order (a full
 * run). Returns as walk_tree(); res accumulates over the roots. */
int changeset_walk_full(const struct config *cfg, walk_fn fn, void *ctx, struct walk_result *res);

/* Returns 1 when path, or a directory above it below its root, is excluded. */
int changeset_path_excluded(const struct config *cfg, const char *path);

/* Returns 0 when root i of cfg is there now, else the errno that says it is
 * missing: the one the configuration noted, or ENOENT/ENOTDIR from a look
 * now (it may have gone since). Other errors return 0: the walk reports
 * them, and the list is then incomplete. */
int changeset_root_missing(const struct config *cfg, size_t i);

/* A run that cannot see a missing root lists none of its changes, and its
 * commit moves past them: so that the first run after the root is back
 * lists all of it, records a rescan of the whole root (since time 0), after
 * every seq so far, unless the journal holds one after after_seq already
 * (a begin and its lists record one between them). Returns 0, or -1 with
 * journal_errmsg(). */
int changeset_cover_missing_root(struct journal *j, const char *root, int64_t after_seq);

#endif
