/* journal.c: the SQLite change journal: schema, write batches, window
 * queries, metadata. Every SQL statement of the project lives here. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal.h"
#include "path.h"

/* Checkpoints on a thread (JOURNAL_WRITER): see
 * checkpointer_start(). */
struct checkpointer {
	sqlite3 *db;             /* its own connection, used by its thread only */
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int due, stop;           /* under mu */
	unsigned long complete;  /* checkpoints that copied the whole WAL (atomic) */
};

struct journal {
	sqlite3 *db;
	struct checkpointer *ckpt;     /* NULL: SQLite checkpoints in commits */
	char *file;
	char id[33];
	int created;
	int open_flags;
	int in_batch;
	int unsynced;                  /* journal_set_synced(j, 0) in force */
	int64_t batch_seq;      /* last seq handed out in this batch */
	int64_t prune_seq;
	sqlite3_stmt *st_change;
	sqlite3_stmt *st_meta;          /* meta_set: a flush sets a dozen keys */
	sqlite3_stmt *st_prune[3];      /* prune: at every flush's commit */
	sqlite3_stmt *st_rescan;
	sqlite3_stmt *st_cookie;
	sqlite3_stmt *st_plain_clear;
	sqlite3_stmt *st_plain_below;
	struct chj_error err;
};

static const char *schema_sql =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS changes("
	"  path BLOB PRIMARY KEY, seq INTEGER NOT NULL, time INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS changes_seq ON changes(seq, time, flags);"
	"CREATE TABLE IF NOT EXISTS rescans("
	"  path BLOB PRIMARY KEY, seq INTEGER NOT NULL, time INTEGER NOT NULL,"
	"  since INTEGER NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS rescans_seq ON rescans(seq);"
	"CREATE TABLE IF NOT EXISTS cookies("
	"  name TEXT PRIMARY KEY, seq INTEGER NOT NULL, time INTEGER NOT NULL) WITHOUT ROWID;";

/* The names of multiply-linked files (see journal_links_update). Added to
 * journals made before it by journal_open() (links_table). */
static const char *links_sql =
	"CREATE TABLE IF NOT EXISTS links("
	"  path BLOB PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS links_ino ON links(ino);"
	"CREATE TABLE IF NOT EXISTS links_hunted("
	"  dev INTEGER NOT NULL, ino INTEGER NOT NULL, nlink INTEGER NOT NULL,"
	"  PRIMARY KEY(dev, ino)) WITHOUT ROWID;";

/* JF_PLAIN in the SQL below */
#define PLAIN_SQL "256"
_Static_assert(JF_PLAIN == 256, "PLAIN_SQL is JF_PLAIN");

/* Rows committed past by every consumer (seq <= ?5) start afresh; others keep
 * the union of what happened, so a change before a consumer's begin is never
 * hidden by a later one. JF_PLAIN is what the last write says. */
static const char *upsert_change_sql =
	"INSERT INTO changes(path, seq, time, flags) VALUES(?1, ?2, ?3, ?4) "
	"ON CONFLICT(path) DO UPDATE SET seq = excluded.seq, time = excluded.time, "
	"flags = CASE WHEN changes.seq <= ?5 THEN excluded.flags "
	"             ELSE (changes.flags & ~" PLAIN_SQL ") | excluded.flags END";

static const char *upsert_rescan_sql =
	"INSERT INTO rescans(path, seq, time, since, reason) VALUES(?1, ?2, ?3, ?4, ?5) "
	"ON CONFLICT(path) DO UPDATE SET seq = excluded.seq, time = excluded.time, "
	"reason = excluded.reason, "
	"since = CASE WHEN rescans.seq <= ?6 THEN excluded.since "
	"             ELSE min(rescans.since, excluded.since) END";

static const char *upsert_cookie_sql =
	"INSERT INTO cookies(name, seq, time) VALUES(?1, ?2, ?3) "
	"ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, time = excluded.time";

/* The window query: the seq index must drive it (see journal_window_plan). */
static const char *window_changes_sql =
	"SELECT path, seq, time, flags FROM changes INDEXED BY changes_seq "
	"WHERE seq > ?1 ORDER BY seq";
static const char *window_rescans_sql =
	"SELECT path, seq, time, since, reason FROM rescans INDEXED BY rescans_seq "
	"WHERE seq > ?1 ORDER BY seq";

/* Fills the handle's error (code, errno, message naming the journal) and
 * returns -1. SQLite's own message is appended when it has one. */
static int
jerr_code(struct journal *j, enum chj_code code, int errnum, const char *fmt, ...)
{
	va_list ap;
	char msg[768];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (code == CHJ_ERR_JOURNAL && j->db != NULL && sqlite3_errcode(j->db) != SQLITE_OK)
		return chj_error_set(&j->err, code, 0, "journal '%s': %s: %s",
		    j->file ? j->file : "?", msg, sqlite3_errmsg(j->db));
	return chj_error_set(&j->err, code, errnum, "journal '%s': %s", j->file ? j->file : "?", msg);
}

#define jerr(j, ...) jerr_code((j), CHJ_ERR_JOURNAL, 0, __VA_ARGS__)

struct journal *
journal_new(void)
{
	return calloc(1, sizeof(struct journal));
}

const char *
journal_errmsg(const struct journal *j)
{
	return j->err.msg;
}

const struct chj_error *
journal_error(const struct journal *j)
{
	return &j->err;
}

const char *
journal_id(const struct journal *j)
{
	return j->id;
}

int
journal_was_created(const struct journal *j)
{
	return j->created;
}

static int
exec_sql(struct journal *j, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(j->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		chj_error_set(&j->err, CHJ_ERR_JOURNAL, 0, "journal '%s': %s", j->file,
		    err ? err : "error");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/* Creates the file with mode 0600 (whatever the umask) and its directory. */
static int
create_db_file(struct journal *j, const char *file)
{
	int fd;

	if (path_mkdir_parent(file) < 0)
		return jerr(j, "cannot create directory: %s", strerror(errno));
	/* a -wal or -shm without its database belongs to a journal that is gone
	 * (deleted, or replaced by a copy): SQLite would replay that journal's
	 * pages into the new one. A connection still open on them keeps its own. */
	{
		static const char *const sfx[] = { "-wal", "-shm" };
		char side[4096];
		size_t i;

		for (i = 0; i < 2; i++)
			if (snprintf(side, sizeof side, "%s%s", file, sfx[i]) < (int)sizeof side &&
			    unlink(side) < 0 && errno != ENOENT)
				return jerr(j, "cannot remove the stale '%s': %s", side, strerror(errno));
	}
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return jerr(j, "cannot create: %s", strerror(errno));
	if (fchmod(fd, 0600) < 0) {
		int e = errno;

		close(fd);
		return jerr(j, "cannot set mode 0600: %s", strerror(e));
	}
	close(fd);
	j->created = 1;
	return 0;
}

static int
new_journal_id(struct journal *j)
{
	unsigned char raw[16];
	size_t i;

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return jerr(j, "cannot read random bytes: %s", strerror(errno));
	for (i = 0; i < sizeof raw; i++)
		snprintf(j->id + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* Reads the journal id of an existing, current schema without taking a write
 * lock. Returns 0 (done), 1 (schema missing: create it), -1 (error). */
static int
read_existing_schema(struct journal *j)
{
	sqlite3_stmt *st = NULL;
	int64_t version = 0;
	char *id = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
	    -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot read the schema (not an SQLite database?)");
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return jerr(j, "cannot read the schema (not an SQLite database?)");
	rc = journal_meta_get_int(j, "schema_version", &version);
	if (rc != 0)
		return rc;
	if (version != JOURNAL_SCHEMA_VERSION)
		return jerr(j, "schema version %lld is not supported (expected %d)",
		    (long long)version, JOURNAL_SCHEMA_VERSION);
	if (journal_meta_get_text(j, "journal_id", &id) != 0 || strlen(id) != 32) {
		free(id);
		return jerr(j, "journal id missing or malformed");
	}
	memcpy(j->id, id, 33);
	free(id);
	return 0;
}

/* Creates the schema and a new journal id in a fresh (or empty) database. */
static int
create_schema(struct journal *j)
{
	int64_t n = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	if (exec_sql(j, "BEGIN IMMEDIATE") < 0)
		return -1;
	/* a database holding other tables is not ours: refuse to touch it */
	if (!j->created) {
		if (sqlite3_prepare_v2(j->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK)
			goto fail;
		rc = sqlite3_step(st);
		n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
		sqlite3_finalize(st);
		if (n != 0) {
			/* another process may have created our schema meanwhile */
			int r = read_existing_schema(j);

			if (r == 0) {
				exec_sql(j, "COMMIT");
				return 0;
			}
			if (r == 1)
				jerr(j, "not a chjournal database (it holds other tables)");
			goto fail;
		}
	}
	if (exec_sql(j, schema_sql) < 0 || exec_sql(j, links_sql) < 0 || new_journal_id(j) < 0 ||
	    journal_meta_set_int(j, "schema_version", JOURNAL_SCHEMA_VERSION) < 0 ||
	    journal_meta_set_text(j, "journal_id", j->id) < 0 ||
	    journal_meta_set_int(j, "last_seq", 0) < 0 ||
	    journal_meta_set_int(j, "created", (int64_t)time(NULL)) < 0)
		goto fail;
	if (exec_sql(j, "COMMIT") < 0)
		goto fail;
	j->created = 1;
	return 0;
fail:
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Journals made before the window query read time and flags from the seq
 * index had changes_seq on seq alone: each window row then cost a lookup in
 * the table (a third of `list`'s user time). Rebuilt as a covering index,
 * once, by the daemon (JOURNAL_CREATE); readers work with either. */
static int
upgrade_seq_index(struct journal *j)
{
	sqlite3_stmt *st = NULL;
	int ncols = 0;

	if (sqlite3_prepare_v2(j->db, "SELECT count(*) FROM pragma_index_info('changes_seq')",
	    -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot read the seq index");
	if (sqlite3_step(st) == SQLITE_ROW)
		ncols = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (ncols == 3)
		return 0;
	if (exec_sql(j, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (exec_sql(j, "DROP INDEX IF EXISTS changes_seq;"
	    "CREATE INDEX changes_seq ON changes(seq, time, flags)") < 0 ||
	    exec_sql(j, "COMMIT") < 0) {
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/* Journals made before hard links were followed have no links table: made
 * by the first writer that opens one (the table is only read without it). */
/* Returns 1 when the database has the table, 0 when not, -1 on error. */
static int
has_table(struct journal *j, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
	    "name = ?1", -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot read the schema");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return jerr(j, "cannot read the schema");
	return rc == SQLITE_ROW;
}

static int
links_table(struct journal *j)
{
	int rc = has_table(j, "links");

	return rc != 0 ? (rc < 0 ? -1 : 0) : exec_sql(j, links_sql);
}

static int
init_schema(struct journal *j, int readonly)
{
	int rc = read_existing_schema(j);

	if (rc == 0 && !readonly && links_table(j) < 0)
		return -1;
	if (rc == 0 && !readonly && (j->open_flags & JOURNAL_CREATE))
		return upgrade_seq_index(j);
	if (rc <= 0)
		return rc;
	if (readonly || !(j->open_flags & JOURNAL_CREATE))
		return jerr(j, "not a chjournal database (no schema)");
	return create_schema(j);
}

/* The WAL's length (pages) from which a checkpoint is due: SQLite's own
 * for the checkpoint it makes in a commit. */
#define CHECKPOINT_PAGES 1000

static void *
checkpoint_run(void *arg)
{
	struct checkpointer *c = arg;
	int stop, wal, copied;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->due && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		stop = c->stop;
		c->due = 0;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		/* PASSIVE: copies what no reader still needs, waits for no one;
		 * the next commit restarts the WAL once all of it was copied */
		if (sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &wal,
		    &copied) == SQLITE_OK && wal > 0 && copied == wal)
			__atomic_add_fetch(&c->complete, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The WAL hook of the handle's connection, after each commit (in its
 * thread): wakes the checkpointer when the WAL is long enough. Replaces
 * SQLite's automatic checkpoint, whose hook this is otherwise. */
static int
checkpoint_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpointer *c = arg;

	(void)db;
	(void)name;
	if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&c->mu);
		c->due = 1;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

static void
checkpointer_stop(struct journal *j)
{
	struct checkpointer *c = j->ckpt;

	if (c == NULL)
		return;
	if (j->db != NULL)
		sqlite3_wal_hook(j->db, NULL, NULL);
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->tid, NULL);
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	j->ckpt = NULL;
}

/* The daemon's commits (a sync cookie's among them) do not checkpoint: a
 * commit that took the WAL past CHECKPOINT_PAGES copied it into the
 * database and synced that, 3-21 ms where its own write took 1-7 (2,000
 * changes each round on a 6.5 MB journal: a checkpoint every two or three
 * flushes), and a `begin` waited for it. A thread with a connection of its
 * own makes that copy instead, while the commits go on (WAL allows it).
 * Where the thread or its connection cannot be made, SQLite checkpoints in
 * the commits as before: this costs time, never a change. */
static void
checkpointer_start(struct journal *j)
{
	struct checkpointer *c = calloc(1, sizeof *c);

	if (c == NULL)
		return;
	/* the connection checkpoints only once it has opened the WAL: until it
	 * has read the database, it does not know it is in WAL mode */
	if (sqlite3_open_v2(j->file, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&c->cv, NULL) != 0) {
		pthread_mutex_destroy(&c->mu);
		goto fail;
	}
	if (pthread_create(&c->tid, NULL, checkpoint_run, c) != 0) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		goto fail;
	}
	j->ckpt = c;
	sqlite3_wal_hook(j->db, checkpoint_hook, c);
	return;
fail:
	sqlite3_close(c->db);
	free(c);
}

/* The page cache of the writer's connection (KiB; SQLite's default is 2 MiB).
 * A flush upserts its paths all over the changes table and its seq index:
 * with 55k rows (8 MB), 2 MiB made a fifth of a flush's time the pread() of
 * pages it had just dropped, and spilled dirty pages to the WAL before the
 * commit. Pages are only taken as the journal uses them: a small journal
 * costs what it did. */
#define WRITER_CACHE_KIB 16384

static int
writer_setup(struct journal *j)
{
	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", WRITER_CACHE_KIB);
	if (exec_sql(j, sql) < 0)
		return -1;
	if (j->ckpt == NULL)
		checkpointer_start(j);
	return 0;
}

int64_t
journal_time_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

unsigned long
journal_checkpoints(const struct journal *j)
{
	return j->ckpt != NULL ? __atomic_load_n(&j->ckpt->complete, __ATOMIC_RELAXED) : 0;
}

int
journal_open(struct journal *j, const char *file, int flags)
{
	int oflags;
	struct stat st;

	free(j->file);
	j->open_flags = flags;
	if ((j->file = strdup(file)) == NULL)
		return jerr(j, "out of memory");
	if (lstat(file, &st) < 0) {
		if (errno != ENOENT || !(flags & JOURNAL_CREATE))
			return jerr_code(j, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
			    "cannot open");
		if (create_db_file(j, file) < 0)
			return -1;
	} else if (!S_ISREG(st.st_mode)) {
		return jerr(j, "cannot open: not a regular file");
	}
	oflags = (flags & JOURNAL_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	/* NOMUTEX: a handle is only ever used by the thread that opened it (no
	 * worker thread of chjournal or chjournald is given one; the
	 * checkpointer's connection is its thread's alone), so SQLite's
	 * per-call locking of the connection is pure cost: a lock and unlock
	 * around every bind and step, 6% of chjournald's loop thread on a
	 * backlog */
	oflags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	/* Nothing here reads SQLite's memory statistics, and keeping them takes
	 * a process-wide lock around every allocation SQLite makes (2% of
	 * chjournald's CPU on a backlog). Only possible before SQLite is first
	 * used: later it is refused, harmlessly. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_open_v2(file, &j->db, oflags, NULL) != SQLITE_OK)
		return jerr(j, "cannot open");
	sqlite3_busy_timeout(j->db, 30000);
	sqlite3_extended_result_codes(j->db, 1);
	if (init_schema(j, flags & JOURNAL_READONLY) < 0)
		return -1;
	/* only now that the database is known to be ours: WAL for concurrent
	 * readers (persistent), FULL so a power loss cannot drop a flushed
	 * batch (the daemon's early flushes ask otherwise: journal_set_synced) */
	if (!(flags & JOURNAL_READONLY)) {
		int persist = 1;

		if (exec_sql(j, "PRAGMA journal_mode=WAL") < 0 ||
		    exec_sql(j, "PRAGMA synchronous=FULL") < 0)
			return -1;
		/* The -wal and -shm outlive the last connection: a reader that may
		 * not create them (a member of the configured `group`, stateperm.h)
		 * can then read the journal while no daemon runs. The last one to
		 * close cuts the -wal to 0 bytes (journal_size_limit), so that no
		 * page of it is left to be replayed into a copy of the journal put
		 * back alone; while in use it is cut back to 16 MiB after each
		 * checkpoint that restarts it. */
		if (sqlite3_file_control(j->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist) != SQLITE_OK ||
		    exec_sql(j, "PRAGMA journal_size_limit=16777216") < 0)
			return jerr(j, "cannot keep the WAL between connections");
		if ((flags & JOURNAL_WRITER) && writer_setup(j) < 0)
			return -1;
	}
	return 0;
}

void
journal_free(struct journal *j)
{
	if (j == NULL)
		return;
	sqlite3_finalize(j->st_change);
	sqlite3_finalize(j->st_rescan);
	sqlite3_finalize(j->st_cookie);
	sqlite3_finalize(j->st_plain_clear);
	sqlite3_finalize(j->st_plain_below);
	sqlite3_finalize(j->st_meta);
	for (size_t i = 0; i < sizeof j->st_prune / sizeof j->st_prune[0]; i++)
		sqlite3_finalize(j->st_prune[i]);
	checkpointer_stop(j);
	if (j->db != NULL)
		sqlite3_close(j->db);
	free(j->file);
	free(j);
}

static int
prepare(struct journal *j, sqlite3_stmt **st, const char *sql)
{
	if (*st != NULL) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return 0;
	}
	if (sqlite3_prepare_v2(j->db, sql, -1, st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare statement");
	return 0;
}

int
journal_batch_begin(struct journal *j, int64_t prune_seq)
{
	if (j->in_batch)
		return jerr(j, "batch already open");
	if (exec_sql(j, "BEGIN IMMEDIATE") < 0)
		return -1;
	j->in_batch = 1;
	j->prune_seq = prune_seq;
	if (journal_last_seq(j, &j->batch_seq) < 0) {
		journal_batch_rollback(j);
		return -1;
	}
	return 0;
}

int
journal_batch_change(struct journal *j, const char *path, unsigned flags, int64_t now)
{
	sqlite3_stmt *st;

	if (prepare(j, &j->st_change, upsert_change_sql) < 0)
		return -1;
	st = j->st_change;
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ++j->batch_seq);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, flags);
	sqlite3_bind_int64(st, 5, j->prune_seq);
	if (sqlite3_step(st) != SQLITE_DONE)
		return jerr(j, "cannot record change");
	sqlite3_reset(st);
	return 0;
}

int64_t
journal_batch_seq(const struct journal *j)
{
	return j->batch_seq;
}

int
journal_batch_plain_clear(struct journal *j, const char *path)
{
	sqlite3_stmt *st;

	if (prepare(j, &j->st_plain_clear,
	    "UPDATE changes SET flags = flags & ~" PLAIN_SQL " WHERE path = ?1") < 0)
		return -1;
	st = j->st_plain_clear;
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return jerr(j, "cannot record change");
	sqlite3_reset(st);
	return 0;
}

/* The rows below dir are those from "dir/" to "dir0" ('0' follows '/'),
 * one range of the path key. */
int
journal_batch_plain_clear_below(struct journal *j, const char *dir)
{
	sqlite3_stmt *st;
	size_t n = strlen(dir);
	char *lo;
	int rc;

	if (prepare(j, &j->st_plain_below, "UPDATE changes SET flags = flags & ~" PLAIN_SQL
	    " WHERE path > ?1 AND path < ?2 AND flags & " PLAIN_SQL) < 0)
		return -1;
	if ((lo = malloc(2 * (n + 2))) == NULL)
		return jerr(j, "out of memory");
	memcpy(lo, dir, n);
	lo[n] = '/';
	memcpy(lo + n + 1, dir, n);
	lo[2 * n + 1] = '0';
	st = j->st_plain_below;
	sqlite3_bind_blob(st, 1, lo, (int)n + 1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, lo + n + 1, (int)n + 1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	free(lo);
	return rc == SQLITE_DONE ? 0 : jerr(j, "cannot record change");
}

int
journal_batch_rescan(struct journal *j, const char *path, int64_t since,
    const char *reason, int64_t now)
{
	sqlite3_stmt *st;

	if (prepare(j, &j->st_rescan, upsert_rescan_sql) < 0)
		return -1;
	st = j->st_rescan;
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ++j->batch_seq);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, since);
	sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, j->prune_seq);
	if (sqlite3_step(st) != SQLITE_DONE)
		return jerr(j, "cannot record rescan");
	sqlite3_reset(st);
	return 0;
}

int
journal_batch_cookie(struct journal *j, const char *name, int64_t now)
{
	sqlite3_stmt *st;

	/* a cookie tells the agent that what comes before is durable: its
	 * batch must be synced (SQLite cannot be told so inside the batch) */
	if (j->unsynced)
		return chj_error_set(&j->err, CHJ_ERR_INVALID, 0, "journal '%s': a sync cookie in a "
		    "batch that is not synced to disk", j->file);
	if (prepare(j, &j->st_cookie, upsert_cookie_sql) < 0)
		return -1;
	st = j->st_cookie;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, j->batch_seq);
	sqlite3_bind_int64(st, 3, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		return jerr(j, "cannot record sync cookie");
	sqlite3_reset(st);
	return 0;
}

/* Deletes rows every consumer has committed past, and stale cookies. */
static int
prune(struct journal *j)
{
	static const char *sqls[] = {
		"DELETE FROM changes WHERE seq <= ?1",
		"DELETE FROM rescans WHERE seq <= ?1",
		"DELETE FROM cookies WHERE time < ?1",
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		/* the rows: only with a prune point; stale cookies always */
		if (i < 2 && j->prune_seq <= 0)
			continue;
		if (prepare(j, &j->st_prune[i], sqls[i]) < 0)
			return -1;
		sqlite3_bind_int64(j->st_prune[i], 1, i < 2 ? j->prune_seq : (int64_t)time(NULL) - 3600);
		rc = sqlite3_step(j->st_prune[i]);
		sqlite3_reset(j->st_prune[i]);
		if (rc != SQLITE_DONE)
			return jerr(j, i < 2 ? "cannot prune" : "cannot prune cookies");
	}
	return 0;
}

/* After a commit that did not wait for the disk: the kernel starts writing
 * the WAL's dirty pages now, without waiting for them, so that the next
 * synced commit (a sync cookie's, which a `begin` waits for) does not write
 * them itself. Its fdatasync() took 1.2-8 ms after a burst of changes
 * written unsynced, 0.2 ms with nothing left to write. Best effort: the
 * synced commit makes them durable whatever happens here. (The close drops
 * no lock of SQLite's: it locks the -shm and the database, never the -wal;
 * see stateperm.c's fix_file().) */
static void
start_wal_writeback(struct journal *j)
{
	char wal[PATH_MAX];
	int fd;

	if (snprintf(wal, sizeof wal, "%s-wal", j->file) >= (int)sizeof wal)
		return;
	if ((fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	close(fd);
}

int
journal_batch_commit(struct journal *j)
{
	if (!j->in_batch)
		return jerr(j, "no batch open");
	if (prune(j) < 0 || journal_meta_set_int(j, "last_seq", j->batch_seq) < 0) {
		journal_batch_rollback(j);
		return -1;
	}
	if (exec_sql(j, "COMMIT") < 0) {
		journal_batch_rollback(j);
		return -1;
	}
	j->in_batch = 0;
	if (j->unsynced)
		start_wal_writeback(j);
	return 0;
}

int
journal_set_synced(struct journal *j, int synced)
{
	if (j->unsynced == !synced)
		return 0;
	if (exec_sql(j, synced ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") < 0)
		return -1;
	j->unsynced = !synced;
	return 0;
}

void
journal_batch_rollback(struct journal *j)
{
	if (j->st_change)
		sqlite3_reset(j->st_change);
	if (j->st_rescan)
		sqlite3_reset(j->st_rescan);
	if (j->st_cookie)
		sqlite3_reset(j->st_cookie);
	if (j->st_plain_clear)
		sqlite3_reset(j->st_plain_clear);
	if (j->st_plain_below)
		sqlite3_reset(j->st_plain_below);
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	j->in_batch = 0;
}

static int
meta_set(struct journal *j, const char *key, int64_t iv, const char *tv)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare(j, &j->st_meta, "INSERT INTO meta(key, value) VALUES(?1, ?2) "
	    "ON CONFLICT(key) DO UPDATE SET value = excluded.value") < 0)
		return -1;
	st = j->st_meta;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (tv != NULL)
		sqlite3_bind_text(st, 2, tv, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 2, iv);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return jerr(j, "cannot set metadata '%s'", key);
	return 0;
}

int
journal_meta_set_int(struct journal *j, const char *key, int64_t v)
{
	return meta_set(j, key, v, NULL);
}

int
journal_meta_set_text(struct journal *j, const char *key, const char *v)
{
	return meta_set(j, key, 0, v);
}

/* Reads one meta value; copies text into *tv when tv != NULL. */
static int
meta_get(struct journal *j, const char *key, int64_t *iv, char **tv)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare metadata query");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 1;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return jerr(j, "cannot read metadata '%s'", key);
	}
	if (iv != NULL)
		*iv = sqlite3_column_int64(st, 0);
	if (tv != NULL) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		*tv = strdup(t ? (const char *)t : "");
		if (*tv == NULL) {
			sqlite3_finalize(st);
			return jerr(j, "out of memory");
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int
journal_meta_get_int(struct journal *j, const char *key, int64_t *v)
{
	return meta_get(j, key, v, NULL);
}

int
journal_meta_get_text(struct journal *j, const char *key, char **v)
{
	return meta_get(j, key, NULL, v);
}

int
journal_plain_window(struct journal *j, int64_t *from, int64_t *upto)
{
	int rc = journal_meta_get_int(j, "plain_from", from);

	if (rc == 0)
		rc = journal_meta_get_int(j, "plain_upto", upto);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		*from = 1;
		*upto = 0;
	}
	return 0;
}

int
journal_last_seq(struct journal *j, int64_t *seq)
{
	int rc = journal_meta_get_int(j, "last_seq", seq);

	if (rc == 1)
		*seq = 0;
	return rc < 0 ? -1 : 0;
}

/* Copies a BLOB column into a NUL-terminated buffer owned by *buf. */
static const char *
column_path(sqlite3_stmt *st, int col, char **buf, size_t *cap)
{
	const void *b = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (n + 1 > *cap) {
		char *nb = realloc(*buf, n + 1);

		if (nb == NULL)
			return NULL;
		*buf = nb;
		*cap = n + 1;
	}
	if (n > 0)
		memcpy(*buf, b, n);
	(*buf)[n] = '\0';
	return *buf;
}

int
journal_foreach_change(struct journal *j, int64_t after_seq, const char *under,
    journal_change_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	char *buf = NULL;
	size_t cap = 0;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(j->db, window_changes_sql, -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare window query");
	sqlite3_bind_int64(st, 1, after_seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = column_path(st, 0, &buf, &cap);

		if (p == NULL) {
			ret = jerr(j, "out of memory");
			goto done;
		}
		if (under != NULL && !path_is_under(p, under))
			continue;
		ret = fn(ctx, p, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
		    (unsigned)sqlite3_column_int64(st, 3));
		if (ret != 0)
			goto done;
	}
	if (rc != SQLITE_DONE)
		ret = jerr(j, "cannot read changes");
done:
	sqlite3_finalize(st);
	free(buf);
	return ret;
}

int
journal_foreach_rescan(struct journal *j, int64_t after_seq, const char *under,
    journal_rescan_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	char *buf = NULL;
	size_t cap = 0;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(j->db, window_rescans_sql, -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare rescan query");
	sqlite3_bind_int64(st, 1, after_seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = column_path(st, 0, &buf, &cap);
		const unsigned char *reason = sqlite3_column_text(st, 4);

		if (p == NULL) {
			ret = jerr(j, "out of memory");
			goto done;
		}
		/* a rescan of a parent of `under` covers it too */
		if (under != NULL && !path_is_under(p, under) && !path_is_under(under, p))
			continue;
		ret = fn(ctx, p, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
		    sqlite3_column_int64(st, 3), reason ? (const char *)reason : "");
		if (ret != 0)
			goto done;
	}
	if (rc != SQLITE_DONE)
		ret = jerr(j, "cannot read rescans");
done:
	sqlite3_finalize(st);
	free(buf);
	return ret;
}

static int
count_after(struct journal *j, const char *sql, int64_t after_seq, int64_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare count");
	sqlite3_bind_int64(st, 1, after_seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return jerr(j, "cannot count rows");
	return 0;
}

int
journal_count_changes(struct journal *j, int64_t after_seq, int64_t *n)
{
	return count_after(j, "SELECT count(*) FROM changes INDEXED BY changes_seq WHERE seq > ?1",
	    after_seq, n);
}

int
journal_count_rescans(struct journal *j, int64_t after_seq, int64_t *n)
{
	return count_after(j, "SELECT count(*) FROM rescans INDEXED BY rescans_seq WHERE seq > ?1",
	    after_seq, n);
}

int
journal_cookie_seq(struct journal *j, const char *name, int64_t *seq)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "SELECT seq FROM cookies WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare cookie query");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return jerr(j, "cannot read cookies");
}

int
journal_cookie_delete(struct journal *j, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "DELETE FROM cookies WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare cookie delete");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return jerr(j, "cannot delete cookie");
	return 0;
}

/* ---- hard links ---- */

/* The links table changed: readers that keep a copy (the daemon's handle
 * set for writes outside the roots) reload it. */
static int
links_changed(struct journal *j)
{
	return exec_sql(j, "INSERT INTO meta(key, value) VALUES('links_generation', 1) "
	    "ON CONFLICT(key) DO UPDATE SET value = value + 1");
}

/* Binds the range of the paths strictly below dir: dir + "/" up to dir + "0"
 * ('0' follows '/'), as BLOBs (paths are bytes). */
static int
bind_below(sqlite3_stmt *st, int col, const char *dir, char **lo, char **hi)
{
	size_t n = strlen(dir);

	if ((*lo = malloc(n + 2)) == NULL || (*hi = malloc(n + 2)) == NULL)
		return -1;
	memcpy(*lo, dir, n);
	memcpy(*hi, dir, n);
	(*lo)[n] = '/';
	(*hi)[n] = '0';
	sqlite3_bind_blob(st, col, *lo, (int)n + 1, SQLITE_STATIC);
	sqlite3_bind_blob(st, col + 1, *hi, (int)n + 1, SQLITE_STATIC);
	return 0;
}

/* Forgets path and every name below it. */
static int
links_forget_one(struct journal *j, sqlite3_stmt *st, const char *path)
{
	char *lo = NULL, *hi = NULL;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	if (bind_below(st, 2, path, &lo, &hi) < 0) {
		free(lo);
		return jerr(j, "out of memory");
	}
	rc = sqlite3_step(st);
	free(lo);
	free(hi);
	return rc == SQLITE_DONE ? 0 : jerr(j, "cannot forget a hard link name");
}

static int
links_note_one(struct journal *j, sqlite3_stmt *st, const struct journal_link *l)
{
	sqlite3_reset(st);
	sqlite3_bind_blob(st, 1, l->path, (int)strlen(l->path), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)l->dev);
	sqlite3_bind_int64(st, 3, (int64_t)l->ino);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : jerr(j, "cannot note a hard link name");
}

int
journal_links_update(struct journal *j, char *const *forget, size_t nforget,
    const struct journal_link *note, size_t nnote, int clear)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	size_t i;
	int ret = -1;

	if (nforget == 0 && nnote == 0 && !clear)
		return 0;
	if (exec_sql(j, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (clear && exec_sql(j, "DELETE FROM links; DELETE FROM links_hunted") < 0)
		goto done;
	if (sqlite3_prepare_v2(j->db, "DELETE FROM links WHERE path = ?1 OR "
	    "(path >= ?2 AND path < ?3)", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO links(path, dev, ino) "
	    "VALUES(?1, ?2, ?3)", -1, &ins, NULL) != SQLITE_OK) {
		jerr(j, "cannot prepare the hard link statements");
		goto done;
	}
	for (i = 0; i < nforget; i++)
		if (links_forget_one(j, del, forget[i]) < 0)
			goto done;
	for (i = 0; i < nnote; i++)
		if (links_note_one(j, ins, &note[i]) < 0)
			goto done;
	if (links_changed(j) < 0 || exec_sql(j, "COMMIT") < 0)
		goto done;
	ret = 0;
done:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	if (ret < 0)
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int
journal_links_names(struct journal *j, uint64_t ino, journal_name_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	char *buf = NULL;
	size_t cap = 0;
	int rc, ret = 0;

	/* a journal older than the table, opened read-only: no name known */
	if ((rc = has_table(j, "links")) <= 0)
		return rc;
	if (sqlite3_prepare_v2(j->db, "SELECT path FROM links WHERE ino = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return jerr(j, "cannot prepare the hard link query");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = column_path(st, 0, &buf, &cap);

		if (p == NULL) {
			ret = jerr(j, "out of memory");
			goto done;
		}
		if ((ret = fn(ctx, p)) != 0)
			goto done;
	}
	if (rc != SQLITE_DONE)
		ret = jerr(j, "cannot read hard link names");
done:
	sqlite3_finalize(st);
	free(buf);
	return ret;
}

int
journal_batch_link(struct journal *j, const char *path, uint64_t dev, uint64_t ino)
{
	struct journal_link l = { path, dev, ino };
	sqlite3_stmt *st = NULL;
	int rc;

	if (!j->in_batch)
		return jerr(j, "no batch open");
	if (sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO links(path, dev, ino) VALUES(?1, ?2, ?3)",
	    -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare the hard link statement");
	rc = links_note_one(j, st, &l);
	sqlite3_finalize(st);
	return rc < 0 ? -1 : links_changed(j);
}

int
journal_links_foreach(struct journal *j, journal_link_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	char *buf = NULL;
	size_t cap = 0;
	int rc = has_table(j, "links"), ret = 0;

	if (rc <= 0)
		return rc;
	if (sqlite3_prepare_v2(j->db, "SELECT path, dev, ino FROM links", -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare the hard link query");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_link l;

		if ((l.path = column_path(st, 0, &buf, &cap)) == NULL) {
			ret = jerr(j, "out of memory");
			goto done;
		}
		l.dev = (uint64_t)sqlite3_column_int64(st, 1);
		l.ino = (uint64_t)sqlite3_column_int64(st, 2);
		if ((ret = fn(ctx, &l)) != 0)
			goto done;
	}
	if (rc != SQLITE_DONE)
		ret = jerr(j, "cannot read hard link names");
done:
	sqlite3_finalize(st);
	free(buf);
	return ret;
}

int
journal_links_ino_of(struct journal *j, const char *path, uint64_t *dev, uint64_t *ino)
{
	sqlite3_stmt *st = NULL;
	int rc = has_table(j, "links");

	if (rc <= 0)
		return rc;
	if (sqlite3_prepare_v2(j->db, "SELECT dev, ino FROM links WHERE path = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return jerr(j, "cannot prepare the hard link query");
	sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*dev = (uint64_t)sqlite3_column_int64(st, 0);
		*ino = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : jerr(j, "cannot read hard link names");
}

int
journal_links_hunted(struct journal *j, uint64_t dev, uint64_t ino, int64_t *nlink)
{
	sqlite3_stmt *st = NULL;
	int rc = has_table(j, "links_hunted");

	if (rc <= 0)
		return rc;
	if (sqlite3_prepare_v2(j->db, "SELECT nlink FROM links_hunted WHERE dev = ?1 AND ino = ?2",
	    -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare the hard link query");
	sqlite3_bind_int64(st, 1, (int64_t)dev);
	sqlite3_bind_int64(st, 2, (int64_t)ino);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*nlink = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : jerr(j, "cannot read hard link hunts");
}

int
journal_links_mark_hunted(struct journal *j, uint64_t dev, uint64_t ino, int64_t nlink)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO links_hunted(dev, ino, nlink) "
	    "VALUES(?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot prepare the hard link statement");
	sqlite3_bind_int64(st, 1, (int64_t)dev);
	sqlite3_bind_int64(st, 2, (int64_t)ino);
	sqlite3_bind_int64(st, 3, nlink);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : jerr(j, "cannot note a hard link hunt");
}

int
journal_links_count(struct journal *j, int64_t *n)
{
	int rc = has_table(j, "links");

	*n = 0;
	if (rc <= 0)
		return rc;
	/* count_after binds its ?1: the seq bound of the window queries */
	return count_after(j, "SELECT count(*) FROM links WHERE ?1 >= 0", 0, n);
}

char *
journal_flags_str(unsigned flags, char *buf, size_t size)
{
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = {
		{ JF_CREATED, "created" }, { JF_MODIFIED, "modified" },
		{ JF_ATTRIB, "attrib" }, { JF_DELETED, "deleted" },
		{ JF_RENAMED, "renamed" }, { JF_SUBTREE, "subtree" }, { JF_DIR, "dir" },
		{ JF_MOVED_OUT, "moved_out" },
	};
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(flags & names[i].flag))
			continue;
		o += (size_t)snprintf(buf + o, o < size ? size - o : 0, "%s%s", o ? "," : "", names[i].name);
		if (o >= size)
			break;
	}
	return buf;
}

int
journal_window_plan(struct journal *j, char *buf, size_t size)
{
	sqlite3_stmt *st = NULL;
	char sql[512];
	size_t o = 0;

	snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", window_changes_sql);
	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
		return jerr(j, "cannot explain window query");
	sqlite3_bind_int64(st, 1, 0);
	buf[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW && o < size) {
		const unsigned char *d = sqlite3_column_text(st, 3);

		o += (size_t)snprintf(buf + o, size - o, "%s\n", d ? (const char *)d : "");
	}
	sqlite3_finalize(st);
	return 0;
}
