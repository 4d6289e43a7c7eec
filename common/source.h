/* source.h: where a backup reads from, the one seam between the backup's
 * logic and the transport. A source is this machine (source-local.c: the
 * journal through the agent's run functions, the files directly) or a
 * `chjournal serve` on another one reached through ssh (remote.c: the same
 * requests as framed messages). The Cyrus backup (cyrus/backup.h) and the
 * pulls of many hosts only ever call these operations, so what they do is
 * the same wherever the data is; serve (serve.c) answers the requests of a
 * remote source by calling a local one.
 *
 * Every operation returns 0, or -1 with s->err (error.h). CHJ_ERR_PEER means
 * the source is gone (a connection cut, a serve that died): s->broken is
 * then set and every later operation fails at once. Lines the source wants
 * shown (warnings of the run, a path passed over) go to s->note. */
#ifndef CHJ_SOURCE_H
#define CHJ_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "array.h"
#include "consumer.h"
#include "cyrus/cyrus.h"
#include "error.h"

struct config;
struct journal;

/* ---- what the operations exchange ---- */

enum source_kind { SOURCE_REG = 0, SOURCE_LNK = 1, SOURCE_OTHER = 2 };

struct source_stat {
	int err;                    /* 0: it is there; else the errno (ENOENT: gone) */
	int kind;                   /* enum source_kind */
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;              /* permission bits */
};

/* begin's flags */
#define SOURCE_BEGIN_REPLACE     0x1    /* take an open run over (begin --replace) */
#define SOURCE_BEGIN_CYRUS       0x2    /* and name the Cyrus users its window changed */
#define SOURCE_BEGIN_IDLE_COMMIT 0x4    /* with CYRUS: no user changed: commit at once */
#define SOURCE_BEGIN_SESSION     0x8    /* remote: aborted if the connection ends first */
#define SOURCE_BEGIN_FLAGS       0xf

/* A consumer's run, begun. */
struct source_run {
	char run_id[CONSUMER_RUN_ID_SIZE];
	char full_reason[256];      /* "": incremental */
	int64_t seq;                /* the journal seq its window ends at */
	int committed;              /* IDLE_COMMIT did it: nothing to back up */
	int cyrus_annots;           /* CYRUS: the window changed annotations.db, which
	                             * is every user's: the folder annotations are to
	                             * be compared (a remote source whose serve lacks
	                             * SOURCE_CAP_FOLDER_ANNOTS does not tell it) */
	struct strvec users;        /* CYRUS: sorted, unique */
};
void source_run_free(struct source_run *r);

enum source_list_what {
	SOURCE_LIST_FILES = 0,      /* `list` */
	SOURCE_LIST_DELETED,        /* `list --deleted` */
	SOURCE_LIST_RECONCILE,      /* `list --reconcile` */
	SOURCE_LIST_ENTRIES,        /* `list --reconcile --entries` */
	SOURCE_LIST_MAX
};

/* A Cyrus folder's meta files (cyrus_meta_names), read under the locks a
 * Cyrus reader takes: one consistent state. buf[i] NULL when file i is
 * absent (st[i].err ENOENT). */
struct source_meta {
	char *buf[CYRUS_NMETA];
	size_t len[CYRUS_NMETA];
	struct source_stat st[CYRUS_NMETA];
};
void source_meta_free(struct source_meta *m);

/* A file of the user's outside the spool (seen, sub, dav, sieve). */
struct source_user_file {
	char *path;                 /* absolute, on the source */
	char *rel;                  /* "conf/REL" below configdirectory, "sieve/REL" below sievedir */
	struct source_stat st;      /* lstat()'s */
	char *target;               /* a symlink's target; else NULL */
};
void source_user_files_free(struct source_user_file *v, size_t n);

/* A file as fetch delivers it: st.err != 0 when it could not be opened
 * (ENOENT: gone); else read() gives its st.size bytes, then 0. What the
 * callback does not read is skipped. */
struct source_file {
	size_t index;               /* of its path in the request */
	const char *path;
	struct source_stat st;
	/* -1 with e set: CHJ_ERR_SYS when the file could not be read (or ended
	 * early) where it is, the source's own error (CHJ_ERR_PEER: it is
	 * broken, CHJ_ERR_PROTOCOL) when the source failed */
	ssize_t (*read)(struct source_file *f, void *buf, size_t n, struct chj_error *e);
	void *impl;
};
/* 0 to go on; -1 to stop the fetch (the callback keeps its own error). */
typedef int (*source_fetch_cb)(void *ctx, struct source_file *f);

typedef void (*source_note_fn)(void *ctx, const char *line);

/* ---- the operations ---- */

struct source;
struct source_ops {
	/* the consumer's run: begin (and the Cyrus users, see the flags),
	 * commit or abort it, list its window (NUL-terminated paths to out) */
	int (*begin)(struct source *s, const char *consumer, int flags, struct source_run *run);
	int (*end)(struct source *s, const char *consumer, const char *run_id, int commit);
	int (*list)(struct source *s, const char *consumer, const char *run_id,
	    enum source_list_what what, FILE *out);
	/* Cyrus: the mailboxes of user (NULL: of every user), as
	 * cyrus_mboxlist_load gives them */
	int (*mailboxes)(struct source *s, const char *user, struct cyrus_mboxlist *l);
	/* pass one: the meta files of folders v[0..n) as they are now,
	 * st[i*CYRUS_NMETA + k] for file k of folder i (stat(), no lock) */
	int (*meta_stat)(struct source *s, const struct cyrus_mailbox *const *v, size_t n,
	    struct source_stat *st);
	/* pass two: a folder's meta files, read under Cyrus's reader locks */
	int (*meta_read)(struct source *s, const struct cyrus_mailbox *m, struct source_meta *meta);
	/* the user's files outside the spool that exist (ml: the user's mailboxes) */
	int (*user_files)(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
	    struct source_user_file **v, size_t *n);
	/* message and user files by path, in order, each handed to cb */
	int (*fetch)(struct source *s, const char *const *paths, size_t n, source_fetch_cb cb, void *ctx);
	void (*free)(struct source *s);
	/* Cyrus: the folder annotations of the folders ids[0..n) (sorted; NULL:
	 * of every folder) from annotations.db, read once under the lock a
	 * Cyrus reader takes (cyrus_annots_load). NULL: not available */
	int (*folder_annots)(struct source *s, const char *const *ids, size_t n,
	    struct cyrus_annots *out);
	/* what s can do of the optional operations, SOURCE_CAP_* (a remote
	 * source: what its serve said; the answer to HELLO is read first).
	 * NULL: every operation it has */
	unsigned (*caps)(struct source *s);
};

/* optional operations (source_ops.caps) */
#define SOURCE_CAP_FOLDER_ANNOTS 0x1    /* folder_annots */

struct source {
	const struct source_ops *ops;
	char name[256];             /* the host it reads ("" this machine) */
	int broken;                 /* gone: every operation fails */
	source_note_fn note;        /* NULL: notes are dropped */
	void *note_ctx;
	uint64_t bytes_in;          /* remote: bytes received so far */
	struct chj_error err;
};

/* The operations, checking s->broken first. */
int source_begin(struct source *s, const char *consumer, int flags, struct source_run *run);
int source_end(struct source *s, const char *consumer, const char *run_id, int commit);
int source_list(struct source *s, const char *consumer, const char *run_id,
    enum source_list_what what, FILE *out);
int source_mailboxes(struct source *s, const char *user, struct cyrus_mboxlist *l);
int source_meta_stat(struct source *s, const struct cyrus_mailbox *const *v, size_t n,
    struct source_stat *st);
int source_meta_read(struct source *s, const struct cyrus_mailbox *m, struct source_meta *meta);
int source_user_files(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **v, size_t *n);
int source_fetch(struct source *s, const char *const *paths, size_t n, source_fetch_cb cb, void *ctx);
/* 1 when s can read folder annotations (source_folder_annots); 0 when it
 * cannot (a serve too old for it: told once, to s->note) or is broken. */
int source_has_folder_annots(struct source *s);
int source_folder_annots(struct source *s, const char *const *ids, size_t n, struct cyrus_annots *out);
/* The files of the user's quota roots that exist (cyrus_user_quota_files),
 * as source_user_files gives files, from a local source; none (and 0) from
 * another (a pull: serve may not read configdirectory/quota). */
int source_quota_files(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **v, size_t *n);
void source_free(struct source *s);
/* Tells line (printf format) to s->note. */
void source_note(struct source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets s->err (and s->broken for CHJ_ERR_PEER); returns -1. */
int source_fail(struct source *s, const struct chj_error *e);

/* ---- this machine ---- */

/* The journal side of a local source, which the program provides (the
 * agent: sync with the daemon, the files open for writing, the cursor
 * files). Each returns 0 or -1 with e; warnings go to note(note_ctx, line). */
struct source_runner {
	int (*begin)(void *ctx, const char *consumer, int replace, struct consumer_state *st,
	    const char **full_reason, source_note_fn note, void *note_ctx, struct chj_error *e);
	int (*end)(void *ctx, const char *consumer, const char *run_id, int commit,
	    source_note_fn note, void *note_ctx, struct chj_error *e);
	int (*list)(void *ctx, const char *consumer, const char *run_id, enum source_list_what what,
	    FILE *out, source_note_fn note, void *note_ctx, struct chj_error *e);
	void *ctx;
};

struct source_local_opts {
	const struct config *cfg;   /* the roots */
	struct journal *journal;    /* the window's rows (CYRUS begin) */
	const struct source_runner *runner;  /* NULL: no run operations */
	const char *imapd_conf;     /* NULL: no Cyrus operations */
	const char *toolsdir;       /* Cyrus's programs (cyrus_conf.toolsdir); NULL: found */
	int lock_timeout_ms;        /* 0: 30000 */
};

/* Opens a source on this machine. With imapd_conf, checks that every place
 * Cyrus keeps a user's state (each partition, configdirectory, sievedir) is
 * under a root of cfg: a change elsewhere could not be known. Returns 0 and
 * *out (source_free), or -1 with e. */
int source_local_open(struct source **out, const struct source_local_opts *o, struct chj_error *e);
/* The users (sorted, unique) whose Cyrus state a local source's window
 * changed: every user owning a mailbox when full, else the owners of the
 * journal's changed and deleted paths after after_seq (a path that belongs
 * to nobody adds none; one whose owner cannot be read is told and passed
 * over). Returns 0 or -1 with s->err. */
int source_local_users(struct source *s, int full, int64_t after_seq, struct strvec *users);
/* Fills out from a stat() (err 0). */
struct stat;
void source_stat_from(struct source_stat *out, const struct stat *st);
/* The Cyrus configuration a local source read (NULL: none, or not local). */
const struct cyrus_conf *source_local_cyrus(const struct source *s);

#endif
