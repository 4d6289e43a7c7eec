/* consumer.h: a backup consumer's cursor, kept in a small file per consumer
 * in the consumers directory, beside (not inside) the journal: if the journal
 * database is lost and recreated, the cursor still names the old journal id,
 * so the next `begin` knows it must be a full run. Writes are crash-safe
 * (temporary file, fsync, rename, fsync of the directory). */
#ifndef CHJ_CONSUMER_H
#define CHJ_CONSUMER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define CONSUMER_NAME_MAX 64
#define CONSUMER_RUN_ID_SIZE 17     /* 16 hex digits and a NUL */
#define CONSUMER_LEGACY_RUN_ID "legacy"

struct consumer_state {
	int has_committed;
	char committed_journal_id[33];
	int64_t committed_seq;      /* the window of the next run starts after this */
	int64_t committed_time;     /* unix time of the committed begin */
	int64_t commit_time;        /* unix time the commit was made */
	int has_open;
	char open_run_id[CONSUMER_RUN_ID_SIZE];  /* "" for a run begun before run ids */
	char open_journal_id[33];
	int64_t open_seq;           /* the seq the open run's begin synced to */
	int64_t open_time;
	int open_full;              /* the open run lists everything */
	int64_t open_after_seq;     /* an incremental run lists rows after this */
	/* The point a commit of the open run records: its own begin, or, when
	 * it took over a run (begin --replace), that run's commit point (see
	 * consumer-run.c). Empty floor_journal_id: the open run's own begin. */
	char floor_journal_id[33];
	int64_t floor_seq;
	int64_t floor_time;
	/* The cursor file's identity: drawn when the file is made (16 hex
	 * digits; "" in a file of an older chjournal), and counted up by each
	 * durable write. An open run saved beside it (consumer_save_begun)
	 * counts only while both still match. */
	char cursor_id[17];
	int64_t generation;
};

struct consumers {
	char *dir;
	int lock_fd;
	mode_t file_mode;        /* of the cursors and the lock file: 0600, or 0640 */
	gid_t gid;               /* their group, (gid_t)-1: the creator's */
	struct chj_error err;    /* why the last call failed */
};

/* Returns 1 when name is a valid consumer name: 1 to CONSUMER_NAME_MAX bytes
 * of [A-Za-z0-9._@+-], not starting with '.' or '-'. */
int consumer_name_valid(const char *name);

/* Prepares a handle on dir (created mode 0700 if create and missing). */
int consumers_open(struct consumers *cs, const char *dir, int create);
void consumers_close(struct consumers *cs);
/* The configuration key `group` (stateperm.h): the cursors and lock file
 * written from now on become readable by group gid, and with fix_dir the
 * directory too (a reader leaves it alone). Returns 0 or -1 (cs->err). */
int consumers_set_group(struct consumers *cs, gid_t gid, int fix_dir);
/* Serializes agents working on cursors (flock on DIR/.lock). */
int consumers_lock(struct consumers *cs);
void consumers_unlock(struct consumers *cs);

/* Returns 0 and fills st, 1 when the consumer does not exist, -1 on error. */
int consumer_load(struct consumers *cs, const char *name, struct consumer_state *st);
/* Replaces the cursor durably (atomicfile.h), as the next generation of
 * the file (st's generation and cursor_id are updated to what was written),
 * and removes an open run saved beside it. Returns 0 or -1 (cs->err). */
int consumer_save(struct consumers *cs, const char *name, struct consumer_state *st);
/* The same for a run just opened (begin), not made durable: the state goes
 * into a file beside the cursor (".NAME.run", replaced atomically, not
 * synced; the cursor itself is not written), which consumer_load() takes
 * while its cursor_id and generation are the cursor's. A crash may lose it
 * or leave it torn: the run is then not open, and the next begin's window
 * starts at the same commit point, so no change is lost. A cursor that does
 * not exist yet, or was written by an older chjournal, is written instead,
 * its content synced (not its directory). */
int consumer_save_begun(struct consumers *cs, const char *name, struct consumer_state *st);
/* Returns 0, 1 when it did not exist, -1 on error. */
int consumer_remove(struct consumers *cs, const char *name);
/* Fills *names with an allocated, sorted array of allocated names. */
int consumer_list(struct consumers *cs, char ***names, size_t *n);
void consumer_list_free(char **names, size_t n);

/* The point a commit of st's open run records: the floor when it has one,
 * else the run's own begin (journal id, seq, time; time may be NULL). The
 * journal id points into st. */
void consumer_commit_point(const struct consumer_state *st, const char **journal_id,
    int64_t *seq, int64_t *time);

/* The lowest seq any consumer's next window may start after, on journal_id:
 * committed seqs, and the commit points of open runs (a first, full run will
 * commit its begin point). Rows at or below it are in no window any more.
 * 0 when no consumer constrains: then nothing may be pruned. A missing
 * directory counts as no consumers. */
int consumers_prune_point(struct consumers *cs, const char *journal_id, int64_t *seq);

/* ---- runs: begin, commit, abort (consumer-run.c) ----
 * The run protocol on a cursor. The functions on a state (consumer_state_*)
 * only decide; those on a consumer (consumer_begin/commit/abort) load its
 * cursor, decide and save it, and must be called with consumers_lock()
 * held. Both return one of the codes below, or -1 on an error (in cs->err:
 * CHJ_ERR_CORRUPT for a damaged cursor, ...); st holds the state after the call, or as found when
 * refused. */
enum consumer_run_code {
	CONSUMER_RUN_OK = 0,
	CONSUMER_RUN_NO_CONSUMER,   /* no cursor by that name */
	CONSUMER_RUN_NONE,          /* no open run */
	CONSUMER_RUN_BUSY,          /* begin: a run is open (and replace was not asked) */
	CONSUMER_RUN_OTHER,         /* the run named is not the open run */
	CONSUMER_RUN_JOURNAL,       /* the open run was begun on another journal */
};

struct consumer_begin {
	/* in */
	const char *journal_id;     /* the journal the run is begun on */
	int64_t last_seq;           /* its last seq, after the sync */
	int64_t now;
	int replace;                /* take an open run over instead of refusing */
	/* out */
	const char *full_reason;    /* NULL: incremental; else why the run is full (static) */
	int replaced;               /* an open run was taken over: */
	char replaced_run_id[CONSUMER_RUN_ID_SIZE];   /* its id, */
	int64_t replaced_time;                        /* when it began */
};

/* The id of st's open run: open_run_id, or CONSUMER_LEGACY_RUN_ID for a run
 * begun by a chjournal without run ids. Points into st. */
const char *consumer_run_id(const struct consumer_state *st);

/* Is there an open run, the one named run_id (NULL: whichever is open), begun
 * on journal_id (NULL: on any journal)? CONSUMER_RUN_OK, CONSUMER_RUN_NONE,
 * CONSUMER_RUN_OTHER or CONSUMER_RUN_JOURNAL (checked in that order). */
int consumer_run_check(const struct consumer_state *st, const char *run_id, const char *journal_id);

/* NULL when a run begun now on journal_id (whose last seq is last_seq) is
 * incremental, else why it must be full (a static string). */
const char *consumer_full_reason(const struct consumer_state *st, const char *journal_id,
    int64_t last_seq);

/* Opens a run with id run_id on st: CONSUMER_RUN_OK, or CONSUMER_RUN_BUSY
 * when a run is open and b->replace is not set. Fills b's outputs. */
int consumer_state_begin(struct consumer_state *st, struct consumer_begin *b, const char *run_id);
/* Commits the open run (run_id NULL: whichever is open): the cursor moves to
 * its commit point. OK, NONE, OTHER or JOURNAL (journal_id: the journal now). */
int consumer_state_commit(struct consumer_state *st, const char *run_id, const char *journal_id,
    int64_t now);
/* Drops the open run (run_id NULL: whichever is open). OK, NONE or OTHER. */
int consumer_state_abort(struct consumer_state *st, const char *run_id);

/* The same on consumer name's cursor; consumer_begin creates the cursor and
 * draws a random run id. CONSUMER_RUN_NO_CONSUMER from commit and abort when
 * there is no such consumer. */
int consumer_begin(struct consumers *cs, const char *name, struct consumer_begin *b,
    struct consumer_state *st);
int consumer_commit(struct consumers *cs, const char *name, const char *run_id,
    const char *journal_id, int64_t now, struct consumer_state *st);
int consumer_abort(struct consumers *cs, const char *name, const char *run_id,
    struct consumer_state *st);

#endif
