/* prune.h: which points of a series to keep, as borg prune decides: the
 * one policy for the runs of a Cyrus archive (cyrus/retention.h) and for the
 * snapshots of a mirror (snapshot.h). A point is a time (unix seconds, UTC);
 * the series is given oldest first. Nothing here prints. */
#ifndef CHJ_PRUNE_H
#define CHJ_PRUNE_H

#include <stddef.h>
#include <stdint.h>

/* With any rule set (last, hourly, daily, weekly, monthly), borg prune's:
 * rule by rule, newest point first, the newest point of each of the N most
 * recent periods (UTC hours, days, ISO weeks, months; "last": each point
 * its own period) that holds a point no earlier rule kept, and the oldest
 * point when fewer such periods exist. With none: the last point of each
 * UTC day of the last keep_days days. The newest point is always kept. */
struct prune_rules {
	unsigned keep_days;
	unsigned last, hourly, daily, weekly, monthly;
};

/* Why a point is kept ("newest", "last", "hourly", ..., "daily window",
 * "monthly (oldest)"); NULL when it is not. Static strings. */
typedef const char *prune_reason;

/* 1 when any of the borg-like rules is set. */
int prune_has_rules(const struct prune_rules *r);

/* Decides for times[0..n) (oldest first) under r as of now: why[i] says why
 * point i is kept, NULL when it goes. Returns how many are kept. */
size_t prune_plan(const int64_t *times, size_t n, const struct prune_rules *r, int64_t now,
    prune_reason *why);

#endif
