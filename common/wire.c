/* wire.c: framing of the serve protocol (wire.h): frames built in one
 * output buffer and sent in large writes; frames read through a read-ahead
 * buffer, their length bounded before anything is allocated, their fields
 * walked and their CRC checked before a getter can see them. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "bigend.h"
#include "wire.h"

#define WIRE_READAHEAD (128 * 1024)
#define WIRE_FLUSH_AT (512 * 1024)      /* buffered frames are sent from this size on */


void
wire_init(struct wire *w, int in, int out)
{
	memset(w, 0, sizeof *w);
	w->in = in;
	w->out = out;
	w->frame = w->field = SIZE_MAX;
}

void
wire_free(struct wire *w)
{
	free(w->ibuf);
	free(w->rbuf);
	free(w->foff);
	free(w->flen);
	free(w->obuf);
	w->ibuf = w->rbuf = w->obuf = NULL;
	w->foff = w->flen = NULL;
}

/* ---- receiving ---- */

/* Waits until fd is ready for events (POLLIN or POLLOUT) within the
 * wire's timeout (none: at once). 0, or -1 with w->err: the other end said
 * nothing, or took nothing, for that long (a host that hangs). */
static int
wait_ready(struct wire *w, int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	if (w->timeout_ms <= 0)
		return 0;
	while ((rc = poll(&p, 1, w->timeout_ms)) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return chj_error_set(&w->err, CHJ_ERR_PEER, errno, "cannot wait for the connection");
	if (rc == 0)
		return chj_error_set(&w->err, CHJ_ERR_PEER, 0, "no %s in %d s: the other end hangs",
		    events == POLLIN ? "answer" : "progress sending", (w->timeout_ms + 999) / 1000);
	return 0;
}

/* Reads n bytes into dst through the read-ahead buffer. Returns n, or the
 * bytes got before the end of input, or -1 with w->err. */
static ssize_t
read_full(struct wire *w, unsigned char *dst, size_t n)
{
	size_t got = 0;

	while (got < n) {
		size_t have = w->ilen - w->ipos;
		ssize_t k;

		if (have > 0) {
			size_t take = have < n - got ? have : n - got;

			memcpy(dst + got, w->ibuf + w->ipos, take);
			w->ipos += take;
			got += take;
			continue;
		}
		if (wait_ready(w, w->in, POLLIN) < 0)
			return -1;
		if (n - got >= WIRE_READAHEAD) {        /* large: straight into place */
			k = read(w->in, dst + got, n - got);
		} else {
			if (w->ibuf == NULL && (w->ibuf = malloc(WIRE_READAHEAD)) == NULL) {
				chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
				return -1;
			}
			w->ipos = w->ilen = 0;
			k = read(w->in, w->ibuf, WIRE_READAHEAD);
			if (k > 0)
				w->ilen = (size_t)k;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			chj_error_set(&w->err, CHJ_ERR_PEER, errno, "cannot read from the connection");
			return -1;
		}
		if (k == 0)
			return (ssize_t)got;
		if (n - got >= WIRE_READAHEAD)
			got += (size_t)k;
		w->bytes_in += (uint64_t)k;
	}
	return (ssize_t)got;
}

/* Walks the fields of the frame body b[0..len): each fits, they fill it. */
static int
index_fields(struct wire *w, unsigned char *b, size_t len)
{
	size_t pos = 1;

	w->nf = 0;
	while (pos < len) {
		uint32_t fl;

		if (len - pos < 4)
			return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed frame: a field "
			    "length is cut off at byte %zu of %zu", pos, len);
		fl = be32_get(b + pos);
		pos += 4;
		if (fl > len - pos)
			return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed frame: field %zu "
			    "claims %u bytes, %zu are left", w->nf + 1, fl, len - pos);
		if (w->nf == w->fcap) {
			size_t cap = w->fcap ? w->fcap * 2 : 64;
			size_t *o = realloc(w->foff, cap * sizeof *o), *l;

			if (o == NULL)
				return chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
			w->foff = o;
			if ((l = realloc(w->flen, cap * sizeof *l)) == NULL)
				return chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
			w->flen = l;
			w->fcap = cap;
		}
		w->foff[w->nf] = pos;
		w->flen[w->nf] = fl;
		w->nf++;
		pos += fl;
	}
	return 0;
}

int
wire_recv(struct wire *w, struct wire_msg *m)
{
	unsigned char head[4];
	uint32_t len, crc;
	ssize_t k;
	size_t i;

	memset(m, 0, sizeof *m);
	w->nf = 0;
	k = read_full(w, head, 4);
	if (k < 0)
		return -1;
	if (k == 0)
		return 1;
	if (k < 4)
		return chj_error_set(&w->err, CHJ_ERR_PEER, 0, "the connection ended inside a frame "
		    "(%zd of its 4 length bytes)", k);
	len = be32_get(head);
	if (len > WIRE_FRAME_MAX)
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "frame of %u bytes refused: at "
		    "most %d", len, WIRE_FRAME_MAX);
	if (len == 0)
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed frame: no type");
	if (w->rcap < (size_t)len + 4) {
		unsigned char *nb = realloc(w->rbuf, (size_t)len + 4);

		if (nb == NULL)
			return chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
		w->rbuf = nb;
		w->rcap = (size_t)len + 4;
	}
	k = read_full(w, w->rbuf, (size_t)len + 4);
	if (k < 0)
		return -1;
	if ((size_t)k < (size_t)len + 4)
		return chj_error_set(&w->err, CHJ_ERR_PEER, 0, "the connection ended inside a frame "
		    "(%zd of its %u bytes)", k + 4, len + 8);
	crc = (uint32_t)crc32(0L, w->rbuf, len);
	if (crc != be32_get(w->rbuf + len))
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "frame of %u bytes, type %u: bad "
		    "CRC", len, w->rbuf[0]);
	if (index_fields(w, w->rbuf, len) < 0)
		return -1;
	/* every field ends where the next one's length or the CRC began,
	 * both read already: a NUL there makes each a C string */
	for (i = 0; i < w->nf; i++)
		w->rbuf[w->foff[i] + w->flen[i]] = '\0';
	m->type = w->rbuf[0];
	m->nfields = w->nf;
	return 0;
}

const unsigned char *
wire_bytes(struct wire *w, size_t i, size_t max, const char *what, size_t *len)
{
	if (i >= w->nf) {
		chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed message: no %s", what);
		return NULL;
	}
	if (w->flen[i] > max) {
		chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "%s of %zu bytes refused: at most %zu",
		    what, w->flen[i], max);
		return NULL;
	}
	if (len != NULL)
		*len = w->flen[i];
	return w->rbuf + w->foff[i];
}

const char *
wire_str(struct wire *w, size_t i, size_t max, const char *what)
{
	size_t len;
	const unsigned char *p = wire_bytes(w, i, max, what, &len);

	if (p == NULL)
		return NULL;
	if (memchr(p, '\0', len) != NULL) {
		chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed message: %s holds a NUL byte", what);
		return NULL;
	}
	return (const char *)p;
}

int
wire_u64(struct wire *w, size_t i, const char *what, uint64_t *v)
{
	size_t len;
	const unsigned char *p = wire_bytes(w, i, 8, what, &len);

	if (p == NULL)
		return -1;
	if (len != 8)
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed message: %s is %zu "
		    "bytes, not 8", what, len);
	*v = (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
	return 0;
}

int
wire_nfields(struct wire *w, size_t lo, size_t hi, const char *what)
{
	if (w->nf < lo || w->nf > hi)
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "malformed %s: %zu fields, "
		    "expected %zu to %zu", what, w->nf, lo, hi);
	return 0;
}

/* ---- sending ---- */

/* Room for n more bytes in the output buffer. */
static int
reserve(struct wire *w, size_t n)
{
	unsigned char *nb;
	size_t cap;

	if (w->failed)
		return -1;
	if (w->ocap - w->olen >= n)
		return 0;
	cap = w->ocap ? w->ocap : 64 * 1024;
	while (cap - w->olen < n)
		cap *= 2;
	if ((nb = realloc(w->obuf, cap)) == NULL) {
		w->failed = 1;
		chj_error_set(&w->err, CHJ_ERR_NOMEM, 0, "out of memory");
		return -1;
	}
	w->obuf = nb;
	w->ocap = cap;
	return 0;
}

void
wire_start(struct wire *w, int type)
{
	w->failed = 0;
	w->field = SIZE_MAX;
	if (reserve(w, WIRE_HEADER) < 0)
		return;
	w->frame = w->olen;
	w->obuf[w->olen + 4] = (unsigned char)type;
	w->olen += WIRE_HEADER;
}

unsigned char *
wire_put_room(struct wire *w, size_t n)
{
	if (w->frame == SIZE_MAX || reserve(w, 4 + n) < 0)
		return NULL;
	w->field = w->olen;
	be32_put(w->obuf + w->olen, 0);
	w->olen += 4;
	return w->obuf + w->olen;
}

void
wire_put_done(struct wire *w, size_t used)
{
	if (w->failed || w->field == SIZE_MAX)
		return;
	be32_put(w->obuf + w->field, (uint32_t)used);
	w->olen = w->field + 4 + used;
	w->field = SIZE_MAX;
}

void
wire_put(struct wire *w, const void *p, size_t n)
{
	unsigned char *room = wire_put_room(w, n);

	if (room == NULL)
		return;
	if (n > 0)
		memcpy(room, p, n);
	wire_put_done(w, n);
}

void
wire_put_str(struct wire *w, const char *s)
{
	wire_put(w, s, s ? strlen(s) : 0);
}

void
wire_put_u64(struct wire *w, uint64_t v)
{
	unsigned char b[8];

	be32_put(b, (uint32_t)(v >> 32));
	be32_put(b + 4, (uint32_t)v);
	wire_put(w, b, 8);
}

size_t
wire_frame_size(const struct wire *w)
{
	return w->frame == SIZE_MAX ? 0 : w->olen - w->frame;
}

int
wire_end(struct wire *w)
{
	size_t len;
	uint32_t crc;

	if (w->frame == SIZE_MAX)
		return chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "no frame begun");
	len = w->olen - w->frame - 4;
	if (!w->failed && len > WIRE_FRAME_MAX) {
		w->failed = 1;
		chj_error_set(&w->err, CHJ_ERR_PROTOCOL, 0, "frame of %zu bytes not sent: at most %d",
		    len, WIRE_FRAME_MAX);
	}
	if (w->failed || reserve(w, 4) < 0) {
		w->olen = w->frame;             /* the frame goes, the ones before stay */
		w->frame = SIZE_MAX;
		return -1;
	}
	be32_put(w->obuf + w->frame, (uint32_t)len);
	crc = (uint32_t)crc32(0L, w->obuf + w->frame + 4, (uInt)len);
	be32_put(w->obuf + w->olen, crc);
	w->olen += 4;
	w->frame = SIZE_MAX;
	if (w->olen >= WIRE_FLUSH_AT)
		return wire_flush(w);
	return 0;
}

int
wire_flush(struct wire *w)
{
	size_t done = 0;

	while (done < w->olen) {
		ssize_t k;

		if (wait_ready(w, w->out, POLLOUT) < 0) {
			w->olen = 0;
			return -1;
		}
		if (!w->out_is_pipe) {
			k = send(w->out, w->obuf + done, w->olen - done, MSG_NOSIGNAL);
			if (k < 0 && errno == ENOTSOCK) {
				w->out_is_pipe = 1;
				continue;
			}
		} else {
			k = write(w->out, w->obuf + done, w->olen - done);
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->olen = 0;
			return chj_error_set(&w->err, CHJ_ERR_PEER, k < 0 ? errno : 0,
			    "cannot write to the connection%s", k < 0 ? "" : ": nothing written");
		}
		done += (size_t)k;
		w->bytes_out += (uint64_t)k;
	}
	w->olen = 0;
	return 0;
}
