/* statebuf.h: a flat binary record of in-memory state, written by one process
 * and read back by the next one of the same host (chjournald's hand-over
 * across a re-exec: the watch table, the roots, the core's unwatched paths).
 * Native byte order and sizes: the record never leaves the machine, and a
 * format version, checked by the reader, says whether the layout matches.
 * Errors are sticky, as with stdio: put and get calls after a failure do
 * nothing, and the first failure is kept in the handle (error.h). */
#ifndef CHJ_STATEBUF_H
#define CHJ_STATEBUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct statebuf {
	unsigned char *data;
	size_t len, cap;        /* writing: bytes held; reading: bytes in data */
	size_t pos;             /* reading: the next byte */
	int failed;
	struct chj_error err;   /* the first failure (CHJ_ERR_NOMEM, CHJ_ERR_CORRUPT) */
};

/* An empty buffer to write into. */
void statebuf_init(struct statebuf *b);
/* A buffer to read len bytes of data from (taken: freed by statebuf_free). */
void statebuf_init_read(struct statebuf *b, void *data, size_t len);
void statebuf_free(struct statebuf *b);

void statebuf_put_u32(struct statebuf *b, uint32_t v);
void statebuf_put_u64(struct statebuf *b, uint64_t v);
void statebuf_put_i64(struct statebuf *b, int64_t v);
/* n bytes as they are (the reader must know n). */
void statebuf_put_bytes(struct statebuf *b, const void *p, size_t n);
/* A byte string of any content but NUL, with its length. */
void statebuf_put_str(struct statebuf *b, const char *s);

/* Each returns the next value, or 0 (NULL) once the record is short or
 * malformed (failed set). */
uint32_t statebuf_get_u32(struct statebuf *b);
uint64_t statebuf_get_u64(struct statebuf *b);
int64_t statebuf_get_i64(struct statebuf *b);
/* A pointer to the next n bytes inside the buffer (valid until freed). */
const void *statebuf_get_bytes(struct statebuf *b, size_t n);
/* The next string, NUL-terminated, inside the buffer. */
const char *statebuf_get_str(struct statebuf *b);

/* Marks the record malformed (what: why) unless it already failed; returns
 * -1, for readers that find a value out of range. */
int statebuf_bad(struct statebuf *b, const char *what);

/* Returns 0 while nothing failed, -1 once something did (b->err says what). */
int statebuf_status(const struct statebuf *b);

#endif
