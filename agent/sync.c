/* sync.c: the sync-to-now mechanism shared by `sync` and `begin`: a cookie
 * file in each root, created by mknod (never over an existing name, never
 * through a symlink), waited for in
 * the journal (the daemon journals a cookie after every change it read
 * before it), then removed; a root that is missing gets none. Also the cover
 * for a daemon that is not running. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "changeset.h"
#include "daemonlock.h"
#include "livestatus.h"
#include "path.h"

struct cookie {
	char name[128];
	char *path;
	int seen;
	int64_t seq;            /* seen 1: the seq it was journaled with */
};

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Removes the cookie files. Their journal rows stay: a delete here was a
 * write transaction, synced, that cost a sync most of its time (16 of 18 ms
 * here); the daemon prunes cookie rows an hour old. */
static void
cookies_cleanup(struct cookie *ck, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ck[i].path != NULL) {
			unlink(ck[i].path);
			free(ck[i].path);
		}
	}
	free(ck);
}

/* A sync gives up this many seconds after the daemon last failed to write
 * the journal, if it still has not written it: transient failures pass. */
#define JOURNAL_FAILING_GIVE_UP 3

/* How long (seconds) the running daemon pid has been failing to write the
 * journal, by its live figures; 0 when it writes it, or unknown. */
static int64_t
journal_failing(struct agent *a, long pid)
{
	struct livestatus r;
	struct chj_error e;

	if (livestatus_read(a->cfg.journal, &r, &e) != 1 || r.pid != pid ||
	    r.journal_error_since == 0)
		return 0;
	return (int64_t)time(NULL) - r.journal_error_since;
}

/* The sync timed out: names the cause when the daemon says why it cannot
 * journal (its live figures), else the cookie not journaled. */
static void
sync_timeout_error(struct agent *a, unsigned timeout, long pid, const char *root)
{
	struct livestatus r;
	struct chj_error e;
	char t[32];

	if (livestatus_read(a->cfg.journal, &r, &e) == 1 && r.pid == pid &&
	    r.journal_error_since != 0) {
		r.journal_error[sizeof r.journal_error - 1] = '\0';
		agent_error("sync failed after %u s: chjournald (pid %ld) cannot write the journal "
		    "since %s (its changes are kept in memory): %s", timeout, pid,
		    agent_time_str(r.journal_error_since, t, sizeof t), r.journal_error);
		return;
	}
	agent_error("sync timed out after %u s: chjournald (pid %ld) has not journaled the cookie "
	    "in root '%s'", timeout, pid, root);
}

/* Creates a cookie in each root that can take one (ck[i].seen 2: none, the
 * root missing or not watched now, said on stderr). Returns 0, or -1
 * (printed). */
static int
place_cookies(struct agent *a, struct cookie *ck, size_t n)
{
	char *unwatched = NULL;
	unsigned char rnd[8];
	size_t i;
	int rc = -1;

	if (journal_meta_get_text(a->journal, "unwatched_roots", &unwatched) < 0)
		unwatched = NULL;
	for (i = 0; i < n; i++) {
		if (changeset_root_missing(&a->cfg, i) != 0) {
			/* nothing to put a cookie in: the callers say so */
			ck[i].seen = 2;
			continue;
		}
		if (path_list_contains(unwatched, a->cfg.roots[i])) {
			/* the daemon cannot see this root now: no cookie would ever
			 * come; its changes are covered by renewed rescan records */
			agent_warn("root '%s' is not watched by chjournald now (see its log): "
			    "its changes are covered by rescan records", a->cfg.roots[i]);
			ck[i].seen = 2;
			continue;
		}
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
			memset(rnd, 0, sizeof rnd);
		snprintf(ck[i].name, sizeof ck[i].name, "%s%ld.%02x%02x%02x%02x%02x%02x%02x%02x",
		    PATH_COOKIE_PREFIX, (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		    rnd[5], rnd[6], rnd[7]);
		if ((ck[i].path = path_join(a->cfg.roots[i], ck[i].name)) == NULL) {
			agent_error("out of memory");
			goto cleanup;
		}
		/* made by mknod, not open: the daemon hears its creation and no
		 * close after it, each of which would cost a journal commit */
		if (mknod(ck[i].path, S_IFREG | 0600, 0) < 0) {
			int e = errno;

			free(ck[i].path);
			ck[i].path = NULL;
			if (e == ENOENT || e == ENOTDIR) {
				/* the root went away just now: missing, as above */
				ck[i].seen = 2;
				continue;
			}
			agent_error("cannot create sync cookie in root '%s': %s", a->cfg.roots[i],
			    strerror(e));
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	free(unwatched);
	return rc;
}

/* The root of the first cookie not journaled yet. */
static const char *
first_waiting(const struct agent *a, const struct cookie *ck, size_t n)
{
	size_t i;

	for (i = 0; i < n && ck[i].seen; i++)
		;
	return i < n ? a->cfg.roots[i] : "?";
}

/* Marks the cookies the journal holds now; returns how many are left, or
 * -1 (printed). */
static long
cookies_left(struct agent *a, struct cookie *ck, size_t n)
{
	long left = 0;
	int64_t seq;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (ck[i].seen)
			continue;
		if ((rc = journal_cookie_seq(a->journal, ck[i].name, &seq)) < 0) {
			agent_error("%s", journal_errmsg(a->journal));
			return -1;
		}
		if (rc == 1) {
			ck[i].seen = 1;
			ck[i].seq = seq;
		} else
			left++;
	}
	return left;
}

/* Waits until the daemon pid has journaled every cookie: 0; 1 when it
 * stopped meanwhile; -1 (printed) on an error, the timeout, or a daemon
 * that cannot write the journal. Looks at the journal every
 * WAIT_FAST_US for the first WAIT_FAST_S seconds, then after a delay
 * doubling to WAIT_MEDIUM_US until WAIT_MEDIUM_S, and to WAIT_SLOW_US
 * after, and at the daemon once a second. A look is one indexed query
 * (about 20 us); the daemon journals a cookie in 1 to 100 ms (its pending
 * changes, then an fdatasync), so a delay that doubled from 1 ms made the
 * wait end up to twice as late as the cookie: 7-15 ms of a 16 ms begin.
 * After a backlog (a daemon stopped for a while, a burst of changes) the
 * cookie comes in a fraction of a second, and a delay grown to 16 ms by
 * then returned that much later: `make bench-drain` measured 1.11 times
 * the events per second with 4 ms (463k to 514k, the same daemon); a wait
 * of seconds looks 62 times a second. (Woken by an inotify watch on the
 * journal instead, each sync paid 20 ms more: closing an inotify instance
 * waits for an RCU grace period.) */
#define WAIT_FAST_US 250
#define WAIT_FAST_S 0.25
#define WAIT_MEDIUM_US 4000
#define WAIT_MEDIUM_S 2.0
#define WAIT_SLOW_US 16000

static int
wait_cookies(struct agent *a, struct cookie *ck, size_t n, unsigned timeout, pid_t pid)
{
	double start = now_s(), last_probe = start;
	long left, delay = WAIT_FAST_US;
	struct chj_error err;

	while ((left = cookies_left(a, ck, n)) != 0) {
		if (left < 0)
			return -1;
		if (now_s() - start > (double)timeout) {
			sync_timeout_error(a, timeout, (long)pid, first_waiting(a, ck, n));
			return -1;
		}
		if (now_s() - last_probe > 1.0) {
			last_probe = now_s();
			if (daemonlock_probe(a->cfg.journal, &pid, &err) == 0)
				return 1;
			/* a daemon that has not written the journal for a while
			 * will not journal the cookie either: say why now rather
			 * than at the timeout */
			if (journal_failing(a, (long)pid) >= JOURNAL_FAILING_GIVE_UP) {
				sync_timeout_error(a, (unsigned)(now_s() - start), (long)pid,
				    first_waiting(a, ck, n));
				return -1;
			}
		}
		sleep_us(delay);
		if (now_s() - start > WAIT_FAST_S &&
		    delay < (now_s() - start > WAIT_MEDIUM_S ? WAIT_SLOW_US : WAIT_MEDIUM_US))
			delay *= 2;
	}
	return 0;
}

/* The greatest seq of the cookies journaled (-1: none placed). */
static int64_t
cookies_seq(const struct cookie *ck, size_t n)
{
	int64_t seq = -1;
	size_t i;

	for (i = 0; i < n; i++)
		if (ck[i].seen == 1 && ck[i].seq > seq)
			seq = ck[i].seq;
	return seq;
}

int
agent_sync(struct agent *a, unsigned timeout, int64_t *cookie_seq)
{
	return agent_sync_with(a, timeout, cookie_seq, NULL, NULL);
}

int
agent_sync_with(struct agent *a, unsigned timeout, int64_t *cookie_seq,
    int (*placed)(void *ctx), void *ctx)
{
	struct cookie *ck;
	struct chj_error err;
	pid_t pid;
	int rc;

	if ((rc = daemonlock_probe(a->cfg.journal, &pid, &err)) < 0) {
		agent_error("%s", err.msg);
		return -1;
	}
	if (rc == 0)
		return 1;
	if ((ck = calloc(a->cfg.nroots, sizeof *ck)) == NULL) {
		agent_error("out of memory");
		return -1;
	}
	rc = place_cookies(a, ck, a->cfg.nroots);
	if (rc == 0 && placed != NULL)
		rc = placed(ctx);
	if (rc == 0)
		rc = wait_cookies(a, ck, a->cfg.nroots, timeout, pid);
	if (rc == 0 && cookie_seq != NULL)
		*cookie_seq = cookies_seq(ck, a->cfg.nroots);
	cookies_cleanup(ck, a->cfg.nroots);
	return rc;
}

int
agent_cover_daemon_gap(struct agent *a)
{
	int64_t last_flush = 0, now = (int64_t)time(NULL);
	size_t i;
	int rc;

	rc = journal_meta_get_int(a->journal, "last_flush", &last_flush);
	if (rc < 0)
		return agent_error("%s", journal_errmsg(a->journal)), -1;
	if (rc == 1)
		last_flush = 0;
	if (journal_batch_begin(a->journal, 0) < 0)
		return agent_error("%s", journal_errmsg(a->journal)), -1;
	for (i = 0; i < a->cfg.nroots; i++) {
		if (journal_batch_rescan(a->journal, a->cfg.roots[i], last_flush - JOURNAL_TIME_MARGIN,
		    "no daemon running at begin", now) < 0) {
			journal_batch_rollback(a->journal);
			return agent_error("%s", journal_errmsg(a->journal)), -1;
		}
	}
	if (journal_batch_commit(a->journal) < 0)
		return agent_error("%s", journal_errmsg(a->journal)), -1;
	{
		char ts[64];

		agent_warn("no chjournald is running on journal '%s': changes since %s (its last flush) "
		    "are covered by a rescan of every root", a->cfg.journal,
		    agent_time_str(last_flush, ts, sizeof ts));
	}
	return 0;
}

int
agent_missing_roots(struct agent *a, const char *what, int64_t after_seq)
{
	size_t i;
	int n = 0;

	for (i = 0; i < a->cfg.nroots; i++) {
		int e = changeset_root_missing(&a->cfg, i);

		if (e == 0)
			continue;
		n++;
		if (after_seq >= 0 && changeset_cover_missing_root(a->journal, a->cfg.roots[i], after_seq) < 0)
			return agent_error("cannot record the cover of missing root '%s': %s",
			    a->cfg.roots[i], journal_errmsg(a->journal)), -1;
		agent_warn("root '%s' is missing (%s): %s", a->cfg.roots[i], strerror(e), what);
	}
	return n;
}
