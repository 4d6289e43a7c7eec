/* pending.h: changes coalesced in memory between flushes: one entry per path
 * (the union of what happened to it), rescan records (earliest time wins) and
 * the sync cookies seen. pending_flush() writes all of it in one journal
 * transaction and empties the set only when the transaction committed. */
#ifndef CHJ_PENDING_H
#define CHJ_PENDING_H

#include <stddef.h>
#include <stdint.h>

struct journal;

struct pending;

struct pending *pending_new(void);
void pending_free(struct pending *p);

/* Each returns 0, or -1 on ENOMEM. */
int pending_change(struct pending *p, const char *path, unsigned flags);
int pending_rescan(struct pending *p, const char *path, int64_t since, const char *reason);
int pending_cookie(struct pending *p, const char *name);

size_t pending_count(const struct pending *p);     /* paths + rescans + cookies */
int pending_has_cookies(const struct pending *p);
/* The wall time the oldest unflushed entry arrived (0 when empty). */
int64_t pending_oldest(const struct pending *p);

/* Drops every path entry, keeping rescans and cookies: used when memory
 * bounds are hit, after a covering rescan has been added. */
void pending_drop_changes(struct pending *p);

/* Writes everything in one transaction, plus the meta values last_flush and
 * the extra int metas given (NULL-terminated key list). Returns 0 (emptied) or
 * -1 (kept; journal_errmsg(j) says why). */
int pending_flush(struct pending *p, struct journal *j, int64_t prune_seq,
    int64_t now, int64_t last_flush, const char *const *meta_keys,
    const int64_t *meta_values);

#endif
