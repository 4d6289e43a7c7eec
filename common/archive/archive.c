/* archive.c: the per-user archive handle: opening (lock, torn-tail repair,
 * sidecar check and rebuild), appending a run, the sidecar queries and
 * reading entries' data back, member by member in file order. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive-int.h"
#include "atomicfile.h"
#include "array.h"

#define SIDECAR_FORMAT 1

static const char *schema_sql =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
	"CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
	" time INTEGER NOT NULL, offset INTEGER NOT NULL, \"end\" INTEGER NOT NULL,"
	" entries INTEGER NOT NULL, bytes INTEGER NOT NULL, tail BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS runs_name ON runs(name);"
	/* id: file order; seq: order inside the run; member, data_off: where
	 * the data lives (the member's offset, then inside the inflated member) */
	"CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, run INTEGER NOT NULL,"
	" seq INTEGER NOT NULL, name BLOB NOT NULL, kind INTEGER NOT NULL, target BLOB,"
	" size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, mode INTEGER NOT NULL, sha1 TEXT,"
	" member INTEGER NOT NULL, data_off INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS entries_name ON entries(name, id);"
	"CREATE UNIQUE INDEX IF NOT EXISTS entries_run ON entries(run, seq);";

/* ---- small helpers ---- */

char *
arch_sidecar_path(const char *path)
{
	size_t l = strlen(path);
	char *s = malloc(l + 5);

	if (s == NULL)
		return NULL;
	if (l > 7 && strcmp(path + l - 7, ".tar.gz") == 0) {
		memcpy(s, path, l - 7);
		strcpy(s + l - 7, ".idx");
	} else {
		memcpy(s, path, l);
		strcpy(s + l, ".idx");
	}
	return s;
}

int
arch_read_tail(int fd, int64_t end, unsigned char tail[8])
{
	memset(tail, 0, 8);
	if (end < 8)
		return end == 0 ? 0 : -1;
	return pread(fd, tail, 8, end - 8) == 8 ? 0 : -1;
}

const char *
arch_error(const struct arch *a)
{
	return a->err;
}

int64_t
arch_tail_cut(const struct arch *a)
{
	return a->tail_cut;
}

/* ---- the sidecar ---- */

int
arch_open_db(sqlite3 **db, const char *file, int flags, char *err, size_t errlen)
{
	*db = NULL;
	if (sqlite3_open_v2(file, db, flags, NULL) != SQLITE_OK) {
		arch_seterr(err, errlen, "cannot open sidecar '%s': %s", file,
		    *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return -1;
	}
	sqlite3_busy_timeout(*db, 10000);
	sqlite3_exec(*db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	return 0;
}

static int
db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		arch_seterr(err, errlen, "sidecar: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

int
sidecar_schema(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (db_exec(db, schema_sql, err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO meta(key, value) VALUES('format', ?1)", -1, &st,
	    NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int(st, 1, SIDECAR_FORMAT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		arch_seterr(err, errlen, "sidecar: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int
sidecar_add_member(sqlite3 *db, int64_t id, const struct mscan *m, const unsigned char tail[8],
    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const struct went *man = &m->ents[m->n - 1];
	int64_t mt = man->mtime_ns;
	size_t i;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "INSERT INTO runs(id, name, time, offset, \"end\", entries, bytes, tail)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, man->name + strlen(ARCH_RUNS), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, mt / 1000000000 - (mt % 1000000000 < 0));
	sqlite3_bind_int64(st, 4, m->offset);
	sqlite3_bind_int64(st, 5, m->end);
	sqlite3_bind_int64(st, 6, (int64_t)m->n);
	sqlite3_bind_int64(st, 7, m->bytes);
	sqlite3_bind_blob(st, 8, tail, 8, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "INSERT INTO entries(run, seq, name, kind, target, size, mtime_ns, mode,"
	    " sha1, member, data_off) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", -1, &st,
	    NULL) != SQLITE_OK)
		goto out;
	for (i = 0; i < m->n; i++) {
		const struct went *e = &m->ents[i];

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_blob(st, 3, e->name, (int)strlen(e->name), SQLITE_STATIC);
		sqlite3_bind_int(st, 4, e->kind);
		if (e->target != NULL)
			sqlite3_bind_blob(st, 5, e->target, (int)strlen(e->target), SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		sqlite3_bind_int64(st, 6, (int64_t)e->size);
		sqlite3_bind_int64(st, 7, e->mtime_ns);
		sqlite3_bind_int(st, 8, (int)e->mode);
		sqlite3_bind_text(st, 9, e->sha1, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, m->offset);
		sqlite3_bind_int64(st, 11, e->data_off);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		arch_seterr(err, errlen, "sidecar: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int64_t
arch_scan_into(int fd, int64_t from, int64_t size, sqlite3 *db, int64_t next_id, scan_problem_fn problem,
    void *pctx, arch_entry_data_cb data_cb, void *dctx, const int64_t *resync, size_t nresync,
    char *err, size_t errlen)
{
	int64_t off = from, good = from;
	unsigned char tail[8];
	struct mscan m;
	size_t ri = 0;

	if (db_exec(db, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	while (off < size) {
		if (mscan_member(fd, off, &m, problem, pctx, data_cb, dctx, err, errlen) < 0)
			goto fail;
		if (m.complete) {
			if (arch_read_tail(fd, m.end, tail) < 0 ||
			    sidecar_add_member(db, next_id, &m, tail, err, errlen) < 0) {
				mscan_free(&m);
				goto fail;
			}
			next_id++;
			good = off = m.end;
			mscan_free(&m);
			continue;
		}
		mscan_free(&m);
		/* a broken member: go on at the next member the sidecar knows */
		while (ri < nresync && resync[ri] <= off)
			ri++;
		if (ri == nresync)
			break;
		if (problem != NULL)
			problem(pctx, "member at offset %lld: skipped to offset %lld, the next run the sidecar knows",
			    (long long)off, (long long)resync[ri]);
		off = resync[ri];
		next_id++;
	}
	if (db_exec(db, "COMMIT", err, errlen) < 0)
		goto fail;
	return good;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
sidecar_rebuild_file(int fd, int64_t size, const char *idx, int64_t *end, char *err, size_t errlen)
{
	struct atomicfile af;
	struct chj_error e;
	sqlite3 *db = NULL;
	char *journal = NULL;

	/* created here, not by SQLite, so it is 0600 whatever the umask */
	if (atomicfile_begin(&af, idx, 0600, &e) < 0) {
		arch_seterr(err, errlen, "cannot create sidecar: %s", e.msg);
		return -1;
	}
	close(af.fd);
	af.fd = -1;
	/* a crashed rebuild's rollback journal would be played into the new file */
	if (asprintf(&journal, "%s-journal", af.tmp) < 0) {
		arch_seterr(err, errlen, "out of memory");
		goto fail;
	}
	unlink(journal);
	free(journal);
	if (arch_open_db(&db, af.tmp, SQLITE_OPEN_READWRITE, err, errlen) < 0 ||
	    sidecar_schema(db, err, errlen) < 0)
		goto fail;
	*end = arch_scan_into(fd, 0, size, db, 1, NULL, NULL, NULL, NULL, NULL, 0, err, errlen);
	if (*end < 0)
		goto fail;
	if (sqlite3_close(db) != SQLITE_OK) {
		arch_seterr(err, errlen, "cannot close sidecar '%s'", af.tmp);
		db = NULL;
		goto fail;
	}
	db = NULL;
	if (atomicfile_commit(&af, &e) < 0) {
		arch_seterr(err, errlen, "cannot write sidecar: %s", e.msg);
		return -1;
	}
	return 0;
fail:
	sqlite3_close(db);
	atomicfile_rollback(&af);
	return -1;
}

/* Whether the sidecar at a->idx can be used for the archive as it is:
 * 0 yes (*end: its last run's end), 1 no (rebuild). */
static int
sidecar_usable(struct arch *a, int64_t *end)
{
	sqlite3_stmt *st = NULL;
	unsigned char tail[8];
	int rc = 1, flags;

	*end = 0;
	if (access(a->idx, F_OK) < 0)
		return 1;
	flags = a->mode == ARCH_APPEND ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (a->mode != ARCH_APPEND && access(a->idx, W_OK) == 0)
		flags = SQLITE_OPEN_READWRITE;
	if (arch_open_db(&a->db, a->idx, flags, NULL, 0) < 0)
		return 1;
	if (sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != SIDECAR_FORMAT)
		goto out;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(a->db, "SELECT \"end\", tail FROM runs ORDER BY id DESC LIMIT 1", -1, &st,
	    NULL) != SQLITE_OK)
		goto out;
	switch (sqlite3_step(st)) {
	case SQLITE_DONE:
		rc = 0;
		break;
	case SQLITE_ROW:
		*end = sqlite3_column_int64(st, 0);
		if (*end > a->size || sqlite3_column_bytes(st, 1) != 8 || arch_read_tail(a->fd, *end, tail) < 0 ||
		    memcmp(tail, sqlite3_column_blob(st, 1), 8) != 0)
			break;
		rc = 0;
		break;
	}
out:
	sqlite3_finalize(st);
	if (rc != 0) {
		sqlite3_close(a->db);
		a->db = NULL;
	}
	return rc;
}

static int64_t
db_max_run(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM runs", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

/* Cuts the file at end (append mode): the torn tail goes. */
static int
arch_cut(struct arch *a, int64_t end)
{
	if (ftruncate(a->fd, end) < 0 || fsync(a->fd) < 0) {
		arch_seterr(a->err, sizeof a->err, "cannot cut archive '%s' back to %lld bytes: %s", a->path,
		    (long long)end, strerror(errno));
		return -1;
	}
	a->size = end;
	return 0;
}

/* Builds the whole sidecar in memory (a reader that cannot write it). */
static int
sidecar_in_memory(struct arch *a, int64_t *end)
{
	sqlite3_close(a->db);
	a->db = NULL;
	if (arch_open_db(&a->db, ":memory:", SQLITE_OPEN_READWRITE, a->err, sizeof a->err) < 0 ||
	    sidecar_schema(a->db, a->err, sizeof a->err) < 0)
		return -1;
	a->in_memory = 1;
	*end = arch_scan_into(a->fd, 0, a->size, a->db, 1, NULL, NULL, NULL, NULL, NULL, 0, a->err,
	    sizeof a->err);
	return *end < 0 ? -1 : 0;
}

/* Brings the sidecar up to date with the file (and cuts a torn tail when
 * appending). */
static int
arch_sync_sidecar(struct arch *a)
{
	int64_t end = 0, good;
	int locked = a->mode == ARCH_APPEND;

	if (a->mode != ARCH_APPEND && flock(a->fd, LOCK_EX | LOCK_NB) == 0)
		locked = 1;
	if (sidecar_usable(a, &end) != 0) {
		if (!locked)
			return sidecar_in_memory(a, &end);
		if (sidecar_rebuild_file(a->fd, a->size, a->idx, &end, a->err, sizeof a->err) < 0) {
			if (a->mode == ARCH_APPEND)
				return -1;
			return sidecar_in_memory(a, &end);
		}
		if (arch_open_db(&a->db, a->idx, a->mode == ARCH_APPEND ? SQLITE_OPEN_READWRITE :
		    SQLITE_OPEN_READONLY, a->err, sizeof a->err) < 0)
			return -1;
	} else if (end < a->size) {
		if (!locked || sqlite3_db_readonly(a->db, "main") == 1)
			return sidecar_in_memory(a, &end);
		good = arch_scan_into(a->fd, end, a->size, a->db, db_max_run(a->db) + 1, NULL, NULL, NULL,
		    NULL, NULL, 0, a->err, sizeof a->err);
		if (good < 0)
			return -1;
		end = good;
	}
	if (a->mode == ARCH_APPEND && end < a->size) {
		a->tail_cut = a->size - end;
		if (arch_cut(a, end) < 0)
			return -1;
	}
	if (a->mode != ARCH_APPEND && locked)
		flock(a->fd, LOCK_UN);
	a->size = a->mode == ARCH_APPEND ? a->size : end;
	return 0;
}

/* Opens the file for append: created 0600 if missing, locked, and the same
 * file as the path names (a compaction may have replaced it). */
static int
arch_open_append(struct arch *a)
{
	struct stat st, sp;
	int tries;

	for (tries = 0; tries < 10; tries++) {
		a->fd = open(a->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (a->fd >= 0) {
			fchmod(a->fd, 0600);
			atomicfile_sync_dir(a->path);
		} else if (errno == EEXIST) {
			a->fd = open(a->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		}
		if (a->fd < 0) {
			arch_seterr(a->err, sizeof a->err, "cannot open archive '%s': %s", a->path, strerror(errno));
			return -1;
		}
		if (flock(a->fd, LOCK_EX | LOCK_NB) < 0) {
			arch_seterr(a->err, sizeof a->err, "archive '%s' is in use: another writer holds its lock",
			    a->path);
			return -1;
		}
		if (fstat(a->fd, &st) == 0 && stat(a->path, &sp) == 0 && st.st_ino == sp.st_ino &&
		    st.st_dev == sp.st_dev)
			return 0;
		close(a->fd);
		a->fd = -1;
	}
	arch_seterr(a->err, sizeof a->err, "archive '%s' keeps being replaced", a->path);
	return -1;
}

int
arch_open(struct arch **out, const char *path, int mode, char *err, size_t errlen)
{
	struct arch *a = calloc(1, sizeof *a);
	struct stat st;

	*out = NULL;
	if (a == NULL || (a->path = strdup(path)) == NULL || (a->idx = arch_sidecar_path(path)) == NULL) {
		arch_seterr(err, errlen, "out of memory");
		if (a)
			free(a->path);
		free(a);
		return -1;
	}
	a->fd = -1;
	a->mode = mode;
	if (mode == ARCH_APPEND) {
		if (arch_open_append(a) < 0)
			goto fail;
	} else if ((a->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		arch_seterr(a->err, sizeof a->err, "cannot open archive '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		arch_seterr(a->err, sizeof a->err, "archive '%s' is not a regular file", path);
		goto fail;
	}
	a->size = st.st_size;
	if (arch_sync_sidecar(a) < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	arch_seterr(err, errlen, "%s", a->err);
	arch_close(a);
	return -1;
}

int
arch_close(struct arch *a)
{
	int rc = 0;

	if (a == NULL)
		return 0;
	if (a->w != NULL)
		rc = arch_run_abort(a);
	if (a->db != NULL && sqlite3_close(a->db) != SQLITE_OK)
		rc = -1;
	if (a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a->idx);
	free(a);
	return rc;
}

/* ---- appending a run ---- */

int
arch_run_begin(struct arch *a)
{
	if (a->mode != ARCH_APPEND) {
		arch_seterr(a->err, sizeof a->err, "archive '%s' is open read-only", a->path);
		return -1;
	}
	if (a->w != NULL) {
		arch_seterr(a->err, sizeof a->err, "a run is already being written to '%s'", a->path);
		return -1;
	}
	a->w = calloc(1, sizeof *a->w);
	if (a->w == NULL) {
		arch_seterr(a->err, sizeof a->err, "out of memory");
		return -1;
	}
	if (mwriter_begin(a->w, a->fd, a->size) < 0) {
		arch_seterr(a->err, sizeof a->err, "%s", a->w->err);
		mwriter_free(a->w);
		free(a->w);
		a->w = NULL;
		return -1;
	}
	return 0;
}

/* Checks that an entry can be added: a run is open, the name is ours. */
static int
run_check(struct arch *a, const char *name)
{
	if (a->w == NULL) {
		arch_seterr(a->err, sizeof a->err, "no run begun on '%s'", a->path);
		return -1;
	}
	if (!arch_name_safe(name) || strncmp(name, ARCH_RUNS, strlen(ARCH_RUNS)) == 0) {
		arch_seterr(a->err, sizeof a->err, "bad entry name '%.200s'", name);
		return -1;
	}
	return 0;
}

static int
run_add(struct arch *a, const char *name, int kind, const char *target, int fd, const void *buf,
    struct arch_stream *src, uint64_t size, int64_t mtime_ns, mode_t mode)
{
	if (run_check(a, name) < 0)
		return -1;
	if (mwriter_add(a->w, name, kind, target, fd, buf, src, size, mtime_ns, mode) < 0) {
		arch_seterr(a->err, sizeof a->err, "%s", a->w->err);
		return -1;
	}
	return 0;
}

int
arch_run_add_fd(struct arch *a, const char *name, int fd, uint64_t size, int64_t mtime_ns, mode_t mode)
{
	return run_add(a, name, ARCH_KIND_FILE, NULL, fd, NULL, NULL, size, mtime_ns, mode);
}

int
arch_run_add_buf(struct arch *a, const char *name, const void *buf, size_t len, int64_t mtime_ns,
    mode_t mode)
{
	return run_add(a, name, ARCH_KIND_FILE, NULL, -1, buf ? buf : "", NULL, len, mtime_ns, mode);
}

int
arch_run_add_symlink(struct arch *a, const char *name, const char *target, int64_t mtime_ns)
{
	return run_add(a, name, ARCH_KIND_SYMLINK, target ? target : "", -1, NULL, NULL, 0, mtime_ns, 0777);
}

int
arch_run_add_stream(struct arch *a, const struct arch_entry *e, struct arch_stream *s)
{
	if (e->kind == ARCH_KIND_SYMLINK)
		return arch_run_add_symlink(a, e->name, e->target, e->mtime_ns);
	return run_add(a, e->name, ARCH_KIND_FILE, NULL, -1, NULL, s, e->size, e->mtime_ns, e->mode);
}

int
arch_run_abort(struct arch *a)
{
	struct stat st;
	int64_t start;
	int rc = 0;

	if (a->w == NULL)
		return 0;
	/* free the writer first: freeing an open libarchive writer closes
	 * its tar stream, and those bytes must not outlive the cut */
	start = a->w->start;
	mwriter_free(a->w);
	free(a->w);
	a->w = NULL;
	/* nothing reached the file (a run dropped before its first entry):
	 * nothing to cut, nothing to sync */
	if (fstat(a->fd, &st) == 0 && st.st_size == start) {
		a->size = start;
		return 0;
	}
	if (ftruncate(a->fd, start) < 0 || fsync(a->fd) < 0) {
		arch_seterr(a->err, sizeof a->err, "cannot cut archive '%s' back: %s", a->path, strerror(errno));
		rc = -1;
	}
	a->size = start;
	return rc;
}

/* 1 when a run called name exists, 0 not, -1 error. */
static int
run_name_taken(struct arch *a, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM runs WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
arch_run_commit_as(struct arch *a, const void *manifest, size_t len, const char *name, int64_t time,
    char *run_name, size_t namelen)
{
	char ename[64];
	struct mscan m;
	unsigned char tail[8];
	struct mwriter *w = a->w;

	if (w == NULL) {
		arch_seterr(a->err, sizeof a->err, "no run begun on '%s'", a->path);
		return -1;
	}
	snprintf(ename, sizeof ename, "%s%s", ARCH_RUNS, name);
	if (mwriter_add(w, ename, ARCH_KIND_FILE, NULL, -1, manifest ? manifest : "", NULL, len,
	    time * 1000000000, 0600) < 0 || mwriter_finish(w) < 0) {
		arch_seterr(a->err, sizeof a->err, "archive '%s': %s", a->path, w->err);
		goto fail;
	}
	if (fsync(a->fd) < 0) {
		arch_seterr(a->err, sizeof a->err, "cannot fsync archive '%s': %s", a->path, strerror(errno));
		goto fail;
	}
	memset(&m, 0, sizeof m);
	m.offset = w->start;
	m.end = w->pos;
	m.ents = w->ents;
	m.n = w->nents;
	for (size_t i = 0; i < m.n; i++)
		m.bytes += (int64_t)m.ents[i].size;
	if (arch_read_tail(a->fd, m.end, tail) < 0) {
		arch_seterr(a->err, sizeof a->err, "cannot read archive '%s': %s", a->path, strerror(errno));
		goto fail;
	}
	if (db_exec(a->db, "BEGIN IMMEDIATE", a->err, sizeof a->err) < 0)
		goto fail;
	if (sidecar_add_member(a->db, db_max_run(a->db) + 1, &m, tail, a->err, sizeof a->err) < 0 ||
	    db_exec(a->db, "COMMIT", a->err, sizeof a->err) < 0) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	a->size = w->pos;
	if (run_name != NULL && namelen > 0)
		snprintf(run_name, namelen, "%s", name);
	mwriter_free(w);
	free(w);
	a->w = NULL;
	return 0;
fail:
	{
		char keep[ARCH_ERR_MAX];

		memcpy(keep, a->err, sizeof keep);
		arch_run_abort(a);
		memcpy(a->err, keep, sizeof keep);
	}
	return -1;
}

int
arch_run_commit(struct arch *a, const void *manifest, size_t len, char *run_name, size_t namelen)
{
	char base[32], name[40];
	time_t now = time(NULL);
	struct tm tm;
	int i, t;

	if (a->w == NULL) {
		arch_seterr(a->err, sizeof a->err, "no run begun on '%s'", a->path);
		return -1;
	}
	strftime(base, sizeof base, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	snprintf(name, sizeof name, "%s", base);
	for (i = 1; (t = run_name_taken(a, name)) == 1 && i < 100000; i++)
		snprintf(name, sizeof name, "%.20s.%d", base, i);
	if (t != 0) {
		arch_seterr(a->err, sizeof a->err, "sidecar '%s': cannot name the run", a->idx);
		arch_run_abort(a);
		return -1;
	}
	return arch_run_commit_as(a, manifest, len, name, (int64_t)now, run_name, namelen);
}

/* ---- queries ---- */

#define ENTRY_COLS "run, name, kind, target, size, mtime_ns, mode, sha1"

static char *
col_str(sqlite3_stmt *st, int i)
{
	int n = sqlite3_column_bytes(st, i);
	const void *p = sqlite3_column_blob(st, i);
	char *s;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, p, (size_t)n);
	s[n] = '\0';
	return s;
}

/* Fills e from the ENTRY_COLS starting at column c. */
static int
row_entry(sqlite3_stmt *st, int c, struct arch_entry *e)
{
	const unsigned char *sha;

	memset(e, 0, sizeof *e);
	e->run = sqlite3_column_int64(st, c);
	e->name = col_str(st, c + 1);
	e->kind = sqlite3_column_int(st, c + 2) == ARCH_KIND_SYMLINK ? ARCH_KIND_SYMLINK : ARCH_KIND_FILE;
	e->target = col_str(st, c + 3);
	e->size = (uint64_t)sqlite3_column_int64(st, c + 4);
	e->mtime_ns = sqlite3_column_int64(st, c + 5);
	e->mode = (mode_t)sqlite3_column_int(st, c + 6);
	sha = sqlite3_column_text(st, c + 7);
	snprintf(e->sha1, sizeof e->sha1, "%s", sha ? (const char *)sha : "");
	return e->name == NULL ? -1 : 0;
}

void
arch_entry_free(struct arch_entry *e)
{
	if (e == NULL)
		return;
	free(e->name);
	free(e->target);
	e->name = e->target = NULL;
}

void
arch_entries_free(struct arch_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		arch_entry_free(&v[i]);
	free(v);
}

static int
db_fail(struct arch *a, sqlite3_stmt *st)
{
	arch_seterr(a->err, sizeof a->err, "sidecar '%s': %s", a->idx, sqlite3_errmsg(a->db));
	sqlite3_finalize(st);
	return -1;
}

int
arch_runs(struct arch *a, struct arch_run **runs, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct arch_run *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int rc;

	*runs = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(a->db, "SELECT id, name, time, offset, \"end\", entries, bytes FROM runs"
	    " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = array_grow(v, cnt, &cap, sizeof *v, 16)) == NULL) {
			free(v);
			sqlite3_finalize(st);
			arch_seterr(a->err, sizeof a->err, "out of memory");
			return -1;
		}
		v = nv;
		memset(&v[cnt], 0, sizeof v[cnt]);
		v[cnt].id = sqlite3_column_int64(st, 0);
		snprintf(v[cnt].name, sizeof v[cnt].name, "%s", (const char *)sqlite3_column_text(st, 1));
		v[cnt].time = sqlite3_column_int64(st, 2);
		v[cnt].offset = sqlite3_column_int64(st, 3);
		v[cnt].end = sqlite3_column_int64(st, 4);
		v[cnt].entries = sqlite3_column_int64(st, 5);
		v[cnt].bytes = sqlite3_column_int64(st, 6);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(a, st);
	}
	sqlite3_finalize(st);
	*runs = v;
	*n = cnt;
	return 0;
}

int
arch_has(struct arch *a, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM entries WHERE name = ?1 LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, st);
	sqlite3_bind_blob(st, 1, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(a, st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}

int
arch_latest(struct arch *a, const char *name, int64_t upto_run, struct arch_entry *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(e, 0, sizeof *e);
	if (sqlite3_prepare_v2(a->db, "SELECT " ENTRY_COLS " FROM entries WHERE name = ?1"
	    " AND (?2 = 0 OR run <= ?2) ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, st);
	sqlite3_bind_blob(st, 1, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, upto_run);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return db_fail(a, st);
	if (row_entry(st, 0, e) < 0) {
		arch_entry_free(e);
		sqlite3_finalize(st);
		arch_seterr(a->err, sizeof a->err, "out of memory");
		return -1;
	}
	sqlite3_finalize(st);
	return 1;
}

/* The smallest byte string greater than every string starting with prefix
 * (into hi); 0 when there is none (prefix all 0xff or empty). */
static size_t
prefix_upper(const char *prefix, unsigned char *hi)
{
	size_t l = strlen(prefix);

	memcpy(hi, prefix, l);
	while (l > 0 && hi[l - 1] == 0xff)
		l--;
	if (l > 0)
		hi[l - 1]++;
	return l;
}

int
arch_list(struct arch *a, const char *prefix, int64_t upto_run, struct arch_entry **v, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct arch_entry *vv = NULL, *nv;
	size_t cnt = 0, cap = 0, hl;
	unsigned char *hi = malloc(strlen(prefix) + 1);
	int rc;

	*v = NULL;
	*n = 0;
	if (hi == NULL) {
		arch_seterr(a->err, sizeof a->err, "out of memory");
		return -1;
	}
	hl = prefix_upper(prefix, hi);
	/* the newest copy per name: SQLite takes the bare columns from the max(id) row */
	if (sqlite3_prepare_v2(a->db, "SELECT max(id), " ENTRY_COLS " FROM entries WHERE name >= ?1"
	    " AND (?2 IS NULL OR name < ?2) AND (?3 = 0 OR run <= ?3) GROUP BY name ORDER BY name",
	    -1, &st, NULL) != SQLITE_OK) {
		free(hi);
		return db_fail(a, st);
	}
	sqlite3_bind_blob(st, 1, prefix, (int)strlen(prefix), SQLITE_STATIC);
	if (hl > 0)
		sqlite3_bind_blob(st, 2, hi, (int)hl, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, upto_run);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = array_grow(vv, cnt, &cap, sizeof *vv, 64)) == NULL)
			goto oom;
		vv = nv;
		if (row_entry(st, 1, &vv[cnt]) < 0) {
			arch_entry_free(&vv[cnt]);
			goto oom;
		}
		cnt++;
	}
	free(hi);
	if (rc != SQLITE_DONE) {
		arch_entries_free(vv, cnt);
		return db_fail(a, st);
	}
	sqlite3_finalize(st);
	*v = vv;
	*n = cnt;
	return 0;
oom:
	free(hi);
	arch_entries_free(vv, cnt);
	sqlite3_finalize(st);
	arch_seterr(a->err, sizeof a->err, "out of memory");
	return -1;
}

/* ---- reading data ---- */

ssize_t
arch_stream_read(struct arch_stream *s, void *buf, size_t len)
{
	char got[41];
	ssize_t k;

	if (s->left == 0)
		return 0;
	if (len > s->left)
		len = (size_t)s->left;
	k = mreader_read(s->r, buf, len);
	if (k < 0) {
		arch_seterr(s->err, s->errlen, "%s", s->r->err);
		return -1;
	}
	if (k == 0) {
		arch_seterr(s->err, s->errlen, "data of '%s' ends early", s->name);
		return -1;
	}
	s->left -= (uint64_t)k;
	if (s->check) {
		EVP_DigestUpdate(s->md, buf, (size_t)k);
		if (s->left == 0 && (arch_sha1_hex(s->md, got) < 0 || strcmp(got, s->want) != 0)) {
			arch_seterr(s->err, s->errlen, "data of '%s' does not match its SHA1 %s", s->name, s->want);
			return -1;
		}
	}
	return k;
}

struct fetch_item {
	const struct arch_want *w;
	struct arch_entry e;
	int64_t id, member, data_off;
};

static int
fetch_cmp(const void *x, const void *y)
{
	const struct fetch_item *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Looks up every want in the sidecar. */
static int
fetch_lookup(struct arch *a, const struct arch_want *wants, size_t n, struct fetch_item *it)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	if (sqlite3_prepare_v2(a->db, "SELECT id, member, data_off, " ENTRY_COLS " FROM entries"
	    " WHERE run = ?1 AND name = ?2 ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, st);
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, wants[i].run);
		sqlite3_bind_blob(st, 2, wants[i].name, (int)strlen(wants[i].name), SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			arch_seterr(a->err, sizeof a->err, "archive '%s': no entry '%s' in run %lld", a->path,
			    wants[i].name, (long long)wants[i].run);
			sqlite3_finalize(st);
			return -1;
		}
		it[i].w = &wants[i];
		it[i].id = sqlite3_column_int64(st, 0);
		it[i].member = sqlite3_column_int64(st, 1);
		it[i].data_off = sqlite3_column_int64(st, 2);
		if (row_entry(st, 3, &it[i].e) < 0) {
			sqlite3_finalize(st);
			arch_seterr(a->err, sizeof a->err, "out of memory");
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

/* Gives the callback a stream of one entry's data, then skips what it left. */
static int
fetch_one(struct arch *a, struct mreader *r, struct fetch_item *it, arch_want_cb cb, void *cbctx)
{
	struct arch_stream s;
	int rc;

	memset(&s, 0, sizeof s);
	s.r = r;
	s.left = it->e.kind == ARCH_KIND_FILE ? it->e.size : 0;
	s.name = it->e.name;
	s.err = a->err;
	s.errlen = sizeof a->err;
	s.check = it->e.kind == ARCH_KIND_FILE && strlen(it->e.sha1) == 40;
	snprintf(s.want, sizeof s.want, "%s", it->e.sha1);
	if (s.check && ((s.md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(s.md, EVP_sha1(), NULL) != 1)) {
		EVP_MD_CTX_free(s.md);
		arch_seterr(a->err, sizeof a->err, "out of memory");
		return -1;
	}
	a->err[0] = '\0';
	rc = cb(cbctx, it->w, &it->e, &s, a->err, sizeof a->err);
	if (rc == 0 && s.left > 0) {
		/* the rest, read to check its SHA1 */
		while (rc == 0 && s.left > 0)
			if (arch_stream_read(&s, r->buf, ARCH_BUF) < 0)
				rc = -1;
	}
	if (rc < 0 && a->err[0] == '\0')
		arch_seterr(a->err, sizeof a->err, "reading '%s' stopped", it->e.name);
	EVP_MD_CTX_free(s.md);
	return rc;
}

int
arch_fetch(struct arch *a, const struct arch_want *wants, size_t n, arch_want_cb cb, void *cbctx)
{
	struct fetch_item *it = calloc(n ? n : 1, sizeof *it);
	struct mreader r;
	int64_t member = -1;
	uint64_t pos = 0;
	size_t i;
	int rc = -1, open_r = 0;

	if (it == NULL) {
		arch_seterr(a->err, sizeof a->err, "out of memory");
		return -1;
	}
	if (fetch_lookup(a, wants, n, it) < 0)
		goto out;
	array_sort(it, n, sizeof *it, fetch_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && it[i].id == it[i - 1].id) {
			arch_seterr(a->err, sizeof a->err, "'%s' of run %lld wanted twice", it[i].e.name,
			    (long long)it[i].e.run);
			goto out;
		}
		if (it[i].member != member) {
			if (open_r)
				mreader_close(&r);
			open_r = 1;
			member = it[i].member;
			pos = 0;
			if (mreader_open(&r, a->fd, member) < 0) {
				arch_seterr(a->err, sizeof a->err, "%s", r.err);
				goto out;
			}
		}
		if (mreader_skip(&r, (uint64_t)it[i].data_off - pos) < 0) {
			arch_seterr(a->err, sizeof a->err, "archive '%s': %s", a->path, r.err);
			goto out;
		}
		if (fetch_one(a, &r, &it[i], cb, cbctx) < 0)
			goto out;
		pos = (uint64_t)it[i].data_off + (it[i].e.kind == ARCH_KIND_FILE ? it[i].e.size : 0);
	}
	rc = 0;
out:
	if (open_r)
		mreader_close(&r);
	for (i = 0; i < n; i++)
		arch_entry_free(&it[i].e);
	free(it);
	return rc;
}

struct manifest_ctx {
	char *buf;
	size_t len;
};

static int
manifest_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e, struct arch_stream *s,
    char *err, size_t errlen)
{
	struct manifest_ctx *m = cbctx;
	ssize_t k;

	(void)w;
	if (e->size > 256u * 1024 * 1024) {
		arch_seterr(err, errlen, "manifest '%s' is too large", e->name);
		return -1;
	}
	m->buf = malloc((size_t)e->size + 1);
	if (m->buf == NULL) {
		arch_seterr(err, errlen, "out of memory");
		return -1;
	}
	while (m->len < e->size) {
		k = arch_stream_read(s, m->buf + m->len, (size_t)e->size - m->len);
		if (k <= 0)
			return -1;
		m->len += (size_t)k;
	}
	m->buf[m->len] = '\0';
	return 0;
}

int
arch_read_manifest(struct arch *a, int64_t run, char **buf, size_t *len)
{
	sqlite3_stmt *st = NULL;
	struct manifest_ctx m = { NULL, 0 };
	struct arch_want w;
	char name[64];

	*buf = NULL;
	*len = 0;
	if (sqlite3_prepare_v2(a->db, "SELECT name FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, st);
	sqlite3_bind_int64(st, 1, run);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		arch_seterr(a->err, sizeof a->err, "archive '%s' has no run %lld", a->path, (long long)run);
		return -1;
	}
	snprintf(name, sizeof name, "%s%s", ARCH_RUNS, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	w.run = run;
	w.name = name;
	w.ctx = NULL;
	if (arch_fetch(a, &w, 1, manifest_cb, &m) < 0) {
		free(m.buf);
		return -1;
	}
	*buf = m.buf;
	*len = m.len;
	return 0;
}
