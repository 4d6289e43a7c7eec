/* progress.h: progress lines for long operations (initial crawl, full list,
 * and later backup, compact, verify, restore): counts, bytes, rate and ETA.
 * This module only formats; the programs decide whether to print (only on a
 * terminal) and where. */
#ifndef CHJ_PROGRESS_H
#define CHJ_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

struct progress {
	const char *what;        /* "watching", "listing" */
	const char *unit;        /* "directories", "files" */
	double start, last;      /* monotonic seconds */
	uint64_t done;           /* units done */
	uint64_t bytes;          /* bytes done (0: not shown) */
	uint64_t total;          /* expected units (0: unknown, no ETA) */
};

void progress_start(struct progress *p, const char *what, const char *unit, uint64_t total);
/* Formats the current line into buf and returns 1 when a redraw is due
 * (at most 4 per second) or final is set; returns 0 otherwise. */
int progress_format(struct progress *p, int final, char *buf, size_t size);

#endif
