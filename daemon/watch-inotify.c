/* watch-inotify.c: the inotify backend of the watcher core (watch.c). It
 * watches directories and delivers their events to the core
 * (watch-backend.h); what an overflow, an unwatchable directory or a sync
 * cookie means is decided there.
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
 * limit for the watch-limit message.
 *
 * Lean: the table of watched directories is one array of 32-byte nodes
 * linked by 32-bit indexes (wd -> parent + name), the names in one arena,
 * two hash tables of 32-bit heads: about 45 bytes per directory, no malloc
 * per directory. The crawl of a root runs in bounded slices from the main
 * loop (watcher_step), so events are read and journaled while it runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <inotifytools/inotifytools.h>

#include "array.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "longpath.h"
#include "path.h"
#include "progress.h"
#include "statebuf.h"
#include "watch.h"
#include "watch-backend.h"

/* watch.c owns the name struct watcher (the dispatch handle): this backend's
 * handle is the struct watcher_impl of watch-backend.h */
#define watcher watcher_impl

#define WATCH_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | \
	IN_DONT_FOLLOW)
/* Not IN_EXCL_UNLINK: an O_TMPFILE file is an unlinked child of the directory
 * it was made in, and a write through its descriptor after it was linked in
 * elsewhere is only heard (as "#INODE") without it. Writes to a file deleted
 * while open are journaled under its old name, gone when listed: nothing. */
#define READ_BUFFER_SIZE (256 * 1024)
#define MAX_READS_PER_CALL 64        /* then return so flushes and signals run */
#define MOVE_PAIR_WAIT_MS 20         /* wait for the MOVED_TO of a MOVED_FROM */
#define MAX_STASHED_MOVES 256
#define NODE_MAX_DEPTH 65536         /* deeper than any real path: a cycle */
#define CRAWL_SLICE_DIRS 512         /* directories per watcher_step() ... */
#define CRAWL_SLICE_NS 20000000L     /* ... or 20 ms, whichever comes first */
#define NAME_ARENA_MIN_COMPACT (256 * 1024)
#define BACKLOG_LOG_EVENTS 100000    /* a call that read more logs its rate */

#define NIL UINT32_MAX               /* no node */
#define UNLINKED (UINT32_MAX - 1)    /* name_chain of a node off its name */

/* One watched directory, 32 bytes. Its path is its parent's path plus its
 * name, so a renamed directory's whole subtree is right after one update.
 * A free slot has wd -1 and is on the free list through next. */
struct wnode {
	int32_t wd;
	uint32_t parent;                     /* NIL: a root */
	uint32_t name;                       /* offset in the name arena; root: full path */
	uint32_t child, next, prev;          /* children of parent */
	uint32_t wd_chain;
	uint32_t name_chain;                 /* UNLINKED: not in the name table */
};

/* A directory still to be watched and read by the crawl: its parent node
 * (checked by wd, as the node may be gone by then) and its name. */
struct crawl_item {
	uint32_t parent;                     /* NIL: path is a full path */
	int32_t parent_wd;
	uint32_t name;                       /* offset in the crawl name buffer */
	int32_t root;                        /* >= 0: the root this item starts */
};

struct stashed_move {
	uint32_t cookie;
	uint32_t node;                       /* NIL: directory was not watched */
};

struct watcher {
	const struct config *cfg;
	struct watch_core *core;
	int fd;
	/* the node table */
	struct wnode *nodes;
	uint32_t nused, ncap, free_head;
	size_t nnodes;                       /* live nodes */
	uint32_t *wd_tab, *name_tab;         /* heads of the hash chains */
	size_t tab_size;
	char *names;                         /* NUL-terminated names */
	size_t names_len, names_cap, names_dead;
	uint8_t *seen;                       /* during a re-crawl: nodes met */
	uint32_t seen_n;                     /* nodes below this index are marked */
	/* the crawl: a stack, so it runs depth first and stays small */
	struct crawl_item *cq;
	size_t ncq, cqcap;
	char *cq_names;
	size_t cq_names_len, cq_names_cap;
	int crawl_async;                     /* root crawls are being stepped */
	/* roots */
	uint32_t *roots;                     /* parallel to root_paths; NIL: lost */
	char **root_paths;
	size_t nroots;
	struct stashed_move stash[MAX_STASHED_MOVES];
	size_t nstash;
	uint32_t displaced;                  /* pushed off its name by a MOVED_TO (exchange) */
	char **unmounted;                    /* paths of watches on file systems unmounted, */
	size_t nunmounted, capunmounted;     /* ... in the read under way */
	const char *resync_reason;           /* table out of step with the file system */
	int limit_at_failure;                /* max_user_watches when we last hit it */
	unsigned long nodes_at_failure;
	time_t last_limit_log;
	int show_progress;                   /* stderr is a terminal: crawl progress */
	struct progress progress;
	long test_delay_ms;                  /* CHJ_TEST_CRAWL_DELAY_MS (tests only) */
	const char *test_hold;               /* CHJ_TEST_CRAWL_HOLD (tests only) */
	char *pathbuf;
	size_t pathcap;
	uint32_t pc_node;                    /* pathbuf starts with this node's path */
	size_t pc_len;                       /* ... of this length */
	char *readbuf;
	dev_t leaf_dev;                      /* the last file system asked about */
	int leaf_dev_ok;                     /* its st_nlink counts subdirectories */
	int leaf_dev_known;
	unsigned long leaves_skipped;        /* directories not read: no subdirectory */
};

static void inotify_free(struct watcher *w);

#define NODE(w, i) (&(w)->nodes[(i)])
#define NAME(w, i) ((w)->names + (w)->nodes[(i)].name)

/* ---- node table ---- */

static size_t
hash_wd(int wd, size_t size)
{
	return ((size_t)(unsigned)wd * 2654435761u) & (size - 1);
}

static size_t
hash_name(uint32_t parent, const char *name, size_t size)
{
	uint64_t h = ((uint64_t)parent + 1) * 11400714819323198485ull;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (size - 1);
}

static uint32_t
node_by_wd(struct watcher *w, int wd)
{
	uint32_t i;

	for (i = w->wd_tab[hash_wd(wd, w->tab_size)]; i != NIL; i = NODE(w, i)->wd_chain)
		if (NODE(w, i)->wd == wd)
			return i;
	return NIL;
}

static uint32_t
node_child(struct watcher *w, uint32_t parent, const char *name)
{
	uint32_t i;

	for (i = w->name_tab[hash_name(parent, name, w->tab_size)]; i != NIL;
	    i = NODE(w, i)->name_chain)
		if (NODE(w, i)->parent == parent && strcmp(NAME(w, i), name) == 0)
			return i;
	return NIL;
}

static int
node_live(struct watcher *w, uint32_t i)
{
	return i < w->nused && NODE(w, i)->wd >= 0;
}

static void
name_unlink(struct watcher *w, uint32_t i)
{
	struct wnode *n = NODE(w, i);
	uint32_t *pp;

	if (n->name_chain == UNLINKED)
		return;
	for (pp = &w->name_tab[hash_name(n->parent, NAME(w, i), w->tab_size)]; *pp != NIL;
	    pp = &NODE(w, *pp)->name_chain) {
		if (*pp == i) {
			*pp = n->name_chain;
			break;
		}
	}
	n->name_chain = UNLINKED;
	if (n->parent != NIL) {
		if (n->prev != NIL)
			NODE(w, n->prev)->next = n->next;
		else
			NODE(w, n->parent)->child = n->next;
		if (n->next != NIL)
			NODE(w, n->next)->prev = n->prev;
	}
	n->next = n->prev = NIL;
}

static void
name_link(struct watcher *w, uint32_t i)
{
	struct wnode *n = NODE(w, i);
	size_t h = hash_name(n->parent, NAME(w, i), w->tab_size);

	n->name_chain = w->name_tab[h];
	w->name_tab[h] = i;
	if (n->parent != NIL) {
		n->next = NODE(w, n->parent)->child;
		n->prev = NIL;
		if (n->next != NIL)
			NODE(w, n->next)->prev = i;
		NODE(w, n->parent)->child = i;
	}
}

/* Rebuilds both hash tables at size ns (a power of two). */
static int
tables_resize(struct watcher *w, size_t ns)
{
	uint32_t *nw = malloc(ns * sizeof *nw), *nn = malloc(ns * sizeof *nn), i;

	if (nw == NULL || nn == NULL) {
		free(nw);
		free(nn);
		return -1;
	}
	memset(nw, 0xff, ns * sizeof *nw);
	memset(nn, 0xff, ns * sizeof *nn);
	for (i = 0; i < w->nused; i++) {
		struct wnode *n = NODE(w, i);
		size_t h;

		if (n->wd < 0)
			continue;
		h = hash_wd(n->wd, ns);
		n->wd_chain = nw[h];
		nw[h] = i;
		if (n->name_chain != UNLINKED) {
			h = hash_name(n->parent, NAME(w, i), ns);
			n->name_chain = nn[h];
			nn[h] = i;
		}
	}
	free(w->wd_tab);
	free(w->name_tab);
	w->wd_tab = nw;
	w->name_tab = nn;
	w->tab_size = ns;
	return 0;
}

/* Copies the live names into a fresh arena when most of it is dead. */
static void
names_compact(struct watcher *w)
{
	char *nb;
	size_t o = 0, cap = w->names_len - w->names_dead + 1;
	uint32_t i;

	if (w->names_dead < NAME_ARENA_MIN_COMPACT || w->names_dead < w->names_len / 2)
		return;
	if ((nb = malloc(cap)) == NULL)
		return;                   /* stays as it is: only wasteful */
	for (i = 0; i < w->nused; i++) {
		struct wnode *n = NODE(w, i);
		size_t l;

		if (n->wd < 0)
			continue;
		l = strlen(w->names + n->name) + 1;
		memcpy(nb + o, w->names + n->name, l);
		n->name = (uint32_t)o;
		o += l;
	}
	free(w->names);
	w->names = nb;
	w->names_len = o;
	w->names_cap = cap;
	w->names_dead = 0;
}

/* Appends name to the arena. Returns its offset, or NIL on ENOMEM. */
static uint32_t
names_add(struct watcher *w, const char *name)
{
	size_t l = strlen(name) + 1;
	uint32_t off;

	if (w->names_len + l > w->names_cap) {
		size_t nc = w->names_cap ? w->names_cap + w->names_cap / 2 : 4096;
		char *nb;

		while (nc < w->names_len + l)
			nc *= 2;
		if (nc >= NIL || (nb = realloc(w->names, nc)) == NULL)
			return NIL;
		w->names = nb;
		w->names_cap = nc;
	}
	off = (uint32_t)w->names_len;
	memcpy(w->names + off, name, l);
	w->names_len += l;
	return off;
}

/* A free slot in the node array. Returns its index, or NIL on ENOMEM. */
static uint32_t
node_alloc(struct watcher *w)
{
	uint32_t i;

	if (w->free_head != NIL) {
		i = w->free_head;
		w->free_head = NODE(w, i)->next;
		return i;
	}
	if (w->nused == w->ncap) {
		size_t nc = w->ncap ? (size_t)w->ncap + w->ncap / 2 : 1024;
		struct wnode *nn;

		if (nc >= UNLINKED || (nn = realloc(w->nodes, nc * sizeof *nn)) == NULL)
			return NIL;
		w->nodes = nn;
		w->ncap = (uint32_t)nc;
	}
	return w->nused++;
}

static uint32_t
node_new(struct watcher *w, int wd, uint32_t parent, const char *name)
{
	uint32_t i, off;
	struct wnode *n;
	size_t h;

	if (w->nnodes + 1 > w->tab_size * 2 && tables_resize(w, w->tab_size * 2) < 0)
		return NIL;
	if ((off = names_add(w, name)) == NIL || (i = node_alloc(w)) == NIL)
		return NIL;
	n = NODE(w, i);
	n->wd = wd;
	n->parent = parent;
	n->name = off;
	n->child = n->next = n->prev = NIL;
	h = hash_wd(wd, w->tab_size);
	n->wd_chain = w->wd_tab[h];
	w->wd_tab[h] = i;
	name_link(w, i);
	w->nnodes++;
	return i;
}

/* Moves node i under parent with a new name (a rename seen, or a re-crawl).
 * Returns 0, -1 on ENOMEM, -2 when that would make a cycle. */
static int
node_relocate(struct watcher *w, uint32_t i, uint32_t parent, const char *name)
{
	uint32_t other, m, off;

	if (NODE(w, i)->parent == parent && strcmp(NAME(w, i), name) == 0)
		return 0;
	w->pc_node = NIL;
	/* events read late can describe a move under the node's own subtree
	 * (the table lags the file system): refuse the cycle, re-sync instead */
	for (m = parent; m != NIL; m = NODE(w, m)->parent) {
		if (m == i) {
			w->resync_reason = "directory moves seen out of order";
			return -2;
		}
	}
	/* a directory already at the target name is being replaced (then its
	 * IN_IGNORED follows) or exchanged (then its MOVED_FROM follows): take
	 * it off the name so lookups find the one moved here */
	other = node_child(w, parent, name);
	if (other != NIL && other != i) {
		name_unlink(w, other);
		w->displaced = other;
	}
	name_unlink(w, i);
	if ((off = names_add(w, name)) == NIL) {
		name_link(w, i);
		return -1;
	}
	w->names_dead += strlen(NAME(w, i)) + 1;
	NODE(w, i)->name = off;
	NODE(w, i)->parent = parent;
	name_link(w, i);
	return 0;
}

/* Removes node i and everything below it from the table; with rm, also
 * from the kernel. */
static void
node_remove(struct watcher *w, uint32_t i, int rm)
{
	struct wnode *n;
	uint32_t *pp;
	size_t k;

	while (NODE(w, i)->child != NIL)
		node_remove(w, NODE(w, i)->child, rm);
	w->pc_node = NIL;
	n = NODE(w, i);
	if (rm)
		inotify_rm_watch(w->fd, n->wd);
	name_unlink(w, i);
	for (pp = &w->wd_tab[hash_wd(n->wd, w->tab_size)]; *pp != NIL;
	    pp = &NODE(w, *pp)->wd_chain) {
		if (*pp == i) {
			*pp = n->wd_chain;
			break;
		}
	}
	for (k = 0; k < w->nstash; k++)
		if (w->stash[k].node == i)
			w->stash[k].node = NIL;
	for (k = 0; k < w->nroots; k++)
		if (w->roots[k] == i)
			w->roots[k] = NIL;
	if (w->displaced == i)
		w->displaced = NIL;
	w->names_dead += strlen(NAME(w, i)) + 1;
	n->wd = -1;
	n->next = w->free_head;
	w->free_head = i;
	w->nnodes--;
	names_compact(w);
}

/* Builds node i's full path into *buf. Returns the path or NULL on ENOMEM
 * or a cycle. */
static const char *
node_path_into(struct watcher *w, uint32_t i, char **buf, size_t *cap)
{
	size_t len = 0, o, depth = 0;
	uint32_t m;

	for (m = i; m != NIL; m = NODE(w, m)->parent) {
		len += strlen(NAME(w, m)) + 1;
		if (++depth > NODE_MAX_DEPTH)
			return NULL;       /* a cycle: the caller re-syncs */
	}
	if (len + NAME_MAX + 2 > *cap) {
		size_t nc = len + NAME_MAX + 256;
		char *nb = realloc(*buf, nc);

		if (nb == NULL)
			return NULL;
		*buf = nb;
		*cap = nc;
	}
	o = len - 1;
	(*buf)[o] = '\0';
	for (m = i; m != NIL; m = NODE(w, m)->parent) {
		size_t l = strlen(NAME(w, m));

		o -= l;
		memcpy(*buf + o, NAME(w, m), l);
		if (NODE(w, m)->parent != NIL)
			(*buf)[--o] = '/';
	}
	return *buf + o;
}

static const char *
node_path(struct watcher *w, uint32_t i)
{
	const char *p;

	w->pc_node = NIL;
	p = node_path_into(w, i, &w->pathbuf, &w->pathcap);

	if (p == NULL && w->resync_reason == NULL)
		w->resync_reason = "watch table inconsistent";
	return p;
}

/* Finds the node of an absolute path by walking down from its root. */
static uint32_t
node_find(struct watcher *w, const char *path)
{
	size_t i;

	for (i = 0; i < w->nroots; i++) {
		uint32_t n = w->roots[i];
		const char *p;
		char comp[NAME_MAX + 1];

		if (n == NIL || !path_is_under(path, w->root_paths[i]))
			continue;
		p = path + strlen(w->root_paths[i]);
		while (*p == '/') {
			const char *e = strchr(p + 1, '/');
			size_t l = e ? (size_t)(e - p - 1) : strlen(p + 1);

			if (l == 0 || l > NAME_MAX)
				return NIL;
			memcpy(comp, p + 1, l);
			comp[l] = '\0';
			if ((n = node_child(w, n, comp)) == NIL)
				return NIL;
			p += l + 1;
		}
		return n;
	}
	return NIL;
}

/* User-space bytes the table holds for its nodes (the parts in use). */
static size_t
table_bytes(const struct watcher *w)
{
	return (size_t)w->nused * sizeof(struct wnode) + 2 * w->tab_size * sizeof(uint32_t) +
	    w->names_len;
}

/* ---- directories that cannot be watched (watch limit, permissions) ---- */

#define report_change(w, path, flags) watch_core_change((w)->core, (path), (flags))

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
watch_failed(struct watcher *w, const char *path, int err)
{
	time_t now = time(NULL);

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
	watch_core_lost(w->core, path, "directory not watched", err);
}

/* Returns 1 when the watch limit was reached and nothing since suggests a
 * new watch would be taken (the limit is the same, we hold no fewer). */
static int
at_watch_limit(const struct watcher *w)
{
	return w->limit_at_failure != 0 && w->nnodes >= w->nodes_at_failure &&
	    inotifytools_get_max_user_watches() == w->limit_at_failure;
}

/* ---- crawl: watch a directory and everything below it ---- */

/* Queues the directory name below parent (NIL: name is a full path). */
static int
cq_push(struct watcher *w, uint32_t parent, const char *name, int root)
{
	size_t l = strlen(name) + 1;
	struct crawl_item *it, *ni;
	char *nb;

	if ((ni = array_grow(w->cq, w->ncq, &w->cqcap, sizeof *ni, 256)) == NULL)
		return -1;
	w->cq = ni;
	if ((nb = array_reserve(w->cq_names, w->cq_names_len + l, &w->cq_names_cap, 1, 4096)) == NULL)
		return -1;
	w->cq_names = nb;
	it = &w->cq[w->ncq++];
	it->parent = parent;
	it->parent_wd = parent != NIL ? NODE(w, parent)->wd : -1;
	it->name = (uint32_t)w->cq_names_len;
	it->root = root;
	memcpy(w->cq_names + w->cq_names_len, name, l);
	w->cq_names_len += l;
	return 0;
}

static void
crawl_progress(struct watcher *w)
{
	char line[256];

	if (!w->crawl_async || !w->show_progress)
		return;
	w->progress.done++;
	if (progress_format(&w->progress, 0, line, sizeof line))
		fprintf(stderr, "\r%s\033[K", line);
}

/* Returns 1 when the directory at path has no subdirectory, known from its link
 * count alone: 2 ("." and its entry in the parent) on a file system whose
 * st_nlink counts subdirectories. Like GNU find's leaf optimisation, but
 * only on file systems known to keep the count exact (ext2/3/4 set it to 1
 * past 65000 subdirectories, never to 2; btrfs always reports 1; NFS, CIFS
 * and FUSE may not count at all). The directory is watched first, so a
 * subdirectory made after this look is an event. */
static int
dir_is_leaf(struct watcher *w, const char *path, int fd)
{
	struct statfs sfs;
	struct stat st;

	if ((fd >= 0 ? fstat(fd, &st) : lstat(path, &st)) < 0 || st.st_nlink != 2 ||
	    !S_ISDIR(st.st_mode))
		return 0;
	if (!w->leaf_dev_known || st.st_dev != w->leaf_dev) {
		if ((fd >= 0 ? fstatfs(fd, &sfs) : statfs(path, &sfs)) < 0)
			return 0;
		w->leaf_dev = st.st_dev;
		w->leaf_dev_known = 1;
		w->leaf_dev_ok = sfs.f_type == EXT4_SUPER_MAGIC ||  /* also ext2, ext3 */
		    sfs.f_type == XFS_SUPER_MAGIC || sfs.f_type == TMPFS_MAGIC;
	}
	return w->leaf_dev_ok;
}

/* Queues the subdirectories of node i, the directory at path; fd is a
 * descriptor of it (taken: closed here), or -1 to open it by path. */
static void
crawl_read(struct watcher *w, uint32_t i, const char *path, int fd)
{
	int in_root = NODE(w, i)->parent == NIL;
	struct dirent *de;
	DIR *d;

	if (dir_is_leaf(w, path, fd)) {
		w->leaves_skipped++;
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			watch_failed(w, path, errno);
		return;
	}
	if ((d = fdopendir(fd)) == NULL) {
		watch_failed(w, path, errno);
		close(fd);
		return;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		unsigned char type = de->d_type;

		if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
			continue;
		if (in_root && path_is_cookie_name(name))
			continue;      /* a sync cookie: only directly in a root */
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode))
				type = DT_DIR;
		}
		if (type == DT_DIR && cq_push(w, i, name, -1) < 0) {
			log_error("out of memory watching '%s'", path);
			watch_failed(w, path, ENOMEM);
			break;
		}
		errno = 0;
	}
	if (de == NULL && errno != 0 && errno != ENOENT)
		watch_failed(w, path, errno);
	closedir(d);
}

/* Watches a directory whose path is PATH_MAX bytes or more, which
 * inotify_add_watch() refuses: opened in pieces (O_NOFOLLOW on its own
 * name), then watched through /proc/self/fd/N. Without IN_DONT_FOLLOW, which
 * would refuse that magic link: it can only lead to the directory opened.
 * Returns the wd and the descriptor in *fdp (for reading the directory), or
 * -1 with errno (ENOENT, ENOTDIR: not a directory there now). */
static int
watch_long(struct watcher *w, const char *path, int *fdp)
{
	char proc[48];
	int fd, wd, e;

	*fdp = -1;
	fd = longpath_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			errno = ENOTDIR;   /* a symlink: as IN_DONT_FOLLOW | IN_ONLYDIR */
		return -1;
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(w->fd, proc, WATCH_MASK & ~(uint32_t)IN_DONT_FOLLOW);
	if (wd < 0) {
		/* the directory is open: any failure (no /proc) is a refusal to
		 * report, never a directory gone */
		e = errno == ENOENT || errno == ENOTDIR ? ENAMETOOLONG : errno;
		close(fd);
		errno = e;
		return -1;
	}
	*fdp = fd;
	return wd;
}

/* Watches the directory of one crawl item and queues its subdirectories.
 * name is valid until the first push. Returns its node, or NIL when it was
 * not watched (gone, excluded, refused: refusals are covered by rescans). */
static uint32_t
crawl_one(struct watcher *w, const struct crawl_item *it, const char *name)
{
	char *path;
	uint32_t i;
	int wd, fd = -1;

	if (it->parent != NIL) {
		const char *dir;
		size_t dl, nl = strlen(name);

		if (!node_live(w, it->parent) || NODE(w, it->parent)->wd != it->parent_wd)
			return NIL;    /* its parent went away meanwhile */
		if ((dir = node_path(w, it->parent)) == NULL || nl > NAME_MAX)
			return NIL;
		path = w->pathbuf;
		dl = strlen(dir);
		path[dl] = '/';
		memcpy(path + dl + 1, name, nl + 1);
	} else {
		size_t l = strlen(name) + 1;

		if (l > w->pathcap) {
			char *nb = realloc(w->pathbuf, l + 256);

			if (nb == NULL)
				return NIL;
			w->pathbuf = nb;
			w->pathcap = l + 256;
		}
		w->pc_node = NIL;
		path = memcpy(w->pathbuf, name, l);
	}
	if (w->cfg != NULL && config_is_excluded(w->cfg, path))
		return NIL;
	crawl_progress(w);
	if (strlen(path) < PATH_MAX)
		wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	else
		wd = watch_long(w, path, &fd);
	if (wd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			watch_failed(w, path, errno);
		return NIL;
	}
	i = node_by_wd(w, wd);
	if (i != NIL) {
		size_t k;
		int r = node_relocate(w, i, it->parent, name);

		if (r == -2)
			goto unread;
		if (r < 0) {
			log_error("out of memory watching '%s'", path);
			goto unread;
		}
		/* a directory moved out and back in (two renames, two cookies): it
		 * is here now, so its stashed MOVED_FROM must not remove it */
		for (k = 0; k < w->nstash; k++)
			if (w->stash[k].node == i)
				w->stash[k].node = NIL;
	} else if ((i = node_new(w, wd, it->parent, name)) == NIL) {
		inotify_rm_watch(w->fd, wd);
		log_error("out of memory watching '%s'", path);
		goto unread;
	}
	if (w->seen != NULL && i < w->seen_n)
		w->seen[i / 8] |= (uint8_t)(1u << (i % 8));
	crawl_read(w, i, path, fd);
	return i;
unread:
	if (fd >= 0)
		close(fd);
	return NIL;
}

/* A root's own directory was crawled (node, or NIL: not watchable now). */
static void
root_crawled(struct watcher *w, int r, uint32_t node)
{
	w->roots[r] = node;
	/* a root that cannot be watched now (watch limit, vanished) stays
	 * configured: the core covers it and has it retried */
	if (node == NIL)
		watch_core_lost(w->core, w->root_paths[r], "directory not watched", 0);
}

static long long
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Pops and crawls items until the stack is down to base, or max items were
 * done, or (with deadline > 0) the monotonic clock passed deadline.
 * Returns the node of the first item crawled (NIL if none or unwatched). */
static uint32_t
crawl_run(struct watcher *w, size_t base, size_t max, long long deadline)
{
	uint32_t top = NIL;
	size_t done = 0;

	while (w->ncq > base && done < max) {
		struct crawl_item it = w->cq[--w->ncq];
		const char *name = w->cq_names + it.name;
		uint32_t n;

		/* keep this item's name; drop what was above it */
		w->cq_names_len = it.name + strlen(name) + 1;
		if (it.root == -2)
			continue;      /* its root was removed */
		n = crawl_one(w, &it, name);
		if (it.root >= 0)
			root_crawled(w, it.root, n);
		if (done++ == 0)
			top = n;
		if (deadline > 0 && done % 32 == 0 && mono_ns() > deadline)
			break;
	}
	if (w->ncq == 0)
		w->cq_names_len = 0;
	return top;
}

/* Watches path (whose parent node is parent, NIL for a root) and below, all
 * of it now. Returns the node of path, or NIL if it could not be watched. */
static uint32_t
crawl(struct watcher *w, uint32_t parent, const char *path)
{
	size_t base = w->ncq;
	const char *name = path, *slash;
	uint32_t top;

	if (parent != NIL && (slash = strrchr(path, '/')) != NULL)
		name = slash + 1;
	if (cq_push(w, parent, name, -1) < 0) {
		log_error("out of memory watching '%s'", path);
		watch_failed(w, path, ENOMEM);
		return NIL;
	}
	top = crawl_run(w, base, 1, 0);
	crawl_run(w, base, SIZE_MAX, 0);
	return top;
}

/* Re-crawls every root, then drops table entries the crawl did not meet
 * (directories whose IN_IGNORED was lost). A root crawl still being stepped
 * is done here too. */
static void
recrawl_all(struct watcher *w)
{
	size_t i;
	uint32_t k;

	w->ncq = 0;
	w->cq_names_len = 0;
	w->seen_n = w->nused;
	w->seen = calloc((size_t)w->seen_n / 8 + 1, 1);
	for (i = 0; i < w->nroots; i++) {
		uint32_t n = crawl(w, NIL, w->root_paths[i]);

		if (n != NIL)
			w->roots[i] = n;
	}
	if (w->seen == NULL) {
		log_error("out of memory re-crawling: stale watches stay until the next re-crawl");
	} else {
		for (k = 0; k < w->seen_n; k++)
			if (node_live(w, k) && !(w->seen[k / 8] & (1u << (k % 8))))
				node_remove(w, k, 1);
	}
	free(w->seen);
	w->seen = NULL;
	w->seen_n = 0;
}

/* ---- events ---- */

/* The core had a rescan of every root recorded (an overflow, the table out
 * of step with the file system): every root is crawled again (watches
 * relocated, missing ones added, stale ones dropped). */
static void
inotify_resync(struct watcher *w)
{
	w->nstash = 0;
	w->displaced = NIL;
	recrawl_all(w);
	w->resync_reason = NULL;
}

/* The table no longer matches the file system: the core starts again. */
static void
resync_if_out_of_step(struct watcher *w)
{
	if (w->resync_reason != NULL)
		watch_core_out_of_step(w->core, w->resync_reason);
}

/* A directory appeared at path in parent (created, or moved in). */
static void
new_directory(struct watcher *w, uint32_t parent, const char *path, unsigned flags)
{
	report_change(w, path, flags | JF_SUBTREE | JF_DIR);
	crawl(w, parent, path);
}

/* A MOVED_FROM of a directory never paired: it left the roots. */
static void
finish_stashed_moves(struct watcher *w)
{
	size_t i;

	for (i = 0; i < w->nstash; i++) {
		uint32_t n = w->stash[i].node;

		if (n != NIL) {
			log_debug("directory '%s' moved out of the roots", NAME(w, n));
			node_remove(w, n, 1);
		}
	}
	w->nstash = 0;
}

static void
stash_move(struct watcher *w, uint32_t cookie, uint32_t node)
{
	if (w->nstash == MAX_STASHED_MOVES)
		finish_stashed_moves(w);
	w->stash[w->nstash].cookie = cookie;
	w->stash[w->nstash].node = node;
	w->nstash++;
}

/* Takes the stashed MOVED_FROM with this cookie; returns 1 if there was one. */
static int
take_stash(struct watcher *w, uint32_t cookie, uint32_t *node)
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
root_lost(struct watcher *w, uint32_t n, const char *why)
{
	size_t i;

	for (i = 0; i < w->nroots; i++) {
		if (w->roots[i] != n)
			continue;
		log_error("root '%s' %s: its changes are covered by a rescan until it is back",
		    w->root_paths[i], why);
		node_remove(w, n, 1);
		watch_core_lost(w->core, w->root_paths[i], why, 0);
		return;
	}
}

/* The event's full path, built into the path buffer. NULL on ENOMEM.
 * Events come in runs per directory: its path stays in the buffer. */
static char *
event_path(struct watcher *w, uint32_t n, const char *name)
{
	size_t dl, nl = strlen(name);

	if (nl > NAME_MAX)
		return NULL;
	if (w->pc_node == n) {
		dl = w->pc_len;
	} else {
		const char *dir = node_path(w, n);

		if (dir == NULL)
			return NULL;
		dl = strlen(dir);
		w->pc_node = n;
		w->pc_len = dl;
	}
	w->pathbuf[dl] = '/';
	memcpy(w->pathbuf + dl + 1, name, nl + 1);
	return w->pathbuf;
}

/* Handles a directory's MOVED_TO (name in parent n, full path full). */
static void
dir_moved_to(struct watcher *w, uint32_t n, const char *name, const char *full,
    uint32_t cookie)
{
	uint32_t moved = NIL;

	if (take_stash(w, cookie, &moved) && moved != NIL &&
	    node_relocate(w, moved, n, name) == 0) {
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

/* Looks in the directory of full (an O_TMPFILE's "#INODE" name) for the
 * entries with inode number ino and journals them as written. Returns 1 when
 * one was found. */
static int
tmpfile_named_in_dir(struct watcher *w, const char *full, unsigned long long ino)
{
	struct dirent *de;
	char *dir = strdup(full), *p;
	int found = 0;
	DIR *d;

	if (dir == NULL)
		return 0;
	*strrchr(dir, '/') = '\0';
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if ((unsigned long long)de->d_ino != ino || de->d_name[0] == '#')
				continue;
			if ((p = path_join(dir, de->d_name)) != NULL) {
				report_change(w, p, JF_MODIFIED);
				free(p);
				found = 1;
			}
		}
		closedir(d);
	}
	free(dir);
	return found;
}

/* A write through an O_TMPFILE descriptor, linked into a directory since:
 * the kernel names its events "#INODE" in the directory it was made in, and
 * inotify carries no inode to find the real name. If no such name exists,
 * the root is rescanned from now (the written file's times are now).
 * Returns 1 when it was one. */
static int
tmpfile_write(struct watcher *w, const char *full, const char *name)
{
	struct stat st;
	size_t i;
	int r;

	if (name[0] != '#' || name[1] == '\0')
		return 0;
	for (i = 1; name[i] != '\0'; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	if (lstat(full, &st) == 0 || (r = root_index_of(w, full)) < 0)
		return 0;         /* a real file of that name */
	/* most often it was linked into the directory it was made in */
	if (tmpfile_named_in_dir(w, full, strtoull(name + 1, NULL, 10)))
		return 1;
	watch_core_rescan_since(w->core, w->root_paths[r], time(NULL) - WATCH_TIME_MARGIN,
	    "a write through an O_TMPFILE descriptor, the file's name unknown");
	return 1;
}

/* A watch on a file system being unmounted (every watch on it hears so,
 * then is dropped): its path is kept until the read ends, when the topmost
 * of them are known. A root's unmount is its loss (IN_IGNORED follows). */
static void
note_unmounted(struct watcher *w, uint32_t n)
{
	const char *p;
	char **nv;

	if (NODE(w, n)->parent == NIL || (p = node_path(w, n)) == NULL)
		return;
	if ((nv = array_grow(w->unmounted, w->nunmounted, &w->capunmounted, sizeof *nv, 8)) == NULL ||
	    (nv[w->nunmounted] = strdup(p)) == NULL) {
		w->unmounted = nv ? nv : w->unmounted;
		watch_core_rescan(w->core, p, "file system unmounted");
		return;
	}
	w->unmounted = nv;
	w->nunmounted++;
}

/* The topmost paths of the watches that heard their file system unmounted
 * show what was below the mount now (even where a directory above was
 * renamed since the mount table was read, which the kernel does not
 * signal): each counts as replaced and is watched again. */
static void
finish_unmounted(struct watcher *w)
{
	size_t i, k;

	if (w->nunmounted == 0)
		return;
	w->nunmounted = array_sort_unique_strings(w->unmounted, w->nunmounted);
	for (i = 0; i < w->nunmounted; i++) {
		for (k = 0; k < i; k++)
			if (path_is_under(w->unmounted[i], w->unmounted[k]))
				break;
		if (k == i)
			watch_core_replaced(w->core, w->unmounted[i], "shows what its file system "
			    "covered: it was unmounted");
	}
	for (i = 0; i < w->nunmounted; i++)
		free(w->unmounted[i]);
	w->nunmounted = 0;
}

static void
handle_event(struct watcher *w, const struct inotify_event *ev)
{
	uint32_t n;
	char *full;
	unsigned isdir;

	if (ev->mask & IN_Q_OVERFLOW) {
		watch_core_overflow(w->core);
		return;
	}
	n = node_by_wd(w, ev->wd);
	if (n == NIL)
		return;        /* a watch we removed: its last events */
	if (log_enabled(CONFIG_LOG_DEBUG))
		log_debug("event %s wd %d name '%s'", inotifytools_event_to_str((int)ev->mask),
		    ev->wd, ev->len ? ev->name : "");
	if (ev->mask & IN_IGNORED) {
		if (NODE(w, n)->parent == NIL)
			root_lost(w, n, "is no longer watched");
		else
			node_remove(w, n, 0);
		return;
	}
	if (ev->mask & IN_UNMOUNT) {
		note_unmounted(w, n);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (NODE(w, n)->parent == NIL)
			root_lost(w, n, (ev->mask & IN_DELETE_SELF) ? "was deleted" : "was moved away");
		return;        /* other directories: their parent reports it */
	}
	if (ev->len == 0 || ev->name[0] == '\0')
		return;
	if ((full = event_path(w, n, ev->name)) == NULL) {
		log_error("out of memory handling an event in '%s'", NAME(w, n));
		return;
	}
	if (config_is_excluded(w->cfg, full))
		return;
	isdir = (ev->mask & IN_ISDIR) ? JF_DIR : 0;
	/* a directory event crawls, which reuses the path buffer: own a copy */
	if (isdir && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && (full = strdup(full)) == NULL) {
		log_error("out of memory handling an event in '%s'", NAME(w, n));
		return;
	}
	if (ev->mask & IN_CREATE) {
		if (isdir)
			new_directory(w, n, full, JF_CREATED);
		else
			report_change(w, full, JF_CREATED);
	}
	if ((ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) && !isdir && tmpfile_write(w, full, ev->name))
		;                 /* an O_TMPFILE's: covered by a rescan of its root */
	else if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE))
		report_change(w, full, JF_MODIFIED);
	if (ev->mask & IN_ATTRIB)
		report_change(w, full, JF_ATTRIB | isdir);
	if (ev->mask & IN_DELETE)
		report_change(w, full, JF_DELETED | isdir);
	if (ev->mask & IN_MOVED_FROM) {
		report_change(w, full, JF_DELETED | JF_MOVED_OUT | isdir);
		if (isdir) {
			uint32_t from = node_child(w, n, ev->name);

			if (w->displaced != NIL && NODE(w, w->displaced)->parent == n &&
			    strcmp(NAME(w, w->displaced), ev->name) == 0) {
				from = w->displaced;     /* the other half of an exchange */
				w->displaced = NIL;
			}
			stash_move(w, ev->cookie, from);
		}
	}
	if (ev->mask & IN_MOVED_TO) {
		if (!isdir)
			report_change(w, full, JF_RENAMED | JF_CREATED);
		else
			dir_moved_to(w, n, ev->name, full, ev->cookie);
	}
	if (isdir && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
		free(full);
}

/* Waits briefly for more events; returns 1 if some arrived. */
static int
wait_readable(struct watcher *w, int ms)
{
	struct pollfd pfd = { w->fd, POLLIN, 0 };

	return poll(&pfd, 1, ms) > 0;
}

/* A call that read a backlog logs its rate: the drain rate that decides
 * how long a burst can be without overflowing the kernel queue. */
static void
log_backlog(unsigned long events, long long t0)
{
	double s = (double)(mono_ns() - t0) / 1e9;

	if (events >= BACKLOG_LOG_EVENTS)
		log_info("inotify backlog: %lu events read and handled in %.3f s (%.0f/s)",
		    events, s, s > 0 ? (double)events / s : 0.0);
}

static int
inotify_read(struct watcher *w, struct watch_read *r, struct chj_error *e)
{
	int reads = 0, waited = 0;
	long long t0 = mono_ns();

	for (;;) {
		ssize_t n = read(w->fd, w->readbuf, READ_BUFFER_SIZE);
		char *p;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot read inotify events");
			if (w->nstash > 0 && !waited) {
				waited = 1;
				if (wait_readable(w, MOVE_PAIR_WAIT_MS))
					continue;
			}
			finish_stashed_moves(w);
			finish_unmounted(w);
			r->emptied = 1;
			log_backlog(r->events, t0);
			return 0;
		}
		for (p = w->readbuf; p < w->readbuf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			r->events++;
			handle_event(w, ev);
			resync_if_out_of_step(w);
			p += sizeof *ev + ev->len;
		}
		if (++reads >= MAX_READS_PER_CALL) {
			finish_unmounted(w);
			log_backlog(r->events, t0);
			return 0;
		}
	}
}

/* Polled idle: settled unless a directory's MOVED_FROM waits for its pair. */
static void
inotify_idle(struct watcher *w, struct watch_read *r)
{
	if (w->nstash > 0)
		r->emptied = 0;
}

/* ---- lifecycle ---- */

/* The handle, without its inotify descriptor (fd -1). NULL with e filled. */
static struct watcher *
inotify_alloc(const struct config *cfg, struct watch_core *core, struct chj_error *e)
{
	struct watcher *w = calloc(1, sizeof *w);

	if (w == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->core = core;
	w->fd = -1;
	w->free_head = NIL;
	w->displaced = NIL;
	w->pc_node = NIL;
	w->readbuf = malloc(READ_BUFFER_SIZE);
	w->pathcap = PATH_MAX + NAME_MAX + 2;
	w->pathbuf = malloc(w->pathcap);
	if (w->readbuf == NULL || w->pathbuf == NULL || tables_resize(w, 512) < 0) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		inotify_free(w);
		return NULL;
	}
	{
		/* a test hook, nothing to configure: crawl one directory per
		 * slice and sleep after it, so a test can act mid-crawl; with
		 * CHJ_TEST_CRAWL_HOLD=FILE too, the last queued directory waits
		 * while FILE exists, so the crawl is open until the test says */
		const char *env = getenv("CHJ_TEST_CRAWL_DELAY_MS");

		w->test_delay_ms = env != NULL ? strtol(env, NULL, 10) : 0;
		if (w->test_delay_ms < 0 || w->test_delay_ms > 10000)
			w->test_delay_ms = 0;
		w->test_hold = w->test_delay_ms > 0 ? getenv("CHJ_TEST_CRAWL_HOLD") : NULL;
	}
	return w;
}

static struct watcher *
inotify_new(const struct config *cfg, struct watch_core *core, struct chj_error *e)
{
	struct watcher *w = inotify_alloc(cfg, core, e);

	if (w == NULL)
		return NULL;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		if (errno == EMFILE) {
			/* the message says what to do rather than strerror(EMFILE) */
			chj_error_set(e, CHJ_ERR_SYS, 0, "cannot create an inotify instance: limit "
			    "reached (raise it with: sysctl -w fs.inotify.max_user_instances=%d)",
			    inotifytools_get_max_user_instances() * 2);
			e->errnum = EMFILE;
		} else {
			chj_error_set(e, CHJ_ERR_SYS, errno, "cannot create an inotify instance");
		}
		inotify_free(w);
		return NULL;
	}
	return w;
}

static void
inotify_free(struct watcher *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nroots; i++)
		free(w->root_paths[i]);
	free(w->roots);
	free(w->root_paths);
	if (w->fd >= 0)
		close(w->fd);
	free(w->nodes);
	free(w->names);
	free(w->wd_tab);
	free(w->name_tab);
	for (i = 0; i < w->nunmounted; i++)
		free(w->unmounted[i]);
	free(w->unmounted);
	free(w->cq);
	free(w->cq_names);
	free(w->pathbuf);
	free(w->readbuf);
	free(w);
}

static int
inotify_fd(const struct watcher *w)
{
	return w->fd;
}

static unsigned long
inotify_watches(const struct watcher *w)
{
	return w->nnodes;
}

static void
inotify_show_progress(struct watcher *w, int on)
{
	w->show_progress = on;
}

static void
inotify_set_config(struct watcher *w, const struct config *cfg)
{
	w->cfg = cfg;
}

/* A new root: the root itself is watched now (so sync cookies in it are
 * seen at once), what is below it in slices from the main loop
 * (watcher_step). Returns 1 when the root is watched, 0, -1 on ENOMEM. */
static int
add_root(struct watcher *w, const char *root)
{
	uint32_t *nr;
	char **np, *copy;

	nr = realloc(w->roots, (w->nroots + 1) * sizeof *nr);
	if (nr != NULL)
		w->roots = nr;
	np = realloc(w->root_paths, (w->nroots + 1) * sizeof *np);
	if (np != NULL)
		w->root_paths = np;
	copy = strdup(root);
	if (nr == NULL || np == NULL || copy == NULL || cq_push(w, NIL, root, (int)w->nroots) < 0) {
		free(copy);
		return -1;
	}
	w->roots[w->nroots] = NIL;
	w->root_paths[w->nroots] = copy;
	w->nroots++;
	if (!w->crawl_async) {
		w->crawl_async = 1;
		if (w->show_progress)
			progress_start(&w->progress, copy, "directories watched", 0);
	}
	crawl_run(w, w->ncq - 1, 1, 0);
	return w->roots[w->nroots - 1] != NIL;
}

/* Watches path as it is now, all of it at once: what was watched there (a
 * mount or an unmount changed what it shows) goes first. Returns 1 when
 * watched, else 0: reported lost, or nothing to watch (gone, or its parent
 * not watched, which covers it). */
static int
inotify_watch(struct watcher *w, const char *path, int is_root)
{
	int r = root_index_of(w, path);
	uint32_t n, parent = NIL;
	char *dir;

	if (is_root && (r < 0 || strcmp(path, w->root_paths[r]) != 0))
		return add_root(w, path);
	if (r < 0)
		return 0;
	if (at_watch_limit(w)) {
		watch_core_lost(w->core, path, "directory not watched", ENOSPC);
		return 0;
	}
	if ((n = node_find(w, path)) != NIL)
		node_remove(w, n, 1);
	if (!is_root) {
		if ((dir = strdup(path)) == NULL) {
			log_error("out of memory watching '%s' again", path);
			return -1;
		}
		*strrchr(dir, '/') = '\0';
		parent = node_find(w, dir);
		free(dir);
		if (parent == NIL)
			return 0;
	}
	n = crawl(w, parent, path);
	if (is_root) {
		w->roots[r] = n;
		if (n == NIL)
			watch_core_lost(w->core, path, "directory not watched", 0);
	}
	return n != NIL;
}

static int
inotify_busy(const struct watcher *w)
{
	return w->ncq > 0;
}

static void
inotify_step(struct watcher *w)
{
	if (w->ncq > 0 && w->test_delay_ms > 0) {
		/* tests: one directory per slice, slowly, to hold a crawl open */
		struct timespec ts = { w->test_delay_ms / 1000, (w->test_delay_ms % 1000) * 1000000L };

		if (w->ncq > 1 || w->test_hold == NULL || access(w->test_hold, F_OK) != 0)
			crawl_run(w, 0, 1, 0);
		nanosleep(&ts, NULL);
	} else if (w->ncq > 0) {
		crawl_run(w, 0, CRAWL_SLICE_DIRS, mono_ns() + CRAWL_SLICE_NS);
	}
	resync_if_out_of_step(w);
	if (w->ncq == 0 && w->crawl_async) {
		size_t b = table_bytes(w);

		w->crawl_async = 0;
		if (w->show_progress) {
			char line[256];

			progress_format(&w->progress, 1, line, sizeof line);
			fprintf(stderr, "\r%s\033[K\n", line);
		}
		log_info("watch table: %zu directories in %zu bytes (%.1f per directory); "
		    "%lu without subdirectories not read", w->nnodes, b,
		    w->nnodes ? (double)b / (double)w->nnodes : 0.0, w->leaves_skipped);
	}
}

static void
inotify_unwatch(struct watcher *w, const char *root)
{
	size_t i, o = 0, k;

	for (i = 0; i < w->nroots; i++) {
		if (strcmp(w->root_paths[i], root) == 0) {
			if (w->roots[i] != NIL)
				node_remove(w, w->roots[i], 1);
			if (w->progress.what == w->root_paths[i])
				w->progress.what = "watching";
			free(w->root_paths[i]);
			/* a root crawl still queued: drop it, renumber the others */
			for (k = 0; k < w->ncq; k++) {
				if (w->cq[k].root == (int)i)
					w->cq[k].root = -2;
				else if (w->cq[k].root > (int)i)
					w->cq[k].root--;
			}
			continue;
		}
		w->roots[o] = w->roots[i];
		w->root_paths[o] = w->root_paths[i];
		o++;
	}
	w->nroots = o;
}

/* ---- the hand-over across a re-exec (watcher_save) ---- */

#define INOTIFY_STATE_VERSION 1
#define NODE_RECORD_WORDS 7          /* wd, parent, name, child, next, prev, linked */

/* Writes the watch table as it is: the nodes by index (so the wds the
 * kernel still queues events for find their directory), the name arena,
 * the roots. A directory moved away whose pair was not read is let go
 * first, as a drain would. */
static void
inotify_save(struct watcher *w, struct statebuf *b)
{
	uint32_t i;
	size_t k;

	finish_stashed_moves(w);
	statebuf_put_u32(b, INOTIFY_STATE_VERSION);
	statebuf_put_u64(b, w->nroots);
	for (k = 0; k < w->nroots; k++) {
		statebuf_put_str(b, w->root_paths[k]);
		statebuf_put_u32(b, w->roots[k]);
	}
	statebuf_put_u32(b, w->nused);
	statebuf_put_u32(b, w->free_head);
	statebuf_put_u64(b, w->nnodes);
	statebuf_put_u32(b, w->displaced);
	for (i = 0; i < w->nused; i++) {
		const struct wnode *n = NODE(w, i);
		uint32_t rec[NODE_RECORD_WORDS] = { (uint32_t)n->wd, n->parent, n->name, n->child,
			n->next, n->prev, n->name_chain != UNLINKED };

		statebuf_put_bytes(b, rec, sizeof rec);
	}
	statebuf_put_u64(b, w->names_len);
	statebuf_put_u64(b, w->names_dead);
	statebuf_put_bytes(b, w->names, w->names_len);
	statebuf_put_u64(b, w->leaves_skipped);
}

/* A node index read back: NIL, or one below nused. */
static int
index_ok(uint32_t i, uint32_t nused)
{
	return i == NIL || i < nused;
}

/* Reads the table inotify_save() wrote into w (empty). Every index and
 * offset is checked, so a table that does not hold together is refused
 * rather than followed. Returns 0, or -1 (b failed). */
static int
inotify_load(struct watcher *w, struct statebuf *b)
{
	uint64_t nroots, nnodes, names_len, k;
	uint32_t nused, i, live = 0, nfree = 0;
	const char *names;
	size_t ts = 512;

	if (statebuf_get_u32(b) != INOTIFY_STATE_VERSION)
		return statebuf_bad(b, "inotify table of another format");
	nroots = statebuf_get_u64(b);
	if (nroots != w->cfg->nroots)
		return statebuf_bad(b, "inotify table of other roots");
	if ((w->roots = calloc(nroots + 1, sizeof *w->roots)) == NULL ||
	    (w->root_paths = calloc(nroots + 1, sizeof *w->root_paths)) == NULL)
		return statebuf_bad(b, "out of memory");
	for (k = 0; k < nroots; k++) {
		const char *p = statebuf_get_str(b);

		w->roots[k] = statebuf_get_u32(b);
		if (p == NULL || config_root_of(w->cfg, p) < 0 ||
		    strcmp(w->cfg->roots[config_root_of(w->cfg, p)], p) != 0)
			return statebuf_bad(b, "inotify table of other roots");
		if ((w->root_paths[k] = strdup(p)) == NULL)
			return statebuf_bad(b, "out of memory");
		w->nroots++;
	}
	nused = statebuf_get_u32(b);
	w->free_head = statebuf_get_u32(b);
	nnodes = statebuf_get_u64(b);
	w->displaced = statebuf_get_u32(b);
	if (statebuf_status(b) < 0)
		return -1;
	if (nused >= UNLINKED || nnodes > nused)
		return statebuf_bad(b, "inotify table size");
	w->ncap = nused > 1024 ? nused : 1024;
	if ((w->nodes = malloc((size_t)w->ncap * sizeof *w->nodes)) == NULL)
		return statebuf_bad(b, "out of memory");
	w->nused = nused;
	for (i = 0; i < nused; i++) {
		/* the record sits at any offset of the state: copied out, not
		 * read in place as uint32_t */
		const void *p = statebuf_get_bytes(b, NODE_RECORD_WORDS * sizeof(uint32_t));
		uint32_t rec[NODE_RECORD_WORDS];
		struct wnode *n = NODE(w, i);

		if (p == NULL)
			return -1;
		memcpy(rec, p, sizeof rec);
		n->wd = (int32_t)rec[0];
		n->parent = rec[1];
		n->name = rec[2];
		n->child = rec[3];
		n->next = rec[4];
		n->prev = rec[5];
		n->name_chain = rec[6] ? NIL : UNLINKED;
		n->wd_chain = NIL;
	}
	names_len = statebuf_get_u64(b);
	w->names_dead = (size_t)statebuf_get_u64(b);
	if (statebuf_status(b) < 0)
		return -1;
	if (names_len >= NIL || (names = statebuf_get_bytes(b, (size_t)names_len)) == NULL)
		return statebuf_bad(b, "inotify name arena");
	if (names_len > 0 && names[names_len - 1] != '\0')
		return statebuf_bad(b, "inotify name arena not terminated");
	w->names_cap = names_len > 4096 ? (size_t)names_len : 4096;
	if ((w->names = malloc(w->names_cap)) == NULL)
		return statebuf_bad(b, "out of memory");
	memcpy(w->names, names, (size_t)names_len);
	w->names_len = (size_t)names_len;
	w->leaves_skipped = (unsigned long)statebuf_get_u64(b);
	/* the links between nodes, the free list, the roots */
	for (i = 0; i < nused; i++) {
		const struct wnode *n = NODE(w, i);

		if (n->wd < 0)
			continue;
		live++;
		if (!index_ok(n->parent, nused) || !index_ok(n->child, nused) ||
		    !index_ok(n->next, nused) || !index_ok(n->prev, nused) || n->name >= names_len ||
		    (n->parent != NIL && NODE(w, n->parent)->wd < 0))
			return statebuf_bad(b, "inotify node out of range");
	}
	for (i = w->free_head; i != NIL; i = NODE(w, i)->next)
		if (i >= nused || NODE(w, i)->wd >= 0 || ++nfree > nused)
			return statebuf_bad(b, "inotify free list");
	if (live != nnodes || live + nfree != nused)
		return statebuf_bad(b, "inotify node count");
	w->nnodes = live;
	for (k = 0; k < nroots; k++)
		if (w->roots[k] != NIL && (w->roots[k] >= nused || NODE(w, w->roots[k])->wd < 0 ||
		    NODE(w, w->roots[k])->parent != NIL))
			return statebuf_bad(b, "inotify root node");
	if (!index_ok(w->displaced, nused))
		return statebuf_bad(b, "inotify displaced node");
	if (statebuf_status(b) < 0)
		return -1;
	while (w->nnodes > ts * 2)
		ts *= 2;
	if (tables_resize(w, ts) < 0)
		return statebuf_bad(b, "out of memory");
	return 0;
}

/* A backend on the descriptor handed over, with the table read back: no
 * crawl, the kernel's watches are the ones the table names. */
static struct watcher *
inotify_adopt(const struct config *cfg, struct watch_core *core, int fd, struct statebuf *b,
    struct chj_error *e)
{
	struct watcher *w = inotify_alloc(cfg, core, e);

	if (w == NULL)
		return NULL;
	if (inotify_load(w, b) < 0) {
		*e = b->err;
		inotify_free(w);
		return NULL;
	}
	w->fd = fd;
	log_info("watch table handed over: %zu directories in %zu bytes", w->nnodes, table_bytes(w));
	return w;
}

const struct watcher_ops watcher_inotify_ops = {
	.name = "inotify",
	.watch_unit = "directories watched",
	.queue_sysctl = "fs.inotify.max_queued_events",
	.caps = WATCHER_CAP_CRAWL,
	.open = inotify_new,
	.close = inotify_free,
	.watch = inotify_watch,
	.unwatch = inotify_unwatch,
	.resync = inotify_resync,
	.fd = inotify_fd,
	.read = inotify_read,
	.idle = inotify_idle,
	.watches = inotify_watches,
	.set_config = inotify_set_config,
	.show_progress = inotify_show_progress,
	.busy = inotify_busy,
	.step = inotify_step,
	.save = inotify_save,
	.adopt = inotify_adopt,
};
