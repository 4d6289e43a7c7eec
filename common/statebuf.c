/* statebuf.c: a flat binary record of in-memory state (statebuf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "statebuf.h"

void
statebuf_init(struct statebuf *b)
{
	memset(b, 0, sizeof *b);
}

void
statebuf_init_read(struct statebuf *b, void *data, size_t len)
{
	memset(b, 0, sizeof *b);
	b->data = data;
	b->len = b->cap = len;
}

void
statebuf_free(struct statebuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = b->pos = 0;
}

void
statebuf_put_bytes(struct statebuf *b, const void *p, size_t n)
{
	unsigned char *nd;

	if (b->failed || n == 0)
		return;
	if (b->len + n < b->len ||
	    (nd = array_reserve(b->data, b->len + n, &b->cap, 1, 4096)) == NULL) {
		b->failed = 1;
		chj_error_set(&b->err, CHJ_ERR_NOMEM, ENOMEM, "cannot hold the state");
		return;
	}
	b->data = nd;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
statebuf_put_u32(struct statebuf *b, uint32_t v)
{
	statebuf_put_bytes(b, &v, sizeof v);
}

void
statebuf_put_u64(struct statebuf *b, uint64_t v)
{
	statebuf_put_bytes(b, &v, sizeof v);
}

void
statebuf_put_i64(struct statebuf *b, int64_t v)
{
	statebuf_put_bytes(b, &v, sizeof v);
}

void
statebuf_put_str(struct statebuf *b, const char *s)
{
	size_t n = strlen(s);

	statebuf_put_u64(b, (uint64_t)n);
	statebuf_put_bytes(b, s, n + 1);
}

int
statebuf_bad(struct statebuf *b, const char *what)
{
	if (!b->failed) {
		b->failed = 1;
		chj_error_set(&b->err, CHJ_ERR_CORRUPT, 0, "malformed state at byte %zu: %s",
		    b->pos, what);
	}
	return -1;
}

const void *
statebuf_get_bytes(struct statebuf *b, size_t n)
{
	const void *p;

	if (b->failed)
		return NULL;
	if (n > b->len - b->pos) {
		statebuf_bad(b, "truncated");
		return NULL;
	}
	p = b->data + b->pos;
	b->pos += n;
	return p;
}

uint32_t
statebuf_get_u32(struct statebuf *b)
{
	const void *p = statebuf_get_bytes(b, sizeof(uint32_t));
	uint32_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof v);
	return v;
}

uint64_t
statebuf_get_u64(struct statebuf *b)
{
	const void *p = statebuf_get_bytes(b, sizeof(uint64_t));
	uint64_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof v);
	return v;
}

int64_t
statebuf_get_i64(struct statebuf *b)
{
	const void *p = statebuf_get_bytes(b, sizeof(int64_t));
	int64_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof v);
	return v;
}

const char *
statebuf_get_str(struct statebuf *b)
{
	uint64_t n = statebuf_get_u64(b);
	const char *s;

	if (b->failed)
		return NULL;
	if (n >= b->len - b->pos) {
		statebuf_bad(b, "string longer than the record");
		return NULL;
	}
	s = statebuf_get_bytes(b, (size_t)n + 1);
	if (s != NULL && (s[n] != '\0' || memchr(s, '\0', (size_t)n) != NULL)) {
		statebuf_bad(b, "malformed string");
		return NULL;
	}
	return s;
}

int
statebuf_status(const struct statebuf *b)
{
	return b->failed ? -1 : 0;
}
