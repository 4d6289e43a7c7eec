/* watch.c: the watcher dispatch. watcher_new() picks the backend named in
 * the configuration (inotify, fanotify, or auto: fanotify where the kernel,
 * privileges and file systems allow it, else inotify, with the reason
 * logged); every other watcher_* call goes to that backend's ops table. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "path.h"
#include "watch.h"
#include "watch-backend.h"

struct watcher {
	const struct watcher_ops *ops;
	struct watcher_impl *impl;
};

/* Wraps a backend handle; NULL (impl freed) on ENOMEM. */
static struct watcher *
wrap(const struct watcher_ops *ops, struct watcher_impl *impl, char *err, size_t errlen)
{
	struct watcher *w;

	if (impl == NULL)
		return NULL;
	if ((w = malloc(sizeof *w)) == NULL) {
		ops->destroy(impl);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->ops = ops;
	w->impl = impl;
	return w;
}

struct watcher *
watcher_new(const struct config *cfg, const struct watcher_sink *sink, char *err, size_t errlen)
{
	struct watcher_impl *impl;

	switch (cfg->backend) {
	case CONFIG_BACKEND_FANOTIFY:
		impl = watcher_fanotify_ops.create(cfg, sink, err, errlen);
		return wrap(&watcher_fanotify_ops, impl, err, errlen);
	case CONFIG_BACKEND_AUTO:
		impl = watcher_fanotify_ops.create(cfg, sink, err, errlen);
		if (impl != NULL) {
			log_info("backend auto: using fanotify (one mark per file system, "
			    "no per-directory watches)");
			return wrap(&watcher_fanotify_ops, impl, err, errlen);
		}
		log_info("backend auto: using inotify: %s", err);
		break;
	case CONFIG_BACKEND_INOTIFY:
		break;
	}
	impl = watcher_inotify_ops.create(cfg, sink, err, errlen);
	return wrap(&watcher_inotify_ops, impl, err, errlen);
}

void
watcher_free(struct watcher *w)
{
	if (w == NULL)
		return;
	w->ops->destroy(w->impl);
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
watcher_add_root(struct watcher *w, const char *root, char *err, size_t errlen)
{
	return w->ops->add_root(w->impl, root, err, errlen);
}

void
watcher_remove_root(struct watcher *w, const char *root)
{
	w->ops->remove_root(w->impl, root);
}

void
watcher_rewatch(struct watcher *w, const char *path)
{
	w->ops->rewatch(w->impl, path);
}

int
watcher_root_is_watched(const struct watcher *w, const char *root)
{
	return w->ops->root_is_watched(w->impl, root);
}

void
watcher_show_progress(struct watcher *w, int on)
{
	w->ops->show_progress(w->impl, on);
}

void
watcher_set_config(struct watcher *w, const struct config *cfg)
{
	w->ops->set_config(w->impl, cfg);
}

int
watcher_fd(const struct watcher *w)
{
	return w->ops->fd(w->impl);
}

int
watcher_process(struct watcher *w, char *err, size_t errlen)
{
	return w->ops->process(w->impl, err, errlen);
}

void
watcher_tick(struct watcher *w, time_t now)
{
	w->ops->tick(w->impl, now);
}

time_t
watcher_drained_at(const struct watcher *w)
{
	return w->ops->drained_at(w->impl);
}

void
watcher_note_idle(struct watcher *w, time_t t)
{
	w->ops->note_idle(w->impl, t);
}

void
watcher_get_stats(const struct watcher *w, struct watcher_stats *st)
{
	w->ops->get_stats(w->impl, st);
}

int
watcher_busy(const struct watcher *w)
{
	return w->ops->busy != NULL && w->ops->busy(w->impl);
}

void
watcher_step(struct watcher *w)
{
	if (w->ops->step != NULL)
		w->ops->step(w->impl);
}

void
watch_claim_root_cookies(const struct watcher_sink *sink, const char *root)
{
	struct dirent *de;
	DIR *d = opendir(root);

	if (d == NULL)
		return;        /* a root gone or unreadable: it has its own rescan */
	while ((de = readdir(d)) != NULL)
		if (path_is_cookie_name(de->d_name) && sink->cookie(sink->ctx, de->d_name) < 0)
			break;
	closedir(d);
}
