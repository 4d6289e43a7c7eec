/* pdeflate.h: one gzip member compressed on several cores (see pdeflate.c). */
#ifndef CHJ_PDEFLATE_H
#define CHJ_PDEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Input bytes per deflate block: each chunk's deflate ends a block this
 * often (see compress_chunk in pdeflate.c). */
#define PDEFLATE_BLOCK 4096

/* Receives the compressed bytes, in order, on the caller's thread.
 * Returns 0, or -1 to fail the stream. */
typedef int (*pdeflate_sink)(void *ctx, const void *buf, size_t n);

struct pdeflate;
struct pdeflate_pool;

/* A pool of nthreads workers deflating at zlib level in chunks of
 * chunk_size bytes, for the members of many compressors (in turn or at the
 * same time: chunks are deflated in the order they are handed in). Returns
 * 0, or -1 (out of memory, no threads). */
int pdeflate_pool_new(struct pdeflate_pool **pool, int level, int nthreads, size_t chunk_size);
/* Deflates the oldest chunk queued in pool on the caller's thread, as the
 * workers would: a thread that would wait for them (a writer whose chunks
 * are all in flight, a backup waiting for its commits) works instead, as
 * pigz's reader and writer keep a third thread busy. One caller at a time.
 * Returns 1 when it deflated one, 0 when none was queued (or another
 * caller helps). */
int pdeflate_pool_help(struct pdeflate_pool *pool);
/* Stops the workers and frees the pool: every compressor using it must be
 * freed first. */
void pdeflate_pool_free(struct pdeflate_pool *pool);
/* A compressor whose chunks pool's workers deflate; pool must outlive it.
 * Returns 0, or -1 (out of memory). */
int pdeflate_new_pooled(struct pdeflate **p, struct pdeflate_pool *pool, pdeflate_sink sink,
    void *sink_ctx);
/* A compressor with a pool of its own (freed with it): zlib level, nthreads
 * workers, chunks of chunk_size bytes. Returns 0, or -1 (out of memory, no
 * threads). */
int pdeflate_new(struct pdeflate **p, int level, int nthreads, size_t chunk_size,
    pdeflate_sink sink, void *sink_ctx);
/* Adds n bytes. Returns 0 or -1 (pdeflate_error: the sink failed, or
 * deflate; CHJ_ERR_INVALID after pdeflate_finish). */
int pdeflate_write(struct pdeflate *p, const void *buf, size_t n);
/* Hands the last chunk to the workers without waiting for it: no more
 * writes. The workers go on while the caller does other work; the sink
 * hears the rest at pdeflate_finish. Returns 0 or -1. */
int pdeflate_seal(struct pdeflate *p);
/* Ends the member (sealing it first if need be): waits for the chunks,
 * writes them and the gzip trailer. Returns 0 or -1. */
int pdeflate_finish(struct pdeflate *p);
/* Why the last call failed: CHJ_ERR_ARCHIVE ("write failed" when the sink
 * failed: the sink keeps its own error), CHJ_ERR_INVALID. */
const struct chj_error *pdeflate_error(const struct pdeflate *p);
/* Frees the compressor (and its own pool's workers): an unfinished member
 * is dropped, the sink hears nothing more; its chunks still queued in a
 * shared pool are taken out, those being deflated waited for. */
void pdeflate_free(struct pdeflate *p);

#endif
