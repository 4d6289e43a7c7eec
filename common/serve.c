/* serve.c: the answering side of the serve protocol (proto.h). Each request
 * is checked (its fields against their limits, its consumer, each mailbox
 * against the lists this server gave, each path against the Cyrus
 * directories) and then answered by calling the local source, whose output
 * is streamed back as frames. The global annotations.db is read only by
 * the local source, under Cyrus's lock, and only its folders' entries are
 * sent. Nothing the client names is opened unless it
 * lies below a partition, the config directory's user/ or the sieve
 * directory, through no symbolic link. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "path.h"
#include "proto.h"

#define SERVE_SPLIT (768 * 1024)    /* a reply frame is closed once this big */

/* a frame just under SERVE_SPLIT takes one more annotation */
_Static_assert(SERVE_SPLIT + PROTO_ANNOT_INLINE + 3 * (PROTO_PATH_MAX + 4) + 64 < WIRE_FRAME_MAX,
    "an annotation fits the frame it is added to");

struct ulist {
	char *user;
	struct cyrus_mboxlist l;
};

struct server {
	struct wire *w;
	const struct serve_opts *o;
	const struct cyrus_conf *cc;
	char **allowed;                 /* real paths a fetch may read below */
	size_t nallowed;
	struct cyrus_mboxlist all;      /* the last list of every user's mailboxes */
	const struct cyrus_mailbox **byname;    /* all's, sorted by name */
	int have_all;
	struct ulist *ones;             /* every list of one user's, a user once */
	size_t nones, capones;
	const struct cyrus_mailbox **onesby;    /* the mailboxes of ones[0..nindexed),
	                                         * sorted by name */
	size_t nonesby, nindexed;
	char run_id[CONSUMER_RUN_ID_SIZE];  /* a run begun and not ended, or "" */
};

/* ---- answering ---- */

static void
send_err(struct server *sv, const struct chj_error *e)
{
	wire_start(sv->w, PROTO_ERR);
	wire_put_u64(sv->w, (uint64_t)e->code);
	wire_put_u64(sv->w, (uint64_t)(e->errnum > 0 ? e->errnum : 0));
	wire_put_str(sv->w, e->msg);
	wire_end(sv->w);
}

/* Answers PROTO_ERR (CHJ_ERR_REFUSED) and tells the line. Returns 0: the
 * connection goes on. */
static int __attribute__((format(printf, 2, 3)))
refuse(struct server *sv, const char *fmt, ...)
{
	struct chj_error e;
	va_list ap;

	memset(&e, 0, sizeof e);
	e.code = CHJ_ERR_REFUSED;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	if (sv->o->refused != NULL)
		sv->o->refused(sv->o->ctx, e.msg);
	send_err(sv, &e);
	return 0;
}

static int
send_ok(struct server *sv)
{
	wire_start(sv->w, PROTO_OK);
	return wire_end(sv->w);
}

/* The local source failed: its error goes back; the connection goes on. */
static int
source_failed(struct server *sv)
{
	send_err(sv, &sv->o->local->err);
	return 0;
}

static void
note_to_client(void *ctx, const char *line)
{
	struct server *sv = ctx;

	wire_start(sv->w, PROTO_NOTE);
	wire_put(sv->w, line, strnlen(line, PROTO_LINE_MAX));
	wire_end(sv->w);
}

/* Sends len bytes as DATA frames. */
static void
send_data(struct server *sv, const char *buf, size_t len)
{
	while (len > 0) {
		size_t n = len < WIRE_DATA_MAX ? len : WIRE_DATA_MAX;

		wire_start(sv->w, PROTO_DATA);
		wire_put(sv->w, buf, n);
		wire_end(sv->w);
		buf += n;
		len -= n;
	}
}

void
proto_put_stat(struct wire *w, const struct source_stat *st)
{
	wire_put_u64(w, (uint64_t)st->err);
	wire_put_u64(w, (uint64_t)st->kind);
	wire_put_u64(w, st->size);
	wire_put_u64(w, (uint64_t)st->mtime_ns);
	wire_put_u64(w, st->mode);
}

int
proto_get_stat(struct wire *w, size_t i, struct source_stat *st)
{
	uint64_t v[PROTO_STAT_FIELDS];
	size_t k;

	for (k = 0; k < PROTO_STAT_FIELDS; k++)
		if (wire_u64(w, i + k, "a stat field", &v[k]) < 0)
			return -1;
	if (v[0] > INT_MAX || v[1] > SOURCE_OTHER || v[4] > 07777)
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed stat");
	st->err = (int)v[0];
	st->kind = (int)v[1];
	st->size = v[2];
	st->mtime_ns = (int64_t)v[3];
	st->mode = (uint32_t)v[4];
	return 0;
}

/* ---- the consumer ---- */

/* The consumer of a request: the one serve is for, else refused (NULL). */
static const char *
own_consumer(struct server *sv, size_t i)
{
	const char *c = wire_str(sv->w, i, CONSUMER_NAME_MAX, "consumer");

	if (c == NULL)
		return NULL;
	if (strcmp(c, sv->o->consumer) != 0) {
		refuse(sv, "consumer '%s' refused: this serve answers for '%s' only", c, sv->o->consumer);
		return NULL;
	}
	return c;
}

static int
do_begin(struct server *sv)
{
	struct source_run run;
	const char *c;
	uint64_t flags;
	size_t i;

	if (wire_nfields(sv->w, 2, 2, "begin") < 0 || wire_u64(sv->w, 1, "flags", &flags) < 0)
		return -1;
	if ((c = own_consumer(sv, 0)) == NULL)
		return sv->w->err.code == CHJ_OK ? 0 : -1;
	if (source_begin(sv->o->local, c, (int)(flags & (SOURCE_BEGIN_REPLACE | SOURCE_BEGIN_CYRUS |
	    SOURCE_BEGIN_IDLE_COMMIT)), &run) < 0) {
		source_run_free(&run);
		return source_failed(sv);
	}
	/* a session's run ends with the connection; another stays open for a
	 * later commit (begin, list, commit --from: one connection each) */
	if (!run.committed && (flags & SOURCE_BEGIN_SESSION))
		snprintf(sv->run_id, sizeof sv->run_id, "%s", run.run_id);
	wire_start(sv->w, PROTO_RUN);
	wire_put_str(sv->w, run.run_id);
	wire_put_str(sv->w, run.full_reason);
	wire_put_u64(sv->w, (uint64_t)run.seq);
	wire_put_u64(sv->w, (uint64_t)run.committed);
	/* a fifth field only for a client that reads it */
	if (flags & PROTO_BEGIN_GLOBALS)
		wire_put_u64(sv->w, run.cyrus_annots ? PROTO_GLOBAL_ANNOTS : 0);
	wire_end(sv->w);
	for (i = 0; i < run.users.n; i++) {
		if (i == 0 || wire_frame_size(sv->w) > SERVE_SPLIT) {
			if (i > 0)
				wire_end(sv->w);
			wire_start(sv->w, PROTO_USERS);
		}
		wire_put_str(sv->w, run.users.v[i]);
	}
	if (run.users.n > 0)
		wire_end(sv->w);
	source_run_free(&run);
	return send_ok(sv);
}

static int
do_end(struct server *sv)
{
	const char *c, *id;
	uint64_t commit;

	if (wire_nfields(sv->w, 3, 3, "end") < 0 || wire_u64(sv->w, 2, "commit", &commit) < 0 ||
	    (id = wire_str(sv->w, 1, CONSUMER_RUN_ID_SIZE, "run id")) == NULL)
		return -1;
	if ((c = own_consumer(sv, 0)) == NULL)
		return sv->w->err.code == CHJ_OK ? 0 : -1;
	if (source_end(sv->o->local, c, id[0] ? id : NULL, commit != 0) < 0)
		return source_failed(sv);
	if (strcmp(id, sv->run_id) == 0 || id[0] == '\0')
		sv->run_id[0] = '\0';
	return send_ok(sv);
}

static ssize_t
list_write(void *cookie, const char *buf, size_t len)
{
	send_data(cookie, buf, len);
	return (ssize_t)len;
}

static int
do_list(struct server *sv)
{
	cookie_io_functions_t io = { NULL, list_write, NULL, NULL };
	const char *c, *id;
	uint64_t what;
	FILE *out;
	int rc;

	if (wire_nfields(sv->w, 3, 3, "list") < 0 || wire_u64(sv->w, 2, "what", &what) < 0 ||
	    (id = wire_str(sv->w, 1, CONSUMER_RUN_ID_SIZE, "run id")) == NULL)
		return -1;
	if ((c = own_consumer(sv, 0)) == NULL)
		return sv->w->err.code == CHJ_OK ? 0 : -1;
	if (what >= SOURCE_LIST_MAX)
		return refuse(sv, "list: unknown kind %llu", (unsigned long long)what);
	/* the consumer name and run id live in the receive buffer, which
	 * the answer does not touch */
	if ((out = fopencookie(sv, "w", io)) == NULL)
		return chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
	setvbuf(out, NULL, _IOFBF, WIRE_DATA_MAX);
	rc = source_list(sv->o->local, c, id[0] ? id : NULL, (enum source_list_what)what, out);
	fclose(out);
	if (rc < 0)
		return source_failed(sv);
	return send_ok(sv);
}

/* ---- Cyrus ---- */

/* Mailboxes by owner, then name, as the backup groups them. */
static int
cmp_byuser(const void *a, const void *b)
{
	const struct cyrus_mailbox *m = a, *n = b;
	int c = strcmp(m->user ? m->user : "", n->user ? n->user : "");

	return c != 0 ? c : strcmp(m->name, n->name);
}

static int
cmp_byname(const void *a, const void *b)
{
	const struct cyrus_mailbox *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static void
send_mailboxes(struct server *sv, const struct cyrus_mboxlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct cyrus_mailbox *m = &l->v[i];

		if (i == 0 || wire_frame_size(sv->w) > SERVE_SPLIT) {
			if (i > 0)
				wire_end(sv->w);
			wire_start(sv->w, PROTO_MBOX);
		}
		wire_put_str(sv->w, m->name);
		wire_put_str(sv->w, m->uniqueid);
		wire_put_str(sv->w, m->partition);
		wire_put_str(sv->w, m->mbtype);
		wire_put_str(sv->w, m->path);
		wire_put_str(sv->w, m->relpath);
		wire_put_str(sv->w, m->user);
		wire_put_u64(sv->w, (uint64_t)(m->deleted != 0));
	}
	if (l->n > 0)
		wire_end(sv->w);
}

/* The kept list of user's mailboxes, or NULL. */
static struct ulist *
ulist_of(struct server *sv, const char *user)
{
	size_t i;

	/* the newest first: a backup asks for a user's files after its list */
	for (i = sv->nones; i-- > 0; )
		if (strcmp(sv->ones[i].user, user) == 0)
			return &sv->ones[i];
	return NULL;
}

/* Keeps l (taken, freed on failure) as user's mailboxes, for the meta
 * requests (a backup lists its users first, then reads each) and the
 * user's files. */
static int
keep_one(struct server *sv, const char *user, struct cyrus_mboxlist *l)
{
	struct ulist *u = ulist_of(sv, user);

	if (u == NULL && sv->nones == sv->capones) {
		size_t nc = sv->capones ? sv->capones * 2 : 16;
		struct ulist *nv = realloc(sv->ones, nc * sizeof *nv);

		if (nv == NULL)
			goto oom;
		sv->ones = nv;
		sv->capones = nc;
	}
	if (u == NULL) {
		u = &sv->ones[sv->nones];
		if ((u->user = strdup(user)) == NULL)
			goto oom;
		memset(&u->l, 0, sizeof u->l);
		sv->nones++;
	} else if ((size_t)(u - sv->ones) < sv->nindexed) {
		/* the index names the list replaced: made anew when next used */
		free(sv->onesby);
		sv->onesby = NULL;
		sv->nonesby = sv->nindexed = 0;
	}
	cyrus_mboxlist_free(&u->l);
	u->l = *l;
	memset(l, 0, sizeof *l);
	return 0;
oom:
	cyrus_mboxlist_free(l);
	return chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
}

static int
do_mailboxes(struct server *sv)
{
	struct cyrus_mboxlist l;
	const char *user;
	uint64_t has;
	size_t i;

	if (wire_nfields(sv->w, 2, 2, "mailboxes") < 0 || wire_u64(sv->w, 0, "has_user", &has) < 0 ||
	    (user = wire_str(sv->w, 1, PROTO_PATH_MAX, "user")) == NULL)
		return -1;
	if (has && (user[0] == '\0' || strchr(user, '/') != NULL))
		return refuse(sv, "user name '%s' refused", user);
	if (source_mailboxes(sv->o->local, has ? user : NULL, &l) < 0) {
		cyrus_mboxlist_free(&l);
		return source_failed(sv);
	}
	send_mailboxes(sv, &l);
	/* kept: the meta requests may name only these */
	if (has) {
		if (keep_one(sv, user, &l) < 0)
			return -1;
	} else {
		const struct cyrus_mailbox **v = l.n ? calloc(l.n, sizeof *v) : NULL;

		if (l.n > 0 && v == NULL) {
			cyrus_mboxlist_free(&l);
			return chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		qsort(l.v, l.n, sizeof *l.v, cmp_byuser);
		for (i = 0; i < l.n; i++)
			v[i] = &l.v[i];
		qsort(v, l.n, sizeof *v, cmp_byname);
		cyrus_mboxlist_free(&sv->all);
		free(sv->byname);
		sv->all = l;
		sv->byname = v;
		sv->have_all = 1;
	}
	return send_ok(sv);
}

/* Adds the lists kept since the index was made to it: their mailboxes
 * sorted, merged with those indexed (once per batch of lists, not per
 * list: a backup lists its users, then reads them). 0, or -1 with w->err. */
static int
index_ones(struct server *sv)
{
	const struct cyrus_mailbox **add, **v;
	size_t n = 0, i, j, k, a, b;

	for (i = sv->nindexed; i < sv->nones; i++)
		n += sv->ones[i].l.n;
	if ((add = calloc(n + 1, sizeof *add)) == NULL ||
	    (v = calloc(sv->nonesby + n + 1, sizeof *v)) == NULL) {
		free(add);
		return chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	for (i = sv->nindexed, k = 0; i < sv->nones; i++)
		for (j = 0; j < sv->ones[i].l.n; j++)
			add[k++] = &sv->ones[i].l.v[j];
	qsort(add, n, sizeof *add, cmp_byname);
	for (a = b = k = 0; a < sv->nonesby || b < n; )
		v[k++] = b == n || (a < sv->nonesby && cmp_byname(&sv->onesby[a], &add[b]) <= 0) ?
		    sv->onesby[a++] : add[b++];
	free(add);
	free(sv->onesby);
	sv->onesby = v;
	sv->nonesby = k;
	sv->nindexed = sv->nones;
	return 0;
}

/* A mailbox this server listed, by name; NULL when none (or w->err set:
 * out of memory). */
static const struct cyrus_mailbox *
listed(struct server *sv, const char *name)
{
	struct cyrus_mailbox key;
	const struct cyrus_mailbox *kp = &key, **hit = NULL;

	if (sv->nindexed < sv->nones && index_ones(sv) < 0)
		return NULL;
	key.name = (char *)name;
	if (sv->nonesby > 0)
		hit = bsearch(&kp, sv->onesby, sv->nonesby, sizeof *sv->onesby, cmp_byname);
	if (hit == NULL && sv->have_all && sv->all.n > 0)
		hit = bsearch(&kp, sv->byname, sv->all.n, sizeof *sv->byname, cmp_byname);
	return hit != NULL ? *hit : NULL;
}

static int
do_meta_stat(struct server *sv)
{
	const struct cyrus_mailbox **v = NULL;
	struct source_stat *st = NULL;
	size_t n = sv->w->nf, i;
	int rc = -1;

	if (n == 0)
		return send_ok(sv);
	v = calloc(n, sizeof *v);
	st = calloc(n * CYRUS_NMETA, sizeof *st);
	if (v == NULL || st == NULL) {
		chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *name = wire_str(sv->w, i, PROTO_PATH_MAX, "mailbox name");

		if (name == NULL)
			goto out;
		if ((v[i] = listed(sv, name)) == NULL) {
			if (sv->w->err.code == CHJ_OK)
				rc = refuse(sv, "mailbox '%s' refused: not one this serve listed", name);
			goto out;
		}
	}
	if (source_meta_stat(sv->o->local, v, n, st) < 0) {
		rc = source_failed(sv);
		goto out;
	}
	for (i = 0; i < n * CYRUS_NMETA; i++) {
		if (i == 0 || wire_frame_size(sv->w) > SERVE_SPLIT) {
			if (i > 0)
				wire_end(sv->w);
			wire_start(sv->w, PROTO_STAT);
		}
		proto_put_stat(sv->w, &st[i]);
	}
	wire_end(sv->w);
	rc = send_ok(sv);
out:
	free(v);
	free(st);
	return rc;
}

static int
do_meta_read(struct server *sv)
{
	const struct cyrus_mailbox *m;
	struct source_meta meta;
	const char *name;
	size_t k;

	if (wire_nfields(sv->w, 1, 1, "meta read") < 0 ||
	    (name = wire_str(sv->w, 0, PROTO_PATH_MAX, "mailbox name")) == NULL)
		return -1;
	if ((m = listed(sv, name)) == NULL)
		return sv->w->err.code != CHJ_OK ? -1 :
		    refuse(sv, "mailbox '%s' refused: not one this serve listed", name);
	if (source_meta_read(sv->o->local, m, &meta) < 0)
		return source_failed(sv);
	for (k = 0; k < CYRUS_NMETA; k++) {
		wire_start(sv->w, PROTO_META);
		wire_put_u64(sv->w, k);
		wire_put_u64(sv->w, meta.buf[k] != NULL);
		wire_put_u64(sv->w, meta.buf[k] ? meta.len[k] : 0);
		proto_put_stat(sv->w, &meta.st[k]);
		wire_end(sv->w);
		if (meta.buf[k] != NULL)
			send_data(sv, meta.buf[k], meta.len[k]);
	}
	source_meta_free(&meta);
	return send_ok(sv);
}

/* Points view at user's mailboxes in the list of every user's (sorted by
 * owner): not to be freed. */
static void
user_view(struct server *sv, const char *user, struct cyrus_mboxlist *view)
{
	size_t lo = 0, hi = sv->all.n, end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *u = sv->all.v[mid].user ? sv->all.v[mid].user : "";

		if (strcmp(u, user) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < sv->all.n && sv->all.v[end].user != NULL &&
	    strcmp(sv->all.v[end].user, user) == 0; end++)
		;
	memset(view, 0, sizeof *view);
	view->v = sv->all.v + lo;
	view->n = end - lo;
}

static int
do_user_files(struct server *sv)
{
	struct cyrus_mboxlist ml;
	struct source_user_file *v = NULL;
	const struct ulist *u;
	const char *user;
	size_t n = 0, i;

	if (wire_nfields(sv->w, 1, 1, "user files") < 0 ||
	    (user = wire_str(sv->w, 0, PROTO_PATH_MAX, "user")) == NULL)
		return -1;
	if ((u = ulist_of(sv, user)) != NULL) {
		ml = u->l;
	} else if (sv->have_all) {
		user_view(sv, user, &ml);
	} else {
		return refuse(sv, "user files of '%s' refused: ask for the user's mailboxes first", user);
	}
	if (source_user_files(sv->o->local, user, &ml, &v, &n) < 0)
		return source_failed(sv);
	for (i = 0; i < n; i++) {
		wire_start(sv->w, PROTO_UFILE);
		wire_put_str(sv->w, v[i].path);
		wire_put_str(sv->w, v[i].rel);
		wire_put_u64(sv->w, v[i].target != NULL);
		wire_put_str(sv->w, v[i].target);
		proto_put_stat(sv->w, &v[i].st);
		wire_end(sv->w);
	}
	source_user_files_free(v, n);
	return send_ok(sv);
}

/* 1 when path may be read: absolute, no "." or ".." part, its directory
 * (resolved) below an allowed directory, no symbolic link on the way. */
static int
path_allowed(struct server *sv, const char *path)
{
	char *dir, *real, *slash;
	const char *p;
	size_t i;
	int ok = 0;

	if (path[0] != '/')
		return 0;
	for (p = path; *p; ) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
	}
	if ((dir = strdup(path)) == NULL)
		return 0;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	real = realpath(dir, NULL);
	/* the resolved directory must be the one named: no link on the way */
	if (real != NULL && strcmp(real, dir) == 0) {
		for (i = 0; i < sv->nallowed && !ok; i++)
			ok = path_is_under(real, sv->allowed[i]);
	}
	free(real);
	free(dir);
	return ok;
}

struct fetch_state {
	struct server *sv;
	char buf[WIRE_DATA_MAX];
};

/* Sends one file: FILE, its bytes as DATA, or FERR when reading failed. */
static int
send_file(void *ctx, struct source_file *f)
{
	struct fetch_state *fs = ctx;
	struct server *sv = fs->sv;
	uint64_t left;

	wire_start(sv->w, PROTO_FILE);
	wire_put_u64(sv->w, f->index);
	proto_put_stat(sv->w, &f->st);
	if (wire_end(sv->w) < 0 && sv->w->err.code == CHJ_ERR_PEER)
		return -1;
	if (f->st.err != 0)
		return 0;
	for (left = f->st.size; left > 0; ) {
		struct chj_error err;
		ssize_t k = f->read(f, fs->buf, left < sizeof fs->buf ? (size_t)left : sizeof fs->buf,
		    &err);

		if (k <= 0) {
			/* the text only: an error's message fits a protocol line */
			_Static_assert(sizeof err.msg <= PROTO_LINE_MAX, "an error message is a line");
			wire_start(sv->w, PROTO_FERR);
			wire_put_str(sv->w, k < 0 ? err.msg : "the file ended early");
			wire_end(sv->w);
			break;
		}
		wire_start(sv->w, PROTO_DATA);
		wire_put(sv->w, fs->buf, (size_t)k);
		if (wire_end(sv->w) < 0 && sv->w->err.code == CHJ_ERR_PEER)
			return -1;
		left -= (uint64_t)k;
	}
	return 0;
}

static int
do_fetch(struct server *sv)
{
	struct fetch_state *fs;
	const char **paths;
	size_t n = sv->w->nf, i;
	int rc = -1;

	if (n == 0)
		return send_ok(sv);
	if ((paths = calloc(n, sizeof *paths)) == NULL)
		return chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
	for (i = 0; i < n; i++) {
		if ((paths[i] = wire_str(sv->w, i, PROTO_PATH_MAX, "path")) == NULL)
			goto out;
		if (!path_allowed(sv, paths[i])) {
			rc = refuse(sv, "path '%s' refused: not below a Cyrus partition, the config "
			    "directory's user/ or the sieve directory", paths[i]);
			goto out;
		}
	}
	if ((fs = malloc(sizeof *fs)) == NULL) {
		chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	fs->sv = sv;
	if (source_fetch(sv->o->local, paths, n, send_file, fs) < 0) {
		free(fs);
		if (sv->w->err.code == CHJ_ERR_PEER)
			goto out;
		rc = source_failed(sv);
		goto out;
	}
	free(fs);
	rc = send_ok(sv);
out:
	free(paths);
	return rc;
}

/* ---- folder annotations ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sends the annotations of a: PROTO_ANNOT frames of PROTO_ANNOT_FIELDS
 * each, a long value alone at the end of its frame and its bytes after. */
static void
send_annots(struct server *sv, const struct cyrus_annots *a)
{
	size_t i;
	int open = 0;

	for (i = 0; i < a->n; i++) {
		const struct cyrus_annot *an = &a->v[i];
		int inline_ = an->vlen <= PROTO_ANNOT_INLINE;

		if (open && wire_frame_size(sv->w) > SERVE_SPLIT) {
			wire_end(sv->w);
			open = 0;
		}
		if (!open) {
			wire_start(sv->w, PROTO_ANNOT);
			open = 1;
		}
		wire_put_str(sv->w, an->mboxid);
		wire_put_str(sv->w, an->entry);
		wire_put_str(sv->w, an->userid);
		wire_put_u64(sv->w, an->modseq);
		wire_put_u64(sv->w, an->vlen);
		wire_put(sv->w, an->value, inline_ ? an->vlen : 0);
		if (!inline_) {
			wire_end(sv->w);
			open = 0;
			send_data(sv, an->value, an->vlen);
		}
	}
	if (open)
		wire_end(sv->w);
}

/* The folder annotations of every folder (all) or of the uniqueids named,
 * as annotations.db holds them now (read under Cyrus's reader lock): the
 * entries of folders only, never the server's. */
static int
do_folder_annots(struct server *sv)
{
	struct cyrus_annots a;
	const char **ids = NULL;
	size_t n, i;
	uint64_t all;
	int rc = -1;

	/* a field takes 4 bytes at least */
	if (wire_nfields(sv->w, 1, PROTO_REQUEST_MAX / 4, "folder annotations") < 0 ||
	    wire_u64(sv->w, 0, "all", &all) < 0)
		return -1;
	n = sv->w->nf - 1;
	if (all && n > 0)
		return refuse(sv, "folder annotations: all folders and %zu named", n);
	if (n > 0 && (ids = calloc(n, sizeof *ids)) == NULL)
		return chj_error_set(&sv->w->err, CHJ_ERR_NOMEM, 0, "out of memory");
	for (i = 0; i < n; i++)
		if ((ids[i] = wire_str(sv->w, i + 1, PROTO_PATH_MAX, "uniqueid")) == NULL)
			goto out;
	if (n > 0)
		qsort(ids, n, sizeof *ids, cmp_str);
	/* none named and not all: an empty answer */
	if (!all && n == 0) {
		rc = send_ok(sv);
		goto out;
	}
	if (source_folder_annots(sv->o->local, all ? NULL : ids, n, &a) < 0) {
		cyrus_annots_free(&a);
		rc = source_failed(sv);
		goto out;
	}
	send_annots(sv, &a);
	cyrus_annots_free(&a);
	rc = send_ok(sv);
out:
	free(ids);
	return rc;
}

/* ---- the loop ---- */

static int
do_hello(struct server *sv)
{
	const char *magic;

	if (wire_nfields(sv->w, 1, 1, "hello") < 0 ||
	    (magic = wire_str(sv->w, 0, 64, "magic")) == NULL)
		return -1;
	if (strcmp(magic, PROTO_MAGIC) != 0)
		return chj_error_set(&sv->w->err, CHJ_ERR_PROTOCOL, 0, "protocol '%s' refused: this "
		    "serve speaks '%s'", magic, PROTO_MAGIC);
	wire_start(sv->w, PROTO_HELLO);
	wire_put_str(sv->w, PROTO_MAGIC);
	wire_put_str(sv->w, sv->o->host);
	wire_put_str(sv->w, PROTO_CAPS);
	return wire_end(sv->w);
}

/* The real directories a fetch may read below. */
static int
allow_dirs(struct server *sv, struct chj_error *e)
{
	size_t n = sv->cc->npartitions + 2, i;
	char *p;

	if ((sv->allowed = calloc(n, sizeof *sv->allowed)) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	for (i = 0; i < n; i++) {
		char *want = NULL;

		if (i < sv->cc->npartitions)
			want = strdup(sv->cc->partitions[i].path);
		else if (i == sv->cc->npartitions && sv->cc->configdirectory != NULL)
			want = path_join(sv->cc->configdirectory, "user");
		else if (i == sv->cc->npartitions + 1 && sv->cc->sievedir != NULL)
			want = strdup(sv->cc->sievedir);
		if (want == NULL)
			continue;
		p = realpath(want, NULL);
		free(want);
		if (p != NULL)
			sv->allowed[sv->nallowed++] = p;
	}
	return 0;
}

int
serve_run(struct wire *w, const struct serve_opts *o, struct chj_error *e)
{
	struct server sv;
	source_note_fn old_note = o->local->note;
	void *old_ctx = o->local->note_ctx;
	int rc = -1, hello = 0;
	size_t i;

	memset(&sv, 0, sizeof sv);
	sv.w = w;
	sv.o = o;
	/* without Cyrus: the consumer's run and list only, no file is sent */
	sv.cc = source_local_cyrus(o->local);
	if (sv.cc != NULL && allow_dirs(&sv, e) < 0)
		goto out;
	o->local->note = note_to_client;
	o->local->note_ctx = &sv;
	for (;;) {
		struct wire_msg m;
		int r = wire_recv(w, &m);

		if (r == 1) {
			rc = 0;
			break;
		}
		if (r < 0)
			goto failed;
		chj_error_clear(&w->err);
		if (!hello && m.type != PROTO_HELLO) {
			chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "request of type %d before hello", m.type);
			goto failed;
		}
		switch (m.type) {
		case PROTO_HELLO:
			r = do_hello(&sv);
			hello = 1;
			break;
		case PROTO_BEGIN:
			r = do_begin(&sv);
			break;
		case PROTO_END:
			r = do_end(&sv);
			break;
		case PROTO_LIST:
			r = do_list(&sv);
			break;
		case PROTO_MAILBOXES:
			r = do_mailboxes(&sv);
			break;
		case PROTO_META_STAT:
			r = do_meta_stat(&sv);
			break;
		case PROTO_META_READ:
			r = do_meta_read(&sv);
			break;
		case PROTO_USER_FILES:
			r = do_user_files(&sv);
			break;
		case PROTO_FETCH:
			r = do_fetch(&sv);
			break;
		case PROTO_FOLDER_ANNOTS:
			r = do_folder_annots(&sv);
			break;
		default:
			r = refuse(&sv, "request of type %d refused: serve only reads", m.type);
			break;
		}
		if (r < 0)
			goto failed;
		if (wire_flush(w) < 0)
			goto failed;
	}
	goto out;
failed:
	*e = w->err;
	if (e->code == CHJ_OK)
		chj_error_set(e, CHJ_ERR_PROTOCOL, 0, "request failed");
	if (e->code != CHJ_ERR_PEER) {
		send_err(&sv, e);
		wire_flush(w);
	}
out:
	if (sv.run_id[0] != '\0') {
		/* the client went away in the middle of a run: its window stays */
		o->local->note = NULL;
		source_end(o->local, o->consumer, sv.run_id, 0);
	}
	o->local->note = old_note;
	o->local->note_ctx = old_ctx;
	for (i = 0; i < sv.nallowed; i++)
		free(sv.allowed[i]);
	free(sv.allowed);
	cyrus_mboxlist_free(&sv.all);
	free(sv.byname);
	for (i = 0; i < sv.nones; i++) {
		free(sv.ones[i].user);
		cyrus_mboxlist_free(&sv.ones[i].l);
	}
	free(sv.ones);
	free(sv.onesby);
	return rc;
}
