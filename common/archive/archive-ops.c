/* archive-ops.c: the whole-archive operations: reindex (the sidecar rebuilt
 * from the archive alone), verify (gzip, tar, SHA1s, names, sidecar) and
 * compact (a new archive of what the caller keeps, put in place by rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive-int.h"
#include "array.h"
#include "atomicfile.h"

int
arch_reindex(const char *path, struct chj_error *err)
{
	char *idx = arch_sidecar_path(path);
	struct stat st;
	int64_t end;
	int fd, rc = -1;

	if (idx == NULL)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		chj_error_set(err, CHJ_ERR_SYS, errno, "cannot open archive '%s'", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		chj_error_set(err, CHJ_ERR_INVALID, 0, "archive '%s' is not a regular file", path);
		goto out;
	}
	/* the writers' lock: no run is appended while the sidecar is rebuilt */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		chj_error_set(err, CHJ_ERR_REFUSED, 0, "archive '%s' is in use: another writer holds its lock",
		    path);
		goto out;
	}
	rc = sidecar_rebuild_file(fd, st.st_size, idx, 0, &end, err);
out:
	if (fd >= 0)
		close(fd);
	free(idx);
	return rc;
}

/* ---- verify ---- */

struct vctx {
	arch_problem_cb problem;
	void *ctx;
	int count;
};

static void
vsay(void *p, const char *fmt, ...)
{
	struct vctx *v = p;
	char msg[sizeof ((struct chj_error *)0)->msg];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* one line each, whatever the names hold */
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = '?';
	v->count++;
	if (v->problem != NULL)
		v->problem(v->ctx, 1, msg);
}

/* A finding that is not a problem ("note: ..."): told, not counted. */
static void __attribute__((format(printf, 2, 3)))
vnote(struct vctx *v, const char *fmt, ...)
{
	char msg[sizeof ((struct chj_error *)0)->msg];
	va_list ap;
	int n = snprintf(msg, sizeof msg, "note: ");

	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	if (v->problem != NULL)
		v->problem(v->ctx, 0, msg);
}

/* Offsets of the runs the sidecar knows (to resync after a broken member). */
static int64_t *
side_offsets(const char *idx, size_t *n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct chj_error ignored;
	int64_t *v = NULL, *nv;
	size_t cap = 0;

	*n = 0;
	if (access(idx, F_OK) < 0 || arch_open_db(&db, idx, SQLITE_OPEN_READONLY, &ignored) < 0)
		return NULL;
	if (sqlite3_prepare_v2(db, "SELECT offset FROM runs ORDER BY offset", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			if ((nv = array_grow(v, *n, &cap, sizeof *v, 64)) == NULL)
				break;
			v = nv;
			v[(*n)++] = sqlite3_column_int64(st, 0);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* The end of the last run the sidecar records, or -1. */
static int64_t
side_last_end(const char *idx)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct chj_error ignored;
	int64_t end = -1;

	if (access(idx, F_OK) < 0 || arch_open_db(&db, idx, SQLITE_OPEN_READONLY, &ignored) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT max(end) FROM runs", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		end = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return end;
}

static void
vquiet(void *p, const char *fmt, ...)
{
	struct vctx *v = p;

	(void)fmt;
	v->count++;
}

/* 1 when the bytes from the sidecar's last run end to the end of the file
 * are an interrupted run (a torn tail the next append cuts off), not
 * complete runs the sidecar has not recorded yet. */
static int
tail_is_interrupted_run(int fd, int64_t from, int64_t size)
{
	struct vctx q = { NULL, NULL, 0 };
	sqlite3 *tmp = NULL;
	struct chj_error ignored;
	int64_t end;

	if (arch_open_db(&tmp, ":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, &ignored) < 0 ||
	    sidecar_schema(tmp, &ignored) < 0) {
		sqlite3_close(tmp);
		return 0;
	}
	end = arch_scan_into(fd, from, size, tmp, 1, vquiet, &q, NULL, NULL, NULL, 0, &ignored);
	sqlite3_close(tmp);
	return end >= 0 && end < size;
}

/* Runs a query whose rows are (a, b) and says fmt for each. */
static void
vquery(sqlite3 *db, struct vctx *v, const char *sql, const char *fmt, int note)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		vsay(v, "sidecar check failed: %s", sqlite3_errmsg(db));
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 1);

		if (note)
			vnote(v, fmt, (long long)sqlite3_column_int64(st, 0), s ? s : "",
			    (long long)sqlite3_column_int64(st, 2));
		else
			vsay(v, fmt, (long long)sqlite3_column_int64(st, 0), s ? s : "",
			    (long long)sqlite3_column_int64(st, 2));
	}
	sqlite3_finalize(st);
}

/* Lexically: does target, relative to the directory of name, stay inside
 * the archive's root? */
static int
link_stays_inside(const char *name, const char *target)
{
	int depth = 0;
	const char *p, *c;
	size_t l;

	if (*target == '\0')
		return 1;               /* the empty link: a folder that is gone */
	if (*target == '/')
		return 0;
	for (p = name; (c = strchr(p, '/')) != NULL; p = c + 1)
		depth++;
	for (p = target; *p; p = c + 1) {
		c = strchr(p, '/');
		l = c ? (size_t)(c - p) : strlen(p);
		if (l == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (l > 0 && !(l == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return 0;
		if (c == NULL)
			break;
	}
	return 1;
}

/* What is wrong with the entries themselves: hashes, links, paths. */
static void
verify_entries(sqlite3 *db, struct vctx *v)
{
	sqlite3_stmt *st = NULL;

	vquery(db, v, "SELECT run, CAST(name AS TEXT), 0 FROM entries WHERE substr(name, 1, 6) = CAST('files/' AS BLOB)"
	    " AND (kind != 0 OR CAST(substr(name, 7) AS TEXT) IS NOT sha1) ORDER BY id",
	    "run %lld: '%s' does not hash to its name%.0lld", 0);
	vquery(db, v, "SELECT e.run, CAST(e.name AS TEXT), 0 FROM entries e, entries s WHERE s.kind = 1"
	    " AND substr(s.name, 1, 5) != CAST('imap/' AS BLOB)"
	    " AND substr(e.name, 1, length(s.name) + 1) = CAST(s.name || '/' AS BLOB) ORDER BY e.id",
	    "run %lld: '%s' lies below a symlink entry%.0lld", 0);
	if (sqlite3_prepare_v2(db, "SELECT run, CAST(name AS TEXT), CAST(target AS TEXT) FROM entries"
	    " WHERE kind = 1 ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 1);
		const char *t = (const char *)sqlite3_column_text(st, 2);

		if (n && t && !link_stays_inside(n, t))
			vsay(v, "run %lld: symlink '%.200s' points outside the archive ('%.200s')",
			    (long long)sqlite3_column_int64(st, 0), n, t);
	}
	sqlite3_finalize(st);
}

/* A "file:" URI naming path, read-only, for ATTACH. */
static char *
ro_uri(const char *path)
{
	size_t l = strlen(path), i, o = 0;
	char *u = malloc(3 * l + 32);

	if (u == NULL)
		return NULL;
	o += (size_t)sprintf(u, "file:");
	for (i = 0; i < l; i++) {
		unsigned char c = (unsigned char)path[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '/' || c == '.' || c == '_' || c == '-')
			u[o++] = (char)c;
		else
			o += (size_t)sprintf(u + o, "%%%02X", c);
	}
	strcpy(u + o, "?mode=ro");
	return u;
}

/* Compares the scan (main) with the sidecar file. */
static void
verify_sidecar(sqlite3 *db, const char *idx, struct vctx *v)
{
	sqlite3_stmt *st = NULL;
	char *uri;
	int ok;

	if (access(idx, F_OK) < 0) {
		/* derived data: readers rebuild it in memory, writers on disk */
		vnote(v, "sidecar '%s' is missing (reindex or the next backup writes it)", idx);
		return;
	}
	uri = ro_uri(idx);
	if (uri == NULL || sqlite3_prepare_v2(db, "ATTACH ?1 AS side", -1, &st, NULL) != SQLITE_OK) {
		free(uri);
		vsay(v, "sidecar '%s' cannot be read", idx);
		return;
	}
	sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
	ok = sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	free(uri);
	if (!ok || sqlite3_exec(db, "SELECT count(*) FROM side.runs, side.entries LIMIT 1", NULL, NULL, NULL)
	    != SQLITE_OK) {
		vnote(v, "sidecar '%s' is not a readable index: %s (reindex or the next backup "
		    "rewrites it)", idx, sqlite3_errmsg(db));
		sqlite3_exec(db, "DETACH side", NULL, NULL, NULL);
		return;
	}
	vquery(db, v, "SELECT s.id, s.name, 0 FROM main.runs s LEFT JOIN side.runs r ON r.id = s.id"
	    " WHERE r.id IS NULL ORDER BY s.id", "sidecar lacks run %lld '%s' (a crash before "
	    "the run was recorded: reindex or the next backup adds it)%.0lld", 1);
	vquery(db, v, "SELECT r.id, r.name, 0 FROM side.runs r LEFT JOIN main.runs s ON s.id = r.id"
	    " WHERE s.id IS NULL ORDER BY r.id", "sidecar has run %lld '%s', which the archive does not hold%.0lld", 0);
	vquery(db, v, "SELECT s.id, s.name, 0 FROM main.runs s JOIN side.runs r ON r.id = s.id"
	    " WHERE r.name IS NOT s.name OR r.time IS NOT s.time OR r.offset IS NOT s.offset"
	    " OR r.\"end\" IS NOT s.\"end\" OR r.entries IS NOT s.entries OR r.bytes IS NOT s.bytes"
	    " OR r.tail IS NOT s.tail ORDER BY s.id", "sidecar disagrees with the archive on run %lld '%s'%.0lld", 0);
	vquery(db, v, "SELECT s.run, r.name, count(*) FROM main.entries s JOIN side.runs r ON r.id = s.run"
	    " LEFT JOIN side.entries x ON x.run = s.run AND x.seq = s.seq"
	    " WHERE x.id IS NULL OR x.name IS NOT s.name OR x.kind IS NOT s.kind OR x.target IS NOT s.target"
	    " OR x.size IS NOT s.size OR x.mtime_ns IS NOT s.mtime_ns OR x.mode IS NOT s.mode"
	    " OR x.sha1 IS NOT s.sha1 OR x.member IS NOT s.member OR x.data_off IS NOT s.data_off"
	    " GROUP BY s.run ORDER BY s.run",
	    "sidecar disagrees with the archive on run %lld '%s': %lld entries differ", 0);
	vquery(db, v, "SELECT x.run, '', count(*) FROM side.entries x LEFT JOIN main.entries s"
	    " ON x.run = s.run AND x.seq = s.seq WHERE s.id IS NULL GROUP BY x.run ORDER BY x.run",
	    "sidecar lists entries of run %lld%s the archive does not hold: %lld", 0);
	sqlite3_exec(db, "DETACH side", NULL, NULL, NULL);
}

int
arch_verify(const char *path, arch_problem_cb problem, arch_entry_data_cb index_cb, void *ctx,
    struct chj_error *err)
{
	return arch_verify_ex(path, ARCH_VERIFY_TAIL_NOTE, problem, index_cb, ctx, err);
}

int
arch_verify_ex(const char *path, int flags, arch_problem_cb problem, arch_entry_data_cb index_cb,
    void *ctx, struct chj_error *err)
{
	struct vctx v = { problem, ctx, 0 };
	char *idx = arch_sidecar_path(path);
	int64_t *offs = NULL, end, side_end;
	size_t noffs = 0;
	sqlite3 *db = NULL;
	struct stat st;
	int fd, rc = -1;

	if (idx == NULL)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		chj_error_set(err, CHJ_ERR_SYS, errno, "cannot open archive '%s'", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		chj_error_set(err, CHJ_ERR_INVALID, 0, "archive '%s' is not a regular file", path);
		goto out;
	}
	offs = side_offsets(idx, &noffs);
	if (arch_open_db(&db, ":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, err) < 0 ||
	    sidecar_schema(db, err) < 0)
		goto out;
	/* A tail after the last run the sidecar recorded that is one
	 * interrupted run (a backup killed mid-append) is crash residue, not
	 * damage: the complete runs are all there and the next backup cuts it
	 * off. It is named as a note. Without a sidecar to say where the runs
	 * end, any tail is a problem. */
	side_end = (flags & ARCH_VERIFY_TAIL_NOTE) ? side_last_end(idx) : -1;
	if (side_end > 0 && side_end < st.st_size && tail_is_interrupted_run(fd, side_end, st.st_size)) {
		end = arch_scan_into(fd, 0, side_end, db, 1, vsay, &v, index_cb, ctx, offs, noffs, err);
		if (end < 0)
			goto out;
		if (end == side_end) {
			char note[256];

			snprintf(note, sizeof note, "note: %lld bytes after the last run (offset %lld) are an "
			    "interrupted run; the next backup cuts them off",
			    (long long)(st.st_size - end), (long long)end);
			if (problem != NULL)
				problem(ctx, 0, note);
		}
	} else {
		end = arch_scan_into(fd, 0, st.st_size, db, 1, vsay, &v, index_cb, ctx, offs, noffs, err);
		if (end < 0)
			goto out;
	}
	if (end < st.st_size && end != side_end)
		vsay(&v, "%lld bytes after the last complete run (offset %lld) are not a complete run",
		    (long long)(st.st_size - end), (long long)end);
	verify_entries(db, &v);
	verify_sidecar(db, idx, &v);
	rc = v.count;
out:
	sqlite3_close(db);
	if (fd >= 0)
		close(fd);
	free(offs);
	free(idx);
	return rc;
}

/* ---- compact ---- */

struct citem {
	int64_t id;
	struct arch_entry e;
	int drop;
	int rewrite;                /* keep() said ARCH_KEEP_REWRITE */
};

static int
citem_by_name(const void *x, const void *y)
{
	const struct citem *a = x, *b = y;
	int c = strcmp(a->e.name, b->e.name);

	return c != 0 ? c : (a->id < b->id ? -1 : a->id > b->id);
}

static int
citem_by_id(const void *x, const void *y)
{
	const struct citem *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

struct cctx {
	struct arch *to;
};

static int
compact_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e, struct arch_stream *s,
    struct chj_error *err)
{
	struct cctx *c = cbctx;

	(void)w;

	if (arch_run_add_stream(c->to, e, s) < 0) {
		*err = *arch_error(c->to);
		return -1;
	}
	return 0;
}

/* The entries of runs (lo, hi] that keep() accepts, newest copy per name,
 * manifests left out, in file order. */
static int
compact_pick(sqlite3 *db, int64_t lo, int64_t hi, arch_keep_cb keep, void *ctx, struct citem **out,
    size_t *n, struct chj_error *err)
{
	sqlite3_stmt *st = NULL;
	struct citem *v = NULL, *nv;
	size_t cnt = 0, cap = 0, i, j;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "SELECT id, run, name, kind, target, size, mtime_ns, mode, sha1 FROM entries"
	    " WHERE run > ?1 AND run <= ?2 AND substr(name, 1, 5) != CAST('runs/' AS BLOB) ORDER BY id",
	    -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct citem c;
		const unsigned char *sha = sqlite3_column_text(st, 8);
		int nl = sqlite3_column_bytes(st, 2);

		memset(&c, 0, sizeof c);
		c.id = sqlite3_column_int64(st, 0);
		c.e.run = sqlite3_column_int64(st, 1);
		c.e.name = strndup(sqlite3_column_blob(st, 2), (size_t)nl);
		c.e.kind = sqlite3_column_int(st, 3) == 1 ? ARCH_KIND_SYMLINK : ARCH_KIND_FILE;
		if (sqlite3_column_type(st, 4) != SQLITE_NULL)
			c.e.target = strndup(sqlite3_column_blob(st, 4) ? sqlite3_column_blob(st, 4) : "",
			    (size_t)sqlite3_column_bytes(st, 4));
		c.e.size = (uint64_t)sqlite3_column_int64(st, 5);
		c.e.mtime_ns = sqlite3_column_int64(st, 6);
		c.e.mode = (mode_t)sqlite3_column_int(st, 7);
		snprintf(c.e.sha1, sizeof c.e.sha1, "%s", sha ? (const char *)sha : "");
		if (c.e.name == NULL || (c.rewrite = keep(ctx, &c.e)) == 0) {
			arch_entry_free(&c.e);
			continue;
		}
		c.rewrite = c.rewrite == ARCH_KEEP_REWRITE;
		if ((nv = array_grow(v, cnt, &cap, sizeof *v, 256)) == NULL) {
			arch_entry_free(&c.e);
			goto out;
		}
		v = nv;
		v[cnt++] = c;
	}
	/* the newest accepted copy of each name wins */
	array_sort(v, cnt, sizeof *v, citem_by_name);
	for (i = 0; i + 1 < cnt; i++)
		if (strcmp(v[i].e.name, v[i + 1].e.name) == 0)
			v[i].drop = 1;
	for (i = j = 0; i < cnt; i++) {
		if (v[i].drop)
			arch_entry_free(&v[i].e);
		else
			v[j++] = v[i];
	}
	cnt = j;
	array_sort(v, cnt, sizeof *v, citem_by_id);
	rc = 0;
out:
	if (rc < 0) {
		chj_error_set(err, CHJ_ERR_ARCHIVE, 0, "compact: %s", db ? sqlite3_errmsg(db) : "out of memory");
		for (i = 0; i < cnt; i++)
			arch_entry_free(&v[i].e);
		free(v);
		v = NULL;
		cnt = 0;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = cnt;
	return rc;
}

/* Adds the entries keep() asked to rewrite to the open run of to, their
 * new names and data from rewrite(). */
static int
compact_rewrites(struct arch *to, const struct citem *v, size_t n, arch_rewrite_cb rewrite, void *ctx,
    struct chj_error *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *name = NULL, *buf = NULL;
		size_t len = 0;
		int r;

		if (!v[i].rewrite)
			continue;
		if (rewrite == NULL)
			return chj_error_set(err, CHJ_ERR_INVALID, 0, "compact: '%s' to rewrite, no rewriter",
			    v[i].e.name);
		if (rewrite(ctx, &v[i].e, &name, &buf, &len, err) < 0)
			return -1;
		r = arch_run_add_buf(to, name, buf, len, v[i].e.mtime_ns, v[i].e.mode);
		free(name);
		free(buf);
		if (r < 0)
			return arch_error_wrap(err, arch_error(to), CHJ_ERR_ARCHIVE, "compact: %s",
			    arch_error(to)->msg);
	}
	return 0;
}

/* Writes kept run k of from (with what moved into it) as one run of to. */
static int
compact_run(struct arch *from, struct arch *to, int64_t lo, const struct arch_run *k, arch_keep_cb keep,
    arch_rewrite_cb rewrite, void *ctx, struct chj_error *err)
{
	struct citem *v = NULL;
	struct arch_want *w = NULL;
	struct cctx c = { to };
	const struct chj_error *why;
	char *man = NULL;
	size_t n = 0, nw = 0, mlen, i;
	int rc = -1;

	if (compact_pick(from->db, lo, k->id, keep, ctx, &v, &n, err) < 0)
		return -1;
	w = calloc(n ? n : 1, sizeof *w);
	if (w == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (v[i].rewrite)
			continue;
		w[nw].run = v[i].e.run;
		w[nw++].name = v[i].e.name;
	}
	if (arch_read_manifest(from, k->id, &man, &mlen) < 0 || arch_run_begin(to) < 0)
		goto failed;
	if (compact_rewrites(to, v, n, rewrite, ctx, err) < 0) {
		arch_run_abort(to);
		goto out;
	}
	if (arch_fetch(from, w, nw, compact_cb, &c) < 0 ||
	    arch_run_commit_as(to, man, mlen, k->name, k->time, NULL, 0) < 0)
		goto failed;
	rc = 0;
	goto out;
failed:
	why = from->err.code != CHJ_OK ? &from->err : &to->err;
	arch_error_wrap(err, why, CHJ_ERR_ARCHIVE, "compact: %s", why->msg);
	arch_run_abort(to);
out:
	for (i = 0; i < n; i++)
		arch_entry_free(&v[i].e);
	free(v);
	free(w);
	free(man);
	return rc;
}

static void
unlink_sidecar(const char *idx)
{
	size_t l = strlen(idx);
	char *j = malloc(l + 16);

	unlink(idx);
	if (j != NULL) {
		snprintf(j, l + 16, "%s-journal", idx);
		unlink(j);
		free(j);
	}
}

int
arch_compact(const char *path, const int64_t *keep_runs, size_t nkeep, arch_keep_cb keep, void *ctx,
    struct chj_error *err)
{
	return arch_compact_ex(path, keep_runs, nkeep, keep, NULL, ctx, err);
}

int
arch_compact_ex(const char *path, const int64_t *keep_runs, size_t nkeep, arch_keep_cb keep,
    arch_rewrite_cb rewrite, void *ctx, struct chj_error *err)
{
	struct arch *from = NULL, *to = NULL;
	struct arch_run *runs = NULL;
	struct chj_error e;
	size_t nruns = 0, i, r = 0;
	char *tmp = NULL, *tidx = NULL;
	int64_t lo = 0;
	int rc = -1;

	if (arch_open(&from, path, ARCH_APPEND, err) < 0)
		return -1;
	if (arch_runs(from, &runs, &nruns) < 0) {
		*err = from->err;
		goto out;
	}
	tmp = malloc(strlen(path) + 16);
	if (tmp == NULL)
		goto oom;
	sprintf(tmp, "%s.compact", path);
	tidx = arch_sidecar_path(tmp);
	if (tidx == NULL)
		goto oom;
	unlink(tmp);
	unlink_sidecar(tidx);
	if (arch_open(&to, tmp, ARCH_APPEND, err) < 0)
		goto out;
	for (i = 0; i < nkeep; i++) {
		if (i > 0 && keep_runs[i] <= keep_runs[i - 1]) {
			chj_error_set(err, CHJ_ERR_INVALID, 0, "compact: runs to keep are not ascending");
			goto out;
		}
		while (r < nruns && runs[r].id != keep_runs[i])
			r++;
		if (r == nruns) {
			chj_error_set(err, CHJ_ERR_NOTFOUND, 0, "compact: archive '%s' has no run %lld", path,
			    (long long)keep_runs[i]);
			goto out;
		}
		if (compact_run(from, to, lo, &runs[r], keep, rewrite, ctx, err) < 0)
			goto out;
		lo = runs[r].id;
	}
	if (fsync(to->fd) < 0 || arch_close(to) < 0) {
		to = NULL;
		chj_error_set(err, CHJ_ERR_SYS, errno, "compact: cannot write '%s'", tmp);
		goto out;
	}
	to = NULL;
	/* The old sidecar goes first: a crash now leaves the old archive
	 * without one (rebuilt at the next open), never the new archive with
	 * the old sidecar. */
	unlink_sidecar(from->idx);
	if (atomicfile_publish(tmp, path, &e) < 0) {
		arch_error_wrap(err, &e, CHJ_ERR_ARCHIVE, "compact: %s", e.msg);
		goto out;
	}
	if (atomicfile_publish(tidx, from->idx, &e) < 0) {
		arch_error_wrap(err, &e, CHJ_ERR_ARCHIVE, "compact: %s (reindex rebuilds it)", e.msg);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
out:
	if (to != NULL) {
		arch_close(to);
		unlink(tmp);
		unlink_sidecar(tidx);
	}
	arch_close(from);
	free(runs);
	free(tmp);
	free(tidx);
	return rc;
}
