/* restore.c: extraction of one run of a user's archive (restore.h): the
 * run's manifest says which folders and files; phase 1 fetches every
 * folder's meta files (keeping the indexes), phase 2 every message the
 * indexes reference, each read once in file order. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/manifest.h"
#include "array.h"
#include "cyrus/cyrus.h"
#include "cyrus/metadelta.h"
#include "cyrus/restore.h"

/* A meta file wanted: phase 1 */
struct meta_want {
	char *dest;                 /* relative to DIR */
	int folder;                 /* index in the manifest */
	int kind;                   /* index in cyrus_meta_names */
	char *data;                 /* cyrus.index / cyrus.expunge kept for phase 2 */
	size_t len;
};

/* A message wanted: phase 2 */
struct msg_want {
	char name[64];              /* files/<sha1> */
	struct strvec dests;        /* every place this message goes */
};

struct restore {
	struct arch *ar;
	const char *archive;        /* its path, for messages */
	int dirfd;                  /* DIR */
	struct manifest man;
	struct cyrus_restore_result *res;
	struct chj_error *e;
	/* phase 1: a want, its meta_want and its entry name per meta file */
	struct cyrus_meta_want *mwants;
	struct meta_want *metas;
	char **names;
	size_t nmeta;
	/* phase 2 */
	struct msg_want *msgs;
	size_t nmsgs, capmsgs;
};

static int
nomem(struct restore *r)
{
	return chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
}

/* Opens (creating as needed, mode 0700) the directory rel below dirfd, one
 * component at a time, never following a symlink. Returns an fd or -1. */
static int
open_dir_path(int dirfd, const char *rel)
{
	char *copy = strdup(rel), *comp, *save = NULL;
	int fd = dup(dirfd);

	if (copy == NULL || fd < 0)
		goto fail;
	for (comp = strtok_r(copy, "/", &save); comp != NULL; comp = strtok_r(NULL, "/", &save)) {
		int next;

		if (mkdirat(fd, comp, 0700) < 0 && errno != EEXIST)
			goto fail;
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			goto fail;
		close(fd);
		fd = next;
	}
	free(copy);
	return fd;
fail:
	{
		int e = errno;

		free(copy);
		if (fd >= 0)
			close(fd);
		errno = e;
	}
	return -1;
}

/* Splits rel into its directory (opened below dirfd) and last name. */
static int
open_parent(int dirfd, const char *rel, const char **name)
{
	const char *slash = strrchr(rel, '/');
	char *dir;
	int fd;

	if (slash == NULL) {
		*name = rel;
		return dup(dirfd);
	}
	*name = slash + 1;
	dir = strndup(rel, (size_t)(slash - rel));
	if (dir == NULL)
		return -1;
	fd = open_dir_path(dirfd, dir);
	free(dir);
	return fd;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates rel (below dirfd, its missing directories too) exclusively, mode
 * 0600. Returns the descriptor, or -1 with err set. */
static int
create_exclusive(int dirfd, const char *rel, struct chj_error *err)
{
	const char *name;
	int pfd = open_parent(dirfd, rel, &name), fd;

	if (pfd < 0)
		return chj_error_set(err, CHJ_ERR_SYS, errno, "cannot create the directory of '%s'", rel);
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		chj_error_set(err, CHJ_ERR_SYS, errno, "cannot create '%s'", rel);
	close(pfd);
	return fd;
}

/* Creates rel (below dirfd) exclusively, mode 0600, from the stream; a copy
 * of the data is kept in *keep when keep is not NULL. */
static int
create_from_stream(int dirfd, const char *rel, struct arch_stream *s, char **keep, size_t *keeplen,
    uint64_t *bytes, struct chj_error *err)
{
	char buf[65536];
	int fd, rc = -1;
	size_t cap = 0;
	ssize_t n;

	if (keep != NULL) {
		*keep = NULL;
		*keeplen = 0;
	}
	if ((fd = create_exclusive(dirfd, rel, err)) < 0)
		return -1;
	while ((n = arch_stream_read(s, buf, sizeof buf)) > 0) {
		if (write_all(fd, buf, (size_t)n) < 0) {
			chj_error_set(err, CHJ_ERR_SYS, errno, "cannot write '%s'", rel);
			goto out;
		}
		*bytes += (uint64_t)n;
		if (keep != NULL) {
			if (*keeplen + (size_t)n > cap) {
				size_t ncap = (*keeplen + (size_t)n) * 2;
				char *p = realloc(*keep, ncap);

				if (p == NULL) {
					chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
					goto out;
				}
				*keep = p;
				cap = ncap;
			}
			memcpy(*keep + *keeplen, buf, (size_t)n);
			*keeplen += (size_t)n;
		}
	}
	if (n < 0) {
		/* the stream's error said why; the code stays */
		arch_error_wrap(err, err, CHJ_ERR_ARCHIVE, "cannot read the archive's copy of '%s'", rel);
		goto out;
	}
	if (fsync(fd) < 0) {
		chj_error_set(err, CHJ_ERR_SYS, errno, "cannot write '%s'", rel);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	if (rc < 0 && keep != NULL) {
		free(*keep);
		*keep = NULL;
	}
	return rc;
}

/* Creates rel (below dirfd) exclusively, mode 0600, holding buf. */
static int
create_from_buf(int dirfd, const char *rel, const char *buf, size_t len, uint64_t *bytes,
    struct chj_error *err)
{
	int fd = create_exclusive(dirfd, rel, err), rc = -1;

	if (fd < 0)
		return -1;
	if (write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
		chj_error_set(err, CHJ_ERR_SYS, errno, "cannot write '%s'", rel);
		goto out;
	}
	*bytes += len;
	rc = 0;
out:
	close(fd);
	return rc;
}

/* ---- phase 1: meta files ---- */

/* A meta file rebuilt (cyrus_meta_fetch): written; an index kept for
 * phase 2. */
static int
meta_cb(void *cbctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **buf,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct restore *r = cbctx;
	struct meta_want *mw = w->ctx;

	(void)e;
	(void)chain;
	if (create_from_buf(r->dirfd, mw->dest, *buf, len, &r->res->bytes, err) < 0)
		return -1;
	if (mw->kind == CYRUS_META_INDEX || mw->kind == CYRUS_META_EXPUNGE) {
		mw->data = *buf;
		mw->len = len;
		*buf = NULL;
	}
	return 0;
}

/* ---- phase 2: messages ---- */

static int
msg_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, struct chj_error *err)
{
	struct restore *r = cbctx;
	struct msg_want *mw = w->ctx;
	size_t i;

	if (e->kind != ARCH_KIND_FILE)
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is not a file", e->name);
	if (create_from_stream(r->dirfd, mw->dests.v[0], s, NULL, NULL, &r->res->bytes, err) < 0)
		return -1;
	r->res->messages++;
	/* the same message in several folders: hard links, as Cyrus's single
	 * instance store had them */
	for (i = 1; i < mw->dests.n; i++) {
		const char *name;
		int pfd = open_parent(r->dirfd, mw->dests.v[i], &name);

		if (pfd < 0 || linkat(r->dirfd, mw->dests.v[0], pfd, name, 0) < 0) {
			chj_error_set(err, CHJ_ERR_SYS, errno, "cannot create '%s'", mw->dests.v[i]);
			if (pfd >= 0)
				close(pfd);
			return -1;
		}
		close(pfd);
		r->res->messages++;
	}
	return 0;
}

static int
msg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct msg_want *)a)->name, ((const struct msg_want *)b)->name);
}

/* Adds dest to the message wanted under name (kept sorted later). */
static int
msg_add(struct msg_want **v, size_t *n, size_t *cap, const char *name, const char *dest)
{
	struct msg_want *m, *nv;

	/* only the last one is looked at: msg_merge joins the rest */
	if (*n > 0 && strcmp((*v)[*n - 1].name, name) == 0) {
		m = &(*v)[*n - 1];
	} else {
		if ((nv = array_grow(*v, *n, cap, sizeof **v, 256)) == NULL)
			return -1;
		*v = nv;
		m = &(*v)[(*n)++];
		memset(m, 0, sizeof *m);
		snprintf(m->name, sizeof m->name, "%s", name);
	}
	return strvec_add(&m->dests, dest);
}

/* Merges entries with the same name after sorting. */
static int
msg_merge(struct msg_want *v, size_t *n)
{
	size_t i, j = 0, k;

	if (*n == 0)
		return 0;
	qsort(v, *n, sizeof *v, msg_cmp);
	for (i = 0; i < *n; i++) {
		if (j > 0 && strcmp(v[j - 1].name, v[i].name) == 0) {
			struct msg_want *t = &v[j - 1];
			char **p = array_reserve(t->dests.v, t->dests.n + v[i].dests.n, &t->dests.cap,
			    sizeof *t->dests.v, 2);

			if (p == NULL) {
				/* keep what is owned: [0, j) merged, [i, n) untouched */
				memmove(&v[j], &v[i], (*n - i) * sizeof *v);
				*n = j + (*n - i);
				return -1;
			}
			t->dests.v = p;
			for (k = 0; k < v[i].dests.n; k++)
				t->dests.v[t->dests.n++] = v[i].dests.v[k];
			free(v[i].dests.v);
			continue;
		}
		v[j++] = v[i];
	}
	*n = j;
	return 0;
}

static void
msg_free(struct msg_want *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		strvec_free(&v[i].dests);
	free(v);
}

/* ---- the folders ---- */

/* The directory of folder f below DIR, checked. NULL when unsafe. */
static char *
folder_dir(const struct manifest_folder *f)
{
	char *d = NULL;

	if (!manifest_safe_relpath(f->relpath) || !manifest_safe_relpath(f->partition) ||
	    strchr(f->partition, '/') != NULL)
		return NULL;
	if (asprintf(&d, "spool/%s/%s", f->partition, f->relpath) < 0)
		return NULL;
	return d;
}

/* Adds the message files an index references to the wanted list. */
static int
want_index_messages(struct restore *r, const struct manifest_folder *f, const char *dir,
    const char *data, size_t len)
{
	struct cyrus_index x;
	static const uint8_t zero[20];
	uint32_t i;
	int rc = -1;

	memset(&x, 0, sizeof x);
	if (cyrus_index_parse(&x, data, len) < 0) {
		chj_error_set(r->e, x.err.code, 0, "folder '%s': the archived cyrus.index is "
		    "unreadable: %s", f->name, x.err.msg);
		goto out;
	}
	for (i = 0; i < x.num_records; i++) {
		const struct cyrus_index_record *rec = &x.records[i];
		char name[64], hex[41], *dest;

		if (!cyrus_record_has_file(rec))
			continue;
		if (memcmp(rec->guid, zero, 20) == 0) {
			chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "folder '%s': record of uid %u has no "
			    "GUID: its message cannot be found", f->name, rec->uid);
			goto out;
		}
		cyrus_guid_hex(rec->guid, hex);
		snprintf(name, sizeof name, ARCH_FILES "%s", hex);
		if (asprintf(&dest, "%s/%u.", dir, rec->uid) < 0) {
			nomem(r);
			goto out;
		}
		if (msg_add(&r->msgs, &r->nmsgs, &r->capmsgs, name, dest) < 0) {
			free(dest);
			nomem(r);
			goto out;
		}
		free(dest);
	}
	rc = 0;
out:
	cyrus_index_free(&x);
	return rc;
}

static int
fetch(struct restore *r, struct arch_want *w, size_t n, arch_want_cb cb)
{
	if (n == 0)
		return 0;
	if (arch_fetch(r->ar, w, n, cb, r) < 0)
		return arch_error_wrap(r->e, arch_error(r->ar), CHJ_ERR_ARCHIVE,
		    "restore from the archive failed: %s", arch_error(r->ar)->msg);
	return 0;
}

/* Points w at the newest copy of name at or before the run: 1, or 0 when
 * there is none (an error when required), -1 on error. */
static int
want_latest(struct restore *r, const char *name, struct arch_want *w, int required)
{
	struct arch_entry e;
	int got = arch_latest(r->ar, name, r->res->run, &e);

	if (got < 0)
		return arch_error_copy(r->ar, r->e);
	if (got == 0) {
		if (required)
			return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "the archive lacks '%s', which the "
			    "run needs", name);
		return 0;
	}
	w->run = e.run;
	w->name = NULL;
	arch_entry_free(&e);
	return 1;
}

/* Points w at the state of meta file name at the run (a whole copy or a
 * delta): 1, or 0 when there is none (an error when required), -1. */
static int
want_meta(struct restore *r, const char *name, struct cyrus_meta_want *w, int required)
{
	struct arch_entry e;
	int delta, got = cyrus_meta_latest(r->ar, name, r->res->run, &e, &delta);

	if (got < 0)
		return arch_error_copy(r->ar, r->e);
	if (got == 0) {
		if (required)
			return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "the archive lacks '%s', which the "
			    "run needs", name);
		return 0;
	}
	w->upto = r->res->run;
	w->name = NULL;
	arch_entry_free(&e);
	return 1;
}

/* Wants the meta files of folder i (the manifest's), in its directory dir. */
static int
want_folder_meta(struct restore *r, size_t i, const char *dir)
{
	const struct manifest_folder *f = &r->man.folders[i];
	size_t k;

	for (k = 0; k < CYRUS_NMETA; k++) {
		size_t j = r->nmeta;
		int got;

		if (asprintf(&r->names[j], ARCH_FOLDERS "%s/%s", f->uniqueid, cyrus_meta_names[k]) < 0) {
			r->names[j] = NULL;
			return nomem(r);
		}
		got = want_meta(r, r->names[j], &r->mwants[j], k <= CYRUS_META_INDEX);
		if (got <= 0) {
			free(r->names[j]);
			r->names[j] = NULL;
			if (got < 0)
				return -1;
			continue;
		}
		if (asprintf(&r->metas[j].dest, "%s/%s", dir, cyrus_meta_names[k]) < 0) {
			r->metas[j].dest = NULL;
			free(r->names[j]);
			r->names[j] = NULL;
			return nomem(r);
		}
		r->mwants[j].name = r->names[j];
		r->metas[j].folder = (int)i;
		r->metas[j].kind = (int)k;
		r->mwants[j].ctx = &r->metas[j];
		r->nmeta++;
	}
	return 0;
}

/* 1 when folder f is to be restored: every one, or those named. */
static int
folder_wanted(const struct manifest_folder *f, const char *const *only, size_t nonly)
{
	size_t k;

	for (k = 0; k < nonly; k++)
		if (strcmp(only[k], f->name) == 0)
			return 1;
	return nonly == 0;
}

/* Every folder named must be in the run. */
static int
check_folders(struct restore *r, const char *const *only, size_t nonly)
{
	size_t i;

	for (i = 0; i < nonly; i++)
		if (manifest_find_folder(&r->man, only[i]) == NULL)
			return chj_error_set(r->e, CHJ_ERR_NOTFOUND, 0, "folder '%s' is not in the run",
			    only[i]);
	return 0;
}

/* Phase 1: every wanted folder's directory and meta files. */
static int
restore_meta(struct restore *r, const char *const *only, size_t nonly)
{
	size_t i, max = r->man.nfolders * CYRUS_NMETA + 1;

	r->mwants = calloc(max, sizeof *r->mwants);
	r->metas = calloc(max, sizeof *r->metas);
	r->names = calloc(max, sizeof *r->names);
	if (r->mwants == NULL || r->metas == NULL || r->names == NULL)
		return nomem(r);
	for (i = 0; i < r->man.nfolders; i++) {
		const struct manifest_folder *f = &r->man.folders[i];
		char *dir;
		int rc;

		if (!folder_wanted(f, only, nonly))
			continue;
		dir = folder_dir(f);
		if (dir == NULL || strchr(f->uniqueid, '/') != NULL) {
			free(dir);
			return chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "folder '%s': unsafe partition or "
			    "path '%s/%s' in the archive: refused", f->name, f->partition, f->relpath);
		}
		r->res->folders++;
		rc = want_folder_meta(r, i, dir);
		free(dir);
		if (rc < 0)
			return -1;
	}
	if (cyrus_meta_fetch(r->ar, r->mwants, r->nmeta, meta_cb, r, r->e) < 0)
		return arch_error_wrap(r->e, r->e, CHJ_ERR_ARCHIVE, "restore from the archive failed: %s",
		    r->e->msg);
	return 0;
}

/* Phase 2: every message the restored indexes reference. */
static int
restore_messages(struct restore *r)
{
	struct arch_want *w;
	size_t i;
	int rc = -1;

	for (i = 0; i < r->nmeta; i++) {
		const struct manifest_folder *f = &r->man.folders[r->metas[i].folder];
		char *dir;

		if (r->metas[i].data == NULL)
			continue;
		dir = folder_dir(f);
		if (dir == NULL)
			return nomem(r);
		rc = want_index_messages(r, f, dir, r->metas[i].data, r->metas[i].len);
		free(dir);
		if (rc < 0)
			return -1;
	}
	if (msg_merge(r->msgs, &r->nmsgs) < 0)
		return nomem(r);
	w = calloc(r->nmsgs + 1, sizeof *w);
	if (w == NULL)
		return nomem(r);
	for (i = 0; i < r->nmsgs; i++) {
		if (want_latest(r, r->msgs[i].name, &w[i], 1) < 0)
			goto out;
		w[i].name = r->msgs[i].name;
		w[i].ctx = &r->msgs[i];
	}
	rc = fetch(r, w, r->nmsgs, msg_cb);
out:
	free(w);
	return rc;
}

/* ---- per-user files ---- */

/* DIR-relative destination of a user/ entry; NULL when unsafe. */
static char *
user_dest(const char *entry)
{
	const char *rest;

	if (strncmp(entry, ARCH_USER "conf/", strlen(ARCH_USER "conf/")) == 0)
		rest = entry + strlen(ARCH_USER);
	else if (strncmp(entry, ARCH_USER "sieve/", strlen(ARCH_USER "sieve/")) == 0)
		rest = entry + strlen(ARCH_USER);
	else
		return NULL;
	if (!manifest_safe_relpath(rest))
		return NULL;
	return strdup(rest);
}

struct user_want {
	char *dest;
};

static int
user_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, struct chj_error *err)
{
	struct restore *r = cbctx;
	struct user_want *uw = w->ctx;

	if (e->kind == ARCH_KIND_SYMLINK) {
		const char *name;
		int pfd = open_parent(r->dirfd, uw->dest, &name), rc = 0;

		if (pfd < 0 || symlinkat(e->target ? e->target : "", pfd, name) < 0) {
			rc = chj_error_set(err, CHJ_ERR_SYS, errno, "cannot create '%s'", uw->dest);
		}
		if (pfd >= 0)
			close(pfd);
		r->res->files += rc == 0;
		return rc;
	}
	r->res->files++;
	return create_from_stream(r->dirfd, uw->dest, s, NULL, NULL, &r->res->bytes, err);
}

/* A per-user database whose state is a delta, rebuilt (cyrus_meta_fetch). */
static int
user_meta_cb(void *cbctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **buf,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct restore *r = cbctx;
	struct user_want *uw = w->ctx;

	(void)e;
	(void)chain;
	r->res->files++;
	return create_from_buf(r->dirfd, uw->dest, *buf, len, &r->res->bytes, err);
}

/* 1 when the state of per-user file name at the run is a delta, 0 when
 * not (a whole copy, a link: read as stored), -1 on an archive error. */
static int
user_state_is_delta(struct restore *r, const char *name)
{
	struct arch_entry e;
	int delta = 0, got;

	if (!cyrus_delta_eligible(name))
		return 0;
	if ((got = cyrus_meta_latest(r->ar, name, r->res->run, &e, &delta)) < 0)
		return arch_error_copy(r->ar, r->e);
	if (got == 1)
		arch_entry_free(&e);
	return got == 1 && delta;
}

static int
restore_user_files(struct restore *r)
{
	struct arch_want *w = calloc(r->man.nfiles + 1, sizeof *w);
	struct cyrus_meta_want *mw = calloc(r->man.nfiles + 1, sizeof *mw);
	struct user_want *uw = calloc(r->man.nfiles + 1, sizeof *uw);
	size_t i, n = 0, nm = 0;
	int rc = -1, delta;

	if (w == NULL || mw == NULL || uw == NULL) {
		nomem(r);
		goto out;
	}
	for (i = 0; i < r->man.nfiles; i++) {
		uw[i].dest = user_dest(r->man.files[i]);
		if (uw[i].dest == NULL) {
			chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "unsafe per-user file name '%s' in the "
			    "archive: refused", r->man.files[i]);
			goto out;
		}
		if ((delta = user_state_is_delta(r, r->man.files[i])) < 0)
			goto out;
		if (delta) {
			mw[nm].name = r->man.files[i];
			mw[nm].upto = r->res->run;
			mw[nm++].ctx = &uw[i];
			continue;
		}
		if (want_latest(r, r->man.files[i], &w[n], 1) < 0)
			goto out;
		w[n].name = r->man.files[i];
		w[n].ctx = &uw[i];
		n++;
	}
	if ((rc = fetch(r, w, n, user_cb)) < 0)
		goto out;
	if (nm > 0 && cyrus_meta_fetch(r->ar, mw, nm, user_meta_cb, r, r->e) < 0)
		rc = arch_error_wrap(r->e, r->e, CHJ_ERR_ARCHIVE, "restore from the archive failed: %s",
		    r->e->msg);
out:
	for (i = 0; uw != NULL && i < r->man.nfiles; i++)
		free(uw[i].dest);
	free(uw);
	free(mw);
	free(w);
	return rc;
}

/* ---- the run and the target ---- */

/* Picks the run and reads its manifest. */
static int
read_run(struct restore *r, const struct runsel *at)
{
	struct arch_run *runs = NULL;
	char *buf = NULL;
	size_t n = 0, i, len = 0;
	int rc;

	if (arch_runs(r->ar, &runs, &n) < 0)
		return arch_error_copy(r->ar, r->e);
	if (runsel_pick(at, runs, n, r->archive, &i, r->e) < 0) {
		free(runs);
		return -1;
	}
	r->res->run = runs[i].id;
	snprintf(r->res->run_name, sizeof r->res->run_name, "%s", runs[i].name);
	free(runs);
	if (arch_read_manifest(r->ar, r->res->run, &buf, &len) < 0)
		return arch_error_copy(r->ar, r->e);
	rc = manifest_parse(&r->man, buf, len);
	free(buf);
	if (rc < 0)
		return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "the run's manifest is unreadable: %s",
		    r->man.err.msg);
	r->res->user = strdup(r->man.user);
	return r->res->user == NULL ? nomem(r) : 0;
}

/* Creates to and its missing parents (mode 0700) and opens it. */
static int
open_target(struct restore *r, const char *to)
{
	char *p = strdup(to), *slash;

	if (p == NULL)
		return nomem(r);
	/* the parents, from the top: an existing one (or a symlink to a
	 * directory: the path is the caller's) is left as it is */
	for (slash = strchr(p + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			chj_error_set(r->e, CHJ_ERR_SYS, errno, "cannot create '%s'", p);
			free(p);
			return -1;
		}
		*slash = '/';
	}
	free(p);
	if (mkdir(to, 0700) < 0 && errno != EEXIST)
		return chj_error_set(r->e, CHJ_ERR_SYS, errno, "cannot create '%s'", to);
	r->dirfd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		return chj_error_set(r->e, CHJ_ERR_SYS, errno, "cannot open '%s'", to);
	return 0;
}

static void
restore_free(struct restore *r)
{
	size_t i;

	for (i = 0; r->metas != NULL && i < r->man.nfolders * CYRUS_NMETA; i++) {
		free(r->metas[i].dest);
		free(r->metas[i].data);
		free(r->names[i]);
	}
	free(r->metas);
	free(r->names);
	free(r->mwants);
	msg_free(r->msgs, r->nmsgs);
	if (r->dirfd >= 0)
		close(r->dirfd);
	manifest_free(&r->man);
	if (r->ar != NULL)
		arch_close(r->ar);
}

int
cyrus_restore(const char *archive, const char *to, const struct runsel *at,
    const char *const *folders, size_t nfolders, struct cyrus_restore_result *res, struct chj_error *e)
{
	struct restore r;
	int rc = -1;

	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	r.dirfd = -1;
	r.archive = archive;
	r.res = res;
	r.e = e;
	manifest_init(&r.man);
	if (arch_open(&r.ar, archive, ARCH_READ, e) < 0)
		goto out;
	if (read_run(&r, at) < 0 || check_folders(&r, folders, nfolders) < 0 || open_target(&r, to) < 0)
		goto out;
	if (restore_meta(&r, folders, nfolders) < 0 || restore_messages(&r) < 0)
		goto out;
	if (nfolders == 0 && restore_user_files(&r) < 0)
		goto out;
	rc = 0;
out:
	restore_free(&r);
	return rc;
}

void
cyrus_restore_result_free(struct cyrus_restore_result *res)
{
	free(res->user);
	res->user = NULL;
}
