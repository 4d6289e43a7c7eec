/* retention.h: what a compaction of a user's Cyrus archive keeps, and the
 * compaction itself. Retained: the runs the policy of ../prune.h keeps
 * by their commit times (default: the last run of each UTC day of the last
 * 30 days, and always the newest). Live: each
 * retained run's manifest, the newest copy at or before it of every folder
 * meta file, link and per-user file it names, and every message a retained
 * index copy references. An archive is rewritten when its live share falls
 * below a threshold of 80% that rises one point per week since its last
 * compaction (recorded in ARCHIVE's ".compacted" file beside it; since its
 * first run when never compacted), or when forced. The rewrite itself (new
 * file, fsync, rename) is arch_compact's. Nothing here prints. */
#ifndef CHJ_CYRUS_RETENTION_H
#define CHJ_CYRUS_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"
#include "error.h"
#include "prune.h"

#define CYRUS_RETAIN_DAYS 30            /* keep_days unless told */
#define CYRUS_COMPACT_BASE_THRESHOLD 80 /* percent */
#define CYRUS_COMPACT_WEEKLY_RISE 1     /* percent per week */

/* The runs to retain among runs[0..n) (file order) under r as of now, by
 * their commit times (retention.h). Writes their ids, ascending, into keep
 * and each run's reason into why[i] (room for n each). Returns how many. */
size_t cyrus_retained_runs(const struct arch_run *runs, size_t n, const struct prune_rules *r,
    int64_t now, int64_t *keep, prune_reason *why);

/* The live share (percent) below which an archive last compacted at since
 * (unix time) is rewritten at now: 80, one more per whole week, at most 100. */
unsigned cyrus_compact_threshold(int64_t since, int64_t now);

enum cyrus_compact_outcome {
	CYRUS_COMPACT_EMPTY,        /* no complete run: nothing to compact */
	CYRUS_COMPACT_NOT_DUE,      /* live share at or above the threshold */
	CYRUS_COMPACT_DONE,         /* rewritten */
	CYRUS_COMPACT_PLANNED,      /* decided (would_compact, why), nothing written */
};

struct cyrus_compact_result {
	enum cyrus_compact_outcome outcome;
	size_t runs;                /* runs before */
	size_t kept;                /* runs retained */
	unsigned share, threshold;  /* the live share and the threshold, percent */
	uint64_t live_bytes, total_bytes;
	int stamp_failed;           /* DONE, but the time of it not recorded: */
	struct chj_error stamp_error;   /* why */
	int would_compact;          /* CYRUS_COMPACT_DRY_RUN: it would be rewritten */
	struct arch_run *all;       /* the runs (res.runs of them), and why each */
	prune_reason *why;     /* is kept (NULL: it goes); free with
	                             * cyrus_compact_result_free */
};

#define CYRUS_COMPACT_FORCE   0x1   /* whatever the live share */
#define CYRUS_COMPACT_DRY_RUN 0x2   /* decide and tell, write nothing */

/* Compacts the archive at path as of now, retaining what r says; flags
 * CYRUS_COMPACT_*. Returns 0 and res, or -1 with e (CHJ_ERR_ARCHIVE,
 * CHJ_ERR_CORRUPT, CHJ_ERR_NOMEM; the archive is then unchanged). */
int cyrus_compact(const char *path, const struct prune_rules *r, int flags, int64_t now,
    struct cyrus_compact_result *res, struct chj_error *e);
void cyrus_compact_result_free(struct cyrus_compact_result *res);

#endif
