/* consumer.c: consumer cursor files ("key=value" lines), written atomically;
 * a run just opened is saved beside its cursor, unsynced (".NAME.run"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "atomicfile.h"
#include "consumer.h"
#include "path.h"
#include "stateperm.h"

int
consumer_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > CONSUMER_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '@' ||
		    ch == '+' || ch == '-'))
			return 0;
	}
	return 1;
}

int
consumers_open(struct consumers *cs, const char *dir, int create)
{
	memset(cs, 0, sizeof *cs);
	cs->lock_fd = -1;
	cs->file_mode = STATEPERM_FILE_PRIVATE;
	cs->gid = (gid_t)-1;
	if ((cs->dir = strdup(dir)) == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot create consumers directory '%s'",
		    dir);
	return 0;
}

int
consumers_set_group(struct consumers *cs, gid_t gid, int fix_dir)
{
	cs->file_mode = STATEPERM_FILE_SHARED;
	cs->gid = gid;
	if (fix_dir && stateperm_share_dir(cs->dir, gid) < 0)
		return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot give consumers directory "
		    "'%s' its group", cs->dir);
	return 0;
}

/* A file just created in the directory: the group and mode of the state. */
static int
share_fd(struct consumers *cs, int fd)
{
	if (cs->gid == (gid_t)-1)
		return 0;
	/* a writer outside the group may not give it the file: private then */
	if (fchown(fd, (uid_t)-1, cs->gid) < 0)
		return fchmod(fd, STATEPERM_FILE_PRIVATE);
	return fchmod(fd, cs->file_mode);
}

void
consumers_close(struct consumers *cs)
{
	consumers_unlock(cs);
	free(cs->dir);
	cs->dir = NULL;
}

int
consumers_lock(struct consumers *cs)
{
	char *p = path_join(cs->dir, ".lock");

	if (p == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	cs->lock_fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, cs->file_mode);
	free(p);
	if (cs->lock_fd < 0)
		return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot open lock in consumers "
		    "directory '%s'", cs->dir);
	/* another user's lock file (a group member's) is left as it is */
	(void)share_fd(cs, cs->lock_fd);
	if (flock(cs->lock_fd, LOCK_EX) < 0) {
		close(cs->lock_fd);
		cs->lock_fd = -1;
		return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot lock consumers directory '%s'",
		    cs->dir);
	}
	return 0;
}

void
consumers_unlock(struct consumers *cs)
{
	if (cs->lock_fd >= 0)
		close(cs->lock_fd);
	cs->lock_fd = -1;
}

/* A run id as written in a cursor: 1 to 16 lower-case hex digits (the
 * agent draws 16), or the legacy name. */
static int
run_id_valid(const char *v)
{
	size_t n = strspn(v, "0123456789abcdef");

	return (n > 0 && n < CONSUMER_RUN_ID_SIZE && v[n] == '\0') ||
	    strcmp(v, CONSUMER_LEGACY_RUN_ID) == 0;
}

static int
read_kv(struct consumer_state *st, const char *key, const char *val)
{
	char *end;
	long long v;

	if (strcmp(key, "committed_journal_id") == 0 || strcmp(key, "open_journal_id") == 0 ||
	    strcmp(key, "open_floor_journal_id") == 0) {
		char *dst = key[0] == 'c' ? st->committed_journal_id :
		    key[5] == 'f' ? st->floor_journal_id : st->open_journal_id;

		if (strlen(val) != 32)
			return -1;
		memcpy(dst, val, 33);
		return 0;
	}
	if (strcmp(key, "open_run_id") == 0) {
		if (!run_id_valid(val))
			return -1;
		memcpy(st->open_run_id, val, strlen(val) + 1);
		return 0;
	}
	if (strcmp(key, "cursor_id") == 0) {
		if (strlen(val) != sizeof st->cursor_id - 1 ||
		    strspn(val, "0123456789abcdef") != sizeof st->cursor_id - 1)
			return -1;
		memcpy(st->cursor_id, val, sizeof st->cursor_id);
		return 0;
	}
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno != 0 || *end != '\0' || end == val)
		return -1;
	if (strcmp(key, "has_committed") == 0)
		st->has_committed = v != 0;
	else if (strcmp(key, "committed_seq") == 0)
		st->committed_seq = v;
	else if (strcmp(key, "committed_time") == 0)
		st->committed_time = v;
	else if (strcmp(key, "commit_time") == 0)
		st->commit_time = v;
	else if (strcmp(key, "has_open") == 0)
		st->has_open = v != 0;
	else if (strcmp(key, "open_seq") == 0)
		st->open_seq = v;
	else if (strcmp(key, "open_time") == 0)
		st->open_time = v;
	else if (strcmp(key, "open_full") == 0)
		st->open_full = v != 0;
	else if (strcmp(key, "open_after_seq") == 0)
		st->open_after_seq = v;
	else if (strcmp(key, "open_floor_seq") == 0)
		st->floor_seq = v;
	else if (strcmp(key, "open_floor_time") == 0)
		st->floor_time = v;
	else if (strcmp(key, "generation") == 0)
		st->generation = v;
	/* unknown keys from a newer version are ignored */
	return 0;
}

void
consumer_commit_point(const struct consumer_state *st, const char **journal_id, int64_t *seq,
    int64_t *time)
{
	int own = st->floor_journal_id[0] == '\0';

	*journal_id = own ? st->open_journal_id : st->floor_journal_id;
	*seq = own ? st->open_seq : st->floor_seq;
	if (time != NULL)
		*time = own ? st->open_time : st->floor_time;
}

/* The file beside name's cursor holding a run just opened (malloc'd; NULL
 * without memory). */
static char *
begun_path(struct consumers *cs, const char *name)
{
	char *base, *p;
	size_t n = strlen(name) + sizeof ".run" + 1;

	if ((base = malloc(n)) == NULL)
		return NULL;
	snprintf(base, n, ".%s.run", name);
	p = path_join(cs->dir, base);
	free(base);
	return p;
}

/* The last line of a file saved beside a cursor: without it the file is
 * torn (written in full or not at all is not promised for a file not
 * synced) and not taken. */
#define BEGUN_END "# end"

/* Reads the state file p (consumer name's) into st: 0, 1 when it does not
 * exist, -1 (cs->err). *ended: the last line was BEGUN_END. Takes p. */
static int
load_file(struct consumers *cs, const char *name, char *p, struct consumer_state *st, int *ended)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	FILE *f;
	int lineno = 0;

	memset(st, 0, sizeof *st);
	*ended = 0;
	f = fopen(p, "re");
	if (f == NULL) {
		int e = errno;

		if (e == ENOENT) {
			free(p);
			return 1;
		}
		chj_error_set(&cs->err, CHJ_ERR_SYS, e, "cannot read consumer '%s' ('%s')", name, p);
		free(p);
		return -1;
	}
	while ((got = getline(&line, &cap, f)) != -1) {
		char *eq, *nl;

		lineno++;
		/* a NUL inside a line would cut it silently: corrupt */
		if (memchr(line, '\0', (size_t)got) != NULL)
			goto corrupt;
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		*ended = strcmp(line, BEGUN_END) == 0;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL || (*eq = '\0', read_kv(st, line, eq + 1) < 0))
			goto corrupt;
	}
	if (ferror(f)) {
		chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot read consumer '%s' ('%s')", name, p);
		goto fail;
	}
	fclose(f);
	free(line);
	free(p);
	return 0;
corrupt:
	chj_error_set(&cs->err, CHJ_ERR_CORRUPT, 0, "consumer '%s': '%s' line %d is corrupt", name, p,
	    lineno);
fail:
	fclose(f);
	free(line);
	free(p);
	return -1;
}

int
consumer_load(struct consumers *cs, const char *name, struct consumer_state *st)
{
	struct consumer_state begun;
	struct chj_error saved;
	char *p;
	int rc, ended;

	memset(st, 0, sizeof *st);
	if (!consumer_name_valid(name))
		return chj_error_set(&cs->err, CHJ_ERR_INVALID, 0, "invalid consumer name '%s'", name);
	if ((p = path_join(cs->dir, name)) == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if ((rc = load_file(cs, name, p, st, &ended)) != 0 || st->cursor_id[0] == '\0')
		return rc;
	/* a run opened since the cursor was written: taken while it belongs to
	 * this very file; missing, torn (a crash), or left by a file since
	 * replaced or removed, it is no open run */
	if ((p = begun_path(cs, name)) == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	saved = cs->err;
	if (load_file(cs, name, p, &begun, &ended) == 0 && ended &&
	    strcmp(begun.cursor_id, st->cursor_id) == 0 && begun.generation == st->generation)
		*st = begun;
	cs->err = saved;
	return 0;
}

/* Writes len bytes of buf to fd. Returns 0, or -1 with errno. */
static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The cursor file's text. Returns its length (>= size: truncated). */
static int
consumer_state_format(const struct consumer_state *st, char *buf, size_t size)
{
	int len = snprintf(buf, size,
	    "# chjournal consumer cursor: written by chjournal, do not edit\n"
	    "has_committed=%d\ncommitted_journal_id=%s\ncommitted_seq=%" PRId64 "\n"
	    "committed_time=%" PRId64 "\ncommit_time=%" PRId64 "\n"
	    "has_open=%d\nopen_journal_id=%s\nopen_seq=%" PRId64 "\nopen_time=%" PRId64 "\n"
	    "open_full=%d\nopen_after_seq=%" PRId64 "\n",
	    st->has_committed,
	    st->committed_journal_id[0] ? st->committed_journal_id : "00000000000000000000000000000000",
	    st->committed_seq, st->committed_time, st->commit_time,
	    st->has_open, st->open_journal_id[0] ? st->open_journal_id : "00000000000000000000000000000000",
	    st->open_seq, st->open_time, st->open_full, st->open_after_seq);

	/* keys an older chjournal ignores; absent, the open run has no id and
	 * commits its own begin point */
	if (len >= 0 && (size_t)len < size && st->open_run_id[0] != '\0')
		len += snprintf(buf + len, size - (size_t)len, "open_run_id=%s\n", st->open_run_id);
	if (len >= 0 && (size_t)len < size && st->floor_journal_id[0] != '\0')
		len += snprintf(buf + len, size - (size_t)len,
		    "open_floor_journal_id=%s\nopen_floor_seq=%" PRId64 "\nopen_floor_time=%" PRId64 "\n",
		    st->floor_journal_id, st->floor_seq, st->floor_time);
	if (len >= 0 && (size_t)len < size && st->cursor_id[0] != '\0')
		len += snprintf(buf + len, size - (size_t)len, "cursor_id=%s\ngeneration=%" PRId64 "\n",
		    st->cursor_id, st->generation);
	return len;
}

/* Draws a new cursor id into st. Returns 0, or -1 (cs->err). */
static int
new_cursor_id(struct consumers *cs, struct consumer_state *st)
{
	unsigned char rnd[8];
	size_t i;

	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot draw a cursor id");
	for (i = 0; i < sizeof rnd; i++)
		snprintf(st->cursor_id + 2 * i, 3, "%02x", rnd[i]);
	st->generation = 0;
	return 0;
}

/* How a state is written: the cursor, durably (a commit, an abort: its
 * directory synced too) or its content only (a new cursor for a run just
 * opened), or the file beside it (a run just opened: not synced). */
enum write_how { WRITE_DURABLE, WRITE_CONTENT, WRITE_BESIDE };

static int
consumer_write(struct consumers *cs, const char *name, const struct consumer_state *st,
    enum write_how how)
{
	struct chj_error e;
	struct atomicfile af;
	char *p;
	char buf[1024];
	int len, rc;

	if (!consumer_name_valid(name))
		return chj_error_set(&cs->err, CHJ_ERR_INVALID, 0, "invalid consumer name '%s'", name);
	len = consumer_state_format(st, buf, sizeof buf);
	if (len >= 0 && (size_t)len < sizeof buf && how == WRITE_BESIDE)
		len += snprintf(buf + len, sizeof buf - (size_t)len, BEGUN_END "\n");
	if (len < 0 || (size_t)len >= sizeof buf)
		return chj_error_set(&cs->err, CHJ_ERR_INVALID, 0, "consumer '%s': cursor too long", name);
	p = how == WRITE_BESIDE ? begun_path(cs, name) : path_join(cs->dir, name);
	if (p == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	rc = atomicfile_begin(&af, p, cs->file_mode, &e);
	af.no_dir_sync = how != WRITE_DURABLE;
	if (rc == 0 && (share_fd(cs, af.fd) < 0 || write_all(af.fd, buf, (size_t)len) < 0)) {
		chj_error_set(&e, CHJ_ERR_SYS, errno, "cannot write '%s'", af.tmp);
		atomicfile_rollback(&af);
		rc = -1;
	} else if (rc == 0) {
		rc = how == WRITE_BESIDE ? atomicfile_commit_unsynced(&af, &e) : atomicfile_commit(&af, &e);
	}
	free(p);
	if (rc < 0) {
		chj_error_set(&cs->err, e.code, 0, "cannot write consumer '%s': %s", name, e.msg);
		cs->err.errnum = e.errnum;
		return -1;
	}
	return 0;
}

/* Removes the file beside name's cursor, if any. Returns 0 or -1 (cs->err). */
static int
remove_begun(struct consumers *cs, const char *name)
{
	char *p = begun_path(cs, name);

	if (p == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (unlink(p) < 0 && errno != ENOENT) {
		int e = errno;

		free(p);
		return chj_error_set(&cs->err, CHJ_ERR_SYS, e, "cannot remove the open run of consumer "
		    "'%s'", name);
	}
	free(p);
	return 0;
}

int
consumer_save(struct consumers *cs, const char *name, struct consumer_state *st)
{
	/* the next generation: a file beside the previous one no longer counts,
	 * whether or not its removal below reaches the disk */
	if (st->cursor_id[0] == '\0') {
		if (new_cursor_id(cs, st) < 0)
			return -1;
	} else {
		st->generation++;
	}
	if (consumer_write(cs, name, st, WRITE_DURABLE) < 0)
		return -1;
	return remove_begun(cs, name);
}

int
consumer_save_begun(struct consumers *cs, const char *name, struct consumer_state *st)
{
	if (st->cursor_id[0] != '\0')
		return consumer_write(cs, name, st, WRITE_BESIDE);
	/* no cursor yet, or an older chjournal's: the cursor itself, with an
	 * id from now on */
	if (new_cursor_id(cs, st) < 0)
		return -1;
	return consumer_write(cs, name, st, WRITE_CONTENT);
}

int
consumer_remove(struct consumers *cs, const char *name)
{
	char *p;

	if (!consumer_name_valid(name))
		return chj_error_set(&cs->err, CHJ_ERR_INVALID, 0, "invalid consumer name '%s'", name);
	/* its open run first (a new cursor of the same name has another id) */
	if (remove_begun(cs, name) < 0)
		return -1;
	if ((p = path_join(cs->dir, name)) == NULL)
		return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (unlink(p) < 0) {
		int e = errno;

		free(p);
		if (e == ENOENT)
			return 1;
		return chj_error_set(&cs->err, CHJ_ERR_SYS, e, "cannot remove consumer '%s'", name);
	}
	/* durable: a forgotten consumer must not come back after a crash */
	if (atomicfile_sync_dir(p) < 0) {
		int e = errno;

		free(p);
		return chj_error_set(&cs->err, CHJ_ERR_SYS, e, "cannot sync consumers directory '%s'",
		    cs->dir);
	}
	free(p);
	return 0;
}

int
consumer_list(struct consumers *cs, char ***names, size_t *n)
{
	DIR *d;
	struct dirent *de;
	char **arr = NULL;
	size_t cnt = 0, cap = 0;

	*names = NULL;
	*n = 0;
	d = opendir(cs->dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot read consumers directory "
		    "'%s'", cs->dir);
	}
	while ((de = readdir(d)) != NULL) {
		char **na;

		if (!consumer_name_valid(de->d_name))
			continue;
		na = array_grow(arr, cnt, &cap, sizeof *arr, 16);
		if (na == NULL || (na[cnt] = strdup(de->d_name)) == NULL) {
			closedir(d);
			consumer_list_free(na ? na : arr, cnt);
			return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		arr = na;
		cnt++;
	}
	closedir(d);
	array_sort(arr, cnt, sizeof *arr, array_str_cmp);
	*names = arr;
	*n = cnt;
	return 0;
}

void
consumer_list_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
consumers_prune_point(struct consumers *cs, const char *journal_id, int64_t *seq)
{
	char **names;
	size_t n, i;
	int64_t min = 0;
	int any = 0;

	*seq = 0;
	if (consumer_list(cs, &names, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		struct consumer_state st;
		int rc = consumer_load(cs, names[i], &st);

		if (rc < 0) {
			/* an unreadable cursor must not let rows go: prune nothing */
			consumer_list_free(names, n);
			return -1;
		}
		if (rc == 1)
			continue;
		/* its next window starts after its committed seq on this journal */
		if (st.has_committed && strcmp(st.committed_journal_id, journal_id) == 0) {
			if (!any || st.committed_seq < min)
				min = st.committed_seq;
			any = 1;
		}
		/* an open run committing on this journal (a first, full run among
		 * them) will commit its begin point, or the earlier one of a run it
		 * took over: the rows after it must stay */
		if (st.has_open) {
			const char *cj;
			int64_t cseq;

			consumer_commit_point(&st, &cj, &cseq, NULL);
			if (strcmp(cj, journal_id) == 0) {
				if (!any || cseq < min)
					min = cseq;
				any = 1;
			}
		}
	}
	consumer_list_free(names, n);
	*seq = any ? min : 0;
	return 0;
}
