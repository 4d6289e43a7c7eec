/* watch-backend.h: what a watcher backend provides to the dispatch in
 * watch.c. Each backend completes struct watcher_impl in its own file and
 * exports one ops table; only watch.c chooses between them. The functions
 * have the contracts of the watcher_* functions of watch.h. */
#ifndef CHJ_WATCH_BACKEND_H
#define CHJ_WATCH_BACKEND_H

#include "watch.h"

struct watcher_impl;

struct watcher_ops {
	const char *name;
	const char *watch_unit;              /* what stats.watches counts */
	struct watcher_impl *(*create)(const struct config *cfg, const struct watcher_sink *sink,
	    char *err, size_t errlen);
	void (*destroy)(struct watcher_impl *w);
	int (*add_root)(struct watcher_impl *w, const char *root, char *err, size_t errlen);
	void (*remove_root)(struct watcher_impl *w, const char *root);
	void (*rewatch)(struct watcher_impl *w, const char *path);
	int (*root_is_watched)(const struct watcher_impl *w, const char *root);
	void (*show_progress)(struct watcher_impl *w, int on);
	void (*set_config)(struct watcher_impl *w, const struct config *cfg);
	int (*fd)(const struct watcher_impl *w);
	int (*process)(struct watcher_impl *w, char *err, size_t errlen);
	void (*tick)(struct watcher_impl *w, time_t now);
	time_t (*drained_at)(const struct watcher_impl *w);
	void (*note_idle)(struct watcher_impl *w, time_t t);
	void (*get_stats)(const struct watcher_impl *w, struct watcher_stats *st);
	int (*busy)(const struct watcher_impl *w);       /* NULL: never busy */
	void (*step)(struct watcher_impl *w);            /* NULL: nothing to do */
};

/* Journals every sync cookie now directly in root. After a queue overflow a
 * cookie's own event may be among the lost ones, and `chjournal sync` would
 * wait for it in vain; the rescan of the root recorded for the overflow
 * covers every change made before such a cookie, so it may be journaled. */
void watch_claim_root_cookies(const struct watcher_sink *sink, const char *root);

extern const struct watcher_ops watcher_inotify_ops;
extern const struct watcher_ops watcher_fanotify_ops;

#endif
