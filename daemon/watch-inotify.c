/* watch-inotify.c: the inotify backend of the watcher interface.
 *
 * Why our own code rather than libinotifytools' watch functions (measured on
 * 100k directories / 1M files with libinotifytools 3.22.6):
 *  - its recursive watch lstat()s every file as well as every directory
 *    (2.8-3.0 s, 36 MB RSS) where a readdir walk using d_type with raw
 *    inotify_add_watch takes 0.9-1.1 s and a few MB;
 *  - it leaves the race between mkdir and the new watch open (files created
 *    in a new directory before its watch exists are never reported): we
 *    journal a new directory as a subtree and watch it before reading it;
 *  - it calls ioctl(FIONREAD) before each read, which walks the whole queue:
 *    a backlog drained at ~170k events/s, against millions with plain read()
 *    into a large buffer, as here;
 *  - it keeps one global instance; we keep state in a handle.
 * Where the library serves, we use it: inotifytools_event_to_str() names
 * event masks in debug logs, inotifytools_get_max_user_watches() reads the
 * limit for the watch-limit message. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <inotifytools/inotifytools.h>

#include "config.h"
#include "journal.h"
#include "log.h"
#include "path.h"
#include "progress.h"
#include "walk.h"
#include "watch.h"
#include "watch-backend.h"

/* watch.c owns the name struct watcher (the dispatch handle): this backend's
 * handle is the struct watcher_impl of watch-backend.h */
#define watcher watcher_impl

#define WATCH_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | \
	IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define READ_BUFFER_SIZE (256 * 1024)
#define MAX_READS_PER_CALL 64        /* then return so flushes and signals run */
#define MOVE_PAIR_WAIT_MS 20         /* wait for the MOVED_TO of a MOVED_FROM */
#define MAX_STASHED_MOVES 256
#define MAX_UNWATCHED 64             /* more failed directories: rescan the root */
#define TICK_SECONDS 10
#define NODE_MAX_DEPTH 65536                 /* deeper than any real path: a cycle */

/* One watched directory. Its path is its parent's path plus its name, so a
 * renamed directory's whole subtree is right after one update. */
struct wnode {
	int wd;
	unsigned gen;
	struct wnode *parent;
	struct wnode *child, *next, *prev;   /* children of parent */
	struct wnode *wd_chain;
	struct wnode *name_chain;
	char *name;                          /* root: its full path */
	int linked;                          /* in the name table and its parent's children */
};

struct stashed_move {
	uint32_t cookie;
	struct wnode *node;                  /* NULL: directory was not watched */
};

struct unwatched {
	char *path;
	time_t recorded;                     /* its rescan record was last renewed */
};

struct watcher {
	const struct config *cfg;
	struct watcher_sink sink;
	int fd;
	struct wnode **wd_tab;
	struct wnode **name_tab;
	size_t tab_size, nnodes;
	struct wnode **roots;                /* parallel to root_paths; NULL: lost */
	char **root_paths;
	size_t nroots;
	unsigned gen;
	struct stashed_move stash[MAX_STASHED_MOVES];
	size_t nstash;
	struct wnode *displaced;             /* pushed off its name by a MOVED_TO (exchange) */
	const char *resync_reason;           /* table out of step with the file system */
	int resyncing;
	struct unwatched *unw;
	size_t nunw;
	int limit_at_failure;                /* max_user_watches when we last hit it */
	unsigned long nodes_at_failure;
	time_t last_tick;
	time_t drained_at;
	time_t last_limit_log;
	struct watcher_stats stats;
	int show_progress;                   /* stderr is a terminal: crawl progress */
	struct progress progress;
	int in_root_crawl;
	char *pathbuf;
	size_t pathcap;
	char *readbuf;
};

static int unwatched_contains(struct watcher *w, const char *path);
static void inotify_free(struct watcher *w);

/* ---- node table ---- */

static size_t
hash_wd(int wd, size_t size)
{
	return ((size_t)wd * 2654435761u) & (size - 1);
}

static size_t
hash_name(const struct wnode *parent, const char *name, size_t size)
{
	uint64_t h = (uint64_t)(uintptr_t)parent * 11400714819323198485ull;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (size - 1);
}

static struct wnode *
node_by_wd(struct watcher *w, int wd)
{
	struct wnode *n;

	for (n = w->wd_tab[hash_wd(wd, w->tab_size)]; n != NULL; n = n->wd_chain)
		if (n->wd == wd)
			return n;
	return NULL;
}

static struct wnode *
node_child(struct watcher *w, struct wnode *parent, const char *name)
{
	struct wnode *n;

	for (n = w->name_tab[hash_name(parent, name, w->tab_size)]; n != NULL; n = n->name_chain)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static void
name_unlink(struct watcher *w, struct wnode *n)
{
	struct wnode **pp = &w->name_tab[hash_name(n->parent, n->name, w->tab_size)];

	if (!n->linked)
		return;
	n->linked = 0;
	for (; *pp != NULL; pp = &(*pp)->name_chain) {
		if (*pp == n) {
			*pp = n->name_chain;
			break;
		}
	}
	if (n->parent != NULL) {
		if (n->prev != NULL)
			n->prev->next = n->next;
		else
			n->parent->child = n->next;
		if (n->next != NULL)
			n->next->prev = n->prev;
	}
	n->next = n->prev = NULL;
	n->name_chain = NULL;
}

static void
name_link(struct watcher *w, struct wnode *n)
{
	size_t h = hash_name(n->parent, n->name, w->tab_size);

	n->linked = 1;
	n->name_chain = w->name_tab[h];
	w->name_tab[h] = n;
	if (n->parent != NULL) {
		n->next = n->parent->child;
		n->prev = NULL;
		if (n->next != NULL)
			n->next->prev = n;
		n->parent->child = n;
	}
}

static int
tables_grow(struct watcher *w)
{
	size_t ns = w->tab_size * 2, i;
	struct wnode **nw = calloc(ns, sizeof *nw), **nn = calloc(ns, sizeof *nn);

	if (nw == NULL || nn == NULL) {
		free(nw);
		free(nn);
		return -1;
	}
	for (i = 0; i < w->tab_size; i++) {
		struct wnode *n, *next;

		for (n = w->wd_tab[i]; n != NULL; n = next) {
			size_t h = hash_wd(n->wd, ns);

			next = n->wd_chain;
			n->wd_chain = nw[h];
			nw[h] = n;
		}
		for (n = w->name_tab[i]; n != NULL; n = next) {
			size_t h = hash_name(n->parent, n->name, ns);

			next = n->name_chain;
			n->name_chain = nn[h];
			nn[h] = n;
		}
	}
	free(w->wd_tab);
	free(w->name_tab);
	w->wd_tab = nw;
	w->name_tab = nn;
	w->tab_size = ns;
	return 0;
}

static struct wnode *
node_new(struct watcher *w, int wd, struct wnode *parent, const char *name)
{
	struct wnode *n;
	size_t h;

	if (w->nnodes + 1 > w->tab_size && tables_grow(w) < 0)
		return NULL;
	n = calloc(1, sizeof *n);
	if (n == NULL || (n->name = strdup(name)) == NULL) {
		free(n);
		return NULL;
	}
	n->wd = wd;
	n->gen = w->gen;
	n->parent = parent;
	h = hash_wd(wd, w->tab_size);
	n->wd_chain = w->wd_tab[h];
	w->wd_tab[h] = n;
	name_link(w, n);
	w->nnodes++;
	return n;
}

/* Moves n under parent with a new name (a rename seen, or a re-crawl). */
static int
node_relocate(struct watcher *w, struct wnode *n, struct wnode *parent, const char *name)
{
	char *nn;

	struct wnode *other, *m;

	if (n->parent == parent && strcmp(n->name, name) == 0)
		return 0;
	/* events read late can describe a move under the node's own subtree
	 * (the table lags the file system): refuse the cycle, re-sync instead */
	for (m = parent; m != NULL; m = m->parent) {
		if (m == n) {
			w->resync_reason = "directory moves seen out of order";
			return -2;
		}
	}
	if ((nn = strdup(name)) == NULL)
		return -1;
	/* a directory already at the target name is being replaced (then its
	 * IN_IGNORED follows) or exchanged (then its MOVED_FROM follows): take
	 * it off the name so lookups find the one moved here */
	other = node_child(w, parent, name);
	if (other != NULL && other != n) {
		name_unlink(w, other);
		w->displaced = other;
	}
	name_unlink(w, n);
	free(n->name);
	n->name = nn;
	n->parent = parent;
	name_link(w, n);
	return 0;
}

/* Removes n and everything below it from the table; with rm, also from the
 * kernel. */
static void
node_remove(struct watcher *w, struct wnode *n, int rm)
{
	struct wnode **pp;
	size_t i;

	while (n->child != NULL)
		node_remove(w, n->child, rm);
	if (rm)
		inotify_rm_watch(w->fd, n->wd);
	name_unlink(w, n);
	for (pp = &w->wd_tab[hash_wd(n->wd, w->tab_size)]; *pp != NULL; pp = &(*pp)->wd_chain) {
		if (*pp == n) {
			*pp = n->wd_chain;
			break;
		}
	}
	for (i = 0; i < w->nstash; i++)
		if (w->stash[i].node == n)
			w->stash[i].node = NULL;
	for (i = 0; i < w->nroots; i++)
		if (w->roots[i] == n)
			w->roots[i] = NULL;
	if (w->displaced == n)
		w->displaced = NULL;
	free(n->name);
	free(n);
	w->nnodes--;
}

/* Builds n's full path into *buf. Returns the path or NULL on ENOMEM. */
static const char *
node_path_into(struct wnode *n, char **buf, size_t *cap)
{
	size_t len = 0, o, depth = 0;
	struct wnode *m;

	for (m = n; m != NULL; m = m->parent) {
		len += strlen(m->name) + 1;
		if (++depth > NODE_MAX_DEPTH)
			return NULL;       /* a cycle: the caller re-syncs */
	}
	if (len + 1 > *cap) {
		char *nb = realloc(*buf, len + 64);

		if (nb == NULL)
			return NULL;
		*buf = nb;
		*cap = len + 64;
	}
	o = len - 1;
	(*buf)[o] = '\0';
	for (m = n; m != NULL; m = m->parent) {
		size_t l = strlen(m->name);

		o -= l;
		memcpy(*buf + o, m->name, l);
		if (m->parent != NULL)
			(*buf)[--o] = '/';
	}
	return *buf + o;
}

static const char *
node_path(struct watcher *w, struct wnode *n)
{
	const char *p = node_path_into(n, &w->pathbuf, &w->pathcap);

	if (p == NULL && w->resync_reason == NULL)
		w->resync_reason = "watch table inconsistent";
	return p;
}

/* Finds the node of an absolute path by walking down from its root. */
static struct wnode *
node_find(struct watcher *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nroots; i++) {
		struct wnode *n = w->roots[i];
		const char *p;
		char comp[NAME_MAX + 1];

		if (n == NULL || !path_is_under(path, w->root_paths[i]))
			continue;
		p = path + strlen(w->root_paths[i]);
		while (*p == '/') {
			const char *e = strchr(p + 1, '/');
			size_t l = e ? (size_t)(e - p - 1) : strlen(p + 1);

			if (l == 0 || l > NAME_MAX)
				return NULL;
			memcpy(comp, p + 1, l);
			comp[l] = '\0';
			if ((n = node_child(w, n, comp)) == NULL)
				return NULL;
			p += l + 1;
		}
		return n;
	}
	return NULL;
}

/* ---- reporting ---- */

static void
report_change(struct watcher *w, const char *path, unsigned flags)
{
	if (w->sink.change(w->sink.ctx, path, flags) < 0)
		log_error("out of memory recording a change to '%s'", path);
}

static void
report_rescan(struct watcher *w, const char *path, time_t since, const char *reason)
{
	w->stats.rescans++;
	if (w->sink.rescan(w->sink.ctx, path, (int64_t)since, reason) < 0)
		log_error("out of memory recording a rescan of '%s'", path);
}

/* ---- unwatched directories (watch limit, permissions) ---- */

static int
root_index_of(struct watcher *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (path_is_under(path, w->root_paths[i]))
			return (int)i;
	return -1;
}

static void
unwatched_add(struct watcher *w, const char *path, time_t now)
{
	size_t i;
	int r = root_index_of(w, path);

	for (i = 0; i < w->nunw; i++)
		if (path_is_under(path, w->unw[i].path))
			return;
	if (w->nunw >= MAX_UNWATCHED && r >= 0) {
		/* too many to track one by one: the whole root is in doubt */
		const char *root = w->root_paths[r];
		size_t o = 0;

		for (i = 0; i < w->nunw; i++) {
			if (path_is_under(w->unw[i].path, root))
				free(w->unw[i].path);
			else
				w->unw[o++] = w->unw[i];
		}
		w->nunw = o;
		path = root;
	}
	{
		struct unwatched *nu = realloc(w->unw, (w->nunw + 1) * sizeof *nu);
		char *p = strdup(path);

		if (nu == NULL || p == NULL) {
			free(p);
			if (nu != NULL)
				w->unw = nu;
			log_error("out of memory tracking unwatched directory '%s'", path);
			return;
		}
		w->unw = nu;
		w->unw[w->nunw].path = p;
		w->unw[w->nunw].recorded = now;
		w->nunw++;
	}
	report_rescan(w, path, now - WATCH_TIME_MARGIN, "directory not watched");
}

static void
watch_failed(struct watcher *w, const char *path, int err)
{
	time_t now = time(NULL);

	w->stats.watch_failures++;
	if (err == ENOSPC) {
		int limit = inotifytools_get_max_user_watches();

		w->limit_at_failure = limit;
		w->nodes_at_failure = w->nnodes;
		if (now - w->last_limit_log >= 60) {
			log_error("cannot watch '%s': inotify watch limit reached "
			    "(fs.inotify.max_user_watches = %d, %lu watched here); changes below it "
			    "are covered by rescans until the limit is raised with: "
			    "sysctl -w fs.inotify.max_user_watches=%lu",
			    path, limit, (unsigned long)w->nnodes,
			    (unsigned long)(limit > 0 ? limit : 8192) * 2 + w->nnodes);
			w->last_limit_log = now;
		}
	} else {
		log_warning("cannot watch '%s': %s; changes below it are covered by rescans",
		    path, strerror(err));
	}
	unwatched_add(w, path, now);
}

/* ---- crawl: watch a directory and everything below it ---- */

struct crawl_ctx {
	struct watcher *w;
	struct wnode *parent;          /* of the start directory */
	struct wnode **stack;          /* stack[depth] = node of the dir at depth */
	size_t stack_cap;
	int ok;
};

static int
crawl_cb(void *ctx, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth)
{
	struct crawl_ctx *c = ctx;
	struct watcher *w = c->w;
	struct wnode *parent, *n;
	const char *name;
	int wd;

	(void)len;
	(void)st;
	if (type != DT_DIR)
		return WALK_CONTINUE;
	if (w->in_root_crawl) {
		char line[256];

		w->progress.done++;
		if (progress_format(&w->progress, 0, line, sizeof line))
			fprintf(stderr, "\r%s\033[K", line);
	}
	parent = depth == 0 ? c->parent : c->stack[depth - 1];
	name = (parent == NULL) ? path : strrchr(path, '/') + 1;
	/* watch before the walker reads the directory: nothing created after the
	 * read can be missed, and anything before it is in the subtree row */
	wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	if (wd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			watch_failed(w, path, errno);
		if (depth == 0)
			c->ok = 0;
		return WALK_SKIP;
	}
	n = node_by_wd(w, wd);
	if (n != NULL) {
		size_t i;

		int r = node_relocate(w, n, parent, name);

		if (r == -2)
			return WALK_SKIP;
		if (r < 0)
			return WALK_STOP;
		n->gen = w->gen;
		/* a directory moved out and back in (two renames, two cookies): it
		 * is here now, so its stashed MOVED_FROM must not remove it */
		for (i = 0; i < w->nstash; i++)
			if (w->stash[i].node == n)
				w->stash[i].node = NULL;
	} else if ((n = node_new(w, wd, parent, name)) == NULL) {
		inotify_rm_watch(w->fd, wd);
		log_error("out of memory watching '%s'", path);
		c->ok = 0;
		return WALK_STOP;
	}
	if ((size_t)depth >= c->stack_cap) {
		size_t nc = c->stack_cap ? c->stack_cap * 2 : 32;
		struct wnode **ns = realloc(c->stack, nc * sizeof *ns);

		if (ns == NULL)
			return WALK_STOP;
		c->stack = ns;
		c->stack_cap = nc;
	}
	c->stack[depth] = n;
	return WALK_CONTINUE;
}

/* A directory the walker could not read or stat: nothing below it is
 * watched, so it is covered like a directory the kernel refused to watch. */
static void
crawl_error_cb(void *ctx, const char *path, int err)
{
	watch_failed(ctx, path, err);
}

/* Watches path (whose parent node is parent, NULL for a root) and below.
 * Returns the node of path, or NULL if path itself could not be watched. */
static struct wnode *
crawl(struct watcher *w, struct wnode *parent, const char *path)
{
	struct crawl_ctx c = { w, parent, NULL, 0, 1 };
	struct walk_result res;
	struct wnode *top = NULL;

	walk_tree_ex(path, WALK_DIRS, w->cfg, crawl_cb, &c, crawl_error_cb, w, &res);
	if (c.ok && c.stack != NULL)
		top = c.stack[0];
	free(c.stack);
	w->stats.watches = w->nnodes;
	return top;
}

/* Re-crawls every root, then drops table entries the crawl did not meet
 * (directories whose IN_IGNORED was lost). */
static void
recrawl_all(struct watcher *w)
{
	size_t i;
	int again = 1;

	w->gen++;
	for (i = 0; i < w->nroots; i++) {
		struct wnode *n = crawl(w, NULL, w->root_paths[i]);

		if (n != NULL)
			w->roots[i] = n;
	}
	while (again) {
		again = 0;
		for (i = 0; i < w->tab_size && !again; i++) {
			struct wnode *n;

			for (n = w->wd_tab[i]; n != NULL; n = n->wd_chain) {
				if (n->gen != w->gen) {
					node_remove(w, n, 1);
					again = 1;
					break;
				}
			}
		}
	}
	w->stats.watches = w->nnodes;
}

/* ---- events ---- */

/* Reads an integer sysctl (libinotifytools' getter returns -1 for
 * max_queued_events with 3.22). Returns -1 when unreadable. */
static long
read_sysctl(const char *file)
{
	FILE *f = fopen(file, "re");
	long v = -1;

	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Changes since the last drain may be unknown (queue overflow), or the
 * table no longer matches the file system: a rescan of every root from the
 * last drain, then every root crawled again (watches relocated, missing
 * ones added, stale ones dropped). */
static void
resync(struct watcher *w, const char *reason)
{
	size_t i;
	time_t since = w->drained_at - WATCH_TIME_MARGIN;

	if (w->resyncing)
		return;
	w->resyncing = 1;
	for (i = 0; i < w->nroots; i++)
		report_rescan(w, w->root_paths[i], since, reason);
	w->nstash = 0;
	w->displaced = NULL;
	recrawl_all(w);
	w->resync_reason = NULL;
	w->resyncing = 0;
}

static void
handle_overflow(struct watcher *w)
{
	w->stats.overflows++;
	log_warning("inotify queue overflow (fs.inotify.max_queued_events = %ld): changes since "
	    "%ld may be unknown; recording a rescan of every root and re-watching",
	    read_sysctl("/proc/sys/fs/inotify/max_queued_events"),
	    (long)(w->drained_at - WATCH_TIME_MARGIN));
	resync(w, "inotify queue overflow");
}

/* A directory appeared at path in parent (created, or moved in). */
static void
new_directory(struct watcher *w, struct wnode *parent, const char *path, unsigned flags)
{
	char *copy = strdup(path);

	if (copy == NULL) {
		log_error("out of memory watching '%s'", path);
		return;
	}
	report_change(w, copy, flags | JF_SUBTREE | JF_DIR);
	crawl(w, parent, copy);
	free(copy);
}

/* A MOVED_FROM of a directory never paired: it left the roots. */
static void
finish_stashed_moves(struct watcher *w)
{
	size_t i;

	for (i = 0; i < w->nstash; i++) {
		struct wnode *n = w->stash[i].node;

		if (n != NULL) {
			log_debug("directory '%s' moved out of the roots", n->name);
			node_remove(w, n, 1);
		}
	}
	w->nstash = 0;
	w->stats.watches = w->nnodes;
}

static void
stash_move(struct watcher *w, uint32_t cookie, struct wnode *node)
{
	if (w->nstash == MAX_STASHED_MOVES)
		finish_stashed_moves(w);
	w->stash[w->nstash].cookie = cookie;
	w->stash[w->nstash].node = node;
	w->nstash++;
}

/* Takes the stashed MOVED_FROM with this cookie; returns 1 if there was one. */
static int
take_stash(struct watcher *w, uint32_t cookie, struct wnode **node)
{
	size_t i;

	for (i = 0; i < w->nstash; i++) {
		if (w->stash[i].cookie == cookie) {
			*node = w->stash[i].node;
			w->stash[i] = w->stash[--w->nstash];
			return 1;
		}
	}
	return 0;
}

static void
root_lost(struct watcher *w, struct wnode *n, const char *why)
{
	size_t i;

	for (i = 0; i < w->nroots; i++) {
		if (w->roots[i] != n)
			continue;
		log_error("root '%s' %s: its changes are covered by a rescan until it is back",
		    w->root_paths[i], why);
		report_rescan(w, w->root_paths[i], w->drained_at - WATCH_TIME_MARGIN, why);
		node_remove(w, n, 1);
		unwatched_add(w, w->root_paths[i], time(NULL));
		return;
	}
}

/* Renews the rescan record of every unwatched directory from its last
 * renewal: nothing since then can fall out of a window. */
static void
renew_unwatched(struct watcher *w, time_t now)
{
	size_t i;

	for (i = 0; i < w->nunw; i++) {
		report_rescan(w, w->unw[i].path, w->unw[i].recorded - WATCH_TIME_MARGIN,
		    "directory not watched");
		w->unw[i].recorded = now;
	}
}

static void
handle_event(struct watcher *w, const struct inotify_event *ev)
{
	struct wnode *n;
	const char *dir;
	char *full;
	unsigned isdir;

	w->stats.events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		handle_overflow(w);
		return;
	}
	n = node_by_wd(w, ev->wd);
	if (n == NULL)
		return;        /* a watch we removed: its last events */
	if (log_enabled(CONFIG_LOG_DEBUG))
		log_debug("event %s wd %d name '%s'", inotifytools_event_to_str((int)ev->mask),
		    ev->wd, ev->len ? ev->name : "");
	if (ev->mask & IN_IGNORED) {
		if (n->parent == NULL)
			root_lost(w, n, "is no longer watched");
		else
			node_remove(w, n, 0);
		w->stats.watches = w->nnodes;
		return;
	}
	if (ev->mask & IN_UNMOUNT) {
		const char *p = node_path(w, n);

		if (p != NULL) {
			log_warning("file system at '%s' unmounted: recording a rescan", p);
			report_rescan(w, p, w->drained_at - WATCH_TIME_MARGIN, "file system unmounted");
		}
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (n->parent == NULL)
			root_lost(w, n, (ev->mask & IN_DELETE_SELF) ? "was deleted" : "was moved away");
		return;        /* other directories: their parent reports it */
	}
	if (ev->len == 0 || ev->name[0] == '\0')
		return;
	if (n->parent == NULL && path_is_cookie_name(ev->name)) {
		/* a sync cookie (only directly in a root: deeper it is data) */
		if (ev->mask & (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO)) {
			/* a begin is syncing: renew the records of what we cannot
			 * watch, so its window has them after the last commit */
			renew_unwatched(w, time(NULL));
			w->sink.cookie(w->sink.ctx, ev->name);
		}
		return;
	}
	dir = node_path(w, n);
	if (dir == NULL || (full = path_join(dir, ev->name)) == NULL) {
		log_error("out of memory handling an event in '%s'", n->name);
		return;
	}
	if (config_is_excluded(w->cfg, full))
		goto done;
	isdir = (ev->mask & IN_ISDIR) ? JF_DIR : 0;
	if (ev->mask & IN_CREATE) {
		if (isdir)
			new_directory(w, n, full, JF_CREATED);
		else
			report_change(w, full, JF_CREATED);
	}
	if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE))
		report_change(w, full, JF_MODIFIED);
	if (ev->mask & IN_ATTRIB)
		report_change(w, full, JF_ATTRIB | isdir);
	if (ev->mask & IN_DELETE)
		report_change(w, full, JF_DELETED | isdir);
	if (ev->mask & IN_MOVED_FROM) {
		report_change(w, full, JF_DELETED | isdir);
		if (isdir) {
			struct wnode *from = node_child(w, n, ev->name);

			if (w->displaced != NULL && w->displaced->parent == n &&
			    strcmp(w->displaced->name, ev->name) == 0) {
				from = w->displaced;     /* the other half of an exchange */
				w->displaced = NULL;
			}
			stash_move(w, ev->cookie, from);
		}
	}
	if (ev->mask & IN_MOVED_TO) {
		struct wnode *moved = NULL;

		if (!isdir) {
			report_change(w, full, JF_RENAMED | JF_CREATED);
		} else if (take_stash(w, ev->cookie, &moved) && moved != NULL &&
		    node_relocate(w, moved, n, ev->name) == 0) {
			/* moved within the roots: its watches follow it; everything
			 * below counts as changed under the new name. Crawl it again:
			 * a directory created in it before the move was reported under
			 * the old path, and watching that path failed */
			report_change(w, full, JF_RENAMED | JF_SUBTREE | JF_DIR);
			crawl(w, n, full);
		} else {
			new_directory(w, n, full, JF_RENAMED);
		}
	}
done:
	free(full);
}

/* Waits briefly for more events; returns 1 if some arrived. */
static int
wait_readable(struct watcher *w, int ms)
{
	struct pollfd pfd = { w->fd, POLLIN, 0 };

	return poll(&pfd, 1, ms) > 0;
}

static int
inotify_process(struct watcher *w, char *err, size_t errlen)
{
	int reads = 0, waited = 0;

	for (;;) {
		time_t before = time(NULL);
		ssize_t n = read(w->fd, w->readbuf, READ_BUFFER_SIZE);
		char *p;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				snprintf(err, errlen, "cannot read inotify events: %s", strerror(errno));
				return -1;
			}
			if (w->nstash > 0 && !waited) {
				waited = 1;
				if (wait_readable(w, MOVE_PAIR_WAIT_MS))
					continue;
			}
			finish_stashed_moves(w);
			w->drained_at = before;
			return 0;
		}
		for (p = w->readbuf; p < w->readbuf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			handle_event(w, ev);
			if (w->resync_reason != NULL) {
				log_warning("%s: recording a rescan of every root and re-watching",
				    w->resync_reason);
				resync(w, w->resync_reason);
			}
			p += sizeof *ev + ev->len;
		}
		if (++reads >= MAX_READS_PER_CALL)
			return 0;
	}
}

/* ---- lifecycle ---- */

static struct watcher *
inotify_new(const struct config *cfg, const struct watcher_sink *sink, char *err, size_t errlen)
{
	struct watcher *w = calloc(1, sizeof *w);

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->sink = *sink;
	w->tab_size = 1024;
	w->wd_tab = calloc(w->tab_size, sizeof *w->wd_tab);
	w->name_tab = calloc(w->tab_size, sizeof *w->name_tab);
	w->readbuf = malloc(READ_BUFFER_SIZE);
	if (w->wd_tab == NULL || w->name_tab == NULL || w->readbuf == NULL) {
		snprintf(err, errlen, "out of memory");
		inotify_free(w);
		return NULL;
	}
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		if (errno == EMFILE)
			snprintf(err, errlen, "cannot create an inotify instance: limit reached "
			    "(raise it with: sysctl -w fs.inotify.max_user_instances=%d)",
			    inotifytools_get_max_user_instances() * 2);
		else
			snprintf(err, errlen, "cannot create an inotify instance: %s", strerror(errno));
		inotify_free(w);
		return NULL;
	}
	w->drained_at = time(NULL);
	w->last_tick = w->drained_at;
	return w;
}

static void
inotify_free(struct watcher *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nroots; i++) {
		if (w->roots[i] != NULL)
			node_remove(w, w->roots[i], 0);
		free(w->root_paths[i]);
	}
	free(w->roots);
	free(w->root_paths);
	for (i = 0; i < w->nunw; i++)
		free(w->unw[i].path);
	free(w->unw);
	if (w->fd >= 0)
		close(w->fd);
	free(w->wd_tab);
	free(w->name_tab);
	free(w->pathbuf);
	free(w->readbuf);
	free(w);
}

static int
inotify_fd(const struct watcher *w)
{
	return w->fd;
}

static time_t
inotify_drained_at(const struct watcher *w)
{
	return w->drained_at;
}

static void
inotify_note_idle(struct watcher *w, time_t t)
{
	if (w->nstash == 0 && t > w->drained_at)
		w->drained_at = t;
}

static void
inotify_get_stats(const struct watcher *w, struct watcher_stats *st)
{
	*st = w->stats;
	st->watches = w->nnodes;
	st->unwatched = w->nunw;
}

static void
inotify_show_progress(struct watcher *w, int on)
{
	w->show_progress = on;
}

static int
inotify_root_is_watched(const struct watcher *w, const char *root)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (strcmp(w->root_paths[i], root) == 0)
			return w->roots[i] != NULL;
	return 0;
}

static void
inotify_set_config(struct watcher *w, const struct config *cfg)
{
	w->cfg = cfg;
}

static int
inotify_add_root(struct watcher *w, const char *root, char *err, size_t errlen)
{
	struct wnode **nr;
	char **np, *copy;

	nr = realloc(w->roots, (w->nroots + 1) * sizeof *nr);
	if (nr != NULL)
		w->roots = nr;
	np = realloc(w->root_paths, (w->nroots + 1) * sizeof *np);
	if (np != NULL)
		w->root_paths = np;
	copy = strdup(root);
	if (nr == NULL || np == NULL || copy == NULL) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->roots[w->nroots] = NULL;
	w->root_paths[w->nroots] = copy;
	w->nroots++;
	w->in_root_crawl = w->show_progress;
	if (w->in_root_crawl)
		progress_start(&w->progress, root, "directories watched", 0);
	w->roots[w->nroots - 1] = crawl(w, NULL, root);
	if (w->in_root_crawl) {
		char line[256];

		progress_format(&w->progress, 1, line, sizeof line);
		fprintf(stderr, "\r%s\033[K\n", line);
		w->in_root_crawl = 0;
	}
	/* a root that cannot be watched now (watch limit, vanished) stays
	 * configured, covered by a rescan record, and is retried */
	if (w->roots[w->nroots - 1] == NULL && !unwatched_contains(w, root))
		unwatched_add(w, root, time(NULL));
	return 0;
}

static void
inotify_remove_root(struct watcher *w, const char *root)
{
	size_t i, o = 0;

	for (i = 0; i < w->nroots; i++) {
		if (strcmp(w->root_paths[i], root) == 0) {
			if (w->roots[i] != NULL)
				node_remove(w, w->roots[i], 1);
			free(w->root_paths[i]);
			continue;
		}
		w->roots[o] = w->roots[i];
		w->root_paths[o] = w->root_paths[i];
		o++;
	}
	w->nroots = o;
	for (i = 0, o = 0; i < w->nunw; i++) {
		if (path_is_under(w->unw[i].path, root))
			free(w->unw[i].path);
		else
			w->unw[o++] = w->unw[i];
	}
	w->nunw = o;
	w->stats.watches = w->nnodes;
}

/* Retries one unwatched directory; returns 1 when it is watched now. */
static int
retry_unwatched(struct watcher *w, struct unwatched *u)
{
	int r = root_index_of(w, u->path);
	struct wnode *parent = NULL, *n;
	char *slash;
	char *copy;

	if (r < 0)
		return 1;                /* no longer under a root: forget it */
	if (strcmp(u->path, w->root_paths[r]) != 0) {
		copy = strdup(u->path);
		if (copy == NULL)
			return 0;
		slash = strrchr(copy, '/');
		*slash = '\0';
		parent = node_find(w, copy);
		free(copy);
		if (parent == NULL)
			return 0;
	}
	w->gen++;
	n = crawl(w, parent, u->path);
	if (n == NULL)
		return 0;
	if (parent == NULL) {
		w->roots[r] = n;
		log_info("root '%s' is watched again", w->root_paths[r]);
		report_change(w, u->path, JF_SUBTREE | JF_DIR);
	}
	return 1;
}

static int
unwatched_contains(struct watcher *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nunw; i++)
		if (path_is_under(path, w->unw[i].path))
			return 1;
	return 0;
}

static void
inotify_tick(struct watcher *w, time_t now)
{
	struct unwatched *old;
	size_t i, nold;
	int limit, may_retry;

	if (now - w->last_tick < TICK_SECONDS || w->nunw == 0)
		return;
	w->last_tick = now;
	limit = inotifytools_get_max_user_watches();
	may_retry = limit != w->limit_at_failure || w->nnodes < w->nodes_at_failure;
	/* detach the list: retries append to a fresh one as they fail */
	old = w->unw;
	nold = w->nunw;
	w->unw = NULL;
	w->nunw = 0;
	for (i = 0; i < nold; i++) {
		struct unwatched *u = &old[i];
		int r = root_index_of(w, u->path);
		struct stat st;

		if (r < 0 || (strcmp(u->path, w->root_paths[r]) != 0 &&
		    lstat(u->path, &st) < 0 && errno == ENOENT)) {
			/* gone, or no longer under a root: its parent reported that */
			free(u->path);
			continue;
		}
		/* renew from the last renewal: nothing since then can be lost */
		report_rescan(w, u->path, u->recorded - WATCH_TIME_MARGIN, "directory not watched");
		if (may_retry && retry_unwatched(w, u) && !unwatched_contains(w, u->path)) {
			log_info("directory '%s' is watched now", u->path);
			free(u->path);
			continue;
		}
		if (unwatched_contains(w, u->path)) {
			free(u->path);
			continue;
		}
		{
			struct unwatched *nu = realloc(w->unw, (w->nunw + 1) * sizeof *nu);

			if (nu == NULL) {
				log_error("out of memory tracking unwatched directory '%s'", u->path);
				free(u->path);
				continue;
			}
			w->unw = nu;
			w->unw[w->nunw].path = u->path;
			w->unw[w->nunw].recorded = now;
			w->nunw++;
		}
	}
	free(old);
}

const struct watcher_ops watcher_inotify_ops = {
	.name = "inotify",
	.watch_unit = "directories watched",
	.create = inotify_new,
	.destroy = inotify_free,
	.add_root = inotify_add_root,
	.remove_root = inotify_remove_root,
	.root_is_watched = inotify_root_is_watched,
	.show_progress = inotify_show_progress,
	.set_config = inotify_set_config,
	.fd = inotify_fd,
	.process = inotify_process,
	.tick = inotify_tick,
	.drained_at = inotify_drained_at,
	.note_idle = inotify_note_idle,
	.get_stats = inotify_get_stats,
};
