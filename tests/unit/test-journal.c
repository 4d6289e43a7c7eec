/* test-journal.c: cmocka unit tests for the SQLite change journal
 * (common/journal.h): creation (mode 0600 whatever the umask, journal id
 * kept across reopen, different per database), refusal of foreign SQLite
 * files and of another schema version, write batches (seq numbering,
 * last_seq persistence, rollback), coalescing of changes and rescans with
 * and without a prune point, pruning at commit, window queries (seq order,
 * after_seq, `under` at component boundaries), byte-exact paths, sync
 * cookies, the window query plan (it must use the changes_seq index, also
 * with 20k rows), counts, metadata and journal_flags_str; and the cover of a
 * missing root (common/changeset.h). Each test works on a fresh database in a
 * temporary directory (unit-tmp.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "changeset.h"
#include "config.h"
#include "journal.h"
#include "unit-tmp.h"

/* ---- helpers ---- */

struct fix {
	char dir[PATH_MAX];
	char file[PATH_MAX];     /* dir/j.db */
	struct journal *j;
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	if (unit_tmpdir(f->dir, sizeof f->dir, "journal") == NULL)
		return -1;
	unit_join(f->file, PATH_MAX, f->dir, "j.db");
	f->j = journal_new();
	if (f->j == NULL)
		return -1;
	if (journal_open(f->j, f->file, JOURNAL_CREATE) != 0) {
		fprintf(stderr, "%s\n", journal_errmsg(f->j));
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	journal_free(f->j);
	unit_rmtree(f->dir);
	free(f);
	return 0;
}

/* Closes and reopens the fixture's journal. */
static void
reopen(struct fix *f, int flags)
{
	journal_free(f->j);
	f->j = journal_new();
	assert_non_null(f->j);
	if (journal_open(f->j, f->file, flags) != 0)
		fail_msg("reopen: %s", journal_errmsg(f->j));
}

/* Runs sql on file through a separate SQLite connection. */
static void
sql_exec(const char *file, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("sql '%s': %s", sql, err ? err : "?");
	sqlite3_close(db);
}

static int64_t
sql_int(const char *file, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("sql '%s': %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

struct row {
	char *path;
	int64_t seq, time, since;
	unsigned flags;
	char *reason;
};

struct rows {
	struct row r[64];
	size_t n;
	size_t stop_after;     /* 0: never stop */
};

static int
collect_change(void *ctx, const char *path, int64_t seq, int64_t time, unsigned flags)
{
	struct rows *rs = ctx;

	assert_true(rs->n < 64);
	rs->r[rs->n].path = strdup(path);
	rs->r[rs->n].seq = seq;
	rs->r[rs->n].time = time;
	rs->r[rs->n].flags = flags;
	rs->r[rs->n].reason = NULL;
	rs->n++;
	if (rs->stop_after != 0 && rs->n == rs->stop_after)
		return 42;
	return 0;
}

static int
collect_rescan(void *ctx, const char *path, int64_t seq, int64_t time, int64_t since,
    const char *reason)
{
	struct rows *rs = ctx;

	assert_true(rs->n < 64);
	rs->r[rs->n].path = strdup(path);
	rs->r[rs->n].seq = seq;
	rs->r[rs->n].time = time;
	rs->r[rs->n].since = since;
	rs->r[rs->n].flags = 0;
	rs->r[rs->n].reason = strdup(reason);
	rs->n++;
	return 0;
}

static void
rows_free(struct rows *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		free(rs->r[i].path);
		free(rs->r[i].reason);
	}
	memset(rs, 0, sizeof *rs);
}

static void
changes(struct journal *j, int64_t after, const char *under, struct rows *rs)
{
	memset(rs, 0, sizeof *rs);
	if (journal_foreach_change(j, after, under, collect_change, rs) != 0)
		fail_msg("foreach_change: %s", journal_errmsg(j));
}

static void
rescans(struct journal *j, int64_t after, const char *under, struct rows *rs)
{
	memset(rs, 0, sizeof *rs);
	if (journal_foreach_rescan(j, after, under, collect_rescan, rs) != 0)
		fail_msg("foreach_rescan: %s", journal_errmsg(j));
}

#define OK(j, call) do { \
		if ((call) != 0) \
			fail_msg("%s: %s", #call, journal_errmsg(j)); \
	} while (0)

static int64_t
last_seq(struct journal *j)
{
	int64_t s = -1;

	OK(j, journal_last_seq(j, &s));
	return s;
}

static int64_t
count_changes(struct journal *j, int64_t after)
{
	int64_t n = -1;

	OK(j, journal_count_changes(j, after, &n));
	return n;
}

static int64_t
count_rescans(struct journal *j, int64_t after)
{
	int64_t n = -1;

	OK(j, journal_count_rescans(j, after, &n));
	return n;
}

static int
is_hex32(const char *s)
{
	size_t i;

	if (strlen(s) != 32)
		return 0;
	for (i = 0; i < 32; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* ---- creation and identity ---- */

static void
test_create_mode(void **state)
{
	struct fix *f = *state;
	char file[PATH_MAX], dir[PATH_MAX], side[PATH_MAX + 8];
	struct journal *j = journal_new();
	struct stat st;
	mode_t old;

	unit_join(dir, PATH_MAX, f->dir, "state");
	unit_join(file, PATH_MAX, dir, "journal.db");
	old = umask(0);
	if (journal_open(j, file, JOURNAL_CREATE) != 0) {
		umask(old);
		fail_msg("open: %s", journal_errmsg(j));
	}
	umask(old);
	assert_int_equal(journal_was_created(j), 1);
	assert_int_equal(stat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* the missing directory was created private */
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* SQLite's side files (WAL, shared memory) are no more readable */
	snprintf(side, sizeof side, "%s-wal", file);
	if (stat(side, &st) == 0)
		assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(side, sizeof side, "%s-shm", file);
	if (stat(side, &st) == 0)
		assert_int_equal(st.st_mode & 07777, 0600);
	/* WAL mode */
	journal_free(j);
	assert_int_equal(sql_int(file, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
}

static void
test_id_kept_on_reopen(void **state)
{
	struct fix *f = *state;
	char id[33], other_file[PATH_MAX];
	struct journal *j2 = journal_new();
	char *meta_id = NULL;

	assert_int_equal(journal_was_created(f->j), 1);
	assert_true(is_hex32(journal_id(f->j)));
	memcpy(id, journal_id(f->j), 33);
	reopen(f, JOURNAL_CREATE);
	assert_int_equal(journal_was_created(f->j), 0);
	assert_string_equal(journal_id(f->j), id);
	reopen(f, 0);
	assert_string_equal(journal_id(f->j), id);
	reopen(f, JOURNAL_READONLY);
	assert_string_equal(journal_id(f->j), id);
	assert_int_equal(journal_meta_get_text(f->j, "journal_id", &meta_id), 0);
	assert_string_equal(meta_id, id);
	free(meta_id);

	/* another database, another id */
	unit_join(other_file, PATH_MAX, f->dir, "other.db");
	OK(j2, journal_open(j2, other_file, JOURNAL_CREATE));
	assert_true(is_hex32(journal_id(j2)));
	assert_string_not_equal(journal_id(j2), id);
	journal_free(j2);
}

static void
test_open_missing(void **state)
{
	struct fix *f = *state;
	char file[PATH_MAX];
	struct journal *j = journal_new();
	struct stat st;

	unit_join(file, PATH_MAX, f->dir, "absent.db");
	assert_int_equal(journal_open(j, file, 0), -1);
	assert_non_null(strstr(journal_errmsg(j), file));
	assert_non_null(strstr(journal_errmsg(j), "No such file or directory"));
	assert_int_equal(stat(file, &st), -1);
	journal_free(j);
	j = journal_new();
	assert_int_equal(journal_open(j, file, JOURNAL_READONLY), -1);
	assert_int_equal(stat(file, &st), -1);
	journal_free(j);
	/* not a regular file */
	j = journal_new();
	assert_int_equal(journal_open(j, f->dir, JOURNAL_CREATE), -1);
	assert_non_null(strstr(journal_errmsg(j), "not a regular file"));
	journal_free(j);
	journal_free(NULL);
}

/* A SQLite database of another program, holding data, is refused and left
 * as it was. */
static void
test_foreign_sqlite_refused(void **state)
{
	struct fix *f = *state;
	char file[PATH_MAX];
	struct journal *j = journal_new();

	unit_join(file, PATH_MAX, f->dir, "mail-index.db");
	sql_exec(file, "CREATE TABLE messages(id INTEGER PRIMARY KEY, subject TEXT);"
	    "INSERT INTO messages(subject) VALUES('hello'), ('world');");
	assert_int_equal(journal_open(j, file, JOURNAL_CREATE), -1);
	assert_non_null(strstr(journal_errmsg(j), "not a chjournal database"));
	journal_free(j);
	/* untouched: no journal tables were added, not even switched to WAL */
	assert_int_equal(sql_int(file, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'delete'"), 1);
	assert_int_equal(sql_int(file, "SELECT count(*) FROM sqlite_master WHERE name IN "
	    "('meta', 'changes', 'rescans', 'cookies')"), 0);
	assert_int_equal(sql_int(file, "SELECT count(*) FROM messages"), 2);
}

/* Same, when the other program's database has a table named like ours. */
static void
test_foreign_sqlite_with_meta_refused(void **state)
{
	struct fix *f = *state;
	char file[PATH_MAX];
	struct journal *j = journal_new();

	unit_join(file, PATH_MAX, f->dir, "app.db");
	sql_exec(file, "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
	    "INSERT INTO meta VALUES('app_version', 7);");
	assert_int_equal(journal_open(j, file, JOURNAL_CREATE), -1);
	assert_non_null(strstr(journal_errmsg(j), "not a chjournal database"));
	journal_free(j);
	assert_int_equal(sql_int(file, "SELECT count(*) FROM meta"), 1);
}

static void
test_not_sqlite_refused(void **state)
{
	struct fix *f = *state;
	char file[PATH_MAX];
	struct journal *j = journal_new();
	FILE *fp;

	unit_join(file, PATH_MAX, f->dir, "text.db");
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("this is a plain text file, long enough to not be an empty database\n", fp);
	fclose(fp);
	assert_int_equal(journal_open(j, file, JOURNAL_CREATE), -1);
	assert_true(strlen(journal_errmsg(j)) > 0);
	journal_free(j);
}

static void
test_schema_version_mismatch(void **state)
{
	struct fix *f = *state;
	struct journal *j;

	journal_free(f->j);
	f->j = NULL;
	sql_exec(f->file, "UPDATE meta SET value = 2 WHERE key = 'schema_version'");
	j = journal_new();
	assert_int_equal(journal_open(j, f->file, 0), -1);
	assert_non_null(strstr(journal_errmsg(j), "schema version 2 is not supported (expected 1)"));
	journal_free(j);
	j = journal_new();
	assert_int_equal(journal_open(j, f->file, JOURNAL_READONLY), -1);
	assert_non_null(strstr(journal_errmsg(j), "schema version 2 is not supported (expected 1)"));
	journal_free(j);
	j = journal_new();
	assert_int_equal(journal_open(j, f->file, JOURNAL_CREATE), -1);
	journal_free(j);
	/* the version was not rewritten by the attempts */
	assert_int_equal(sql_int(f->file, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);
	/* back to 1: usable again */
	sql_exec(f->file, "UPDATE meta SET value = 1 WHERE key = 'schema_version'");
	f->j = journal_new();
	OK(f->j, journal_open(f->j, f->file, 0));
}

/* ---- batches ---- */

static void
test_batch_seq(void **state)
{
	struct fix *f = *state;
	struct rows rs;

	assert_int_equal(last_seq(f->j), 0);
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/c", JF_CREATED, 100));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_MODIFIED, 101));
	OK(f->j, journal_batch_change(f->j, "/s/b", JF_DELETED, 102));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(last_seq(f->j), 3);
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 3);
	assert_string_equal(rs.r[0].path, "/s/c");
	assert_int_equal(rs.r[0].seq, 1);
	assert_int_equal(rs.r[0].time, 100);
	assert_int_equal(rs.r[0].flags, JF_CREATED);
	assert_string_equal(rs.r[1].path, "/s/a");
	assert_int_equal(rs.r[1].seq, 2);
	assert_int_equal(rs.r[1].flags, JF_MODIFIED);
	assert_string_equal(rs.r[2].path, "/s/b");
	assert_int_equal(rs.r[2].seq, 3);
	assert_int_equal(rs.r[2].flags, JF_DELETED);
	rows_free(&rs);

	/* last_seq survives a reopen and numbering continues from it */
	reopen(f, 0);
	assert_int_equal(last_seq(f->j), 3);
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_rescan(f->j, "/s", 50, "start", 103));
	OK(f->j, journal_batch_change(f->j, "/s/d", JF_CREATED, 103));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(last_seq(f->j), 5);
	changes(f->j, 3, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, "/s/d");
	assert_int_equal(rs.r[0].seq, 5);
	rows_free(&rs);
	rescans(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].seq, 4);
	rows_free(&rs);

	/* an empty batch changes nothing */
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(last_seq(f->j), 5);
	assert_int_equal(sql_int(f->file, "SELECT value FROM meta WHERE key = 'last_seq'"), 5);
}

static void
test_batch_misuse(void **state)
{
	struct fix *f = *state;

	assert_int_equal(journal_batch_commit(f->j), -1);
	assert_non_null(strstr(journal_errmsg(f->j), "no batch open"));
	OK(f->j, journal_batch_begin(f->j, 0));
	assert_int_equal(journal_batch_begin(f->j, 0), -1);
	assert_non_null(strstr(journal_errmsg(f->j), "batch already open"));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_CREATED, 1));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_changes(f->j, 0), 1);
	/* a read-only handle cannot write (BEGIN may succeed, the write not) */
	reopen(f, JOURNAL_READONLY);
	if (journal_batch_begin(f->j, 0) == 0) {
		assert_int_equal(journal_batch_change(f->j, "/s/b", JF_CREATED, 1), -1);
		journal_batch_rollback(f->j);
	}
	assert_int_equal(count_changes(f->j, 0), 1);
}

/* An unsynced batch (the daemon's early flush) commits its changes, but
 * takes no sync cookie: the agent reads a cookie as "durable up to here". */
static void
test_unsynced_batch_refuses_cookie(void **state)
{
	struct fix *f = *state;
	int64_t seq = -1;

	OK(f->j, journal_set_synced(f->j, 0));
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/early", JF_MODIFIED, 1));
	assert_int_equal(journal_batch_cookie(f->j, ".chjournal-cookie.1", (int64_t)time(NULL)), -1);
	assert_non_null(strstr(journal_errmsg(f->j), "not synced to disk"));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_changes(f->j, 0), 1);
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.1", &seq), 0);
	/* a synced batch takes it, with the seq of the changes before it */
	OK(f->j, journal_set_synced(f->j, 1));
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_cookie(f->j, ".chjournal-cookie.1", (int64_t)time(NULL)));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.1", &seq), 1);
	assert_int_equal(seq, 1);
}

static void
test_rollback(void **state)
{
	struct fix *f = *state;
	int64_t seq = -1;
	struct rows rs;

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/keep", JF_CREATED, 1));
	OK(f->j, journal_batch_commit(f->j));

	OK(f->j, journal_batch_begin(f->j, 1));     /* with a prune point: nothing pruned either */
	OK(f->j, journal_batch_change(f->j, "/s/x", JF_CREATED, 2));
	OK(f->j, journal_batch_change(f->j, "/s/keep", JF_DELETED, 2));
	OK(f->j, journal_batch_rescan(f->j, "/s", 1, "overflow", 2));
	OK(f->j, journal_batch_cookie(f->j, ".chjournal-cookie.1", 2));
	journal_batch_rollback(f->j);

	assert_int_equal(last_seq(f->j), 1);
	assert_int_equal(count_changes(f->j, 0), 1);
	assert_int_equal(count_rescans(f->j, 0), 0);
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.1", &seq), 0);
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, "/s/keep");
	assert_int_equal(rs.r[0].flags, JF_CREATED);
	assert_int_equal(rs.r[0].seq, 1);
	rows_free(&rs);

	/* numbering resumes after the last committed seq */
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/y", JF_CREATED, 3));
	OK(f->j, journal_batch_commit(f->j));
	changes(f->j, 1, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].seq, 2);
	rows_free(&rs);
	assert_int_equal(last_seq(f->j), 2);
}

/* ---- coalescing and pruning ---- */

static void
test_coalesce_merges(void **state)
{
	struct fix *f = *state;
	struct rows rs;

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_CREATED | JF_MODIFIED, 10));
	OK(f->j, journal_batch_change(f->j, "/s/b", JF_MODIFIED, 10));
	OK(f->j, journal_batch_commit(f->j));
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_ATTRIB, 20));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_changes(f->j, 0), 2);
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	/* the row moved to the newer seq, kept the union of the flags */
	assert_string_equal(rs.r[0].path, "/s/b");
	assert_int_equal(rs.r[0].seq, 2);
	assert_string_equal(rs.r[1].path, "/s/a");
	assert_int_equal(rs.r[1].seq, 3);
	assert_int_equal(rs.r[1].time, 20);
	assert_int_equal(rs.r[1].flags, JF_CREATED | JF_MODIFIED | JF_ATTRIB);
	rows_free(&rs);

	/* the same path twice in one batch: one row, flags OR-ed */
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/c", JF_CREATED, 30));
	OK(f->j, journal_batch_change(f->j, "/s/c", JF_DELETED, 31));
	OK(f->j, journal_batch_commit(f->j));
	changes(f->j, 3, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, "/s/c");
	assert_int_equal(rs.r[0].seq, 5);
	assert_int_equal(rs.r[0].flags, JF_CREATED | JF_DELETED);
	rows_free(&rs);
	assert_int_equal(last_seq(f->j), 5);
	assert_int_equal(count_changes(f->j, 0), 3);
}

static void
test_prune_replaces_and_deletes(void **state)
{
	struct fix *f = *state;
	struct rows rs;

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_CREATED, 1));     /* 1 */
	OK(f->j, journal_batch_change(f->j, "/s/b", JF_MODIFIED, 1));    /* 2 */
	OK(f->j, journal_batch_change(f->j, "/s/c", JF_DELETED, 1));     /* 3 */
	OK(f->j, journal_batch_commit(f->j));

	/* every consumer committed past 2: a is replaced, b deleted, c kept/merged */
	OK(f->j, journal_batch_begin(f->j, 2));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_ATTRIB, 2));      /* 4 */
	OK(f->j, journal_batch_change(f->j, "/s/c", JF_CREATED, 2));     /* 5 */
	OK(f->j, journal_batch_commit(f->j));
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[0].path, "/s/a");
	assert_int_equal(rs.r[0].seq, 4);
	assert_int_equal(rs.r[0].flags, JF_ATTRIB);
	assert_string_equal(rs.r[1].path, "/s/c");
	assert_int_equal(rs.r[1].seq, 5);
	assert_int_equal(rs.r[1].flags, JF_DELETED | JF_CREATED);
	rows_free(&rs);

	/* prune point exactly at a row's seq: that row is replaced */
	OK(f->j, journal_batch_begin(f->j, 4));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_MODIFIED, 3));    /* 6 */
	OK(f->j, journal_batch_commit(f->j));
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[0].path, "/s/c");
	assert_string_equal(rs.r[1].path, "/s/a");
	assert_int_equal(rs.r[1].seq, 6);
	assert_int_equal(rs.r[1].flags, JF_MODIFIED);
	rows_free(&rs);

	/* a batch with only a prune point deletes the rows at or below it */
	OK(f->j, journal_batch_begin(f->j, 5));
	OK(f->j, journal_batch_commit(f->j));
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, "/s/a");
	rows_free(&rs);
	assert_int_equal(last_seq(f->j), 6);

	/* prune point 0 deletes nothing */
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_changes(f->j, 0), 1);
}

static void
test_rescan_coalesce(void **state)
{
	struct fix *f = *state;
	struct rows rs;

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_rescan(f->j, "/s/d", 100, "start", 1000));    /* 1 */
	OK(f->j, journal_batch_commit(f->j));
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_rescan(f->j, "/s/d", 50, "overflow", 1001));  /* 2 */
	OK(f->j, journal_batch_commit(f->j));
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_rescan(f->j, "/s/d", 80, "watch failed", 1002)); /* 3 */
	OK(f->j, journal_batch_rescan(f->j, "/s/e", 90, "start", 1002));     /* 4 */
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_rescans(f->j, 0), 2);
	rescans(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	/* since = the earliest of both, seq and time the newest */
	assert_string_equal(rs.r[0].path, "/s/d");
	assert_int_equal(rs.r[0].seq, 3);
	assert_int_equal(rs.r[0].time, 1002);
	assert_int_equal(rs.r[0].since, 50);
	assert_string_equal(rs.r[0].reason, "watch failed");
	assert_string_equal(rs.r[1].path, "/s/e");
	assert_int_equal(rs.r[1].seq, 4);
	assert_int_equal(rs.r[1].since, 90);
	rows_free(&rs);

	/* old row at/below the prune point: replaced, and older rows deleted */
	OK(f->j, journal_batch_begin(f->j, 3));
	OK(f->j, journal_batch_rescan(f->j, "/s/d", 500, "start", 1003));    /* 5 */
	OK(f->j, journal_batch_commit(f->j));
	rescans(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[0].path, "/s/e");
	assert_string_equal(rs.r[1].path, "/s/d");
	assert_int_equal(rs.r[1].seq, 5);
	assert_int_equal(rs.r[1].since, 500);
	rows_free(&rs);
	/* old row above the prune point: still the minimum */
	OK(f->j, journal_batch_begin(f->j, 3));
	OK(f->j, journal_batch_rescan(f->j, "/s/e", 700, "start", 1004));    /* 6 */
	OK(f->j, journal_batch_commit(f->j));
	rescans(f->j, 5, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, "/s/e");
	assert_int_equal(rs.r[0].since, 90);
	rows_free(&rs);
	/* pruning deletes rescans at or below the prune point */
	OK(f->j, journal_batch_begin(f->j, 5));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_rescans(f->j, 0), 1);
	assert_int_equal(count_rescans(f->j, 5), 1);
	assert_int_equal(count_rescans(f->j, 6), 0);
}

/* ---- window queries ---- */

static void
test_foreach_order_after_under(void **state)
{
	struct fix *f = *state;
	struct rows rs;
	static const char *paths[] = {
		"/z/last-by-name", "/a/bc", "/a/b/x", "/a/b", "/a/bcd/e", "/a", "/a/b/y/z", "/a/b-c",
	};
	size_t i;

	OK(f->j, journal_batch_begin(f->j, 0));
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
		OK(f->j, journal_batch_change(f->j, paths[i], JF_MODIFIED, (int64_t)i));
	OK(f->j, journal_batch_commit(f->j));

	/* seq order, not path order */
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 8);
	for (i = 0; i < rs.n; i++) {
		assert_string_equal(rs.r[i].path, paths[i]);
		assert_int_equal(rs.r[i].seq, (int64_t)i + 1);
	}
	rows_free(&rs);
	/* after_seq: strictly after */
	changes(f->j, 5, NULL, &rs);
	assert_int_equal(rs.n, 3);
	assert_int_equal(rs.r[0].seq, 6);
	assert_string_equal(rs.r[0].path, "/a");
	rows_free(&rs);
	changes(f->j, 8, NULL, &rs);
	assert_int_equal(rs.n, 0);
	changes(f->j, 100, NULL, &rs);
	assert_int_equal(rs.n, 0);
	assert_int_equal(count_changes(f->j, 5), 3);
	assert_int_equal(count_changes(f->j, 8), 0);
	assert_int_equal(count_changes(f->j, -1), 8);

	/* under: at a component boundary */
	changes(f->j, 0, "/a/b", &rs);
	assert_int_equal(rs.n, 3);
	assert_string_equal(rs.r[0].path, "/a/b/x");
	assert_string_equal(rs.r[1].path, "/a/b");
	assert_string_equal(rs.r[2].path, "/a/b/y/z");
	rows_free(&rs);
	changes(f->j, 3, "/a/b", &rs);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[0].path, "/a/b");
	rows_free(&rs);
	changes(f->j, 0, "/a/bc", &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, "/a/bc");
	rows_free(&rs);
	changes(f->j, 0, "/a", &rs);
	assert_int_equal(rs.n, 7);
	rows_free(&rs);
	changes(f->j, 0, "/", &rs);
	assert_int_equal(rs.n, 8);
	rows_free(&rs);
	changes(f->j, 0, "/nothing", &rs);
	assert_int_equal(rs.n, 0);

	/* the callback's non-zero return stops the walk and is returned */
	memset(&rs, 0, sizeof rs);
	rs.stop_after = 2;
	assert_int_equal(journal_foreach_change(f->j, 0, NULL, collect_change, &rs), 42);
	assert_int_equal(rs.n, 2);
	rows_free(&rs);
}

static void
test_foreach_rescan_under(void **state)
{
	struct fix *f = *state;
	struct rows rs;

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_rescan(f->j, "/a", 1, "r1", 1));
	OK(f->j, journal_batch_rescan(f->j, "/a/b/c", 1, "r2", 1));
	OK(f->j, journal_batch_rescan(f->j, "/a/bc", 1, "r3", 1));
	OK(f->j, journal_batch_rescan(f->j, "/x", 1, "r4", 1));
	OK(f->j, journal_batch_commit(f->j));
	/* a rescan of a parent covers `under`, one below it too */
	rescans(f->j, 0, "/a/b", &rs);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[0].path, "/a");
	assert_string_equal(rs.r[1].path, "/a/b/c");
	rows_free(&rs);
	rescans(f->j, 1, "/a/b", &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].reason, "r2");
	rows_free(&rs);
	rescans(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 4);
	rows_free(&rs);
}

static void
test_paths_are_bytes(void **state)
{
	struct fix *f = *state;
	struct rows rs;
	static const char *paths[] = {
		"/s/new\nline",
		"/s/\xff\xfe invalid utf-8 \xc3(",
		"/s/tab\there",
		"/s/caf\xc3\xa9",
		"/s/\x01\x7f",
		"/s/quote'\"\\",
		"/s/ trailing space ",
	};
	size_t i;

	OK(f->j, journal_batch_begin(f->j, 0));
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
		OK(f->j, journal_batch_change(f->j, paths[i], JF_CREATED, 1));
	/* coalescing matches the exact bytes too */
	OK(f->j, journal_batch_change(f->j, paths[1], JF_MODIFIED, 2));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_changes(f->j, 0), (int64_t)(sizeof paths / sizeof paths[0]));
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, sizeof paths / sizeof paths[0]);
	for (i = 0; i < rs.n; i++) {
		/* paths[1] moved to the end when it changed again */
		size_t want = i == 0 ? 0 : i == rs.n - 1 ? 1 : i + 1;

		assert_int_equal(strlen(rs.r[i].path), strlen(paths[want]));
		assert_memory_equal(rs.r[i].path, paths[want], strlen(paths[want]));
	}
	assert_int_equal(rs.r[rs.n - 1].flags, JF_CREATED | JF_MODIFIED);
	rows_free(&rs);
	/* stored as BLOBs (bytewise order), not as TEXT */
	assert_int_equal(sql_int(f->file, "SELECT count(*) FROM changes WHERE typeof(path) != 'blob'"), 0);
	/* under with odd bytes */
	changes(f->j, 0, "/s/new\nline", &rs);
	assert_int_equal(rs.n, 1);
	rows_free(&rs);
}

/* ---- cookies ---- */

static void
test_cookies(void **state)
{
	struct fix *f = *state;
	int64_t seq = -1, now = (int64_t)time(NULL);

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/a", JF_CREATED, now));       /* 1 */
	OK(f->j, journal_batch_change(f->j, "/s/b", JF_CREATED, now));       /* 2 */
	OK(f->j, journal_batch_cookie(f->j, ".chjournal-cookie.one", now));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.one", &seq), 1);
	/* everything journaled before the cookie is at or below its seq */
	assert_int_equal(seq, 2);
	assert_int_equal(seq, last_seq(f->j));

	/* a cookie between changes of one batch */
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/s/c", JF_CREATED, now));       /* 3 */
	OK(f->j, journal_batch_cookie(f->j, ".chjournal-cookie.two", now));
	OK(f->j, journal_batch_change(f->j, "/s/d", JF_CREATED, now));       /* 4 */
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.two", &seq), 1);
	assert_int_equal(seq, 3);
	/* a cookie alone in a batch gets the last seq */
	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_cookie(f->j, ".chjournal-cookie.three", now));
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.three", &seq), 1);
	assert_int_equal(seq, 4);
	/* cookies are not changes */
	assert_int_equal(count_changes(f->j, 0), 4);

	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.unknown", &seq), 0);
	OK(f->j, journal_cookie_delete(f->j, ".chjournal-cookie.one"));
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.one", &seq), 0);
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.two", &seq), 1);
	/* deleting a missing cookie is not an error */
	OK(f->j, journal_cookie_delete(f->j, ".chjournal-cookie.one"));
	/* visible from another connection */
	reopen(f, JOURNAL_READONLY);
	assert_int_equal(journal_cookie_seq(f->j, ".chjournal-cookie.three", &seq), 1);
	assert_int_equal(seq, 4);
}

/* ---- query plan ---- */

static void
assert_plan_uses_seq_index(struct journal *j)
{
	char plan[4096];

	OK(j, journal_window_plan(j, plan, sizeof plan));
	if (strstr(plan, "COVERING INDEX changes_seq") == NULL)
		fail_msg("window query plan does not use changes_seq as a covering index:\n%s", plan);
}

/* A journal from before the covering seq index: the daemon's open
 * (JOURNAL_CREATE) rebuilds it, keeping every row; readers never touch it. */
static void
test_seq_index_upgrade(void **state)
{
	struct fix *f = *state;
	struct rows rs;

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/spool/a", JF_CREATED, 10));
	OK(f->j, journal_batch_change(f->j, "/spool/b", JF_MODIFIED, 11));
	OK(f->j, journal_batch_commit(f->j));
	journal_free(f->j);
	f->j = NULL;
	sql_exec(f->file, "DROP INDEX changes_seq; CREATE INDEX changes_seq ON changes(seq)");
	reopen(f, JOURNAL_READONLY);
	assert_int_equal(sql_int(f->file, "SELECT count(*) FROM pragma_index_info('changes_seq')"), 1);
	reopen(f, 0);
	assert_int_equal(sql_int(f->file, "SELECT count(*) FROM pragma_index_info('changes_seq')"), 1);
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	rows_free(&rs);
	reopen(f, JOURNAL_CREATE);
	assert_int_equal(sql_int(f->file, "SELECT count(*) FROM pragma_index_info('changes_seq')"), 3);
	assert_plan_uses_seq_index(f->j);
	changes(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[0].path, "/spool/a");
	assert_int_equal(rs.r[0].flags, JF_CREATED);
	assert_string_equal(rs.r[1].path, "/spool/b");
	assert_int_equal(rs.r[1].flags, JF_MODIFIED);
	rows_free(&rs);
}

static void
test_window_plan(void **state)
{
	struct fix *f = *state;
	struct rows rs;
	char path[64];
	int i;

	assert_plan_uses_seq_index(f->j);
	OK(f->j, journal_batch_begin(f->j, 0));
	for (i = 0; i < 20000; i++) {
		snprintf(path, sizeof path, "/spool/u%03d/Maildir/cur/%07d", i % 500, i);
		OK(f->j, journal_batch_change(f->j, path, JF_CREATED, i));
	}
	OK(f->j, journal_batch_commit(f->j));
	assert_int_equal(count_changes(f->j, 0), 20000);
	assert_int_equal(last_seq(f->j), 20000);
	assert_plan_uses_seq_index(f->j);
	/* with statistics gathered, still */
	journal_free(f->j);
	f->j = NULL;
	sql_exec(f->file, "ANALYZE");
	f->j = journal_new();
	OK(f->j, journal_open(f->j, f->file, 0));
	assert_plan_uses_seq_index(f->j);
	changes(f->j, 19990, NULL, &rs);
	assert_int_equal(rs.n, 10);
	assert_int_equal(rs.r[0].seq, 19991);
	assert_string_equal(rs.r[0].path, "/spool/u490/Maildir/cur/0019990");
	assert_int_equal(rs.r[9].seq, 20000);
	rows_free(&rs);
	assert_int_equal(count_changes(f->j, 19990), 10);
}

/* ---- metadata ---- */

static void
test_meta(void **state)
{
	struct fix *f = *state;
	int64_t v = -1;
	char *t = NULL;

	assert_int_equal(journal_meta_get_int(f->j, "no_such_key", &v), 1);
	assert_int_equal(journal_meta_get_text(f->j, "no_such_key", &t), 1);
	OK(f->j, journal_meta_set_int(f->j, "last_flush", 1700000000123LL));
	OK(f->j, journal_meta_set_text(f->j, "daemon_status", "running, 3 roots"));
	assert_int_equal(journal_meta_get_int(f->j, "last_flush", &v), 0);
	assert_int_equal(v, 1700000000123LL);
	assert_int_equal(journal_meta_get_text(f->j, "daemon_status", &t), 0);
	assert_string_equal(t, "running, 3 roots");
	free(t);
	OK(f->j, journal_meta_set_int(f->j, "last_flush", -5));
	reopen(f, JOURNAL_READONLY);
	assert_int_equal(journal_meta_get_int(f->j, "last_flush", &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(journal_meta_get_int(f->j, "schema_version", &v), 0);
	assert_int_equal(v, JOURNAL_SCHEMA_VERSION);
}

/* ---- flags ---- */

static void
test_flags_str(void **state)
{
	char buf[128];
	unsigned all = JF_CREATED | JF_MODIFIED | JF_ATTRIB | JF_DELETED | JF_RENAMED | JF_SUBTREE |
	    JF_DIR | JF_MOVED_OUT;
	const char *all_str = "created,modified,attrib,deleted,renamed,subtree,dir,moved_out";
	size_t size;

	(void)state;
	assert_string_equal(journal_flags_str(0, buf, sizeof buf), "");
	assert_string_equal(journal_flags_str(JF_CREATED, buf, sizeof buf), "created");
	assert_string_equal(journal_flags_str(JF_CREATED | JF_MODIFIED, buf, sizeof buf), "created,modified");
	assert_string_equal(journal_flags_str(JF_DELETED | JF_DIR, buf, sizeof buf), "deleted,dir");
	assert_string_equal(journal_flags_str(JF_DELETED | JF_MOVED_OUT, buf, sizeof buf),
	    "deleted,moved_out");
	assert_string_equal(journal_flags_str(JF_RENAMED | JF_SUBTREE | JF_DIR, buf, sizeof buf),
	    "renamed,subtree,dir");
	assert_string_equal(journal_flags_str(JF_ATTRIB, buf, sizeof buf), "attrib");
	assert_string_equal(journal_flags_str(all, buf, sizeof buf), all_str);
	assert_ptr_equal(journal_flags_str(all, buf, sizeof buf), buf);

	/* small buffers: NUL-terminated prefix, nothing written past the end */
	for (size = 1; size <= strlen(all_str) + 1; size++) {
		unsigned char guard[96];
		char *b = (char *)guard + 8;
		size_t k;

		memset(guard, 0xA5, sizeof guard);
		journal_flags_str(all, b, size);
		for (k = 0; k < 8; k++)
			assert_int_equal(guard[k], 0xA5);
		for (k = 8 + size; k < sizeof guard; k++)
			assert_int_equal(guard[k], 0xA5);
		assert_non_null(memchr(b, '\0', size));
		assert_memory_equal(b, all_str, strlen(b));
		if (size == strlen(all_str) + 1)
			assert_string_equal(b, all_str);
	}
}

/* ---- a missing root (common/changeset.c) ---- */

/* A root is missing when the configuration said so, or when it went since;
 * the cover of a missing root is one whole-root rescan (since 0) after the
 * given seq: recorded once per window, kept at 0 by later renewals. */
static void
test_cover_missing_root(void **state)
{
	struct fix *f = *state;
	struct config c;
	struct rows rs;
	char r1[PATH_MAX], r2[PATH_MAX], text[3 * PATH_MAX];

	unit_join(r1, PATH_MAX, f->dir, "r1");
	unit_join(r2, PATH_MAX, f->dir, "r2");
	assert_int_equal(mkdir(r1, 0755), 0);
	snprintf(text, sizeof text, "root = %s\nroot = %s\n", r1, r2);
	if (config_parse(&c, "t.conf", text) != 0)
		fail_msg("config: %s", c.err.msg);
	assert_int_equal(changeset_root_missing(&c, 0), 0);
	assert_int_equal(changeset_root_missing(&c, 1), ENOENT);
	assert_int_equal(rmdir(r1), 0);          /* gone since it was read */
	assert_int_equal(changeset_root_missing(&c, 0), ENOENT);
	config_free(&c);

	OK(f->j, journal_batch_begin(f->j, 0));
	OK(f->j, journal_batch_change(f->j, "/x", JF_MODIFIED, 1000));      /* 1 */
	OK(f->j, journal_batch_commit(f->j));
	OK(f->j, changeset_cover_missing_root(f->j, r2, 1));                 /* 2 */
	assert_int_equal(last_seq(f->j), 2);
	rescans(f->j, 1, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].path, r2);
	assert_int_equal(rs.r[0].seq, 2);
	assert_int_equal(rs.r[0].since, 0);
	rows_free(&rs);
	/* the same window (a begin, then its lists): recorded once */
	OK(f->j, changeset_cover_missing_root(f->j, r2, 1));
	assert_int_equal(last_seq(f->j), 2);
	/* a later window gets its own, after its seq */
	OK(f->j, changeset_cover_missing_root(f->j, r2, 2));                 /* 3 */
	assert_int_equal(last_seq(f->j), 3);
	/* a renewal by the daemon keeps since 0 until it is committed past */
	OK(f->j, journal_batch_begin(f->j, 1));
	OK(f->j, journal_batch_rescan(f->j, r2, 900, "root not watched", 1001)); /* 4 */
	OK(f->j, journal_batch_commit(f->j));
	rescans(f->j, 0, NULL, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].seq, 4);
	assert_int_equal(rs.r[0].since, 0);
	rows_free(&rs);
	/* a whole-root rescan of another path does not count */
	OK(f->j, changeset_cover_missing_root(f->j, r1, 3));                 /* 5 */
	assert_int_equal(count_rescans(f->j, 0), 2);
}

/* Batches of new rows with long paths: about 2.4 MB of pages each. */
static void
write_big_batch(struct journal *j, int round)
{
	char path[1024];
	int i;

	memset(path, 'p', sizeof path - 1);
	path[sizeof path - 1] = '\0';
	OK(j, journal_batch_begin(j, 0));
	for (i = 0; i < 1200; i++) {
		snprintf(path, 32, "/big/%03d/%06d", round, i);
		path[strlen(path)] = 'p';
		OK(j, journal_batch_change(j, path, JF_CREATED, 100 + round));
	}
	OK(j, journal_batch_commit(j));
}

static off_t
file_size(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	unit_join(p, sizeof p, dir, name);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

/* JOURNAL_WRITER: the commits leave the WAL to the handle's thread, which
 * copies it into the database (nothing else does: its commits do not); the
 * WAL starts over after each complete copy, cut back to 16 MiB, instead of
 * growing with every batch. Waits on the thread's count (10 s at most). */
static void
test_writer_checkpoints_on_its_thread(void **state)
{
	struct fix *f = *state;
	off_t db0;
	unsigned long before;
	int round, waited;

	reopen(f, JOURNAL_WRITER);
	assert_int_equal(journal_checkpoints(f->j), 0);
	db0 = file_size(f->dir, "j.db");
	for (round = 0; round < 12; round++) {
		before = journal_checkpoints(f->j);
		write_big_batch(f->j, round);
		for (waited = 0; journal_checkpoints(f->j) == before && waited < 10000; waited++)
			usleep(1000);
		assert_true(journal_checkpoints(f->j) > before);
	}
	/* 12 batches of about 2.4 MB went into the database ... */
	assert_true(file_size(f->dir, "j.db") > db0 + 12 * 1024 * 1024);
	/* ... and the WAL held one or two of them at a time */
	assert_true(file_size(f->dir, "j.db-wal") <= 16 * 1024 * 1024);
	assert_int_equal(sql_int(f->file, "SELECT count(*) FROM changes WHERE substr(path, 1, 5) = CAST('/big/' AS BLOB)"),
	    12 * 1200);
}

/* Without JOURNAL_WRITER, SQLite checkpoints in the commits: no thread. */
static void
test_no_writer_thread(void **state)
{
	struct fix *f = *state;

	write_big_batch(f->j, 0);
	assert_int_equal(journal_checkpoints(f->j), 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_mode),
		T(test_id_kept_on_reopen),
		T(test_open_missing),
		T(test_foreign_sqlite_refused),
		T(test_foreign_sqlite_with_meta_refused),
		T(test_not_sqlite_refused),
		T(test_schema_version_mismatch),
		T(test_seq_index_upgrade),
		T(test_batch_seq),
		T(test_batch_misuse),
		T(test_rollback),
		T(test_unsynced_batch_refuses_cookie),
		T(test_coalesce_merges),
		T(test_prune_replaces_and_deletes),
		T(test_rescan_coalesce),
		T(test_foreach_order_after_under),
		T(test_foreach_rescan_under),
		T(test_paths_are_bytes),
		T(test_cookies),
		T(test_window_plan),
		T(test_meta),
		T(test_cover_missing_root),
		T(test_writer_checkpoints_on_its_thread),
		T(test_no_writer_thread),
		cmocka_unit_test(test_flags_str),
	};
#undef T

	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
