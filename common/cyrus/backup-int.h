/* backup-int.h: what the two halves of the Cyrus backup share and nobody
 * else sees: the handle, and one user's run (backup-user.c), which the
 * users' loop (backup.c) calls. */
#ifndef CHJ_CYRUS_BACKUP_INT_H
#define CHJ_CYRUS_BACKUP_INT_H

#include "cyrus/backup.h"
#include "cyrus/cyrus.h"
#include "source.h"

struct cyrus_backup {
	struct source *src;             /* where everything is read */
	char *to;                       /* the archive directory */
	char *host;                     /* for the manifests; NULL: this machine */
	cyrus_backup_cb cb;
	void *ctx;
	struct cyrus_backup_stats stats;
	struct cyrus_mboxlist all;      /* every user's mailboxes, by user, when have_all */
	int have_all;
	struct chj_error err;
};

/* Tells ev (with the totals so far) to the caller, if it listens. */
static inline void
backup_tell(struct cyrus_backup *b, struct cyrus_backup_event *ev)
{
	ev->stats = &b->stats;
	if (b->cb != NULL)
		b->cb(b->ctx, ev);
}

/* Appends one run for user, whose mailboxes are ml, recording seq; *wrote
 * says whether a run was written (nothing new: none). Returns 0, or -1 with
 * e; the archive keeps its last complete run either way. */
int backup_user(struct cyrus_backup *b, const char *user, const struct cyrus_mboxlist *ml,
    int64_t seq, int *wrote, struct chj_error *e);

#endif
