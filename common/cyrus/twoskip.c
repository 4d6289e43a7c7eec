/* twoskip.c: a reader for Cyrus's twoskip databases (cyrus.annotations,
 * annotations.db, seen.db), written from the format described in Cyrus's
 * lib/cyrusdb_twoskip.c: a 64-byte header, then records linked in key
 * order; the committed state is what the level-0 chain reaches below the
 * header's current size. Also the value of an annotation record
 * (imap/annotate.c make_entry). Read-only, no Cyrus code. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "cyrus/internal.h"

#define TS_HEADER_SIZE 64
#define TS_MAXLEVEL 31
#define TS_DELETE '-'
#define TS_ADD '+'
#define TS_DUMMY '='

static const char ts_magic[20] = "\241\002\213\015twoskip file\0\0\0\0";

struct ts_record {
	uint64_t offset;
	char type;
	unsigned level;
	uint64_t keylen, vallen;
	uint64_t next[TS_MAXLEVEL + 2];
	uint64_t keyoff;
};

/* Reads the record at off; its CRCs are checked. */
static int
ts_read(const unsigned char *b, uint64_t end, uint64_t off, struct ts_record *r,
    struct chj_error *e)
{
	uint64_t p = off, kv, pad;
	unsigned i;

	memset(r, 0, sizeof *r);
	r->offset = off;
	if (off < TS_HEADER_SIZE || off + 8 > end)
		goto bad;
	r->type = (char)b[p];
	r->level = b[p + 1];
	r->keylen = (uint64_t)b[p + 2] << 8 | b[p + 3];
	r->vallen = be32_get(b + p + 4);
	p += 8;
	if (r->level > TS_MAXLEVEL)
		goto bad;
	if (r->keylen == UINT16_MAX) {
		if (p + 8 > end)
			goto bad;
		r->keylen = be64_get(b + p);
		p += 8;
	}
	if (r->vallen == UINT32_MAX) {
		if (p + 8 > end)
			goto bad;
		r->vallen = be64_get(b + p);
		p += 8;
	}
	if (r->keylen > end || r->vallen > end)
		goto bad;
	kv = r->keylen + r->vallen;
	pad = (kv + 7) & ~(uint64_t)7;
	if (p + 8 * ((uint64_t)r->level + 1) + 8 + pad > end)
		goto bad;
	for (i = 0; i <= r->level; i++, p += 8)
		r->next[i] = be64_get(b + p);
	if ((uint32_t)crc32(0L, b + off, (uInt)(p - off)) != be32_get(b + p) ||
	    (uint32_t)crc32(0L, b + p + 8, (uInt)pad) != be32_get(b + p + 4)) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip record at offset %llu: bad CRC", (unsigned long long)off);
		return -1;
	}
	r->keyoff = p + 8;
	return 0;
bad:
	chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip record at offset %llu runs past the end",
	    (unsigned long long)off);
	return -1;
}

/* The next record at level 0: of the two pointers, the higher one below
 * the committed end (cyrusdb_twoskip.c _getloc). */
static uint64_t
ts_next0(const struct ts_record *r, uint64_t end)
{
	if (r->next[0] >= end)
		return r->next[1] < end ? r->next[1] : 0;
	if (r->next[1] >= end)
		return r->next[0];
	return r->next[0] > r->next[1] ? r->next[0] : r->next[1];
}

int
cyrus_twoskip_foreach(const void *buf, size_t len, cyrus_twoskip_cb cb, void *ctx,
    struct chj_error *e)
{
	const unsigned char *b = buf;
	struct ts_record r;
	uint64_t end, off, steps = 0;
	int rc;

	if (len < TS_HEADER_SIZE || memcmp(b, ts_magic, sizeof ts_magic) != 0) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "not a twoskip database");
		return -1;
	}
	if ((uint32_t)crc32(0L, b, 60) != be32_get(b + 60)) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip header: bad CRC");
		return -1;
	}
	end = be64_get(b + 48);
	if (end > len || end < TS_HEADER_SIZE) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip header: current size %llu, file %zu bytes",
		    (unsigned long long)end, len);
		return -1;
	}
	if (ts_read(b, end, TS_HEADER_SIZE, &r, e) < 0)
		return -1;
	if (r.type != TS_DUMMY) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip: no dummy record after the header");
		return -1;
	}
	for (off = ts_next0(&r, end); off != 0; ) {
		/* every record is at least 24 bytes: more steps than that is a loop */
		if (++steps > end / 24) {
			chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip: the record chain loops");
			return -1;
		}
		if (ts_read(b, end, off, &r, e) < 0)
			return -1;
		if (r.type == TS_DELETE) {
			off = r.next[0] < end ? r.next[0] : 0;
			continue;
		}
		if (r.type != TS_ADD) {
			chj_error_set(e, CHJ_ERR_CORRUPT, 0, "twoskip record at offset %llu: unexpected type '%c'",
			    (unsigned long long)off, r.type);
			return -1;
		}
		rc = cb(ctx, (const char *)b + r.keyoff, (size_t)r.keylen,
		    (const char *)b + r.keyoff + r.keylen, (size_t)r.vallen);
		if (rc != 0)
			return rc;
		off = ts_next0(&r, end);
	}
	return 0;
}

int
cyrus_annot_value(const char *val, size_t vlen, const char **data, size_t *dlen,
    uint64_t *modseq, int *deleted)
{
	const unsigned char *v = (const unsigned char *)val;
	uint32_t n;
	size_t p;

	/* a C unsigned long holding htonl(length): 8 bytes on the 64-bit
	 * platforms Cyrus runs on, the length in the first 4 */
	if (vlen < 8)
		return -1;
	n = be32_get(v);
	if (n > vlen - 8)
		return -1;
	*data = val + 8;
	*dlen = n;
	*modseq = 0;
	*deleted = 0;
	p = 8 + (size_t)n + 1;                  /* the value's NUL */
	if (p < vlen) {
		const char *ct = memchr(val + p, '\0', vlen - p);

		if (ct == NULL)
			return 0;
		p = (size_t)(ct - val) + 1 + 8;     /* content type, modifiedsince */
	}
	if (p + 8 <= vlen) {
		*modseq = be64_get(v + p);
		p += 8;
	}
	if (p < vlen)
		*deleted = v[p] & 1;
	return 0;
}
