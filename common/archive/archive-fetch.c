/* archive-fetch.c: reading entries' data back: every wanted entry looked up
 * in the sidecar, then each member inflated once, in file order, the
 * caller reading each entry's data from a stream; and a run's manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive-int.h"
#include "array.h"

struct fetch_item {
	const struct arch_want *w;
	struct arch_entry e;
	int64_t id, member, data_off;
};

static int
fetch_cmp(const void *x, const void *y)
{
	const struct fetch_item *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Looks up every want in the sidecar. */
static int
fetch_lookup(struct arch *a, const struct arch_want *wants, size_t n, struct fetch_item *it)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	if (sqlite3_prepare_v2(a->db, "SELECT id, member, data_off, " ARCH_ENTRY_COLS " FROM entries"
	    " WHERE run = ?1 AND name = ?2 ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return arch_db_fail(a, st);
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, wants[i].run);
		sqlite3_bind_blob(st, 2, wants[i].name, (int)strlen(wants[i].name), SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			chj_error_set(&a->err, CHJ_ERR_NOTFOUND, 0, "archive '%s': no entry '%s' in run %lld",
			    a->path, wants[i].name, (long long)wants[i].run);
			sqlite3_finalize(st);
			return -1;
		}
		it[i].w = &wants[i];
		it[i].id = sqlite3_column_int64(st, 0);
		it[i].member = sqlite3_column_int64(st, 1);
		it[i].data_off = sqlite3_column_int64(st, 2);
		if (arch_row_entry(st, 3, &it[i].e) < 0) {
			sqlite3_finalize(st);
			return chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
	}
	sqlite3_finalize(st);
	return 0;
}

/* Gives the callback a stream of one entry's data, then skips what it left. */
static int
fetch_one(struct arch *a, struct mreader *r, struct fetch_item *it, arch_want_cb cb, void *cbctx)
{
	struct arch_stream s;
	int rc;

	memset(&s, 0, sizeof s);
	s.r = r;
	s.left = it->e.kind == ARCH_KIND_FILE ? it->e.size : 0;
	s.name = it->e.name;
	s.err = &a->err;
	s.check = it->e.kind == ARCH_KIND_FILE && strlen(it->e.sha1) == 40;
	snprintf(s.want, sizeof s.want, "%s", it->e.sha1);
	if (s.check && ((s.md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(s.md, EVP_sha1(), NULL) != 1)) {
		EVP_MD_CTX_free(s.md);
		return chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	chj_error_clear(&a->err);
	rc = cb(cbctx, it->w, &it->e, &s, &a->err);
	if (rc == 0 && s.left > 0) {
		/* the rest, read to check its SHA1 */
		while (rc == 0 && s.left > 0)
			if (arch_stream_read(&s, r->buf, ARCH_BUF) < 0)
				rc = -1;
	}
	if (rc < 0 && a->err.code == CHJ_OK)
		chj_error_set(&a->err, CHJ_ERR_ARCHIVE, 0, "reading '%s' stopped", it->e.name);
	EVP_MD_CTX_free(s.md);
	return rc;
}

int
arch_fetch(struct arch *a, const struct arch_want *wants, size_t n, arch_want_cb cb, void *cbctx)
{
	struct fetch_item *it = calloc(n ? n : 1, sizeof *it);
	struct mreader r;
	int64_t member = -1;
	uint64_t pos = 0;
	size_t i;
	int rc = -1, open_r = 0;

	if (it == NULL)
		return chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (fetch_lookup(a, wants, n, it) < 0)
		goto out;
	array_sort(it, n, sizeof *it, fetch_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && it[i].id == it[i - 1].id) {
			chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "'%s' of run %lld wanted twice", it[i].e.name,
			    (long long)it[i].e.run);
			goto out;
		}
		if (it[i].member != member) {
			if (open_r)
				mreader_close(&r);
			open_r = 1;
			member = it[i].member;
			pos = 0;
			if (mreader_open(&r, a->fd, member) < 0) {
				a->err = r.err;
				goto out;
			}
		}
		if (mreader_skip(&r, (uint64_t)it[i].data_off - pos) < 0) {
			arch_error_wrap(&a->err, &r.err, CHJ_ERR_CORRUPT, "archive '%s': %s", a->path, r.err.msg);
			goto out;
		}
		if (fetch_one(a, &r, &it[i], cb, cbctx) < 0)
			goto out;
		pos = (uint64_t)it[i].data_off + (it[i].e.kind == ARCH_KIND_FILE ? it[i].e.size : 0);
	}
	rc = 0;
out:
	if (open_r)
		mreader_close(&r);
	for (i = 0; i < n; i++)
		arch_entry_free(&it[i].e);
	free(it);
	return rc;
}

struct manifest_ctx {
	char *buf;
	size_t len;
};

static int
manifest_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e, struct arch_stream *s,
    struct chj_error *err)
{
	struct manifest_ctx *m = cbctx;
	ssize_t k;

	(void)w;
	if (e->size > 256u * 1024 * 1024)
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "manifest '%s' is too large", e->name);
	m->buf = malloc((size_t)e->size + 1);
	if (m->buf == NULL)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	while (m->len < e->size) {
		k = arch_stream_read(s, m->buf + m->len, (size_t)e->size - m->len);
		if (k <= 0)
			return -1;
		m->len += (size_t)k;
	}
	m->buf[m->len] = '\0';
	return 0;
}

int
arch_read_manifest(struct arch *a, int64_t run, char **buf, size_t *len)
{
	sqlite3_stmt *st = NULL;
	struct manifest_ctx m = { NULL, 0 };
	struct arch_want w;
	char name[64];

	*buf = NULL;
	*len = 0;
	if (sqlite3_prepare_v2(a->db, "SELECT name FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return arch_db_fail(a, st);
	sqlite3_bind_int64(st, 1, run);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return chj_error_set(&a->err, CHJ_ERR_NOTFOUND, 0, "archive '%s' has no run %lld", a->path,
		    (long long)run);
	}
	snprintf(name, sizeof name, "%s%s", ARCH_RUNS, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	w.run = run;
	w.name = name;
	w.ctx = NULL;
	if (arch_fetch(a, &w, 1, manifest_cb, &m) < 0) {
		free(m.buf);
		return -1;
	}
	*buf = m.buf;
	*len = m.len;
	return 0;
}
