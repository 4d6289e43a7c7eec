/* archive-sidecar.c: the archive's sidecar index (SQLite): its schema, a
 * scanned member recorded as a run and its entries, a scan of the members
 * from an offset on into it, and a whole new sidecar file built from the
 * archive alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive-int.h"
#include "atomicfile.h"

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

int
arch_open_db(sqlite3 **db, const char *file, int flags, struct chj_error *e)
{
	*db = NULL;
	if (sqlite3_open_v2(file, db, flags, NULL) != SQLITE_OK) {
		chj_error_set(e, *db ? CHJ_ERR_ARCHIVE : CHJ_ERR_NOMEM, 0, "cannot open sidecar '%s': %s", file,
		    *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return -1;
	}
	sqlite3_busy_timeout(*db, 10000);
	sqlite3_exec(*db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	return 0;
}

int
sidecar_exec(sqlite3 *db, const char *sql, struct chj_error *e)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return chj_error_set(e, CHJ_ERR_ARCHIVE, 0, "sidecar: %s", sqlite3_errmsg(db));
	return 0;
}

int
sidecar_schema(sqlite3 *db, struct chj_error *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sidecar_exec(db, schema_sql, e) < 0)
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
		chj_error_set(e, CHJ_ERR_ARCHIVE, 0, "sidecar: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int
sidecar_add_member(sqlite3 *db, int64_t id, const struct mscan *m, const unsigned char tail[8],
    struct chj_error *err)
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
		chj_error_set(err, CHJ_ERR_ARCHIVE, 0, "sidecar: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int64_t
arch_scan_into(int fd, int64_t from, int64_t size, sqlite3 *db, int64_t next_id, scan_problem_fn problem,
    void *pctx, arch_entry_data_cb data_cb, void *dctx, const int64_t *resync, size_t nresync,
    struct chj_error *e)
{
	int64_t off = from, good = from;
	unsigned char tail[8];
	struct mscan m;
	size_t ri = 0;

	if (sidecar_exec(db, "BEGIN IMMEDIATE", e) < 0)
		return -1;
	while (off < size) {
		if (mscan_member(fd, off, &m, problem, pctx, data_cb, dctx, e) < 0)
			goto fail;
		if (m.complete) {
			errno = 0;
			if (arch_read_tail(fd, m.end, tail) < 0) {
				chj_error_set(e, errno ? CHJ_ERR_SYS : CHJ_ERR_CORRUPT, errno,
				    "cannot read the end of the member at offset %lld", (long long)off);
				mscan_free(&m);
				goto fail;
			}
			if (sidecar_add_member(db, next_id, &m, tail, e) < 0) {
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
	if (sidecar_exec(db, "COMMIT", e) < 0)
		goto fail;
	return good;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
sidecar_rebuild_file(int fd, int64_t size, const char *idx, int unsynced, int64_t *end,
    struct chj_error *err)
{
	struct atomicfile af;
	struct chj_error e;
	sqlite3 *db = NULL;
	char *journal = NULL;

	/* created here, not by SQLite, so it is 0600 whatever the umask */
	if (atomicfile_begin(&af, idx, 0600, &e) < 0) {
		return arch_error_wrap(err, &e, CHJ_ERR_ARCHIVE, "cannot create sidecar: %s", e.msg);
	}
	close(af.fd);
	af.fd = -1;
	/* a crashed rebuild's rollback journal would be played into the new file */
	if (asprintf(&journal, "%s-journal", af.tmp) < 0) {
		chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto fail;
	}
	unlink(journal);
	free(journal);
	if (arch_open_db(&db, af.tmp, SQLITE_OPEN_READWRITE, err) < 0)
		goto fail;
	/* a file nobody reads until atomicfile_commit fsyncs and renames it: a
	 * crash before leaves a temporary file the next rebuild removes, so
	 * SQLite's own journal and syncs (four per statement of the schema)
	 * buy nothing here */
	if (sidecar_exec(db, "PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY", err) < 0 ||
	    sidecar_schema(db, err) < 0)
		goto fail;
	*end = arch_scan_into(fd, 0, size, db, 1, NULL, NULL, NULL, NULL, NULL, 0, err);
	if (*end < 0)
		goto fail;
	if (sqlite3_close(db) != SQLITE_OK) {
		chj_error_set(err, CHJ_ERR_ARCHIVE, 0, "cannot close sidecar '%s'", af.tmp);
		db = NULL;
		goto fail;
	}
	db = NULL;
	if ((unsynced ? atomicfile_commit_unsynced(&af, &e) : atomicfile_commit(&af, &e)) < 0) {
		return arch_error_wrap(err, &e, CHJ_ERR_ARCHIVE, "cannot write sidecar: %s", e.msg);
	}
	return 0;
fail:
	sqlite3_close(db);
	atomicfile_rollback(&af);
	return -1;
}

int64_t
sidecar_max_run(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM runs", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}
