/* watch.h: the watcher, as the daemon sees it. It turns kernel events into
 * calls on a sink: a path changed (with JF_* flags), a subtree needs a rescan
 * from a given time, a sync cookie appeared. watch.c is its core and owns
 * the policy (cookies, rescans, unwatched paths and their retries, overflows,
 * the drain time, the statistics); a backend (watch-inotify.c,
 * watch-fanotify.c) only watches and delivers, through watch-backend.h. */
#ifndef CHJ_WATCH_H
#define CHJ_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "journal.h"

struct config;
struct statebuf;

#define WATCH_TIME_MARGIN JOURNAL_TIME_MARGIN


/* A file's identity as fanotify reports it: file system id and handle. */
#define WATCHER_HANDLE_MAX 128
struct watcher_file_id {
	int fsid[2];
	int type;
	unsigned len;
	unsigned char h[WATCHER_HANDLE_MAX];
};

struct watcher_sink {
	void *ctx;
	/* Each returns 0, or -1 on ENOMEM (the watcher then reports a rescan). */
	int (*change)(void *ctx, const char *path, unsigned flags);
	int (*rescan)(void *ctx, const char *path, int64_t since, const char *reason);
	int (*cookie)(void *ctx, const char *name);
	/* A file written (or its attributes changed) through a name outside the
	 * roots (a backend that can tell, fanotify): it may have other names
	 * inside (hard links), which the core knows. May be NULL. */
	int (*outside_write)(void *ctx, const struct watcher_file_id *id);
};

struct watcher_stats {
	unsigned long watches;         /* inotify: directories watched; fanotify: file system marks */
	unsigned long events;          /* kernel events read */
	unsigned long overflows;       /* queue overflows seen */
	unsigned long rescans;         /* rescan records reported */
	unsigned long watch_failures;  /* directories (fanotify: roots) that could not be watched */
	unsigned long unwatched;       /* of those, still unwatched now */
};

struct watcher;

/* Creates the backend named by cfg->backend. Returns NULL with e filled
 * (CHJ_ERR_NOMEM; CHJ_ERR_SYS or CHJ_ERR_REFUSED when the kernel refuses the
 * backend, errnum its errno). */
struct watcher *watcher_new(const struct config *cfg, const struct watcher_sink *sink,
    struct chj_error *e);
void watcher_free(struct watcher *w);
/* The backend in use: "inotify" or "fanotify" (auto resolved). */
const char *watcher_backend(const struct watcher *w);
/* What watcher_stats.watches counts, for the log: "directories watched"
 * (inotify) or "file systems marked" (fanotify). */
const char *watcher_watch_unit(const struct watcher *w);

/* Watches root and every directory below it (not excluded, no symlinks):
 * the root at once, what is below it by watcher_step() while
 * watcher_busy(). A root or a part of it that cannot be watched now (watch limit, missing)
 * is covered by rescan records and retried; -1 only on ENOMEM (e filled,
 * CHJ_ERR_NOMEM). */
int watcher_add_root(struct watcher *w, const char *root, struct chj_error *e);
/* Work still queued from watcher_add_root (a crawl that runs in slices so
 * events are read and journaled meanwhile): 1 while there is, else 0. A
 * backend that needs no crawl always returns 0. */
int watcher_busy(const struct watcher *w);
/* Does one bounded slice (a few ms) of the queued work. */
void watcher_step(struct watcher *w);
/* Stops watching root and everything below it. */
void watcher_remove_root(struct watcher *w, const char *root);
/* What path shows changed (a file system mounted or unmounted on it or on
 * a root above it): forgets what was watched there and watches what is
 * there now (inotify: crawls it again; fanotify: marks its file system and
 * lets go of file systems no longer mounted under the roots). path is a
 * root or below one. */
void watcher_rewatch(struct watcher *w, const char *path);
/* Returns 1 when root is watched now (0: lost or over the watch limit, so
 * covered by renewed rescan records instead). */
int watcher_root_is_watched(const struct watcher *w, const char *root);
/* With on, root crawls draw a progress line on stderr (a terminal). */
void watcher_show_progress(struct watcher *w, int on);
/* Replaces the configuration (excludes) used for new decisions. */
void watcher_set_config(struct watcher *w, const struct config *cfg);

/* The fd to poll for readability. */
int watcher_fd(const struct watcher *w);
/* Reads the queued events and reports them to the sink. Returns 0, or -1 on
 * a fatal error (e filled: CHJ_ERR_SYS when reading the kernel's queue
 * failed, CHJ_ERR_CORRUPT when what it holds cannot be read). */
int watcher_process(struct watcher *w, struct chj_error *e);
/* Periodic work: retries directories that could not be watched and renews
 * their rescan records. */
void watcher_tick(struct watcher *w, time_t now);
/* The last time the kernel queue was seen empty: every change before it has
 * been reported to the sink. */
time_t watcher_drained_at(const struct watcher *w);
/* Tells the watcher its fd was seen idle (no event pending) at time t, so
 * drained_at may advance while nothing happens. */
void watcher_note_idle(struct watcher *w, time_t t);
void watcher_get_stats(const struct watcher *w, struct watcher_stats *st);

/* The hand-over across a re-exec (SIGUSR2): the next process goes on reading
 * the same kernel descriptor (watcher_fd(), kept open across the exec) from
 * where this one stopped. watcher_save() writes into b what it needs to
 * read the events still queued there as this process would: the backend's
 * table, the paths not watched and their rescan times, the drain time, the
 * statistics. Call it with no crawl queued (watcher_busy() 0), after a last
 * watcher_process(). Returns 0, or -1 with e filled (CHJ_ERR_REFUSED: the
 * backend cannot hand over, or a crawl is queued; CHJ_ERR_NOMEM). */
int watcher_save(struct watcher *w, struct statebuf *b, struct chj_error *e);
/* The next process's side: a watcher on fd, the descriptor handed over, from
 * the state watcher_save() wrote, read from b: nothing is crawled or marked
 * again, no rescan recorded. Returns NULL with e filled when the state
 * does not fit cfg (another backend: CHJ_ERR_REFUSED) or is malformed
 * (CHJ_ERR_CORRUPT), or on CHJ_ERR_NOMEM; fd is then still the caller's, to
 * close before watcher_new(). */
struct watcher *watcher_adopt(const struct config *cfg, const struct watcher_sink *sink, int fd,
    struct statebuf *b, struct chj_error *e);

#endif
