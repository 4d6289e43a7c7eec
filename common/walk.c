/* walk.c: the directory walker. One fd per level (openat relative to the
 * parent, O_NOFOLLOW), each directory read whole then closed for reading
 * before its children are visited. Only the start is opened by its path
 * (in pieces when longer than PATH_MAX), so the depth of the tree and the
 * length of its paths are not limited; below WALK_HELD_FDS levels a
 * directory's fd is let go while its children are walked. The parallel
 * walk (walk_tree_parallel) shares a stack of directories among threads,
 * each opened relative to the start's descriptor. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "config.h"
#include "longpath.h"
#include "path.h"
#include "walk.h"

/* Levels deeper than this do not keep their directory open while a child
 * is walked (it is opened again afterwards): a tree thousands of levels deep
 * (possible once paths are longer than PATH_MAX) then needs at most this
 * many descriptors, not one per level. */
#define WALK_HELD_FDS 32

struct walk_entry {
	char *name;
	unsigned char type;
	ino_t ino;
};

/* A directory being walked: its descriptor (-1 while it is let go), and
 * while it is let go, what identifies it (its ".." from the child must be
 * this directory). */
struct walk_level {
	int fd;
	dev_t dev;
	ino_t ino;
};

struct walker {
	int flags;
	const struct config *cfg;
	walk_fn fn;
	void *ctx;
	struct walk_result *res;
	walk_error_fn on_error;
	void *error_ctx;
	char *buf;
	size_t cap;
};

static void
walk_error(struct walker *w, const char *path, const char *what, int e)
{
	char disp[512];

	w->res->errors++;
	if (w->on_error != NULL)
		w->on_error(w->error_ctx, path, e);
	if (w->res->err.code != CHJ_OK)
		return;
	if (e == ENOMEM)
		chj_error_set(&w->res->err, CHJ_ERR_NOMEM, 0, "cannot %s '%s': %s", what,
		    path_display(path, disp, sizeof disp), strerror(e));
	else
		chj_error_set(&w->res->err, CHJ_ERR_SYS, e, "cannot %s '%s'", what,
		    path_display(path, disp, sizeof disp));
}

/* Sort key: a directory sorts as "name/" so DFS order is bytewise path order. */
static int
entry_cmp(const void *a, const void *b)
{
	const struct walk_entry *x = a, *y = b;
	const unsigned char *p = (const unsigned char *)x->name;
	const unsigned char *q = (const unsigned char *)y->name;

	while (*p != '\0' && *p == *q) {
		p++;
		q++;
	}
	{
		unsigned c1 = *p ? *p : (x->type == DT_DIR ? '/' : 0);
		unsigned c2 = *q ? *q : (y->type == DT_DIR ? '/' : 0);

		return (int)c1 - (int)c2;
	}
}

static int
ensure_cap(struct walker *w, size_t need)
{
	char *nb = array_reserve(w->buf, need, &w->cap, 1, 256);

	if (nb == NULL)
		return -1;
	w->buf = nb;
	return 0;
}

/* Reads all entries of the directory open at fd. */
static int
read_entries(int fd, int dirs_only, int in_root, struct walk_entry **out, size_t *n)
{
	int dfd = dup(fd);
	DIR *d;
	struct dirent *de;
	struct walk_entry *arr = NULL, *na;
	size_t cnt = 0, cap = 0;

	*out = NULL;
	*n = 0;
	if (dfd < 0)
		return -1;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (in_root && path_is_cookie_name(de->d_name))
			continue;      /* a sync cookie: only directly in a root */
		if (dirs_only && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if ((na = array_grow(arr, cnt, &cap, sizeof *arr, 64)) == NULL)
			goto nomem;
		arr = na;
		arr[cnt].name = strdup(de->d_name);
		if (arr[cnt].name == NULL)
			goto nomem;
		arr[cnt].type = de->d_type;
		arr[cnt].ino = de->d_ino;
		cnt++;
		errno = 0;
	}
	if (errno != 0) {
		int e = errno;

		closedir(d);
		while (cnt > 0)
			free(arr[--cnt].name);
		free(arr);
		errno = e;
		return -1;
	}
	closedir(d);
	*out = arr;
	*n = cnt;
	return 0;
nomem:
	closedir(d);
	while (cnt > 0)
		free(arr[--cnt].name);
	free(arr);
	errno = ENOMEM;
	return -1;
}

static int walk_dir(struct walker *w, struct walk_level *lv, size_t len, int depth);

/* Lets go of the directory at lv while a child is walked, noting what it is
 * (it stays open if it cannot be identified). */
static void
level_release(struct walk_level *lv)
{
	struct stat st;

	if (fstat(lv->fd, &st) < 0)
		return;
	lv->dev = st.st_dev;
	lv->ino = st.st_ino;
	close(lv->fd);
	lv->fd = -1;
}

/* Opens the directory of lv again after its child was walked (w->buf[0..len)
 * is its path): the child's ".." while that is still it, else by its path
 * (the child was moved meanwhile). Returns 0, or -1 (an error counted unless
 * the directory is gone: its other entries are not visited). */
static int
level_reopen(struct walker *w, struct walk_level *lv, const struct walk_level *child, size_t len)
{
	struct stat st;
	int fd = -1;

	if (child->fd >= 0)
		fd = openat(child->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != lv->dev || st.st_ino != lv->ino)) {
		close(fd);
		fd = -1;
	}
	w->buf[len] = '\0';
	if (fd < 0)
		fd = longpath_openat(AT_FDCWD, w->buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			walk_error(w, w->buf, "open directory", errno);
		return -1;
	}
	lv->fd = fd;
	return 0;
}

/* Visits one entry of the directory at dir, whose path is w->buf[0..dirlen);
 * w->buf[0..len) is the entry's path. */
static int
visit(struct walker *w, struct walk_level *dir, size_t dirlen, const struct walk_entry *e,
    size_t len, int depth)
{
	struct stat st, *stp = NULL;
	struct walk_level child;
	const char *name = e->name;
	unsigned char type = e->type;
	int rc;

	if (type == DT_UNKNOWN || (w->flags & WALK_STAT)) {
		if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				walk_error(w, w->buf, "stat", errno);
			return WALK_CONTINUE;
		}
		stp = &st;
		type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG :
		    S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
		if (type == DT_UNKNOWN)
			type = DT_FIFO;   /* some other kind: reported, never descended */
	} else if (w->flags & WALK_INO) {
		memset(&st, 0, sizeof st);
		st.st_ino = e->ino;      /* from the directory entry: no stat */
		stp = &st;
	}
	if ((w->flags & WALK_DIRS) && type != DT_DIR)
		return WALK_CONTINUE;
	if (w->cfg != NULL && config_is_excluded(w->cfg, w->buf))
		return WALK_CONTINUE;
	if (type == DT_DIR)
		w->res->dirs++;
	else
		w->res->files++;
	rc = w->fn(w->ctx, w->buf, len, type, stp, depth);
	if (rc != WALK_CONTINUE || type != DT_DIR)
		return rc == WALK_STOP ? WALK_STOP : WALK_CONTINUE;
	child.fd = openat(dir->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (child.fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			walk_error(w, w->buf, "open directory", errno);
		return WALK_CONTINUE;
	}
	if (depth > WALK_HELD_FDS)
		level_release(dir);
	rc = walk_dir(w, &child, len, depth + 1);
	if (dir->fd < 0)
		level_reopen(w, dir, &child, dirlen);
	if (child.fd >= 0)
		close(child.fd);
	return rc;
}

static int
walk_dir(struct walker *w, struct walk_level *lv, size_t len, int depth)
{
	struct walk_entry *ents;
	size_t n, i;
	int rc = WALK_CONTINUE;

	w->buf[len] = '\0';
	if (read_entries(lv->fd, (w->flags & WALK_DIRS) != 0,
	    w->cfg != NULL && config_is_root(w->cfg, w->buf, len), &ents, &n) < 0) {
		if (errno != ENOENT) {
			w->buf[len] = '\0';
			walk_error(w, w->buf, "read directory", errno);
		}
		return WALK_CONTINUE;
	}
	if ((w->flags & WALK_SORTED) && n > 1) {
		/* d_type may be DT_UNKNOWN: resolve it so the sort key is right */
		for (i = 0; i < n; i++) {
			struct stat st;

			if (ents[i].type == DT_UNKNOWN &&
			    fstatat(lv->fd, ents[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				ents[i].type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		qsort(ents, n, sizeof *ents, entry_cmp);
	}
	for (i = 0; i < n; i++) {
		size_t nl = strlen(ents[i].name);
		size_t plen = len + (len == 1 && w->buf[0] == '/' ? 0 : 1) + nl;

		/* lv->fd < 0: the directory could not be opened again after a
		 * child (counted as an error, or gone) */
		if (rc != WALK_STOP && lv->fd >= 0) {
			if (ensure_cap(w, plen + 1) < 0) {
				walk_error(w, "(walk)", "allocate", ENOMEM);
				rc = WALK_STOP;
			} else {
				size_t o = len;

				if (!(len == 1 && w->buf[0] == '/'))
					w->buf[o++] = '/';
				memcpy(w->buf + o, ents[i].name, nl + 1);
				rc = visit(w, lv, len, &ents[i], plen, depth);
			}
		}
		free(ents[i].name);
	}
	free(ents);
	w->buf[len] = '\0';
	return rc;
}

int
walk_tree(const char *start, int flags, const struct config *cfg, walk_fn fn,
    void *ctx, struct walk_result *res)
{
	return walk_tree_ex(start, flags, cfg, fn, ctx, NULL, NULL, res);
}

int
walk_tree_ex(const char *start, int flags, const struct config *cfg, walk_fn fn,
    void *ctx, walk_error_fn on_error, void *error_ctx, struct walk_result *res)
{
	struct walker w;
	struct walk_level top;
	struct stat st;
	size_t len = strlen(start);
	unsigned char type;
	int rc;

	memset(res, 0, sizeof *res);
	memset(&w, 0, sizeof w);
	w.flags = flags;
	w.cfg = cfg;
	w.fn = fn;
	w.ctx = ctx;
	w.on_error = on_error;
	w.error_ctx = error_ctx;
	w.res = res;
	if (ensure_cap(&w, len + 1) < 0) {
		walk_error(&w, start, "allocate", ENOMEM);
		return -1;
	}
	memcpy(w.buf, start, len + 1);
	while (len > 1 && w.buf[len - 1] == '/')
		w.buf[--len] = '\0';
	if (longpath_fstatat(AT_FDCWD, w.buf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno;
		if (rc != ENOENT && rc != ENOTDIR)
			walk_error(&w, w.buf, "stat", rc);
		free(w.buf);
		return res->errors ? -1 : 0;
	}
	if (cfg != NULL && config_is_excluded(cfg, w.buf)) {
		free(w.buf);
		return 0;
	}
	type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG :
	    S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
	if (type == DT_DIR)
		res->dirs++;
	else
		res->files++;
	rc = fn(ctx, w.buf, len, type, &st, 0);
	if (rc == WALK_CONTINUE && type == DT_DIR) {
		top.fd = longpath_openat(AT_FDCWD, w.buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (top.fd < 0) {
			if (errno != ENOENT)
				walk_error(&w, w.buf, "open directory", errno);
		} else {
			rc = walk_dir(&w, &top, len, 1);
			if (top.fd >= 0)
				close(top.fd);
		}
	}
	free(w.buf);
	if (rc == WALK_STOP)
		return 1;
	return res->errors ? -1 : 0;
}

/* ---- the walk on several threads ---- */

/* A directory still to be read: its path (full), its depth, its mark. */
struct par_dir {
	char *path;
	size_t len;
	int depth;
	unsigned mark;
};

struct par_walk {
	pthread_mutex_t lock;
	pthread_cond_t more;           /* directories pushed, or the walk ended */
	struct par_dir *stack;         /* under lock */
	size_t n, cap;
	unsigned busy;                 /* threads reading a directory; under lock */
	int stop;                      /* WALK_STOP or out of memory; under lock */
	int start_fd;                  /* O_PATH descriptor of the start, or -1 */
	size_t start_len;
	const struct config *cfg;
	walk_par_fn fn;
	void *ctx;
};

struct par_thread {
	struct par_walk *pw;
	unsigned no;
	struct walker w;               /* its path buffer and its own results */
	struct walk_result res;
	pthread_t tid;
};

/* Pushes the directories of one read (taken). Returns 0, -1 on ENOMEM
 * (they are freed, and the walk stops: a directory not read is not
 * allowed to go unnoticed). */
static int
par_push(struct par_walk *pw, struct par_dir *v, size_t n)
{
	struct par_dir *ns;
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&pw->lock);
	if ((ns = array_reserve(pw->stack, pw->n + n, &pw->cap, sizeof *ns, 256)) == NULL) {
		pw->stop = 1;
		rc = -1;
	} else {
		pw->stack = ns;
		memcpy(pw->stack + pw->n, v, n * sizeof *v);
		pw->n += n;
	}
	pthread_cond_broadcast(&pw->more);
	pthread_mutex_unlock(&pw->lock);
	if (rc < 0)
		for (i = 0; i < n; i++)
			free(v[i].path);
	return rc;
}

/* Opens directory d: relative to the start's descriptor (the kernel walks
 * only the part below it), in pieces when too long for one call. */
static int
par_open(const struct par_walk *pw, const struct par_dir *d)
{
	const char *rel = d->path + pw->start_len;
	int dirfd = pw->start_fd, fd;

	if (dirfd < 0 || d->len < pw->start_len) {
		dirfd = AT_FDCWD;
		rel = d->path;
	}
	while (*rel == '/' && dirfd != AT_FDCWD)
		rel++;
	if (*rel == '\0')
		rel = ".";
	fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENAMETOOLONG)
		fd = longpath_openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* Reads directory d, calls fn for each entry and collects the directories
 * to read next. Returns WALK_STOP to stop the walk, else WALK_CONTINUE. */
static int
par_read(struct par_thread *t, const struct par_dir *d)
{
	struct par_walk *pw = t->pw;
	struct walker *w = &t->w;
	struct walk_entry *ents = NULL;
	struct par_dir *next = NULL, *nn;
	size_t n = 0, i, nnext = 0, capnext = 0;
	int fd, rc = WALK_CONTINUE;

	if ((fd = par_open(pw, d)) < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			walk_error(w, d->path, "open directory", errno);
		return WALK_CONTINUE;
	}
	if (read_entries(fd, 0, pw->cfg != NULL && config_is_root(pw->cfg, d->path, d->len),
	    &ents, &n) < 0) {
		if (errno != ENOENT)
			walk_error(w, d->path, "read directory", errno);
		close(fd);
		return WALK_CONTINUE;
	}
	if (ensure_cap(w, d->len + 1) < 0) {
		walk_error(w, "(walk)", "allocate", ENOMEM);
		rc = WALK_STOP;
	} else {
		memcpy(w->buf, d->path, d->len + 1);
	}
	for (i = 0; i < n; i++) {
		size_t nl = strlen(ents[i].name), o = d->len;
		size_t plen = d->len + (d->len == 1 && d->path[0] == '/' ? 0 : 1) + nl;
		unsigned char type;
		unsigned mark = d->mark;
		struct stat st;
		int r;

		if (rc == WALK_STOP)
			break;
		if (ensure_cap(w, plen + 1) < 0) {
			walk_error(w, "(walk)", "allocate", ENOMEM);
			rc = WALK_STOP;
			break;
		}
		if (!(d->len == 1 && d->path[0] == '/'))
			w->buf[o++] = '/';
		memcpy(w->buf + o, ents[i].name, nl + 1);
		if (fstatat(fd, ents[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				walk_error(w, w->buf, "stat", errno);
			continue;
		}
		type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG :
		    S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
		if (pw->cfg != NULL && config_is_excluded(pw->cfg, w->buf))
			continue;
		if (type == DT_DIR)
			w->res->dirs++;
		else
			w->res->files++;
		r = pw->fn(pw->ctx, t->no, w->buf, plen, type, &st, d->depth + 1, &mark);
		if (r == WALK_STOP) {
			rc = WALK_STOP;
			break;
		}
		if (r != WALK_CONTINUE || type != DT_DIR)
			continue;
		if ((nn = array_grow(next, nnext, &capnext, sizeof *nn, 16)) == NULL ||
		    (nn[nnext].path = malloc(plen + 1)) == NULL) {
			next = nn != NULL ? nn : next;
			walk_error(w, "(walk)", "allocate", ENOMEM);
			rc = WALK_STOP;
			break;
		}
		next = nn;
		memcpy(next[nnext].path, w->buf, plen + 1);
		next[nnext].len = plen;
		next[nnext].depth = d->depth + 1;
		next[nnext].mark = mark;
		nnext++;
	}
	close(fd);
	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	if (rc != WALK_STOP && nnext > 0 && par_push(pw, next, nnext) < 0) {
		walk_error(w, "(walk)", "allocate", ENOMEM);
		rc = WALK_STOP;
	} else if (rc == WALK_STOP) {
		for (i = 0; i < nnext; i++)
			free(next[i].path);
	}
	free(next);
	return rc;
}

/* Thread body: takes directories until none is left and no thread is
 * reading one (which could push more), or the walk stopped. */
static void *
par_worker(void *arg)
{
	struct par_thread *t = arg;
	struct par_walk *pw = t->pw;
	struct par_dir d;

	for (;;) {
		pthread_mutex_lock(&pw->lock);
		while (pw->n == 0 && pw->busy > 0 && !pw->stop)
			pthread_cond_wait(&pw->more, &pw->lock);
		if (pw->n == 0 || pw->stop) {
			pthread_cond_broadcast(&pw->more);
			pthread_mutex_unlock(&pw->lock);
			return NULL;
		}
		d = pw->stack[--pw->n];
		pw->busy++;
		pthread_mutex_unlock(&pw->lock);
		if (par_read(t, &d) == WALK_STOP) {
			pthread_mutex_lock(&pw->lock);
			pw->stop = 1;
			pthread_mutex_unlock(&pw->lock);
		}
		free(d.path);
		pthread_mutex_lock(&pw->lock);
		pw->busy--;
		if (pw->busy == 0 || pw->stop)
			pthread_cond_broadcast(&pw->more);
		pthread_mutex_unlock(&pw->lock);
	}
}

int
walk_tree_parallel(const char *start, unsigned nthreads, const struct config *cfg,
    walk_par_fn fn, void *ctx, struct walk_result *res)
{
	struct par_walk pw;
	struct par_thread *t;
	struct par_dir top;
	struct stat st;
	unsigned i, started;
	size_t len = strlen(start);
	unsigned char type;
	int stopped, rc;

	memset(res, 0, sizeof *res);
	if (nthreads == 0)
		nthreads = 1;
	while (len > 1 && start[len - 1] == '/')
		len--;
	if ((t = calloc(nthreads, sizeof *t)) == NULL ||
	    (top.path = malloc(len + 1)) == NULL) {
		free(t);
		res->errors++;
		chj_error_set(&res->err, CHJ_ERR_NOMEM, 0, "cannot walk '%s': out of memory", start);
		return -1;
	}
	memcpy(top.path, start, len);
	top.path[len] = '\0';
	top.len = len;
	top.depth = 0;
	top.mark = 0;
	memset(&pw, 0, sizeof pw);
	pthread_mutex_init(&pw.lock, NULL);
	pthread_cond_init(&pw.more, NULL);
	pw.cfg = cfg;
	pw.fn = fn;
	pw.ctx = ctx;
	pw.start_fd = -1;
	pw.start_len = len;
	for (i = 0; i < nthreads; i++) {
		t[i].pw = &pw;
		t[i].no = i;
		t[i].w.cfg = cfg;
		t[i].w.res = &t[i].res;
	}
	if (longpath_fstatat(AT_FDCWD, top.path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			walk_error(&t[0].w, top.path, "stat", errno);
		free(top.path);
		goto merge;
	}
	if (cfg != NULL && config_is_excluded(cfg, top.path)) {
		free(top.path);
		goto merge;
	}
	/* the start itself, as walk_tree() visits it */
	type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG :
	    S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
	if (type == DT_DIR)
		t[0].res.dirs++;
	else
		t[0].res.files++;
	rc = fn(ctx, 0, top.path, len, type, &st, 0, &top.mark);
	if (rc != WALK_CONTINUE || type != DT_DIR) {
		pw.stop = rc == WALK_STOP;
		free(top.path);
		goto merge;
	}
	pw.start_fd = longpath_openat(AT_FDCWD, top.path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (par_push(&pw, &top, 1) < 0) {
		walk_error(&t[0].w, "(walk)", "allocate", ENOMEM);
		goto merge;
	}
	/* the calling thread is thread 0; a thread that cannot be started
	 * leaves its share to the others */
	for (started = 1; started < nthreads; started++)
		if (pthread_create(&t[started].tid, NULL, par_worker, &t[started]) != 0)
			break;
	par_worker(&t[0]);
	for (i = 1; i < started; i++)
		pthread_join(t[i].tid, NULL);
merge:
	stopped = pw.stop;
	for (i = 0; i < pw.n; i++)
		free(pw.stack[i].path);
	free(pw.stack);
	if (pw.start_fd >= 0)
		close(pw.start_fd);
	pthread_cond_destroy(&pw.more);
	pthread_mutex_destroy(&pw.lock);
	for (i = 0; i < nthreads; i++) {
		res->dirs += t[i].res.dirs;
		res->files += t[i].res.files;
		if (t[i].res.errors && res->errors == 0)
			res->err = t[i].res.err;
		res->errors += t[i].res.errors;
		free(t[i].w.buf);
	}
	free(t);
	if (stopped)
		return 1;
	return res->errors ? -1 : 0;
}
