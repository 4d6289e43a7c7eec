/* prune.c: borg prune's rules over a series of times (prune.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "prune.h"

/* A rule: its name, the period it counts in (strftime of the UTC time; NULL:
 * each point its own period), and the reason given to the oldest point kept
 * because fewer periods exist. */
struct rule {
	const char *name;
	const char *period;
	const char *oldest;
};

static const struct rule rules[] = {
	{ "last", NULL, "last (oldest)" },
	{ "hourly", "%Y-%m-%d %H", "hourly (oldest)" },
	{ "daily", "%Y-%m-%d", "daily (oldest)" },
	{ "weekly", "%G-%V", "weekly (oldest)" },
	{ "monthly", "%Y-%m", "monthly (oldest)" },
};

/* The period of point i under rule ru, as text: equal keys, one period. */
static void
period_key(const struct rule *ru, const int64_t *times, size_t i, char *key, size_t size)
{
	time_t tt = (time_t)times[i];
	struct tm tm;

	if (ru->period == NULL) {
		snprintf(key, size, "point %zu", i);
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(key, size, ru->period, &tm);
}

/* One rule: keeps (why[i] = its name) the newest point of each of the count
 * most recent periods holding a point not kept yet, newest first; the oldest
 * point when fewer periods exist. */
static void
keep_by_rule(const int64_t *times, size_t n, const struct rule *ru, unsigned count,
    prune_reason *why)
{
	char last[32] = "", key[32];
	unsigned kept = 0;
	size_t i;

	if (count == 0 || n == 0)
		return;
	for (i = n; i-- > 0 && kept < count;) {
		period_key(ru, times, i, key, sizeof key);
		if (strcmp(key, last) == 0)
			continue;
		snprintf(last, sizeof last, "%s", key);
		if (why[i] == NULL) {
			why[i] = ru->name;
			kept++;
		}
	}
	if (kept < count && why[0] == NULL)
		why[0] = ru->oldest;
}

int
prune_has_rules(const struct prune_rules *r)
{
	return r->last || r->hourly || r->daily || r->weekly || r->monthly;
}

/* keep_days: the last point of each UTC day no older than the horizon */
static void
keep_daily_window(const int64_t *times, size_t n, unsigned days, int64_t now,
    prune_reason *why)
{
	const struct rule *daily = &rules[2];
	int64_t horizon = now - (int64_t)days * 86400;
	char key[32], next[32];
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		period_key(daily, times, i, key, sizeof key);
		period_key(daily, times, i + 1, next, sizeof next);
		if (strcmp(key, next) != 0 && times[i] >= horizon)
			why[i] = "daily window";
	}
}

size_t
prune_plan(const int64_t *times, size_t n, const struct prune_rules *r, int64_t now,
    prune_reason *why)
{
	const unsigned counts[] = { r->last, r->hourly, r->daily, r->weekly, r->monthly };
	size_t i, kept = 0;

	for (i = 0; i < n; i++)
		why[i] = NULL;
	if (prune_has_rules(r)) {
		for (i = 0; i < sizeof rules / sizeof rules[0]; i++)
			keep_by_rule(times, n, &rules[i], counts[i], why);
	} else {
		keep_daily_window(times, n, r->keep_days, now, why);
	}
	if (n > 0 && why[n - 1] == NULL)
		why[n - 1] = "newest";
	for (i = 0; i < n; i++)
		if (why[i] != NULL)
			kept++;
	return kept;
}
