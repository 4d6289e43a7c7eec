/* cmd-restore.c: `chjournal restore ARCHIVE --to DIR`: recreates under DIR
 * the state of one run (the last one, or --at): each folder's directory as
 * DIR/spool/PARTITION/RELPATH with its meta files and every message file
 * named <uid>., the per-user files under DIR/conf and DIR/sieve. Works on the
 * archive alone. Everything the archive says is untrusted: every name is
 * checked, every directory opened without following symlinks, every file
 * created exclusively, so nothing is written outside DIR. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "archive/archive.h"
#include "archive/manifest.h"
#include "archive/runsel.h"
#include "array.h"
#include "cyrus/cyrus.h"
#include "path.h"

struct restore {
	struct arch *ar;
	const char *archive;       /* its path, for messages */
	int dirfd;                  /* DIR */
	const char *to;
	int64_t run;
	struct manifest man;
	unsigned long folders, messages, files;
	uint64_t bytes;
};

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

/* Creates rel (below dirfd) exclusively, mode 0600, from the stream; a copy
 * of the data is kept in *keep when keep is not NULL. */
static int
create_from_stream(int dirfd, const char *rel, struct arch_stream *s, char **keep, size_t *keeplen,
    uint64_t *bytes, char *err, size_t errlen)
{
	const char *name;
	char buf[65536];
	int pfd = open_parent(dirfd, rel, &name), fd = -1, rc = -1;
	size_t cap = 0;
	ssize_t n;

	if (keep != NULL) {
		*keep = NULL;
		*keeplen = 0;
	}
	if (pfd < 0) {
		snprintf(err, errlen, "cannot create the directory of '%s': %s", rel, strerror(errno));
		return -1;
	}
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", rel, strerror(errno));
		goto out;
	}
	while ((n = arch_stream_read(s, buf, sizeof buf)) > 0) {
		if (write_all(fd, buf, (size_t)n) < 0) {
			snprintf(err, errlen, "cannot write '%s': %s", rel, strerror(errno));
			goto out;
		}
		*bytes += (uint64_t)n;
		if (keep != NULL) {
			if (*keeplen + (size_t)n > cap) {
				size_t ncap = (*keeplen + (size_t)n) * 2;
				char *p = realloc(*keep, ncap);

				if (p == NULL) {
					snprintf(err, errlen, "out of memory");
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
		snprintf(err, errlen, "cannot read the archive's copy of '%s'", rel);
		goto out;
	}
	if (fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write '%s': %s", rel, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	close(pfd);
	if (rc < 0 && keep != NULL) {
		free(*keep);
		*keep = NULL;
	}
	return rc;
}

/* ---- phase 1: meta files ---- */

struct meta_want {
	char *dest;                 /* relative to DIR */
	int folder;                 /* index in the manifest */
	int kind;                   /* index in cyrus_meta_names */
	char *data;                 /* cyrus.index / cyrus.expunge kept for phase 2 */
	size_t len;
};

struct phase_ctx {
	struct restore *r;
};

static int
meta_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, char *err, size_t errlen)
{
	struct restore *r = cbctx;
	struct meta_want *mw = w->ctx;
	int keep = mw->kind == CYRUS_META_INDEX || mw->kind == CYRUS_META_EXPUNGE;

	if (e->kind != ARCH_KIND_FILE) {
		snprintf(err, errlen, "archive entry '%s' is not a file", e->name);
		return -1;
	}
	return create_from_stream(r->dirfd, mw->dest, s, keep ? &mw->data : NULL, &mw->len,
	    &r->bytes, err, errlen);
}

/* ---- phase 2: messages ---- */

struct msg_want {
	char name[64];              /* files/<sha1> */
	char **dests;               /* every place this message goes */
	size_t ndests, cap;
};

static int
msg_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, char *err, size_t errlen)
{
	struct restore *r = cbctx;
	struct msg_want *mw = w->ctx;
	size_t i;

	if (e->kind != ARCH_KIND_FILE) {
		snprintf(err, errlen, "archive entry '%s' is not a file", e->name);
		return -1;
	}
	if (create_from_stream(r->dirfd, mw->dests[0], s, NULL, NULL, &r->bytes, err, errlen) < 0)
		return -1;
	r->messages++;
	/* the same message in several folders: hard links, as Cyrus's single
	 * instance store had them */
	for (i = 1; i < mw->ndests; i++) {
		const char *name;
		int pfd = open_parent(r->dirfd, mw->dests[i], &name);

		if (pfd < 0 || linkat(r->dirfd, mw->dests[0], pfd, name, 0) < 0) {
			snprintf(err, errlen, "cannot create '%s': %s", mw->dests[i], strerror(errno));
			if (pfd >= 0)
				close(pfd);
			return -1;
		}
		close(pfd);
		r->messages++;
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
	char **nd;

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
	if ((nd = array_grow(m->dests, m->ndests, &m->cap, sizeof *m->dests, 2)) == NULL)
		return -1;
	m->dests = nd;
	m->dests[m->ndests] = strdup(dest);
	if (m->dests[m->ndests] == NULL)
		return -1;
	m->ndests++;
	return 0;
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
			char **p = realloc(t->dests, (t->ndests + v[i].ndests) * sizeof *t->dests);

			if (p == NULL) {
				/* keep what is owned: [0, j) merged, [i, n) untouched */
				memmove(&v[j], &v[i], (*n - i) * sizeof *v);
				*n = j + (*n - i);
				return -1;
			}
			t->dests = p;
			t->cap = t->ndests + v[i].ndests;
			for (k = 0; k < v[i].ndests; k++)
				t->dests[t->ndests++] = v[i].dests[k];
			free(v[i].dests);
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
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < v[i].ndests; k++)
			free(v[i].dests[k]);
		free(v[i].dests);
	}
	free(v);
}

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
want_index_messages(const struct manifest_folder *f, const char *dir, const char *data, size_t len,
    struct msg_want **v, size_t *n, size_t *cap)
{
	struct cyrus_index x;
	static const uint8_t zero[20];
	uint32_t i;
	int rc = -1;

	memset(&x, 0, sizeof x);
	if (cyrus_index_parse(&x, data, len) < 0) {
		agent_error("folder '%s': the archived cyrus.index is unreadable: %s", f->name, x.err);
		goto out;
	}
	for (i = 0; i < x.num_records; i++) {
		const struct cyrus_index_record *rec = &x.records[i];
		char name[64], hex[41], *dest;

		if (!cyrus_record_has_file(rec))
			continue;
		if (memcmp(rec->guid, zero, 20) == 0) {
			agent_error("folder '%s': record of uid %u has no GUID: its message cannot be found",
			    f->name, rec->uid);
			goto out;
		}
		cyrus_guid_hex(rec->guid, hex);
		snprintf(name, sizeof name, ARCH_FILES "%s", hex);
		if (asprintf(&dest, "%s/%u.", dir, rec->uid) < 0)
			goto out;
		if (msg_add(v, n, cap, name, dest) < 0) {
			free(dest);
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
fetch_or_report(struct restore *r, struct arch_want *w, size_t n, arch_want_cb cb)
{
	if (n == 0)
		return 0;
	if (arch_fetch(r->ar, w, n, cb, r) < 0) {
		agent_error("restore from the archive failed: %s", arch_error(r->ar));
		return -1;
	}
	return 0;
}

/* Builds a want for the newest copy of name at or before the run. */
static int
want_latest(struct restore *r, const char *name, struct arch_want *w, int required)
{
	struct arch_entry e;
	int got = arch_latest(r->ar, name, r->run, &e);

	if (got < 0) {
		agent_error("%s", arch_error(r->ar));
		return -1;
	}
	if (got == 0) {
		if (required)
			agent_error("the archive lacks '%s', which the run needs", name);
		return required ? -1 : 0;
	}
	w->run = e.run;
	w->name = NULL;
	arch_entry_free(&e);
	return 1;
}

static int
restore_folders(struct restore *r, char **only, size_t nonly)
{
	struct meta_want *mw = NULL;
	struct arch_want *w = NULL;
	struct msg_want *msgs = NULL;
	char **names = NULL;
	size_t nmw = 0, nmsgs = 0, capmsgs = 0, i, k;
	int rc = -1;

	mw = calloc(r->man.nfolders * CYRUS_NMETA + 1, sizeof *mw);
	w = calloc(r->man.nfolders * CYRUS_NMETA + 1, sizeof *w);
	names = calloc(r->man.nfolders * CYRUS_NMETA + 1, sizeof *names);
	if (mw == NULL || w == NULL || names == NULL) {
		agent_error("out of memory");
		goto out;
	}
	for (i = 0; i < nonly; i++)
		if (manifest_find_folder(&r->man, only[i]) == NULL) {
			agent_error("folder '%s' is not in the run", only[i]);
			goto out;
		}
	for (i = 0; i < r->man.nfolders; i++) {
		const struct manifest_folder *f = &r->man.folders[i];
		char *dir;
		int wanted = nonly == 0;

		for (k = 0; k < nonly; k++)
			wanted |= strcmp(only[k], f->name) == 0;
		if (!wanted)
			continue;
		dir = folder_dir(f);
		if (dir == NULL || strchr(f->uniqueid, '/') != NULL) {
			agent_error("folder '%s': unsafe partition or path '%s/%s' in the archive: refused",
			    f->name, f->partition, f->relpath);
			free(dir);
			goto out;
		}
		r->folders++;
		for (k = 0; k < CYRUS_NMETA; k++) {
			int got;

			if (asprintf(&names[nmw], ARCH_FOLDERS "%s/%s", f->uniqueid, cyrus_meta_names[k]) < 0) {
				names[nmw] = NULL;
				free(dir);
				goto out;
			}
			got = want_latest(r, names[nmw], &w[nmw], k <= CYRUS_META_INDEX);
			if (got < 0) {
				free(dir);
				goto out;
			}
			if (got == 0) {
				free(names[nmw]);
				names[nmw] = NULL;
				continue;
			}
			w[nmw].name = names[nmw];
			if (asprintf(&mw[nmw].dest, "%s/%s", dir, cyrus_meta_names[k]) < 0) {
				mw[nmw].dest = NULL;
				free(dir);
				goto out;
			}
			mw[nmw].folder = (int)i;
			mw[nmw].kind = (int)k;
			w[nmw].ctx = &mw[nmw];
			nmw++;
		}
		free(dir);
	}
	if (fetch_or_report(r, w, nmw, meta_cb) < 0)
		goto out;
	for (i = 0; i < nmw; i++) {
		const struct manifest_folder *f = &r->man.folders[mw[i].folder];
		char *dir;

		if (mw[i].data == NULL)
			continue;
		dir = folder_dir(f);
		if (dir == NULL || want_index_messages(f, dir, mw[i].data, mw[i].len, &msgs, &nmsgs,
		    &capmsgs) < 0) {
			free(dir);
			goto out;
		}
		free(dir);
	}
	if (msg_merge(msgs, &nmsgs) < 0) {
		agent_error("out of memory");
		goto out;
	}
	free(w);
	w = calloc(nmsgs + 1, sizeof *w);
	if (w == NULL)
		goto out;
	for (i = 0; i < nmsgs; i++) {
		if (want_latest(r, msgs[i].name, &w[i], 1) < 0)
			goto out;
		w[i].name = msgs[i].name;
		w[i].ctx = &msgs[i];
	}
	if (fetch_or_report(r, w, nmsgs, msg_cb) < 0)
		goto out;
	rc = 0;
out:
	for (i = 0; mw != NULL && i < r->man.nfolders * CYRUS_NMETA; i++) {
		free(mw[i].dest);
		free(mw[i].data);
		free(names[i]);
	}
	free(mw);
	free(names);
	free(w);
	msg_free(msgs, nmsgs);
	return rc;
}

/* ---- per-user files ---- */

/* DIR-relative destination of a user/ entry; NULL when unsafe. */
static char *
user_dest(const char *entry)
{
	const char *rest;
	char *d = NULL;

	if (strncmp(entry, ARCH_USER "conf/", strlen(ARCH_USER "conf/")) == 0)
		rest = entry + strlen(ARCH_USER);
	else if (strncmp(entry, ARCH_USER "sieve/", strlen(ARCH_USER "sieve/")) == 0)
		rest = entry + strlen(ARCH_USER);
	else
		return NULL;
	if (!manifest_safe_relpath(rest))
		return NULL;
	d = strdup(rest);
	return d;
}

struct user_want {
	char *dest;
};

static int
user_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, char *err, size_t errlen)
{
	struct restore *r = cbctx;
	struct user_want *uw = w->ctx;

	if (e->kind == ARCH_KIND_SYMLINK) {
		const char *name;
		int pfd = open_parent(r->dirfd, uw->dest, &name), rc = 0;

		if (pfd < 0 || symlinkat(e->target ? e->target : "", pfd, name) < 0) {
			snprintf(err, errlen, "cannot create '%s': %s", uw->dest, strerror(errno));
			rc = -1;
		}
		if (pfd >= 0)
			close(pfd);
		r->files += rc == 0;
		return rc;
	}
	r->files++;
	return create_from_stream(r->dirfd, uw->dest, s, NULL, NULL, &r->bytes, err, errlen);
}

static int
restore_user_files(struct restore *r)
{
	struct arch_want *w = calloc(r->man.nfiles + 1, sizeof *w);
	struct user_want *uw = calloc(r->man.nfiles + 1, sizeof *uw);
	size_t i, n = 0;
	int rc = -1;

	if (w == NULL || uw == NULL) {
		agent_error("out of memory");
		goto out;
	}
	for (i = 0; i < r->man.nfiles; i++) {
		uw[n].dest = user_dest(r->man.files[i]);
		if (uw[n].dest == NULL) {
			agent_error("unsafe per-user file name '%s' in the archive: refused", r->man.files[i]);
			goto out;
		}
		if (want_latest(r, r->man.files[i], &w[n], 1) < 0) {
			free(uw[n].dest);
			uw[n].dest = NULL;
			goto out;
		}
		w[n].name = r->man.files[i];
		w[n].ctx = &uw[n];
		n++;
	}
	rc = fetch_or_report(r, w, n, user_cb);
out:
	for (i = 0; uw != NULL && i < r->man.nfiles; i++)
		free(uw[i].dest);
	free(uw);
	free(w);
	return rc;
}

/* ---- choosing the run ---- */

/* The run sel picks: r->run and its name. */
static int
choose_run(struct restore *r, const struct runsel *sel, char *name, size_t namelen)
{
	struct arch_run *runs = NULL;
	struct chj_error e;
	size_t n = 0, i;

	if (arch_runs(r->ar, &runs, &n) < 0) {
		agent_error("%s", arch_error(r->ar));
		return -1;
	}
	if (runsel_pick(sel, runs, n, r->archive, &i, &e) < 0) {
		free(runs);
		agent_error("%s", e.msg);
		return -1;
	}
	r->run = runs[i].id;
	snprintf(name, namelen, "%s", runs[i].name);
	free(runs);
	return 0;
}

static int
read_run_manifest(struct restore *r)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (arch_read_manifest(r->ar, r->run, &buf, &len) < 0) {
		agent_error("%s", arch_error(r->ar));
		return -1;
	}
	rc = manifest_parse(&r->man, buf, len);
	free(buf);
	if (rc < 0)
		agent_error("the run's manifest is unreadable: %s", r->man.err);
	return rc;
}

int
cmd_restore(struct agent *a, int argc, char **argv)
{
	struct restore r;
	const char *archive = NULL;
	char **only = NULL, err[ARCH_ERR_MAX], runname[64];
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	size_t nonly = 0;
	int i, rc = EXIT_ERROR, o;

	(void)a;
	memset(&r, 0, sizeof r);
	r.dirfd = -1;
	manifest_init(&r.man);
	only = calloc((size_t)argc, sizeof *only);
	if (only == NULL)
		return agent_error("out of memory");
	for (i = 1; i < argc; i++) {
		const char *v;

		if ((o = agent_opt_at("restore", argc, argv, &i, &sel)) != 0) {
			if (o < 0) {
				free(only);
				return EXIT_USAGE;
			}
		} else if (agent_opt_value(argc, argv, &i, "--to", &v))
			r.to = v;
		else if (agent_opt_value(argc, argv, &i, "--folder", &v))
			only[nonly++] = (char *)v;
		else if (argv[i][0] == '-' || archive != NULL) {
			free(only);
			return agent_usage_error("restore", "unexpected argument '%s'", argv[i]);
		} else
			archive = argv[i];
	}
	if (archive == NULL || r.to == NULL) {
		free(only);
		return agent_usage_error("restore", "expected ARCHIVE and --to DIR");
	}
	if (arch_open(&r.ar, archive, ARCH_READ, err, sizeof err) < 0) {
		agent_error("%s", err);
		goto out;
	}
	r.archive = archive;
	if (choose_run(&r, &sel, runname, sizeof runname) < 0)
		goto out;
	if (read_run_manifest(&r) < 0)
		goto out;
	if (mkdir(r.to, 0700) < 0 && errno != EEXIST) {
		agent_error("cannot create '%s': %s", r.to, strerror(errno));
		goto out;
	}
	r.dirfd = open(r.to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r.dirfd < 0) {
		agent_error("cannot open '%s': %s", r.to, strerror(errno));
		goto out;
	}
	if (restore_folders(&r, only, nonly) < 0)
		goto out;
	if (nonly == 0 && restore_user_files(&r) < 0)
		goto out;
	printf("restored run %s of user '%s': %lu folders, %lu message files, %lu other files, "
	    "%llu bytes to %s\n", runname, r.man.user, r.folders, r.messages, r.files,
	    (unsigned long long)r.bytes, r.to);
	rc = EXIT_OK;
out:
	if (r.dirfd >= 0)
		close(r.dirfd);
	manifest_free(&r.man);
	if (r.ar != NULL)
		arch_close(r.ar);
	free(only);
	return rc;
}
