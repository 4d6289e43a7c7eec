/* archive.c: the per-user archive handle: opening (lock, torn-tail repair,
 * sidecar check and rebuild) and closing. Appending a run is
 * archive-append.c's, the sidecar queries archive-query.c's, reading
 * entries' data back archive-fetch.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive-int.h"
#include "atomicfile.h"

const struct chj_error *
arch_error(const struct arch *a)
{
	return &a->err;
}

int
arch_error_copy(const struct arch *a, struct chj_error *e)
{
	if (e != &a->err)
		*e = a->err;
	return -1;
}

int64_t
arch_tail_cut(const struct arch *a)
{
	return a->tail_cut;
}

/* Whether the sidecar at a->idx can be used for the archive as it is:
 * 0 yes (*end: its last run's end), 1 no (rebuild). */
static int
sidecar_usable(struct arch *a, int64_t *end)
{
	sqlite3_stmt *st = NULL;
	unsigned char tail[8];
	struct chj_error ignored;
	int rc = 1, flags;

	*end = 0;
	if (access(a->idx, F_OK) < 0)
		return 1;
	flags = a->mode == ARCH_APPEND ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (a->mode != ARCH_APPEND && access(a->idx, W_OK) == 0)
		flags = SQLITE_OPEN_READWRITE;
	if (arch_open_db(&a->db, a->idx, flags, &ignored) < 0)
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

/* Cuts the file at end (append mode): the torn tail goes. */
static int
arch_cut(struct arch *a, int64_t end)
{
	if (ftruncate(a->fd, end) < 0 || fsync(a->fd) < 0) {
		return chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot cut archive '%s' back to %lld bytes",
		    a->path, (long long)end);
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
	if (arch_open_db(&a->db, ":memory:", SQLITE_OPEN_READWRITE, &a->err) < 0 ||
	    sidecar_schema(a->db, &a->err) < 0)
		return -1;
	a->in_memory = 1;
	*end = arch_scan_into(a->fd, 0, a->size, a->db, 1, NULL, NULL, NULL, NULL, NULL, 0, &a->err);
	return *end < 0 ? -1 : 0;
}

/* Brings the sidecar up to date with the file (and cuts a torn tail when
 * appending). A reader never writes beside the archive: a missing, stale or
 * lagging sidecar is read into memory instead (reindex writes one). */
static int
arch_sync_sidecar(struct arch *a)
{
	int64_t end = 0, good;
	int locked = a->mode == ARCH_APPEND;

	if (sidecar_usable(a, &end) != 0) {
		a->sidecar_stale = 1;
		if (!locked)
			return sidecar_in_memory(a, &end);
		if (sidecar_rebuild_file(a->fd, a->size, a->idx, a->created, &end, &a->err) < 0) {
			if (a->mode == ARCH_APPEND)
				return -1;
			return sidecar_in_memory(a, &end);
		}
		if (arch_open_db(&a->db, a->idx, a->mode == ARCH_APPEND ? SQLITE_OPEN_READWRITE :
		    SQLITE_OPEN_READONLY, &a->err) < 0)
			return -1;
	} else if (end < a->size) {
		if (!locked || sqlite3_db_readonly(a->db, "main") == 1)
			return sidecar_in_memory(a, &end);
		good = arch_scan_into(a->fd, end, a->size, a->db, sidecar_max_run(a->db) + 1, NULL, NULL, NULL,
		    NULL, NULL, 0, &a->err);
		if (good < 0)
			return -1;
		end = good;
	}
	if (a->mode == ARCH_APPEND && end < a->size) {
		a->tail_cut = a->size - end;
		if (arch_cut(a, end) < 0)
			return -1;
	}
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
			/* its name is synced by the first commit (a crash before
			 * leaves an empty archive or none, both nothing lost) */
			a->created = 1;
		} else if (errno == EEXIST) {
			a->fd = open(a->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		}
		if (a->fd < 0)
			return chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot open archive '%s'", a->path);
		if (flock(a->fd, LOCK_EX | LOCK_NB) < 0)
			return chj_error_set(&a->err, CHJ_ERR_REFUSED, 0,
			    "archive '%s' is in use: another writer holds its lock", a->path);
		if (fstat(a->fd, &st) == 0 && stat(a->path, &sp) == 0 && st.st_ino == sp.st_ino &&
		    st.st_dev == sp.st_dev)
			return 0;
		close(a->fd);
		a->fd = -1;
	}
	return chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "archive '%s' keeps being replaced", a->path);
}

int
arch_sidecar_stale(const struct arch *a)
{
	return a->sidecar_stale;
}

int
arch_open(struct arch **out, const char *path, int mode, struct chj_error *e)
{
	struct arch *a = calloc(1, sizeof *a);
	struct stat st;

	*out = NULL;
	if (a == NULL || (a->path = strdup(path)) == NULL || (a->idx = arch_sidecar_path(path)) == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
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
		chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot open archive '%s'", path);
		goto fail;
	}
	if (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "archive '%s' is not a regular file", path);
		goto fail;
	}
	a->size = st.st_size;
	if (arch_sync_sidecar(a) < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	*e = a->err;
	arch_close(a);
	return -1;
}

/* An archive left without a byte (its first run failed or was aborted: a
 * connection cut, a user that failed) is no archive: with drop_empty it
 * goes, with its sidecar, under the writer's lock, rather than stay for
 * verify to call empty. Only while the path still names this file. */
static void
remove_if_empty(struct arch *a)
{
	struct stat st, sp;

	if (fstat(a->fd, &st) < 0 || st.st_size != 0 || stat(a->path, &sp) < 0 ||
	    st.st_ino != sp.st_ino || st.st_dev != sp.st_dev)
		return;
	if (unlink(a->path) == 0) {
		unlink(a->idx);
		atomicfile_sync_dir(a->path);
	}
}

void
arch_drop_if_empty(struct arch *a)
{
	a->drop_empty = 1;
}

int
arch_close(struct arch *a)
{
	int rc = 0;

	if (a == NULL)
		return 0;
	if (a->w != NULL)
		rc = arch_run_abort(a);
	sqlite3_finalize(a->st_has);
	sqlite3_finalize(a->st_latest);
	if (a->db != NULL && sqlite3_close(a->db) != SQLITE_OK)
		rc = -1;
	if (a->mode == ARCH_APPEND && a->fd >= 0 && a->drop_empty)
		remove_if_empty(a);
	if (a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a->idx);
	free(a);
	return rc;
}
