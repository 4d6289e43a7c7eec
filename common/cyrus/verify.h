/* verify.h: the check of a user's Cyrus archive alone: what arch_verify
 * checks (gzip CRCs, tar framing, files/<sha1> contents, entry names, the
 * sidecar), every stored cyrus.index and cyrus.expunge parsed, and every
 * message they reference stored. Nothing here prints: each problem, and
 * each note that is not one, goes to the caller's callback as one line. */
#ifndef CHJ_CYRUS_VERIFY_H
#define CHJ_CYRUS_VERIFY_H

#include "error.h"

/* Told one line: a problem, or (problem 0) a note: an interrupted run the
 * next backup cuts off, a sidecar that was missing or stale and was rebuilt
 * from the archive (derived data: a repair, not a problem). */
typedef void (*cyrus_verify_cb)(void *ctx, int problem, const char *msg);

/* Checks the archive at path (never writing it; its sidecar may be
 * rebuilt). Returns the number of problems (0: good), or -1 with e
 * (CHJ_ERR_ARCHIVE) when it cannot be read at all. */
long cyrus_verify(const char *path, cyrus_verify_cb cb, void *ctx, struct chj_error *e);

#endif
