/* watch.c: the watcher core. watcher_new() picks the backend named in the
 * configuration (inotify, fanotify, or auto: fanotify where the kernel,
 * privileges and file systems allow it, else inotify, with the reason
 * logged). The backend only watches and delivers (watch-backend.h); the
 * policy is here, once: sync cookies, rescan records and their times, the
 * paths that cannot be watched (covered by renewed rescan records, retried),
 * what a queue overflow means, the drain time, the statistics. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "config.h"
#include "log.h"
#include "longpath.h"
#include "path.h"
#include "statebuf.h"
#include "watch.h"
#include "watch-backend.h"

#define TICK_SECONDS 10              /* unwatched paths: renewal and retry */
#define MAX_UNWATCHED 64             /* more below one root: the whole root */
#define WATCH_STATE_VERSION 1        /* of what watcher_save() writes */

/* A path that cannot be watched now: covered by a rescan record renewed from
 * recorded, and retried. */
struct unwatched {
	char *path;
	time_t recorded;
};

struct watcher {
	const struct watcher_ops *ops;
	struct watcher_impl *impl;
	const struct config *cfg;
	struct watcher_sink sink;            /* the daemon's */
	struct unwatched *unw;
	size_t nunw, capunw;
	time_t drained_at;                   /* every change before it is delivered */
	time_t last_tick;
	int overflowing;                     /* in watch_core_overflow: no nesting */
	unsigned long events, overflows, rescans, watch_failures;
};

/* The backends see the core as this. */
#define CORE(c) ((struct watcher *)(void *)(c))

/* ---- rescans and unwatched paths ---- */

static void
record_rescan(struct watcher *w, const char *path, time_t since, const char *why)
{
	w->rescans++;
	if (w->sink.rescan(w->sink.ctx, path, (int64_t)since, why) < 0)
		log_error("out of memory recording a rescan of '%s'", path);
}

/* Index of the unwatched entry holding path (path at or below it), or -1. */
static ssize_t
unwatched_find(const struct watcher *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nunw; i++)
		if (path_is_under(path, w->unw[i].path))
			return (ssize_t)i;
	return -1;
}

/* Drops the unwatched entries at or below path. */
static void
unwatched_drop_under(struct watcher *w, const char *path)
{
	size_t i, o = 0;

	for (i = 0; i < w->nunw; i++) {
		if (path_is_under(w->unw[i].path, path))
			free(w->unw[i].path);
		else
			w->unw[o++] = w->unw[i];
	}
	w->nunw = o;
}

/* Renews every unwatched path's rescan record from its last renewal:
 * nothing since then can fall out of a window. */
static void
renew_unwatched(struct watcher *w, time_t now)
{
	size_t i;

	for (i = 0; i < w->nunw; i++) {
		record_rescan(w, w->unw[i].path, w->unw[i].recorded - WATCH_TIME_MARGIN,
		    "directory not watched");
		w->unw[i].recorded = now;
	}
}

void
watch_core_lost(struct watch_core *c, const char *path, const char *why, int err)
{
	struct watcher *w = CORE(c);
	struct unwatched *nu;
	int r = config_root_of(w->cfg, path);
	time_t now = time(NULL);
	char *p;

	if (err != 0)
		w->watch_failures++;
	if (r < 0 || unwatched_find(w, path) >= 0)
		return;
	if (w->nunw >= MAX_UNWATCHED) {
		/* too many to track one by one: the whole root is in doubt */
		unwatched_drop_under(w, w->cfg->roots[r]);
		path = w->cfg->roots[r];
	}
	if ((nu = array_grow(w->unw, w->nunw, &w->capunw, sizeof *nu, 8)) == NULL ||
	    (p = strdup(path)) == NULL) {
		w->unw = nu ? nu : w->unw;
		log_error("out of memory tracking unwatched directory '%s'", path);
		return;
	}
	w->unw = nu;
	w->unw[w->nunw].path = p;
	w->unw[w->nunw].recorded = now;
	w->nunw++;
	/* from the last drain: what happened before the loss was delivered */
	record_rescan(w, path, w->drained_at - WATCH_TIME_MARGIN, why);
}

/* Journals every sync cookie now directly in root. After an overflow a
 * cookie's own event may be among the lost ones, and a `sync` would wait for
 * it in vain; the rescan recorded for the overflow covers every change made
 * before such a cookie, so it may be journaled. Likewise for a root watched
 * again: a cookie made before its watch was never heard. */
static void
claim_root_cookies(struct watcher *w, const char *root)
{
	struct dirent *de;
	DIR *d = opendir(root);

	if (d == NULL)
		return;        /* a root gone or unreadable: it has its own rescan */
	while ((de = readdir(d)) != NULL)
		if (path_is_cookie_name(de->d_name) && w->sink.cookie(w->sink.ctx, de->d_name) < 0)
			break;
	closedir(d);
}

/* Tries an unwatched path again; returns 1 when it is watched now. */
static int
retry_unwatched(struct watcher *w, const char *path)
{
	int r = config_root_of(w->cfg, path), is_root;

	if (r < 0)
		return 1;                /* no longer under a root: forget it */
	is_root = strcmp(path, w->cfg->roots[r]) == 0;
	if (w->ops->watch(w->impl, path, is_root) != 1)
		return 0;
	if (is_root) {
		log_info("root '%s' is watched again", path);
		/* what it holds now was not seen: all of it counts as changed */
		watch_core_change((struct watch_core *)w, path, JF_SUBTREE | JF_DIR);
		claim_root_cookies(w, path);
	} else {
		log_info("directory '%s' is watched now", path);
	}
	return 1;
}

/* Every TICK_SECONDS: renews the unwatched paths' rescan records and tries
 * them again; a path gone (not a root) is forgotten (its parent reported
 * it). */
static void
tick_unwatched(struct watcher *w, time_t now)
{
	struct unwatched *old = w->unw;
	size_t i, nold = w->nunw;
	struct stat st;

	w->unw = NULL;
	w->nunw = w->capunw = 0;
	for (i = 0; i < nold; i++) {
		char *path = old[i].path;
		int r = config_root_of(w->cfg, path);

		if (r < 0 || (strcmp(path, w->cfg->roots[r]) != 0 &&
		    longpath_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)) {
			free(path);
			continue;
		}
		record_rescan(w, path, old[i].recorded - WATCH_TIME_MARGIN, "directory not watched");
		/* a retry that fails reports the path lost again: it is back in
		 * the fresh list, recorded now */
		if (retry_unwatched(w, path) || unwatched_find(w, path) >= 0) {
			free(path);
			continue;
		}
		{
			struct unwatched *nu = array_grow(w->unw, w->nunw, &w->capunw, sizeof *nu, 8);

			if (nu == NULL) {
				log_error("out of memory tracking unwatched directory '%s'", path);
				free(path);
				continue;
			}
			w->unw = nu;
			w->unw[w->nunw].path = path;
			w->unw[w->nunw].recorded = now;
			w->nunw++;
		}
	}
	free(old);
}

/* ---- what the backends deliver ---- */

void
watch_core_change(struct watch_core *c, const char *path, unsigned flags)
{
	struct watcher *w = CORE(c);

	if (config_is_cookie_path(w->cfg, path)) {
		/* a sync cookie (only directly in a root: deeper it is data) */
		if (flags & (JF_CREATED | JF_MODIFIED | JF_RENAMED)) {
			/* a begin is syncing: renew the records of what cannot be
			 * watched, so its window has them after the last commit */
			renew_unwatched(w, time(NULL));
			w->sink.cookie(w->sink.ctx, strrchr(path, '/') + 1);
		}
		return;
	}
	if (w->sink.change(w->sink.ctx, path, flags) < 0)
		log_error("out of memory recording a change to '%s'", path);
}

void
watch_core_rescan(struct watch_core *c, const char *path, const char *why)
{
	struct watcher *w = CORE(c);

	record_rescan(w, path, w->drained_at - WATCH_TIME_MARGIN, why);
}

void
watch_core_rescan_since(struct watch_core *c, const char *path, time_t since, const char *why)
{
	record_rescan(CORE(c), path, since, why);
}

/* Reads an integer sysctl by its name (fs.inotify.max_queued_events).
 * Returns -1 when unreadable. */
static long
read_sysctl(const char *name)
{
	char file[128], *p;
	long v = -1;
	FILE *f;

	snprintf(file, sizeof file, "/proc/sys/%s", name);
	for (p = file + strlen("/proc/sys/"); *p != '\0'; p++)
		if (*p == '.')
			*p = '/';
	if ((f = fopen(file, "re")) != NULL) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* What happened since the last drain is unknown: a rescan of every root
 * from then, the sync cookies claimed, the backend started again. */
static void
start_again(struct watcher *w, const char *why)
{
	size_t i;

	if (w->overflowing)
		return;
	w->overflowing = 1;
	for (i = 0; i < w->cfg->nroots; i++) {
		record_rescan(w, w->cfg->roots[i], w->drained_at - WATCH_TIME_MARGIN, why);
		claim_root_cookies(w, w->cfg->roots[i]);
	}
	w->ops->resync(w->impl);
	w->overflowing = 0;
}

void
watch_core_overflow(struct watch_core *c)
{
	struct watcher *w = CORE(c);
	char why[64];

	w->overflows++;
	snprintf(why, sizeof why, "%s queue overflow", w->ops->name);
	log_warning("%s (%s = %ld): changes since %ld may be unknown; recording a rescan of "
	    "every root and watching again", why, w->ops->queue_sysctl,
	    read_sysctl(w->ops->queue_sysctl), (long)(w->drained_at - WATCH_TIME_MARGIN));
	start_again(w, why);
}

void
watch_core_out_of_step(struct watch_core *c, const char *why)
{
	struct watcher *w = CORE(c);

	log_warning("%s: recording a rescan of every root and watching again", why);
	start_again(w, why);
}

void
watch_core_replaced(struct watch_core *c, const char *path, const char *why)
{
	struct watcher *w = CORE(c);

	log_info("'%s' %s: it counts as replaced and is watched again", path, why);
	watch_core_change(c, path, JF_REPLACED);
	watcher_rewatch(w, path);
}

void
watch_core_outside_write(struct watch_core *c, const struct watcher_file_id *id)
{
	struct watcher *w = CORE(c);

	if (w->sink.outside_write != NULL && w->sink.outside_write(w->sink.ctx, id) < 0)
		log_error("out of memory following a write outside the roots");
}

time_t
watch_core_drained_at(const struct watch_core *c)
{
	return ((const struct watcher *)(const void *)c)->drained_at;
}

/* ---- the watcher (watch.h) ---- */

/* Opens a backend; NULL with e filled. */
static struct watcher *
open_backend(struct watcher *w, const struct watcher_ops *ops, struct chj_error *e)
{
	w->ops = ops;
	w->impl = ops->open(w->cfg, (struct watch_core *)w, e);
	return w->impl != NULL ? w : NULL;
}

struct watcher *
watcher_new(const struct config *cfg, const struct watcher_sink *sink, struct chj_error *e)
{
	struct watcher *w = calloc(1, sizeof *w);

	if (w == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->sink = *sink;
	w->drained_at = w->last_tick = time(NULL);
	switch (cfg->backend) {
	case CONFIG_BACKEND_FANOTIFY:
		if (open_backend(w, &watcher_fanotify_ops, e) == NULL)
			goto fail;
		return w;
	case CONFIG_BACKEND_AUTO:
		if (open_backend(w, &watcher_fanotify_ops, e) != NULL) {
			log_info("backend auto: using fanotify (one mark per file system, "
			    "no per-directory watches)");
			return w;
		}
		log_info("backend auto: using inotify: %s", e->msg);
		break;
	case CONFIG_BACKEND_INOTIFY:
		break;
	}
	if (open_backend(w, &watcher_inotify_ops, e) == NULL)
		goto fail;
	return w;
fail:
	free(w);
	return NULL;
}

void
watcher_free(struct watcher *w)
{
	size_t i;

	if (w == NULL)
		return;
	w->ops->close(w->impl);
	for (i = 0; i < w->nunw; i++)
		free(w->unw[i].path);
	free(w->unw);
	free(w);
}

const char *
watcher_backend(const struct watcher *w)
{
	return w->ops->name;
}

const char *
watcher_watch_unit(const struct watcher *w)
{
	return w->ops->watch_unit;
}

int
watcher_add_root(struct watcher *w, const char *root, struct chj_error *e)
{
	int rc = w->ops->watch(w->impl, root, 1);

	if (rc < 0)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	/* an agent that found the lock taken (the daemon starting, or a root
	 * added by a reload) may have made its cookie before this watch: never
	 * heard, its sync would wait for its timeout. What came before such a
	 * cookie is covered by the start's rescan, or by the new root counted
	 * as changed, both pending before the cookie. */
	if (rc == 1)
		claim_root_cookies(w, root);
	return 0;
}

void
watcher_remove_root(struct watcher *w, const char *root)
{
	w->ops->unwatch(w->impl, root);
	unwatched_drop_under(w, root);
}

void
watcher_rewatch(struct watcher *w, const char *path)
{
	int r = config_root_of(w->cfg, path), is_root;

	if (r < 0)
		return;
	is_root = strcmp(path, w->cfg->roots[r]) == 0;
	/* what was there is gone, and what is there now is watched, or lost */
	unwatched_drop_under(w, path);
	if (w->ops->watch(w->impl, path, is_root) == 1 && is_root)
		claim_root_cookies(w, path);
}

int
watcher_root_is_watched(const struct watcher *w, const char *root)
{
	return unwatched_find(w, root) < 0;
}

void
watcher_show_progress(struct watcher *w, int on)
{
	w->ops->show_progress(w->impl, on);
}

void
watcher_set_config(struct watcher *w, const struct config *cfg)
{
	w->cfg = cfg;
	w->ops->set_config(w->impl, cfg);
}

int
watcher_fd(const struct watcher *w)
{
	return w->ops->fd(w->impl);
}

/* Moves the drain time on after a read or an idle poll begun at before. */
static void
note_drain(struct watcher *w, time_t before, const struct watch_read *r)
{
	time_t t = before;

	if (!r->emptied)
		return;
	if (r->hold != 0 && r->hold < t)
		t = r->hold;
	if (t > w->drained_at)
		w->drained_at = t;
}

int
watcher_process(struct watcher *w, struct chj_error *e)
{
	struct watch_read r = { 0, 0, 0 };
	time_t before = time(NULL);
	int rc = w->ops->read(w->impl, &r, e);

	w->events += r.events;
	if (rc < 0)
		return -1;
	note_drain(w, before, &r);
	return 0;
}

void
watcher_note_idle(struct watcher *w, time_t t)
{
	struct watch_read r = { 0, 1, 0 };

	w->ops->idle(w->impl, &r);
	note_drain(w, t, &r);
}

void
watcher_tick(struct watcher *w, time_t now)
{
	if (now - w->last_tick < TICK_SECONDS)
		return;
	w->last_tick = now;
	if (w->nunw > 0)
		tick_unwatched(w, now);
}

time_t
watcher_drained_at(const struct watcher *w)
{
	return w->drained_at;
}

void
watcher_get_stats(const struct watcher *w, struct watcher_stats *st)
{
	memset(st, 0, sizeof *st);
	st->watches = w->ops->watches(w->impl);
	st->events = w->events;
	st->overflows = w->overflows;
	st->rescans = w->rescans;
	st->watch_failures = w->watch_failures;
	st->unwatched = w->nunw;
}

int
watcher_busy(const struct watcher *w)
{
	return (w->ops->caps & WATCHER_CAP_CRAWL) && w->ops->busy(w->impl);
}

void
watcher_step(struct watcher *w)
{
	if (w->ops->caps & WATCHER_CAP_CRAWL)
		w->ops->step(w->impl);
}

/* ---- the hand-over across a re-exec ---- */

int
watcher_save(struct watcher *w, struct statebuf *b, struct chj_error *e)
{
	size_t i;

	if (w->ops->save == NULL)
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the %s backend cannot hand its state over",
		    w->ops->name);
	if (watcher_busy(w))
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the crawl of the roots is not done");
	statebuf_put_u32(b, WATCH_STATE_VERSION);
	statebuf_put_str(b, w->ops->name);
	statebuf_put_i64(b, (int64_t)w->drained_at);
	statebuf_put_i64(b, (int64_t)w->last_tick);
	statebuf_put_u64(b, w->events);
	statebuf_put_u64(b, w->overflows);
	statebuf_put_u64(b, w->rescans);
	statebuf_put_u64(b, w->watch_failures);
	statebuf_put_u64(b, w->nunw);
	for (i = 0; i < w->nunw; i++) {
		statebuf_put_str(b, w->unw[i].path);
		statebuf_put_i64(b, (int64_t)w->unw[i].recorded);
	}
	w->ops->save(w->impl, b);
	if (statebuf_status(b) < 0) {
		*e = b->err;
		return -1;
	}
	return 0;
}

/* Reads the core's part of the hand-over into w. Returns 0, or -1 (b failed). */
static int
adopt_core(struct watcher *w, struct statebuf *b)
{
	uint64_t i, n;

	w->drained_at = (time_t)statebuf_get_i64(b);
	w->last_tick = (time_t)statebuf_get_i64(b);
	w->events = (unsigned long)statebuf_get_u64(b);
	w->overflows = (unsigned long)statebuf_get_u64(b);
	w->rescans = (unsigned long)statebuf_get_u64(b);
	w->watch_failures = (unsigned long)statebuf_get_u64(b);
	n = statebuf_get_u64(b);
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		const char *path = statebuf_get_str(b);
		time_t recorded = (time_t)statebuf_get_i64(b);
		struct unwatched *nu;
		char *p;

		if (path == NULL)
			break;
		if (config_root_of(w->cfg, path) < 0)
			return statebuf_bad(b, "a path not watched outside the roots");
		if ((nu = array_grow(w->unw, w->nunw, &w->capunw, sizeof *nu, 8)) == NULL ||
		    (p = strdup(path)) == NULL) {
			w->unw = nu ? nu : w->unw;
			return statebuf_bad(b, "out of memory");
		}
		w->unw = nu;
		w->unw[w->nunw].path = p;
		w->unw[w->nunw].recorded = recorded;
		w->nunw++;
	}
	return statebuf_status(b);
}

struct watcher *
watcher_adopt(const struct config *cfg, const struct watcher_sink *sink, int fd,
    struct statebuf *b, struct chj_error *e)
{
	static const struct watcher_ops *const backends[] = {
		&watcher_inotify_ops, &watcher_fanotify_ops,
	};
	struct watcher *w;
	const char *name;
	uint32_t version = statebuf_get_u32(b);
	size_t i;

	name = statebuf_get_str(b);
	if (statebuf_status(b) < 0) {
		*e = b->err;
		return NULL;
	}
	if (version != WATCH_STATE_VERSION) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0,
		    "the watcher's state is of format %u, this program reads %u",
		    version, WATCH_STATE_VERSION);
		return NULL;
	}
	if ((cfg->backend == CONFIG_BACKEND_INOTIFY && strcmp(name, "inotify") != 0) ||
	    (cfg->backend == CONFIG_BACKEND_FANOTIFY && strcmp(name, "fanotify") != 0)) {
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "the descriptor handed over is %s's, the "
		    "configuration says backend = %s", name, config_backend_name(cfg->backend));
		return NULL;
	}
	if ((w = calloc(1, sizeof *w)) == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->sink = *sink;
	for (i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (strcmp(backends[i]->name, name) == 0)
			w->ops = backends[i];
	if (w->ops == NULL || w->ops->adopt == NULL) {
		/* a name this program does not know is a malformed state */
		chj_error_set(e, w->ops == NULL ? CHJ_ERR_CORRUPT : CHJ_ERR_REFUSED, 0,
		    "backend '%s' takes no hand-over", name);
		goto fail;
	}
	if (adopt_core(w, b) < 0) {
		*e = b->err;
		goto fail;
	}
	if ((w->impl = w->ops->adopt(cfg, (struct watch_core *)w, fd, b, e)) == NULL)
		goto fail;
	return w;
fail:
	for (i = 0; i < w->nunw; i++)
		free(w->unw[i].path);
	free(w->unw);
	free(w);
	return NULL;
}
