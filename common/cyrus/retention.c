/* retention.c: compaction of a user's archive (retention.h): which runs
 * stay, the live set they need (marked from their manifests, the newest
 * copies at or before them, an index's or a per-user database's state
 * whole or as a delta, the
 * messages their indexes reference), the deltas whose base goes (rewritten
 * whole), the threshold of the live share, and the stamp of the last
 * compaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/archive.h"
#include "archive/manifest.h"
#include "archive/runsel.h"
#include "array.h"
#include "atomicfile.h"
#include "cyrus/cyrus.h"
#include "cyrus/metadelta.h"
#include "cyrus/retention.h"

/* The live set: "RUN NAME" keys of exact copies, and "NAME" keys of
 * messages (stored once, whichever run), each with its size. A sorted,
 * deduplicated array once marking is done; binary search. */
struct live_key {
	char *key;
	uint64_t size;
};

struct live {
	struct live_key *v;
	size_t n, cap;
	int sorted;
};

static int
live_add(struct live *l, const char *key, uint64_t size)
{
	struct live_key *nv = array_grow(l->v, l->n, &l->cap, sizeof *l->v, 1024);

	if (nv == NULL)
		return -1;
	l->v = nv;
	l->v[l->n].key = strdup(key);
	l->v[l->n].size = size;
	if (l->v[l->n].key == NULL)
		return -1;
	l->n++;
	l->sorted = 0;
	return 0;
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct live_key *)a)->key, ((const struct live_key *)b)->key);
}

/* Sorts and drops duplicates (a copy several retained runs share). */
static void
live_finish(struct live *l)
{
	size_t i, j = 0;

	array_sort(l->v, l->n, sizeof *l->v, key_cmp);
	for (i = 0; i < l->n; i++) {
		if (j > 0 && strcmp(l->v[j - 1].key, l->v[i].key) == 0) {
			free(l->v[i].key);
			continue;
		}
		l->v[j++] = l->v[i];
	}
	l->n = j;
	l->sorted = 1;
}

static int
live_has(struct live *l, const char *key)
{
	struct live_key k = { (char *)key, 0 };

	if (!l->sorted)
		live_finish(l);
	return bsearch(&k, l->v, l->n, sizeof *l->v, key_cmp) != NULL;
}

static void
live_free(struct live *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int
live_add_copy(struct live *l, int64_t run, const char *name, uint64_t size)
{
	char *key;
	int rc;

	if (asprintf(&key, "%lld %s", (long long)run, name) < 0)
		return -1;
	rc = live_add(l, key, size);
	free(key);
	return rc;
}

static int
want_cmp(const void *a, const void *b)
{
	const struct arch_want *x = a, *y = b;

	if (x->run != y->run)
		return x->run < y->run ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct compact {
	struct arch *ar;
	struct live live;
	struct live rewrite;            /* "RUN NAME" of deltas whose base goes: stored whole */
	uint64_t live_bytes;
	struct arch_want *idx_wants;    /* retained index states to read (run: the state's) */
	size_t nidx, capidx;
	struct chj_error err;
};

/* The retained run before the one being marked (0: none). */
static int64_t
prev_kept(const int64_t *keep, size_t nk, int64_t id)
{
	size_t i;
	int64_t prev = 0;

	for (i = 0; i < nk && keep[i] < id; i++)
		prev = keep[i];
	return prev;
}

/* A delta e (a state retained run needs) whose base is in a run after the
 * retained one before (prev) would land in the same kept run as its base:
 * it is rewritten whole. */
static int
mark_delta_base(struct compact *c, const char *name, const struct arch_entry *e, int64_t prev)
{
	struct arch_entry b;
	int delta, got = cyrus_meta_latest(c->ar, name, e->run - 1, &b, &delta);

	if (got < 0)
		return arch_error_copy(c->ar, &c->err);
	if (got == 1) {
		int64_t brun = b.run;

		arch_entry_free(&b);
		if (brun <= prev)
			return 0;
	}
	/* no base at all: verify names it; a whole copy of nothing fails the
	 * compaction rather than keep a delta that cannot be rebuilt */
	if (live_add_copy(&c->rewrite, e->run, e->name, e->size) < 0)
		return chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "out of memory");
	return 0;
}

/* Marks what run needs of meta file name: the state's member (for an
 * index or a per-user database, a whole copy or a delta: metadelta.h); an
 * index is read later for the messages it references. prev: the retained
 * run before. */
static int
mark_latest(struct compact *c, const char *name, int64_t run, int want_index, int64_t prev)
{
	struct arch_entry e;
	int delta = 0, got = cyrus_delta_eligible(name) ? cyrus_meta_latest(c->ar, name, run, &e, &delta) :
	    arch_latest(c->ar, name, run, &e);

	if (got <= 0) {
		if (got < 0)
			arch_error_copy(c->ar, &c->err);
		return got;
	}
	if (live_add_copy(&c->live, e.run, e.name, e.size) < 0)
		goto oom;
	if (delta && mark_delta_base(c, name, &e, prev) < 0) {
		arch_entry_free(&e);
		return -1;
	}
	if (want_index) {
		if (c->nidx == c->capidx) {
			size_t cap = c->capidx ? c->capidx * 2 : 64;
			void *p = realloc(c->idx_wants, cap * sizeof *c->idx_wants);

			if (p == NULL)
				goto oom;
			c->idx_wants = p;
			c->capidx = cap;
		}
		c->idx_wants[c->nidx].run = e.run;
		c->idx_wants[c->nidx].name = strdup(name);
		c->idx_wants[c->nidx].ctx = NULL;
		if (c->idx_wants[c->nidx].name == NULL)
			goto oom;
		c->nidx++;
	}
	arch_entry_free(&e);
	return 1;
oom:
	arch_entry_free(&e);
	chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "out of memory");
	return -1;
}

/* Marks what run needs: its manifest, folder meta, links, user files. */
static int
mark_run(struct compact *c, const struct arch_run *run, int64_t prev)
{
	struct manifest m;
	struct arch_entry *links = NULL;
	char *buf = NULL, name[1024];
	size_t len = 0, i, k, nlinks = 0;
	int rc = -1;

	manifest_init(&m);
	snprintf(name, sizeof name, ARCH_RUNS "%s", run->name);
	if (live_add_copy(&c->live, run->id, name, 0) < 0)
		goto oom;
	if (arch_read_manifest(c->ar, run->id, &buf, &len) < 0) {
		arch_error_copy(c->ar, &c->err);
		goto out;
	}
	if (manifest_parse(&m, buf, len) < 0) {
		chj_error_set(&c->err, CHJ_ERR_CORRUPT, 0, "run %s: %s", run->name, m.err.msg);
		goto out;
	}
	for (i = 0; i < m.nfolders; i++)
		for (k = 0; k < CYRUS_NMETA; k++) {
			snprintf(name, sizeof name, ARCH_FOLDERS "%s/%s", m.folders[i].uniqueid, cyrus_meta_names[k]);
			if (mark_latest(c, name, run->id,
			    k == CYRUS_META_INDEX || k == CYRUS_META_EXPUNGE, prev) < 0)
				goto out;
		}
	/* the folders' records (their annotations) */
	for (i = 0; i < m.nfolders; i++) {
		snprintf(name, sizeof name, ARCH_FOLDERS "%s/" CYRUS_FOLDER_RECORD, m.folders[i].uniqueid);
		if (mark_latest(c, name, run->id, 0, 0) < 0)
			goto out;
	}
	for (i = 0; i < m.nfiles; i++)
		if (mark_latest(c, m.files[i], run->id, 0, prev) < 0)
			goto out;
	/* every link as it stood at this run: live ones and tombstones alike */
	if (arch_list(c->ar, ARCH_IMAP, run->id, &links, &nlinks) < 0) {
		arch_error_copy(c->ar, &c->err);
		goto out;
	}
	for (i = 0; i < nlinks; i++)
		if (live_add_copy(&c->live, links[i].run, links[i].name, links[i].size) < 0)
			goto oom;
	rc = 0;
	goto out;
oom:
	chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "out of memory");
out:
	arch_entries_free(links, nlinks);
	manifest_free(&m);
	free(buf);
	return rc;
}

/* Reads one retained index state (rebuilt: cyrus_meta_fetch) and marks
 * the messages it references. */
static int
index_cb(void *cbctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **data,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct compact *c = cbctx;
	struct cyrus_index x;
	const char *buf = *data;
	uint32_t i;
	int rc = -1;

	(void)w;
	(void)chain;
	memset(&x, 0, sizeof x);
	if (cyrus_index_parse(&x, buf, len) < 0) {
		chj_error_set(err, x.err.code, 0, "'%s': %s", e->name, x.err.msg);
		goto out;
	}
	for (i = 0; i < x.num_records; i++) {
		char name[64], hex[41];

		if (!cyrus_record_has_file(&x.records[i]))
			continue;
		cyrus_guid_hex(x.records[i].guid, hex);
		snprintf(name, sizeof name, ARCH_FILES "%s", hex);
		if (live_add(&c->live, name, 0) < 0) {
			chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	cyrus_index_free(&x);
	return rc;
}

/* The decider arch_compact asks about every entry. */
static int
keep_entry(void *ctx, const struct arch_entry *e)
{
	struct compact *c = ctx;
	char key[1100];

	if (strncmp(e->name, ARCH_FILES, strlen(ARCH_FILES)) == 0)
		return live_has(&c->live, e->name);
	snprintf(key, sizeof key, "%lld %s", (long long)e->run, e->name);
	if (c->rewrite.n > 0 && live_has(&c->rewrite, key))
		return ARCH_KEEP_REWRITE;
	return live_has(&c->live, key);
}

/* A rebuilt file, taken from cyrus_meta_fetch. */
struct rebuilt {
	char *buf;
	size_t len;
};

static int
rebuilt_cb(void *cbctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **buf,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct rebuilt *o = cbctx;

	(void)w;
	(void)e;
	(void)chain;
	(void)err;
	o->buf = *buf;
	o->len = len;
	*buf = NULL;
	return 0;
}

/* A delta keep_entry said to rewrite: the whole file it rebuilds, under
 * the whole copy's name. */
static int
rewrite_entry(void *ctx, const struct arch_entry *e, char **name, char **buf, size_t *len,
    struct chj_error *err)
{
	struct compact *c = ctx;
	struct rebuilt o = { NULL, 0 };
	struct cyrus_meta_want w;
	size_t n = strlen(e->name) - strlen(CYRUS_DELTA_SUFFIX);

	if ((*name = strndup(e->name, n)) == NULL)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	w.name = *name;
	w.upto = e->run;
	w.ctx = NULL;
	if (cyrus_meta_fetch(c->ar, &w, 1, rebuilt_cb, &o, err) < 0) {
		free(*name);
		*name = NULL;
		return -1;
	}
	*buf = o.buf;
	*len = o.len;
	return 0;
}

size_t
cyrus_retained_runs(const struct arch_run *runs, size_t n, const struct prune_rules *r,
    int64_t now, int64_t *keep, prune_reason *why)
{
	size_t i, nk = 0;

	/* keep holds the times first: the ids written over them come no
	 * faster than the times are read */
	for (i = 0; i < n; i++)
		keep[i] = runs[i].time;
	prune_plan(keep, n, r, now, why);
	for (i = 0; i < n; i++)
		if (why[i] != NULL)
			keep[nk++] = runs[i].id;
	return nk;
}

unsigned
cyrus_compact_threshold(int64_t since, int64_t now)
{
	int64_t weeks = now > since ? (now - since) / (7 * 86400) : 0;
	int64_t t = CYRUS_COMPACT_BASE_THRESHOLD + weeks * CYRUS_COMPACT_WEEKLY_RISE;

	return t > 100 ? 100 : (unsigned)t;
}

static int
run_is_kept(const int64_t *keep, size_t nk, int64_t id)
{
	size_t i;

	for (i = 0; i < nk; i++)
		if (keep[i] == id)
			return 1;
	return 0;
}

static char *
stamp_path(const char *archive)
{
	char *p;

	return asprintf(&p, "%s.compacted", archive) < 0 ? NULL : p;
}

/* When the archive was last compacted: its stamp, else its first run. */
static int64_t
last_compaction(const char *archive, const struct arch_run *runs, size_t n)
{
	char *p = stamp_path(archive);
	FILE *f = p ? fopen(p, "r") : NULL;
	long long t = 0;

	free(p);
	if (f != NULL) {
		if (fscanf(f, "%lld", &t) != 1)
			t = 0;
		fclose(f);
	}
	if (t <= 0 && n > 0)
		t = runs[0].time;
	return t;
}

/* Records t as the time of the last compaction; -1 with e. */
static int
write_stamp(const char *archive, int64_t t, struct chj_error *e)
{
	char *p = stamp_path(archive);
	char line[32];
	int len = snprintf(line, sizeof line, "%lld\n", (long long)t), rc;

	if (p == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	/* a crash leaves the last stamp or this one, never a truncated file */
	rc = atomicfile_write(p, line, (size_t)len, 0600, e);
	free(p);
	return rc;
}

static void
compact_free(struct compact *c)
{
	size_t i;

	for (i = 0; i < c->nidx; i++)
		free((char *)c->idx_wants[i].name);
	free(c->idx_wants);
	live_free(&c->live);
	live_free(&c->rewrite);
	if (c->ar != NULL)
		arch_close(c->ar);
}

/* Sums the bytes of the live copies: meta, links, user files, and every
 * live message (sized from the sidecar). */
static int
count_live_bytes(struct compact *c)
{
	struct arch_entry *v = NULL;
	size_t n = 0, i;

	live_finish(&c->live);
	for (i = 0; i < c->live.n; i++)
		c->live_bytes += c->live.v[i].size;
	if (arch_list(c->ar, ARCH_FILES, 0, &v, &n) < 0)
		return arch_error_copy(c->ar, &c->err);
	for (i = 0; i < n; i++)
		if (live_has(&c->live, v[i].name))
			c->live_bytes += v[i].size;
	arch_entries_free(v, n);
	return 0;
}

/* Reads every retained index state (one pass over the archive) and marks
 * its messages. */
static int
index_states_read(struct compact *c)
{
	struct cyrus_meta_want *w;
	size_t i;
	int rc;

	if (c->nidx == 0)
		return 0;
	if ((w = calloc(c->nidx, sizeof *w)) == NULL)
		return chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "out of memory");
	for (i = 0; i < c->nidx; i++) {
		w[i].name = c->idx_wants[i].name;
		w[i].upto = c->idx_wants[i].run;
	}
	rc = cyrus_meta_fetch(c->ar, w, c->nidx, index_cb, c, &c->err);
	free(w);
	return rc;
}

/* Marks everything the retained runs need: their own entries, then the
 * messages of their index copies (read once each, shared copies too). */
static int
mark_live(struct compact *c, const struct arch_run *runs, size_t n, const int64_t *keep, size_t nk)
{
	size_t i, j = 0;

	for (i = 0; i < n; i++)
		if (run_is_kept(keep, nk, runs[i].id) &&
		    mark_run(c, &runs[i], prev_kept(keep, nk, runs[i].id)) < 0)
			return -1;
	/* retained runs share the copy of an unchanged folder's index: read it once */
	if (c->nidx > 1) {
		qsort(c->idx_wants, c->nidx, sizeof *c->idx_wants, want_cmp);
		for (i = 0; i < c->nidx; i++) {
			if (j > 0 && want_cmp(&c->idx_wants[j - 1], &c->idx_wants[i]) == 0)
				free((char *)c->idx_wants[i].name);
			else
				c->idx_wants[j++] = c->idx_wants[i];
		}
		c->nidx = j;
	}
	if (index_states_read(c) < 0)
		return -1;
	return count_live_bytes(c);
}

int
cyrus_compact(const char *path, const struct prune_rules *r, int flags, int64_t now,
    struct cyrus_compact_result *res, struct chj_error *e)
{
	struct compact c;
	struct arch_run *runs = NULL;
	int64_t *keep = NULL;
	struct chj_error err;
	size_t i;
	int rc = -1;

	memset(res, 0, sizeof *res);
	memset(&c, 0, sizeof c);
	if (arch_open(&c.ar, path, ARCH_READ, e) < 0)
		return -1;
	if (arch_runs(c.ar, &runs, &res->runs) < 0) {
		arch_error_copy(c.ar, e);
		goto out;
	}
	if (res->runs == 0) {
		res->outcome = CYRUS_COMPACT_EMPTY;
		rc = 0;
		goto out;
	}
	keep = calloc(res->runs, sizeof *keep);
	res->why = calloc(res->runs, sizeof *res->why);
	if (keep == NULL || res->why == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	res->kept = cyrus_retained_runs(runs, res->runs, r, now, keep, res->why);
	for (i = 0; i < res->runs; i++)
		res->total_bytes += (uint64_t)runs[i].bytes;
	if (mark_live(&c, runs, res->runs, keep, res->kept) < 0) {
		chj_error_set(e, c.err.code, 0, "%s: %s", path, c.err.msg);
		goto out;
	}
	res->live_bytes = c.live_bytes;
	res->threshold = cyrus_compact_threshold(last_compaction(path, runs, res->runs), now);
	res->share = res->total_bytes > 0 ? (unsigned)(c.live_bytes * 100 / res->total_bytes) : 100;
	res->would_compact = (flags & CYRUS_COMPACT_FORCE) || res->share < res->threshold;
	if (!res->would_compact || (flags & CYRUS_COMPACT_DRY_RUN)) {
		res->outcome = (flags & CYRUS_COMPACT_DRY_RUN) ? CYRUS_COMPACT_PLANNED :
		    CYRUS_COMPACT_NOT_DUE;
		rc = 0;
		goto out;
	}
	if (arch_compact_ex(path, keep, res->kept, keep_entry, rewrite_entry, &c, &err) < 0) {
		arch_error_wrap(e, &err, CHJ_ERR_ARCHIVE, "%s: compaction failed, the archive is unchanged: %s",
		    path, err.msg);
		goto out;
	}
	res->outcome = CYRUS_COMPACT_DONE;
	res->stamp_failed = write_stamp(path, now, &res->stamp_error) < 0;
	rc = 0;
out:
	free(keep);
	res->all = runs;
	compact_free(&c);
	return rc;
}

void
cyrus_compact_result_free(struct cyrus_compact_result *res)
{
	free(res->all);
	free((void *)res->why);
	res->all = NULL;
	res->why = NULL;
}
