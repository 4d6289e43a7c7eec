/* progress.c: progress line formatting (see progress.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "progress.h"

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
progress_start(struct progress *p, const char *what, const char *unit, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->start = p->last = mono_now();
}

int
progress_format(struct progress *p, int final, char *buf, size_t size)
{
	double now = mono_now(), secs, rate;
	size_t o;

	if (!final && now - p->last < 0.25)
		return 0;
	p->last = now;
	secs = now - p->start;
	rate = secs > 0 ? (double)p->done / secs : 0;
	o = (size_t)snprintf(buf, size, "%s: %llu %s", p->what, (unsigned long long)p->done, p->unit);
	if (p->bytes > 0 && o < size)
		o += (size_t)snprintf(buf + o, size - o, ", %.1f MiB", (double)p->bytes / 1048576.0);
	if (o < size)
		o += (size_t)snprintf(buf + o, size - o, ", %.0f/s, %.1f s", rate, secs);
	if (!final && p->total > 0 && p->done <= p->total && rate > 0 && o < size) {
		double left = (double)(p->total - p->done) / rate;

		snprintf(buf + o, size - o, ", %d%%, ETA %d:%02d",
		    (int)(100.0 * (double)p->done / (double)p->total), (int)left / 60, (int)left % 60);
	}
	return 1;
}
