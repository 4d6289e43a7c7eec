/* wire.h: the framed messages `chjournal serve` and its client exchange over
 * a pair of file descriptors (ssh's stdin and stdout). A frame is
 *
 *	u32  length of what follows, up to and without the CRC (big-endian)
 *	u8   type
 *	     fields, each: u32 length, then that many bytes
 *	u32  CRC-32 (zlib's) of the type byte and the fields
 *
 * A frame longer than WIRE_FRAME_MAX, a field running past its frame, a bad
 * CRC are refused before anything is done with them; the getters check each
 * field against the limit its caller gives (a string holds no NUL). What the
 * types mean is the protocol's (proto.h); this layer only frames.
 *
 * Nothing here prints or exits: failures fill w->err (error.h) with
 * CHJ_ERR_PEER (the other end went away, or I/O failed) or CHJ_ERR_PROTOCOL
 * (what arrived is not a well-formed frame). Writes never raise SIGPIPE on a
 * socket (MSG_NOSIGNAL); on a pipe the program decides (serve ignores it). */
#ifndef CHJ_WIRE_H
#define CHJ_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define WIRE_FRAME_MAX (1024 * 1024 + 256)  /* a frame's length field, at most */
#define WIRE_DATA_MAX (256 * 1024)          /* file data carried by one frame */
#define WIRE_HEADER 5                       /* length and type */

struct wire {
	int in, out;
	int out_is_pipe;                    /* send() said ENOTSOCK: write() */
	unsigned char *ibuf;                /* read-ahead */
	size_t ipos, ilen, icap;
	unsigned char *rbuf;                /* the last frame received, its fields NUL-ended */
	size_t rcap;
	size_t *foff, *flen, nf, fcap;      /* its fields */
	unsigned char *obuf;                /* frames to send */
	size_t olen, ocap;
	size_t frame;                       /* offset of the frame being built, or SIZE_MAX */
	size_t field;                       /* offset of its open field's length, or SIZE_MAX */
	int failed;                         /* building failed (out of memory, too large) */
	uint64_t bytes_in, bytes_out;
	int timeout_ms;                     /* a read or write waits at most this long
	                                     * for the other end (0: no limit) */
	struct chj_error err;
};

/* A frame received: valid until the next wire_recv. */
struct wire_msg {
	int type;
	size_t nfields;
};

/* Sets w up on in and out (not closed by wire_free). */
void wire_init(struct wire *w, int in, int out);
void wire_free(struct wire *w);

/* ---- receiving ---- */

/* Reads one frame. Returns 0 and *m; 1 at a clean end of input (between two
 * frames); -1 with w->err (CHJ_ERR_PEER: an end or I/O error inside a frame;
 * CHJ_ERR_PROTOCOL: too long, malformed, bad CRC). */
int wire_recv(struct wire *w, struct wire_msg *m);
/* Field i of the last frame (NUL-ended after its len bytes), or NULL with
 * w->err (CHJ_ERR_PROTOCOL naming what) when it is missing or longer than
 * max bytes. */
const unsigned char *wire_bytes(struct wire *w, size_t i, size_t max, const char *what, size_t *len);
/* Field i as a string: at most max bytes, no NUL inside. NULL with w->err. */
const char *wire_str(struct wire *w, size_t i, size_t max, const char *what);
/* Field i as an unsigned 64-bit number (8 bytes, big-endian): 0 or -1 with w->err. */
int wire_u64(struct wire *w, size_t i, const char *what, uint64_t *v);
/* -1 with w->err (CHJ_ERR_PROTOCOL) unless the last frame has n fields. */
int wire_nfields(struct wire *w, size_t lo, size_t hi, const char *what);

/* ---- sending ----
 * wire_start opens a frame, the puts add fields, wire_end closes it; frames
 * are buffered until wire_flush (or until the buffer is large). A failure
 * while building (out of memory, a frame over WIRE_FRAME_MAX) is kept and
 * returned by wire_end. */
void wire_start(struct wire *w, int type);
void wire_put(struct wire *w, const void *p, size_t n);
void wire_put_str(struct wire *w, const char *s);
void wire_put_u64(struct wire *w, uint64_t v);
/* Room for a field of up to n bytes, to be filled in place (read() into
 * it); wire_put_done says how many were used. NULL on failure (kept). */
unsigned char *wire_put_room(struct wire *w, size_t n);
void wire_put_done(struct wire *w, size_t used);
/* Bytes the frame being built holds so far (to split long lists). */
size_t wire_frame_size(const struct wire *w);
/* Closes the frame. Returns 0, or -1 with w->err. */
int wire_end(struct wire *w);
/* Sends what is buffered. Returns 0, or -1 with w->err (CHJ_ERR_PEER). */
int wire_flush(struct wire *w);

#endif
