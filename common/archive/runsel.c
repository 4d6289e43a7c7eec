/* runsel.c: the run selector (runsel.h): a strict reader of the forms --at
 * takes (every digit counted, every date checked against the calendar), and
 * the run it picks. */
#include <stdio.h>
#include <string.h>

#include "archive/runsel.h"

#define RUNSEL_FORMS "expected a run number, a run name (YYYYmmddTHHMMSSZ), a UTC time " \
	"(YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME"

/* n digits at s into *v: 1, else 0. */
static int
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

/* A run of only digits (at least one) into *v: 1; 0 when s is not one;
 * -1 when it does not fit an int64_t. */
static int
number(const char *s, int64_t *v)
{
	const char *p;

	*v = 0;
	if (*s == '\0')
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return 0;
	}
	for (p = s; *p != '\0'; p++) {
		if (*v > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		*v = *v * 10 + (*p - '0');
	}
	return 1;
}

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's
 * days_from_civil), so that no time zone or libc enters. */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* What a date or time form read: 1 read (*t), 0 not this form, -1 this
 * form with values no calendar or clock has (why in *why). */
static int
date_form(const char *s, const char *pattern, int64_t *t, const char **why)
{
	int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
	const char *p = pattern, *q = s;

	/* pattern letters: Y (4 digits), m, d, H, M, S (2 digits); other bytes
	 * match themselves */
	for (; *p != '\0'; p++) {
		int *f = *p == 'Y' ? &y : *p == 'm' ? &mo : *p == 'd' ? &d : *p == 'H' ? &h :
		    *p == 'M' ? &mi : *p == 'S' ? &sec : NULL;
		int n = *p == 'Y' ? 4 : 2;

		if (f == NULL) {
			if (*q++ != *p)
				return 0;
		} else if (digits(q, n, f)) {
			q += n;
		} else {
			return 0;
		}
	}
	if (*q != '\0')
		return 0;
	if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo)) {
		*why = "no such date";
		return -1;
	}
	if (h > 23 || mi > 59 || sec > 59) {
		*why = "no such time of day";
		return -1;
	}
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	return 1;
}

/* Refuses at: its control bytes shown as \n, \t or \xNN, so that the message
 * stays one line. */
static int
bad(struct chj_error *e, const char *at, const char *why)
{
	char shown[256];
	size_t o = 0;

	for (; *at != '\0' && o + 5 < sizeof shown; at++) {
		unsigned char c = (unsigned char)*at;

		if (c == '\n' || c == '\t')
			o += (size_t)snprintf(shown + o, sizeof shown - o, "\\%c", c == '\n' ? 'n' : 't');
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x", c);
		else
			shown[o++] = (char)c;
	}
	shown[o] = '\0';
	return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad --at '%s%s': %s", shown, *at ? "..." : "", why);
}

/* The forms of a run name and of a time into s: 1 read, 0 none of them,
 * -1 one of them with values no calendar or clock has (why). */
static int
name_or_time(struct runsel *s, const char *at, const char **why)
{
	/* the times, with their variants (no Z; a space for the T) */
	static const char *const times[] = {
		"Y-m-dTH:M:SZ", "Y-m-dTH:M:S", "Y-m-d H:M:SZ", "Y-m-d H:M:S",
	};
	int64_t suffix;
	size_t i;
	int r;

	/* a run name: YYYYmmddTHHMMSSZ and an optional .N (a later run of the
	 * same second) */
	if (strlen(at) >= 16 && (at[16] == '\0' || (at[16] == '.' && number(at + 17, &suffix) > 0))) {
		char base[17];

		memcpy(base, at, 16);
		base[16] = '\0';
		if ((r = date_form(base, "YmdTHMSZ", &s->time, why)) != 0) {
			s->kind = RUNSEL_NAME;
			return r;
		}
	}
	s->kind = RUNSEL_TIME;
	for (i = 0; i < sizeof times / sizeof times[0]; i++)
		if ((r = date_form(at, times[i], &s->time, why)) != 0)
			return r;
	r = date_form(at, "Y-m-d", &s->time, why);
	s->time += 86399;           /* the day's end: its last run */
	return r;
}

int
runsel_parse(struct runsel *s, const char *at, struct chj_error *e)
{
	const char *why = NULL;
	int r;

	memset(s, 0, sizeof *s);
	if (at == NULL) {
		s->kind = RUNSEL_NEWEST;
		return 0;
	}
	if (strlen(at) >= sizeof s->text)
		return bad(e, at, RUNSEL_FORMS);
	snprintf(s->text, sizeof s->text, "%s", at);
	r = number(at, &s->number);
	if (r < 0)
		return bad(e, at, "no run has so large a number");
	if (r > 0) {
		s->kind = RUNSEL_NUMBER;
		return s->number == 0 ? bad(e, at, "runs are numbered from 1") : 0;
	}
	if (at[0] == '@') {
		s->kind = RUNSEL_TIME;
		r = number(at + 1, &s->time);
		if (r == 0)
			return bad(e, at, "expected @ and the seconds since 1970-01-01 (UTC)");
		return r < 0 ? bad(e, at, "too far in the future") : 0;
	}
	r = name_or_time(s, at, &why);
	if (r == 0)
		return bad(e, at, RUNSEL_FORMS);
	return r < 0 ? bad(e, at, why) : 0;
}

int
runsel_pick(const struct runsel *s, const struct arch_run *runs, size_t n, const char *archive,
    size_t *index, struct chj_error *e)
{
	char what[4200];
	size_t i, best = n;

	snprintf(what, sizeof what, archive != NULL ? "archive '%s'" : "the archive",
	    archive != NULL ? archive : "");
	if (n == 0)
		return chj_error_set(e, CHJ_ERR_NOTFOUND, 0, "%s holds no complete run", what);
	switch (s->kind) {
	case RUNSEL_NEWEST:
		*index = n - 1;
		return 0;
	case RUNSEL_NUMBER:
		for (i = 0; i < n; i++)
			if (runs[i].id == s->number) {
				*index = i;
				return 0;
			}
		return chj_error_set(e, CHJ_ERR_NOTFOUND, 0, "%s has no run %lld (its runs are numbered "
		    "%lld to %lld)", what, (long long)s->number, (long long)runs[0].id,
		    (long long)runs[n - 1].id);
	case RUNSEL_NAME:
		for (i = 0; i < n; i++)
			if (strcmp(runs[i].name, s->text) == 0) {
				*index = i;
				return 0;
			}
		if (strchr(s->text, '.') != NULL)
			return chj_error_set(e, CHJ_ERR_NOTFOUND, 0, "%s has no run named '%s'", what, s->text);
		break;              /* a name it lacks: that time */
	case RUNSEL_TIME:
		break;
	}
	for (i = 0; i < n; i++)
		if (runs[i].time <= s->time)
			best = i;
	if (best == n)
		return chj_error_set(e, CHJ_ERR_NOTFOUND, 0, "%s has no run at or before '%s' (the first "
		    "is %s)", what, s->text, runs[0].name);
	*index = best;
	return 0;
}

int64_t
runsel_day(int64_t t)
{
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

int
runsel_last_of_day(const struct arch_run *runs, size_t n, size_t i)
{
	return i + 1 == n || runsel_day(runs[i + 1].time) != runsel_day(runs[i].time);
}
