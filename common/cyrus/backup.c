/* backup.c: the Cyrus backup's handle and its users (backup.h): which users
 * a window's changes belong to, every user of a full run, and the loop that
 * gives each user its run (backup-user.c), with the mailbox list read once
 * for all when there are many. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "changeset.h"
#include "config.h"
#include "cyrus/backup-int.h"

/* ---- the handle ---- */

/* Every place Cyrus keeps a user's state must be under a journal root, or
 * its changes could not be known. */
static int
check_roots(const struct cyrus_conf *cc, const struct config *cfg, struct chj_error *e)
{
	const char *dirs[2] = { cc->configdirectory, cc->sievedir };
	const char *what[2] = { "configdirectory", "sievedir" };
	size_t i;

	for (i = 0; i < cc->npartitions; i++) {
		if (config_root_of(cfg, cc->partitions[i].path) >= 0)
			continue;
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "partition '%s' ('%s') of %s is not under a "
		    "root of %s: its changes cannot be known", cc->partitions[i].name,
		    cc->partitions[i].path, cc->file, cfg->file);
	}
	for (i = 0; i < 2; i++) {
		if (dirs[i] == NULL || config_root_of(cfg, dirs[i]) >= 0)
			continue;
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "'%s' (%s of %s) is not under a root of %s: "
		    "its changes cannot be known", dirs[i], what[i], cc->file, cfg->file);
	}
	return 0;
}

int
cyrus_backup_open(struct cyrus_backup **out, const struct cyrus_backup_opts *opts,
    const struct config *cfg, struct chj_error *e)
{
	struct cyrus_backup *b = calloc(1, sizeof *b);

	*out = NULL;
	if (b == NULL || (b->to = strdup(opts->to)) == NULL) {
		free(b);
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	b->lock_timeout_ms = opts->lock_timeout_ms > 0 ? opts->lock_timeout_ms :
	    CYRUS_BACKUP_LOCK_TIMEOUT_MS;
	b->cb = opts->cb;
	b->ctx = opts->ctx;
	if (cyrus_conf_load(&b->cc, opts->imapd_conf) < 0) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "%s", b->cc.err);
		goto fail;
	}
	if (opts->toolsdir != NULL && (b->cc.toolsdir = strdup(opts->toolsdir)) == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto fail;
	}
	if (check_roots(&b->cc, cfg, e) < 0)
		goto fail;
	if (mkdir(b->to, 0700) < 0 && errno != EEXIST) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot create archive directory '%s'", b->to);
		goto fail;
	}
	*out = b;
	return 0;
fail:
	cyrus_backup_free(b);
	return -1;
}

void
cyrus_backup_free(struct cyrus_backup *b)
{
	if (b == NULL)
		return;
	if (b->have_all)
		cyrus_mboxlist_free(&b->all);
	cyrus_conf_free(&b->cc);
	free(b->to);
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
	if (cyrus_mboxlist_load(&b->all, &b->cc, NULL) < 0)
		return chj_error_set(&b->err, CHJ_ERR_SYS, 0, "%s", b->all.err);
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

/* ---- which users ---- */

int
cyrus_backup_all_users(struct cyrus_backup *b, struct strvec *s)
{
	char **users = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (load_all_mailboxes(b) < 0)
		return -1;
	if (cyrus_mboxlist_users(&b->all, &users, &n) < 0)
		return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
	for (i = 0; i < n; i++) {
		if (rc == 0 && strvec_add(s, users[i]) < 0)
			rc = chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
		free(users[i]);
	}
	free(users);
	return rc;
}

/* Adds the users of paths[0..n); tells the paths whose user is unknown. */
static int
users_of_paths(struct cyrus_backup *b, char *const *paths, size_t n, struct strvec *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *user = NULL, err[CYRUS_ERR_MAX];
		int r = cyrus_user_of_path(&b->cc, paths[i], &user, err, sizeof err);

		if (r < 0) {
			struct cyrus_backup_event ev;
			struct chj_error why;

			chj_error_set(&why, CHJ_ERR_SYS, 0, "%s", err);
			memset(&ev, 0, sizeof ev);
			ev.kind = CYRUS_BACKUP_PATH_SKIPPED;
			ev.path = paths[i];
			ev.error = &why;
			backup_tell(b, &ev);
			continue;
		}
		if (r == 1 && strvec_add(s, user) < 0) {
			free(user);
			return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		free(user);
	}
	return 0;
}

int
cyrus_backup_changed_users(struct cyrus_backup *b, const struct changeset *cs, struct strvec *s)
{
	if (users_of_paths(b, cs->paths, cs->npaths, s) < 0 ||
	    users_of_paths(b, cs->deleted, cs->ndeleted, s) < 0)
		return -1;
	return 0;
}

int
cyrus_backup_window_users(struct cyrus_backup *b, struct journal *j, const struct config *cfg,
    int64_t after_seq, struct strvec *s)
{
	struct changeset cs;
	int rc;

	if (changeset_build(&cs, j, cfg, after_seq) < 0) {
		chj_error_set(&b->err, CHJ_ERR_JOURNAL, 0, "the window's changes cannot be read "
		    "completely: %s", cs.errmsg);
		changeset_free(&cs);
		return -1;
	}
	rc = cyrus_backup_changed_users(b, &cs, s);
	changeset_free(&cs);
	return rc;
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
		if (cyrus_mboxlist_load(&ml, &b->cc, user) < 0)
			chj_error_set(&e, CHJ_ERR_SYS, 0, "%s", ml.err);
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
	for (i = 0; i < users->n; i++)
		backup_one(b, users->v[i], seq);
	return (int)(b->stats.users_failed - failed);
}
