/* watch-backend.h: the edge between the watcher core (watch.c) and a backend
 * (watch-inotify.c, watch-fanotify.c). A backend only watches and delivers:
 * it opens, watches paths (roots, and paths a mount or a retry asks for),
 * forgets them, exposes its descriptor and reads batches of events, which it
 * hands to the core as changes, or as "lost" (a path it cannot watch now),
 * "rescan" (changes below a path it cannot name one by one) and "overflow"
 * (everything since the last drain). The core owns the policy (git's
 * fsmonitor and Watchman are the models): sync cookies, rescan records and
 * their times, the paths not watched and their retries, overflows and what
 * follows them, the clock, the statistics. Each backend completes struct
 * watcher_impl in its own file and exports one ops table. */
#ifndef CHJ_WATCH_BACKEND_H
#define CHJ_WATCH_BACKEND_H

#include <time.h>

#include "error.h"
#include "statebuf.h"
#include "watch.h"

struct watcher_impl;

/* What the core hands a backend: struct watcher itself (watch.c). */
struct watch_core;

/* ---- what a backend calls (the core's side) ---- */

/* A path under a root changed (JF_* flags); sync cookies too: the core
 * tells them apart. */
void watch_core_change(struct watch_core *c, const char *path, unsigned flags);
/* Changes below path since the last drain may be unknown. */
void watch_core_rescan(struct watch_core *c, const char *path, const char *why);
/* The same from since (recorded as given: the backend's own time, margin
 * included). */
void watch_core_rescan_since(struct watch_core *c, const char *path, time_t since, const char *why);
/* path (a root or below one) cannot be watched now, or no longer is: the
 * core covers it with rescan records, renewed, and asks the backend to watch
 * it again (ops->watch) from time to time. err: why it was refused (counted
 * as a watch failure), 0 when it is only missing. */
void watch_core_lost(struct watch_core *c, const char *path, const char *why, int err);
/* The kernel's queue overflowed: what happened since the last drain is
 * unknown. The core records a rescan of every root, claims the sync cookies
 * there, and has the backend start again (ops->resync). */
void watch_core_overflow(struct watch_core *c);
/* The same when the backend's own picture is out of step with the file
 * system (why says how). */
void watch_core_out_of_step(struct watch_core *c, const char *why);
/* What path (below a root) shows was replaced: a file system unmounted
 * there, seen by the backend before the mount table says so (or never, when
 * a directory above it was renamed since the table was read). Journaled as
 * replaced, and watched again (ops->watch). */
void watch_core_replaced(struct watch_core *c, const char *path, const char *why);
/* A file written through a name outside the roots (its own handle). */
void watch_core_outside_write(struct watch_core *c, const struct watcher_file_id *id);
/* The time before which every change has been delivered (the last drain). */
time_t watch_core_drained_at(const struct watch_core *c);

/* What a read or an idle poll tells the core. */
struct watch_read {
	unsigned long events;   /* kernel events read */
	int emptied;            /* the queue was seen empty */
	time_t hold;            /* events kept back (unnamed yet) since this time:
	                         * the drain does not pass it (0: none) */
};

/* Capabilities, as flags rather than more methods. */
#define WATCHER_CAP_CRAWL 0x1   /* watching a path is a crawl run in slices (busy, step) */

struct watcher_ops {
	const char *name;
	const char *watch_unit;              /* what watches() counts */
	const char *queue_sysctl;            /* the queue's size, to raise after overflows */
	unsigned caps;
	/* NULL with e filled (CHJ_ERR_NOMEM; the kernel's refusal: CHJ_ERR_SYS
	 * or CHJ_ERR_REFUSED with its errno). */
	struct watcher_impl *(*open)(const struct config *cfg, struct watch_core *core,
	    struct chj_error *e);
	void (*close)(struct watcher_impl *w);
	/* Watches path (a root with is_root, else a path below one) as it is now,
	 * dropping what was watched there. Returns 1 when watched (a crawl may
	 * go on in slices), 0 when not (reported lost, or nothing to watch: gone,
	 * or below what is not watched either), -1 on ENOMEM. */
	int (*watch)(struct watcher_impl *w, const char *path, int is_root);
	/* Stops watching root and everything below it. */
	void (*unwatch)(struct watcher_impl *w, const char *root);
	/* Starts again from what the roots show now (after an overflow). */
	void (*resync)(struct watcher_impl *w);
	int (*fd)(const struct watcher_impl *w);
	/* Reads what is queued and delivers it. Returns 0, or -1 (e filled). */
	int (*read)(struct watcher_impl *w, struct watch_read *r, struct chj_error *e);
	/* The descriptor was polled idle: what may be settled is. */
	void (*idle)(struct watcher_impl *w, struct watch_read *r);
	unsigned long (*watches)(const struct watcher_impl *w);
	void (*set_config)(struct watcher_impl *w, const struct config *cfg);
	void (*show_progress)(struct watcher_impl *w, int on);
	int (*busy)(const struct watcher_impl *w);       /* WATCHER_CAP_CRAWL */
	void (*step)(struct watcher_impl *w);            /* WATCHER_CAP_CRAWL */
	/* The hand-over across a re-exec (watcher_save, watcher_adopt): save
	 * writes what the next process needs to read the events still queued
	 * on fd() as this one would (inotify: the watch table; fanotify: the
	 * roots, the handle cache, the events kept back), with no crawl queued.
	 * adopt opens the backend on fd, the descriptor handed over, from what
	 * save wrote; on success fd is the backend's (close() closes it), on
	 * failure (NULL, e filled) it is left open for the caller. */
	void (*save)(struct watcher_impl *w, struct statebuf *b);
	struct watcher_impl *(*adopt)(const struct config *cfg, struct watch_core *core, int fd,
	    struct statebuf *b, struct chj_error *e);
};

extern const struct watcher_ops watcher_inotify_ops;
extern const struct watcher_ops watcher_fanotify_ops;

#endif
