/* journal.h: the SQLite change journal shared by chjournald and chjournal.
 * This module owns every SQL statement; all parameters are bound. One row
 * per changed path (coalesced), each numbered by a monotonic sequence; rescan
 * records for subtrees whose changes may be unknown since a given time;
 * sync cookies the daemon has seen. Functions return 0 on success and -1 on
 * error with the detail in journal_error() (error.h: decide on its code). */
#ifndef CHJ_JOURNAL_H
#define CHJ_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define JOURNAL_SCHEMA_VERSION 1

/* Seconds taken off every "changes may be unknown since" time: file times
 * come from the kernel's coarse clock and are compared in whole seconds. */
#define JOURNAL_TIME_MARGIN 2

/* What happened to a path (a row keeps the union of what its events said). */
#define JF_CREATED  0x01u  /* created (also a new hard link) */
#define JF_MODIFIED 0x02u  /* content written */
#define JF_ATTRIB   0x04u  /* attributes changed */
#define JF_DELETED  0x08u  /* deleted or moved away */
#define JF_RENAMED  0x10u  /* got this name by a rename or a move-in */
#define JF_SUBTREE  0x20u  /* a directory created or moved in: everything below is new */
#define JF_DIR      0x40u  /* the path was a directory when the event came */
#define JF_MOVED_OUT 0x80u /* renamed away (with JF_DELETED): a directory took
                            * its entries along, none of them journaled */
/* Not an event: the daemon's flush that wrote the row lstat()ed the path and
 * found a regular file with one link, or a symbolic link, so `list` need not
 * lstat() it again. Each write of the row replaces it (never a union), and
 * it counts only within journal_plain_window(): rows of the daemon that
 * runs or ran last, which clears it in the same transaction where its probe
 * found otherwise. */
#define JF_PLAIN    0x100u
/* What a path shows was replaced (a file system mounted or unmounted on it):
 * its old entries are gone (--deleted: removed with what was below), its new
 * ones all count as new (listed whole). */
#define JF_REPLACED (JF_DELETED | JF_MOVED_OUT | JF_RENAMED | JF_SUBTREE | JF_DIR)

/* journal_open() flags */
#define JOURNAL_CREATE   0x1  /* create the database and schema if missing */
#define JOURNAL_READONLY 0x2
#define JOURNAL_WRITER   0x4  /* the journal's long-lived writer (chjournald):
                               * its WAL is checkpointed on a thread of the
                               * handle's own, never in a commit, and it keeps
                               * more pages in memory (see journal.c) */

struct journal;

/* Allocates an unopened handle (NULL only on ENOMEM). */
struct journal *journal_new(void);
/* The unix time to stamp rows with: CLOCK_REALTIME's second. time() reads
 * the clock as of the last tick and lags it by up to a tick at each second's
 * start: a change made at second S and journaled within that tick was
 * stamped S - 1, and `query --since S` left it out (t0301, once). */
int64_t journal_time_now(void);

/* Opens (and with JOURNAL_CREATE creates, mode 0600) the journal file. */
int journal_open(struct journal *j, const char *file, int flags);
/* With JOURNAL_WRITER: how many checkpoints its thread has made that copied
 * the whole WAL (then the next commit starts it over); 0 without. */
unsigned long journal_checkpoints(const struct journal *j);
/* Closes the database and frees the handle; NULL is ignored. */
void journal_free(struct journal *j);
const struct chj_error *journal_error(const struct journal *j);
const char *journal_errmsg(const struct journal *j);     /* journal_error()->msg */
/* The random id created with the database (hex), valid while open. */
const char *journal_id(const struct journal *j);
/* 1 if journal_open() created the database just now. */
int journal_was_created(const struct journal *j);

/* A write batch: one IMMEDIATE transaction. Rows committed past by every
 * consumer (seq <= prune_seq) are replaced rather than merged, and deleted at
 * commit; 0 disables both. */
int journal_batch_begin(struct journal *j, int64_t prune_seq);
int journal_batch_change(struct journal *j, const char *path, unsigned flags, int64_t now);
/* A rescan of the subtree at path for changes at or after since (unix time). */
int journal_batch_rescan(struct journal *j, const char *path, int64_t since,
    const char *reason, int64_t now);
int journal_batch_cookie(struct journal *j, const char *name, int64_t now);
int journal_batch_commit(struct journal *j);
/* The last seq handed out in the open batch (the journal's last before it
 * wrote anything). */
int64_t journal_batch_seq(const struct journal *j);
/* Takes JF_PLAIN off the row of path (written in this batch). */
int journal_batch_plain_clear(struct journal *j, const char *path);
/* Takes JF_PLAIN off every row below directory dir. */
int journal_batch_plain_clear_below(struct journal *j, const char *dir);
void journal_batch_rollback(struct journal *j);
/* Whether this connection's commits are synced to disk before they return
 * (the default, SQLite's synchronous=FULL) or only written (NORMAL: a power
 * loss may drop the last of them, never a part of one, and a later synced
 * commit by any connection makes them durable too: WAL frames are synced in
 * order). For the daemon's early flushes, which nothing reads as durable;
 * a sync cookie is refused in such a batch. Not inside a batch. */
int journal_set_synced(struct journal *j, int synced);

/* Metadata (daemon status, last flush time). Outside a batch each set is its
 * own transaction. get returns 0 when found, 1 when missing, -1 on error. */
int journal_meta_set_int(struct journal *j, const char *key, int64_t v);
int journal_meta_set_text(struct journal *j, const char *key, const char *v);
int journal_meta_get_int(struct journal *j, const char *key, int64_t *v);
/* *v is allocated (caller frees). */
int journal_meta_get_text(struct journal *j, const char *key, char **v);

/* The seqs whose JF_PLAIN a reader may trust: from the first flush of the
 * daemon running, or that ran last (meta plain_from), to its last flush
 * (plain_upto). A daemon that
 * does not keep the bit (an older one) moves neither, and the next daemon
 * to keep it starts a new window, so a bit another daemon left is never
 * taken. *from > *upto (nothing trusted) when there is none. 0, or -1 on
 * error. */
int journal_plain_window(struct journal *j, int64_t *from, int64_t *upto);

int journal_last_seq(struct journal *j, int64_t *seq);

typedef int (*journal_change_fn)(void *ctx, const char *path, int64_t seq,
    int64_t time, unsigned flags);
typedef int (*journal_rescan_fn)(void *ctx, const char *path, int64_t seq,
    int64_t time, int64_t since, const char *reason);
/* Calls fn for each row with seq > after_seq, in seq order; under (or NULL)
 * restricts to that subtree. fn returning non-zero stops the walk and is
 * returned. */
int journal_foreach_change(struct journal *j, int64_t after_seq, const char *under,
    journal_change_fn fn, void *ctx);
int journal_foreach_rescan(struct journal *j, int64_t after_seq, const char *under,
    journal_rescan_fn fn, void *ctx);
int journal_count_changes(struct journal *j, int64_t after_seq, int64_t *n);
int journal_count_rescans(struct journal *j, int64_t after_seq, int64_t *n);

/* Returns 1 and the seq at which the daemon journaled cookie name, 0 if not
 * yet, -1 on error. */
int journal_cookie_seq(struct journal *j, const char *name, int64_t *seq);
int journal_cookie_delete(struct journal *j, const char *name);

/* Hard links. The kernel reports a change through one name of a file under
 * that name only; the journal keeps the names under the roots of the files
 * with more than one link that `list` has met (changed rows, rescanned and
 * new subtrees, full runs), so that a change through one name lists the
 * others. Looked up by inode number alone: the caller checks each name it
 * gets back with lstat() against the changed file's device and inode
 * (device numbers can change across reboots, names go stale). */
struct journal_link {
	const char *path;
	uint64_t dev, ino;
};
typedef int (*journal_name_fn)(void *ctx, const char *path);
/* In one transaction: with clear, forgets every name first (a full run
 * learns them all again); forgets each path of forget and every name below
 * it (gone); notes each link of note (a path names one inode). */
int journal_links_update(struct journal *j, char *const *forget, size_t nforget,
    const struct journal_link *note, size_t nnote, int clear);
/* Notes one link inside the open batch (the daemon, as it flushes a written
 * file that has more than one link: so the name is known even if it goes
 * before a `list` sees it). */
int journal_batch_link(struct journal *j, const char *path, uint64_t dev, uint64_t ino);
/* Calls fn for every name noted (fn returning non-zero stops the walk and
 * is returned). Every change to the names bumps the meta key
 * links_generation. */
typedef int (*journal_link_fn)(void *ctx, const struct journal_link *l);
int journal_links_foreach(struct journal *j, journal_link_fn fn, void *ctx);
/* The inode noted for path: 1 with *dev and *ino, 0 when none, -1 on error. */
int journal_links_ino_of(struct journal *j, const char *path, uint64_t *dev, uint64_t *ino);
/* Calls fn for each name noted for inode ino (fn returning non-zero stops
 * the walk and is returned). A journal without the table has no names. */
int journal_links_names(struct journal *j, uint64_t ino, journal_name_fn fn, void *ctx);
/* A file whose names under the roots were searched for by a walk (not all
 * were known): its link count then, so that the walk is not made again
 * while the count is the same (the other names are outside the roots).
 * hunted returns 1 with *nlink, 0 when never searched, -1 on error. */
int journal_links_hunted(struct journal *j, uint64_t dev, uint64_t ino, int64_t *nlink);
int journal_links_mark_hunted(struct journal *j, uint64_t dev, uint64_t ino, int64_t nlink);
/* The number of names noted (for status and tests). */
int journal_links_count(struct journal *j, int64_t *n);

/* Writes the formatted flags ("created,modified") into buf. */
char *journal_flags_str(unsigned flags, char *buf, size_t size);

/* The query plan SQLite picks for the window query (for tests). */
int journal_window_plan(struct journal *j, char *buf, size_t size);

#endif
