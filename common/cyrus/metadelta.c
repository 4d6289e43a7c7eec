/* metadelta.c: deltas of a folder's index, or of a per-user database,
 * between two runs (metadelta.h):
 * the encoder and the rebuild, and cyrus_meta_fetch, through which every
 * reader of an archived meta file gets its bytes: each want's chain looked
 * up, every member it needs read once, the chain applied, the SHA1 checked. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cyrus/cyrus.h"
#include "cyrus/internal.h"
#include "cyrus/metadelta.h"

/* Two changes closer than this are one extent: an extent's head costs 12. */
#define DELTA_GAP 16
/* The largest file a delta may rebuild. */
#define DELTA_SIZE_MAX ((uint64_t)1 << 32)
/* A chain longer than this is refused as corrupt (backup stops far before). */
#define DELTA_CHAIN_LIMIT 4096

static int
sha1_of(const void *buf, size_t len, unsigned char d[20])
{
	return EVP_Digest(buf, len, d, NULL, EVP_sha1(), NULL) == 1 ? 0 : -1;
}

/* The output being encoded: refuses to grow past max. */
struct dbuf {
	unsigned char *p;
	size_t len, cap, max;
	uint32_t nextents;
};

/* Appends extent [off, off+n) of nw; 1 when max is passed, -1 out of memory. */
static int
dbuf_extent(struct dbuf *b, const unsigned char *nw, size_t off, size_t n)
{
	size_t need = b->len + 12 + n;

	if (need > b->max || n > UINT32_MAX)
		return 1;
	if (need > b->cap) {
		size_t cap = b->cap * 2 > need ? b->cap * 2 : need;
		unsigned char *p = realloc(b->p, cap);

		if (p == NULL)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	be64_put(b->p + b->len, off);
	be32_put(b->p + b->len + 8, (uint32_t)n);
	memcpy(b->p + b->len + 12, nw + off, n);
	b->len = need;
	b->nextents++;
	return 0;
}

/* The end of the changed stretch that starts at i (a[i] != b[i]): it goes
 * on while the next difference is less than DELTA_GAP bytes away. */
static size_t
stretch_end(const unsigned char *a, const unsigned char *b, size_t i, size_t common)
{
	size_t end = i + 1, k = end;

	while (k < common && k - end < DELTA_GAP) {
		if (a[k] != b[k])
			end = k + 1;
		k++;
	}
	return end;
}

/* Writes the extents where nw differs from base, and nw's tail. */
static int
encode_extents(struct dbuf *b, const unsigned char *a, size_t alen, const unsigned char *nw, size_t nlen)
{
	size_t common = alen < nlen ? alen : nlen, i = 0, start, end;
	int r;

	while (i < common) {
		while (i + 64 <= common && memcmp(a + i, nw + i, 64) == 0)
			i += 64;
		while (i < common && a[i] == nw[i])
			i++;
		if (i == common)
			break;
		start = i;
		end = stretch_end(a, nw, i, common);
		/* a stretch reaching the tail runs on into it */
		if (nlen > common && common - end < DELTA_GAP)
			end = nlen;
		if ((r = dbuf_extent(b, nw, start, end - start)) != 0)
			return r;
		i = end;
	}
	if (nlen > common && i <= common)
		return dbuf_extent(b, nw, common, nlen - common);
	return 0;
}

int
cyrus_delta_encode(const void *base, size_t blen, const void *nw, size_t nlen, size_t max,
    char **out, size_t *olen)
{
	unsigned char bd[20], nd[20];
	struct dbuf b;
	int r;

	*out = NULL;
	*olen = 0;
	if (max < CYRUS_DELTA_HEAD)
		return 1;
	memset(&b, 0, sizeof b);
	b.max = max;
	b.cap = CYRUS_DELTA_HEAD + 4096 < max ? CYRUS_DELTA_HEAD + 4096 : max;
	if ((b.p = malloc(b.cap)) == NULL || sha1_of(base, blen, bd) < 0 || sha1_of(nw, nlen, nd) < 0) {
		free(b.p);
		return -1;
	}
	b.len = CYRUS_DELTA_HEAD;
	r = encode_extents(&b, base, blen, nw, nlen);
	if (r != 0) {
		free(b.p);
		return r;
	}
	memcpy(b.p, CYRUS_DELTA_MAGIC, 10);
	be64_put(b.p + 10, blen);
	be64_put(b.p + 18, nlen);
	memcpy(b.p + 26, bd, 20);
	memcpy(b.p + 46, nd, 20);
	be32_put(b.p + 66, b.nextents);
	*out = (char *)b.p;
	*olen = b.len;
	return 0;
}

int
cyrus_delta_info(const void *d, size_t len, struct cyrus_delta_info *info, struct chj_error *e)
{
	const unsigned char *p = d;
	size_t at = CYRUS_DELTA_HEAD;
	uint32_t i;

	if (len < CYRUS_DELTA_HEAD || memcmp(p, CYRUS_DELTA_MAGIC, 10) != 0)
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "not a delta (no CHJDELTA1 head)");
	info->base_size = be64_get(p + 10);
	info->new_size = be64_get(p + 18);
	cyrus_guid_hex(p + 26, info->base_sha1);
	cyrus_guid_hex(p + 46, info->new_sha1);
	info->nextents = be32_get(p + 66);
	/* what a delta rebuilds is read whole (cyrus.index offsets are
	 * 32-bit, a per-user database compared in memory): larger is hostile */
	if (info->new_size > DELTA_SIZE_MAX)
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "new size %llu out of range",
		    (unsigned long long)info->new_size);
	for (i = 0; i < info->nextents; i++) {
		uint64_t off;
		uint32_t n;

		if (len - at < 12)
			return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "extent %u of %u cut short", i + 1,
			    info->nextents);
		off = be64_get(p + at);
		n = be32_get(p + at + 8);
		at += 12;
		if (len - at < n || off > info->new_size || n > info->new_size - off)
			return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "extent %u of %u out of range", i + 1,
			    info->nextents);
		at += n;
	}
	if (at != len)
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "%zu bytes after the last extent", len - at);
	return 0;
}

int
cyrus_delta_apply(char **buf, size_t *len, const void *d, size_t dlen, struct chj_error *e)
{
	struct cyrus_delta_info info;
	const unsigned char *p = d;
	size_t at = CYRUS_DELTA_HEAD, nsize;
	uint32_t i;
	char *nb;

	if (cyrus_delta_info(d, dlen, &info, e) < 0)
		return -1;
	if (info.base_size != *len)
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "its base has %zu bytes, the delta says %llu",
		    *len, (unsigned long long)info.base_size);
	nsize = (size_t)info.new_size;
	if ((nb = realloc(*buf, nsize + 1)) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	*buf = nb;
	if (nsize > *len)
		memset(nb + *len, 0, nsize - *len);
	*len = nsize;
	for (i = 0; i < info.nextents; i++) {
		uint64_t off = be64_get(p + at);
		uint32_t n = be32_get(p + at + 8);

		memcpy(nb + off, p + at + 12, n);
		at += 12 + (size_t)n;
	}
	return 0;
}

int
cyrus_delta_name(const char *name)
{
	size_t n = strlen(name), m = strlen(CYRUS_DELTA_SUFFIX);

	return n > m && strcmp(name + n - m, CYRUS_DELTA_SUFFIX) == 0;
}

int
cyrus_delta_eligible(const char *name)
{
	static const char *const meta[] = { "/cyrus.index", "/cyrus.expunge" };
	size_t n = strlen(name), i;

	if (strncmp(name, ARCH_USER "conf/", strlen(ARCH_USER "conf/")) == 0)
		return !cyrus_delta_name(name);
	if (strncmp(name, ARCH_FOLDERS, strlen(ARCH_FOLDERS)) != 0)
		return 0;
	for (i = 0; i < sizeof meta / sizeof meta[0]; i++)
		if (n > strlen(meta[i]) && strcmp(name + n - strlen(meta[i]), meta[i]) == 0)
			return 1;
	return 0;
}

int
cyrus_meta_latest(struct arch *ar, const char *name, int64_t upto, struct arch_entry *e, int *is_delta)
{
	struct arch_entry d;
	char *dname;
	int gw, gd;

	*is_delta = 0;
	if (asprintf(&dname, "%s" CYRUS_DELTA_SUFFIX, name) < 0)
		return -1;
	gw = arch_latest(ar, name, upto, e);
	gd = gw < 0 ? -1 : arch_latest(ar, dname, upto, &d);
	free(dname);
	if (gw < 0 || gd < 0) {
		if (gw == 1)
			arch_entry_free(e);
		return -1;
	}
	if (gd == 1 && (gw == 0 || d.run > e->run)) {
		if (gw == 1)
			arch_entry_free(e);
		*e = d;
		*is_delta = 1;
		return 1;
	}
	if (gd == 1)
		arch_entry_free(&d);
	return gw;
}

int
cyrus_meta_chain_of(struct arch *ar, const char *name, int64_t upto, struct cyrus_meta_chain *chain)
{
	struct arch_run *runs = NULL;
	struct arch_entry e;
	size_t nruns = 0, i, steps = 0;
	int got, delta = 1, rc = 0;

	memset(chain, 0, sizeof *chain);
	if (arch_runs(ar, &runs, &nruns) < 0)
		return -1;
	while (delta && steps++ < DELTA_CHAIN_LIMIT) {
		if ((got = cyrus_meta_latest(ar, name, upto, &e, &delta)) <= 0) {
			rc = got < 0 ? -1 : rc;
			break;
		}
		rc = 1;
		for (i = 0; i < nruns; i++)
			if (runs[i].id == e.run)
				chain->run_bytes += (uint64_t)runs[i].bytes;
		if (delta) {
			chain->ndeltas++;
			chain->delta_bytes += e.size;
		}
		upto = e.run - 1;
		arch_entry_free(&e);
		if (upto < 1)
			break;
	}
	free(runs);
	return rc;
}

/* ---- cyrus_meta_fetch ---- */

/* A member some want's chain needs, read once. */
struct piece {
	int64_t run;
	char *name;
	char *data;
	size_t len;
	int read;
};

/* One want's chain, newest first: indexes into the pieces. */
struct chain {
	size_t *v;
	size_t n;
	struct arch_entry top;      /* the state's member */
	struct cyrus_meta_chain info;
};

struct mfetch {
	struct arch *ar;
	struct piece *p;
	size_t np, capp;
	struct arch_run *runs;
	size_t nruns;
	struct chj_error *err;
};

static int64_t
run_bytes(const struct mfetch *f, int64_t run)
{
	size_t i;

	for (i = 0; i < f->nruns; i++)
		if (f->runs[i].id == run)
			return f->runs[i].bytes;
	return 0;
}

/* Notes the member e as one chain step. */
static int
chain_add(struct mfetch *f, struct chain *c, const struct arch_entry *e)
{
	size_t k, *nv;
	struct piece *np;

	/* one piece per step; pieces wants share are merged by pieces_merge */
	if ((np = array_grow(f->p, f->np, &f->capp, sizeof *f->p, 16)) == NULL)
		return -1;
	f->p = np;
	memset(&f->p[f->np], 0, sizeof *f->p);
	f->p[f->np].run = e->run;
	if ((f->p[f->np].name = strdup(e->name)) == NULL)
		return -1;
	k = f->np++;
	if ((nv = realloc(c->v, (c->n + 1) * sizeof *c->v)) == NULL)
		return -1;
	c->v = nv;
	c->v[c->n++] = k;
	c->info.run_bytes += (uint64_t)run_bytes(f, e->run);
	return 0;
}

/* Looks up want w's chain: its state, then each delta's base, down to a
 * whole copy. */
static int
chain_find(struct mfetch *f, const struct cyrus_meta_want *w, struct chain *c)
{
	struct arch_entry e;
	int64_t upto = w->upto;
	int got, delta;

	for (;;) {
		got = cyrus_meta_latest(f->ar, w->name, upto, &e, &delta);
		if (got < 0)
			return arch_error_copy(f->ar, f->err);
		if (got == 0) {
			if (c->n == 0)
				return chj_error_set(f->err, CHJ_ERR_NOTFOUND, 0, "the archive has no '%s'", w->name);
			return chj_error_set(f->err, CHJ_ERR_CORRUPT, 0, "'%s%s' (run %lld): the copy it "
			    "applies to is missing", w->name, CYRUS_DELTA_SUFFIX, (long long)upto + 1);
		}
		if (chain_add(f, c, &e) < 0) {
			arch_entry_free(&e);
			return chj_error_set(f->err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		upto = e.run - 1;
		if (delta) {
			c->info.ndeltas++;
			c->info.delta_bytes += e.size;
		}
		if (c->n == 1)
			c->top = e;         /* owned by the chain now */
		else
			arch_entry_free(&e);
		if (!delta)
			return 0;
		if (upto < 1 || c->n > DELTA_CHAIN_LIMIT)
			return chj_error_set(f->err, CHJ_ERR_CORRUPT, 0, "'%s': the chain of deltas "
			    "has no whole copy under it", c->top.name);
	}
}

static int
piece_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e, struct arch_stream *s,
    struct chj_error *err)
{
	struct piece *p = w->ctx;
	ssize_t k;

	(void)cbctx;
	if (e->kind != ARCH_KIND_FILE)
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is not a file", e->name);
	if (e->size > SIZE_MAX / 2 || (p->data = malloc((size_t)e->size + 1)) == NULL)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	while (p->len < e->size) {
		k = arch_stream_read(s, p->data + p->len, (size_t)e->size - p->len);
		if (k < 0)
			return -1;
		if (k == 0)
			return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "'%s' ends early", e->name);
		p->len += (size_t)k;
	}
	p->read = 1;
	return 0;
}

/* A piece in the sort that finds shared ones. */
struct piece_key {
	int64_t run;
	const char *name;
	size_t idx;
};

static int
piece_cmp(const void *x, const void *y)
{
	const struct piece_key *a = x, *b = y;

	if (a->run != b->run)
		return a->run < b->run ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Merges the pieces several chains share (a folder's state at several
 * runs, its whole copy under many deltas): each member is then read once.
 * The chains' indexes are renumbered. */
static int
pieces_merge(struct mfetch *f, struct chain *c, size_t n)
{
	struct piece_key *k = NULL;
	struct piece *np = NULL;
	size_t *to = NULL, i, j, u = 0;

	if (f->np < 2)
		return 0;
	k = calloc(f->np, sizeof *k);
	to = calloc(f->np, sizeof *to);
	np = calloc(f->np, sizeof *np);
	if (k == NULL || to == NULL || np == NULL) {
		free(k);
		free(to);
		free(np);
		return chj_error_set(f->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	for (i = 0; i < f->np; i++) {
		k[i].run = f->p[i].run;
		k[i].name = f->p[i].name;
		k[i].idx = i;
	}
	array_sort(k, f->np, sizeof *k, piece_cmp);
	for (i = 0; i < f->np; i++) {
		if (i > 0 && piece_cmp(&k[i - 1], &k[i]) == 0) {
			to[k[i].idx] = u - 1;
			continue;
		}
		to[k[i].idx] = u;
		np[u++] = f->p[k[i].idx];
	}
	/* the names of the merged ones go once nothing compares them: a
	 * piece whose slot is not its own was merged */
	for (i = 0; i < f->np; i++)
		if (np[to[i]].name != f->p[i].name)
			free(f->p[i].name);
	free(f->p);
	f->p = np;
	f->np = u;
	f->capp = f->np;
	for (i = 0; i < n; i++)
		for (j = 0; j < c[i].n; j++)
			c[i].v[j] = to[c[i].v[j]];
	free(k);
	free(to);
	return 0;
}

/* Reads every piece, one pass over the archive. */
static int
read_pieces(struct mfetch *f)
{
	struct arch_want *aw;
	size_t i;
	int rc = 0;

	if (f->np == 0)
		return 0;
	if ((aw = calloc(f->np, sizeof *aw)) == NULL)
		return chj_error_set(f->err, CHJ_ERR_NOMEM, 0, "out of memory");
	for (i = 0; i < f->np; i++) {
		aw[i].run = f->p[i].run;
		aw[i].name = f->p[i].name;
		aw[i].ctx = &f->p[i];
	}
	if (arch_fetch(f->ar, aw, f->np, piece_cb, f) < 0)
		rc = arch_error_copy(f->ar, f->err);
	free(aw);
	return rc;
}

/* Rebuilds chain c into *buf: the whole copy, each delta over it (checking
 * each names the SHA1 and size of what it applies to), the last SHA1. */
static int
chain_apply(struct mfetch *f, const struct chain *c, char **buf, size_t *len, char sha1[41])
{
	const struct piece *base = &f->p[c->v[c->n - 1]];
	struct cyrus_delta_info info;
	unsigned char d[20];
	struct chj_error e;
	char have[41];
	size_t i;

	if ((*buf = malloc(base->len + 1)) == NULL)
		return chj_error_set(f->err, CHJ_ERR_NOMEM, 0, "out of memory");
	memcpy(*buf, base->data, base->len);
	*len = base->len;
	if (sha1_of(*buf, *len, d) < 0)
		return chj_error_set(f->err, CHJ_ERR_NOMEM, 0, "sha1 failed");
	cyrus_guid_hex(d, have);
	for (i = c->n - 1; i-- > 0;) {
		const struct piece *p = &f->p[c->v[i]];

		if (cyrus_delta_info(p->data, p->len, &info, &e) < 0)
			goto bad;
		if (strcmp(info.base_sha1, have) != 0 || info.base_size != *len) {
			chj_error_set(&e, CHJ_ERR_CORRUPT, 0, "it applies to %s, the copy before it is %s",
			    info.base_sha1, have);
			goto bad;
		}
		if (cyrus_delta_apply(buf, len, p->data, p->len, &e) < 0)
			goto bad;
		/* the next delta names this one's result: one SHA1 at the end */
		memcpy(have, info.new_sha1, sizeof have);
		if (i == 0) {
			if (sha1_of(*buf, *len, d) < 0)
				return chj_error_set(f->err, CHJ_ERR_NOMEM, 0, "sha1 failed");
			cyrus_guid_hex(d, have);
			if (strcmp(have, info.new_sha1) != 0) {
				chj_error_set(&e, CHJ_ERR_CORRUPT, 0, "the rebuilt file's SHA1 is %s, the delta "
				    "says %s", have, info.new_sha1);
				goto bad;
			}
		}
		continue;
bad:
		return chj_error_set(f->err, e.code, 0, "'%s' (run %lld): %s", p->name, (long long)p->run,
		    e.msg);
	}
	memcpy(sha1, have, 41);
	return 0;
}

static void
chains_free(struct chain *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(c[i].v);
		if (c[i].n > 0)
			arch_entry_free(&c[i].top);
	}
	free(c);
}

int
cyrus_meta_fetch(struct arch *ar, const struct cyrus_meta_want *w, size_t n, cyrus_meta_cb cb,
    void *ctx, struct chj_error *err)
{
	struct mfetch f;
	struct chain *c = NULL;
	size_t i;
	int rc = -1;

	memset(&f, 0, sizeof f);
	f.ar = ar;
	f.err = err;
	if (n == 0)
		return 0;
	if (arch_runs(ar, &f.runs, &f.nruns) < 0)
		return arch_error_copy(ar, err);
	if ((c = calloc(n, sizeof *c)) == NULL) {
		chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (chain_find(&f, &w[i], &c[i]) < 0)
			goto out;
	if (pieces_merge(&f, c, n) < 0 || read_pieces(&f) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct arch_entry e = c[i].top;
		char *buf = NULL;
		size_t len = 0;
		int r;

		if (chain_apply(&f, &c[i], &buf, &len, e.sha1) < 0) {
			free(buf);
			goto out;
		}
		e.name = (char *)w[i].name;
		e.size = len;
		r = cb(ctx, &w[i], &e, &buf, len, &c[i].info, err);
		free(buf);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	chains_free(c, c ? n : 0);
	for (i = 0; i < f.np; i++) {
		free(f.p[i].name);
		free(f.p[i].data);
	}
	free(f.p);
	free(f.runs);
	return rc;
}
