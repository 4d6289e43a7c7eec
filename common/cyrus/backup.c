/* backup.c: the Cyrus backup's handle (backup.h), the loop that gives each
 * user its run (backup-user.c), with the mailbox list read once for all
 * when there are many, and a consumer's whole run on a source: begin, the
 * users, commit or abort. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive/archive.h"
#include "array.h"
#include "atomicfile.h"
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
	backup_committer_stop(b);       /* stopped by the users' loop already */
	arch_deflate_pool_free(b->pool); /* after every commit */
	if (b->have_all)
		cyrus_mboxlist_free(&b->all);
	cyrus_annots_free(&b->annots);
	free(b->annots_state);
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

/* ---- folder annotations ---- */

static int
str_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Reads, once for the run, the folder annotations of the folders of mls[0
 * .. nml) (the run's users' mailboxes; mls NULL: of every folder). A
 * source that cannot read them leaves have_annots 0. 0, or -1 with b's
 * error. */
static int
load_annots(struct cyrus_backup *b, const struct cyrus_mboxlist *mls, size_t nml)
{
	const char **ids = NULL;
	size_t total = 0, n = 0, i, k;
	int rc;

	if (b->have_annots || !source_has_folder_annots(b->src))
		return 0;
	if (mls != NULL) {
		for (i = 0; i < nml; i++)
			total += mls[i].n;
		if ((ids = calloc(total + 1, sizeof *ids)) == NULL)
			return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
		for (i = 0; i < nml; i++)
			for (k = 0; k < mls[i].n; k++)
				if (mls[i].v[k].uniqueid != NULL)
					ids[n++] = mls[i].v[k].uniqueid;
		qsort(ids, n, sizeof *ids, str_cmp);
	}
	rc = source_folder_annots(b->src, ids, n, &b->annots);
	free(ids);
	if (rc < 0) {
		b->err = b->src->err;
		cyrus_annots_free(&b->annots);
		return -1;
	}
	b->have_annots = 1;
	b->annots_all = mls == NULL;
	return 0;
}

/* One line of CYRUS_ANNOTS_STATE: a folder's annotations' digest and owner
 * ("" none known). */
struct astate {
	char *id;
	char sha1[41];
	char *owner;
};

static void
astates_free(struct astate *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].id);
		free(v[i].owner);
	}
	free(v);
}

static int
astate_cmp(const void *x, const void *y)
{
	return strcmp(((const struct astate *)x)->id, ((const struct astate *)y)->id);
}

/* Reads the state file (none: nothing known). 0, or -1 with b's error. */
static int
astates_read(struct cyrus_backup *b, struct astate **out, size_t *nout)
{
	char *path = NULL, *line = NULL;
	struct astate *v = NULL, *nv;
	size_t n = 0, cap = 0, lcap = 0;
	ssize_t k;
	FILE *f;

	*out = NULL;
	*nout = 0;
	if (asprintf(&path, "%s/%s", b->to, CYRUS_ANNOTS_STATE) < 0)
		return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
	f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;

		free(path);
		return e == ENOENT ? 0 : chj_error_set(&b->err, CHJ_ERR_SYS, e, "cannot read '%s/%s'",
		    b->to, CYRUS_ANNOTS_STATE);
	}
	while ((k = getline(&line, &lcap, f)) > 0) {
		char *t1, *t2, *id, *owner = NULL;

		if (line[k - 1] == '\n')
			line[--k] = '\0';
		if ((t1 = strchr(line, '\t')) == NULL || (t2 = strchr(t1 + 1, '\t')) == NULL ||
		    t2 - t1 - 1 != 40)
			continue;               /* not ours: that folder is compared again */
		*t1 = *t2 = '\0';
		if ((id = cyrus_user_from_file_name(line)) == NULL)
			continue;
		if (t2[1] != '\0' && (owner = cyrus_user_from_file_name(t2 + 1)) == NULL) {
			free(id);
			continue;
		}
		if ((nv = array_grow(v, n, &cap, sizeof *v, 64)) == NULL) {
			free(id);
			free(owner);
			goto oom;
		}
		v = nv;
		v[n].id = id;
		v[n].owner = owner;
		memcpy(v[n].sha1, t1 + 1, 41);
		n++;
	}
	fclose(f);
	free(line);
	free(path);
	if (n > 1)
		qsort(v, n, sizeof *v, astate_cmp);
	*out = v;
	*nout = n;
	return 0;
oom:
	fclose(f);
	free(line);
	free(path);
	astates_free(v, n);
	return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
}

static const struct astate *
astate_find(const struct astate *v, size_t n, const char *id)
{
	struct astate key;

	key.id = (char *)id;
	return bsearch(&key, v, n, sizeof *v, astate_cmp);
}

static int
mailbox_ptr_by_id(const void *x, const void *y)
{
	const struct cyrus_mailbox *m = *(const struct cyrus_mailbox *const *)x;
	const struct cyrus_mailbox *n = *(const struct cyrus_mailbox *const *)y;

	return strcmp(m->uniqueid ? m->uniqueid : "", n->uniqueid ? n->uniqueid : "");
}

/* The owner of folder id in the mailbox list read once (by is b->all's
 * mailboxes sorted by uniqueid), or NULL. */
static const char *
owner_of_id(struct cyrus_mailbox *const *by, size_t n, const char *id)
{
	struct cyrus_mailbox key, *kp = &key;
	struct cyrus_mailbox *const *m;

	memset(&key, 0, sizeof key);
	key.uniqueid = (char *)id;
	m = bsearch(&kp, by, n, sizeof *by, mailbox_ptr_by_id);
	return m != NULL ? (*m)->user : NULL;
}

/* What annots_window works with: the state of the last run, the folders
 * by uniqueid once the list had to be read, the ids whose owner is not
 * known yet, and (pass 1) the new state being written. */
struct awindow {
	struct cyrus_backup *b;
	struct strvec *users;
	struct astate *old;
	size_t nold;
	struct cyrus_mailbox **by;
	size_t nby;
	struct strvec changed;
	FILE *out;
};

/* The hex SHA1 of the folder record of annotations v[0..n). */
static int
annots_digest(struct cyrus_backup *b, const struct cyrus_annot *v, size_t n, char hex[41])
{
	unsigned char digest[20];
	char *rec = NULL;
	size_t rlen;
	int ok;

	if (cyrus_folder_record(NULL, v, n, &rec, &rlen) < 0)
		return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
	ok = EVP_Digest(rec, rlen, digest, NULL, EVP_sha1(), NULL) == 1;
	free(rec);
	if (!ok)
		return chj_error_set(&b->err, CHJ_ERR_SYS, 0, "sha1 failed");
	cyrus_guid_hex(digest, hex);
	return 0;
}

/* The owner of folder id: from the last state, else from the list. */
static const char *
awindow_owner(const struct awindow *w, const struct astate *st, const char *id)
{
	if (st != NULL && st->owner != NULL)
		return st->owner;
	return w->by != NULL ? owner_of_id(w->by, w->nby, id) : NULL;
}

/* One folder with annotations (ids from i, n of them) in a pass: pass 0
 * notes a changed folder whose owner is unknown; pass 1 adds the owner of
 * a changed folder and writes the folder's line of the new state. */
static int
awindow_folder(struct awindow *w, int pass, size_t i, size_t n)
{
	struct cyrus_backup *b = w->b;
	const char *id = b->annots.v[i].mboxid, *owner;
	const struct astate *st = astate_find(w->old, w->nold, id);
	char hex[41], *eid, *eowner = NULL;

	if (annots_digest(b, b->annots.v + i, n, hex) < 0)
		return -1;
	owner = awindow_owner(w, st, id);
	if (st == NULL || strcmp(st->sha1, hex) != 0) {
		if (pass == 0 && owner == NULL && strvec_add(&w->changed, id) < 0)
			goto oom;
		if (pass == 1 && owner != NULL && strvec_add(w->users, owner) < 0)
			goto oom;
	}
	if (pass == 1) {
		if ((eid = cyrus_user_file_name(id)) == NULL ||
		    (owner != NULL && (eowner = cyrus_user_file_name(owner)) == NULL)) {
			free(eid);
			goto oom;
		}
		fprintf(w->out, "%s\t%s\t%s\n", eid, hex, eowner ? eowner : "");
		free(eid);
		free(eowner);
	}
	return 0;
oom:
	return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
}

/* The folders of the last state whose annotations were all removed: as a
 * changed folder in awindow_folder. */
static int
awindow_removed(struct awindow *w, int pass)
{
	size_t i, first;

	for (i = 0; i < w->nold; i++) {
		const char *owner;

		if (cyrus_annots_of(&w->b->annots, w->old[i].id, &first) > 0)
			continue;
		if (pass == 0 && w->old[i].owner == NULL && strvec_add(&w->changed, w->old[i].id) < 0)
			return chj_error_set(&w->b->err, CHJ_ERR_NOMEM, 0, "out of memory");
		owner = awindow_owner(w, &w->old[i], w->old[i].id);
		if (pass == 1 && owner != NULL && strvec_add(w->users, owner) < 0)
			return chj_error_set(&w->b->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	return 0;
}

/* Every folder of the mailbox list, by uniqueid (for the owners of
 * changed folders the last state does not name). */
static int
awindow_index(struct awindow *w)
{
	struct cyrus_backup *b = w->b;

	if (load_all_mailboxes(b) < 0)
		return -1;
	if ((w->by = calloc(b->all.n + 1, sizeof *w->by)) == NULL)
		return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
	for (w->nby = 0; w->nby < b->all.n; w->nby++)
		w->by[w->nby] = &b->all.v[w->nby];
	qsort(w->by, w->nby, sizeof *w->by, mailbox_ptr_by_id);
	return 0;
}

/* A window that changed annotations.db (every user's): every folder's
 * annotations read once, each folder's digest compared with the state
 * file's, and the owners of those that differ added to users (the mailbox
 * list is read, once, only for a folder the state file does not know).
 * The new state is kept for annots_state_write. 0, or -1 with b's error. */
static int
annots_window(struct cyrus_backup *b, struct strvec *users)
{
	struct awindow w;
	char *buf = NULL;
	size_t len = 0, i, j, n;
	int rc = -1, pass;

	memset(&w, 0, sizeof w);
	w.b = b;
	w.users = users;
	cyrus_annots_free(&b->annots);
	b->have_annots = 0;
	if (load_annots(b, NULL, 0) < 0 || astates_read(b, &w.old, &w.nold) < 0)
		goto out;
	/* pass 0: find the changes; pass 1 (with the list when one was
	 * unknown): add their owners and write the new state */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1 && (w.out = open_memstream(&buf, &len)) == NULL) {
			chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		for (i = 0; i < b->annots.n; i = j + n) {
			n = cyrus_annots_of(&b->annots, b->annots.v[i].mboxid, &j);
			if (awindow_folder(&w, pass, i, n) < 0)
				goto out;
		}
		if (awindow_removed(&w, pass) < 0)
			goto out;
		if (pass == 0 && w.changed.n > 0 && awindow_index(&w) < 0)
			goto out;
	}
	if (fclose(w.out) != 0) {
		w.out = NULL;
		chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	w.out = NULL;
	free(b->annots_state);
	b->annots_state = buf;
	b->annots_state_len = len;
	buf = NULL;
	strvec_sort_unique(users);
	rc = 0;
out:
	if (w.out != NULL)
		fclose(w.out);
	free(buf);
	free(w.by);
	strvec_free(&w.changed);
	astates_free(w.old, w.nold);
	return rc;
}

/* Writes the state annots_window kept (once every user's run is in). */
static int
annots_state_write(struct cyrus_backup *b)
{
	char *path = NULL;
	struct chj_error e;
	int rc;

	if (b->annots_state == NULL)
		return 0;
	if (asprintf(&path, "%s/%s", b->to, CYRUS_ANNOTS_STATE) < 0)
		return chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
	rc = atomicfile_write(path, b->annots_state, b->annots_state_len, 0600, &e);
	free(path);
	if (rc < 0)
		b->err = e;
	return rc;
}

/* ---- the runs ---- */

void
backup_told(struct cyrus_backup *b, const char *user, int rc, int wrote, const struct chj_error *e)
{
	struct cyrus_backup_event ev;

	b->stats.runs += (unsigned long)wrote;
	memset(&ev, 0, sizeof ev);
	ev.user = user;
	if (rc < 0) {
		b->stats.users_failed++;
		ev.kind = CYRUS_BACKUP_USER_FAILED;
		ev.error = e;
	} else {
		ev.kind = CYRUS_BACKUP_USER_DONE;
		ev.wrote_run = wrote;
	}
	backup_tell(b, &ev);
}

/* One user: its mailboxes (pre: read already, or pre_err: could not be),
 * its run sealed and handed to the committer, which tells it in turn. */
static void
backup_one(struct cyrus_backup *b, const char *user, int64_t seq, struct cyrus_mboxlist *pre,
    const struct chj_error *pre_err)
{
	struct backup_sealed sealed;
	struct cyrus_mboxlist ml;
	struct chj_error e;
	int rc = -1;

	memset(&ml, 0, sizeof ml);
	memset(&sealed, 0, sizeof sealed);
	b->stats.users++;
	if (b->have_all) {
		mailboxes_of(b, user, &ml);
		rc = backup_user(b, user, &ml, seq, &sealed, &e);
	} else if (pre != NULL) {
		if (pre_err != NULL)
			e = *pre_err;
		else
			rc = backup_user(b, user, pre, seq, &sealed, &e);
	} else {
		if (source_mailboxes(b->src, user, &ml) < 0)
			e = b->src->err;
		else
			rc = backup_user(b, user, &ml, seq, &sealed, &e);
		cyrus_mboxlist_free(&ml);
	}
	backup_committer_push(b, user, rc, &sealed, &e);
}

int
cyrus_backup_users(struct cyrus_backup *b, const struct strvec *users, int64_t seq)
{
	unsigned long failed = b->stats.users_failed;
	struct cyrus_mboxlist *pre = NULL;
	struct chj_error *pre_err = NULL;
	char *pre_ok = NULL;
	size_t i;
	int rc = -1;

	if (users->n >= CYRUS_BACKUP_BULK_USERS && load_all_mailboxes(b) < 0)
		return -1;
	/* the folder annotations: annotations.db read once for all the users,
	 * keeping their folders' */
	if (!b->have_annots && source_has_folder_annots(b->src)) {
		if ((pre = calloc(users->n + 1, sizeof *pre)) == NULL ||
		    (pre_err = calloc(users->n + 1, sizeof *pre_err)) == NULL ||
		    (pre_ok = calloc(users->n + 1, 1)) == NULL) {
			chj_error_set(&b->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		for (i = 0; i < users->n; i++) {
			if (b->have_all) {
				mailboxes_of(b, users->v[i], &pre[i]);
				pre_ok[i] = 1;
			} else if (source_mailboxes(b->src, users->v[i], &pre[i]) == 0) {
				pre_ok[i] = 1;
			} else {
				pre_err[i] = b->src->err;
				if (b->src->broken) {
					b->err = b->src->err;
					goto out;
				}
			}
		}
		if (load_annots(b, pre, users->n) < 0)
			goto out;
	}
	/* no thread: each run is committed in turn on this one */
	backup_committer_start(b);
	/* one set of deflate workers for every user's run; without it (no
	 * memory, no threads) each run starts its own */
	if (b->pool == NULL && arch_deflate_pool_new(&b->pool) < 0)
		b->pool = NULL;
	for (i = 0; i < users->n; i++) {
		if (pre != NULL && !b->have_all)
			backup_one(b, users->v[i], seq, &pre[i], pre_ok[i] ? NULL : &pre_err[i]);
		else
			backup_one(b, users->v[i], seq, NULL, NULL);
		/* a source gone fails every user after: one error, not one per user */
		if (b->src->broken) {
			backup_committer_drain(b);
			b->err = b->src->err;
			goto out;
		}
	}
	backup_committer_drain(b);
	rc = (int)(b->stats.users_failed - failed);
out:
	backup_committer_stop(b);
	for (i = 0; pre != NULL && !b->have_all && i < users->n; i++)
		cyrus_mboxlist_free(&pre[i]);
	free(pre);
	free(pre_err);
	free(pre_ok);
	return rc;
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
	/* annotations.db is every user's: its change backs up the users whose
	 * folders' annotations changed (a full run: every user, and the state
	 * is made anew) */
	if (!run.committed && source_has_folder_annots(b->src) &&
	    (run.cyrus_annots || run.full_reason[0] != '\0') && annots_window(b, &run.users) < 0) {
		struct chj_error keep = b->err;

		if (!b->src->broken)
			source_end(b->src, consumer, run.run_id, 0);
		b->err = keep;
		source_run_free(&run);
		return -1;
	}
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
	if (failed == 0 && annots_state_write(b) < 0)
		failed = -1;
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
