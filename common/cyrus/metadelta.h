/* metadelta.h: a folder's cyrus.index (or cyrus.expunge), or a per-user
 * database (dav.db, seen.db, ...: SQLite pages or twoskip records rewritten
 * in place), stored as what changed since the archive's previous copy, and
 * the one way every reader gets such a file back from an archive:
 * cyrus_meta_fetch, which rebuilds a delta chain and checks the result's
 * SHA1.
 *
 * A delta is the member "<name>.delta" beside the whole copies "<name>"
 * (folders/<uniqueid>/cyrus.index.delta, user/conf/.../dav.db.delta): the
 * state of name at a run is the
 * newest of the two at or before it; a delta applies to the state at the run
 * before its own. Its bytes (all integers big-endian):
 *
 *     "CHJDELTA1\n"                 10 bytes
 *     base size, new size           8 + 8
 *     base SHA1, new SHA1           20 + 20
 *     extent count                  4
 *     per extent: offset 8, length 4, the new bytes at offset
 *
 * The rebuilt file is the base cut or grown (zeros) to the new size, then
 * each extent written over it; cyrus.index's header and the records that
 * were appended or rewritten are its extents. */
#ifndef CHJ_CYRUS_METADELTA_H
#define CHJ_CYRUS_METADELTA_H

#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"
#include "error.h"

#define CYRUS_DELTA_SUFFIX ".delta"
#define CYRUS_DELTA_MAGIC "CHJDELTA1\n"
#define CYRUS_DELTA_HEAD (10 + 8 + 8 + 20 + 20 + 4)

/* What a delta's head says. */
struct cyrus_delta_info {
	uint64_t base_size, new_size;
	char base_sha1[41], new_sha1[41];
	uint32_t nextents;
};

/* Encodes nw against base into *out (allocated). Returns 0, 1 when the delta
 * would exceed max bytes (nothing allocated: store a whole copy), -1 out of
 * memory. */
int cyrus_delta_encode(const void *base, size_t blen, const void *nw, size_t nlen, size_t max,
    char **out, size_t *olen);
/* Reads a delta's head and checks its extents lie inside the new size.
 * Returns 0 or -1 (CHJ_ERR_CORRUPT, e says why). */
int cyrus_delta_info(const void *d, size_t len, struct cyrus_delta_info *info, struct chj_error *e);
/* Applies delta d to the buffer *buf of *len bytes (its SHA1 already known
 * to be the base's: the caller checks base_sha1), in place (realloc'ed).
 * Returns 0 or -1 (CHJ_ERR_CORRUPT or CHJ_ERR_NOMEM). The new SHA1 is the
 * caller's to check. */
int cyrus_delta_apply(char **buf, size_t *len, const void *d, size_t dlen, struct chj_error *e);

/* 1 when name (an entry name) is a delta member. */
int cyrus_delta_name(const char *name);
/* 1 when the state of entry name may be stored as deltas (every reader of
 * it goes through cyrus_meta_latest and cyrus_meta_fetch): a folder's
 * cyrus.index or cyrus.expunge, a per-user file under user/conf/ (the
 * per-user databases and quota roots); 0 for the rest, always whole. */
int cyrus_delta_eligible(const char *name);

/* The state of meta file name (folders/UID/cyrus.index) at run upto (0: the
 * newest): the newest of name and name.delta at or before it. Returns 1 and
 * fills e (the member's entry: for a delta, its name ends in .delta; free
 * with arch_entry_free) and *is_delta, 0 when there is neither, -1 on an
 * archive error (arch_error(ar)). */
int cyrus_meta_latest(struct arch *ar, const char *name, int64_t upto, struct arch_entry *e,
    int *is_delta);

/* A meta file wanted as it stood at run upto (0: the newest). */
struct cyrus_meta_want {
	const char *name;           /* folders/UID/cyrus.index */
	int64_t upto;
	void *ctx;                  /* the caller's */
};

/* How a state was stored: the deltas over its whole copy. */
struct cyrus_meta_chain {
	size_t ndeltas;
	uint64_t delta_bytes;       /* the deltas' sizes */
	uint64_t run_bytes;         /* the runs holding the chain: what a read inflates, at most */
};

/* The chain under the state of name at run upto, from the sidecar alone
 * (nothing inflated): 1 and *chain, 0 when there is no state, -1 on an
 * archive error (arch_error(ar)); a chain without a whole copy under it
 * counts what it has. */
int cyrus_meta_chain_of(struct arch *ar, const char *name, int64_t upto, struct cyrus_meta_chain *chain);

/* Called once per want, in order: e is the state's entry (run: the newest
 * member's; name: w->name; size and sha1: the rebuilt file's), *buf its
 * bytes (the callback may take them: set *buf NULL). Returns 0 or -1 with
 * err filled. */
typedef int (*cyrus_meta_cb)(void *ctx, const struct cyrus_meta_want *w, const struct arch_entry *e,
    char **buf, size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err);

/* Reads the wanted meta files, rebuilding deltas: every member needed read
 * once, in file order (arch_fetch). A want whose state is missing is an
 * error (CHJ_ERR_NOTFOUND: look with cyrus_meta_latest first). A broken
 * chain (a base missing or not the one the delta names, a malformed delta,
 * a rebuilt SHA1 that is not the recorded one) fails with CHJ_ERR_CORRUPT
 * naming the delta member and its run. Returns 0 or -1 (err). */
int cyrus_meta_fetch(struct arch *ar, const struct cyrus_meta_want *w, size_t n, cyrus_meta_cb cb,
    void *ctx, struct chj_error *err);

#endif
