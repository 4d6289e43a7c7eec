/* pdeflate.c: one gzip member compressed on several cores, as pigz does:
 * the input is cut into chunks, each deflated (raw, zlib) by a worker thread
 * with the previous chunk's last 32 KiB as its dictionary and ended with a
 * sync flush, so the pieces join into one ordinary deflate stream; the CRC32s
 * of the chunks are combined (crc32_combine). The output is a standard gzip
 * member (any gunzip, zcat, GNU tar read it) written in order through the
 * caller's sink, from the caller's thread. The workers are a pool's
 * (pdeflate_pool): one pool serves every member written by a process in
 * turn (a backup writes one per user), its threads and buffers made once;
 * chunks are deflated in the order they were handed in, so an older
 * member's tail goes before a newer member's start.
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
/* Chunks a member may have in flight per worker: pigz keeps 8 input
 * buffers per thread, so its reader runs well ahead of deflate. */
#define PD_SLOTS_PER_THREAD 8

enum chunk_state { CHUNK_FREE, CHUNK_QUEUED, CHUNK_BUSY, CHUNK_DONE };

struct pdeflate;

struct chunk {
	enum chunk_state state;
	unsigned long seq;          /* order in the stream */
	struct pdeflate *owner;
	struct chunk *next;         /* in the pool's queue */
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

/* A chunk's buffers kept by the pool for the next member. */
struct pd_buf {
	struct pd_buf *next;
	unsigned char *in, *out;
	size_t capout;
};

struct pdeflate_pool {
	int level;
	size_t chunk_size;
	pthread_mutex_t mu;         /* guards every chunk's state, the queue, the buffers */
	pthread_cond_t work;        /* a chunk was queued, or stop */
	pthread_t *threads;
	int nthreads, started, stop;
	struct chunk *head, *tail;  /* queued chunks, oldest first */
	struct pd_buf *bufs;        /* chunk buffers free for a member */
	int nbufs;
	z_stream helper_z;          /* pdeflate_pool_help's, one caller at a time */
	int helper_zinit, helper_busy;
};

struct pdeflate {
	struct pdeflate_pool *pool;
	int own_pool;               /* made by pdeflate_new: freed with it */
	size_t chunk_size;
	pdeflate_sink sink;
	void *sink_ctx;
	pthread_cond_t done;        /* one of its chunks was compressed */
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

/* Chunks' buffers the pool keeps for later members at most. */
#define PD_POOL_BUFS 64

static struct chunk *
slot_of(struct pdeflate *p, unsigned long seq)
{
	return &p->slots[seq % (unsigned long)p->nslots];
}

/* Makes c's output buffer want bytes long when it is shorter; z->next_out
 * and avail_out follow it. 0, or -1 when out of memory. */
static int
chunk_out_grow(z_stream *z, struct chunk *c, size_t want)
{
	size_t used = c->capout - z->avail_out;
	unsigned char *o;

	if (want <= c->capout)
		return 0;
	if ((o = realloc(c->out, want)) == NULL)
		return -1;
	c->out = o;
	c->capout = want;
	z->next_out = o + used;
	z->avail_out = (uInt)(want - used);
	return 0;
}

/* Deflates the input given to z with flush, growing c's output buffer
 * when zlib fills it (a flush then goes on with the same flush value, as
 * zlib says). 0, or -1. */
static int
deflate_flushed(z_stream *z, struct chunk *c, int flush)
{
	int rc;

	for (;;) {
		rc = deflate(z, flush);
		if (rc == Z_STREAM_END)
			return 0;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
		/* room left: zlib is done with the flush (Z_FINISH ends above) */
		if (z->avail_out != 0)
			return flush == Z_FINISH ? -1 : 0;
		if (chunk_out_grow(z, c, c->capout + c->capout / 2 + 4096) < 0)
			return -1;
	}
}

/* Deflates one chunk with the worker's own stream, ending a deflate block
 * every PDEFLATE_BLOCK bytes of input (Z_BLOCK: no byte alignment, the
 * window kept). Mail is text, headers and base64 in turn; zlib at memLevel
 * 8 ends a block only when 16k symbols fill its buffer, so one set of
 * Huffman codes serves a mix. Shorter blocks follow the mix: on a Cyrus
 * spool's tar, level 6 with 8 KiB blocks is 3.9% smaller than level 6
 * alone for ~2% more CPU; level 5 with 4 KiB blocks (the archive's,
 * ARCH_LEVEL) 3.3% smaller and 25% cheaper (bench-cyrus, README). The
 * stream stays plain deflate, which any inflate reads. */
static void
compress_chunk(z_stream *z, int *zinit, int level, struct chunk *c)
{
	size_t bound, off, n;
	int flush;

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
	/* each block ended early costs a few bytes over zlib's bound */
	bound = deflateBound(z, (uLong)c->nin) + 64 + (c->nin / PDEFLATE_BLOCK + 1) * 8;
	z->next_out = c->out;
	z->avail_out = (uInt)c->capout;
	if (chunk_out_grow(z, c, bound) < 0) {
		c->failed = 1;
		return;
	}
	off = 0;
	do {
		n = c->nin - off < PDEFLATE_BLOCK ? c->nin - off : PDEFLATE_BLOCK;
		flush = off + n < c->nin ? Z_BLOCK : c->last ? Z_FINISH : Z_SYNC_FLUSH;
		z->next_in = c->in + off;
		z->avail_in = (uInt)n;
		if (deflate_flushed(z, c, flush) < 0 || z->avail_in != 0) {
			c->failed = 1;
			return;
		}
		off += n;
	} while (off < c->nin);
	c->nout = c->capout - z->avail_out;
	c->crc = crc32(0L, c->in, (uInt)c->nin);
}

/* Takes the oldest queued chunk, busy now; NULL when none. Called locked. */
static struct chunk *
queue_pop(struct pdeflate_pool *pool)
{
	struct chunk *c = pool->head;

	if (c == NULL)
		return NULL;
	pool->head = c->next;
	if (pool->head == NULL)
		pool->tail = NULL;
	c->next = NULL;
	c->state = CHUNK_BUSY;
	return c;
}

int
pdeflate_pool_help(struct pdeflate_pool *pool)
{
	struct chunk *c = NULL;

	pthread_mutex_lock(&pool->mu);
	if (!pool->helper_busy && (c = queue_pop(pool)) != NULL)
		pool->helper_busy = 1;
	pthread_mutex_unlock(&pool->mu);
	if (c == NULL)
		return 0;
	compress_chunk(&pool->helper_z, &pool->helper_zinit, pool->level, c);
	pthread_mutex_lock(&pool->mu);
	c->state = CHUNK_DONE;
	pool->helper_busy = 0;
	pthread_cond_broadcast(&c->owner->done);
	pthread_mutex_unlock(&pool->mu);
	return 1;
}

static void *
worker(void *arg)
{
	struct pdeflate_pool *pool = arg;
	z_stream z;
	int zinit = 0;

	pthread_mutex_lock(&pool->mu);
	for (;;) {
		/* the oldest first: its writer waits for it */
		struct chunk *c = queue_pop(pool);

		if (c == NULL) {
			if (pool->stop)
				break;
			pthread_cond_wait(&pool->work, &pool->mu);
			continue;
		}
		pthread_mutex_unlock(&pool->mu);
		compress_chunk(&z, &zinit, pool->level, c);
		pthread_mutex_lock(&pool->mu);
		c->state = CHUNK_DONE;
		pthread_cond_broadcast(&c->owner->done);
	}
	pthread_mutex_unlock(&pool->mu);
	if (zinit)
		deflateEnd(&z);
	return NULL;
}

int
pdeflate_pool_new(struct pdeflate_pool **out, int level, int nthreads, size_t chunk_size)
{
	struct pdeflate_pool *pool = calloc(1, sizeof *pool);
	int i;

	*out = NULL;
	if (pool == NULL)
		return -1;
	if (nthreads < 1)
		nthreads = 1;
	pool->level = level;
	pool->chunk_size = chunk_size;
	pool->nthreads = nthreads;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->work, NULL);
	pool->threads = calloc((size_t)nthreads, sizeof *pool->threads);
	if (pool->threads == NULL)
		goto fail;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker, pool) != 0)
			goto fail;
		pool->started++;
	}
	*out = pool;
	return 0;
fail:
	pdeflate_pool_free(pool);
	return -1;
}

void
pdeflate_pool_free(struct pdeflate_pool *pool)
{
	int i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->mu);
	for (i = 0; i < pool->started; i++)
		pthread_join(pool->threads[i], NULL);
	while (pool->bufs != NULL) {
		struct pd_buf *b = pool->bufs;

		pool->bufs = b->next;
		free(b->in);
		free(b->out);
		free(b);
	}
	if (pool->helper_zinit)
		deflateEnd(&pool->helper_z);
	free(pool->threads);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->work);
	free(pool);
}

/* Gives chunk c buffers: kept ones, or a new input buffer of the pool's
 * chunk size (its output buffer is made on first use). Returns 0 or -1. */
static int
buf_take(struct pdeflate_pool *pool, struct chunk *c)
{
	struct pd_buf *b;

	pthread_mutex_lock(&pool->mu);
	b = pool->bufs;
	if (b != NULL) {
		pool->bufs = b->next;
		pool->nbufs--;
	}
	pthread_mutex_unlock(&pool->mu);
	if (b == NULL)
		return (c->in = malloc(pool->chunk_size)) == NULL ? -1 : 0;
	c->in = b->in;
	c->out = b->out;
	c->capout = b->capout;
	free(b);
	return 0;
}

/* Takes chunk c's buffers back: kept for the next member, or freed. */
static void
buf_give(struct pdeflate_pool *pool, struct chunk *c)
{
	struct pd_buf *b = NULL;

	if (c->in == NULL) {
		free(c->out);
		c->out = NULL;
		return;
	}
	pthread_mutex_lock(&pool->mu);
	if (pool->nbufs < PD_POOL_BUFS && (b = malloc(sizeof *b)) != NULL) {
		b->in = c->in;
		b->out = c->out;
		b->capout = c->capout;
		b->next = pool->bufs;
		pool->bufs = b;
		pool->nbufs++;
	}
	pthread_mutex_unlock(&pool->mu);
	if (b == NULL) {
		free(c->in);
		free(c->out);
	}
	c->in = c->out = NULL;
}

int
pdeflate_new_pooled(struct pdeflate **out, struct pdeflate_pool *pool, pdeflate_sink sink, void *sink_ctx)
{
	struct pdeflate *p = calloc(1, sizeof *p);
	int i;

	*out = NULL;
	if (p == NULL)
		return -1;
	p->pool = pool;
	p->chunk_size = pool->chunk_size;
	p->sink = sink;
	p->sink_ctx = sink_ctx;
	p->nslots = pool->nthreads * PD_SLOTS_PER_THREAD + 1;
	p->crc = crc32(0L, Z_NULL, 0);
	pthread_cond_init(&p->done, NULL);
	p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
	if (p->slots == NULL)
		goto fail;
	for (i = 0; i < p->nslots; i++)
		p->slots[i].owner = p;
	*out = p;
	return 0;
fail:
	pdeflate_free(p);
	return -1;
}

int
pdeflate_new(struct pdeflate **out, int level, int nthreads, size_t chunk_size,
    pdeflate_sink sink, void *sink_ctx)
{
	struct pdeflate_pool *pool;

	*out = NULL;
	if (pdeflate_pool_new(&pool, level, nthreads, chunk_size) < 0)
		return -1;
	if (pdeflate_new_pooled(out, pool, sink, sink_ctx) < 0) {
		pdeflate_pool_free(pool);
		return -1;
	}
	(*out)->own_pool = 1;
	return 0;
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

	pthread_mutex_lock(&p->pool->mu);
	while (wait && c->seq == p->write_seq && (c->state == CHUNK_QUEUED || c->state == CHUNK_BUSY))
		pthread_cond_wait(&p->done, &p->pool->mu);
	if (c->state != CHUNK_DONE || c->seq != p->write_seq) {
		pthread_mutex_unlock(&p->pool->mu);
		return 0;
	}
	pthread_mutex_unlock(&p->pool->mu);
	failed = c->failed;
	if (failed) {
		p->failed = 1;
		return chj_error_set(&p->err, CHJ_ERR_ARCHIVE, 0, "deflate failed (out of memory?)");
	}
	if (emit(p, c->out, c->nout) < 0)
		return -1;
	p->crc = crc32_combine(p->crc, c->crc, (z_off_t)c->nin);
	p->total_in += c->nin;
	pthread_mutex_lock(&p->pool->mu);
	c->state = CHUNK_FREE;
	pthread_mutex_unlock(&p->pool->mu);
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
	pthread_mutex_lock(&p->pool->mu);
	c->state = CHUNK_QUEUED;
	c->next = NULL;
	if (p->pool->tail != NULL)
		p->pool->tail->next = c;
	else
		p->pool->head = c;
	p->pool->tail = c;
	pthread_cond_signal(&p->pool->work);
	pthread_mutex_unlock(&p->pool->mu);
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

		pthread_mutex_lock(&p->pool->mu);
		r = c->state == CHUNK_FREE;
		pthread_mutex_unlock(&p->pool->mu);
		if (r)
			break;
		/* rather than wait for the workers, deflate a chunk here */
		if ((r = write_next(p, 0)) < 0)
			return -1;
		if (r == 0 && !pdeflate_pool_help(p->pool) && write_next(p, 1) < 0)
			return -1;
	}
	/* buffers on first use: a small member takes few */
	if (c->in == NULL && buf_take(p->pool, c) < 0) {
		p->failed = 1;
		return chj_error_set(&p->err, CHJ_ERR_NOMEM, 0, "out of memory");
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

/* Takes p's queued chunks out of its pool's queue and waits for those a
 * worker has: then no worker touches p. Called and returns locked. */
static void
withdraw(struct pdeflate *p)
{
	struct pdeflate_pool *pool = p->pool;
	struct chunk **pc = &pool->head, *last = NULL;
	int i, busy;

	while (*pc != NULL) {
		if ((*pc)->owner == p) {
			(*pc)->state = CHUNK_FREE;
			*pc = (*pc)->next;
			continue;
		}
		last = *pc;
		pc = &(*pc)->next;
	}
	pool->tail = last;
	do {
		busy = 0;
		for (i = 0; i < p->nslots; i++)
			busy |= p->slots[i].state == CHUNK_BUSY;
		if (busy)
			pthread_cond_wait(&p->done, &pool->mu);
	} while (busy);
}

void
pdeflate_free(struct pdeflate *p)
{
	int i;

	if (p == NULL)
		return;
	if (p->slots != NULL) {
		pthread_mutex_lock(&p->pool->mu);
		withdraw(p);
		pthread_mutex_unlock(&p->pool->mu);
		for (i = 0; i < p->nslots; i++)
			buf_give(p->pool, &p->slots[i]);
	}
	free(p->slots);
	pthread_cond_destroy(&p->done);
	if (p->own_pool)
		pdeflate_pool_free(p->pool);
	free(p);
}
