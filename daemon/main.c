/* main.c: chjournald: options, signals and the event loop. Kernel events
 * come from the watcher, are coalesced in pending, and are written to the
 * journal in one transaction per flush. SIGUSR2 restarts it in place: the
 * program file is executed again with the kernel state handed over
 * (handover.h), so no event is lost and no rescan is needed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "config.h"
#include "consumer.h"
#include "daemonlock.h"
#include "handover.h"
#include "journal.h"
#include "linkset.h"
#include "livestatus.h"
#include "log.h"
#include "mountwatch.h"
#include "nfsexport.h"
#include "path.h"
#include "pending.h"
#include "selfcheck.h"
#include "statebuf.h"
#include "stateperm.h"
#include "watch.h"

#define HEARTBEAT_MS 5000           /* refresh last_flush when idle */
#define HANDOVER_MAGIC 0x484a4843u  /* "CHJH": the state of a restart in place */
#define HANDOVER_VERSION 1

struct daemon {
	struct config cfg;
	const char *config_file;
	struct journal *journal;
	struct pending *pending;
	struct watcher *watcher;
	struct linkset *links;          /* fanotify: multiply-linked files known */
	struct mountwatch *mounts;      /* NULL: mounts are not followed */
	struct livestatus_writer *live; /* the figures as they are now (NULL: none) */
	int64_t journal_error_since;    /* unix time the journal last failed; 0: fine */
	char journal_error[256];
	struct consumers consumers;
	int lock_fd;
	int sig_fd;
	int verbosity;
	time_t started;
	int64_t last_flush_ms;          /* monotonic */
	time_t last_error_log;
	unsigned long flushes;
	unsigned long rescans_recorded;  /* every rescan record, whatever its cause */
	int flush_failing;
	int journal_lost;               /* removed, and not made again yet */
	int mounts_dirty;               /* a directory moved: mounts may have moved with it */
	int lock_lost;                  /* its lock file removed, not taken again yet */
	char *unwatched_roots;          /* as last written to meta (NULL: not yet) */
	int64_t crawl_started_ms;       /* monotonic; 0 once "ready" is logged */
	int64_t last_flush_time;        /* unix time of the last flush written */
	dev_t journal_dev;              /* identity of the journal file we opened */
	ino_t journal_ino;
	char exe[PATH_MAX];             /* the program file, executed again by SIGUSR2 */
	const char *pidfile;            /* NULL: none */
	const char *logfile;            /* --log-file, NULL: none */
	int use_syslog;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Formats a unix time as local "YYYY-MM-DDTHH:MM:SS" for the log. */
static char *
local_time_str(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	strftime(buf, size, "%Y-%m-%dT%H:%M:%S", localtime_r(&tt, &tm));
	return buf;
}

/* ---- sink: watcher → pending ---- */

static void
pending_nomem(struct daemon *d)
{
	log_error("out of memory coalescing changes: recording a rescan of every root");
}

static int
sink_change(void *ctx, const char *path, unsigned flags)
{
	struct daemon *d = ctx;

	/* a directory renamed, moved in or out takes the mounts below it
	 * along, and the kernel does not signal the mount table for that */
	if ((flags & JF_DIR) && (flags & (JF_RENAMED | JF_MOVED_OUT)))
		d->mounts_dirty = 1;
	if (pending_change(d->pending, path, flags) < 0) {
		pending_nomem(d);
		return -1;
	}
	return 0;
}

static int
sink_rescan(void *ctx, const char *path, int64_t since, const char *reason)
{
	struct daemon *d = ctx;

	char ts[32];

	log_info("rescan recorded for '%s' (changes since %s may be unknown): %s", path,
	    local_time_str(since, ts, sizeof ts), reason);
	d->rescans_recorded++;
	return pending_rescan(d->pending, path, since, reason);
}

static void check_mounts(struct daemon *d);

/* 1 when the mount table changed since it was last compared (POLLPRI). */
static int
mount_table_signalled(struct daemon *d)
{
	struct pollfd pfd = { mountwatch_fd(d->mounts), POLLPRI, 0 };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLPRI | POLLERR));
}

static int
sink_cookie(void *ctx, const char *name)
{
	struct daemon *d = ctx;

	/* a begin is syncing: a mount made before its cookie, or a directory
	 * moved with a mount below it, must be journaled before the cookie,
	 * though the events were read before the mount table said so */
	if (d->mounts != NULL && (d->mounts_dirty || mount_table_signalled(d)))
		check_mounts(d);
	return pending_cookie(d->pending, name);
}

/* journal_links_names callback: a name inside the roots of a file written
 * through a name outside them. */
static int
outside_name_cb(void *ctx, const char *path)
{
	struct daemon *d = ctx;

	return sink_change(d, path, JF_MODIFIED);
}

/* Journals the names inside the roots of inode ino. */
static void
outside_names(void *ctx, uint64_t ino)
{
	struct daemon *d = ctx;

	log_debug("a file with names in the roots was written outside them (inode %llu)",
	    (unsigned long long)ino);
	if (journal_links_names(d->journal, ino, outside_name_cb, d) != 0)
		log_warning("%s", journal_errmsg(d->journal));
}

static int
sink_outside_write(void *ctx, const struct watcher_file_id *id)
{
	struct daemon *d = ctx;
	uint64_t ino, key;

	if (d->links == NULL)
		return 0;
	key = linkset_key(id);
	if (linkset_find(d->links, key, &ino))
		outside_names(d, ino);
	else
		linkset_recent(d->links, key, now_ms());   /* a name noted since? */
	return 0;
}

/* Follows the journal's names of multiply-linked files; a file written
 * outside the roots since the last refresh whose names became known (the
 * set lags by up to a flush) is journaled now. */
static void
refresh_links(struct daemon *d)
{
	int rc;

	if (d->links == NULL)
		return;
	rc = linkset_refresh(d->links, d->journal);
	if (rc < 0)
		log_warning("cannot read the names of hard-linked files: %s", journal_errmsg(d->journal));
	else if (rc == 1)
		linkset_recheck(d->links, now_ms(), 2 * HEARTBEAT_MS, outside_names, d);
}

/* mountwatch callback while running: journaled, and watched again. */
static int
mount_changed(void *ctx, const char *path)
{
	struct daemon *d = ctx;

	log_info("mount table: what '%s' shows was mounted or unmounted: it counts as replaced "
	    "and is watched again", path);
	if (sink_change(d, path, JF_REPLACED) < 0)
		return -1;
	watcher_rewatch(d->watcher, path);
	return 0;
}

/* mountwatch callback at start (the crawl watches what is there). */
static int
mount_changed_while_down(void *ctx, const char *path)
{
	struct daemon *d = ctx;

	log_info("mount table: '%s' was mounted or unmounted while the daemon was not running: "
	    "it counts as replaced", path);
	return sink_change(d, path, JF_REPLACED);
}

/* The mount table polled POLLPRI: compares it with the last one. */
static void
check_mounts(struct daemon *d)
{
	char err[512];

	if (mountwatch_compare(d->mounts, &d->cfg, d->journal, mount_changed, d, err, sizeof err) < 0)
		log_error("mount table: %s", err);
	d->mounts_dirty = 0;
}

/* inotify does not hear writes by file handle: roots the kernel NFS server
 * exports are named in the log and in status (meta nfs_exported_roots). */
static void
check_nfs_exports(struct daemon *d)
{
	char text[8192] = "";
	/* a test hook, nothing to configure: the table to read instead */
	const char *test_table = getenv("CHJ_TEST_NFS_EXPORTS");
	size_t i;

	if (strcmp(watcher_backend(d->watcher), "inotify") == 0 && test_table != NULL)
		nfsexport_roots(&d->cfg, test_table, text, sizeof text);
	else if (strcmp(watcher_backend(d->watcher), "inotify") == 0)
		for (i = 0; nfsexport_tables[i] != NULL; i++)
			nfsexport_roots(&d->cfg, nfsexport_tables[i], text, sizeof text);
	if (text[0] != '\0')
		log_warning("the kernel NFS server exports these roots (or a directory above or "
		    "below them): %s inotify does not hear what its clients write once a file's name "
		    "has left the kernel's cache: use backend = fanotify there", text);
	if (journal_meta_set_text(d->journal, "nfs_exported_roots", text) < 0)
		log_warning("%s", journal_errmsg(d->journal));
}

static int write_static_meta(struct daemon *d);
static void apply_group(struct daemon *d);

/* Newline-joined list of the roots (only the unwatched ones with
 * only_unwatched), as kept in the journal's meta. */
static char *
roots_text(struct daemon *d, int only_unwatched)
{
	const struct config *c = &d->cfg;
	size_t i, len = 1;
	char *t;

	for (i = 0; i < c->nroots; i++)
		len += strlen(c->roots[i]) + 1;
	if ((t = malloc(len)) == NULL)
		return NULL;
	t[0] = '\0';
	for (i = 0; i < c->nroots; i++) {
		if (only_unwatched && watcher_root_is_watched(d->watcher, c->roots[i]))
			continue;
		strcat(t, c->roots[i]);
		strcat(t, "\n");
	}
	return t;
}

/* Remembers which file the journal is, to notice it being removed. */
static void
note_journal_identity(struct daemon *d)
{
	struct stat st;

	if (stat(d->cfg.journal, &st) == 0) {
		d->journal_dev = st.st_dev;
		d->journal_ino = st.st_ino;
	}
}

/* The journal file was deleted or replaced under us (database lost): writing
 * on into the unlinked file would hide every change from the agent, so open
 * a new journal. It has a new id: every consumer's next run is full. Each
 * loss is logged once; while the new journal cannot be made (its directory
 * gone too) returns -1 with why filled, and the caller tries again later. */
static int
check_journal_identity(struct daemon *d, char *why, size_t whylen)
{
	struct stat st;
	struct journal *nj;

	if (daemonlock_is_current(d->cfg.journal, d->lock_fd) == 0) {
		char err[512];
		int fd = daemonlock_acquire(d->cfg.journal, err, sizeof err);

		if (fd < 0) {
			if (!d->lock_lost)
				log_error("lock file removed and cannot be taken again yet: %s", err);
			d->lock_lost = 1;
		} else {
			log_warning("lock file of journal '%s' was removed: taken again", d->cfg.journal);
			close(d->lock_fd);
			d->lock_fd = fd;
			d->lock_lost = 0;
			apply_group(d);
		}
	}
	if (stat(d->cfg.journal, &st) == 0 && st.st_dev == d->journal_dev &&
	    st.st_ino == d->journal_ino)
		return 0;
	if (!d->journal_lost)
		log_error("journal '%s' was removed or replaced while running: creating a new "
		    "journal (every consumer's next run will be full)", d->cfg.journal);
	d->journal_lost = 1;
	if ((nj = journal_new()) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (journal_open(nj, d->cfg.journal, JOURNAL_CREATE) < 0) {
		snprintf(why, whylen, "%s", journal_errmsg(nj));
		journal_free(nj);
		return -1;
	}
	d->journal_lost = 0;
	journal_free(d->journal);
	d->journal = nj;
	free(d->unwatched_roots);
	d->unwatched_roots = NULL;
	note_journal_identity(d);
	apply_group(d);
	log_info("new journal id %s", journal_id(d->journal));
	return write_static_meta(d);
}

/* ---- live figures ---- */

/* Publishes the figures as they are now in the status file (livestatus.h):
 * cheap (a few stores into a mapping), done at every turn of the loop. */
static void
publish_status(struct daemon *d, enum livestatus_state state)
{
	struct watcher_stats st;
	struct livestatus *r;

	if (d->live == NULL)
		return;
	r = livestatus_begin(d->live);
	r->pid = (int64_t)getpid();
	r->started = (int64_t)d->started;
	r->updated = (int64_t)time(NULL);
	r->state = (uint32_t)state;
	if (d->watcher != NULL) {
		watcher_get_stats(d->watcher, &st);
		snprintf(r->backend, sizeof r->backend, "%s", watcher_backend(d->watcher));
		r->watches = st.watches;
		r->unwatched = st.unwatched;
		r->events = st.events;
		r->overflows = st.overflows;
		r->watch_failures = st.watch_failures;
	}
	r->crawled = r->watches;
	r->rescans_recorded = d->rescans_recorded;
	r->flushes = d->flushes;
	r->pending = d->pending != NULL ? pending_count(d->pending) : 0;
	r->last_flush = d->last_flush_time;
	r->journal_error_since = d->journal_error_since;
	snprintf(r->journal_error, sizeof r->journal_error, "%s", d->journal_error);
	livestatus_end(d->live);
}

/* What the loop is doing now, for publish_status(). */
static enum livestatus_state
current_state(struct daemon *d)
{
	return d->crawl_started_ms != 0 ? LIVESTATUS_CRAWLING : LIVESTATUS_READY;
}

/* ---- flushing ---- */

/* The journal cannot be written (why): the changes stay in memory, said at
 * most every 10 s and shown by status; past pending_limit they give way to a
 * rescan of every root. The loop tries again a second later. */
static void
journal_failing(struct daemon *d, time_t now, const char *why)
{
	if (now - d->last_error_log >= 10 || !d->flush_failing) {
		log_error("cannot write the journal (changes kept in memory, %zu pending): %s",
		    pending_count(d->pending), why);
		d->last_error_log = now;
	}
	d->flush_failing = 1;
	if (d->journal_error_since == 0)
		d->journal_error_since = (int64_t)now;
	snprintf(d->journal_error, sizeof d->journal_error, "%s", why);
	if (pending_count(d->pending) > d->cfg.pending_limit) {
		size_t i;
		int64_t since = pending_oldest(d->pending) - WATCH_TIME_MARGIN;

		log_error("more than %u changes pending (pending_limit): replacing them with a "
		    "rescan of every root", d->cfg.pending_limit);
		pending_drop_changes(d->pending);
		for (i = 0; i < d->cfg.nroots; i++)
			sink_rescan(d, d->cfg.roots[i], since, "journal not writable");
	}
}

static int
flush(struct daemon *d)
{
	static const char *keys[] = { "daemon_pid", "daemon_started", "watches", "events",
		"overflows", "rescans_recorded", "watch_failures", "unwatched", "flushes", NULL };
	int64_t values[9];
	struct watcher_stats st;
	int64_t prune = 0;
	time_t now = time(NULL);
	char why[1024];

	if (check_journal_identity(d, why, sizeof why) < 0) {
		d->last_flush_ms = now_ms();
		journal_failing(d, now, why);
		return -1;
	}
	watcher_get_stats(d->watcher, &st);
	values[0] = (int64_t)getpid();
	values[1] = (int64_t)d->started;
	values[2] = (int64_t)st.watches;
	values[3] = (int64_t)st.events;
	values[4] = (int64_t)st.overflows;
	values[5] = (int64_t)d->rescans_recorded;
	values[6] = (int64_t)st.watch_failures;
	values[7] = (int64_t)st.unwatched;
	values[8] = (int64_t)d->flushes + 1;
	if (consumers_prune_point(&d->consumers, journal_id(d->journal), &prune) < 0) {
		log_warning("%s: not pruning", d->consumers.err.msg);
		prune = 0;
	}
	{
		/* roots the agent must not wait on for sync cookies */
		char *unw = roots_text(d, 1);

		/* written whenever it changed, however long (it was cut at 8 KiB) */
		if (unw != NULL && (d->unwatched_roots == NULL || strcmp(unw, d->unwatched_roots) != 0)) {
			if (journal_meta_set_text(d->journal, "unwatched_roots", unw) < 0) {
				log_warning("%s", journal_errmsg(d->journal));
			} else {
				free(d->unwatched_roots);
				d->unwatched_roots = unw;
				unw = NULL;
			}
		}
		free(unw);
	}
	refresh_links(d);
	d->last_flush_ms = now_ms();
	if (pending_flush(d->pending, d->journal, prune, (int64_t)now,
	    (int64_t)watcher_drained_at(d->watcher), keys, values) < 0) {
		journal_failing(d, now, journal_errmsg(d->journal));
		return -1;
	}
	if (d->flush_failing)
		log_info("journal writable again: pending changes written");
	d->flush_failing = 0;
	d->journal_error_since = 0;
	d->journal_error[0] = '\0';
	d->last_flush_time = (int64_t)now;
	d->flushes++;
	return 0;
}

/* ---- start-up and reload ---- */

/* The key `group`: who may read the journal, its status and the cursors
 * (stateperm.h). A failure is no reason to stop journaling: said, and
 * retried at the next reload. */
static void
apply_group(struct daemon *d)
{
	struct chj_error e;

	if (d->cfg.group != NULL)
		consumers_set_group(&d->consumers, d->cfg.gid, 0);
	if (stateperm_apply(&d->cfg, &e) < 0)
		log_error("%s: monitoring by group '%s' may not read the state", e.msg,
		    d->cfg.group != NULL ? d->cfg.group : "(none)");
	else if (d->cfg.group != NULL)
		log_debug("journal, status and cursors readable by group '%s'", d->cfg.group);
}

/* Records what start-up must: the gap since the last flush (daemon down or
 * crashed) as a rescan of each root, and roots new to this journal as new
 * subtrees. */
static int
record_startup_gap(struct daemon *d)
{
	int64_t last_flush = 0;
	char *old_roots = NULL;
	int rc;
	size_t i;

	if (journal_was_created(d->journal)) {
		log_info("journal '%s' created (id %s): every consumer starts with a full run",
		    d->cfg.journal, journal_id(d->journal));
		return 0;
	}
	rc = journal_meta_get_int(d->journal, "last_flush", &last_flush);
	if (rc < 0 || journal_meta_get_text(d->journal, "roots", &old_roots) < 0) {
		log_error("%s", journal_errmsg(d->journal));
		return -1;
	}
	for (i = 0; i < d->cfg.nroots; i++) {
		if (old_roots != NULL && !path_list_contains(old_roots, d->cfg.roots[i])) {
			log_info("root '%s' is new to this journal: everything below it counts as new",
			    d->cfg.roots[i]);
			pending_change(d->pending, d->cfg.roots[i], JF_SUBTREE | JF_DIR | JF_CREATED);
			continue;
		}
		if (rc == 0) {
			char ts[32];

			log_info("changes to '%s' since %s (last flush before start) are covered by a rescan",
			    d->cfg.roots[i], local_time_str(last_flush, ts, sizeof ts));
			sink_rescan(d, d->cfg.roots[i], last_flush - WATCH_TIME_MARGIN,
			    "daemon was not running");
		}
	}
	free(old_roots);
	return 0;
}

static int
write_static_meta(struct daemon *d)
{
	char *roots = roots_text(d, 0);
	int rc;

	if (roots == NULL)
		return -1;
	rc = journal_meta_set_text(d->journal, "roots", roots) < 0 ||
	    journal_meta_set_text(d->journal, "backend", watcher_backend(d->watcher)) < 0 ||
	    journal_meta_set_int(d->journal, "daemon_pid", (int64_t)getpid()) < 0 ||
	    journal_meta_set_int(d->journal, "daemon_started", (int64_t)d->started) < 0;
	free(roots);
	if (rc) {
		log_error("%s", journal_errmsg(d->journal));
		return -1;
	}
	return 0;
}

static int
same_excludes(const struct config *a, const struct config *b)
{
	size_t i;

	if (a->nexcludes != b->nexcludes)
		return 0;
	for (i = 0; i < a->nexcludes; i++)
		if (strcmp(a->exclude_sources[i], b->exclude_sources[i]) != 0)
			return 0;
	return 1;
}

static int
has_root(const struct config *c, const char *root)
{
	size_t i;

	for (i = 0; i < c->nroots; i++)
		if (strcmp(c->roots[i], root) == 0)
			return 1;
	return 0;
}

/* Says so when root i, just added, is missing: the backend covers it with
 * rescan records and retries it, and journals it as a new subtree once it
 * is back (so the first run after that lists all of it). */
static void
note_missing_root(struct daemon *d, size_t i)
{
	int e = config_root_missing(&d->cfg, i);

	if (e != 0 && !watcher_root_is_watched(d->watcher, d->cfg.roots[i]))
		log_warning("root '%s' is missing (%s): its changes are covered by rescan records "
		    "until it is back; it is then watched again and everything below it counts as "
		    "new", d->cfg.roots[i], strerror(e));
}

/* Reads the configuration file again into nc for a reload or a restart in
 * place (what: "reload", "restart"). Returns 0, or -1 (refused, logged). */
static int
load_new_config(struct daemon *d, struct config *nc, const char *what)
{
	if (config_load(nc, d->config_file) < 0) {
		log_error("%s refused, keeping the running configuration: %s", what, nc->err.msg);
		return -1;
	}
	if (strcmp(nc->journal, d->cfg.journal) != 0) {
		log_error("%s refused: key 'journal' changed ('%s' to '%s'): stop and start chjournald "
		    "for that", what, d->cfg.journal, nc->journal);
		config_free(nc);
		return -1;
	}
	return 0;
}

/* Puts nc (read by load_new_config) in place of the running configuration:
 * adds and removes roots in place. */
static void
apply_config(struct daemon *d, struct config *nc)
{
	struct config old;
	size_t i;
	char err[512];
	int excludes_changed;

	flush(d);
	excludes_changed = !same_excludes(nc, &d->cfg);
	old = d->cfg;
	d->cfg = *nc;
	watcher_set_config(d->watcher, &d->cfg);
	log_set_level((enum config_log_level)((int)d->cfg.log_level + d->verbosity > CONFIG_LOG_DEBUG ?
	    CONFIG_LOG_DEBUG : (int)d->cfg.log_level + d->verbosity));
	for (i = 0; i < old.nroots; i++) {
		if (excludes_changed || !has_root(&d->cfg, old.roots[i])) {
			log_info("root '%s' removed", old.roots[i]);
			watcher_remove_root(d->watcher, old.roots[i]);
		}
	}
	for (i = 0; i < d->cfg.nroots; i++) {
		if (!excludes_changed && has_root(&old, d->cfg.roots[i]))
			continue;
		if (watcher_add_root(d->watcher, d->cfg.roots[i], err, sizeof err) < 0) {
			log_error("%s", err);
			continue;
		}
		note_missing_root(d, i);
		/* a new root, or one whose exclusions changed: consumers have not
		 * seen (all of) it, so everything below counts as new */
		log_info("root '%s' %s: everything below it counts as changed", d->cfg.roots[i],
		    excludes_changed && has_root(&old, d->cfg.roots[i]) ? "has new excludes" : "added");
		pending_change(d->pending, d->cfg.roots[i], JF_SUBTREE | JF_DIR | JF_CREATED);
	}
	config_free(&old);
	consumers_close(&d->consumers);
	consumers_open(&d->consumers, d->cfg.consumers, 1);
	apply_group(d);
	write_static_meta(d);
	check_nfs_exports(d);
	/* records the mount state of the new roots, so their mounts are followed */
	if (d->mounts != NULL)
		check_mounts(d);
	flush(d);
	log_info("reload done: %zu roots", d->cfg.nroots);
}

/* SIGHUP: re-reads the configuration; adds and removes roots in place. */
static void
reload(struct daemon *d)
{
	struct config nc;

	/* logrotate's postrotate: the old file was moved away */
	if (log_reopen() < 0)
		log_error("cannot reopen the log file: %s: logging on to the old one", strerror(errno));
	log_info("SIGHUP: reloading '%s'", d->config_file);
	if (load_new_config(d, &nc, "reload") == 0)
		apply_config(d, &nc);
}

/* ---- restart in place (SIGUSR2) ---- */

static void log_ready(struct daemon *d);

/* The start of the state: what the next process checks before it takes the
 * rest (the same process, journal, roots and excludes). */
static void
handover_put_header(struct daemon *d, struct statebuf *b, int64_t signalled_ms)
{
	size_t i;

	statebuf_put_u32(b, HANDOVER_MAGIC);
	statebuf_put_u32(b, HANDOVER_VERSION);
	statebuf_put_str(b, PACKAGE_VERSION);
	statebuf_put_i64(b, (int64_t)getpid());
	statebuf_put_i64(b, signalled_ms);
	statebuf_put_str(b, d->cfg.journal);
	statebuf_put_str(b, journal_id(d->journal));
	statebuf_put_u64(b, d->cfg.nroots);
	for (i = 0; i < d->cfg.nroots; i++)
		statebuf_put_str(b, d->cfg.roots[i]);
	statebuf_put_u64(b, d->cfg.nexcludes);
	for (i = 0; i < d->cfg.nexcludes; i++)
		statebuf_put_str(b, d->cfg.exclude_sources[i]);
}

/* The next process's check of the header. Returns 0, or -1 with why filled;
 * *from and *signalled_ms tell the log where the state comes from. */
static int
handover_check_header(struct daemon *d, struct statebuf *b, const char **from,
    int64_t *signalled_ms, char *why, size_t whylen)
{
	uint32_t magic = statebuf_get_u32(b), version = statebuf_get_u32(b);
	const char *journal, *id;
	int64_t pid;
	uint64_t i, n;

	*from = statebuf_get_str(b);
	pid = statebuf_get_i64(b);
	*signalled_ms = statebuf_get_i64(b);
	journal = statebuf_get_str(b);
	id = statebuf_get_str(b);
	if (statebuf_status(b) == 0 && magic != HANDOVER_MAGIC) {
		snprintf(why, whylen, "the state is not a chjournald hand-over");
		return -1;
	}
	if (statebuf_status(b) == 0 && version != HANDOVER_VERSION) {
		snprintf(why, whylen, "the state is of format %u (from chjournald %s), this program "
		    "reads format %u", version, *from, HANDOVER_VERSION);
		return -1;
	}
	if (statebuf_status(b) < 0) {
		snprintf(why, whylen, "%s", b->err.msg);
		return -1;
	}
	if (pid != (int64_t)getpid()) {
		snprintf(why, whylen, "the state is process %lld's, not this one's", (long long)pid);
		return -1;
	}
	if (strcmp(journal, d->cfg.journal) != 0 || strcmp(id, journal_id(d->journal)) != 0) {
		snprintf(why, whylen, "the state is of journal '%s' (id %s), not of '%s' (id %s)",
		    journal, id, d->cfg.journal, journal_id(d->journal));
		return -1;
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n != d->cfg.nroots) {
		snprintf(why, whylen, "the roots changed (%llu handed over, %zu configured)",
		    (unsigned long long)n, d->cfg.nroots);
		return -1;
	}
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		const char *r = statebuf_get_str(b);

		if (r != NULL && strcmp(r, d->cfg.roots[i]) != 0) {
			snprintf(why, whylen, "the roots changed ('%s' handed over, '%s' configured)", r,
			    d->cfg.roots[i]);
			return -1;
		}
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n != d->cfg.nexcludes) {
		snprintf(why, whylen, "the excludes changed");
		return -1;
	}
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		const char *x = statebuf_get_str(b);

		if (x != NULL && strcmp(x, d->cfg.exclude_sources[i]) != 0) {
			snprintf(why, whylen, "the excludes changed");
			return -1;
		}
	}
	if (statebuf_status(b) < 0) {
		snprintf(why, whylen, "%s", b->err.msg);
		return -1;
	}
	return 0;
}

/* The arguments of the next process: the configuration file (absolute), the
 * same verbosity and log and pid file, never --daemon (it is detached
 * already, and must keep its pid). */
static void
restart_argv(struct daemon *d, char **argv, size_t max)
{
	size_t n = 0;
	int v;

	argv[n++] = d->exe;
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)d->config_file;
	for (v = 0; v < d->verbosity && n + 7 < max; v++)
		argv[n++] = (char *)"-v";
	if (d->use_syslog)
		argv[n++] = (char *)"--syslog";
	if (d->logfile != NULL) {
		argv[n++] = (char *)"--log-file";
		argv[n++] = (char *)d->logfile;
	}
	if (d->pidfile != NULL) {
		argv[n++] = (char *)"--pidfile";
		argv[n++] = (char *)d->pidfile;
	}
	argv[n] = NULL;
}

/* SIGUSR2: restarts in place. The configuration is read again (as SIGHUP
 * would: the roots the next process finds configured are the ones handed
 * over), the crawl is finished and the queue read, the watcher's state
 * saved, every pending change journaled, and the program file executed
 * again with the lock and the watcher's descriptor kept open. Returns only
 * when it did not restart: 0 (the daemon goes on, the reason logged), or -1
 * when it cannot go on (the journal could not be opened again). */
static int
restart_in_place(struct daemon *d)
{
	struct statebuf b;
	struct config nc;
	char err[1024], *argv[16];
	int64_t t0 = now_ms();
	struct chj_error e;

	log_info("SIGUSR2: restarting in place: '%s', the kernel state handed over", d->exe);
	if (access(d->exe, X_OK) < 0) {
		log_error("restart refused, the daemon goes on: cannot execute '%s': %s", d->exe,
		    strerror(errno));
		return 0;
	}
	if (load_new_config(d, &nc, "restart") < 0)
		return 0;
	apply_config(d, &nc);
	/* the next process takes a table, not a crawl */
	while (watcher_busy(d->watcher)) {
		watcher_step(d->watcher);
		if (watcher_process(d->watcher, err, sizeof err) < 0) {
			log_error("%s", err);
			return -1;
		}
	}
	if (d->crawl_started_ms != 0)
		log_ready(d);
	if (watcher_process(d->watcher, err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	statebuf_init(&b);
	handover_put_header(d, &b, t0);
	if (watcher_save(d->watcher, &b, err, sizeof err) < 0) {
		log_error("restart refused, the daemon goes on: %s", err);
		statebuf_free(&b);
		return 0;
	}
	/* what was read is journaled: the next process reads on from there */
	if (flush(d) < 0 || pending_count(d->pending) > 0) {
		log_error("restart refused, the daemon goes on: the journal cannot be written, and "
		    "the changes in memory would be lost");
		statebuf_free(&b);
		return 0;
	}
	{
		struct watcher_stats st;

		watcher_get_stats(d->watcher, &st);
		log_info("restart: %lu %s, %zu bytes of state, ready in %.3f s; executing '%s'",
		    st.watches, watcher_watch_unit(d->watcher), b.len,
		    (double)(now_ms() - t0) / 1000.0, d->exe);
	}
	restart_argv(d, argv, sizeof argv / sizeof argv[0]);
	livestatus_close(d->live);
	d->live = NULL;
	journal_free(d->journal);
	d->journal = NULL;
	handover_exec(d->exe, argv, d->lock_fd, watcher_fd(d->watcher), b.data, b.len, err,
	    sizeof err);
	statebuf_free(&b);
	log_error("restart failed, the daemon goes on: %s", err);
	if ((d->journal = journal_new()) == NULL ||
	    journal_open(d->journal, d->cfg.journal, JOURNAL_CREATE) < 0) {
		log_error("cannot open the journal again: %s",
		    d->journal != NULL ? journal_errmsg(d->journal) : "out of memory");
		return -1;
	}
	note_journal_identity(d);
	if ((d->live = livestatus_open(d->cfg.journal, &e)) == NULL)
		log_warning("%s: status shows the figures of the last flush", e.msg);
	return 0;
}

/* ---- main loop ---- */

static int
setup_signals(struct daemon *d)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	d->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return d->sig_fd < 0 ? -1 : 0;
}

/* Returns 1 to stop, 0 to go on, -1 on a fatal error. */
static int
handle_signals(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			reload(d);
		} else if (si.ssi_signo == SIGUSR2) {
			if (restart_in_place(d) < 0)
				return -1;
		} else {
			log_info("%s received: flushing and stopping",
			    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			return 1;
		}
	}
	return 0;
}

/* The start-up crawl is done: every directory is watched. */
static void
log_ready(struct daemon *d)
{
	struct watcher_stats st;

	watcher_get_stats(d->watcher, &st);
	log_info("ready: %lu %s in %.3f s%s", st.watches, watcher_watch_unit(d->watcher),
	    (double)(now_ms() - d->crawl_started_ms) / 1000.0,
	    st.unwatched ? " (some directories could not be watched: see above)" : "");
	d->crawl_started_ms = 0;
}

static int
run(struct daemon *d)
{
	char err[512];

	for (;;) {
		struct pollfd pfd[3];
		int64_t now = now_ms(), deadline;
		time_t before_poll = time(NULL);
		int timeout, n;

		if (pending_count(d->pending) > 0)
			deadline = d->last_flush_ms + (d->flush_failing ? 1000 : d->cfg.flush_interval_ms);
		else
			deadline = d->last_flush_ms + HEARTBEAT_MS;
		timeout = deadline > now ? (int)(deadline - now) : 0;
		if (watcher_busy(d->watcher))
			timeout = 0;     /* a crawl slice is due */
		pfd[0].fd = watcher_fd(d->watcher);
		pfd[0].events = POLLIN;
		pfd[1].fd = d->sig_fd;
		pfd[1].events = POLLIN;
		pfd[2].fd = d->mounts != NULL ? mountwatch_fd(d->mounts) : -1;
		pfd[2].events = POLLPRI;
		pfd[2].revents = 0;
		n = poll(pfd, 3, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return -1;
		}
		/* nothing was queued when poll returned: every change before the
		 * call has been read */
		if (n >= 0 && !(pfd[0].revents & POLLIN))
			watcher_note_idle(d->watcher, before_poll);
		if (pfd[1].revents & POLLIN) {
			int sig = handle_signals(d);

			if (sig < 0)
				return -1;
			if (sig > 0)
				break;
		}
		/* a mount before the events read after it: the paths it covers
		 * are watched again first */
		if (pfd[2].revents & (POLLPRI | POLLERR))
			check_mounts(d);
		if (pfd[0].revents & POLLIN) {
			if (watcher_process(d->watcher, err, sizeof err) < 0) {
				log_error("%s", err);
				return -1;
			}
		}
		/* directories moved: where the mounts below them are now */
		if (d->mounts_dirty && d->mounts != NULL)
			check_mounts(d);
		if (watcher_busy(d->watcher)) {
			watcher_step(d->watcher);
			if (!watcher_busy(d->watcher) && d->crawl_started_ms != 0)
				log_ready(d);
		}
		watcher_tick(d->watcher, time(NULL));
		publish_status(d, current_state(d));
		now = now_ms();
		if (pending_has_cookies(d->pending) ||
		    pending_count(d->pending) >= d->cfg.batch_size ||
		    now >= deadline)
			flush(d);
	}
	/* drain what the kernel still holds, then the last flush */
	if (watcher_process(d->watcher, err, sizeof err) < 0)
		log_error("%s", err);
	if (flush(d) < 0)
		return -1;
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: chjournald [-c FILE] [-v]... [--syslog | --log-file FILE] [--daemon --pidfile FILE]\n"
	    "       chjournald [-c FILE] -t [-q]\n"
	    "  -c, --config FILE   configuration (default $CHJOURNAL_CONF or " CONFIG_DEFAULT_FILE ")\n"
	    "  -t, --test          check the configuration and the machine, then exit (0: fine,\n"
	    "                      1: an error that will break the daemon or the backups)\n"
	    "  -q, --quiet         with -t: print only the warnings and errors\n"
	    "  -v, --verbose       more log detail (repeatable)\n"
	    "      --syslog        log to syslog instead of stderr\n"
	    "      --log-file FILE log to FILE (absolute; appended to, reopened on SIGHUP)\n"
	    "      --daemon        detach from the terminal (logs go to syslog, or --log-file)\n"
	    "      --pidfile FILE  write the daemon's pid to FILE\n"
	    "  -h, --help          this help\n"
	    "      --version       print the version\n");
}

struct test_counts {
	unsigned warnings, errors;
	int quiet;
};

static void
test_line(void *ctx, enum selfcheck_level level, const char *msg)
{
	struct test_counts *t = ctx;

	t->warnings += level == SELFCHECK_WARNING;
	t->errors += level == SELFCHECK_ERROR;
	if (!t->quiet || level != SELFCHECK_OK)
		printf("%s: %s\n", selfcheck_level_name(level), msg);
}

/* -t: the configuration and the machine, one line per finding on stdout
 * (with quiet, the warnings and errors only); exit 1 on an error. CHJ_TEST_SYSCTL_DIR and CHJ_TEST_NFS_EXPORTS are test
 * hooks, nothing to configure. */
static int
self_test(const char *config_file, int quiet)
{
	struct selfcheck_opts o;
	struct test_counts t = { 0, 0, quiet };
	struct chj_error e;
	int worst;

	memset(&o, 0, sizeof o);
	o.role = SELFCHECK_DAEMON;
	o.sysctl_dir = getenv("CHJ_TEST_SYSCTL_DIR");
	o.nfs_table = getenv("CHJ_TEST_NFS_EXPORTS");
	worst = selfcheck_run(config_file, &o, test_line, &t, &e);
	if (worst < 0) {
		fprintf(stderr, "chjournald: %s\n", e.msg);
		return 1;
	}
	if (!quiet || t.errors)
		printf("chjournald: test of '%s' %s: %u error%s, %u warning%s\n", config_file,
	    t.errors ? "failed" : "passed", t.errors, t.errors == 1 ? "" : "s", t.warnings,
	    t.warnings == 1 ? "" : "s");
	if (fflush(stdout) != 0)
		return 1;
	return t.errors ? 1 : 0;
}

/* The program file SIGUSR2 executes again: the path the daemon was started
 * by (an upgrade replaces the file there), not the inode running now, which
 * /proc/self/exe names "... (deleted)" after an upgrade. */
static void
program_path(const char *argv0, char *buf, size_t size)
{
	ssize_t n;

	buf[0] = '\0';
	if (argv0 != NULL && argv0[0] == '/') {
		snprintf(buf, size, "%s", argv0);
		return;
	}
	/* started by a relative path or through PATH: where that led, now
	 * (before --daemon's chdir) */
	if ((n = readlink("/proc/self/exe", buf, size - 1)) < 0) {
		buf[0] = '\0';
		return;
	}
	buf[n] = '\0';
	if ((size_t)n > strlen(" (deleted)") && strcmp(buf + n - strlen(" (deleted)"), " (deleted)") == 0)
		buf[n - strlen(" (deleted)")] = '\0';
}

/* The watcher of a restart in place, from the previous process's state and
 * descriptor (ho), once the state is found to be this daemon's: the same
 * process, journal, roots and excludes, and the descriptor of its backend.
 * Returns NULL with why filled when it is not (the caller starts afresh). */
static struct watcher *
adopt_handover(struct daemon *d, const struct watcher_sink *sink, struct handover *ho,
    struct statebuf *b, char *why, size_t whylen)
{
	const char *from;
	int64_t signalled_ms;
	struct watcher *w;
	const char *kind;

	if (handover_check_header(d, b, &from, &signalled_ms, why, whylen) < 0)
		return NULL;
	if (!handover_fd_is(ho->watch_fd, "inotify") && !handover_fd_is(ho->watch_fd, "[fanotify]")) {
		snprintf(why, whylen, "descriptor %d is not an inotify or fanotify descriptor",
		    ho->watch_fd);
		return NULL;
	}
	if ((w = watcher_adopt(&d->cfg, sink, ho->watch_fd, b, why, whylen)) == NULL)
		return NULL;
	kind = strcmp(watcher_backend(w), "inotify") == 0 ? "inotify" : "[fanotify]";
	if (!handover_fd_is(ho->watch_fd, kind)) {
		snprintf(why, whylen, "descriptor %d is not the %s descriptor the state describes",
		    ho->watch_fd, watcher_backend(w));
		watcher_free(w);         /* closes it */
		ho->watch_fd = -1;
		return NULL;
	}
	ho->watch_fd = -1;               /* the watcher's now */
	log_info("restarted in place (from chjournald %s, %.3f s after SIGUSR2): the %s state "
	    "handed over, nothing to crawl, no rescan", from,
	    (double)(now_ms() - signalled_ms) / 1000.0, watcher_backend(w));
	return w;
}

static int
write_pidfile(const char *file, struct chj_error *e)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());

	return atomicfile_write(file, buf, (size_t)n, 0644, e);
}

/* What the command line asks beyond struct daemon's fields. */
struct daemon_args {
	int detach, test, quiet;
};

/* Reads the options into d and a. Returns -1 to go on, or the exit status
 * (0 for --help and --version; 2, the usage said, for a usage error). */
static int
parse_args(int argc, char **argv, struct daemon *d, struct daemon_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "test", no_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:vhtq", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': d->config_file = optarg; break;
		case 'v': d->verbosity++; break;
		case 'S': d->use_syslog = 1; break;
		case 'D': a->detach = 1; break;
		case 'P': d->pidfile = optarg; break;
		case 'L': d->logfile = optarg; break;
		case 't': a->test = 1; break;
		case 'q': a->quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("chjournald %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "chjournald: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (d->pidfile != NULL && d->pidfile[0] != '/') {
		fprintf(stderr, "chjournald: --pidfile '%s' must be an absolute path\n", d->pidfile);
		return 2;
	}
	if (a->quiet && !a->test) {
		fprintf(stderr, "chjournald: -q goes with -t\n");
		usage(stderr);
		return 2;
	}
	if (a->test)
		return -1;
	if (d->logfile != NULL && d->logfile[0] != '/') {
		fprintf(stderr, "chjournald: --log-file '%s' must be an absolute path\n", d->logfile);
		return 2;
	}
	if (d->logfile != NULL && d->use_syslog) {
		fprintf(stderr, "chjournald: --log-file and --syslog do not go together\n");
		usage(stderr);
		return 2;
	}
	return -1;
}

/* Loads the configuration, its path kept absolute (SIGHUP re-reads it
 * after --daemon's chdir("/")). 0, or -1 said on stderr (nothing to free). */
static int
load_config(struct daemon *d)
{
	static char config_real[PATH_MAX];

	d->config_file = config_choose_file(d->config_file);
	if (config_load(&d->cfg, d->config_file) < 0) {
		fprintf(stderr, "chjournald: %s\n", d->cfg.err.msg);
		return -1;
	}
	if (realpath(d->config_file, config_real) == NULL) {
		fprintf(stderr, "chjournald: cannot resolve '%s': %s\n", d->config_file, strerror(errno));
		config_free(&d->cfg);
		return -1;
	}
	d->config_file = config_real;
	return 0;
}

/* The journal's lock, first of all: a second daemon fails here, visibly,
 * before it detaches or touches a pid file. Restarted in place, the lock
 * handed over is adopted (it was never free); one that cannot be turns the
 * hand-over down (*have_ho -1, why in ho_why). 0, or -1 said on stderr. */
static int
take_lock(struct daemon *d, struct handover *ho, int *have_ho, char *ho_why, size_t whysize)
{
	char err[1024];

	/* the journal's directory must exist before its lock file */
	if (path_mkdir_parent(d->cfg.journal) < 0) {
		fprintf(stderr, "chjournald: cannot create the directory of journal '%s': %s\n",
		    d->cfg.journal, strerror(errno));
		return -1;
	}
	if (*have_ho != 0 && ho->lock_fd >= 0 &&
	    (d->lock_fd = daemonlock_adopt(d->cfg.journal, ho->lock_fd, err, sizeof err)) < 0) {
		close(ho->lock_fd);
		if (*have_ho > 0)
			snprintf(ho_why, whysize, "%s", err);
		*have_ho = -1;
	}
	if (d->lock_fd < 0)
		d->lock_fd = daemonlock_acquire(d->cfg.journal, err, sizeof err);
	if (d->lock_fd < 0) {
		fprintf(stderr, "chjournald: %s\n", err);
		return -1;
	}
	return 0;
}

/* The log (a file, syslog or stderr), detaching first with --daemon. 0, or
 * -1 said on stderr or in the log. */
static int
start_logging(struct daemon *d, int detach)
{
	int lvl = (int)d->cfg.log_level + d->verbosity;

	/* before detaching: a log file that cannot be written is said here */
	if (d->logfile != NULL && log_open_file(d->logfile) < 0) {
		fprintf(stderr, "chjournald: cannot open log file '%s': %s\n", d->logfile,
		    strerror(errno));
		return -1;
	}
	if (detach) {
		if (d->logfile == NULL)
			d->use_syslog = 1;
		if (daemon(0, 0) < 0) {
			fprintf(stderr, "chjournald: cannot detach: %s\n", strerror(errno));
			return -1;
		}
		/* the flock is shared with the child; the pid in it is not */
		if (daemonlock_write_pid(d->lock_fd) < 0) {
			int e = errno;

			log_init(d->logfile != NULL ? LOG_TARGET_FILE : LOG_TARGET_SYSLOG, CONFIG_LOG_ERROR);
			log_error("cannot write pid to the lock file: %s", strerror(e));
			return -1;
		}
	}
	log_init(d->logfile != NULL ? LOG_TARGET_FILE : d->use_syslog ? LOG_TARGET_SYSLOG :
	    LOG_TARGET_STDERR, (enum config_log_level)(lvl > CONFIG_LOG_DEBUG ? CONFIG_LOG_DEBUG : lvl));
	return 0;
}

/* Signals, the journal, the live status, the consumers. 0, or -1 logged. */
static int
open_state(struct daemon *d)
{
	struct chj_error e;

	if (setup_signals(d) < 0) {
		log_error("cannot set up signals: %s", strerror(errno));
		return -1;
	}
	if ((d->journal = journal_new()) == NULL || (d->pending = pending_new()) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (journal_open(d->journal, d->cfg.journal, JOURNAL_CREATE) < 0) {
		log_error("%s", journal_errmsg(d->journal));
		return -1;
	}
	note_journal_identity(d);
	/* the live figures: status works without it, on the last flush's */
	if ((d->live = livestatus_open(d->cfg.journal, &e)) == NULL)
		log_warning("%s: status shows the figures of the last flush", e.msg);
	publish_status(d, LIVESTATUS_STARTING);
	if (consumers_open(&d->consumers, d->cfg.consumers, 1) < 0) {
		log_error("%s", d->consumers.err.msg);
		return -1;
	}
	apply_group(d);
	log_info("starting: journal '%s' (id %s), %zu roots, backend %s", d->cfg.journal,
	    journal_id(d->journal), d->cfg.nroots, config_backend_name(d->cfg.backend));
	return 0;
}

/* The watcher: the one handed over (have_ho > 0) when it can be adopted,
 * else a new one. Sets *adopted. 0, or -1 logged. */
static int
open_watcher(struct daemon *d, const struct watcher_sink *sink, struct handover *ho,
    struct statebuf *hstate, int have_ho, int *adopted)
{
	char err[1024], why[1024] = "";

	if (have_ho > 0 && (d->watcher = adopt_handover(d, sink, ho, hstate, why,
	    sizeof why)) == NULL) {
		log_warning("restart in place: the hand-over is refused (%s): starting afresh, a "
		    "rescan of every root covers the restart", why);
		if (ho->watch_fd >= 0)
			close(ho->watch_fd);
	}
	*adopted = d->watcher != NULL;
	if (!*adopted)
		d->watcher = watcher_new(&d->cfg, sink, err, sizeof err);
	if (d->watcher == NULL) {
		log_error("%s", err);
		return -1;
	}
	watcher_show_progress(d->watcher, log_to_stderr() && isatty(STDERR_FILENO));
	/* only fanotify reports writes outside the roots */
	if (strcmp(watcher_backend(d->watcher), "fanotify") == 0 && (d->links = linkset_new()) == NULL) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

/* What was missed while down (a rescan record, the mount table), then the
 * roots watched (a watcher handed over watches them already). 0, or -1
 * logged. */
static int
watch_roots(struct daemon *d, int adopted)
{
	char err[1024];
	int64_t t0;
	size_t i;

	/* handed over, nothing was missed: the events of the restart wait in
	 * the kernel's queue */
	if (!adopted && record_startup_gap(d) < 0)
		return -1;
	if ((d->mounts = mountwatch_new(err, sizeof err)) == NULL) {
		log_warning("%s: mounts and unmounts below the roots are not followed", err);
	} else if (mountwatch_compare(d->mounts, &d->cfg, d->journal,
	    adopted ? mount_changed : mount_changed_while_down, d, err, sizeof err) < 0) {
		log_error("mount table: %s", err);
		return -1;
	}
	t0 = now_ms();
	for (i = 0; i < d->cfg.nroots && !adopted; i++) {
		if (watcher_add_root(d->watcher, d->cfg.roots[i], err, sizeof err) < 0) {
			log_error("%s", err);
			return -1;
		}
		note_missing_root(d, i);
	}
	d->crawl_started_ms = t0;
	if (!watcher_busy(d->watcher))
		log_ready(d);
	if (write_static_meta(d) < 0 || flush(d) < 0)
		return -1;
	check_nfs_exports(d);
	return 0;
}

/* After run() returned cleanly: the journal and the log say so. */
static void
note_stopped(struct daemon *d)
{
	struct watcher_stats st;

	journal_meta_set_int(d->journal, "daemon_stopped", (int64_t)time(NULL));
	publish_status(d, LIVESTATUS_STOPPED);
	journal_meta_set_int(d->journal, "daemon_pid", 0);
	watcher_get_stats(d->watcher, &st);
	log_info("stopped cleanly after %.0f s: %lu events, %lu flushes, %lu overflows, "
	    "%lu rescans recorded, %lu watches", difftime(time(NULL), d->started), st.events,
	    d->flushes, st.overflows, d->rescans_recorded, st.watches);
}

static void
daemon_free(struct daemon *d)
{
	livestatus_close(d->live);
	free(d->unwatched_roots);
	watcher_free(d->watcher);
	mountwatch_free(d->mounts);
	linkset_free(d->links);
	pending_free(d->pending);
	journal_free(d->journal);
	consumers_close(&d->consumers);
	config_free(&d->cfg);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
}

int
main(int argc, char **argv)
{
	struct daemon d;
	struct daemon_args args = { 0, 0, 0 };
	struct watcher_sink sink;
	struct handover ho;
	struct statebuf hstate;
	char ho_why[1024] = "";
	int have_ho, adopted, rc = 1, wrote_pidfile = 0;

	memset(&d, 0, sizeof d);
	d.lock_fd = d.sig_fd = -1;
	statebuf_init(&hstate);
	/* a restart in place (SIGUSR2): the previous process's descriptors and
	 * state, checked once the journal is open */
	have_ho = handover_take_env(&ho, ho_why, sizeof ho_why);
	if (have_ho > 0 && handover_read_state(ho.state_fd, &hstate, ho_why, sizeof ho_why) < 0)
		have_ho = -1;
	program_path(argv[0], d.exe, sizeof d.exe);
	if ((rc = parse_args(argc, argv, &d, &args)) >= 0)
		goto done;
	if (args.test) {
		rc = self_test(config_choose_file(d.config_file), args.quiet);
		goto done;
	}
	rc = 1;
	if (load_config(&d) < 0)
		goto done;
	if (take_lock(&d, &ho, &have_ho, ho_why, sizeof ho_why) < 0 ||
	    start_logging(&d, args.detach) < 0)
		goto out;
	if (have_ho < 0) {
		log_warning("restart in place: the hand-over cannot be taken (%s): starting afresh, "
		    "a rescan of every root covers the restart", ho_why);
		if (ho.watch_fd >= 0)
			close(ho.watch_fd);
		ho.watch_fd = -1;
	}
	d.started = time(NULL);
	if (d.pidfile != NULL) {
		struct chj_error e;

		if (write_pidfile(d.pidfile, &e) < 0) {
			log_error("cannot write pid file: %s", e.msg);
			goto out;
		}
		wrote_pidfile = 1;
	}
	if (open_state(&d) < 0)
		goto out;
	sink.ctx = &d;
	sink.change = sink_change;
	sink.rescan = sink_rescan;
	sink.cookie = sink_cookie;
	sink.outside_write = sink_outside_write;
	rc = open_watcher(&d, &sink, &ho, &hstate, have_ho, &adopted);
	statebuf_free(&hstate);
	if (rc < 0 || watch_roots(&d, adopted) < 0) {
		rc = 1;
		goto out;
	}
	rc = run(&d) < 0 ? 1 : 0;
	if (rc == 0)
		note_stopped(&d);
out:
	if (wrote_pidfile)
		unlink(d.pidfile);
	daemon_free(&d);
done:
	statebuf_free(&hstate);
	return rc;
}
