/* archive-query.c: what the sidecar knows of an open archive: its runs,
 * whether an entry exists, the newest copy of one, the newest copies under
 * a prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive-int.h"
#include "array.h"

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

int
arch_row_entry(sqlite3_stmt *st, int c, struct arch_entry *e)
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

int
arch_db_fail(struct arch *a, sqlite3_stmt *st)
{
	chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "sidecar '%s': %s", a->idx, sqlite3_errmsg(a->db));
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
		return arch_db_fail(a, st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = array_grow(v, cnt, &cap, sizeof *v, 16)) == NULL) {
			free(v);
			sqlite3_finalize(st);
			chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
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
		return arch_db_fail(a, st);
	}
	sqlite3_finalize(st);
	*runs = v;
	*n = cnt;
	return 0;
}

/* The cached statement *slot for sql, prepared on first use; NULL (the
 * handle's error set) when it cannot be. */
static sqlite3_stmt *
cached_stmt(struct arch *a, sqlite3_stmt **slot, const char *sql)
{
	if (*slot == NULL && sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
		arch_db_fail(a, *slot);
		*slot = NULL;
	}
	return *slot;
}

/* Makes a cached statement ready for its next use. */
static void
cached_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int
arch_has(struct arch *a, const char *name)
{
	sqlite3_stmt *st = cached_stmt(a, &a->st_has, "SELECT 1 FROM entries WHERE name = ?1 LIMIT 1");
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "sidecar '%s': %s", a->idx, sqlite3_errmsg(a->db));
		cached_done(st);
		return -1;
	}
	cached_done(st);
	return rc == SQLITE_ROW;
}

int
arch_latest(struct arch *a, const char *name, int64_t upto_run, struct arch_entry *e)
{
	sqlite3_stmt *st = cached_stmt(a, &a->st_latest, "SELECT " ARCH_ENTRY_COLS " FROM entries"
	    " WHERE name = ?1 AND (?2 = 0 OR run <= ?2) ORDER BY id DESC LIMIT 1");
	int rc;

	memset(e, 0, sizeof *e);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, upto_run);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		cached_done(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "sidecar '%s': %s", a->idx, sqlite3_errmsg(a->db));
		cached_done(st);
		return -1;
	}
	rc = arch_row_entry(st, 0, e);
	cached_done(st);
	if (rc < 0) {
		arch_entry_free(e);
		return chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
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
		chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
		return -1;
	}
	hl = prefix_upper(prefix, hi);
	/* the newest copy per name: SQLite takes the bare columns from the max(id) row */
	if (sqlite3_prepare_v2(a->db, "SELECT max(id), " ARCH_ENTRY_COLS " FROM entries WHERE name >= ?1"
	    " AND (?2 IS NULL OR name < ?2) AND (?3 = 0 OR run <= ?3) GROUP BY name ORDER BY name",
	    -1, &st, NULL) != SQLITE_OK) {
		free(hi);
		return arch_db_fail(a, st);
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
		if (arch_row_entry(st, 1, &vv[cnt]) < 0) {
			arch_entry_free(&vv[cnt]);
			goto oom;
		}
		cnt++;
	}
	free(hi);
	if (rc != SQLITE_DONE) {
		arch_entries_free(vv, cnt);
		return arch_db_fail(a, st);
	}
	sqlite3_finalize(st);
	*v = vv;
	*n = cnt;
	return 0;
oom:
	free(hi);
	arch_entries_free(vv, cnt);
	sqlite3_finalize(st);
	chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
	return -1;
}
