/* source-local.c: a source on this machine (source.h). The run operations
 * go to the program's runner (the agent syncs with the daemon and keeps the
 * cursors); the Cyrus ones read the spool directly: the mailbox list through
 * Cyrus's tools, meta files under Cyrus's reader locks, files by path. Also
 * which users a window's changes belong to, which only this machine can
 * tell (it reads the journal and the cyrus.header files). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changeset.h"
#include "config.h"
#include "path.h"
#include "source.h"

#define LOCAL_LOCK_TIMEOUT_MS 30000

struct local {
	struct source s;
	const struct config *cfg;
	struct journal *journal;
	const struct source_runner *runner;
	int have_cyrus;
	int annots_changed;         /* users_of_paths met annotations.db */
	struct cyrus_conf cc;
	int lock_timeout_ms;
};

static struct local *
local_of(struct source *s)
{
	return (struct local *)s;
}

/* The runner's and the Cyrus code's warnings, to the source's note. */
static void
pass_note(void *ctx, const char *line)
{
	struct source *s = ctx;

	if (s->note != NULL)
		s->note(s->note_ctx, line);
}

static int
need_cyrus(struct local *l)
{
	if (!l->have_cyrus)
		return chj_error_set(&l->s.err, CHJ_ERR_REFUSED, 0, "no Cyrus configuration here");
	return 0;
}

void
source_stat_from(struct source_stat *out, const struct stat *st)
{
	memset(out, 0, sizeof *out);
	out->kind = S_ISREG(st->st_mode) ? SOURCE_REG : S_ISLNK(st->st_mode) ? SOURCE_LNK : SOURCE_OTHER;
	out->size = (uint64_t)st->st_size;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	out->mode = (uint32_t)(st->st_mode & 07777);
}

/* ---- which users ---- */

/* Adds the users of paths[0..n); a path whose owner cannot be read is
 * told and passed over. */
static int
users_of_paths(struct local *l, char *const *paths, size_t n, struct strvec *users)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct chj_error err;
		char *user = NULL;
		int r;

		/* every user's folder annotations: the backup compares them */
		if (l->cc.annotation_db_path != NULL && strcmp(paths[i], l->cc.annotation_db_path) == 0)
			l->annots_changed = 1;
		r = cyrus_user_of_path(&l->cc, paths[i], &user, &err);

		if (r < 0) {
			char shown[1024];

			source_note(&l->s, "'%s': %s (the path is not archived)",
			    path_display(paths[i], shown, sizeof shown), err.msg);
			continue;
		}
		if (r == 1 && strvec_add(users, user) < 0) {
			free(user);
			return chj_error_set(&l->s.err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		free(user);
	}
	return 0;
}

int
source_local_users(struct source *s, int full, int64_t after_seq, struct strvec *users)
{
	struct local *l = local_of(s);
	struct changeset cs;
	int rc;

	if (need_cyrus(l) < 0)
		return -1;
	if (full) {
		struct cyrus_mboxlist all;
		char **v = NULL;
		size_t n = 0, i;

		if (cyrus_mboxlist_load(&all, &l->cc, NULL) < 0) {
			s->err = all.err;
			cyrus_mboxlist_free(&all);
			return -1;
		}
		rc = cyrus_mboxlist_users(&all, &v, &n);
		cyrus_mboxlist_free(&all);
		if (rc < 0)
			return chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
		for (i = 0; i < n; i++) {
			if (rc == 0 && strvec_add(users, v[i]) < 0)
				rc = chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
			free(v[i]);
		}
		free(v);
		strvec_sort_unique(users);
		return rc;
	}
	if (l->journal == NULL)
		return chj_error_set(&s->err, CHJ_ERR_REFUSED, 0, "no journal to read a window from");
	if (changeset_build(&cs, l->journal, l->cfg, after_seq) < 0) {
		/* the changeset's code and errno go on; its message (which
		 * holds the errno's text already) is quoted */
		chj_error_set(&s->err, cs.err.code != CHJ_OK ? cs.err.code : CHJ_ERR_JOURNAL, 0,
		    "the window's changes cannot be read completely: %s", cs.err.msg);
		s->err.errnum = cs.err.errnum;
		changeset_free(&cs);
		return -1;
	}
	rc = users_of_paths(l, cs.paths, cs.npaths, users);
	if (rc == 0)
		rc = users_of_paths(l, cs.deleted, cs.ndeleted, users);
	changeset_free(&cs);
	strvec_sort_unique(users);
	return rc;
}

/* ---- the run ---- */

static int
local_begin(struct source *s, const char *consumer, int flags, struct source_run *run)
{
	struct local *l = local_of(s);
	struct consumer_state st;
	const char *why = NULL;

	if (l->runner == NULL || l->runner->begin == NULL)
		return chj_error_set(&s->err, CHJ_ERR_REFUSED, 0, "no journal here");
	if ((flags & SOURCE_BEGIN_CYRUS) && need_cyrus(l) < 0)
		return -1;
	if (l->runner->begin(l->runner->ctx, consumer, (flags & SOURCE_BEGIN_REPLACE) != 0, &st, &why,
	    pass_note, s, &s->err) < 0)
		return -1;
	snprintf(run->run_id, sizeof run->run_id, "%s", consumer_run_id(&st));
	snprintf(run->full_reason, sizeof run->full_reason, "%s", why ? why : "");
	run->seq = st.open_seq;
	if (!(flags & SOURCE_BEGIN_CYRUS))
		return 0;
	l->annots_changed = 0;
	if (source_local_users(s, st.open_full, st.open_after_seq, &run->users) < 0)
		goto fail;
	run->cyrus_annots = l->annots_changed;
	if ((flags & SOURCE_BEGIN_IDLE_COMMIT) && run->users.n == 0 && !run->cyrus_annots) {
		if (l->runner->end(l->runner->ctx, consumer, run->run_id, 1, pass_note, s, &s->err) < 0)
			return -1;
		run->committed = 1;
	}
	return 0;
fail:
	/* the run is useless without its users: the next begin takes it over */
	{
		struct chj_error ignored;

		l->runner->end(l->runner->ctx, consumer, run->run_id, 0, pass_note, s, &ignored);
	}
	return -1;
}

static int
local_end(struct source *s, const char *consumer, const char *run_id, int commit)
{
	struct local *l = local_of(s);

	if (l->runner == NULL || l->runner->end == NULL)
		return chj_error_set(&s->err, CHJ_ERR_REFUSED, 0, "no journal here");
	return l->runner->end(l->runner->ctx, consumer, run_id, commit, pass_note, s, &s->err);
}

static int
local_list(struct source *s, const char *consumer, const char *run_id, enum source_list_what what,
    FILE *out)
{
	struct local *l = local_of(s);

	if (l->runner == NULL || l->runner->list == NULL)
		return chj_error_set(&s->err, CHJ_ERR_REFUSED, 0, "no journal here");
	return l->runner->list(l->runner->ctx, consumer, run_id, what, out, pass_note, s, &s->err);
}

/* ---- Cyrus ---- */

static int
local_mailboxes(struct source *s, const char *user, struct cyrus_mboxlist *ml)
{
	struct local *l = local_of(s);

	if (need_cyrus(l) < 0)
		return -1;
	if (cyrus_mboxlist_load(ml, &l->cc, user) < 0) {
		s->err = ml->err;
		cyrus_mboxlist_free(ml);
		return -1;
	}
	return 0;
}

static int
local_meta_stat(struct source *s, const struct cyrus_mailbox *const *v, size_t n,
    struct source_stat *st)
{
	struct local *l = local_of(s);
	size_t i, k;

	if (need_cyrus(l) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		for (k = 0; k < CYRUS_NMETA; k++) {
			struct source_stat *o = &st[i * CYRUS_NMETA + k];
			char *p = path_join(v[i]->path, cyrus_meta_names[k]);
			struct stat sb;

			if (p == NULL)
				return chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
			if (stat(p, &sb) == 0) {
				source_stat_from(o, &sb);
			} else {
				memset(o, 0, sizeof *o);
				o->err = errno;
			}
			free(p);
		}
	}
	return 0;
}

/* Reads all of fd (from offset 0) into memory; *st is its fstat. */
static int
read_fd_whole(int fd, char **buf, size_t *len, struct stat *st)
{
	size_t got = 0;

	*buf = NULL;
	if (fstat(fd, st) < 0)
		return -1;
	if (!S_ISREG(st->st_mode)) {
		errno = EINVAL;
		return -1;
	}
	*buf = malloc((size_t)st->st_size + 1);
	if (*buf == NULL)
		return -1;
	while (got < (size_t)st->st_size) {
		ssize_t n = pread(fd, *buf + got, (size_t)st->st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			free(*buf);
			*buf = NULL;
			return -1;
		}
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

/* Reads a whole file into memory; *st is its fstat. ENOENT is returned as 1. */
static int
read_whole(const char *path, char **buf, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

	*buf = NULL;
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	rc = read_fd_whole(fd, buf, len, st);
	close(fd);
	return rc;
}

/* Reads the meta files of m while holding the lock a Cyrus reader holds, so
 * the index and header are one consistent state. */
static int
local_meta_read(struct source *s, const struct cyrus_mailbox *m, struct source_meta *meta)
{
	struct local *l = local_of(s);
	struct cyrus_lock lk;
	size_t i;
	int rc = -1;

	if (need_cyrus(l) < 0)
		return -1;
	if (cyrus_lock_mailbox(&lk, &l->cc, m, l->lock_timeout_ms) < 0) {
		/* lk.err's message holds the errno's text already */
		chj_error_set(&s->err, lk.err.code, 0, "mailbox '%s': %s", m->name, lk.err.msg);
		s->err.errnum = lk.err.errnum;
		return -1;
	}
	for (i = 0; i < CYRUS_NMETA; i++) {
		char *p = path_join(m->path, cyrus_meta_names[i]);
		struct stat sb;
		int rr;

		if (p == NULL) {
			chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		/* the index through the locked fd: closing another fd of it
		 * would drop this process's fcntl lock */
		if (i == CYRUS_META_INDEX)
			rr = read_fd_whole(lk.fd, &meta->buf[i], &meta->len[i], &sb);
		else
			rr = read_whole(p, &meta->buf[i], &meta->len[i], &sb);
		if (rr < 0 || (rr == 1 && i <= CYRUS_META_INDEX)) {
			chj_error_set(&s->err, CHJ_ERR_SYS, rr == 1 ? ENOENT : errno, "mailbox '%s': "
			    "cannot read '%s'", m->name, p);
			free(p);
			goto out;
		}
		if (rr == 0)
			source_stat_from(&meta->st[i], &sb);
		else
			meta->st[i].err = ENOENT;
		free(p);
	}
	rc = 0;
out:
	cyrus_unlock(&lk);
	if (rc < 0)
		source_meta_free(meta);
	return rc;
}

/* Where a per-user file lives, for its archive name: "conf/REL" below
 * configdirectory, "sieve/REL" below sievedir; NULL elsewhere. */
static char *
user_file_rel(const struct cyrus_conf *cc, const char *file)
{
	const char *base[2] = { cc->configdirectory, cc->sievedir };
	const char *kind[2] = { "conf", "sieve" };
	char *rel = NULL;
	int i;

	for (i = 0; i < 2; i++) {
		size_t n;

		if (base[i] == NULL || !path_is_under(file, base[i]))
			continue;
		n = strlen(base[i]);
		if (file[n] != '/')
			continue;
		if (asprintf(&rel, "%s/%s", kind[i], file + n + 1) < 0)
			return NULL;
		return rel;
	}
	return NULL;
}

/* The files[0..n) (freed here) as the user's files they are: each
 * lstat()ed (one gone since it was listed is left out), named for the
 * archive, a symlink's target read. */
static int
user_files_of(struct local *l, char **files, size_t n, struct source_user_file **out, size_t *nout)
{
	struct source *s = &l->s;
	struct source_user_file *v = NULL;
	size_t i, k = 0;
	int rc = -1;

	if (n > 0 && (v = calloc(n, sizeof *v)) == NULL) {
		chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct stat sb;
		char target[4096];
		ssize_t tl;

		if (lstat(files[i], &sb) < 0) {
			if (errno == ENOENT)
				continue;       /* gone since it was listed: not in this run */
			chj_error_set(&s->err, CHJ_ERR_SYS, errno, "cannot read '%s'", files[i]);
			goto out;
		}
		v[k].path = files[i];
		files[i] = NULL;
		source_stat_from(&v[k].st, &sb);
		if ((v[k].rel = user_file_rel(&l->cc, v[k].path)) == NULL) {
			chj_error_set(&s->err, CHJ_ERR_REFUSED, 0, "'%s' is neither in the config "
			    "directory nor the sieve directory", v[k].path);
			k++;
			goto out;
		}
		if (S_ISLNK(sb.st_mode)) {
			if ((tl = readlink(v[k].path, target, sizeof target - 1)) < 0) {
				chj_error_set(&s->err, CHJ_ERR_SYS, errno, "cannot read link '%s'", v[k].path);
				k++;
				goto out;
			}
			target[tl] = '\0';
			if ((v[k].target = strdup(target)) == NULL) {
				chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
				k++;
				goto out;
			}
		}
		k++;
	}
	*out = v;
	*nout = k;
	v = NULL;
	k = 0;
	rc = 0;
out:
	source_user_files_free(v, k);
	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
	return rc;
}

/* What a per-user listing of common/cyrus gives (cyrus_user_files,
 * cyrus_user_quota_files), as the source's user files. */
typedef int (*user_paths_fn)(const struct cyrus_conf *c, const struct cyrus_mboxlist *ml,
    const char *user, char ***files, size_t *n, struct chj_error *e);

static int
local_files_by(struct source *s, user_paths_fn list, const char *user,
    const struct cyrus_mboxlist *ml, struct source_user_file **out, size_t *nout)
{
	struct local *l = local_of(s);
	char **files = NULL;
	size_t n = 0;

	if (need_cyrus(l) < 0)
		return -1;
	if (list(&l->cc, ml, user, &files, &n, &s->err) < 0)
		return -1;
	return user_files_of(l, files, n, out, nout);
}

static int
local_user_files(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **out, size_t *nout)
{
	return local_files_by(s, cyrus_user_files, user, ml, out, nout);
}

static int
local_quota_files(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **out, size_t *nout)
{
	return local_files_by(s, cyrus_user_quota_files, user, ml, out, nout);
}

struct local_file {
	int fd;
	uint64_t left;
};

static ssize_t
local_file_read(struct source_file *f, void *buf, size_t n, struct chj_error *e)
{
	struct local_file *lf = f->impl;
	ssize_t k;

	if (lf->left == 0)
		return 0;
	if (n > lf->left)
		n = (size_t)lf->left;
	do
		k = read(lf->fd, buf, n);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot read '%s'", f->path);
	}
	if (k == 0) {
		return chj_error_set(e, CHJ_ERR_SYS, 0, "'%s' ends %llu bytes short of its size %llu",
		    f->path, (unsigned long long)lf->left, (unsigned long long)f->st.size);
	}
	lf->left -= (uint64_t)k;
	return k;
}

/* Files local_fetch opens ahead of the one being stored, each with its
 * readahead asked for (POSIX_FADV_WILLNEED): a message not in the page
 * cache comes from the disk while the ones before it are hashed and
 * deflated, not when its turn comes with the deflate workers idle. */
#define FETCH_AHEAD 16

/* A file opened ahead: fd (-1: not open) or err, its stat. */
struct ahead {
	int fd;
	int err;
	struct stat sb;
};

static void
open_ahead(const char *path, struct ahead *a)
{
	a->err = 0;
	a->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (a->fd < 0) {
		a->err = errno;
		return;
	}
	if (fstat(a->fd, &a->sb) < 0) {
		a->err = errno;
		return;
	}
	/* advice only: a failure changes nothing but the speed */
	if (S_ISREG(a->sb.st_mode) && a->sb.st_size > 0)
		(void)posix_fadvise(a->fd, 0, 0, POSIX_FADV_WILLNEED);
}

static int
local_fetch(struct source *s, const char *const *paths, size_t n, source_fetch_cb cb, void *ctx)
{
	struct ahead ring[FETCH_AHEAD];
	size_t i, opened = 0;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		struct ahead *a = &ring[i % FETCH_AHEAD];
		struct source_file f;
		struct local_file lf;

		for (; opened < n && opened < i + FETCH_AHEAD; opened++)
			open_ahead(paths[opened], &ring[opened % FETCH_AHEAD]);
		memset(&f, 0, sizeof f);
		f.index = i;
		f.path = paths[i];
		f.read = local_file_read;
		f.impl = &lf;
		lf.fd = a->fd;
		lf.left = 0;
		if (a->err != 0) {
			f.st.err = a->err;
		} else {
			source_stat_from(&f.st, &a->sb);
			if (f.st.kind != SOURCE_REG)
				f.st.err = EINVAL;
			lf.left = f.st.size;
		}
		rc = cb(ctx, &f) < 0 ? -1 : 0;
		if (a->fd >= 0)
			close(a->fd);
	}
	/* stopped early: the files opened ahead are closed unread */
	for (; i < opened; i++)
		if (ring[i % FETCH_AHEAD].fd >= 0)
			close(ring[i % FETCH_AHEAD].fd);
	return rc;
}

static void
local_free(struct source *s)
{
	struct local *l = local_of(s);

	if (l->have_cyrus)
		cyrus_conf_free(&l->cc);
	free(l);
}

static int
local_folder_annots(struct source *s, const char *const *ids, size_t n, struct cyrus_annots *out)
{
	struct local *l = local_of(s);

	if (need_cyrus(l) < 0)
		return -1;
	if (cyrus_annots_load(out, &l->cc, ids, n, l->lock_timeout_ms) < 0) {
		s->err = out->err;
		cyrus_annots_free(out);
		return -1;
	}
	return 0;
}

static const struct source_ops local_ops = {
	local_begin, local_end, local_list, local_mailboxes, local_meta_stat, local_meta_read,
	local_user_files, local_fetch, local_free, local_folder_annots,
	NULL,       /* caps: every operation */
	local_quota_files,
};

/* ---- opening ---- */

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
source_local_open(struct source **out, const struct source_local_opts *o, struct chj_error *e)
{
	struct local *l = calloc(1, sizeof *l);

	*out = NULL;
	if (l == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	l->s.ops = &local_ops;
	l->cfg = o->cfg;
	l->journal = o->journal;
	l->runner = o->runner;
	l->lock_timeout_ms = o->lock_timeout_ms > 0 ? o->lock_timeout_ms : LOCAL_LOCK_TIMEOUT_MS;
	if (o->imapd_conf != NULL) {
		l->have_cyrus = 1;
		if (cyrus_conf_load(&l->cc, o->imapd_conf) < 0) {
			*e = l->cc.err;
			goto fail;
		}
		if (o->toolsdir != NULL && (l->cc.toolsdir = strdup(o->toolsdir)) == NULL) {
			chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
			goto fail;
		}
		if (o->cfg == NULL || check_roots(&l->cc, o->cfg, e) < 0) {
			if (o->cfg == NULL)
				chj_error_set(e, CHJ_ERR_REFUSED, 0, "no chjournal configuration");
			goto fail;
		}
	}
	*out = &l->s;
	return 0;
fail:
	local_free(&l->s);
	return -1;
}

const struct cyrus_conf *
source_local_cyrus(const struct source *s)
{
	const struct local *l = (const struct local *)s;

	if (s == NULL || s->ops != &local_ops || !l->have_cyrus)
		return NULL;
	return &l->cc;
}
