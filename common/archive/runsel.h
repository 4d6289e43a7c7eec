/* runsel.h: the one reading of a run selector (the --at of every command
 * that takes one: show, restore) and the run it picks among an archive's
 * runs. A selector is one of:
 *
 *   N                     run number N, as `show` lists them (1, 2, ...)
 *   YYYYmmddTHHMMSSZ[.N]  a run name; one the archive lacks is taken as that
 *                         UTC time (without the .N suffix; with it, none)
 *   YYYY-mm-ddTHH:MM:SSZ  a UTC time: the last run at or before it (also
 *                         without the Z, or with a space for the T)
 *   YYYY-mm-dd            a UTC day: its end, so the day's last run (or the
 *                         last run before it)
 *   @UNIXTIME             seconds since 1970: the last run at or before them
 *
 * Parsing needs no archive, so a malformed selector is refused before one is
 * opened. Retention's daily points (retention.h) use the same UTC days. */
#ifndef CHJ_RUNSEL_H
#define CHJ_RUNSEL_H

#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"
#include "error.h"

enum runsel_kind {
	RUNSEL_NEWEST,              /* no selector: the newest run */
	RUNSEL_NUMBER,              /* number */
	RUNSEL_NAME,                /* text is a run name; time its time */
	RUNSEL_TIME,                /* the last run at or before time */
};

struct runsel {
	enum runsel_kind kind;
	int64_t number;             /* RUNSEL_NUMBER: the run's id */
	int64_t time;               /* RUNSEL_NAME, RUNSEL_TIME: unix time */
	char text[48];              /* the selector as given, for messages (a
	                             * valid one always fits) */
};

/* Reads at (NULL: the newest run) into s. Returns 0, or -1 with e
 * (CHJ_ERR_INVALID, one line "bad --at 'AT': WHY"). */
int runsel_parse(struct runsel *s, const char *at, struct chj_error *e);

/* The run s picks among runs[0..n) (in file order, as arch_runs gives
 * them): 0 and *index, or -1 with e (CHJ_ERR_NOTFOUND, one line naming
 * archive, or "the archive" when archive is NULL, and the runs it has). */
int runsel_pick(const struct runsel *s, const struct arch_run *runs, size_t n, const char *archive,
    size_t *index, struct chj_error *e);

/* The UTC day of unix time t: days since 1970-01-01 (negative before). */
int64_t runsel_day(int64_t t);
/* 1 when runs[i] is the last of runs[0..n) in its UTC day. */
int runsel_last_of_day(const struct arch_run *runs, size_t n, size_t i);

#endif
