/* changeset.h: turns a consumer's window of the journal into the exact set of
 * files to back up: changed rows checked against the file system, created or
 * moved-in directories expanded into the files below them, rescan records
 * resolved by walking only their subtree for entries whose ctime or mtime is
 * at or after the record's time. Sorted (bytewise), no duplicates.
 *
 * Deletions: `deleted` holds every path whose entry the journal saw go (gone
 * now, or replaced: a directory where a non-directory was or the other way
 * round, a directory exchanged or moved over the name and listed whole); a
 * consumer removes each with everything below it before adding the files.
 * What a rescan cannot know one by one are the entries that vanished:
 * `reconcile` holds the directories of the rescanned subtrees whose ctime or
 * mtime moved since the record's time, the only ones that can have lost an
 * entry. Together they keep this promise: every path that existed at the
 * last committed begin and is gone now is in `deleted` or below a path in
 * it, or its nearest existing ancestor is in `reconcile` (whose entries the
 * consumer makes match the file system, one level). */
#ifndef CHJ_CHANGESET_H
#define CHJ_CHANGESET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "walk.h"

struct config;
struct journal;

struct changeset {
	char **paths;          /* regular files and symlinks to back up */
	size_t npaths, cap_paths;
	char **deleted;        /* paths whose entry of the last committed run is gone */
	size_t ndeleted, cap_deleted;
	char **reconcile;      /* directories that may have lost entries not in deleted */
	size_t nreconcile, cap_reconcile;
	unsigned long rows;    /* journal rows read */
	unsigned long linked;  /* other names of multiply-linked files listed */
	unsigned long rescans; /* rescan records resolved */
	unsigned long errors;  /* unreadable directories met while expanding */
	struct chj_error err;  /* the first error */
};

/* Builds the changeset for rows after after_seq. Returns 0, or -1 with
 * cs->err (the journal's error, CHJ_ERR_NOMEM, or, with errors counted, the
 * first directory or entry that could not be read: then the set would be
 * incomplete and must not be used as complete). Hard links: a listed file
 * with more than one link brings its other names under the roots
 * (journal_links_names); the names of the multiply-linked files met are
 * noted in the journal, the gone ones forgotten (so it writes). */
int changeset_build(struct changeset *cs, struct journal *j, const struct config *cfg,
    int64_t after_seq);
void changeset_free(struct changeset *cs);

/* Calls fn for every entry under every root in bytewise path order (a full
 * run; flags are added to WALK_SORTED, e.g. WALK_STAT). Returns as
 * walk_tree(); res accumulates over the roots. */
int changeset_walk_full(const struct config *cfg, int flags, walk_fn fn, void *ctx,
    struct walk_result *res);

/* The names of multiply-linked files met by a walk (regular files with
 * st_nlink >= 2), to note in the journal (journal_links_update). */
enum link_use {
	LINK_SEEN,             /* only met: its name is noted */
	LINK_LISTED,           /* listed: its other names known are listed too */
	LINK_CHANGED,          /* its content or attributes changed through this
	                        * name: every other name under the roots is listed,
	                        * searched for when not all are known */
};
struct link_note {
	char *path;
	uint64_t dev, ino;
	nlink_t nlink;
	enum link_use use;
};
struct link_notes {
	struct link_note *v;
	size_t n, cap;
};
/* Adds path when st is a regular file with more than one link (else nothing).
 * Returns 0, or -1 on ENOMEM. */
int link_notes_add(struct link_notes *ln, const char *path, const struct stat *st,
    enum link_use use);
/* Notes them in the journal, forgetting the names of forget first (with
 * clear: every name first). Returns 0, or -1 (journal_error()). */
int link_notes_save(struct link_notes *ln, struct journal *j, char *const *forget, size_t nforget,
    int clear);
void link_notes_free(struct link_notes *ln);

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
 * journal_error(). */
int changeset_cover_missing_root(struct journal *j, const char *root, int64_t after_seq);

#endif
