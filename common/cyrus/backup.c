/* backup.c: the Cyrus backup's handle (backup.h), the loop that gives each
 * user its run (backup-user.c), with the mailbox list read once for all
 * when there are many, and a consumer's whole run on a source: begin, the
 * users, commit or abort. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "cyrus/backup-int.h"

/* ---- the handle ---- */

int
cyrus_backup_open(struct cyrus_backup **out, const struct cyrus_backup_opts *opts,
    struct chj_error *e)
{
	struct cyrus_backup *b = calloc(1, sizeof *b);

	*out = NULL;
	if (b == NULL || (b->to = strdup(opts->to)) == NULL ||
	    (opts->host != NULL && (b->host = strdup(opts->host)) == NULL)) {
		if (b != NULL)
			free(b->to);
		free(b);
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	b->src = opts->source;
	b->cb = opts->cb;
	b->ctx = opts->ctx;
	if (mkdir(b->to, 0700) < 0 && errno != EEXIST) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot create archive directory '%s'", b->to);
		cyrus_backup_free(b);
		return -1;
	}
	*out = b;
	return 0;
}

void
cyrus_backup_free(struct cyrus_backup *b)
{
	if (b == NULL)
		return;
	if (b->have_all)
		cyrus_mboxlist_free(&b->all);
	free(b->to);
	free(b->host);
	free(b);
}

const struct chj_error *
cyrus_backup_error(const struct cyrus_backup *b)
{
	return &b->err;
}

const struct cyrus_backup_stats *
cyrus_backup_stats(const struct cyrus_backup *b)
{
	return &b->stats;
}

/* ---- the mailbox list ---- */

static int
mailbox_by_user(const void *x, const void *y)
{
	const struct cyrus_mailbox *m = x, *n = y;
	int c = strcmp(m->user ? m->user : "", n->user ? n->user : "");

	return c != 0 ? c : strcmp(m->name, n->name);
}

/* Reads every user's mailboxes once, grouped by user (see mailboxes_of). */
static int
load_all_mailboxes(struct cyrus_backup *b)
{
	if (b->have_all)
		return 0;
	if (source_mailboxes(b->src, NULL, &b->all) < 0) {
		cyrus_mboxlist_free(&b->all);
		b->err = b->src->err;
		return -1;
	}
	array_sort(b->all.v, b->all.n, sizeof *b->all.v, mailbox_by_user);
	b->have_all = 1;
	return 0;
}

/* Points view at user's mailboxes in the list read once (not to be freed). */
static void
mailboxes_of(const struct cyrus_backup *b, const char *user, struct cyrus_mboxlist *view)
{
	size_t lo = 0, hi = b->all.n, end;

	while (lo < hi) {       /* the first mailbox whose user is >= user */
		size_t mid = lo + (hi - lo) / 2;
		const char *u = b->all.v[mid].user ? b->all.v[mid].user : "";

		if (strcmp(u, user) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < b->all.n && b->all.v[end].user != NULL &&
	    strcmp(b->all.v[end].user, user) == 0; end++)
		;
	memset(view, 0, sizeof *view);
	view->v = b->all.v + lo;
	view->n = end - lo;
}

/* ---- the runs ---- */

/* One user: its mailboxes, its run, what to tell. */
static void
backup_one(struct cyrus_backup *b, const char *user, int64_t seq)
{
	struct cyrus_backup_event ev;
	struct cyrus_mboxlist ml;
	struct chj_error e;
	int wrote = 0, rc = -1;

	memset(&ml, 0, sizeof ml);
	b->stats.users++;
	if (b->have_all) {
		mailboxes_of(b, user, &ml);
		rc = backup_user(b, user, &ml, seq, &wrote, &e);
	} else {
		if (source_mailboxes(b->src, user, &ml) < 0)
			e = b->src->err;
		else
			rc = backup_user(b, user, &ml, seq, &wrote, &e);
		cyrus_mboxlist_free(&ml);
	}
	b->stats.runs += (unsigned long)wrote;
	memset(&ev, 0, sizeof ev);
	ev.user = user;
	if (rc < 0) {
		b->stats.users_failed++;
		ev.kind = CYRUS_BACKUP_USER_FAILED;
		ev.error = &e;
	} else {
		ev.kind = CYRUS_BACKUP_USER_DONE;
		ev.wrote_run = wrote;
	}
	backup_tell(b, &ev);
}

int
cyrus_backup_users(struct cyrus_backup *b, const struct strvec *users, int64_t seq)
{
	unsigned long failed = b->stats.users_failed;
	size_t i;

	if (users->n >= CYRUS_BACKUP_BULK_USERS && load_all_mailboxes(b) < 0)
		return -1;
	for (i = 0; i < users->n; i++) {
		backup_one(b, users->v[i], seq);
		/* a source gone fails every user after: one error, not one per user */
		if (b->src->broken) {
			b->err = b->src->err;
			return -1;
		}
	}
	return (int)(b->stats.users_failed - failed);
}

int
cyrus_backup_window(struct cyrus_backup *b, const char *consumer, int flags,
    struct cyrus_backup_result *res)
{
	struct source_run run;
	int failed, rc = -1;

	memset(res, 0, sizeof *res);
	if (source_begin(b->src, consumer, flags | SOURCE_BEGIN_REPLACE | SOURCE_BEGIN_CYRUS, &run) < 0) {
		b->err = b->src->err;
		source_run_free(&run);
		return -1;
	}
	snprintf(res->run_id, sizeof res->run_id, "%s", run.run_id);
	snprintf(res->full_reason, sizeof res->full_reason, "%s", run.full_reason);
	res->users = run.users.n;
	{
		struct cyrus_backup_event ev;

		memset(&ev, 0, sizeof ev);
		ev.kind = CYRUS_BACKUP_BEGUN;
		ev.users = run.users.n;
		backup_tell(b, &ev);
	}
	if (run.committed) {
		res->idle = res->committed = 1;
		source_run_free(&run);
		return 0;
	}
	failed = cyrus_backup_users(b, &run.users, run.seq);
	res->failed_users = failed;
	if (failed == 0) {
		/* every archive was fsynced by its run's commit: now the window may move */
		if (source_end(b->src, consumer, run.run_id, 1) < 0) {
			b->err = b->src->err;
		} else {
			res->committed = 1;
			rc = 0;
		}
		goto out;
	}
	if (failed > 0)
		chj_error_set(&b->err, CHJ_ERR_REFUSED, 0, "%d of %zu users failed", failed, run.users.n);
	/* not committed: the next run takes the same window again; a source
	 * gone cannot be told, and its next begin takes the run over */
	if (!b->src->broken) {
		struct chj_error keep = b->err;

		source_end(b->src, consumer, run.run_id, 0);
		b->err = keep;
	}
out:
	source_run_free(&run);
	return rc;
}
