/* archive-io.c: the archive's two layers below the sidecar: writing one gzip
 * member holding a pax tar stream (libarchive frames the tar, zlib deflates
 * it here so we know every member's exact offsets and can fsync), and
 * reading one member back (zlib inflates just that member, checking its
 * CRC; libarchive parses the tar), an entry's data read from it as a stream
 * (its SHA1 checked), and scanning a member's entries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive-int.h"
#include "array.h"

int
arch_error_wrap(struct chj_error *e, const struct chj_error *cause, enum chj_code fallback,
    const char *fmt, ...)
{
	enum chj_code code = cause != NULL && cause->code != CHJ_OK ? cause->code : fallback;
	int errnum = cause != NULL && cause->code != CHJ_OK ? cause->errnum : 0;
	char msg[sizeof e->msg];
	va_list ap;

	/* formatted apart first: fmt's arguments may be e's own message */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	e->code = code;
	e->errnum = errnum;
	memcpy(e->msg, msg, sizeof msg);
	return -1;
}

void
went_free(struct went *e)
{
	free(e->name);
	free(e->target);
	e->name = e->target = NULL;
}

int
arch_sha1_hex(EVP_MD_CTX *md, char out[41])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (EVP_DigestFinal_ex(md, d, &n) != 1 || n != 20)
		return -1;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	return 0;
}

int
arch_name_safe(const char *name)
{
	const char *p = name, *c;
	size_t l;

	if (*name == '\0' || *name == '/' || strlen(name) > ARCH_NAME_MAX)
		return 0;
	while (*p != '\0') {
		c = strchr(p, '/');
		l = c ? (size_t)(c - p) : strlen(p);
		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (c == NULL)
			break;
		p = c + 1;
		if (*p == '\0')
			return 0;
	}
	return 1;
}

/* ---- writing ---- */

/* The compressor's sink: writes deflated bytes at the member's end. */
static int
mwriter_sink(void *ctx, const void *buf, size_t n)
{
	struct mwriter *w = ctx;
	const char *p = buf;
	size_t done = 0;
	ssize_t k;

	while (done < n) {
		k = pwrite(w->fd, p + done, n - done, w->pos);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return chj_error_set(&w->err, CHJ_ERR_SYS, errno, "write");
		if (k == 0)
			return chj_error_set(&w->err, CHJ_ERR_ARCHIVE, 0, "write: short write");
		done += (size_t)k;
		w->pos += k;
	}
	return 0;
}

/* Compresses n bytes of the tar stream. */
static int
mwriter_deflate(struct mwriter *w, const void *buf, size_t n)
{
	if (w->pd == NULL) {
		/* the member was dropped: the tar stream's end goes nowhere */
		return chj_error_set(&w->err, CHJ_ERR_INVALID, 0, "the member was dropped");
	}
	if (pdeflate_write(w->pd, buf, n) < 0) {
		if (w->err.code == CHJ_OK)
			w->err = *pdeflate_error(w->pd);
		return -1;
	}
	return 0;
}

static la_ssize_t
mwriter_cb(struct archive *aw, void *cd, const void *buf, size_t n)
{
	struct mwriter *w = cd;

	if (mwriter_deflate(w, buf, n) < 0) {
		w->al.archive_set_error(aw, EIO, "%s", w->err.msg);
		return -1;
	}
	w->ubytes += n;
	return (la_ssize_t)n;
}

int
mwriter_begin(struct mwriter *w, int fd, int64_t start, struct pdeflate_pool *pool)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->start = w->pos = start;
	if (archive_lib_open(&w->al, &w->err) < 0)
		return -1;
	/* one gzip member per run, deflated on both cores (pdeflate.c) */
	if ((pool != NULL ? pdeflate_new_pooled(&w->pd, pool, mwriter_sink, w) :
	    pdeflate_new(&w->pd, ARCH_LEVEL, ARCH_THREADS, ARCH_CHUNK, mwriter_sink, w)) < 0) {
		return chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "cannot start the compressor: out of memory");
	}
	w->aw = w->al.archive_write_new();
	/* Full pax, not pax_restricted: restricted drops the mtime's
	 * nanoseconds. No blocking: every byte reaches mwriter_cb at once, so
	 * ubytes after a header is the offset of the entry's data. */
	if (w->aw == NULL || w->al.archive_write_set_format_pax(w->aw) != ARCHIVE_OK ||
	    w->al.archive_write_add_filter_none(w->aw) != ARCHIVE_OK ||
	    w->al.archive_write_set_bytes_per_block(w->aw, 0) != ARCHIVE_OK ||
	    w->al.archive_write_set_bytes_in_last_block(w->aw, 1) != ARCHIVE_OK ||
	    w->al.archive_write_open(w->aw, w, NULL, mwriter_cb, NULL) != ARCHIVE_OK) {
		return chj_error_set(&w->err, w->aw ? CHJ_ERR_ARCHIVE : CHJ_ERR_NOMEM, 0,
		    "cannot start tar stream: %s", w->aw ? w->al.archive_error_string(w->aw) : "out of memory");
	}
	return 0;
}

/* Copies the entry's data from src into the tar stream, hashing it. */
static int
mwriter_data(struct mwriter *w, const struct arch_src *src, uint64_t size, EVP_MD_CTX *md,
    const char *name)
{
	unsigned char *tmp = NULL;
	uint64_t left = size;
	struct chj_error rerr;
	ssize_t k;
	int rc = -1;

	if (src->buf != NULL) {
		if (src->sha1 == NULL)
			EVP_DigestUpdate(md, src->buf, size);
		if (size > 0 && w->al.archive_write_data(w->aw, src->buf, size) != (la_ssize_t)size)
			goto werr;
		return 0;
	}
	/* one buffer for the member's entries, not one each */
	if (w->tmp == NULL && (w->tmp = malloc(ARCH_BUF)) == NULL)
		return chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
	tmp = w->tmp;
	while (left > 0) {
		size_t want = left < ARCH_BUF ? (size_t)left : ARCH_BUF;

		chj_error_clear(&rerr);
		if (src->stream != NULL)
			k = arch_stream_read(src->stream, tmp, want);
		else if (src->fn != NULL)
			k = src->fn(src->fn_ctx, tmp, want, &rerr);
		else
			k = read(src->fd, tmp, want);
		if (k < 0 && src->stream == NULL && src->fn == NULL && errno == EINTR)
			continue;
		if (k < 0) {
			/* the code of the source's error is kept */
			if (src->stream != NULL)
				arch_error_wrap(&w->err, src->stream->err, CHJ_ERR_ARCHIVE,
				    "cannot read data of '%s': %s", name, src->stream->err->msg);
			else if (src->fn != NULL)
				arch_error_wrap(&w->err, &rerr, CHJ_ERR_ARCHIVE, "cannot read data of '%s': %s",
				    name, rerr.msg);
			else
				chj_error_set(&w->err, CHJ_ERR_SYS, errno, "cannot read data of '%s'", name);
			goto out;
		}
		if (k == 0) {
			chj_error_set(&w->err, CHJ_ERR_ARCHIVE, 0, "data of '%s' ends %llu bytes short of its size %llu",
			    name, (unsigned long long)left, (unsigned long long)size);
			goto out;
		}
		EVP_DigestUpdate(md, tmp, (size_t)k);
		if (w->al.archive_write_data(w->aw, tmp, (size_t)k) != k)
			goto werr;
		left -= (uint64_t)k;
	}
	rc = 0;
	goto out;
werr:
	/* a failed write into the file (w->err set by the sink) keeps its code */
	arch_error_wrap(&w->err, &w->err, CHJ_ERR_ARCHIVE, "cannot write '%s': %s", name,
	    w->al.archive_error_string(w->aw));
out:
	return rc;
}

int
mwriter_add(struct mwriter *w, const char *name, int kind, const char *target,
    const struct arch_src *src, uint64_t size, int64_t mtime_ns, unsigned mode)
{
	struct archive_entry *ae = NULL;
	EVP_MD_CTX *md = NULL;
	struct went e, *nv;
	int rc = -1;

	memset(&e, 0, sizeof e);
	if (w->failed) {
		return chj_error_set(&w->err, CHJ_ERR_INVALID, 0, "the run already failed: abort it");
	}
	if (w->sealed)
		return chj_error_set(&w->err, CHJ_ERR_INVALID, 0, "the run is sealed: commit it");
	if ((nv = array_grow(w->ents, w->nents, &w->cap, sizeof *nv, 64)) == NULL)
		return chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
	w->ents = nv;
	ae = w->al.archive_entry_new();
	/* one digest context for the member's entries (EVP_DigestInit_ex resets it) */
	if (w->md == NULL)
		w->md = EVP_MD_CTX_new();
	md = w->md;
	e.name = strdup(name);
	e.target = target ? strdup(target) : NULL;
	if (ae == NULL || md == NULL || e.name == NULL || (target && e.target == NULL) ||
	    EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1) {
		chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	w->al.archive_entry_copy_pathname(ae, name);
	w->al.archive_entry_set_uid(ae, 0);
	w->al.archive_entry_set_gid(ae, 0);
	w->al.archive_entry_set_mtime(ae, (time_t)(mtime_ns / 1000000000 - (mtime_ns % 1000000000 < 0)),
	    (long)(((mtime_ns % 1000000000) + 1000000000) % 1000000000));
	if (kind == ARCH_KIND_SYMLINK) {
		w->al.archive_entry_set_filetype(ae, AE_IFLNK);
		w->al.archive_entry_set_perm(ae, 0777);
		w->al.archive_entry_copy_symlink(ae, target);
		w->al.archive_entry_set_size(ae, 0);
		size = 0;
		mode = 0777;
	} else {
		w->al.archive_entry_set_filetype(ae, AE_IFREG);
		mode &= 0777;
		w->al.archive_entry_set_perm(ae, mode);
		w->al.archive_entry_set_size(ae, (la_int64_t)size);
	}
	/* From here on a failure leaves the tar stream broken: the run is dead. */
	w->failed = 1;
	chj_error_clear(&w->err);
	/* ARCHIVE_WARN: a name that is not UTF-8 was written as bytes
	 * (hdrcharset=BINARY), which is what we want: names are bytes */
	if (w->al.archive_write_header(w->aw, ae) < ARCHIVE_WARN) {
		arch_error_wrap(&w->err, &w->err, CHJ_ERR_ARCHIVE, "cannot write the header of '%s': %s", name,
		    w->al.archive_error_string(w->aw));
		goto out;
	}
	e.data_off = (int64_t)w->ubytes;
	if (kind == ARCH_KIND_FILE && mwriter_data(w, src, size, md, name) < 0)
		goto out;
	if (w->al.archive_write_finish_entry(w->aw) != ARCHIVE_OK) {
		arch_error_wrap(&w->err, &w->err, CHJ_ERR_ARCHIVE, "cannot write '%s': %s", name,
		    w->al.archive_error_string(w->aw));
		goto out;
	}
	if (kind == ARCH_KIND_FILE && src->buf != NULL && src->sha1 != NULL) {
		memcpy(e.sha1, src->sha1, sizeof e.sha1);
	} else if (arch_sha1_hex(md, e.sha1) < 0) {
		chj_error_set(&w->err, CHJ_ERR_ARCHIVE, 0, "sha1 failed");
		goto out;
	}
	w->failed = 0;
	e.kind = kind;
	e.size = size;
	e.mtime_ns = mtime_ns;
	e.mode = mode;
	w->ents[w->nents++] = e;
	memset(&e, 0, sizeof e);
	rc = 0;
out:
	went_free(&e);
	w->al.archive_entry_free(ae);
	return rc;
}

int
mwriter_seal(struct mwriter *w)
{
	chj_error_clear(&w->err);
	if (w->sealed)
		return chj_error_set(&w->err, CHJ_ERR_INVALID, 0, "the run is sealed already");
	if (w->al.archive_write_close(w->aw) != ARCHIVE_OK)
		return arch_error_wrap(&w->err, &w->err, CHJ_ERR_ARCHIVE, "cannot end the tar stream: %s",
		    w->al.archive_error_string(w->aw));
	if (pdeflate_seal(w->pd) < 0) {
		if (w->err.code == CHJ_OK)
			w->err = *pdeflate_error(w->pd);
		return -1;
	}
	w->sealed = 1;
	return 0;
}

int
mwriter_finish(struct mwriter *w)
{
	if (!w->sealed && mwriter_seal(w) < 0)
		return -1;
	chj_error_clear(&w->err);
	if (pdeflate_finish(w->pd) < 0) {
		if (w->err.code == CHJ_OK)
			w->err = *pdeflate_error(w->pd);
		return -1;
	}
	return 0;
}

void
mwriter_free(struct mwriter *w)
{
	size_t i;

	if (w == NULL)
		return;
	/* the compressor goes first: freeing an open libarchive writer ends
	 * its tar stream, and those bytes must reach no file */
	pdeflate_free(w->pd);
	w->pd = NULL;
	if (w->aw != NULL)
		w->al.archive_write_free(w->aw);
	archive_lib_close(&w->al);
	for (i = 0; i < w->nents; i++)
		went_free(&w->ents[i]);
	free(w->ents);
	free(w->tmp);
	EVP_MD_CTX_free(w->md);
	memset(w, 0, sizeof *w);
}

/* ---- reading ---- */

int
mreader_open(struct mreader *r, int fd, int64_t start)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->start = r->in_pos = start;
	r->in = malloc(ARCH_BUF);
	r->buf = malloc(ARCH_BUF);
	if (r->in == NULL || r->buf == NULL)
		return chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (inflateInit2(&r->z, 15 + 16) != Z_OK)
		return chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "inflateInit failed");
	r->z_init = 1;
	return 0;
}

ssize_t
mreader_read(struct mreader *r, void *buf, size_t len)
{
	ssize_t k;
	int rc;

	if (r->err.code != CHJ_OK)
		return -1;
	r->z.next_out = buf;
	r->z.avail_out = (uInt)len;
	while (!r->done && r->z.avail_out == len) {
		if (r->z.avail_in == 0) {
			k = pread(r->fd, r->in, ARCH_BUF, r->in_pos);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return chj_error_set(&r->err, CHJ_ERR_SYS, errno, "read at offset %lld",
				    (long long)r->in_pos);
			if (k == 0)
				return chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "gzip member at offset %lld is truncated",
				    (long long)r->start);
			r->in_pos += k;
			r->z.next_in = r->in;
			r->z.avail_in = (uInt)k;
		}
		rc = inflate(&r->z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			r->done = 1;
			r->end = r->in_pos - r->z.avail_in;
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			return chj_error_set(&r->err, rc == Z_MEM_ERROR ? CHJ_ERR_NOMEM : CHJ_ERR_CORRUPT, 0,
			    "gzip member at offset %lld: %s", (long long)r->start,
			    r->z.msg ? r->z.msg : "inflate failed");
		}
	}
	k = (ssize_t)(len - r->z.avail_out);
	r->out += (uint64_t)k;
	return k;
}

int
mreader_skip(struct mreader *r, uint64_t n)
{
	ssize_t k;

	while (n > 0) {
		k = mreader_read(r, r->buf, n < ARCH_BUF ? (size_t)n : ARCH_BUF);
		if (k < 0)
			return -1;
		if (k == 0)
			return chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "gzip member at offset %lld ends early",
			    (long long)r->start);
		n -= (uint64_t)k;
	}
	return 0;
}

void
mreader_close(struct mreader *r)
{
	if (r->z_init)
		inflateEnd(&r->z);
	free(r->in);
	free(r->buf);
	r->in = r->buf = NULL;
	r->z_init = 0;
}

static la_ssize_t
mreader_cb(struct archive *ar, void *cd, const void **buf)
{
	struct mreader *r = cd;
	ssize_t k = mreader_read(r, r->buf, ARCH_BUF);

	if (k < 0) {
		r->al->archive_set_error(ar, EIO, "%s", r->err.msg);
		return -1;
	}
	*buf = r->buf;
	return k;
}

/* A stream over the data of one entry of a member being read: what a
 * fetch callback reads from, the SHA1 checked at its end. */
ssize_t
arch_stream_read(struct arch_stream *s, void *buf, size_t len)
{
	char got[41];
	ssize_t k;

	if (s->left == 0)
		return 0;
	if (len > s->left)
		len = (size_t)s->left;
	k = mreader_read(s->r, buf, len);
	if (k < 0) {
		*s->err = s->r->err;
		return -1;
	}
	if (k == 0)
		return chj_error_set(s->err, CHJ_ERR_CORRUPT, 0, "data of '%s' ends early", s->name);
	s->left -= (uint64_t)k;
	if (s->check) {
		EVP_DigestUpdate(s->md, buf, (size_t)k);
		if (s->left == 0 && (arch_sha1_hex(s->md, got) < 0 || strcmp(got, s->want) != 0)) {
			return chj_error_set(s->err, CHJ_ERR_CORRUPT, 0, "data of '%s' does not match its SHA1 %s",
			    s->name, s->want);
		}
	}
	return k;
}

/* ---- scanning a member ---- */

void
mscan_free(struct mscan *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		went_free(&m->ents[i]);
	free(m->ents);
	memset(m, 0, sizeof *m);
}

/* Reads an entry's data: hashes it, and keeps it in *keep when keep. */
static int
mscan_data(const struct archive_lib *al, struct archive *ar, struct went *e, unsigned char *buf, int keep, unsigned char **kbuf,
    size_t *klen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	la_ssize_t k;
	uint64_t total = 0;
	int rc = -1;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1)
		goto out;
	while ((k = al->archive_read_data(ar, buf, ARCH_BUF)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)k);
		if (keep) {
			unsigned char *nb = realloc(*kbuf, *klen + (size_t)k);

			if (nb == NULL)
				goto out;
			memcpy(nb + *klen, buf, (size_t)k);
			*kbuf = nb;
			*klen += (size_t)k;
		}
		total += (uint64_t)k;
	}
	if (k < 0 || total != e->size)
		goto out;
	if (arch_sha1_hex(md, e->sha1) < 0)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

static void
scan_say(scan_problem_fn problem, void *pctx, int64_t offset, const char *what, const char *name)
{
	if (problem != NULL)
		problem(pctx, "member at offset %lld: %s%s%s%s", (long long)offset, what,
		    name ? " '" : "", name ? name : "", name ? "'" : "");
}

/* Stores the header of ae into e, or says why it cannot be one of ours. */
static int
mscan_header(const struct archive_lib *al, struct archive_entry *ae, struct went *e, int64_t offset,
    scan_problem_fn problem, void *pctx)
{
	const char *name = al->archive_entry_pathname(ae);
	const char *t;
	mode_t type = al->archive_entry_filetype(ae);

	if (name == NULL) {
		scan_say(problem, pctx, offset, "entry without a name", NULL);
		return -1;
	}
	if (!arch_name_safe(name))
		scan_say(problem, pctx, offset, "unsafe entry name (absolute, '..', empty part or too long)",
		    strlen(name) > 200 ? "(long name)" : name);
	e->name = strdup(name);
	e->mtime_ns = (int64_t)al->archive_entry_mtime(ae) * 1000000000 + al->archive_entry_mtime_nsec(ae);
	e->mode = al->archive_entry_perm(ae) & 0777;
	e->size = (uint64_t)al->archive_entry_size(ae);
	if (type == AE_IFLNK) {
		t = al->archive_entry_symlink(ae);
		e->kind = ARCH_KIND_SYMLINK;
		e->target = strdup(t ? t : "");
		e->size = 0;
		e->mode = 0777;
		if (e->target == NULL)
			return -1;
	} else if (type != AE_IFREG) {
		scan_say(problem, pctx, offset, al->archive_entry_hardlink(ae) ? "hard link entry" :
		    "entry neither a file nor a symlink", name);
		e->kind = ARCH_KIND_FILE;
	}
	return e->name ? 0 : -1;
}

/* Adds e to m (taking its strings). */
static int
mscan_push(struct mscan *m, struct went *e)
{
	struct went *nv = array_grow(m->ents, m->n, &m->cap, sizeof *nv, 64);

	if (nv == NULL)
		return -1;
	m->ents = nv;
	m->ents[m->n++] = *e;
	m->bytes += (int64_t)e->size;
	memset(e, 0, sizeof *e);
	return 0;
}

/* Reads the tar entries of the member through libarchive; 1 when the tar
 * stream ended properly, 0 when not, -1 out of memory. */
static int
mscan_entries(const struct archive_lib *al, struct archive *ar, struct mreader *r, struct mscan *m, unsigned char *buf,
    scan_problem_fn problem, void *pctx, arch_entry_data_cb data_cb, void *dctx)
{
	struct archive_entry *ae;
	int rc;

	for (;;) {
		struct went e;
		unsigned char *kbuf = NULL;
		size_t klen = 0;
		int keep;

		memset(&e, 0, sizeof e);
		rc = al->archive_read_next_header(ar, &ae);
		if (rc == ARCHIVE_EOF)
			return 1;
		if (rc == ARCHIVE_WARN && r->err.code == CHJ_OK) {
			scan_say(problem, pctx, m->offset, al->archive_error_string(ar), al->archive_entry_pathname(ae));
		} else if (rc != ARCHIVE_OK) {
			scan_say(problem, pctx, m->offset, r->err.code ? r->err.msg : al->archive_error_string(ar), NULL);
			return 0;
		}
		if (mscan_header(al, ae, &e, m->offset, problem, pctx) < 0) {
			went_free(&e);
			return 0;
		}
		/* what the tar reader consumed so far: the entry's data starts here */
		e.data_off = al->archive_filter_bytes(ar, 0);
		keep = data_cb != NULL && e.kind == ARCH_KIND_FILE && strncmp(e.name, ARCH_FOLDERS,
		    strlen(ARCH_FOLDERS)) == 0 && e.size < ((uint64_t)1 << 30);
		if (mscan_data(al, ar, &e, buf, keep, &kbuf, &klen) < 0) {
			scan_say(problem, pctx, m->offset, r->err.code ? r->err.msg :
			    al->archive_errno(ar) ? al->archive_error_string(ar) : "entry data cut short", e.name);
			free(kbuf);
			went_free(&e);
			return 0;
		}
		if (keep) {
			struct arch_entry ce;

			memset(&ce, 0, sizeof ce);
			ce.name = e.name;
			ce.kind = e.kind;
			ce.size = e.size;
			ce.mtime_ns = e.mtime_ns;
			ce.mode = e.mode;
			memcpy(ce.sha1, e.sha1, sizeof ce.sha1);
			data_cb(dctx, &ce, kbuf, klen);
		}
		free(kbuf);
		if (mscan_push(m, &e) < 0) {
			went_free(&e);
			return -1;
		}
	}
}

int
mscan_member(int fd, int64_t offset, struct mscan *m, scan_problem_fn problem, void *pctx,
    arch_entry_data_cb data_cb, void *dctx, struct chj_error *e)
{
	struct archive_lib al;
	struct mreader r;
	struct archive *ar = NULL;
	unsigned char *buf = NULL;
	int tar_ok = 0, rc = -1;
	ssize_t k, i;

	memset(m, 0, sizeof *m);
	memset(&r, 0, sizeof r);
	m->offset = offset;
	if (archive_lib_open(&al, e) < 0)
		return -1;
	buf = malloc(ARCH_BUF);
	if (buf == NULL || mreader_open(&r, fd, offset) < 0)
		goto out;
	r.al = &al;
	ar = al.archive_read_new();
	if (ar == NULL || al.archive_read_support_format_tar(ar) != ARCHIVE_OK)
		goto out;
	if (al.archive_read_open(ar, &r, NULL, mreader_cb, NULL) != ARCHIVE_OK) {
		scan_say(problem, pctx, offset, r.err.code ? r.err.msg : al.archive_error_string(ar), NULL);
	} else {
		tar_ok = mscan_entries(&al, ar, &r, m, buf, problem, pctx, data_cb, dctx);
		if (tar_ok < 0)
			goto out;
	}
	/* the rest of the member: zeros only (GNU tar -i would read anything else) */
	while (tar_ok && (k = mreader_read(&r, buf, ARCH_BUF)) > 0) {
		for (i = 0; i < k && buf[i] == 0; i++)
			;
		if (i < k) {
			scan_say(problem, pctx, offset, "data after the end of the tar stream", NULL);
			break;
		}
	}
	if (tar_ok && !r.done)
		scan_say(problem, pctx, offset, r.err.code ? r.err.msg : "gzip member not ended", NULL);
	if (r.done)
		m->end = r.end;
	m->complete = tar_ok && r.done && m->n > 0 &&
	    strncmp(m->ents[m->n - 1].name, ARCH_RUNS, strlen(ARCH_RUNS)) == 0 &&
	    m->ents[m->n - 1].kind == ARCH_KIND_FILE;
	if (tar_ok && r.done && !m->complete)
		scan_say(problem, pctx, offset, "member does not end with a runs/ entry", NULL);
	rc = 0;
out:
	if (rc < 0)
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory scanning the archive");
	if (ar != NULL)
		al.archive_read_free(ar);
	mreader_close(&r);
	free(buf);
	archive_lib_close(&al);
	return rc;
}
