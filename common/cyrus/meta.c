/* meta.c: parsers for a Cyrus mailbox's cyrus.header (the 2.x lines and the
 * 3.x dlist line) and cyrus.index / 2.x cyrus.expunge (minor versions 10 to
 * 20). Field offsets per version come from Cyrus's imap/mailbox.c
 * (mailbox_buf_to_index_header, mailbox_buf_to_index_record), imap/mailbox.h
 * of 2.4 (v12) and of 3.10+ (v20), and cassandane's Cyrus/IndexFile.pm
 * (v10, v11). Every number is big-endian. Also the reader of a small meta
 * file whole (a cyrus.header). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

static const char header_magic[] = "\241\002\213\015Cyrus mailbox header\n";

/* ---- cyrus.header ---- */

int
cyrus_read_small(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	size_t got = 0;
	char *b;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size > CYRUS_SMALL_MAX) {
		if (st.st_size > CYRUS_SMALL_MAX)
			errno = EFBIG;
		close(fd);
		return -1;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

static int
add_flag(struct cyrus_header *h, const char *s, size_t n)
{
	char **v = realloc(h->flagnames, (h->nflags + 1) * sizeof *v);

	if (!v)
		return -1;
	h->flagnames = v;
	v[h->nflags] = strndup(s, n);
	if (!v[h->nflags])
		return -1;
	h->nflags++;
	return 0;
}

static const char *
next_line(const char *p, const char *end)
{
	const char *e = memchr(p, '\n', (size_t)(end - p));

	return e;
}

/* 2.x: "quotaroot\tuniqueid\n" (2.2 and older: "quotaroot\n"), a line of
 * space-separated flag names, an ACL line of tab-separated pairs. */
static int
header_v2(struct cyrus_header *h, const char *p, const char *end)
{
	const char *e = next_line(p, end), *tab, *q, *s;

	if (!e)
		goto bad;
	tab = memchr(p, '\t', (size_t)(e - p));
	h->quotaroot = strndup(p, (size_t)((tab ? tab : e) - p));
	if (tab)
		h->uniqueid = strndup(tab + 1, (size_t)(e - tab - 1));
	if (!h->quotaroot || (tab && !h->uniqueid))
		goto nomem;
	if (!*h->quotaroot) {
		free(h->quotaroot);
		h->quotaroot = NULL;
	}
	p = e + 1;
	e = next_line(p, end);
	if (!e)
		goto bad;
	for (q = p; q < e; q = s + 1) {
		while (q < e && *q == ' ')
			q++;
		if (q >= e)
			break;
		s = memchr(q, ' ', (size_t)(e - q));
		if (!s)
			s = e;
		if (add_flag(h, q, (size_t)(s - q)) < 0)
			goto nomem;
	}
	p = e + 1;
	e = next_line(p, end);
	h->acl = strndup(p, (size_t)((e ? e : end) - p));
	if (!h->acl)
		goto nomem;
	return 0;
bad:
	chj_error_set(&h->err, CHJ_ERR_CORRUPT, 0, "cyrus.header: truncated 2.x header");
	return -1;
nomem:
	chj_error_set(&h->err, CHJ_ERR_NOMEM, 0, "out of memory");
	return -1;
}

/* The ACL kvlist %(id rights ...) in Cyrus's "id\trights\t" form. */
static char *
acl_string(const struct dl *a)
{
	size_t i, len = 1;
	char *r, *p;

	for (i = 0; i < a->n; i++)
		len += strlen(a->keys[i]) + (a->v[i].s ? strlen(a->v[i].s) : 0) + 2;
	r = malloc(len);
	if (!r)
		return NULL;
	p = r;
	for (i = 0; i < a->n; i++)
		p += sprintf(p, "%s\t%s\t", a->keys[i], a->v[i].s ? a->v[i].s : "");
	*p = '\0';
	return r;
}

/* 3.x: one dlist line %(T e N name I uniqueid [Q root] A %(acl) U (flags)). */
static int
header_v3(struct cyrus_header *h, const char *p, const char *end)
{
	struct dl d;
	const struct dl *a, *u;
	const char *s;
	size_t i;
	int r = -1;

	if (dl_parse(&d, p, (size_t)(end - p), NULL, &h->err) < 0) {
		struct chj_error e = h->err;

		return chj_error_set(&h->err, e.code, 0, "cyrus.header: %s", e.msg);
	}
	if (d.kind != DL_KVLIST) {
		chj_error_set(&h->err, CHJ_ERR_CORRUPT, 0, "cyrus.header: not a key-value list");
		goto out;
	}
	if (!(s = dl_atom(&d, "I"))) {
		chj_error_set(&h->err, CHJ_ERR_CORRUPT, 0, "cyrus.header: no uniqueid (I)");
		goto out;
	}
	if (!(h->uniqueid = strdup(s)))
		goto nomem;
	if ((s = dl_atom(&d, "N")) && !(h->name = strdup(s)))
		goto nomem;
	if ((s = dl_atom(&d, "Q")) && *s && !(h->quotaroot = strdup(s)))
		goto nomem;
	if ((a = dl_get(&d, "A"))) {
		if (a->kind == DL_KVLIST)
			h->acl = acl_string(a);
		else
			h->acl = strdup(a->s ? a->s : "");
		if (!h->acl)
			goto nomem;
	}
	if ((u = dl_get(&d, "U")) && u->kind == DL_LIST) {
		for (i = 0; i < u->n; i++)
			if (add_flag(h, u->v[i].s ? u->v[i].s : "", u->v[i].s ? strlen(u->v[i].s) : 0) < 0)
				goto nomem;
	}
	r = 0;
	goto out;
nomem:
	chj_error_set(&h->err, CHJ_ERR_NOMEM, 0, "out of memory");
out:
	dl_free(&d);
	return r;
}

int
cyrus_header_parse(struct cyrus_header *h, const void *buf, size_t len)
{
	const char *b = buf, *end = b + len, *p;
	int i;

	memset(h, 0, sizeof *h);
	if (len < sizeof header_magic - 1 || memcmp(b, header_magic, sizeof header_magic - 1)) {
		chj_error_set(&h->err, CHJ_ERR_CORRUPT, 0, "cyrus.header: bad magic");
		return -1;
	}
	p = b + sizeof header_magic - 1;
	for (i = 0; i < 2; i++) {          /* the two quote lines */
		p = next_line(p, end);
		if (!p) {
			chj_error_set(&h->err, CHJ_ERR_CORRUPT, 0, "cyrus.header: truncated");
			return -1;
		}
		p++;
	}
	if (p < end && p[0] == '%')
		i = header_v3(h, p, end);
	else
		i = header_v2(h, p, end);
	if (i < 0)
		cyrus_header_free(h);          /* keeps h->err */
	return i;
}

void
cyrus_header_free(struct cyrus_header *h)
{
	size_t i;

	if (!h)
		return;
	free(h->name);
	free(h->uniqueid);
	free(h->quotaroot);
	free(h->acl);
	for (i = 0; i < h->nflags; i++)
		free(h->flagnames[i]);
	free(h->flagnames);
	h->name = h->uniqueid = h->quotaroot = h->acl = NULL;
	h->flagnames = NULL;
	h->nflags = 0;
}

/* ---- cyrus.index ---- */

/* What a minor version's header and records hold (sizes in bytes; a CRC is
 * the last 4 bytes of the header or record; 0: none). */
struct index_layout {
	uint32_t version, header_size, record_size;
	int header_crc, record_crc;
	/* header */
	uint32_t h_num_records, h_last_uid, h_uidvalidity, h_highestmodseq, h_exists;
	/* record */
	uint32_t r_internaldate, r_size, r_system_flags, r_user_flags, r_modseq;
	int wide;                          /* v20: 64-bit internaldate (ns) and size */
};

#define NONE UINT32_MAX

/* v10/v11 have no separate exists (the count at 20 is the records); 18 and
 * 19 keep v17's sizes and fields we read (3.8/3.9 added header fields
 * in v17's spares and left the record alone). */
static const struct index_layout layouts[] = {
	{ 10,  96,  88, 0, 0, 20, 28, 44, 68, NONE, 4, 12, 32, 36, 80, 0 },
	{ 11,  96,  96, 1, 1, 20, 28, 44, 68, NONE, 4, 12, 32, 36, 80, 0 },
	{ 12, 128,  96, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 13, 128, 104, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 14, 160, 104, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 15, 160, 104, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 16, 160, 112, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 17, 160, 112, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 18, 160, 112, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 19, 160, 112, 1, 1, 20, 28, 44, 68, 84, 4, 12, 32, 36, 80, 0 },
	{ 20, 192, 144, 1, 1, 20, 88, 92, 72, 60, 8, 24, 36, 40, 80, 1 },
};

#define GUID_OFFSET 60

static int
crc_ok(const unsigned char *p, uint32_t size)
{
	return (uint32_t)crc32(0L, p, size - 4) == be32_get(p + size - 4);
}

static const struct index_layout *
layout_of(uint32_t v)
{
	size_t i;

	for (i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
		if (layouts[i].version == v)
			return &layouts[i];
	return NULL;
}

int
cyrus_index_layout(uint32_t minor_version, uint32_t *header_size, uint32_t *record_size)
{
	const struct index_layout *L = layout_of(minor_version);

	if (!L)
		return -1;
	*header_size = L->header_size;
	*record_size = L->record_size;
	return 0;
}

static int
parse_record(struct cyrus_index *x, const struct index_layout *L, const unsigned char *p,
    uint32_t recno)
{
	struct cyrus_index_record *r = &x->records[recno];
	uint64_t v;
	int i;

	if (L->record_crc && !crc_ok(p, L->record_size)) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: record %u: bad CRC", recno + 1);
		return -1;
	}
	r->uid = be32_get(p);
	if (L->wide) {
		r->internaldate = (uint32_t)(be64_get(p + L->r_internaldate) / 1000000000u);
		v = be64_get(p + L->r_size);
		if (v > UINT32_MAX) {
			chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: record %u: size %llu too large",
			    recno + 1, (unsigned long long)v);
			return -1;
		}
		r->size = (uint32_t)v;
	} else {
		r->internaldate = be32_get(p + L->r_internaldate);
		r->size = be32_get(p + L->r_size);
	}
	r->system_flags = be32_get(p + L->r_system_flags);
	for (i = 0; i < 4; i++)
		r->user_flags[i] = be32_get(p + L->r_user_flags + 4 * i);
	memcpy(r->guid, p + GUID_OFFSET, sizeof r->guid);
	r->modseq = be64_get(p + L->r_modseq);
	if (L->version >= 12 && L->version <= 19) {
		r->last_updated = be32_get(p + 28);
		if (L->version >= 13)
			r->cid = be64_get(p + 88);
		if (L->version >= 15)
			r->savedate = be32_get(p + 52);
		if (L->version >= 16)
			r->createdmodseq = be64_get(p + 96);
	}
	return 0;
}

/* The header fields replication carries (Cyrus's mailbox_buf_to_index_header,
 * minor versions 12 to 19). */
static void
parse_header_extra(struct cyrus_index *x, const struct index_layout *L, const unsigned char *b)
{
	if (L->version < 12 || L->version > 19)
		return;
	x->last_appenddate = be32_get(b + 24);
	x->pop3_last_login = be32_get(b + 40);
	x->options = be32_get(b + 60);
	x->sync_crc = be32_get(b + 100);
	x->recentuid = be32_get(b + 104);
	x->recenttime = be32_get(b + 108);
	if (L->version >= 13) {
		x->pop3_show_after = be32_get(b + 112);
		x->sync_crc_annot = be32_get(b + 120);
	}
	if (L->version >= 16)
		x->createdmodseq = be64_get(b + 128);
}

int
cyrus_index_parse(struct cyrus_index *x, const void *buf, size_t len)
{
	const unsigned char *b = buf;
	const struct index_layout *L;
	uint32_t i;

	memset(x, 0, sizeof *x);
	if (len < 12) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: truncated header (%zu bytes)", len);
		return -1;
	}
	x->minor_version = be32_get(b + 8);
	L = layout_of(x->minor_version);
	if (!L) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: unsupported minor version %u",
		    x->minor_version);
		return -1;
	}
	if (len < L->header_size) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: truncated header (%zu of %u bytes)",
		    len, L->header_size);
		return -1;
	}
	if (L->header_crc && !crc_ok(b, L->header_size)) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: header: bad CRC");
		return -1;
	}
	x->start_offset = be32_get(b + 12);
	x->record_size = be32_get(b + 16);
	x->num_records = be32_get(b + L->h_num_records);
	x->last_uid = be32_get(b + L->h_last_uid);
	x->uidvalidity = be32_get(b + L->h_uidvalidity);
	x->highestmodseq = be64_get(b + L->h_highestmodseq);
	x->exists = L->h_exists == NONE ? x->num_records : be32_get(b + L->h_exists);
	parse_header_extra(x, L, b);
	if (x->start_offset < L->header_size) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0,
		    "cyrus.index: start offset %u is inside the %u-byte v%u header",
		    x->start_offset, L->header_size, x->minor_version);
		return -1;
	}
	if (x->record_size < L->record_size) {
		chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0,
		    "cyrus.index: record size %u is smaller than the %u bytes of a v%u record",
		    x->record_size, L->record_size, x->minor_version);
		return -1;
	}
	if (x->num_records) {
		uint64_t have = len < x->start_offset ? 0 : (len - x->start_offset) / x->record_size;

		if (have < x->num_records) {
			chj_error_set(&x->err, CHJ_ERR_CORRUPT, 0, "cyrus.index: truncated at record %llu of %u",
			    (unsigned long long)have + 1, x->num_records);
			return -1;
		}
	}
	if (x->num_records) {
		x->records = calloc(x->num_records, sizeof *x->records);
		if (!x->records) {
			chj_error_set(&x->err, CHJ_ERR_NOMEM, 0, "out of memory (%u records)", x->num_records);
			return -1;
		}
	}
	for (i = 0; i < x->num_records; i++) {
		if (parse_record(x, L, b + x->start_offset + (size_t)i * x->record_size, i) < 0) {
			free(x->records);
			x->records = NULL;
			return -1;
		}
	}
	return 0;
}

/* The header fields of minor versions 12 to 19 a read-only session
 * rewrites (Cyrus's OFFSET_RECENTUID and OFFSET_RECENTTIME). */
#define RECENT_OFFSET 104
#define RECENT_LEN 8

int
cyrus_index_same_state(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	const struct index_layout *L;
	size_t crc;

	if (alen != blen || alen < 12 || be32_get(x + 8) != be32_get(y + 8))
		return 0;
	L = layout_of(be32_get(x + 8));
	if (L == NULL || L->version < 12 || L->version > 19 || !L->header_crc ||
	    alen < L->header_size || !crc_ok(x, L->header_size) || !crc_ok(y, L->header_size))
		return 0;
	crc = L->header_size - 4;
	return memcmp(x, y, RECENT_OFFSET) == 0 &&
	    memcmp(x + RECENT_OFFSET + RECENT_LEN, y + RECENT_OFFSET + RECENT_LEN,
	    crc - (RECENT_OFFSET + RECENT_LEN)) == 0 &&
	    memcmp(x + L->header_size, y + L->header_size, alen - L->header_size) == 0;
}

void
cyrus_index_free(struct cyrus_index *x)
{
	if (!x)
		return;
	free(x->records);
	x->records = NULL;
	x->num_records = 0;
}

int
cyrus_record_has_file(const struct cyrus_index_record *r)
{
	return !(r->system_flags & CYRUS_FLAG_UNLINKED);
}

const char *const cyrus_meta_names[CYRUS_NMETA] = {
	"cyrus.header", "cyrus.index", "cyrus.annotations", "cyrus.expunge",
};

void
cyrus_guid_hex(const uint8_t guid[20], char hex[41])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 20; i++) {
		hex[2 * i] = digits[guid[i] >> 4];
		hex[2 * i + 1] = digits[guid[i] & 15];
	}
	hex[40] = '\0';
}
