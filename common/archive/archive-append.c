/* archive-append.c: appending one run to an archive open for append: its
 * entries written into a new gzip member at the end, then the manifest, an
 * fsync, and the run recorded in the sidecar; or the member cut off again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive-int.h"
#include "atomicfile.h"

int
arch_deflate_pool_new(struct pdeflate_pool **pool)
{
	return pdeflate_pool_new(pool, ARCH_LEVEL, ARCH_THREADS, ARCH_CHUNK);
}

int
arch_deflate_pool_help(struct pdeflate_pool *pool)
{
	return pdeflate_pool_help(pool);
}

void
arch_deflate_pool_free(struct pdeflate_pool *pool)
{
	pdeflate_pool_free(pool);
}

void
arch_set_deflate_pool(struct arch *a, struct pdeflate_pool *pool)
{
	a->pool = pool;
}

int
arch_run_begin(struct arch *a)
{
	if (a->mode != ARCH_APPEND)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "archive '%s' is open read-only", a->path);
	if (a->w != NULL)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "a run is already being written to '%s'",
		    a->path);
	a->w = calloc(1, sizeof *a->w);
	if (a->w == NULL)
		return chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (mwriter_begin(a->w, a->fd, a->size, a->pool) < 0) {
		a->err = a->w->err;
		mwriter_free(a->w);
		free(a->w);
		a->w = NULL;
		return -1;
	}
	/* the run's queries (one per message: is it archived?) in one read
	 * transaction: not a lock taken and a journal looked for each; ended
	 * by the seal, or the abort. Without it they are each their own. */
	a->read_txn = sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	return 0;
}

/* Ends the run's read transaction, if any. */
static void
run_end_read(struct arch *a)
{
	if (a->read_txn)
		sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	a->read_txn = 0;
}

/* Checks that an entry can be added: a run is open, the name is ours. */
static int
run_check(struct arch *a, const char *name)
{
	if (a->w == NULL)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "no run begun on '%s'", a->path);
	if (!arch_name_safe(name) || strncmp(name, ARCH_RUNS, strlen(ARCH_RUNS)) == 0)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "bad entry name '%.200s'", name);
	return 0;
}

static int
run_add(struct arch *a, const char *name, int kind, const char *target, const struct arch_src *src,
    uint64_t size, int64_t mtime_ns, mode_t mode)
{
	if (run_check(a, name) < 0)
		return -1;
	if (mwriter_add(a->w, name, kind, target, src, size, mtime_ns, mode) < 0) {
		a->err = a->w->err;
		return -1;
	}
	return 0;
}

int
arch_run_add_fd(struct arch *a, const char *name, int fd, uint64_t size, int64_t mtime_ns, mode_t mode)
{
	struct arch_src src = { fd, NULL, NULL, NULL, NULL, NULL };

	return run_add(a, name, ARCH_KIND_FILE, NULL, &src, size, mtime_ns, mode);
}

int
arch_run_add_buf(struct arch *a, const char *name, const void *buf, size_t len, int64_t mtime_ns,
    mode_t mode)
{
	struct arch_src src = { -1, buf ? buf : "", NULL, NULL, NULL, NULL };

	return run_add(a, name, ARCH_KIND_FILE, NULL, &src, len, mtime_ns, mode);
}

/* 1 when hex is a SHA1 as the sidecar keeps them: 40 lower-case hex digits. */
static int
sha1_hex_ok(const char *hex)
{
	size_t i;

	for (i = 0; i < 40; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return hex[40] == '\0';
}

int
arch_run_add_buf_hashed(struct arch *a, const char *name, const void *buf, size_t len, const char *sha1,
    int64_t mtime_ns, mode_t mode)
{
	struct arch_src src = { -1, buf ? buf : "", NULL, NULL, NULL, sha1 };

	if (sha1 == NULL || !sha1_hex_ok(sha1))
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "'%.200s': '%.50s' is not a SHA1 in hex", name,
		    sha1 ? sha1 : "(null)");
	return run_add(a, name, ARCH_KIND_FILE, NULL, &src, len, mtime_ns, mode);
}

int
arch_run_add_reader(struct arch *a, const char *name, arch_read_fn fn, void *ctx, uint64_t size,
    int64_t mtime_ns, mode_t mode)
{
	struct arch_src src = { -1, NULL, NULL, fn, ctx, NULL };

	return run_add(a, name, ARCH_KIND_FILE, NULL, &src, size, mtime_ns, mode);
}

const char *
arch_run_last_sha1(const struct arch *a)
{
	if (a->w == NULL || a->w->nents == 0)
		return NULL;
	return a->w->ents[a->w->nents - 1].sha1;
}

int
arch_run_add_symlink(struct arch *a, const char *name, const char *target, int64_t mtime_ns)
{
	struct arch_src src = { -1, "", NULL, NULL, NULL, NULL };

	return run_add(a, name, ARCH_KIND_SYMLINK, target ? target : "", &src, 0, mtime_ns, 0777);
}

int
arch_run_add_stream(struct arch *a, const struct arch_entry *e, struct arch_stream *s)
{
	struct arch_src src = { -1, NULL, s, NULL, NULL, NULL };

	if (e->kind == ARCH_KIND_SYMLINK)
		return arch_run_add_symlink(a, e->name, e->target, e->mtime_ns);
	return run_add(a, e->name, ARCH_KIND_FILE, NULL, &src, e->size, e->mtime_ns, e->mode);
}

int
arch_run_abort(struct arch *a)
{
	struct stat st;
	int64_t start;
	int rc = 0;

	run_end_read(a);
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
		rc = chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot cut archive '%s' back", a->path);
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

/* Adds the manifest as runs/<name> and seals the member (its last bytes
 * with the compressor, not waited for); the run dies on failure. */
static int
run_seal_as(struct arch *a, const void *manifest, size_t len, const char *name, int64_t time)
{
	char ename[64];
	struct mwriter *w = a->w;
	struct arch_src src = { -1, NULL, NULL, NULL, NULL, NULL };

	snprintf(ename, sizeof ename, "%s%s", ARCH_RUNS, name);
	src.buf = manifest ? manifest : "";
	if (mwriter_add(w, ename, ARCH_KIND_FILE, NULL, &src, len, time * 1000000000, 0600) < 0 ||
	    mwriter_seal(w) < 0) {
		struct chj_error keep;

		arch_error_wrap(&a->err, &w->err, CHJ_ERR_ARCHIVE, "archive '%s': %s", a->path, w->err.msg);
		keep = a->err;
		arch_run_abort(a);
		a->err = keep;
		return -1;
	}
	snprintf(w->run_name, sizeof w->run_name, "%s", name);
	run_end_read(a);
	return 0;
}

/* The sealed run's end: the compressor's last bytes written, the file
 * fsynced, the run recorded in the sidecar. */
static int
run_complete(struct arch *a, char *run_name, size_t namelen)
{
	struct mscan m;
	unsigned char tail[8];
	struct mwriter *w = a->w;

	if (mwriter_finish(w) < 0) {
		arch_error_wrap(&a->err, &w->err, CHJ_ERR_ARCHIVE, "archive '%s': %s", a->path, w->err.msg);
		goto fail;
	}
	if (fsync(a->fd) < 0) {
		chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot fsync archive '%s'", a->path);
		goto fail;
	}
	/* a new archive: its name and its sidecar's, left unsynced by the open */
	if (a->created) {
		if (atomicfile_sync_dir(a->path) < 0) {
			chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot sync the directory of '%s'", a->path);
			goto fail;
		}
		a->created = 0;
	}
	run_end_read(a);
	memset(&m, 0, sizeof m);
	m.offset = w->start;
	m.end = w->pos;
	m.ents = w->ents;
	m.n = w->nents;
	for (size_t i = 0; i < m.n; i++)
		m.bytes += (int64_t)m.ents[i].size;
	errno = 0;
	if (arch_read_tail(a->fd, m.end, tail) < 0) {
		if (errno != 0)
			chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot read archive '%s'", a->path);
		else
			chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "cannot read archive '%s': %s", a->path,
			    "short read");
		goto fail;
	}
	if (sidecar_exec(a->db, "BEGIN IMMEDIATE", &a->err) < 0)
		goto fail;
	if (sidecar_add_member(a->db, sidecar_max_run(a->db) + 1, &m, tail, &a->err) < 0 ||
	    sidecar_exec(a->db, "COMMIT", &a->err) < 0) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	a->size = w->pos;
	if (run_name != NULL && namelen > 0)
		snprintf(run_name, namelen, "%s", w->run_name);
	mwriter_free(w);
	free(w);
	a->w = NULL;
	return 0;
fail:
	{
		struct chj_error keep = a->err;

		arch_run_abort(a);
		a->err = keep;
	}
	return -1;
}

int
arch_run_commit_as(struct arch *a, const void *manifest, size_t len, const char *name, int64_t time,
    char *run_name, size_t namelen)
{
	if (a->w == NULL)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "no run begun on '%s'", a->path);
	if (a->w->sealed)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "the run on '%s' is sealed already", a->path);
	if (run_seal_as(a, manifest, len, name, time) < 0)
		return -1;
	return run_complete(a, run_name, namelen);
}

int
arch_run_seal(struct arch *a, const void *manifest, size_t len)
{
	char base[32], name[40];
	time_t now = time(NULL);
	struct tm tm;
	int i, t;

	if (a->w == NULL)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "no run begun on '%s'", a->path);
	if (a->w->sealed)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "the run on '%s' is sealed already", a->path);
	strftime(base, sizeof base, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	snprintf(name, sizeof name, "%s", base);
	for (i = 1; (t = run_name_taken(a, name)) == 1 && i < 100000; i++)
		snprintf(name, sizeof name, "%.20s.%d", base, i);
	if (t != 0) {
		chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "sidecar '%s': cannot name the run", a->idx);
		arch_run_abort(a);
		return -1;
	}
	return run_seal_as(a, manifest, len, name, (int64_t)now);
}

int
arch_run_commit(struct arch *a, const void *manifest, size_t len, char *run_name, size_t namelen)
{
	if (a->w == NULL)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "no run begun on '%s'", a->path);
	if (!a->w->sealed && arch_run_seal(a, manifest, len) < 0)
		return -1;
	return run_complete(a, run_name, namelen);
}
