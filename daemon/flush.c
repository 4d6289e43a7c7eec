/* flush.c: chjournald writes the journal: the flush of what pending holds,
 * in one transaction with the figures; the meta that names the roots; the
 * journal file (and its lock) made again when removed under it; the live
 * figures of the status file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "daemon.h"
#include "daemonlock.h"
#include "journal.h"
#include "livestatus.h"
#include "log.h"
#include "pending.h"
#include "watch.h"

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
void
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
 * gone too) returns -1 with e filled (the journal's error, CHJ_ERR_NOMEM),
 * and the caller tries again later. */
static int
check_journal_identity(struct daemon *d, struct chj_error *e)
{
	struct stat st;
	struct journal *nj;

	if (daemonlock_is_current(d->cfg.journal, d->lock_fd) == 0) {
		struct chj_error err;
		int fd = daemonlock_acquire(d->cfg.journal, &err);

		if (fd < 0) {
			if (!d->lock_lost)
				log_error("lock file removed and cannot be taken again yet: %s", err.msg);
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
	if ((nj = journal_new()) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	if (journal_open(nj, d->cfg.journal, DAEMON_JOURNAL_FLAGS) < 0) {
		*e = *journal_error(nj);
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
void
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
enum livestatus_state
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

/* flush() and flush_unsynced(): synced says whether the batch's commit
 * waits for the disk (set on the journal each time: a new journal, made
 * when the old one was removed, starts synced). */
static int
flush_as(struct daemon *d, int synced)
{
	static const char *keys[] = { "daemon_pid", "daemon_started", "watches", "events",
		"overflows", "rescans_recorded", "watch_failures", "unwatched", "flushes", NULL };
	int64_t values[9];
	struct watcher_stats st;
	int64_t prune = 0;
	time_t now = (time_t)journal_time_now();    /* the rows' time */
	struct chj_error e;
	size_t npending;

	if (check_journal_identity(d, &e) < 0) {
		d->last_flush_ms = now_ms();
		journal_failing(d, now, e.msg);
		return -1;
	}
	if (journal_set_synced(d->journal, synced) < 0) {
		d->last_flush_ms = now_ms();
		journal_failing(d, now, journal_errmsg(d->journal));
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
	npending = pending_count(d->pending);
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
	log_debug("flush: %zu pending entries journaled in %lld ms", npending,
	    (long long)(now_ms() - d->last_flush_ms));
	return 0;
}

int
flush(struct daemon *d)
{
	return flush_as(d, 1);
}

/* A flush that returns without waiting for the disk (journal_set_synced),
 * for the changes written as they come (flush_idle_ms) and the heartbeat:
 * what it writes is made durable by the next synced commit, the one that
 * journals a sync cookie at the latest (a flush with cookies is synced), or
 * by SQLite's next checkpoint. Nothing needs it durable before: a run's
 * begin point is its cookie's seq (agent/run.c), and after a power loss the
 * journal is as it was at an earlier flush, whose last_flush time the
 * rescan of the roots starts from. */
int
flush_unsynced(struct daemon *d)
{
	return flush_as(d, pending_has_cookies(d->pending));
}

int
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
