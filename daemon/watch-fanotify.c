/* watch-fanotify.c: the fanotify backend of the watcher core (watch.c). One
 * FAN_MARK_FILESYSTEM mark per file system holding a root: no crawl, no
 * per-directory state, start-up and memory independent of the tree size.
 *
 * Each event names its directory by a file handle (FAN_REPORT_DFID_NAME).
 * A handle is turned into a path with open_by_handle_at() + readlink() of
 * /proc/self/fd/N (a directory deeper than PATH_MAX, which the kernel cannot
 * name, by reading its parents: longpath_of_dir), through a bounded LRU
 * cache (CACHE_MAX entries, each the handle and the path in one allocation:
 * about 150 bytes, at most about 10 MB), so the memory stays flat in the
 * directory count. A miss costs open_by_handle_at() + readlink(), several
 * times a hit's cost: the cache holds a large spool's active directories. Events outside the roots are dropped once their directory is known.
 *
 * Why not libinotifytools' fanotify mode (measured with 3.22.6): it keeps an
 * entry per distinct file seen (unbounded, ~330 bytes each), silently drops
 * events whose directory handle cannot be decoded, and reports a queue
 * overflow like a timeout. Here an undecodable handle (a directory deleted
 * before its events were read) is named from the events that created or
 * deleted it where they can, else let go for the reason settle_stale()
 * gives (the topmost deletion is journaled; writes to files with other names
 * follow those names), and an overflow is a rescan of every root.
 *
 * With FAN_REPORT_TARGET_FID (kernel 5.17+) a created, moved or deleted
 * directory's own handle comes with its entry event: its path is remembered
 * ("learnt"), so the events inside a directory created and deleted before we
 * read them still resolve. A learnt path serves only once the directory is
 * gone: the kernel merges events of the same name (a MOVED_TO and a later
 * MOVED_FROM become one), so a path taken from events can be out of date;
 * readlink() of an open handle never is. A stale handle no event has named
 * yet waits: its deletion event, carrying its handle, was queued before we
 * found the handle stale, so once a read issued after that has emptied the
 * queue, a handle still unnamed never will be, and its events are let go. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "config.h"
#include "fanprobe.h"
#include "journal.h"
#include "log.h"
#include "mounts.h"
#include "longpath.h"
#include "path.h"
#include "statebuf.h"
#include "watch.h"
#include "watch-backend.h"

/* the events every file system is marked for, as fanprobe_root() tries */
#define FAN_EVENTS FANPROBE_EVENTS
#define READ_BUFFER_SIZE (256 * 1024)
#define MAX_READS_PER_CALL 64        /* then return so flushes and signals run */
#define CACHE_MAX 65536              /* handle → path entries (LRU) */
#define MAX_STALE 2048               /* events in stale directories kept */
#define MAX_STALE_PER_DIR 256        /* then that directory is rescanned */
#define MAX_STALE_DEPTH 64
#define MAX_UNKNOWN 256              /* stale handles already covered by a rescan */
#define READ_SLACK 8192              /* a read this far from full emptied the queue */
#define HANDLE_MAX 128               /* MAX_HANDLE_SZ */

/* A directory's identity: file system id and file handle. */
struct fkey {
	int fsid[2];
	int type;
	unsigned len;
	unsigned char h[HANDLE_MAX];
};

/* A cached directory: its key (the handle's bytes only, not HANDLE_MAX)
 * and its path, stored together in data. */
struct centry {
	struct centry *hnext;                /* hash chain */
	struct centry *prev, *next;          /* LRU list, most recent first */
	size_t hash;
	int excluded;                        /* -1 unknown; 1: it or a directory above it is */
	int learnt;                          /* path from an entry event, not the file system */
	int fsid[2];
	int type;
	unsigned len;
	char *path;                          /* in data, after the handle */
	unsigned char data[];
};

/* A file system with a mark; mount_fd is a directory on it for
 * open_by_handle_at(): the root of a detached copy (open_tree(2)
 * OPEN_TREE_CLONE) of one of its mounts, so that the daemon never keeps a
 * mount busy (an umount succeeds; the copy goes when the mount table says
 * the file system left the roots). A path read back through it is relative
 * to that mount's root (fsroot, in the file system), and is turned into the
 * paths the file system shows through each of its mounts. Without
 * open_tree (older kernels), mount_fd is a plain descriptor (clone 0). */
struct fsmark {
	int fsid[2];
	dev_t dev;
	int mount_fd;
	int clone;
	char *fsroot;                        /* clone: the cloned mount's root */
};

struct froot {
	char *path;
	struct fkey key;                     /* the root directory's handle */
	int watched;
};

/* An event in a directory whose handle could not be opened (deleted
 * before the event was read), kept until an event names that directory.
 * An entry event of a directory (with its target fid) is also how a
 * stale child directory learns its path. */
struct stale {
	struct fkey key;                     /* the directory */
	time_t since;                        /* the drain time when it was read */
	unsigned long read_seq;              /* the read it came in */
	uint64_t mask;
	int has_target;
	int truncated;                       /* more events in key than kept: rescan it */
	struct fkey target;
	char name[NAME_MAX + 1];
};

/* One parsed event. */
struct fev {
	uint64_t mask;
	struct fkey dir;
	const char *name;                    /* NULL or "." : the directory itself */
	struct fkey target;
	int has_dir, has_target;
};

struct watcher_impl {
	const struct config *cfg;
	struct watch_core *core;
	int fd;
	int target_fid;                      /* FAN_REPORT_TARGET_FID in use */
	struct fsmark *marks;
	size_t nmarks;
	struct mount_table mounts;           /* read at start and at each rewatch */
	struct froot *roots;
	size_t nroots;
	struct centry **ctab;
	size_t ctab_size, ncache;
	struct centry *lru_head, *lru_tail;
	struct stale *stale;
	size_t *stale_hash;                  /* key_hash of each stale[i].key */
	size_t nstale;
	struct fkey unknown[MAX_UNKNOWN];    /* ring: gone, never named, rescan recorded */
	size_t nunknown;
	unsigned long read_seq;              /* reads issued */
	unsigned long drained_seq;           /* the last read that emptied the queue */
	pid_t self;
	char *readbuf;
	char linkbuf[PATH_MAX + 1];
};

/* ---- errors ---- */

/* Names why fanotify was refused, for the one-line error. */
static const char *
refusal_reason(int err, int at_init)
{
	return fanprobe_refusal(err, at_init);
}

/* The code of a refusal by the kernel (errno errnum). */
static enum chj_code
refusal_code(int errnum)
{
	switch (errnum) {
	case ENOENT:
		return CHJ_ERR_NOTFOUND;
	case ENOMEM:
		return CHJ_ERR_NOMEM;
	case EPERM:
	case EINVAL:
	case ENOSYS:
	case EXDEV:
	case ENODEV:
	case EOPNOTSUPP:
		return CHJ_ERR_REFUSED;  /* privileges, kernel, file system */
	}
	return CHJ_ERR_SYS;
}

/* Fills e with what fmt says, ": " and refusal_reason(errnum, at_init),
 * which says more than strerror(errnum) for a refusal, and the code of
 * refusal_code(); errnum is kept, for the caller's decisions. Returns -1. */
static int __attribute__((format(printf, 4, 5)))
refusal_error(struct chj_error *e, int errnum, int at_init, const char *fmt, ...)
{
	char what[sizeof e->msg];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	chj_error_set(e, refusal_code(errnum), 0, "%s: %s", what, refusal_reason(errnum, at_init));
	e->errnum = errnum;
	return -1;
}

/* ---- keys and the handle → path cache ---- */

static size_t
key_hash(const struct fkey *k)
{
	uint64_t h = 1469598103934665603ull;
	unsigned i;

	h = (h ^ (uint32_t)k->fsid[0]) * 1099511628211ull;
	h = (h ^ (uint32_t)k->fsid[1]) * 1099511628211ull;
	h = (h ^ (uint32_t)k->type) * 1099511628211ull;
	for (i = 0; i < k->len; i++)
		h = (h ^ k->h[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 31));
}

static int
key_eq(const struct fkey *a, const struct fkey *b)
{
	return a->fsid[0] == b->fsid[0] && a->fsid[1] == b->fsid[1] && a->type == b->type &&
	    a->len == b->len && memcmp(a->h, b->h, a->len) == 0;
}

/* Fills k from an event's fid record; -1 if malformed. */
static int
key_from_info(struct fkey *k, const struct fanotify_event_info_fid *fid, size_t reclen,
    const char **name)
{
	const struct file_handle *fh = (const struct file_handle *)fid->handle;
	size_t hoff = offsetof(struct fanotify_event_info_fid, handle);

	if (reclen < hoff + sizeof *fh)
		return -1;
	if (fh->handle_bytes > HANDLE_MAX || hoff + sizeof *fh + fh->handle_bytes > reclen)
		return -1;
	memcpy(k->fsid, &fid->fsid, sizeof k->fsid);
	k->type = fh->handle_type;
	k->len = fh->handle_bytes;
	memcpy(k->h, fh->f_handle, k->len);
	if (name != NULL) {
		const char *n = (const char *)fh->f_handle + fh->handle_bytes;
		size_t room = reclen - (hoff + sizeof *fh + fh->handle_bytes);

		*name = (room > 0 && memchr(n, '\0', room) != NULL) ? n : NULL;
	}
	return 0;
}

/* 1 when cache entry e is directory k */
static int
centry_is(const struct centry *e, const struct fkey *k)
{
	return e->fsid[0] == k->fsid[0] && e->fsid[1] == k->fsid[1] && e->type == k->type &&
	    e->len == k->len && memcmp(e->data, k->h, k->len) == 0;
}

/* k: the key of cache entry e */
static void
centry_key(const struct centry *e, struct fkey *k)
{
	memcpy(k->fsid, e->fsid, sizeof k->fsid);
	k->type = e->type;
	k->len = e->len;
	memcpy(k->h, e->data, e->len);
}

static void
lru_unlink(struct watcher_impl *w, struct centry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		w->lru_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		w->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct watcher_impl *w, struct centry *e)
{
	e->prev = NULL;
	e->next = w->lru_head;
	if (w->lru_head != NULL)
		w->lru_head->prev = e;
	w->lru_head = e;
	if (w->lru_tail == NULL)
		w->lru_tail = e;
}

static void
cache_remove(struct watcher_impl *w, struct centry *e)
{
	struct centry **pp = &w->ctab[e->hash & (w->ctab_size - 1)];

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	lru_unlink(w, e);
	free(e);
	w->ncache--;
}

static struct centry *
cache_get(struct watcher_impl *w, const struct fkey *k)
{
	size_t h = key_hash(k);
	struct centry *e;

	for (e = w->ctab[h & (w->ctab_size - 1)]; e != NULL; e = e->hnext) {
		if (e->hash == h && centry_is(e, k)) {
			lru_unlink(w, e);
			lru_push(w, e);
			return e;
		}
	}
	return NULL;
}

/* Caches k → path (replacing an older entry); the least recently used
 * entry goes when full. Returns the entry, NULL on ENOMEM. */
static struct centry *
cache_put(struct watcher_impl *w, const struct fkey *k, const char *path, int learnt)
{
	size_t len = strlen(path);
	struct centry *e = cache_get(w, k);

	if (e != NULL)
		cache_remove(w, e);
	if (w->ncache >= CACHE_MAX)
		cache_remove(w, w->lru_tail);
	if ((e = malloc(sizeof *e + k->len + len + 1)) == NULL)
		return NULL;
	memcpy(e->fsid, k->fsid, sizeof e->fsid);
	e->type = k->type;
	e->len = k->len;
	memcpy(e->data, k->h, k->len);
	e->path = (char *)e->data + k->len;
	e->hash = key_hash(k);
	e->excluded = -1;
	e->learnt = learnt;
	memcpy(e->path, path, len + 1);
	e->hnext = w->ctab[e->hash & (w->ctab_size - 1)];
	w->ctab[e->hash & (w->ctab_size - 1)] = e;
	lru_push(w, e);
	w->ncache++;
	return e;
}

/* A directory at path was renamed or moved: its entry and every cached
 * descendant name it by the old path. */
static void
cache_drop_under(struct watcher_impl *w, const char *path)
{
	struct centry *e, *next;

	for (e = w->lru_head; e != NULL; e = next) {
		next = e->next;
		if (path_is_under(e->path, path))
			cache_remove(w, e);
	}
}

static void
cache_clear(struct watcher_impl *w)
{
	while (w->lru_head != NULL)
		cache_remove(w, w->lru_head);
}

/* ---- resolving handles ---- */

static struct fsmark *
mark_of(struct watcher_impl *w, const int fsid[2])
{
	size_t i;

	for (i = 0; i < w->nmarks; i++)
		if (w->marks[i].fsid[0] == fsid[0] && w->marks[i].fsid[1] == fsid[1])
			return &w->marks[i];
	return NULL;
}

/* Opens the directory of k, removed or not. Returns the fd, or -1 with
 * errno (ESTALE: gone). */
static int
open_handle(struct watcher_impl *w, const struct fkey *k)
{
	struct {
		struct file_handle fh;
		unsigned char h[HANDLE_MAX];
	} buf;
	struct fsmark *m = mark_of(w, k->fsid);

	if (m == NULL) {
		errno = EXDEV;
		return -1;
	}
	buf.fh.handle_bytes = k->len;
	buf.fh.handle_type = k->type;
	memcpy(buf.fh.f_handle, k->h, k->len);
	return open_by_handle_at(m->mount_fd, &buf.fh, O_PATH | O_CLOEXEC);
}

/* Opens the directory of k. Returns the fd, or -1 with errno (ESTALE: gone). */
static int
open_key(struct watcher_impl *w, const struct fkey *k)
{
	struct stat st;
	int fd = open_handle(w, k);

	if (fd < 0)
		return -1;
	/* an unlinked directory can still be open somewhere: its name is gone */
	if (fstat(fd, &st) == 0 && st.st_nlink == 0) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

static struct froot *root_of(struct watcher_impl *w, const char *path);
static void read_mounts(struct watcher_impl *w);
static void mark_mounts_below(struct watcher_impl *w, const char *root);

/* The path a directory read back through mark m's descriptor (got) shows
 * in our mount namespace: through a copy of a mount, got is relative to that
 * mount's root in the file system; each mount of the file system whose root
 * holds it shows it at its mount point plus the rest. The first one under a
 * root is taken (a file system mounted in a root, a bind mount), else the
 * first at all. A plain descriptor gives the path itself. Returns a new
 * string, NULL on ENOMEM. */
static char *
shown_path(struct watcher_impl *w, const struct fsmark *m, const char *got)
{
	char *fsrel, *best = NULL;
	size_t i;

	if (m == NULL || !m->clone)
		return strdup(got);
	if ((fsrel = path_join(m->fsroot, got[0] == '/' ? got + 1 : got)) == NULL)
		return NULL;
	if (strcmp(fsrel, "/") != 0 && fsrel[strlen(fsrel) - 1] == '/')
		fsrel[strlen(fsrel) - 1] = '\0';
	for (i = 0; i < w->mounts.n; i++) {
		const struct mount_entry *e = &w->mounts.v[i];
		const char *rest;
		char *p;

		if (makedev(e->major, e->minor) != m->dev || !path_is_under(fsrel, e->root))
			continue;
		rest = fsrel + (strcmp(e->root, "/") == 0 ? 0 : strlen(e->root));
		if ((p = path_join(e->point, rest[0] == '/' ? rest + 1 : rest)) == NULL) {
			free(best);
			free(fsrel);
			return NULL;
		}
		if (strcmp(p, "/") != 0 && p[strlen(p) - 1] == '/')
			p[strlen(p) - 1] = '\0';
		if (best == NULL || (root_of(w, p) != NULL && root_of(w, best) == NULL)) {
			free(best);
			best = p;
		} else {
			free(p);
		}
	}
	if (best == NULL)
		best = strdup(fsrel);        /* no mount shows it: kept as it is */
	free(fsrel);
	return best;
}

/* Returns the cache entry (current path) of directory k, or NULL with
 * errno (ESTALE/ENOENT: deleted; ENOMEM). */
static struct centry *
resolve(struct watcher_impl *w, const struct fkey *k)
{
	struct centry *e = cache_get(w, k);
	char *path, *shown;
	int fd, err;

	if (e != NULL && !e->learnt)
		return e;
	/* a learnt path is the directory's name when its entry event was made:
	 * later renames may have been merged into earlier events, so it only
	 * serves once the directory is gone */
	/* removed before or while it is named (never its "... (deleted)"):
	 * longpath_of_dir() says ENOENT, so no fstat() here first (a cache
	 * miss is an open, a readlink, an fstat and a close) */
	fd = open_handle(w, k);
	path = fd < 0 ? NULL : longpath_of_dir(fd);
	err = errno;
	if (fd >= 0)
		close(fd);
	if (path == NULL) {
		errno = err;
		return (e != NULL && (err == ESTALE || err == ENOENT)) ? e : NULL;
	}
	shown = shown_path(w, mark_of(w, k->fsid), path);
	free(path);
	if (shown == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if ((e = cache_put(w, k, shown, 0)) == NULL)
		errno = ENOMEM;
	free(shown);
	return e;
}

/* Returns 1 when directory path, or a directory between root and it, is
 * excluded: inotify never watches below an excluded directory, and neither
 * does this backend report there. */
static int
dir_excluded(struct watcher_impl *w, const char *root, const char *path)
{
	size_t rl = strlen(root), i;
	char *copy;
	int ex = 0;

	if (strlen(path) <= rl || w->cfg->nexcludes == 0)
		return 0;
	if ((copy = strdup(path)) == NULL)
		return 0;
	for (i = rl + 1; copy[i] != '\0' && !ex; i++) {
		if (copy[i] != '/')
			continue;
		copy[i] = '\0';
		ex = config_is_excluded(w->cfg, copy);
		copy[i] = '/';
	}
	if (!ex)
		ex = config_is_excluded(w->cfg, copy);
	free(copy);
	return ex;
}

/* ---- reporting ---- */

#define report_change(w, path, flags) watch_core_change((w)->core, (path), (flags))

/* A write to the file of handle k through a name the core may not know
 * (outside the roots, or in a directory gone): its hard links. */
static void
report_file_write(struct watcher_impl *w, const struct fkey *k)
{
	struct watcher_file_id id;

	memcpy(id.fsid, k->fsid, sizeof id.fsid);
	id.type = k->type;
	id.len = k->len;
	memcpy(id.h, k->h, k->len);
	watch_core_outside_write(w->core, &id);
}

/* The root holding path (path equal to it or below), or NULL. */
static struct froot *
root_of(struct watcher_impl *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (w->roots[i].watched && path_is_under(path, w->roots[i].path))
			return &w->roots[i];
	return NULL;
}

/* Rescans every watched root on file system fsid (every root: NULL). */
static void
rescan_roots(struct watcher_impl *w, const int *fsid, const char *reason)
{
	size_t i;

	for (i = 0; i < w->nroots; i++) {
		struct froot *r = &w->roots[i];

		if (fsid != NULL && (r->key.fsid[0] != fsid[0] || r->key.fsid[1] != fsid[1]))
			continue;
		watch_core_rescan(w->core, r->path, reason);
	}
}

/* ---- marks and roots ---- */

/* A descriptor for open_by_handle_at() on the file system of device dev,
 * holding path: the root of a detached copy of one of its mounts (the one
 * whose root is the file system's root if there is one), so that no mount
 * is kept busy; else a plain descriptor of path. */
static int
mount_descriptor(struct watcher_impl *w, const char *path, dev_t dev, struct fsmark *m)
{
	const struct mount_entry *pick = NULL;
	size_t i;
	int tree, fd;

	for (i = 0; i < w->mounts.n; i++) {
		const struct mount_entry *e = &w->mounts.v[i];

		if (makedev(e->major, e->minor) == dev && (pick == NULL || strcmp(e->root, "/") == 0))
			pick = e;
	}
	m->clone = 0;
	m->fsroot = NULL;
	if (pick != NULL && (tree = open_tree(AT_FDCWD, pick->point,
	    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) >= 0) {
		fd = openat(tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(tree);
		if (fd >= 0 && (m->fsroot = strdup(pick->root)) != NULL) {
			m->clone = 1;
			return fd;
		}
		if (fd >= 0)
			close(fd);
	}
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Marks the file system holding path (once per file system). Returns 0, or
 * -1 with errno and *at_init-style reason left to the caller. */
static int
mark_fs(struct watcher_impl *w, const char *path, const int fsid[2], dev_t dev)
{
	struct fsmark *nm, m;
	size_t i;

	for (i = 0; i < w->nmarks; i++)
		if ((w->marks[i].fsid[0] == fsid[0] && w->marks[i].fsid[1] == fsid[1]) ||
		    w->marks[i].dev == dev)
			return 0;
	if (fanotify_mark(w->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_EVENTS, AT_FDCWD, path) < 0)
		return -1;
	memset(&m, 0, sizeof m);
	if ((m.mount_fd = mount_descriptor(w, path, dev, &m)) < 0)
		return -1;
	if ((nm = realloc(w->marks, (w->nmarks + 1) * sizeof *nm)) == NULL) {
		close(m.mount_fd);
		free(m.fsroot);
		errno = ENOMEM;
		return -1;
	}
	w->marks = nm;
	m.fsid[0] = fsid[0];
	m.fsid[1] = fsid[1];
	m.dev = dev;
	nm[w->nmarks++] = m;
	return 0;
}

/* Marks the file system of a path below a root (a mount in it). Returns 1
 * when marked, 0 when not: gone, or refused (then the core covers it with
 * rescans and retries it). */
static int
mark_path(struct watcher_impl *w, const char *path)
{
	struct statfs sfs;
	struct stat st;
	int fsid[2], e;

	if (stat(path, &st) < 0 || statfs(path, &sfs) < 0)
		return 0;
	memcpy(fsid, &sfs.f_fsid, sizeof fsid);
	if ((fsid[0] != 0 || fsid[1] != 0) && mark_fs(w, path, fsid, st.st_dev) == 0)
		return 1;
	e = (fsid[0] == 0 && fsid[1] == 0) ? ENODEV : errno;
	log_warning("cannot mark the file system mounted on '%s' with fanotify: %s; changes "
	    "in it are covered by rescans (backend = inotify watches such mounts)", path,
	    refusal_reason(e, 0));
	watch_core_lost(w->core, path, "file system not marked", e);
	return 0;
}

/* Marks every file system mounted below root (the mount table). */
static void
mark_mounts_below(struct watcher_impl *w, const char *root)
{
	size_t i;

	for (i = 0; i < w->mounts.n; i++)
		if (path_is_under(w->mounts.v[i].point, root) && strcmp(w->mounts.v[i].point, root) != 0)
			mark_path(w, w->mounts.v[i].point);
}

/* Marks root's file system and takes its handle. Returns 0, or -1 with e
 * filled, errnum the errno (CHJ_ERR_NOTFOUND: root missing; CHJ_ERR_REFUSED:
 * the kernel, the privileges or the file system refuse). */
static int
attach_root(struct watcher_impl *w, struct froot *r, struct chj_error *e)
{
	struct {
		struct file_handle fh;
		unsigned char h[HANDLE_MAX];
	} buf;
	struct statfs sfs;
	struct stat st;
	int mount_id, fd, en;

	if (stat(r->path, &st) < 0 || statfs(r->path, &sfs) < 0) {
		en = errno;
		return chj_error_set(e, en == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, en,
		    "cannot watch root '%s'", r->path);
	}
	buf.fh.handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(AT_FDCWD, r->path, &buf.fh, &mount_id, 0) < 0)
		return refusal_error(e, errno, 0, "cannot mark the file system of '%s' with fanotify",
		    r->path);
	memcpy(r->key.fsid, &sfs.f_fsid, sizeof r->key.fsid);
	if (r->key.fsid[0] == 0 && r->key.fsid[1] == 0)
		return refusal_error(e, ENODEV, 0, "cannot mark the file system of '%s' with fanotify",
		    r->path);
	r->key.type = buf.fh.handle_type;
	r->key.len = buf.fh.handle_bytes;
	memcpy(r->key.h, buf.fh.f_handle, r->key.len);
	if (mark_fs(w, r->path, r->key.fsid, st.st_dev) < 0)
		return refusal_error(e, errno, 0, "cannot mark the file system of '%s' with fanotify",
		    r->path);
	/* resolving handles needs CAP_DAC_READ_SEARCH: find out now */
	if ((fd = open_key(w, &r->key)) < 0) {
		en = errno;
		if (en != EPERM)
			return chj_error_set(e, refusal_code(en), en,
			    "cannot open file handles on the file system of '%s'", r->path);
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "cannot open file handles on the file system of "
		    "'%s': operation not permitted (open_by_handle_at needs CAP_DAC_READ_SEARCH)",
		    r->path);
		e->errnum = en;
		return -1;
	}
	close(fd);
	r->watched = 1;
	return 0;
}

/* The root is not watched (err: refused; 0: missing, deleted, moved). */
static void
root_unwatched(struct watcher_impl *w, struct froot *r, const char *why, int err)
{
	r->watched = 0;
	watch_core_lost(w->core, r->path, why, err);
}

static void
root_lost(struct watcher_impl *w, struct froot *r, const char *why)
{
	log_error("root '%s' %s: its changes are covered by a rescan until it is back", r->path, why);
	root_unwatched(w, r, why, 0);
}

/* ---- events ---- */

/* The core had a rescan of every root recorded (a queue overflow): renames
 * may be among the lost events, so no cached path can be trusted. */
static void
fanotify_resync(struct watcher_impl *w)
{
	cache_clear(w);
	w->nstale = 0;
}

static void settle_stale(struct watcher_impl *w, int force);
static void event_at(struct watcher_impl *w, const struct fev *ev, const char *dir);

/* Keeps an event of a stale directory until an event names the directory:
 * a directory is deleted after its entries, and with FAN_REPORT_TARGET_FID
 * the event of its own deletion (in its parent) carries its handle. */
static void
stash_stale(struct watcher_impl *w, const struct fev *ev)
{
	struct stale *s;
	size_t i, n = 0, first = 0, h = key_hash(&ev->dir);

	if (strlen(ev->name) > NAME_MAX)
		return;
	for (i = 0; i < w->nstale; i++) {
		if (w->stale_hash[i] == h && key_eq(&w->stale[i].key, &ev->dir) && n++ == 0)
			first = i;
	}
	/* many events in one directory: keep its entry events (they name
	 * child directories) and the first ones; the rest is a rescan of it */
	if (n >= MAX_STALE_PER_DIR && !(ev->has_target && (ev->mask & FAN_ONDIR))) {
		w->stale[first].truncated = 1;
		return;
	}
	if (w->nstale == MAX_STALE)
		settle_stale(w, 1);
	s = &w->stale[w->nstale];
	w->stale_hash[w->nstale] = h;
	s->key = ev->dir;
	s->since = watch_core_drained_at(w->core) - WATCH_TIME_MARGIN;
	s->read_seq = w->read_seq;
	s->mask = ev->mask;
	s->has_target = ev->has_target;
	s->truncated = 0;
	if (ev->has_target)
		s->target = ev->target;
	strcpy(s->name, ev->name);
	w->nstale++;
}

/* The stashed entry events of directories (their target: the directory's
 * own handle), by key_hash of the target, built for one settle_stale():
 * open addressing, slot = index + 1 (0: empty), same-key entries met in
 * index order along a probe. */
struct stale_index {
	size_t *slot;
	size_t mask;
};

static int
names_directory(const struct stale *s)
{
	return s->has_target && (s->mask & FAN_ONDIR) &&
	    (s->mask & (FAN_CREATE | FAN_DELETE | FAN_MOVED_TO));
}

/* Returns 0, or -1 on ENOMEM. */
static int
stale_index_build(struct watcher_impl *w, struct stale_index *x)
{
	size_t i, size = 16;

	while (size < 2 * w->nstale)
		size *= 2;
	if ((x->slot = calloc(size, sizeof *x->slot)) == NULL)
		return -1;
	x->mask = size - 1;
	for (i = 0; i < w->nstale; i++) {
		size_t k;

		if (!names_directory(&w->stale[i]))
			continue;
		for (k = key_hash(&w->stale[i].target) & x->mask; x->slot[k] != 0; k = (k + 1) & x->mask)
			;
		x->slot[k] = i + 1;
	}
	return 0;
}

/* The path of a handle that may be stale: cached, or its parent's path plus
 * the name a stashed entry event gave it (the first such event whose parent
 * has a path). Returns a new string or NULL. */
static char *
stale_path(struct watcher_impl *w, const struct stale_index *x, const struct fkey *k, int depth)
{
	struct centry *e = cache_get(w, k);
	size_t i;

	if (e != NULL)
		return strdup(e->path);
	if (depth >= MAX_STALE_DEPTH)
		return NULL;
	for (i = key_hash(k) & x->mask; x->slot[i] != 0; i = (i + 1) & x->mask) {
		struct stale *s = &w->stale[x->slot[i] - 1];
		char *p, *full;

		if (!key_eq(&s->target, k) || (p = stale_path(w, x, &s->key, depth + 1)) == NULL)
			continue;
		full = path_join(p, s->name);
		free(p);
		return full;
	}
	return NULL;
}

/* paths[i]: the path of stale[i]'s directory, each distinct directory
 * resolved once (many events wait in one directory). Returns 0, or -1 on
 * ENOMEM. */
static int
stale_paths(struct watcher_impl *w, char **paths)
{
	struct stale_index x = { NULL, 0 };
	size_t i, j, size = 16, mask, *first = NULL;
	int rc = -1;

	while (size < 2 * w->nstale)
		size *= 2;
	mask = size - 1;
	if (stale_index_build(w, &x) < 0 || (first = calloc(size, sizeof *first)) == NULL)
		goto cleanup;
	for (i = 0; i < w->nstale; i++) {
		const struct fkey *k = &w->stale[i].key;

		for (j = w->stale_hash[i] & mask; first[j] != 0; j = (j + 1) & mask)
			if (key_eq(&w->stale[first[j] - 1].key, k))
				break;
		if (first[j] == 0) {
			first[j] = i + 1;
			paths[i] = stale_path(w, &x, k, 0);
		} else if (paths[first[j] - 1] != NULL &&
		    (paths[i] = strdup(paths[first[j] - 1])) == NULL) {
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	free(first);
	free(x.slot);
	return rc;
}

/* Replays each stashed event whose directory some event has named since
 * (reported as if read in time, then a directory with events left out is
 * rescanned). With force, or once the queue was emptied after (or without
 * target fids, where no event will name them), the others are let go, and
 * this is why nothing is missed: their directory was deleted (its handle is
 * stale), so every path below it is gone, and the deletion of the topmost
 * deleted directory, made in a directory that still exists, is an event we
 * can name (journaled: --deleted covers what was below). What left the
 * directory before it went was moved out, and its MOVED_TO names where it
 * is now. What the deleted names shared with names elsewhere (hard links)
 * is followed: a write through one is handed to the core by the file's own
 * handle, as a write outside the roots. (Rescanning the roots here instead
 * made every directory deleted anywhere on a busy file system, before its
 * events were read, rescan the roots.) */
/* A write (or an attribute change) kept from a deleted directory: the file
 * may have other names (hard links) the core knows, by its own handle. */
static void
stale_file_write(struct watcher_impl *w, const struct stale *s)
{
	if (!s->has_target || (s->mask & FAN_ONDIR) ||
	    !(s->mask & (FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB)))
		return;
	report_file_write(w, &s->target);
}

static void
settle_stale(struct watcher_impl *w, int force)
{
	size_t i, o = 0, dropped = 0;
	char **paths;

	if (w->nstale == 0)
		return;
	/* resolve every directory first: a replayed event may change the cache */
	if ((paths = calloc(w->nstale, sizeof *paths)) == NULL || stale_paths(w, paths) < 0) {
		rescan_roots(w, NULL, "out of memory");
		for (i = 0; paths != NULL && i < w->nstale; i++)
			free(paths[i]);
		free(paths);
		w->nstale = 0;
		return;
	}
	for (i = 0; i < w->nstale; i++) {
		struct stale *s = &w->stale[i];
		struct fev ev;

		if (paths[i] != NULL) {
			memset(&ev, 0, sizeof ev);
			ev.mask = s->mask;
			ev.dir = s->key;
			ev.name = s->name;
			ev.has_target = s->has_target;
			ev.target = s->target;
			event_at(w, &ev, paths[i]);
			if (s->truncated && root_of(w, paths[i]) != NULL)
				watch_core_rescan_since(w->core, paths[i], s->since,
				    "directory deleted before its many events were read");
			continue;
		}
		if (!force && w->target_fid && w->drained_seq <= s->read_seq) {
			w->stale_hash[o] = w->stale_hash[i];
			w->stale[o++] = *s;
			continue;
		}
		/* later events in it (a file still open in a directory removed
		 * before we started) are let go at once: a gone directory holds
		 * no path the backup can still find */
		w->unknown[w->nunknown++ % MAX_UNKNOWN] = s->key;
		stale_file_write(w, s);
		dropped++;
	}
	if (dropped > 0)
		log_debug("%zu events in directories deleted before they were read, their path "
		    "unknown: let go (the topmost deletion is journaled)", dropped);
	for (i = 0; i < w->nstale; i++)
		free(paths[i]);
	free(paths);
	w->nstale = o;
}

/* The queue was emptied: the stale handles are settled, and the drain may
 * not pass the oldest one still kept back. */
static void
note_emptied(struct watcher_impl *w, struct watch_read *r)
{
	size_t i;

	settle_stale(w, 0);
	r->emptied = 1;
	r->hold = 0;
	for (i = 0; i < w->nstale; i++)
		if (r->hold == 0 || w->stale[i].since + WATCH_TIME_MARGIN < r->hold)
			r->hold = w->stale[i].since + WATCH_TIME_MARGIN;
}

static int
parse_event(const struct fanotify_event_metadata *m, const char *raw, struct fev *ev)
{
	const char *p = raw + m->metadata_len, *end = raw + m->event_len;

	memset(ev, 0, sizeof *ev);
	ev->mask = m->mask;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;
		const struct fanotify_event_info_fid *fid = (const void *)p;

		if (h->len < sizeof *h || p + h->len > end)
			return -1;
		switch (h->info_type) {
		case FAN_EVENT_INFO_TYPE_DFID_NAME:
		case FAN_EVENT_INFO_TYPE_DFID:
			if (key_from_info(&ev->dir, fid, h->len,
			    h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ? &ev->name : NULL) < 0)
				return -1;
			ev->has_dir = 1;
			break;
		case FAN_EVENT_INFO_TYPE_FID:
			if (key_from_info(&ev->target, fid, h->len, NULL) < 0)
				return -1;
			ev->has_target = 1;
			break;
		}
		p += h->len;
	}
	if (ev->name != NULL && strcmp(ev->name, ".") == 0)
		ev->name = NULL;
	return 0;
}

/* A directory event on a root itself (deleted, moved away). */
static int
handle_self(struct watcher_impl *w, const struct fev *ev)
{
	size_t i;

	if (!(ev->mask & (FAN_DELETE_SELF | FAN_MOVE_SELF)))
		return 0;
	for (i = 0; i < w->nroots; i++) {
		struct froot *r = &w->roots[i];

		if (r->watched && key_eq(&r->key, &ev->dir)) {
			root_lost(w, r, (ev->mask & FAN_DELETE_SELF) ? "was deleted" : "was moved away");
			return 1;
		}
	}
	return 1;
}

/* A directory at old (full path) was renamed: forget cached paths under it;
 * a root below it has moved away. */
static void
directory_moved(struct watcher_impl *w, const char *old)
{
	size_t i;

	cache_drop_under(w, old);
	for (i = 0; i < w->nroots; i++) {
		struct froot *r = &w->roots[i];

		if (r->watched && path_is_under(r->path, old))
			root_lost(w, r, strcmp(r->path, old) == 0 ? "was moved away" :
			    "was moved away (a directory above it was renamed)");
	}
}

/* Returns 1 for the name the kernel gives an O_TMPFILE file: '#' and its
 * inode number. */
static int
is_tmpfile_name(const char *name)
{
	size_t i;

	if (name == NULL || name[0] != '#' || name[1] == '\0')
		return 0;
	for (i = 1; name[i] != '\0'; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return 1;
}

static char *file_name_of(struct watcher_impl *w, const struct fkey *k);

/* Reports ev, an entry event in directory dir (its path now). */
static void
event_at(struct watcher_impl *w, const struct fev *ev, const char *dir)
{
	struct centry *e;
	struct froot *root;
	char *full;
	int excluded = 0;
	unsigned isdir = (ev->mask & FAN_ONDIR) ? JF_DIR : 0;

	if ((root = root_of(w, dir)) != NULL) {
		if ((e = cache_get(w, &ev->dir)) != NULL && e->excluded < 0)
			e->excluded = dir_excluded(w, root->path, dir);
		excluded = e != NULL ? e->excluded : dir_excluded(w, root->path, dir);
	}
	if ((full = path_join(dir, ev->name)) == NULL) {
		log_error("out of memory handling an event in '%s'", dir);
		return;
	}
	/* renames anywhere on the file system change cached paths */
	if (isdir && (ev->mask & FAN_MOVED_FROM))
		directory_moved(w, full);
	/* a new or deleted directory's own handle: events inside it resolve
	 * even if it is gone before they are read */
	if (isdir && ev->has_target && (ev->mask & (FAN_CREATE | FAN_DELETE | FAN_MOVED_TO)))
		cache_put(w, &ev->target, full, 1);
	if (root == NULL && !isdir && ev->has_target &&
	    (ev->mask & (FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB)))
		report_file_write(w, &ev->target);   /* a hard link inside? */
	if (root == NULL || excluded)
		goto done;     /* outside the roots, or below an excluded directory */
	if (log_enabled(CONFIG_LOG_DEBUG))
		log_debug("event 0x%llx '%s'", (unsigned long long)ev->mask, full);
	if (config_is_excluded(w->cfg, full))
		goto done;
	if (!isdir && ev->has_target && is_tmpfile_name(ev->name)) {
		/* a write through an O_TMPFILE descriptor linked since: its
		 * events name "#INODE"; the file's handle gives its real name */
		char *real = file_name_of(w, &ev->target);

		if (real != NULL && root_of(w, real) != NULL)
			report_change(w, real, JF_MODIFIED);
		else if (real == NULL && (ev->mask & (FAN_MODIFY | FAN_CLOSE_WRITE)))
			watch_core_rescan(w->core, root->path,
			    "a write through an O_TMPFILE descriptor, the file's name unknown");
		free(real);
		goto done;
	}
	if (ev->mask & FAN_CREATE)
		report_change(w, full, isdir ? JF_CREATED | JF_SUBTREE | JF_DIR : JF_CREATED);
	if (ev->mask & (FAN_MODIFY | FAN_CLOSE_WRITE))
		report_change(w, full, JF_MODIFIED);
	if (ev->mask & FAN_ATTRIB)
		report_change(w, full, JF_ATTRIB | isdir);
	if (ev->mask & FAN_DELETE)
		report_change(w, full, JF_DELETED | isdir);
	if (ev->mask & FAN_MOVED_FROM)
		report_change(w, full, JF_DELETED | JF_MOVED_OUT | isdir);
	if (ev->mask & FAN_MOVED_TO)
		report_change(w, full, isdir ? JF_RENAMED | JF_SUBTREE | JF_DIR :
		    JF_RENAMED | JF_CREATED);
done:
	free(full);
}

/* Returns 1 when k is a gone directory already covered by a rescan. */
static int
is_unknown(const struct watcher_impl *w, const struct fkey *k)
{
	size_t i, n = w->nunknown < MAX_UNKNOWN ? w->nunknown : MAX_UNKNOWN;

	for (i = 0; i < n; i++)
		if (key_eq(&w->unknown[i], k))
			return 1;
	return 0;
}

static void
handle_event(struct watcher_impl *w, const struct fev *ev)
{
	struct centry *e;
	char *dir;

	if (ev->name == NULL) {
		if (ev->mask & FAN_ONDIR)
			handle_self(w, ev);
		return;        /* other self events: the entry events tell it */
	}
	e = resolve(w, &ev->dir);
	if (e == NULL) {
		if (errno == ENOMEM) {
			log_error("out of memory resolving a directory handle: rescanning the roots");
			rescan_roots(w, NULL, "out of memory");
			return;
		}
		if (is_unknown(w, &ev->dir))
			return;
		log_debug("event 0x%llx in a directory not found (%s): resolved later",
		    (unsigned long long)ev->mask, strerror(errno));
		stash_stale(w, ev);
		return;
	}
	/* a copy: the entry may go with the cache updates the event makes */
	if ((dir = strdup(e->path)) == NULL) {
		log_error("out of memory handling an event in '%s'", e->path);
		return;
	}
	event_at(w, ev, dir);
	free(dir);
}

/* The path a file's own handle opens as, when that is still one of its
 * names (a disconnected file opens as "/", an unlinked one has no name).
 * Returns a new string, or NULL (name unknown, or ENOMEM). */
static char *
file_name_of(struct watcher_impl *w, const struct fkey *k)
{
	struct stat byfd, byname;
	char proc[64], *shown;
	ssize_t n;
	int fd = open_key(w, k);

	if (fd < 0)
		return NULL;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, w->linkbuf, sizeof w->linkbuf - 1);
	if (n <= 0 || (size_t)n >= sizeof w->linkbuf - 1 || fstat(fd, &byfd) < 0) {
		close(fd);
		return NULL;
	}
	close(fd);
	w->linkbuf[n] = '\0';
	shown = shown_path(w, mark_of(w, k->fsid), w->linkbuf);
	if (shown != NULL && (lstat(shown, &byname) < 0 || byname.st_ino != byfd.st_ino ||
	    byname.st_dev != byfd.st_dev)) {
		free(shown);
		return NULL;
	}
	return shown;
}

/* An event that names no directory, only the file's own handle: a write
 * through a descriptor whose dentry the kernel cannot connect to a parent
 * (open_by_handle_at() after the name left the cache: how the kernel NFS
 * server writes), or a link count change. Never dropped: the file's name
 * is found from its handle, or its other names from the known hard links,
 * or, for a write, the roots on its file system are rescanned; unless the
 * file has no name left (FAN_DELETE_SELF in the same event). */
static void
file_only_event(struct watcher_impl *w, const struct fev *ev)
{
	char *name;

	if (ev->mask & FAN_ONDIR)
		return;                  /* a directory's: its entry events tell */
	if (!(ev->mask & (FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB)))
		return;
	report_file_write(w, &ev->target);
	/* The file's last name is gone (the kernel sends DELETE_SELF only
	 * when its link count reaches 0, and merges it into the event still
	 * queued for the same file: an unlink's own link-count ATTRIB, say),
	 * and each name's deletion came with its directory and name. There
	 * is no name to find: asking open_by_handle_at() for a deleted
	 * inode reads it back only to fail, 42% of a drain of deletions. */
	if (ev->mask & FAN_DELETE_SELF)
		return;
	if ((name = file_name_of(w, &ev->target)) != NULL) {
		if (root_of(w, name) != NULL && !dir_excluded(w, root_of(w, name)->path, name) &&
		    !config_is_excluded(w->cfg, name))
			report_change(w, name, (ev->mask & FAN_ATTRIB) ? JF_ATTRIB : JF_MODIFIED);
		free(name);
		return;
	}
	/* a link count change alone (metadata) needs no rescan: a write does */
	if (!(ev->mask & (FAN_MODIFY | FAN_CLOSE_WRITE)))
		return;
	log_debug("a write by file handle, the file's name unknown: rescanning the roots on "
	    "its file system");
	rescan_roots(w, ev->target.fsid, "a write by file handle, the file's name unknown");
}

static int
fanotify_read(struct watcher_impl *w, struct watch_read *r, struct chj_error *e)
{
	int reads = 0;

	for (;;) {
		ssize_t n;
		struct fanotify_event_metadata meta;
		const struct fanotify_event_metadata *m = &meta;
		size_t off;

		w->read_seq++;
		n = read(w->fd, w->readbuf, READ_BUFFER_SIZE);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot read fanotify events");
			w->drained_seq = w->read_seq;
			note_emptied(w, r);
			return 0;
		}
		/* events are 4-byte aligned (their info records are), the
		 * metadata wants 8: each header is copied out */
		for (off = 0; off + sizeof *m <= (size_t)n; off += m->event_len) {
			const char *raw = w->readbuf + off;
			struct fev ev;

			memcpy(&meta, raw, sizeof meta);
			m = &meta;
			if (m->event_len < sizeof *m || off + m->event_len > (size_t)n)
				break;
			if (m->vers != FANOTIFY_METADATA_VERSION)
				return chj_error_set(e, CHJ_ERR_CORRUPT, 0,
				    "fanotify event version %u, expected %u", m->vers,
				    FANOTIFY_METADATA_VERSION);
			if (m->fd >= 0)
				close(m->fd);
			if (m->mask & FAN_Q_OVERFLOW) {
				r->events++;
				watch_core_overflow(w->core);
				continue;
			}
			if (m->pid == w->self)
				continue;        /* our own journal writes */
			r->events++;
			if (parse_event(m, raw, &ev) < 0 || !ev.has_dir) {
				if (ev.has_target)
					file_only_event(w, &ev);
				else
					log_debug("fanotify event without a directory handle (mask 0x%llx)",
					    (unsigned long long)m->mask);
				continue;
			}
			handle_event(w, &ev);
		}
		/* a read well short of the buffer emptied the queue: every event
		 * before it is handled (on a busy file system the queue may
		 * never be seen empty by a read returning EAGAIN) */
		if ((size_t)n < READ_BUFFER_SIZE - READ_SLACK) {
			/* (the handles found stale while handling this read are
			 * decided by the next read that empties the queue) */
			w->drained_seq = w->read_seq;
			note_emptied(w, r);
		}
		if (++reads >= MAX_READS_PER_CALL) {
			settle_stale(w, 0);
			return 0;
		}
	}
}

/* Polled idle: nothing was queued after every read so far. */
static void
fanotify_idle(struct watcher_impl *w, struct watch_read *r)
{
	w->drained_seq = w->read_seq + 1;
	note_emptied(w, r);
}

/* ---- lifecycle ---- */

static void fanotify_free(struct watcher_impl *w);

/* Adds root to the list (not yet attached). Returns it, NULL on ENOMEM. */
static struct froot *
root_push(struct watcher_impl *w, const char *root)
{
	struct froot *nr = realloc(w->roots, (w->nroots + 1) * sizeof *nr);

	if (nr == NULL)
		return NULL;
	w->roots = nr;
	memset(&nr[w->nroots], 0, sizeof nr[0]);
	if ((nr[w->nroots].path = strdup(root)) == NULL)
		return NULL;
	return &nr[w->nroots++];
}

/* The handle, without its fanotify descriptor (fd -1). NULL with e filled. */
static struct watcher_impl *
fanotify_alloc(const struct config *cfg, struct watch_core *core, struct chj_error *e)
{
	struct watcher_impl *w = calloc(1, sizeof *w);

	if (w == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return NULL;
	}
	w->fd = -1;
	w->cfg = cfg;
	w->core = core;
	w->self = getpid();
	w->ctab_size = 2 * CACHE_MAX;
	w->ctab = calloc(w->ctab_size, sizeof *w->ctab);
	w->stale = malloc(MAX_STALE * sizeof *w->stale);
	w->stale_hash = malloc(MAX_STALE * sizeof *w->stale_hash);
	w->readbuf = malloc(READ_BUFFER_SIZE);
	if (w->ctab == NULL || w->stale == NULL || w->stale_hash == NULL || w->readbuf == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		fanotify_free(w);
		return NULL;
	}
	return w;
}

static struct watcher_impl *
fanotify_new(const struct config *cfg, struct watch_core *core, struct chj_error *e)
{
	struct watcher_impl *w = fanotify_alloc(cfg, core, e);
	unsigned base = FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC;
	size_t i;

	if (w == NULL)
		return NULL;
	/* the target fid (5.17+) names a new directory's handle with its path */
	w->target_fid = 1;
	w->fd = fanotify_init(base | FAN_REPORT_DFID_NAME_TARGET, O_RDONLY | O_LARGEFILE);
	if (w->fd < 0 && errno == EINVAL) {
		w->target_fid = 0;
		w->fd = fanotify_init(base | FAN_REPORT_DFID_NAME, O_RDONLY | O_LARGEFILE);
	}
	if (w->fd < 0) {
		refusal_error(e, errno, 1, "cannot use fanotify");
		goto fail;
	}
	read_mounts(w);
	/* the file system of every root that exists must take a mark now: a
	 * refusal is an error (or, under auto, the reason to use inotify) */
	for (i = 0; i < cfg->nroots; i++) {
		struct froot probe;
		struct stat st;

		if (stat(cfg->roots[i], &st) < 0)
			continue;        /* missing: covered and retried like inotify */
		memset(&probe, 0, sizeof probe);
		probe.path = cfg->roots[i];
		if (attach_root(w, &probe, e) < 0)
			goto fail;
	}
	return w;
fail:
	fanotify_free(w);
	return NULL;
}

static void
fanotify_free(struct watcher_impl *w)
{
	size_t i;

	if (w == NULL)
		return;
	cache_clear(w);
	for (i = 0; i < w->nmarks; i++) {
		close(w->marks[i].mount_fd);
		free(w->marks[i].fsroot);
	}
	mount_table_free(&w->mounts);
	for (i = 0; i < w->nroots; i++)
		free(w->roots[i].path);
	if (w->fd >= 0)
		close(w->fd);
	free(w->marks);
	free(w->roots);
	free(w->ctab);
	free(w->stale);
	free(w->stale_hash);
	free(w->readbuf);
	free(w);
}

/* Returns 1 when a root, or a mount below one, is on file system m. */
static int
mark_needed(struct watcher_impl *w, const struct fsmark *m)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (w->roots[i].watched && w->roots[i].key.fsid[0] == m->fsid[0] &&
		    w->roots[i].key.fsid[1] == m->fsid[1])
			return 1;
	for (i = 0; i < w->mounts.n; i++) {
		const struct mount_entry *e = &w->mounts.v[i];

		if (makedev(e->major, e->minor) == m->dev && root_of(w, e->point) != NULL)
			return 1;
	}
	return 0;
}

/* Lets go of the file systems no root or mount below one is on any more:
 * their mark, and the descriptor that would keep an unmounted one alive. */
static void
drop_unused_marks(struct watcher_impl *w)
{
	size_t i, o = 0;

	for (i = 0; i < w->nmarks; i++) {
		struct fsmark *m = &w->marks[i];

		if (mark_needed(w, m)) {
			w->marks[o++] = *m;
			continue;
		}
		fanotify_mark(w->fd, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, FAN_EVENTS, m->mount_fd, NULL);
		close(m->mount_fd);
		free(m->fsroot);
	}
	w->nmarks = o;
	cache_clear(w);
}

/* The mount table again (a mount or an unmount). */
static void
read_mounts(struct watcher_impl *w)
{
	if (mount_table_read(&w->mounts, -1) < 0)
		log_warning("%s: mounts below the roots are not followed", w->mounts.err.msg);
}

static struct froot *
root_named(struct watcher_impl *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (strcmp(w->roots[i].path, path) == 0)
			return &w->roots[i];
	return NULL;
}

/* Watches a root as it is now (new, retried, or with a mount or an
 * unmount on it): the mount table is read again, the root's file system
 * marked (it may be another now) and its handle taken again, the mounts
 * below it marked, and the file systems no longer under the roots let go. */
static int
watch_root(struct watcher_impl *w, const char *path)
{
	struct froot *r = root_named(w, path);
	int known = r != NULL;
	struct chj_error e;

	if (r == NULL && (r = root_push(w, path)) == NULL)
		return -1;
	if (known)
		read_mounts(w);
	r->watched = 0;
	if (attach_root(w, r, &e) < 0) {
		/* missing, or its file system refuses a mark (a root added by a
		 * reload): covered by rescans and retried */
		if (e.code != CHJ_ERR_NOTFOUND)
			log_error("%s; changes below it are covered by rescans", e.msg);
		root_unwatched(w, r, "root not watched", e.code == CHJ_ERR_NOTFOUND ? 0 : e.errnum);
	} else {
		mark_mounts_below(w, r->path);
	}
	if (known)
		drop_unused_marks(w);
	return r->watched;
}

/* Watches a path below a root: its file system is marked (a mount there). */
static int
fanotify_watch(struct watcher_impl *w, const char *path, int is_root)
{
	int marked = 0;

	if (is_root)
		return watch_root(w, path);
	read_mounts(w);
	if (root_of(w, path) != NULL)
		marked = mark_path(w, path);
	drop_unused_marks(w);
	return marked;
}

static void
fanotify_unwatch(struct watcher_impl *w, const char *root)
{
	size_t i, o = 0;

	for (i = 0; i < w->nroots; i++) {
		if (strcmp(w->roots[i].path, root) == 0) {
			free(w->roots[i].path);
			continue;
		}
		w->roots[o++] = w->roots[i];
	}
	w->nroots = o;
	drop_unused_marks(w);
}

static void
fanotify_show_progress(struct watcher_impl *w, int on)
{
	(void)w;
	(void)on;          /* nothing to crawl */
}

static void
fanotify_set_config(struct watcher_impl *w, const struct config *cfg)
{
	w->cfg = cfg;
	cache_clear(w);          /* the excluded flags follow the excludes */
}

static int
fanotify_fd(const struct watcher_impl *w)
{
	return w->fd;
}

static unsigned long
fanotify_watches(const struct watcher_impl *w)
{
	return w->nmarks;
}

/* ---- the hand-over across a re-exec (watcher_save) ---- */

#define FANOTIFY_STATE_VERSION 1

static void
put_key(struct statebuf *b, const struct fkey *k)
{
	statebuf_put_u32(b, (uint32_t)k->fsid[0]);
	statebuf_put_u32(b, (uint32_t)k->fsid[1]);
	statebuf_put_u32(b, (uint32_t)k->type);
	statebuf_put_u32(b, k->len);
	statebuf_put_bytes(b, k->h, k->len);
}

static int
get_key(struct statebuf *b, struct fkey *k)
{
	const void *h;

	k->fsid[0] = (int)statebuf_get_u32(b);
	k->fsid[1] = (int)statebuf_get_u32(b);
	k->type = (int)statebuf_get_u32(b);
	k->len = statebuf_get_u32(b);
	if (statebuf_status(b) < 0)
		return -1;
	if (k->len > HANDLE_MAX)
		return statebuf_bad(b, "file handle too long");
	if ((h = statebuf_get_bytes(b, k->len)) == NULL)
		return -1;
	memcpy(k->h, h, k->len);
	return 0;
}

/* Writes what the next process needs to read the queued events as this one
 * would: the marks (the kernel keeps them with the descriptor; their mount
 * descriptors are opened again), the roots and their handles (a root's
 * deletion still queued names the old one), the handle cache (the paths are
 * those of the events read so far, as are the events still queued), the
 * events kept back in directories not found yet and the gone handles. */
static void
fanotify_save(struct watcher_impl *w, struct statebuf *b)
{
	struct centry *e;
	size_t i, n;

	statebuf_put_u32(b, FANOTIFY_STATE_VERSION);
	statebuf_put_u32(b, (uint32_t)w->target_fid);
	statebuf_put_u64(b, w->nmarks);
	for (i = 0; i < w->nmarks; i++) {
		statebuf_put_u32(b, (uint32_t)w->marks[i].fsid[0]);
		statebuf_put_u32(b, (uint32_t)w->marks[i].fsid[1]);
		statebuf_put_u64(b, (uint64_t)w->marks[i].dev);
	}
	statebuf_put_u64(b, w->nroots);
	for (i = 0; i < w->nroots; i++) {
		statebuf_put_str(b, w->roots[i].path);
		statebuf_put_u32(b, (uint32_t)w->roots[i].watched);
		put_key(b, &w->roots[i].key);
	}
	/* least recently used first: put back in this order, the order holds */
	statebuf_put_u64(b, w->ncache);
	for (e = w->lru_tail; e != NULL; e = e->prev) {
		struct fkey k;

		centry_key(e, &k);
		put_key(b, &k);
		statebuf_put_u32(b, (uint32_t)e->learnt);
		statebuf_put_str(b, e->path);
	}
	statebuf_put_u64(b, w->nstale);
	for (i = 0; i < w->nstale; i++) {
		const struct stale *st = &w->stale[i];

		put_key(b, &st->key);
		statebuf_put_i64(b, (int64_t)st->since);
		statebuf_put_u64(b, st->mask);
		statebuf_put_u32(b, (uint32_t)st->has_target);
		statebuf_put_u32(b, (uint32_t)st->truncated);
		put_key(b, &st->target);
		statebuf_put_str(b, st->name);
	}
	n = w->nunknown < MAX_UNKNOWN ? w->nunknown : MAX_UNKNOWN;
	statebuf_put_u64(b, n);
	for (i = 0; i < n; i++)
		put_key(b, &w->unknown[i]);
}

/* A mark handed over: the kernel still has it; its descriptor for
 * open_by_handle_at() is opened again (a root on it, or a mount of it). */
static void
adopt_mark(struct watcher_impl *w, const int fsid[2], dev_t dev)
{
	const char *path = NULL;
	struct fsmark m, *nm;
	size_t i;

	for (i = 0; i < w->nroots && path == NULL; i++)
		if (w->roots[i].watched && w->roots[i].key.fsid[0] == fsid[0] &&
		    w->roots[i].key.fsid[1] == fsid[1])
			path = w->roots[i].path;
	for (i = 0; i < w->mounts.n && path == NULL; i++)
		if (makedev(w->mounts.v[i].major, w->mounts.v[i].minor) == dev)
			path = w->mounts.v[i].point;
	memset(&m, 0, sizeof m);
	if (path == NULL || (m.mount_fd = mount_descriptor(w, path, dev, &m)) < 0 ||
	    (nm = realloc(w->marks, (w->nmarks + 1) * sizeof *nm)) == NULL) {
		if (path != NULL && m.mount_fd >= 0) {
			close(m.mount_fd);
			free(m.fsroot);
		}
		log_warning("a file system marked before the hand-over cannot be reached now "
		    "(device %u:%u): recording a rescan of the roots on it", major(dev), minor(dev));
		rescan_roots(w, fsid, "file system not reachable after the hand-over");
		return;
	}
	w->marks = nm;
	m.fsid[0] = fsid[0];
	m.fsid[1] = fsid[1];
	m.dev = dev;
	nm[w->nmarks++] = m;
}

/* Reads what fanotify_save() wrote into w. Returns 0, or -1 (b failed). */
static int
fanotify_load(struct watcher_impl *w, struct statebuf *b)
{
	uint64_t nmarks, n, i;
	struct {
		int fsid[2];
		dev_t dev;
	} *marks = NULL;

	if (statebuf_get_u32(b) != FANOTIFY_STATE_VERSION)
		return statebuf_bad(b, "fanotify state of another format");
	w->target_fid = (int)statebuf_get_u32(b);
	nmarks = statebuf_get_u64(b);
	if (statebuf_status(b) < 0 || nmarks > 65536 ||
	    (marks = calloc(nmarks + 1, sizeof *marks)) == NULL)
		return statebuf_bad(b, "fanotify marks");
	for (i = 0; i < nmarks; i++) {
		marks[i].fsid[0] = (int)statebuf_get_u32(b);
		marks[i].fsid[1] = (int)statebuf_get_u32(b);
		marks[i].dev = (dev_t)statebuf_get_u64(b);
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n != w->cfg->nroots)
		statebuf_bad(b, "fanotify state of other roots");
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		const char *p = statebuf_get_str(b);
		int watched = (int)statebuf_get_u32(b);
		struct froot *r;
		int ri;

		if (p == NULL)
			break;
		ri = config_root_of(w->cfg, p);
		if (ri < 0 || strcmp(w->cfg->roots[ri], p) != 0) {
			statebuf_bad(b, "fanotify state of other roots");
			break;
		}
		if ((r = root_push(w, p)) == NULL) {
			statebuf_bad(b, "out of memory");
			break;
		}
		if (get_key(b, &r->key) < 0)
			break;
		r->watched = watched != 0;
	}
	if (statebuf_status(b) < 0) {
		free(marks);
		return -1;
	}
	read_mounts(w);
	for (i = 0; i < nmarks; i++)
		adopt_mark(w, marks[i].fsid, marks[i].dev);
	free(marks);
	n = statebuf_get_u64(b);
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		struct fkey k;
		int learnt;
		const char *p;

		if (get_key(b, &k) < 0)
			break;
		learnt = (int)statebuf_get_u32(b);
		if ((p = statebuf_get_str(b)) == NULL)
			break;
		if (cache_put(w, &k, p, learnt) == NULL)
			statebuf_bad(b, "out of memory");
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n > MAX_STALE)
		statebuf_bad(b, "too many events kept back");
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		struct stale *st = &w->stale[i];
		const char *name;

		memset(st, 0, sizeof *st);
		get_key(b, &st->key);
		st->since = (time_t)statebuf_get_i64(b);
		st->mask = statebuf_get_u64(b);
		st->has_target = (int)statebuf_get_u32(b);
		st->truncated = (int)statebuf_get_u32(b);
		get_key(b, &st->target);
		if ((name = statebuf_get_str(b)) == NULL)
			break;
		if (strlen(name) > NAME_MAX) {
			statebuf_bad(b, "name too long");
			break;
		}
		strcpy(st->name, name);
		/* read_seq 0: kept until a read of this process empties the queue */
		st->read_seq = 0;
		w->stale_hash[w->nstale] = key_hash(&st->key);
		w->nstale++;
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n > MAX_UNKNOWN)
		statebuf_bad(b, "too many gone handles");
	for (i = 0; i < n && statebuf_status(b) == 0; i++)
		if (get_key(b, &w->unknown[w->nunknown]) == 0)
			w->nunknown++;
	return statebuf_status(b);
}

/* A backend on the descriptor handed over: its marks are the kernel's
 * already, nothing is marked again. */
static struct watcher_impl *
fanotify_adopt(const struct config *cfg, struct watch_core *core, int fd, struct statebuf *b,
    struct chj_error *e)
{
	struct watcher_impl *w = fanotify_alloc(cfg, core, e);

	if (w == NULL)
		return NULL;
	if (fanotify_load(w, b) < 0) {
		*e = b->err;
		fanotify_free(w);
		return NULL;
	}
	w->fd = fd;
	log_info("fanotify state handed over: %zu file systems marked, %zu directories named, "
	    "%zu events kept back", w->nmarks, w->ncache, w->nstale);
	return w;
}

const struct watcher_ops watcher_fanotify_ops = {
	.name = "fanotify",
	.watch_unit = "file systems marked",
	.queue_sysctl = "fs.fanotify.max_queued_events",
	.open = fanotify_new,
	.close = fanotify_free,
	.watch = fanotify_watch,
	.unwatch = fanotify_unwatch,
	.resync = fanotify_resync,
	.fd = fanotify_fd,
	.read = fanotify_read,
	.idle = fanotify_idle,
	.watches = fanotify_watches,
	.set_config = fanotify_set_config,
	.show_progress = fanotify_show_progress,
	.save = fanotify_save,
	.adopt = fanotify_adopt,
};
