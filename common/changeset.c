/* changeset.c: window → file list (see changeset.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "changeset.h"
#include "config.h"
#include "journal.h"
#include "longpath.h"
#include "path.h"

static int
cs_err(struct changeset *cs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cs->errmsg, sizeof cs->errmsg, fmt, ap);
	va_end(ap);
	return -1;
}

/* Appends p to the array, taking it (freed if it cannot be kept). */
static int
push_owned(char ***arr, size_t *n, size_t *cap, char *p)
{
	char **na = array_grow(*arr, *n, cap, sizeof **arr, 256);

	if (na == NULL) {
		free(p);
		return -1;
	}
	*arr = na;
	(*arr)[(*n)++] = p;
	return 0;
}

/* Appends a copy of p to the array. */
static int
push(char ***arr, size_t *n, size_t *cap, const char *p)
{
	char *copy = strdup(p);

	return copy == NULL ? -1 : push_owned(arr, n, cap, copy);
}

/* changeset_path_excluded() for a path under root r (-1: under none). */
static int
excluded_under_root(const struct config *cfg, int r, const char *path)
{
	size_t rl, i, len;
	char *tmp;
	int excluded = 0;

	if (r < 0)
		return 1;
	if (cfg->nexcludes == 0)
		return 0;
	rl = strlen(cfg->roots[r]);
	len = strlen(path);
	if ((tmp = strdup(path)) == NULL)
		return config_is_excluded(cfg, path);
	for (i = rl; i <= len && !excluded; i++) {
		if (i == len || path[i] == '/') {
			tmp[i] = '\0';
			excluded = config_is_excluded(cfg, tmp);
			tmp[i] = path[i];
		}
	}
	free(tmp);
	return excluded;
}

int
changeset_path_excluded(const struct config *cfg, const char *path)
{
	return excluded_under_root(cfg, config_root_of(cfg, path), path);
}

static void
note_walk_errors(struct changeset *cs, const struct walk_result *res)
{
	if (res->errors == 0)
		return;
	if (cs->errors == 0)
		snprintf(cs->errmsg, sizeof cs->errmsg, "%s", res->errmsg);
	cs->errors += res->errors;
}

/* Walk callback: every regular file and symlink below goes in. */
static int
add_all_cb(void *ctx, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth)
{
	struct changeset *cs = ctx;

	(void)len;
	(void)st;
	(void)depth;
	if (type == DT_REG || type == DT_LNK)
		return push(&cs->paths, &cs->npaths, &cs->cap_paths, path) < 0 ? WALK_STOP : WALK_CONTINUE;
	return WALK_CONTINUE;
}

struct build_ctx {
	struct changeset *cs;
	const struct config *cfg;
	int failed;
	char **subtrees;       /* directories whose whole subtree is new */
	size_t nsubtrees, cap_subtrees;
};

static void
add_subtree(struct build_ctx *b, const char *dir)
{
	struct walk_result res;

	if (walk_tree(dir, 0, b->cfg, add_all_cb, b->cs, &res) == 1)
		b->failed = 1;
	note_walk_errors(b->cs, &res);
}

/* A changed row kept for the stat pass: its path and flags, then what lstat
 * found (a STAT_ kind, and errno for STAT_ERROR). */
struct change_row {
	char *path;
	unsigned flags;
	int root;              /* index of the root it is under */
	int err;
	unsigned char kind;
};

enum { STAT_FILE, STAT_DIR, STAT_OTHER, STAT_GONE, STAT_ERROR };

/* The rows are stat()ed by this many threads once STAT_PARALLEL_MIN of them
 * are read: warm, the stats are most of list's time and spread over the
 * cores; cold, more stats in flight keep the disks busy. */
#define STAT_THREADS 8
#define STAT_PARALLEL_MIN 1024
#define STAT_BLOCK 128         /* rows per block, what a thread takes at a time */

/* The rows, read from the journal and stat()ed at the same time: the reader
 * fills blocks of STAT_BLOCK rows and publishes each full one; the stat
 * threads take published blocks. A block never moves once allocated. */
struct stat_pass {
	pthread_mutex_t lock;
	pthread_cond_t more;           /* rows published, or reading ended */
	struct change_row **blocks;    /* under lock (grown by the reader) */
	size_t nblocks, cap_blocks;
	size_t nrows;                  /* rows read (the reader's own count) */
	size_t published;              /* rows the threads may take; under lock */
	size_t claimed;                /* blocks taken; under lock */
	int done;                      /* reading ended; under lock */
	pthread_t tids[STAT_THREADS - 1];
	size_t nthreads;
	struct pass_root {
		int fd;                /* an O_PATH descriptor, or -1 */
		size_t len;
	} *roots;                      /* per root of the configuration */
	const struct config *cfg;
	unsigned long seen;            /* rows read, excluded ones too */
	int oom;
};

static struct change_row *
pass_row(const struct stat_pass *sp, size_t i)
{
	return &sp->blocks[i / STAT_BLOCK][i % STAT_BLOCK];
}

/* lstat() of the row, relative to its root's descriptor where there is one:
 * the kernel then walks only the components below the root, which is most of
 * list's time on a large window. A path too long for one call (PATH_MAX) is
 * stat()ed in pieces, only once the call has refused it. */
static void
stat_row(const struct stat_pass *sp, struct change_row *r)
{
	struct stat st;
	const char *rel = r->path;
	int dirfd = AT_FDCWD, rc;

	if (sp->roots != NULL && sp->roots[r->root].fd >= 0) {
		dirfd = sp->roots[r->root].fd;
		rel = r->path + sp->roots[r->root].len;
		while (*rel == '/')
			rel++;
	}
	rc = fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW | (*rel == '\0' ? AT_EMPTY_PATH : 0));
	if (rc < 0 && errno == ENAMETOOLONG)
		rc = longpath_fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0) {
		r->err = errno;
		r->kind = (errno == ENOENT || errno == ENOTDIR) ? STAT_GONE : STAT_ERROR;
	} else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
		r->kind = STAT_FILE;
	} else {
		r->kind = S_ISDIR(st.st_mode) ? STAT_DIR : STAT_OTHER;
	}
}

/* Thread body: takes published blocks until reading has ended and none is
 * left. */
static void *
stat_worker(void *arg)
{
	struct stat_pass *sp = arg;
	struct change_row *blk;
	size_t n, i;

	for (;;) {
		pthread_mutex_lock(&sp->lock);
		while (sp->claimed * STAT_BLOCK >= sp->published && !sp->done)
			pthread_cond_wait(&sp->more, &sp->lock);
		if (sp->claimed * STAT_BLOCK >= sp->published) {
			pthread_mutex_unlock(&sp->lock);
			return NULL;
		}
		blk = sp->blocks[sp->claimed];
		n = sp->published - sp->claimed * STAT_BLOCK;
		if (n > STAT_BLOCK)
			n = STAT_BLOCK;
		sp->claimed++;
		pthread_mutex_unlock(&sp->lock);
		for (i = 0; i < n; i++)
			stat_row(sp, &blk[i]);
	}
}

/* Opens the roots, for stat_row. Without memory every row is stat()ed by its
 * full path, as is a row under a root that cannot be opened. */
static void
pass_start(struct stat_pass *sp, const struct config *cfg)
{
	size_t i;

	memset(sp, 0, sizeof *sp);
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->more, NULL);
	sp->cfg = cfg;
	if ((sp->roots = calloc(cfg->nroots ? cfg->nroots : 1, sizeof *sp->roots)) == NULL)
		return;
	for (i = 0; i < cfg->nroots; i++) {
		sp->roots[i].fd = open(cfg->roots[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		sp->roots[i].len = strlen(cfg->roots[i]);
	}
}

/* Lets the threads take the rows read so far (all of them when done), and
 * starts them once there are enough rows. A thread that cannot be started
 * leaves its share to the others and to the reader. */
static void
pass_publish(struct stat_pass *sp, int done)
{
	pthread_mutex_lock(&sp->lock);
	sp->published = sp->nrows;
	sp->done = done;
	pthread_cond_broadcast(&sp->more);
	pthread_mutex_unlock(&sp->lock);
	if (sp->nthreads == 0 && sp->nrows >= STAT_PARALLEL_MIN && !done)
		while (sp->nthreads < STAT_THREADS - 1 &&
		    pthread_create(&sp->tids[sp->nthreads], NULL, stat_worker, sp) == 0)
			sp->nthreads++;
}

/* Ends reading: stats what is left on this thread too, and waits for the
 * others. Every row has its kind afterwards. */
static void
pass_finish(struct stat_pass *sp)
{
	size_t i;

	pass_publish(sp, 1);
	stat_worker(sp);
	for (i = 0; i < sp->nthreads; i++)
		pthread_join(sp->tids[i], NULL);
	sp->nthreads = 0;
}

static void
pass_free(struct stat_pass *sp)
{
	size_t i;

	for (i = 0; i < sp->nrows; i++)
		free(pass_row(sp, i)->path);
	for (i = 0; i < sp->nblocks; i++)
		free(sp->blocks[i]);
	free(sp->blocks);
	for (i = 0; sp->roots != NULL && i < sp->cfg->nroots; i++)
		if (sp->roots[i].fd >= 0)
			close(sp->roots[i].fd);
	free(sp->roots);
	pthread_cond_destroy(&sp->more);
	pthread_mutex_destroy(&sp->lock);
}

/* Room for one more row: a new block when the last one is full. */
static struct change_row *
pass_new_row(struct stat_pass *sp)
{
	struct change_row *blk, **nb;

	if (sp->nrows == sp->nblocks * STAT_BLOCK) {
		if ((blk = malloc(STAT_BLOCK * sizeof *blk)) == NULL)
			return NULL;
		pthread_mutex_lock(&sp->lock);
		nb = array_grow(sp->blocks, sp->nblocks, &sp->cap_blocks, sizeof *nb, 64);
		if (nb != NULL) {
			sp->blocks = nb;
			sp->blocks[sp->nblocks++] = blk;
		}
		pthread_mutex_unlock(&sp->lock);
		if (nb == NULL) {
			free(blk);
			return NULL;
		}
	}
	return pass_row(sp, sp->nrows);
}

/* Journal callback: keeps the rows that are not excluded and not cookies,
 * publishing each full block to the stat threads. */
static int
collect_cb(void *ctx, const char *path, int64_t seq, int64_t time, unsigned flags)
{
	struct stat_pass *sp = ctx;
	struct change_row *r;
	int root = config_root_of(sp->cfg, path);

	(void)seq;
	(void)time;
	sp->seen++;
	/* a path under no root is excluded: a kept row has its root */
	if (excluded_under_root(sp->cfg, root, path) || config_is_cookie_path(sp->cfg, path))
		return 0;
	if ((r = pass_new_row(sp)) == NULL || (r->path = strdup(path)) == NULL) {
		sp->oom = 1;
		return -1;
	}
	r->flags = flags;
	r->root = root;
	r->err = 0;
	r->kind = STAT_ERROR;
	sp->nrows++;
	if (sp->nrows % STAT_BLOCK == 0)
		pass_publish(sp, 0);
	return 0;
}

/* Orders change_row pointers by path. */
static int
row_path_cmp(const void *a, const void *b)
{
	return strcmp((*(struct change_row *const *)a)->path, (*(struct change_row *const *)b)->path);
}

/* Sorts one stat()ed row into the changeset: a file to back up, a deletion,
 * or a new directory to walk. Takes the row's path. */
static int
place_row(struct build_ctx *b, struct change_row *r)
{
	struct changeset *cs = b->cs;
	char *path = r->path;
	char ***arr = NULL;
	size_t *n = NULL, *cap = NULL;

	r->path = NULL;
	switch (r->kind) {
	case STAT_ERROR:
		cs->errors++;
		if (cs->errors == 1) {
			char disp[512];

			cs_err(cs, "cannot stat '%s': %s", path_display(path, disp, sizeof disp),
			    strerror(r->err));
		}
		break;
	case STAT_GONE:
		if (r->flags & JF_DELETED)
			arr = &cs->deleted, n = &cs->ndeleted, cap = &cs->cap_deleted;
		break;
	case STAT_FILE:
		arr = &cs->paths, n = &cs->npaths, cap = &cs->cap_paths;
		break;
	case STAT_DIR:
		/* walked once all rows are read, so nested new directories are walked once */
		if (r->flags & JF_SUBTREE)
			arr = &b->subtrees, n = &b->nsubtrees, cap = &b->cap_subtrees;
		break;
	}
	if (arr == NULL) {
		free(path);
		return 0;
	}
	return push_owned(arr, n, cap, path);
}

/* Reads the changed rows, stats them (while reading), and places each. */
static int
add_changes(struct build_ctx *b, struct journal *j, int64_t after_seq)
{
	struct stat_pass sp;
	struct change_row **order = NULL;
	size_t i;
	int rc, ret = -1;

	pass_start(&sp, b->cfg);
	rc = journal_foreach_change(j, after_seq, NULL, collect_cb, &sp);
	/* the threads are still stat()ing: sorting the rows here takes the sort
	 * off the end, and the paths then need no sort of their own */
	if (rc == 0 && sp.nrows > 1 && (order = malloc(sp.nrows * sizeof *order)) != NULL) {
		for (i = 0; i < sp.nrows; i++)
			order[i] = pass_row(&sp, i);
		array_sort(order, sp.nrows, sizeof *order, row_path_cmp);
	}
	/* the threads end even when reading failed */
	pass_finish(&sp);
	if (rc != 0) {
		cs_err(b->cs, "%s", sp.oom ? "out of memory" : journal_errmsg(j));
		goto done;
	}
	b->cs->rows += sp.seen;
	for (i = 0; i < sp.nrows; i++)
		if (place_row(b, order ? order[i] : pass_row(&sp, i)) < 0) {
			cs_err(b->cs, "out of memory");
			goto done;
		}
	ret = 0;
done:
	free(order);
	pass_free(&sp);
	return ret;
}

/* Returns 1 when path or one of its ancestors is in the sorted subtree
 * list: each ancestor prefix is looked up exactly (a bsearch per level). */
static int
in_subtrees(struct build_ctx *b, const char *path)
{
	size_t len = strlen(path), i;
	char *tmp;
	int found = 0;

	if (b->nsubtrees == 0)
		return 0;
	if ((tmp = strdup(path)) == NULL)
		return 0;
	for (i = 1; i <= len && !found; i++) {
		if (i == len || path[i] == '/') {
			const char *key = tmp;

			tmp[i] = '\0';
			found = bsearch(&key, b->subtrees, b->nsubtrees, sizeof *b->subtrees, path_cmp) != NULL;
			tmp[i] = path[i];
		}
	}
	free(tmp);
	return found;
}

/* Sorts the subtree list, drops the nested ones and walks each once. */
static void
walk_subtrees(struct build_ctx *b)
{
	size_t i, o = 0;

	array_sort(b->subtrees, b->nsubtrees, sizeof *b->subtrees, path_cmp);
	for (i = 0; i < b->nsubtrees; i++) {
		size_t save = b->nsubtrees;

		b->nsubtrees = o;
		if (o > 0 && in_subtrees(b, b->subtrees[i])) {
			b->nsubtrees = save;
			free(b->subtrees[i]);
			continue;
		}
		b->nsubtrees = save;
		b->subtrees[o++] = b->subtrees[i];
	}
	b->nsubtrees = o;
	for (i = 0; i < b->nsubtrees && !b->failed; i++)
		add_subtree(b, b->subtrees[i]);
}

struct rescan_ctx {
	struct build_ctx *b;
	int64_t since;
};

/* Walk callback for a rescan: files changed since the record's time; a
 * directory changed since then may have been moved here, so all below it. */
static int
rescan_cb(void *ctx, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth)
{
	struct rescan_ctx *r = ctx;
	int changed;

	(void)len;
	if (st == NULL)
		return WALK_CONTINUE;
	changed = st->st_ctim.tv_sec >= r->since || st->st_mtim.tv_sec >= r->since;
	if (type == DT_DIR) {
		/* the rescanned directory itself: its own ctime only says entries
		 * changed in it, and those entries carry their own times */
		if (depth == 0 || !changed)
			return WALK_CONTINUE;
		add_subtree(r->b, path);
		return r->b->failed ? WALK_STOP : WALK_SKIP;
	}
	if ((type == DT_REG || type == DT_LNK) && changed)
		return push(&r->b->cs->paths, &r->b->cs->npaths, &r->b->cs->cap_paths, path) < 0 ?
		    WALK_STOP : WALK_CONTINUE;
	return WALK_CONTINUE;
}

static int
rescan_row_cb(void *ctx, const char *path, int64_t seq, int64_t time, int64_t since,
    const char *reason)
{
	struct build_ctx *b = ctx;
	struct rescan_ctx r = { b, since };
	struct walk_result res;
	int rc;

	(void)seq;
	(void)time;
	(void)reason;
	b->cs->rescans++;
	/* a rescan may name a directory above a root (an unmounted file system):
	 * resolve it over each root below it */
	if (config_root_of(b->cfg, path) < 0) {
		size_t i;

		for (i = 0; i < b->cfg->nroots; i++) {
			if (!path_is_under(b->cfg->roots[i], path))
				continue;
			rc = walk_tree(b->cfg->roots[i], WALK_STAT, b->cfg, rescan_cb, &r, &res);
			note_walk_errors(b->cs, &res);
			if (rc == 1 || b->failed)
				return -1;
		}
		return 0;
	}
	if (changeset_path_excluded(b->cfg, path) || in_subtrees(b, path))
		return 0;
	rc = walk_tree(path, WALK_STAT, b->cfg, rescan_cb, &r, &res);
	note_walk_errors(b->cs, &res);
	return (rc == 1 || b->failed) ? -1 : 0;
}

int
changeset_build(struct changeset *cs, struct journal *j, const struct config *cfg,
    int64_t after_seq)
{
	struct build_ctx b;
	size_t i;
	int ret = -1;

	memset(cs, 0, sizeof *cs);
	memset(&b, 0, sizeof b);
	b.cs = cs;
	b.cfg = cfg;
	if (add_changes(&b, j, after_seq) < 0)
		goto done;
	walk_subtrees(&b);
	if (b.failed) {
		cs_err(cs, "out of memory");
		goto done;
	}
	if (journal_foreach_rescan(j, after_seq, NULL, rescan_row_cb, &b) != 0) {
		if (cs->errmsg[0] == '\0')
			cs_err(cs, "%s", b.failed ? "out of memory" : journal_errmsg(j));
		goto done;
	}
	cs->npaths = array_sort_unique_strings(cs->paths, cs->npaths);
	cs->ndeleted = array_sort_unique_strings(cs->deleted, cs->ndeleted);
	ret = cs->errors ? -1 : 0;
done:
	for (i = 0; i < b.nsubtrees; i++)
		free(b.subtrees[i]);
	free(b.subtrees);
	return ret;
}

void
changeset_free(struct changeset *cs)
{
	size_t i;

	for (i = 0; i < cs->npaths; i++)
		free(cs->paths[i]);
	free(cs->paths);
	for (i = 0; i < cs->ndeleted; i++)
		free(cs->deleted[i]);
	free(cs->deleted);
	memset(cs, 0, sizeof *cs);
}

/* Orders roots as "root/" so concatenated sorted walks stay sorted. */
static int
root_cmp(const void *a, const void *b)
{
	const unsigned char *p = *(const unsigned char *const *)a;
	const unsigned char *q = *(const unsigned char *const *)b;

	while (*p != '\0' && *p == *q) {
		p++;
		q++;
	}
	return (int)(*p ? *p : '/') - (int)(*q ? *q : '/');
}

int
changeset_walk_full(const struct config *cfg, walk_fn fn, void *ctx, struct walk_result *total)
{
	const char **roots;
	size_t i;
	int ret = 0;

	memset(total, 0, sizeof *total);
	roots = malloc(cfg->nroots * sizeof *roots);
	if (roots == NULL) {
		snprintf(total->errmsg, sizeof total->errmsg, "out of memory");
		total->errors++;
		return -1;
	}
	for (i = 0; i < cfg->nroots; i++)
		roots[i] = cfg->roots[i];
	qsort(roots, cfg->nroots, sizeof *roots, root_cmp);
	for (i = 0; i < cfg->nroots; i++) {
		struct walk_result res;
		int rc = walk_tree(roots[i], WALK_SORTED, cfg, fn, ctx, &res);

		total->dirs += res.dirs;
		total->files += res.files;
		if (res.errors && total->errors == 0)
			memcpy(total->errmsg, res.errmsg, sizeof total->errmsg);
		total->errors += res.errors;
		if (rc == 1) {
			ret = 1;
			break;
		}
		if (rc < 0)
			ret = -1;
	}
	free(roots);
	return ret;
}
