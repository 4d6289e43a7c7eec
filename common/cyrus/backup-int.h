/* backup-int.h: what the two halves of the Cyrus backup share and nobody
 * else sees: the handle, and one user's run (backup-user.c), which the
 * users' loop (backup.c) calls. */
#ifndef CHJ_CYRUS_BACKUP_INT_H
#define CHJ_CYRUS_BACKUP_INT_H

#include "cyrus/backup.h"
#include "cyrus/cyrus.h"
#include "source.h"

struct arch;

/* A user's run sealed (arch_run_seal: all its data given, the member's tail
 * still being compressed) and not yet committed: a thread commits it while
 * the next user's run is read (backup-commit.c), so that both cores stay
 * busy across the end of one archive and the start of the next. */
struct backup_sealed {
	struct arch *ar;                /* NULL: none */
	char *archive;
	char *user;
};

struct cyrus_backup {
	struct source *src;             /* where everything is read */
	char *to;                       /* the archive directory */
	char *host;                     /* for the manifests; NULL: this machine */
	cyrus_backup_cb cb;
	void *ctx;
	struct cyrus_backup_stats stats;
	struct cyrus_mboxlist all;      /* every user's mailboxes, by user, when have_all */
	int have_all;
	/* the folder annotations (annotations.db) of this run's users' folders,
	 * read once per run; have_annots 0: not read (a source that cannot),
	 * and no folder record is compared or written; annots_all: of every
	 * folder (the state file can be written from them) */
	struct cyrus_annots annots;
	int have_annots, annots_all;
	char *annots_state;             /* CYRUS_ANNOTS_STATE's new text, once compared */
	size_t annots_state_len;
	struct backup_committer *committer; /* commits the sealed runs (backup-commit.c) */
	struct pdeflate_pool *pool;     /* every user's run deflated by its workers; NULL: each its own */
	struct chj_error err;
};

/* The file in the archive directory naming, for each folder that has
 * annotations, the SHA1 of its folder record and its owner ("UNIQUEID
 * SHA1 USER\n", USER as cyrus_user_file_name, "-" none): what the last
 * committed window saw in annotations.db, so that a window changing only
 * annotations.db (every user's) backs up only the users whose folders'
 * annotations changed. */
#define CYRUS_ANNOTS_STATE ".cyrus-annotations"

/* Tells ev (with the totals so far) to the caller, if it listens. */
static inline void
backup_tell(struct cyrus_backup *b, struct cyrus_backup_event *ev)
{
	ev->stats = &b->stats;
	if (b->cb != NULL)
		b->cb(b->ctx, ev);
}

/* Makes one run for user, whose mailboxes are ml, recording seq: sealed
 * into *sealed (its ar NULL when there was nothing new), to be committed by
 * backup_sealed_commit. Returns 0, or -1 with e; the archive keeps its last
 * complete run either way. */
int backup_user(struct cyrus_backup *b, const char *user, const struct cyrus_mboxlist *ml,
    int64_t seq, struct backup_sealed *sealed, struct chj_error *e);
/* Commits the sealed run s (fsync, sidecar) and closes its archive; s is
 * emptied either way. Returns 0 (also when s holds none), or -1 with e (the
 * run is dropped). Touches nothing but s: any thread may call it. */
int backup_sealed_commit(struct backup_sealed *s, struct chj_error *e);

/* Tells what became of user's run (rc, e; wrote: a run was committed): the
 * counts, the event. The main thread's. */
void backup_told(struct cyrus_backup *b, const char *user, int rc, int wrote, const struct chj_error *e);

/* backup-commit.c: the thread committing the users' sealed runs while the
 * main thread reads the next users; the users told in order. */
struct backup_committer;
/* Starts the thread (once). -1 when it cannot: the runs are then committed
 * on the caller's thread. */
int backup_committer_start(struct cyrus_backup *b);
/* User's outcome, in order: the sealed run s (taken; its ar NULL: none) to
 * commit, or rc and e (rc < 0: failed) to tell. Users whose commits ended
 * are told before it returns; waits while too many are in flight. */
void backup_committer_push(struct cyrus_backup *b, const char *user, int rc, struct backup_sealed *s,
    const struct chj_error *e);
/* Waits for every commit and tells every user pushed. */
void backup_committer_drain(struct cyrus_backup *b);
/* Drains, then ends the thread. */
void backup_committer_stop(struct cyrus_backup *b);

#endif
