/* consumer.h: a backup consumer's cursor, kept in a small file per consumer
 * in the consumers directory, beside (not inside) the journal: if the journal
 * database is lost and recreated, the cursor still names the old journal id,
 * so the next `begin` knows it must be a full run. Writes are crash-safe
 * (temporary file, fsync, rename, fsync of the directory). */
#ifndef CHJ_CONSUMER_H
#define CHJ_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#define CONSUMER_NAME_MAX 64

struct consumer_state {
	int has_committed;
	char committed_journal_id[33];
	int64_t committed_seq;      /* the window of the next run starts after this */
	int64_t committed_time;     /* unix time of the committed begin */
	int64_t commit_time;        /* unix time the commit was made */
	int has_open;
	char open_journal_id[33];
	int64_t open_seq;           /* the seq the open run's begin synced to */
	int64_t open_time;
	int open_full;              /* the open run lists everything */
	int64_t open_after_seq;     /* an incremental run lists rows after this */
};

struct consumers {
	char *dir;
	int lock_fd;
	char errmsg[1024];
};

/* Returns 1 when name is a valid consumer name: 1 to CONSUMER_NAME_MAX bytes
 * of [A-Za-z0-9._@+-], not starting with '.' or '-'. */
int consumer_name_valid(const char *name);

/* Prepares a handle on dir (created mode 0700 if create and missing). */
int consumers_open(struct consumers *cs, const char *dir, int create);
void consumers_close(struct consumers *cs);
/* Serializes agents working on cursors (flock on DIR/.lock). */
int consumers_lock(struct consumers *cs);
void consumers_unlock(struct consumers *cs);

/* Returns 0 and fills st, 1 when the consumer does not exist, -1 on error. */
int consumer_load(struct consumers *cs, const char *name, struct consumer_state *st);
int consumer_save(struct consumers *cs, const char *name, const struct consumer_state *st);
/* Returns 0, 1 when it did not exist, -1 on error. */
int consumer_remove(struct consumers *cs, const char *name);
/* Fills *names with an allocated, sorted array of allocated names. */
int consumer_list(struct consumers *cs, char ***names, size_t *n);
void consumer_list_free(char **names, size_t n);

/* The lowest seq any consumer's next window may start after, on journal_id:
 * committed seqs, and the begin seqs of open runs (a first, full run will
 * commit its begin point). Rows at or below it are in no window any more.
 * 0 when no consumer constrains: then nothing may be pruned. A missing
 * directory counts as no consumers. */
int consumers_prune_point(struct consumers *cs, const char *journal_id, int64_t *seq);

#endif
