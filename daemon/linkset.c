/* linkset.c: handles of the known multiply-linked files (see linkset.h). A
 * sorted array of 64-bit hashes of (fsid, handle) with the inode number: a
 * hash collision can only make the core journal the names of another file
 * (listed for nothing), never leave one out. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "array.h"
#include "journal.h"
#include "linkset.h"

struct lentry {
	uint64_t hash;
	uint64_t ino;
};

struct fs_of_dev {
	dev_t dev;
	int fsid[2];
};

#define RECENT_MAX 65536         /* outside writes remembered (a ring) */

struct recent {
	uint64_t key;                /* 0: free or used */
	int64_t ms;
};

struct linkset {
	struct recent *recent;       /* RECENT_MAX, allocated on first use */
	size_t recent_head;
	struct lentry *v;
	size_t n, cap;
	int64_t generation;          /* links_generation of the last build; -1: none */
	struct fs_of_dev *fs;        /* statfs() results during a build */
	size_t nfs, capfs;
};

uint64_t
linkset_key(const struct watcher_file_id *id)
{
	uint64_t h = 1469598103934665603ull;
	unsigned i;

	h = (h ^ (uint32_t)id->fsid[0]) * 1099511628211ull;
	h = (h ^ (uint32_t)id->fsid[1]) * 1099511628211ull;
	h = (h ^ (uint32_t)id->type) * 1099511628211ull;
	for (i = 0; i < id->len; i++)
		h = (h ^ id->h[i]) * 1099511628211ull;
	return h;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct lentry *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

struct linkset *
linkset_new(void)
{
	struct linkset *s = calloc(1, sizeof *s);

	if (s != NULL)
		s->generation = -1;
	return s;
}

void
linkset_free(struct linkset *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s->fs);
	free(s->recent);
	free(s);
}

/* The fsid of the file system of path (device dev), statfs()ed once a build. */
static int
fsid_of(struct linkset *s, const char *path, dev_t dev, int fsid[2])
{
	struct fs_of_dev *nf;
	struct statfs sfs;
	size_t i;

	for (i = 0; i < s->nfs; i++) {
		if (s->fs[i].dev == dev) {
			memcpy(fsid, s->fs[i].fsid, sizeof s->fs[i].fsid);
			return 0;
		}
	}
	if (statfs(path, &sfs) < 0)
		return -1;
	if ((nf = array_grow(s->fs, s->nfs, &s->capfs, sizeof *nf, 8)) == NULL)
		return -1;
	s->fs = nf;
	nf[s->nfs].dev = dev;
	memcpy(nf[s->nfs].fsid, &sfs.f_fsid, sizeof nf[s->nfs].fsid);
	memcpy(fsid, nf[s->nfs].fsid, sizeof nf[s->nfs].fsid);
	s->nfs++;
	return 0;
}

/* journal_links_foreach callback: one name's handle into the new array. */
static int
add_link(void *ctx, const struct journal_link *l)
{
	struct linkset *s = ctx;
	struct {
		struct file_handle fh;
		unsigned char h[WATCHER_HANDLE_MAX];
	} buf;
	struct watcher_file_id id;
	struct lentry *nv;
	struct stat st;
	int mount_id;

	buf.fh.handle_bytes = WATCHER_HANDLE_MAX;
	if (lstat(l->path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    name_to_handle_at(AT_FDCWD, l->path, &buf.fh, &mount_id, 0) < 0 ||
	    fsid_of(s, l->path, st.st_dev, id.fsid) < 0)
		return 0;          /* gone or refused: not followed */
	id.type = buf.fh.handle_type;
	id.len = buf.fh.handle_bytes;
	memcpy(id.h, buf.fh.f_handle, id.len);
	if ((nv = array_grow(s->v, s->n, &s->cap, sizeof *nv, 256)) == NULL)
		return -1;
	s->v = nv;
	nv[s->n].hash = linkset_key(&id);
	nv[s->n].ino = (uint64_t)st.st_ino;
	s->n++;
	return 0;
}

int
linkset_refresh(struct linkset *s, struct journal *j)
{
	int64_t gen = 0;
	int rc = journal_meta_get_int(j, "links_generation", &gen);

	if (rc < 0)
		return -1;
	if (gen == s->generation)
		return 0;
	s->n = 0;
	s->nfs = 0;
	if (journal_links_foreach(j, add_link, s) != 0) {
		s->generation = -1;
		return -1;
	}
	array_sort(s->v, s->n, sizeof *s->v, entry_cmp);
	s->generation = gen;
	return 1;
}

int
linkset_find(const struct linkset *s, uint64_t k, uint64_t *ino)
{
	struct lentry key, *e;

	if (s->n == 0)
		return 0;
	key.hash = k;
	if ((e = bsearch(&key, s->v, s->n, sizeof *s->v, entry_cmp)) == NULL)
		return 0;
	*ino = e->ino;
	return 1;
}

void
linkset_recent(struct linkset *s, uint64_t key, int64_t now_ms)
{
	if (s->recent == NULL && (s->recent = calloc(RECENT_MAX, sizeof *s->recent)) == NULL)
		return;              /* then only the set as it is */
	s->recent[s->recent_head].key = key ? key : 1;
	s->recent[s->recent_head].ms = now_ms;
	s->recent_head = (s->recent_head + 1) % RECENT_MAX;
}

void
linkset_recheck(struct linkset *s, int64_t now_ms, int64_t window_ms,
    void (*fn)(void *ctx, uint64_t ino), void *ctx)
{
	size_t i;
	uint64_t ino;

	for (i = 0; s->recent != NULL && i < RECENT_MAX; i++) {
		struct recent *r = &s->recent[i];

		if (r->key == 0 || now_ms - r->ms > window_ms)
			continue;
		if (linkset_find(s, r->key, &ino)) {
			r->key = 0;
			fn(ctx, ino);
		}
	}
}

size_t
linkset_count(const struct linkset *s)
{
	return s->n;
}
