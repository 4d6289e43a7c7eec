/* annotations.c: the folder annotations (IMAP METADATA) of Cyrus 3.6's
 * global annotations.db (cyrus.h): read once, under the lock a Cyrus
 * reader takes, through the project's twoskip reader; the keys are
 * "UNIQUEID\0ENTRY\0USERID\0" (imap/annotate.c make_key), the values
 * make_entry's (cyrus_annot_value). Also the folder record the backup
 * archives beside a folder's meta files (CYRUS_FOLDER_RECORD). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "cyrus/internal.h"

int
cyrus_annots_add(struct cyrus_annots *a, const char *mboxid, const char *entry, const char *userid,
    uint64_t modseq, const char *value, size_t vlen)
{
	struct cyrus_annot *v;

	if ((v = array_grow(a->v, a->n, &a->cap, sizeof *a->v, 64)) == NULL)
		return -1;
	a->v = v;
	v = &a->v[a->n];
	memset(v, 0, sizeof *v);
	v->modseq = modseq;
	v->vlen = vlen;
	v->mboxid = strdup(mboxid);
	v->entry = strdup(entry);
	v->userid = strdup(userid);
	v->value = malloc(vlen + 1);
	if (v->mboxid == NULL || v->entry == NULL || v->userid == NULL || v->value == NULL) {
		free(v->mboxid);
		free(v->entry);
		free(v->userid);
		free(v->value);
		return -1;
	}
	memcpy(v->value, value, vlen);
	v->value[vlen] = '\0';
	a->n++;
	return 0;
}

void
cyrus_annots_free(struct cyrus_annots *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		free(a->v[i].mboxid);
		free(a->v[i].entry);
		free(a->v[i].userid);
		free(a->v[i].value);
	}
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

static int
annot_cmp(const void *x, const void *y)
{
	const struct cyrus_annot *p = x, *q = y;
	int c;

	if ((c = strcmp(p->mboxid, q->mboxid)) != 0)
		return c;
	if ((c = strcmp(p->entry, q->entry)) != 0)
		return c;
	return strcmp(p->userid, q->userid);
}

void
cyrus_annots_sort(struct cyrus_annots *a)
{
	if (a->n > 1)
		qsort(a->v, a->n, sizeof *a->v, annot_cmp);
}

size_t
cyrus_annots_of(const struct cyrus_annots *a, const char *mboxid, size_t *first)
{
	size_t lo = 0, hi = a->n, end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(a->v[mid].mboxid, mboxid) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < a->n && strcmp(a->v[end].mboxid, mboxid) == 0; end++)
		;
	*first = lo;
	return end - lo;
}

struct load {
	struct cyrus_annots *a;
	const char *const *ids;
	size_t nids;
};

static int
wanted(const struct load *l, const char *id)
{
	size_t lo = 0, hi = l->nids;

	if (l->ids == NULL)
		return 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->ids[mid], id);

		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* One record of annotations.db: "UNIQUEID\0ENTRY\0USERID\0" -> value. */
static int
load_record(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct load *l = ctx;
	const char *end = key + klen, *entry, *userid, *data;
	char id[256], ebuf[1024], ubuf[1024];
	uint64_t modseq;
	size_t dlen, ulen;
	int deleted;

	entry = memchr(key, '\0', klen);
	if (entry == NULL || entry == key || (size_t)(entry - key) >= sizeof id)
		return 0;               /* a server annotation (no uniqueid), or not one */
	memcpy(id, key, (size_t)(entry - key));
	id[entry - key] = '\0';
	if (!wanted(l, id))
		return 0;
	entry++;
	userid = memchr(entry, '\0', (size_t)(end - entry));
	if (userid == NULL || (size_t)(userid - entry) >= sizeof ebuf)
		return 0;
	memcpy(ebuf, entry, (size_t)(userid - entry));
	ebuf[userid - entry] = '\0';
	userid++;
	ulen = (size_t)(end - userid);
	if (ulen > 0 && userid[ulen - 1] == '\0')
		ulen--;
	if (ulen >= sizeof ubuf || memchr(userid, '\0', ulen) != NULL)
		return 0;
	memcpy(ubuf, userid, ulen);
	ubuf[ulen] = '\0';
	if (cyrus_annot_value(val, vlen, &data, &dlen, &modseq, &deleted) < 0 || deleted)
		return 0;
	return cyrus_annots_add(l->a, id, ebuf, ubuf, modseq, data, dlen) < 0 ? -2 : 0;
}

int
cyrus_annots_parse(struct cyrus_annots *a, const void *buf, size_t len, const char *const *ids,
    size_t nids)
{
	struct load l = { a, ids, nids };
	int rc;

	rc = cyrus_twoskip_foreach(buf, len, load_record, &l, &a->err);
	if (rc == -2)
		chj_error_set(&a->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (rc != 0)
		return -1;
	cyrus_annots_sort(a);
	return 0;
}

int
cyrus_annots_load(struct cyrus_annots *a, const struct cyrus_conf *c, const char *const *ids,
    size_t nids, int timeout_ms)
{
	const char *path = c->annotation_db_path;
	struct stat st;
	void *map;
	int fd, rc;

	memset(a, 0, sizeof *a);
	if (c->annotation_db != NULL && strcmp(c->annotation_db, "twoskip") != 0)
		return chj_error_set(&a->err, CHJ_ERR_INVALID, 0, "annotation_db '%s' is not supported "
		    "(twoskip only): folder annotations cannot be read", c->annotation_db);
	if (path == NULL || (ids != NULL && nids == 0))
		return 0;
	if ((fd = cyrus_lock_db(path, timeout_ms, &a->err)) < 0) {
		if (a->err.code == CHJ_ERR_NOTFOUND) {
			chj_error_clear(&a->err);
			return 0;           /* no annotation was ever set */
		}
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot stat '%s'", path);
		close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	/* read in place while the lock is held: no writer changes it */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		chj_error_set(&a->err, CHJ_ERR_SYS, errno, "cannot map '%s'", path);
		close(fd);
		return -1;
	}
	rc = cyrus_annots_parse(a, map, (size_t)st.st_size, ids, nids);
	munmap(map, (size_t)st.st_size);
	close(fd);
	if (rc < 0) {
		char why[sizeof a->err.msg];

		snprintf(why, sizeof why, "%s", a->err.msg);
		chj_error_set(&a->err, a->err.code != CHJ_OK ? a->err.code : CHJ_ERR_CORRUPT, 0,
		    "'%s': %s", path, why);
	}
	return rc;
}

int
cyrus_folder_record(const char *mboxlist, const struct cyrus_annot *v, size_t n, char **buf,
    size_t *len)
{
	struct dlw w;
	size_t i;

	memset(&w, 0, sizeof w);
	dlw_open(&w, NULL, 1);
	if (mboxlist != NULL) {
		dlw_str(&w, "MBOXLIST");
		dlw_text(&w, mboxlist);
	}
	dlw_open(&w, "ANNOTATIONS", 0);
	for (i = 0; i < n; i++) {
		dlw_open(&w, NULL, 1);
		dlw_kstr(&w, "ENTRY", v[i].entry);
		dlw_kstr(&w, "USERID", v[i].userid);
		dlw_knum(&w, "MODSEQ", v[i].modseq);
		dlw_str(&w, "VALUE");
		dlw_map(&w, v[i].value, v[i].vlen);
		dlw_close(&w);
	}
	dlw_close(&w);
	dlw_close(&w);
	dlw_raw(&w, "\n", 1);
	if (w.oom) {
		dlw_free(&w);
		return -1;
	}
	*buf = w.buf;
	*len = w.len;
	return 0;
}
