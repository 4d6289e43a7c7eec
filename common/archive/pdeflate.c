/* pdeflate.c: one gzip member compressed on several cores, as pigz does:
 * the input is cut into chunks, each deflated (raw, zlib) by a worker thread
 * with the previous chunk's last 32 KiB as its dictionary and ended with a
 * sync flush, so the pieces join into one ordinary deflate stream; the CRC32s
 * of the chunks are combined (crc32_combine). The output is a standard gzip
 * member (any gunzip, zcat, GNU tar read it) written in order through the
 * caller's sink, from the caller's thread.
 *
 * Why not a library: zlib has no parallel mode, and Debian's pigz is a
 * program, not a library; libarchive's gzip filter runs on one core. This
 * keeps the format zlib's own, using only zlib's documented calls. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pdeflate.h"

#define PD_DICT 32768
#define PD_SLOTS_PER_THREAD 2

enum chunk_state { CHUNK_FREE, CHUNK_QUEUED, CHUNK_BUSY, CHUNK_DONE };

struct chunk {
	enum chunk_state state;
	unsigned long seq;          /* order in the stream */
	unsigned char *in;
	size_t nin;
	unsigned char dict[PD_DICT];
	size_t ndict;
	unsigned char *out;
	size_t nout, capout;
	uLong crc;
	int last;
	int failed;
};

struct pdeflate {
	int level;
	size_t chunk_size;
	pdeflate_sink sink;
	void *sink_ctx;
	pthread_mutex_t mu;
	pthread_cond_t work;        /* a chunk was queued, or stop */
	pthread_cond_t done;        /* a chunk was compressed */
	pthread_t *threads;
	int nthreads, started, stop;
	struct chunk *slots;
	int nslots;
	unsigned long next_seq;     /* the seq of the chunk being filled */
	unsigned long write_seq;    /* the next seq to write out */
	struct chunk *filling;
	unsigned char prev_tail[PD_DICT];
	size_t nprev_tail;
	uLong crc;
	uint64_t total_in;
	int header_written, sealed, finished, failed;
	struct chj_error err;       /* pdeflate_error(): set by every failure */
};

static struct chunk *
slot_of(struct pdeflate *p, unsigned long seq)
{
	return &p->slots[seq % (unsigned long)p->nslots];
}

/* Deflates one chunk with the worker's own stream. */
static void
compress_chunk(z_stream *z, int *zinit, int level, struct chunk *c)
{
	size_t bound;
	int rc;

	if (!*zinit) {
		memset(z, 0, sizeof *z);
		if (deflateInit2(z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			c->failed = 1;
			return;
		}
		*zinit = 1;
	} else if (deflateReset(z) != Z_OK) {
		c->failed = 1;
		return;
	}
	if (c->ndict > 0 && deflateSetDictionary(z, c->dict, (uInt)c->ndict) != Z_OK) {
		c->failed = 1;
		return;
	}
	bound = deflateBound(z, (uLong)c->nin) + 64;
	if (bound > c->capout) {
		unsigned char *o = realloc(c->out, bound);

		if (o == NULL) {
			c->failed = 1;
			return;
		}
		c->out = o;
		c->capout = bound;
	}
	z->next_in = c->in;
	z->avail_in = (uInt)c->nin;
	z->next_out = c->out;
	z->avail_out = (uInt)c->capout;
	rc = deflate(z, c->last ? Z_FINISH : Z_SYNC_FLUSH);
	if ((c->last && rc != Z_STREAM_END) || (!c->last && rc != Z_OK) || z->avail_in != 0) {
		c->failed = 1;
		return;
	}
	c->nout = c->capout - z->avail_out;
	c->crc = crc32(0L, c->in, (uInt)c->nin);
}

static void *
worker(void *arg)
{
	struct pdeflate *p = arg;
	z_stream z;
	int zinit = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct chunk *c = NULL;
		int i;

		/* the oldest first: the writer waits for it */
		for (i = 0; i < p->nslots; i++)
			if (p->slots[i].state == CHUNK_QUEUED && (c == NULL || p->slots[i].seq < c->seq))
				c = &p->slots[i];
		if (c == NULL) {
			if (p->stop)
				break;
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		c->state = CHUNK_BUSY;
		pthread_mutex_unlock(&p->mu);
		compress_chunk(&z, &zinit, p->level, c);
		pthread_mutex_lock(&p->mu);
		c->state = CHUNK_DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	if (zinit)
		deflateEnd(&z);
	return NULL;
}

int
pdeflate_new(struct pdeflate **out, int level, int nthreads, size_t chunk_size,
    pdeflate_sink sink, void *sink_ctx)
{
	struct pdeflate *p = calloc(1, sizeof *p);
	int i;

	*out = NULL;
	if (p == NULL)
		return -1;
	if (nthreads < 1)
		nthreads = 1;
	p->level = level;
	p->chunk_size = chunk_size;
	p->sink = sink;
	p->sink_ctx = sink_ctx;
	p->nthreads = nthreads;
	p->nslots = nthreads * PD_SLOTS_PER_THREAD + 1;
	p->crc = crc32(0L, Z_NULL, 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
	p->threads = calloc((size_t)nthreads, sizeof *p->threads);
	if (p->slots == NULL || p->threads == NULL)
		goto fail;
	for (i = 0; i < p->nslots; i++) {
		p->slots[i].in = malloc(chunk_size);
		if (p->slots[i].in == NULL)
			goto fail;
	}
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			goto fail;
		p->started++;
	}
	*out = p;
	return 0;
fail:
	pdeflate_free(p);
	return -1;
}

static int
emit(struct pdeflate *p, const void *buf, size_t n)
{
	if (n > 0 && p->sink(p->sink_ctx, buf, n) < 0) {
		p->failed = 1;
		/* the sink keeps its own error: this one is generic */
		return chj_error_set(&p->err, CHJ_ERR_ARCHIVE, 0, "write failed");
	}
	return 0;
}

/* Writes out, in order, the chunk at write_seq once compressed; with wait,
 * waits for it. Returns 1 when one was written, 0 when none was ready. */
static int
write_next(struct pdeflate *p, int wait)
{
	struct chunk *c = slot_of(p, p->write_seq);
	int failed;

	pthread_mutex_lock(&p->mu);
	while (wait && c->seq == p->write_seq && (c->state == CHUNK_QUEUED || c->state == CHUNK_BUSY))
		pthread_cond_wait(&p->done, &p->mu);
	if (c->state != CHUNK_DONE || c->seq != p->write_seq) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	pthread_mutex_unlock(&p->mu);
	failed = c->failed;
	if (failed) {
		p->failed = 1;
		return chj_error_set(&p->err, CHJ_ERR_ARCHIVE, 0, "deflate failed (out of memory?)");
	}
	if (emit(p, c->out, c->nout) < 0)
		return -1;
	p->crc = crc32_combine(p->crc, c->crc, (z_off_t)c->nin);
	p->total_in += c->nin;
	pthread_mutex_lock(&p->mu);
	c->state = CHUNK_FREE;
	pthread_mutex_unlock(&p->mu);
	p->write_seq++;
	return 1;
}

/* Hands the chunk being filled to the workers. */
static int
submit(struct pdeflate *p, int last)
{
	struct chunk *c = p->filling;
	size_t keep;

	memcpy(c->dict, p->prev_tail, p->nprev_tail);
	c->ndict = p->nprev_tail;
	keep = c->nin < PD_DICT ? c->nin : PD_DICT;
	/* the next chunk's dictionary: this one's tail (with the older tail
	 * in front when this chunk is short) */
	if (keep < PD_DICT && p->nprev_tail > 0) {
		size_t old = p->nprev_tail + keep > PD_DICT ? PD_DICT - keep : p->nprev_tail;

		memmove(p->prev_tail, p->prev_tail + p->nprev_tail - old, old);
		memcpy(p->prev_tail + old, c->in + c->nin - keep, keep);
		p->nprev_tail = old + keep;
	} else {
		memcpy(p->prev_tail, c->in + c->nin - keep, keep);
		p->nprev_tail = keep;
	}
	c->last = last;
	c->failed = 0;
	pthread_mutex_lock(&p->mu);
	c->state = CHUNK_QUEUED;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	p->filling = NULL;
	return 0;
}

/* Makes p->filling a free slot, writing out finished chunks as needed. */
static int
take_slot(struct pdeflate *p)
{
	struct chunk *c = slot_of(p, p->next_seq);

	while (1) {
		int r;

		pthread_mutex_lock(&p->mu);
		r = c->state == CHUNK_FREE;
		pthread_mutex_unlock(&p->mu);
		if (r)
			break;
		if (write_next(p, 1) < 0)
			return -1;
	}
	c->seq = p->next_seq++;
	c->nin = 0;
	p->filling = c;
	return 0;
}

static int
write_header(struct pdeflate *p)
{
	/* gzip: magic, deflate, no flags, no mtime, no extra flags, OS unix */
	static const unsigned char hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

	p->header_written = 1;
	return emit(p, hdr, sizeof hdr);
}

int
pdeflate_write(struct pdeflate *p, const void *buf, size_t n)
{
	const unsigned char *b = buf;

	if (p->failed)
		return -1;
	if (p->finished || p->sealed)
		return chj_error_set(&p->err, CHJ_ERR_INVALID, 0, "write failed");
	if (!p->header_written && write_header(p) < 0)
		return -1;
	while (n > 0) {
		size_t room;

		if (p->filling == NULL && take_slot(p) < 0)
			return -1;
		room = p->chunk_size - p->filling->nin;
		if (room > n)
			room = n;
		memcpy(p->filling->in + p->filling->nin, b, room);
		p->filling->nin += room;
		b += room;
		n -= room;
		if (p->filling->nin == p->chunk_size && submit(p, 0) < 0)
			return -1;
		while (write_next(p, 0) == 1)
			;
		if (p->failed)
			return -1;
	}
	return 0;
}

int
pdeflate_seal(struct pdeflate *p)
{
	if (p->failed)
		return -1;
	if (p->finished || p->sealed)
		return chj_error_set(&p->err, CHJ_ERR_INVALID, 0, "write failed");
	if (!p->header_written && write_header(p) < 0)
		return -1;
	if (p->filling == NULL && take_slot(p) < 0)
		return -1;
	submit(p, 1);
	p->sealed = 1;
	return 0;
}

int
pdeflate_finish(struct pdeflate *p)
{
	unsigned char trailer[8];
	uint32_t isize;
	int i;

	if (p->failed)
		return -1;
	if (p->finished)
		return chj_error_set(&p->err, CHJ_ERR_INVALID, 0, "write failed");
	if (!p->sealed && pdeflate_seal(p) < 0)
		return -1;
	while (p->write_seq < p->next_seq)
		if (write_next(p, 1) < 0)
			return -1;
	isize = (uint32_t)(p->total_in & 0xffffffffu);
	for (i = 0; i < 4; i++) {
		trailer[i] = (unsigned char)(p->crc >> (8 * i));
		trailer[4 + i] = (unsigned char)(isize >> (8 * i));
	}
	if (emit(p, trailer, sizeof trailer) < 0)
		return -1;
	p->finished = 1;
	return 0;
}

const struct chj_error *
pdeflate_error(const struct pdeflate *p)
{
	return &p->err;
}

void
pdeflate_free(struct pdeflate *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	for (i = 0; p->slots != NULL && i < p->nslots; i++) {
		free(p->slots[i].in);
		free(p->slots[i].out);
	}
	free(p->slots);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}
