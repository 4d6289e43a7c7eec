/* changeset.c: window → file list (see changeset.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "changeset.h"
#include "config.h"
#include "journal.h"
#include "longpath.h"
#include "path.h"

static int
cs_nomem(struct changeset *cs)
{
	return chj_error_set(&cs->err, CHJ_ERR_NOMEM, 0, "out of memory");
}

/* The journal's error, as it is. */
static int
cs_journal(struct changeset *cs, struct journal *j)
{
	cs->err = *journal_error(j);
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
		cs->err = res->err;
	cs->errors += res->errors;
}

int
link_notes_add(struct link_notes *ln, const char *path, const struct stat *st,
    enum link_use use)
{
	struct link_note *na;

	if (st == NULL || !S_ISREG(st->st_mode) || st->st_nlink < 2)
		return 0;
	if ((na = array_grow(ln->v, ln->n, &ln->cap, sizeof *na, 64)) == NULL)
		return -1;
	ln->v = na;
	if ((na[ln->n].path = strdup(path)) == NULL)
		return -1;
	na[ln->n].dev = (uint64_t)st->st_dev;
	na[ln->n].ino = (uint64_t)st->st_ino;
	na[ln->n].nlink = st->st_nlink;
	na[ln->n].use = use;
	ln->n++;
	return 0;
}

int
link_notes_save(struct link_notes *ln, struct journal *j, char *const *forget, size_t nforget,
    int clear)
{
	struct journal_link *v = NULL;
	size_t i, n;
	int rc;

	if (ln->n > 0 && (v = malloc(ln->n * sizeof *v)) == NULL)
		return -1;
	for (i = 0, n = 0; i < ln->n; i++) {
		if (ln->v[i].nlink == 0)
			continue;      /* a name gone, known from the journal */
		v[n].path = ln->v[i].path;
		v[n].dev = ln->v[i].dev;
		v[n].ino = ln->v[i].ino;
		n++;
	}
	rc = journal_links_update(j, forget, nforget, v, n, clear);
	free(v);
	return rc;
}

void
link_notes_free(struct link_notes *ln)
{
	size_t i;

	for (i = 0; i < ln->n; i++)
		free(ln->v[i].path);
	free(ln->v);
	memset(ln, 0, sizeof *ln);
}

struct build_ctx {
	struct changeset *cs;
	const struct config *cfg;
	struct journal *j;
	int failed;
	char **subtrees;       /* directories whose whole subtree is new */
	size_t nsubtrees, cap_subtrees;
	struct link_notes links;   /* multiply-linked files met */
	char **forget;         /* names gone: no longer a name of their inode */
	size_t nforget, cap_forget;
	char **gone_changed;   /* written through, gone now: their inode may live on */
	size_t ngone_changed, cap_gone_changed;
};

/* Walk callback: every regular file and symlink below goes in. */
static int
add_all_cb(void *ctx, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth)
{
	struct build_ctx *b = ctx;

	(void)len;
	(void)depth;
	if (type != DT_REG && type != DT_LNK)
		return WALK_CONTINUE;
	if (push(&b->cs->paths, &b->cs->npaths, &b->cs->cap_paths, path) < 0 ||
	    link_notes_add(&b->links, path, st, LINK_LISTED) < 0)
		return WALK_STOP;
	return WALK_CONTINUE;
}

static void
add_subtree(struct build_ctx *b, const char *dir)
{
	struct walk_result res;

	/* stat()ed: a file below may have other names (hard links) elsewhere */
	if (walk_tree(dir, WALK_STAT, b->cfg, add_all_cb, b, &res) == 1)
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
	unsigned char probed;  /* the daemon's lstat() stands: STAT_FILE, st unset */
	struct stat st;        /* what lstat found (STAT_FILE, STAT_DIR, STAT_OTHER) */
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
	size_t nstat;                  /* of which to stat (not probed) */
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
	int64_t plain_from, plain_upto;    /* rows whose JF_PLAIN stands */
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
	const char *rel = r->path;
	int dirfd = AT_FDCWD, rc;

	if (sp->roots != NULL && sp->roots[r->root].fd >= 0) {
		dirfd = sp->roots[r->root].fd;
		rel = r->path + sp->roots[r->root].len;
		while (*rel == '/')
			rel++;
	}
	rc = fstatat(dirfd, rel, &r->st, AT_SYMLINK_NOFOLLOW | (*rel == '\0' ? AT_EMPTY_PATH : 0));
	if (rc < 0 && errno == ENAMETOOLONG)
		rc = longpath_fstatat(dirfd, rel, &r->st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0) {
		r->err = errno;
		r->kind = (errno == ENOENT || errno == ENOTDIR) ? STAT_GONE : STAT_ERROR;
	} else if (S_ISREG(r->st.st_mode) || S_ISLNK(r->st.st_mode)) {
		r->kind = STAT_FILE;
	} else {
		r->kind = S_ISDIR(r->st.st_mode) ? STAT_DIR : STAT_OTHER;
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
			if (!blk[i].probed)
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
	if (sp->nthreads == 0 && sp->nstat >= STAT_PARALLEL_MIN && !done)
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
	r->probed = (flags & JF_PLAIN) && seq >= sp->plain_from && seq <= sp->plain_upto;
	r->kind = r->probed ? STAT_FILE : STAT_ERROR;
	sp->nstat += !r->probed;
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

/* Returns 1 when the row's path had an entry the journal saw go that is not
 * the one there now: the path is gone; or a directory left it and a
 * non-directory holds it; or what was there was renamed away (a directory
 * takes its entries along, none of them journaled) and a directory holds the
 * name now (exchanged or moved onto it: it is listed whole). The consumer
 * removes what it had there, then adds what the list holds. A directory
 * deleted (not moved) had its entries deleted one by one, each journaled. */
static int
row_replaced(const struct change_row *r)
{
	if (!(r->flags & JF_DELETED))
		return 0;
	switch (r->kind) {
	case STAT_GONE:
		return 1;
	case STAT_DIR:
		return (r->flags & JF_MOVED_OUT) != 0;
	case STAT_FILE:
	case STAT_OTHER:
		return (r->flags & JF_DIR) != 0;
	}
	return 0;
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
	if ((r->kind == STAT_GONE && push(&b->forget, &b->nforget, &b->cap_forget, path) < 0) ||
	    (r->kind == STAT_GONE && (r->flags & (JF_MODIFIED | JF_ATTRIB)) &&
	    push(&b->gone_changed, &b->ngone_changed, &b->cap_gone_changed, path) < 0) ||
	    (r->kind == STAT_FILE && link_notes_add(&b->links, path, r->probed ? NULL : &r->st,
	    (r->flags & (JF_MODIFIED | JF_ATTRIB)) ? LINK_CHANGED : LINK_LISTED) < 0)) {
		free(path);
		return -1;
	}
	/* replaced, with a new entry under the name: deleted and listed both */
	if (r->kind != STAT_GONE && r->kind != STAT_ERROR && row_replaced(r) &&
	    push(&cs->deleted, &cs->ndeleted, &cs->cap_deleted, path) < 0) {
		free(path);
		return -1;
	}
	switch (r->kind) {
	case STAT_ERROR:
		cs->errors++;
		if (cs->errors == 1) {
			char disp[512];

			chj_error_set(&cs->err, CHJ_ERR_SYS, r->err, "cannot stat '%s'",
			    path_display(path, disp, sizeof disp));
		}
		break;
	case STAT_GONE:
		if (row_replaced(r))
			arr = &cs->deleted, n = &cs->ndeleted, cap = &cs->cap_deleted;
		break;
	case STAT_FILE:
		arr = &cs->paths, n = &cs->npaths, cap = &cs->cap_paths;
		break;
	case STAT_DIR:
		/* walked once all rows are read, so nested new directories are walked
		 * once; a replaced one is listed whole as the consumer removed it */
		if (r->flags & JF_SUBTREE || row_replaced(r))
			arr = &b->subtrees, n = &b->nsubtrees, cap = &b->cap_subtrees;
		break;
	}
	if (arr == NULL) {
		free(path);
		return 0;
	}
	return push_owned(arr, n, cap, path);
}

/* The seqs whose rows need no lstat() when they carry JF_PLAIN: those of
 * the daemon that runs or ran last (journal_plain_window), none when the
 * run holds a rescan (events were lost: a mark may predate a change not
 * seen). */
static int
plain_window(struct journal *j, int64_t after_seq, struct stat_pass *sp)
{
	int64_t nrescans = 0;

	if (journal_plain_window(j, &sp->plain_from, &sp->plain_upto) < 0 ||
	    journal_count_rescans(j, after_seq, &nrescans) < 0)
		return -1;
	if (nrescans > 0) {
		sp->plain_from = 1;
		sp->plain_upto = 0;
	}
	return 0;
}

/* Reads the changed rows, stats them (while reading) unless the daemon's
 * flush did (JF_PLAIN), and places each. */
static int
add_changes(struct build_ctx *b, struct journal *j, int64_t after_seq)
{
	struct stat_pass sp;
	struct change_row **order = NULL;
	size_t i;
	int rc, ret = -1;

	pass_start(&sp, b->cfg);
	rc = plain_window(j, after_seq, &sp);
	if (rc == 0)
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
		if (sp.oom)
			cs_nomem(b->cs);
		else
			cs_journal(b->cs, j);
		goto done;
	}
	b->cs->rows += sp.seen;
	for (i = 0; i < sp.nrows; i++)
		if (place_row(b, order ? order[i] : pass_row(&sp, i)) < 0) {
			cs_nomem(b->cs);
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

/* A rescan walks its subtree on this many threads (its cost is an lstat()
 * per entry: warm, spread over the cores; cold, more in flight keep the
 * disks busy); CHJ_RESCAN_THREADS (1..64) sets it, for the benchmark. */
#define RESCAN_THREADS 8
#define RESCAN_WHOLE 0x1       /* walk mark: below a directory changed since */

/* What one thread of a rescan found. */
struct rescan_out {
	char **paths, **reconcile;
	size_t npaths, cap_paths, nreconcile, cap_reconcile;
	struct link_notes links;
};

struct rescan_ctx {
	int64_t since;
	struct rescan_out *out;    /* per thread */
};

/* Walk callback for a rescan (several threads): the files changed since the
 * record's time, and every file below a directory changed since then (it
 * may have been moved here, keeping old times: the walk mark carries that
 * down). A directory changed since then may have lost entries nobody saw
 * go: it is to reconcile. */
static int
rescan_cb(void *ctx, unsigned thread, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth, unsigned *mark)
{
	struct rescan_ctx *r = ctx;
	struct rescan_out *o = &r->out[thread];
	int changed, rc = 0;

	(void)len;
	changed = st->st_ctim.tv_sec >= r->since || st->st_mtim.tv_sec >= r->since;
	if (type == DT_DIR && changed) {
		rc = push(&o->reconcile, &o->nreconcile, &o->cap_reconcile, path);
		/* the rescanned directory's own ctime only says entries changed in
		 * it, and those carry their own times */
		if (depth > 0)
			*mark |= RESCAN_WHOLE;
	} else if ((type == DT_REG || type == DT_LNK) && (changed || (*mark & RESCAN_WHOLE))) {
		rc = push(&o->paths, &o->npaths, &o->cap_paths, path);
		/* its times moved: its content or attributes may have */
		if (rc == 0)
			rc = link_notes_add(&o->links, path, st, LINK_CHANGED);
	} else if (type == DT_REG) {
		/* unchanged: its names are learnt all the same */
		rc = link_notes_add(&o->links, path, st, LINK_SEEN);
	}
	return rc < 0 ? WALK_STOP : WALK_CONTINUE;
}

/* Appends the n strings of v to *arr (taken; freed when they cannot be). */
static int
take_all(char ***arr, size_t *na, size_t *cap, char **v, size_t n)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		if (rc < 0)
			free(v[i]);
		else if (push_owned(arr, na, cap, v[i]) < 0)
			rc = -1;
	}
	free(v);
	return rc;
}

/* Moves what the threads found into the build. Returns 0, -1 on ENOMEM. */
static int
rescan_merge(struct build_ctx *b, struct rescan_out *out, unsigned n)
{
	struct link_notes *ln = &b->links;
	unsigned t;
	size_t i;
	int rc = 0;

	for (t = 0; t < n; t++) {
		struct rescan_out *o = &out[t];

		if (take_all(&b->cs->paths, &b->cs->npaths, &b->cs->cap_paths, o->paths, o->npaths) < 0 ||
		    take_all(&b->cs->reconcile, &b->cs->nreconcile, &b->cs->cap_reconcile, o->reconcile,
		    o->nreconcile) < 0)
			rc = -1;
		for (i = 0; i < o->links.n; i++) {
			struct link_note *na = rc < 0 ? NULL :
			    array_grow(ln->v, ln->n, &ln->cap, sizeof *na, 64);

			if (na == NULL) {
				free(o->links.v[i].path);
				rc = -1;
				continue;
			}
			ln->v = na;
			ln->v[ln->n++] = o->links.v[i];
		}
		free(o->links.v);
	}
	return rc;
}

/* The threads of a rescan walk. */
static unsigned
rescan_threads(void)
{
	/* a benchmark knob, nothing to configure */
	const char *e = getenv("CHJ_RESCAN_THREADS");
	long n = e != NULL ? strtol(e, NULL, 10) : 0;

	return n >= 1 && n <= 64 ? (unsigned)n : RESCAN_THREADS;
}

/* A rescanned path that is gone: the nearest directory above it that exists,
 * up to its root, lost it (or an ancestor) and is to reconcile. A root that
 * is gone is not a deletion: it is reported missing, and covered when back. */
static int
reconcile_gone(struct build_ctx *b, const char *path, int root)
{
	char *dir = strdup(path), *slash;
	size_t rl = strlen(b->cfg->roots[root]);
	struct stat st;
	int rc = 0;

	if (dir == NULL)
		return -1;
	while (strlen(dir) > rl && (slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (lstat(dir, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				rc = push(&b->cs->reconcile, &b->cs->nreconcile, &b->cs->cap_reconcile, dir);
			break;
		}
	}
	free(dir);
	return rc;
}

/* Resolves the rescan of one tree (a root or a directory below one). */
static int
rescan_tree(struct build_ctx *b, const char *path, int root, int64_t since)
{
	unsigned n = rescan_threads();
	struct rescan_ctx r = { since, NULL };
	struct walk_result res;
	struct stat st;
	int rc;

	if (lstat(path, &st) < 0 && (errno == ENOENT || errno == ENOTDIR) &&
	    strcmp(path, b->cfg->roots[root]) != 0)
		return reconcile_gone(b, path, root);
	if ((r.out = calloc(n, sizeof *r.out)) == NULL) {
		b->failed = 1;
		return -1;
	}
	rc = walk_tree_parallel(path, n, b->cfg, rescan_cb, &r, &res);
	if (rescan_merge(b, r.out, n) < 0 || rc == 1)
		b->failed = 1;
	free(r.out);
	note_walk_errors(b->cs, &res);
	return b->failed ? -1 : 0;
}

static int
rescan_row_cb(void *ctx, const char *path, int64_t seq, int64_t time, int64_t since,
    const char *reason)
{
	struct build_ctx *b = ctx;
	int root = config_root_of(b->cfg, path);

	(void)seq;
	(void)time;
	(void)reason;
	b->cs->rescans++;
	/* a rescan may name a directory above a root (an unmounted file system):
	 * resolve it over each root below it */
	if (root < 0) {
		size_t i;

		for (i = 0; i < b->cfg->nroots; i++)
			if (path_is_under(b->cfg->roots[i], path) &&
			    rescan_tree(b, b->cfg->roots[i], (int)i, since) < 0)
				return -1;
		return 0;
	}
	if (changeset_path_excluded(b->cfg, path) || in_subtrees(b, path))
		return 0;
	return rescan_tree(b, path, root, since);
}

/* Orders link notes by device and inode. */
static int
note_inode_cmp(const void *a, const void *b)
{
	const struct link_note *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

/* The names of one inode met or found: what is listed for it. */
struct inode_names {
	struct build_ctx *b;
	const struct link_note *of;    /* the group's first note: dev, ino */
	nlink_t nlink;                 /* the highest link count its names show */
};

/* journal_links_names callback: a name of the inode that still is one is
 * listed. */
static int
other_name_cb(void *ctx, const char *path)
{
	struct inode_names *n = ctx;
	struct changeset *cs = n->b->cs;
	struct stat st;

	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_dev != n->of->dev || (uint64_t)st.st_ino != n->of->ino ||
	    changeset_path_excluded(n->b->cfg, path))
		return 0;
	if (st.st_nlink > n->nlink)
		n->nlink = st.st_nlink;
	return push(&cs->paths, &cs->npaths, &cs->cap_paths, path);
}

/* An inode whose names under the roots are searched for by a walk. */
struct hunted {
	uint64_t dev, ino;
	nlink_t nlink;
};

static int
hunted_ino_cmp(const void *a, const void *b)
{
	const struct hunted *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct hunt_ctx {
	struct build_ctx *b;
	struct hunted *v;
	size_t n;
};

/* Walk callback of the hunt: d_ino alone picks the candidates, lstat()
 * confirms them (the device too: inode numbers repeat across file systems). */
static int
hunt_cb(void *ctx, const char *path, size_t len, unsigned char type,
    const struct stat *st, int depth)
{
	struct hunt_ctx *h = ctx;
	struct hunted key, *hit;
	struct stat real;

	(void)len;
	if (depth == 0 || st == NULL || (type != DT_REG && type != DT_UNKNOWN))
		return WALK_CONTINUE;
	key.ino = (uint64_t)st->st_ino;
	if ((hit = bsearch(&key, h->v, h->n, sizeof *h->v, hunted_ino_cmp)) == NULL)
		return WALK_CONTINUE;
	if (lstat(path, &real) < 0 || !S_ISREG(real.st_mode))
		return WALK_CONTINUE;
	/* neighbours with the same inode number on other devices */
	while (hit > h->v && hit[-1].ino == key.ino)
		hit--;
	for (; hit < h->v + h->n && hit->ino == key.ino; hit++) {
		if (hit->dev != (uint64_t)real.st_dev)
			continue;
		h->b->cs->linked++;
		if (push(&h->b->cs->paths, &h->b->cs->npaths, &h->b->cs->cap_paths, path) < 0 ||
		    link_notes_add(&h->b->links, path, &real, LINK_SEEN) < 0) {
			h->b->failed = 1;
			return WALK_STOP;
		}
	}
	return WALK_CONTINUE;
}

/* Searches every root for the names of the inodes of v (a readdir walk, no
 * stat): the kernel says nothing of a name that existed before a file got
 * its second link, so a change through the new name needs it found once.
 * Each inode is then marked hunted at its link count. */
static int
hunt_names(struct build_ctx *b, struct journal *j, struct hunted *v, size_t n)
{
	struct hunt_ctx h = { b, v, n };
	struct walk_result res;
	size_t i;

	array_sort(v, n, sizeof *v, hunted_ino_cmp);
	for (i = 0; i < b->cfg->nroots; i++) {
		if (walk_tree(b->cfg->roots[i], WALK_INO, b->cfg, hunt_cb, &h, &res) == 1 || b->failed)
			return cs_nomem(b->cs);
		note_walk_errors(b->cs, &res);
	}
	/* an unreadable directory may hold a name: search again next time */
	if (b->cs->errors == 0)
		for (i = 0; i < n; i++)
			if (journal_links_mark_hunted(j, v[i].dev, v[i].ino, (int64_t)v[i].nlink) < 0)
				return cs_journal(b->cs, j);
	return 0;
}

/* One inode's group of notes [i, k): lists every name of it under the roots
 * the journal knows when one of them is listed, and says whether a walk
 * must look for more (a change through a name, fewer names known than
 * links, not searched already at this link count). Returns 1 for a hunt,
 * 0, or -1 (error set). */
static int
inode_group(struct build_ctx *b, struct journal *j, size_t i, size_t k, struct hunted *want)
{
	struct link_note *v = b->links.v;
	struct inode_names n = { b, &v[i], 0 };
	size_t m, before = b->cs->npaths, found;
	int use = LINK_SEEN;
	int64_t hunted = 0;

	for (m = i; m < k; m++) {
		if ((int)v[m].use > use)
			use = (int)v[m].use;
		if (v[m].nlink > n.nlink)
			n.nlink = v[m].nlink;
	}
	if (use == LINK_SEEN)
		return 0;
	/* the group's own names (met unchanged, as in a rescan) go too; a name
	 * gone (known from the journal) does not */
	for (m = i; m < k; m++)
		if (v[m].nlink > 0 &&
		    push(&b->cs->paths, &b->cs->npaths, &b->cs->cap_paths, v[m].path) < 0)
			return cs_nomem(b->cs);
	if (journal_links_names(j, v[i].ino, other_name_cb, &n) != 0)
		return journal_error(j)->code != CHJ_OK ? cs_journal(b->cs, j) : cs_nomem(b->cs);
	/* the distinct names just pushed */
	found = b->cs->npaths - before;
	if (found > 1) {
		array_sort(b->cs->paths + before, found, sizeof *b->cs->paths, array_str_cmp);
		for (m = before + 1, found = 1; m < b->cs->npaths; m++)
			found += strcmp(b->cs->paths[m], b->cs->paths[m - 1]) != 0;
	}
	b->cs->linked += found > 0 ? found - 1 : 0;
	/* all its names known (or, gone and none left known, it may live on
	 * under names never noted: 0 links known) */
	if (use != LINK_CHANGED || (n.nlink > 0 && found >= n.nlink))
		return 0;
	if (journal_links_hunted(j, v[i].dev, v[i].ino, &hunted) < 0)
		return cs_journal(b->cs, j);
	if (hunted == (int64_t)n.nlink)
		return 0;          /* searched at this count: the others are outside */
	want->dev = v[i].dev;
	want->ino = v[i].ino;
	want->nlink = n.nlink;
	return 1;
}

/* The kernel reports a change through one name of a file under that name
 * only: each listed file with more than one link brings its other names
 * under the roots, those the journal knows, and those a walk finds when a
 * change went through a name and not all are known. Then the names met are
 * noted and the gone ones forgotten. */
static int
add_other_names(struct build_ctx *b, struct journal *j)
{
	struct link_notes *ln = &b->links;
	struct hunted *hunt = NULL;
	size_t i, k, nhunt = 0;
	int rc, ret = -1;

	/* a name written through and gone: the inode the journal noted for it */
	for (i = 0; i < b->ngone_changed; i++) {
		struct link_note *na;
		uint64_t dev, ino;

		if ((rc = journal_links_ino_of(j, b->gone_changed[i], &dev, &ino)) < 0)
			return cs_journal(b->cs, j);
		if (rc == 0)
			continue;
		if ((na = array_grow(ln->v, ln->n, &ln->cap, sizeof *na, 64)) == NULL ||
		    (na[ln->n].path = strdup(b->gone_changed[i])) == NULL)
			return cs_nomem(b->cs);
		ln->v = na;
		na[ln->n].dev = dev;
		na[ln->n].ino = ino;
		na[ln->n].nlink = 0;          /* gone: no link of its own */
		na[ln->n].use = LINK_CHANGED;
		ln->n++;
	}
	array_sort(ln->v, ln->n, sizeof *ln->v, note_inode_cmp);
	if (ln->n > 0 && (hunt = malloc(ln->n * sizeof *hunt)) == NULL)
		return cs_nomem(b->cs);
	for (i = 0; i < ln->n; i = k) {
		for (k = i; k < ln->n && note_inode_cmp(&ln->v[k], &ln->v[i]) == 0; k++)
			;
		if ((rc = inode_group(b, j, i, k, &hunt[nhunt])) < 0)
			goto done;
		nhunt += (size_t)rc;
	}
	if (nhunt > 0 && hunt_names(b, j, hunt, nhunt) < 0)
		goto done;
	if (link_notes_save(ln, j, b->forget, b->nforget, 0) < 0) {
		const struct chj_error *je = journal_error(j);

		chj_error_set(&b->cs->err, je->code, 0, "cannot note the names of hard-linked files: %s",
		    je->msg);
		b->cs->err.errnum = je->errnum;
		goto done;
	}
	ret = 0;
done:
	free(hunt);
	return ret;
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
		cs_nomem(cs);
		goto done;
	}
	if (journal_foreach_rescan(j, after_seq, NULL, rescan_row_cb, &b) != 0) {
		if (cs->err.code == CHJ_OK) {
			if (b.failed)
				cs_nomem(cs);
			else
				cs_journal(cs, j);
		}
		goto done;
	}
	if (add_other_names(&b, j) < 0)
		goto done;
	cs->npaths = array_sort_unique_strings(cs->paths, cs->npaths);
	cs->ndeleted = array_sort_unique_strings(cs->deleted, cs->ndeleted);
	cs->nreconcile = array_sort_unique_strings(cs->reconcile, cs->nreconcile);
	ret = cs->errors ? -1 : 0;
done:
	for (i = 0; i < b.nsubtrees; i++)
		free(b.subtrees[i]);
	free(b.subtrees);
	for (i = 0; i < b.nforget; i++)
		free(b.forget[i]);
	free(b.forget);
	for (i = 0; i < b.ngone_changed; i++)
		free(b.gone_changed[i]);
	free(b.gone_changed);
	link_notes_free(&b.links);
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
	for (i = 0; i < cs->nreconcile; i++)
		free(cs->reconcile[i]);
	free(cs->reconcile);
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
changeset_walk_full(const struct config *cfg, int flags, walk_fn fn, void *ctx,
    struct walk_result *total)
{
	const char **roots;
	size_t i;
	int ret = 0;

	memset(total, 0, sizeof *total);
	roots = malloc(cfg->nroots * sizeof *roots);
	if (roots == NULL) {
		chj_error_set(&total->err, CHJ_ERR_NOMEM, 0, "out of memory");
		total->errors++;
		return -1;
	}
	for (i = 0; i < cfg->nroots; i++)
		roots[i] = cfg->roots[i];
	qsort(roots, cfg->nroots, sizeof *roots, root_cmp);
	for (i = 0; i < cfg->nroots; i++) {
		struct walk_result res;
		int rc = walk_tree(roots[i], WALK_SORTED | flags, cfg, fn, ctx, &res);

		total->dirs += res.dirs;
		total->files += res.files;
		if (res.errors && total->errors == 0)
			total->err = res.err;
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

int
changeset_root_missing(const struct config *cfg, size_t i)
{
	struct stat st;
	int e = config_root_missing(cfg, i);

	if (e != 0)
		return e;
	if (lstat(cfg->roots[i], &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
		return errno;
	return 0;
}

/* Rescan callback: finds a whole-root rescan (since 0) of the root. */
static int
whole_root_cb(void *ctx, const char *path, int64_t seq, int64_t time, int64_t since,
    const char *reason)
{
	const char *root = ctx;

	(void)seq;
	(void)time;
	(void)reason;
	return strcmp(path, root) == 0 && since <= 0 ? 1 : 0;
}

int
changeset_cover_missing_root(struct journal *j, const char *root, int64_t after_seq)
{
	int rc = journal_foreach_rescan(j, after_seq, root, whole_root_cb, (void *)root);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (journal_batch_begin(j, 0) < 0)
		return -1;
	if (journal_batch_rescan(j, root, 0, "root missing at a run: listed whole once back",
	    (int64_t)time(NULL)) < 0) {
		journal_batch_rollback(j);
		return -1;
	}
	return journal_batch_commit(j);
}
