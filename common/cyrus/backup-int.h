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
 * still being compressed) and not yet committed: the users' loop commits it
 * after the next user's run is read, so that both cores stay busy across
 * the end of one archive and the start of the next. */
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
	struct backup_sealed sealed;    /* the last user's run, not yet committed */
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
 * emptied either way. Returns 0, or -1 with e (the run is dropped). */
int backup_sealed_commit(struct backup_sealed *s, struct chj_error *e);

#endif
