/* consumer-run.c: a consumer's run protocol (begin, commit, abort, "is this
 * the open run") on its cursor. The consumer_state_* functions only decide,
 * for unit tests and for the functions below them, which load the cursor,
 * decide and save it under the caller's consumers_lock().
 *
 * Why no change is lost, whatever two runners do
 * ----------------------------------------------
 * C is the cursor: the point (journal id, seq) the last commit recorded. A
 * run R has a begin point b(R), the seq its begin synced to (every change
 * made before that begin has a seq <= b(R)), and a commit point f(R), which a
 * commit of R records as the new C. `list` reads the window of the run open
 * at that moment: every row after C as C is then, up to the moment it reads,
 * which is after its runner's begin. So a runner X that lists after its own
 * begin covers every change after C up to b(X), and more.
 *
 * A change is lost only if a commit moves C past it while the committing
 * runner's list did not cover it. Hence the rule: a commit records a point
 * no later than the begin of any runner that may still commit the run, and
 * every such runner's list started at the current C.
 *
 * 1. begin refuses while a run is open (CONSUMER_RUN_BUSY). A run begun with
 *    no run open commits its own begin: f(R) = b(R).
 * 2. begin --replace takes the open run R over: the new run R' keeps R's
 *    commit point, f(R') = f(R) <= b(R) <= b(R') (seqs only grow), and its
 *    window starts at the same C (nothing was committed in between). Both
 *    runners may now commit the open run without naming it; either records
 *    f(R), which is at or before both begins, and both lists started at C
 *    (R's runner listing after the takeover reads R''s window: the same C,
 *    on the same or a later journal). The changes between b(R) and b(R')
 *    come again in the next run: duplicates, not losses. A chain of
 *    takeovers keeps the first run's point, by induction.
 * 3. commit closes the run: the other runner's commit then finds no open run
 *    (CONSUMER_RUN_NONE) and C stays. abort closes it without moving C, so
 *    whoever aborts, nothing moves, and the other runner's later commit is
 *    refused. A list made when no run is open fails, so its runner has
 *    nothing to commit.
 * 4. With its run id (--run), a runner commits, aborts or lists only its own
 *    run: the replaced runner is refused (CONSUMER_RUN_OTHER) and leaves the
 *    takeover's run alone.
 *
 * Every interleaving of two runners A and B, each doing begin, list, then
 * commit or abort once, B's begin coming while A's run is open (otherwise
 * they run one after the other, the plain protocol):
 *   - B plain: refused (1). A's run is untouched and A's commit records b(A),
 *     covered by A's list. A stray abort by B without --run either finds no
 *     run (after A's end: a warning) or drops A's run (before it), and then
 *     A's commit is refused (3): nothing moves.
 *   - B --replace: then lA, lB, the ends in any order. The first commit (A's
 *     without --run, or B's) records f(A) <= b(A) <= b(B), covered by the
 *     committer's list (2); A's commit --run is refused (4); the second end
 *     finds no run (3). An abort before any commit drops the run and the
 *     later commit is refused (3).
 *   - the journal recreated between the two begins: B's run is full on the
 *     new journal but keeps A's commit point on the old one, so whichever
 *     commits records the old journal id, and the next begin is full again
 *     (a second full run, never an incremental one trusting A's list of the
 *     old journal). A journal restored from an older copy likewise leaves
 *     f(A) above its last seq: the next run is full.
 * What a runner without its id cannot be protected from: committing, long
 * after its run was taken over, a run begun after its list (B replaced A,
 * committed, and began again before A's commit: A would commit B's new run).
 * That is what run ids are for; the scripts that can keep one pass it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "consumer.h"

const char *
consumer_run_id(const struct consumer_state *st)
{
	return st->open_run_id[0] != '\0' ? st->open_run_id : CONSUMER_LEGACY_RUN_ID;
}

int
consumer_run_check(const struct consumer_state *st, const char *run_id, const char *journal_id)
{
	if (!st->has_open)
		return CONSUMER_RUN_NONE;
	if (run_id != NULL && strcmp(run_id, consumer_run_id(st)) != 0)
		return CONSUMER_RUN_OTHER;
	if (journal_id != NULL && strcmp(st->open_journal_id, journal_id) != 0)
		return CONSUMER_RUN_JOURNAL;
	return CONSUMER_RUN_OK;
}

const char *
consumer_full_reason(const struct consumer_state *st, const char *journal_id, int64_t last_seq)
{
	if (!st->has_committed)
		return "no committed run yet";
	if (strcmp(st->committed_journal_id, journal_id) != 0)
		return "the journal id changed (database recreated)";
	if (st->committed_seq > last_seq)
		return "the journal is older than the consumer's cursor (database restored from a copy)";
	return NULL;
}

/* Forgets the open run (after its commit or abort). */
static void
clear_open(struct consumer_state *st)
{
	st->has_open = 0;
	st->open_run_id[0] = '\0';
	memset(st->open_journal_id, 0, sizeof st->open_journal_id);
	st->open_seq = st->open_time = st->open_after_seq = 0;
	st->open_full = 0;
	memset(st->floor_journal_id, 0, sizeof st->floor_journal_id);
	st->floor_seq = st->floor_time = 0;
}

int
consumer_state_begin(struct consumer_state *st, struct consumer_begin *b, const char *run_id)
{
	char fj[sizeof st->floor_journal_id];
	const char *pj;
	int64_t fseq, ftime;

	b->full_reason = NULL;
	b->replaced = 0;
	b->replaced_run_id[0] = '\0';
	b->replaced_time = 0;
	if (st->has_open && !b->replace)
		return CONSUMER_RUN_BUSY;
	if (st->has_open) {
		/* a takeover keeps the replaced run's commit point (rule 2) */
		consumer_commit_point(st, &pj, &fseq, &ftime);
		snprintf(fj, sizeof fj, "%s", pj);
		b->replaced = 1;
		snprintf(b->replaced_run_id, sizeof b->replaced_run_id, "%s", consumer_run_id(st));
		b->replaced_time = st->open_time;
	} else {
		snprintf(fj, sizeof fj, "%s", b->journal_id);
		fseq = b->last_seq;
		ftime = b->now;
	}
	b->full_reason = consumer_full_reason(st, b->journal_id, b->last_seq);
	st->has_open = 1;
	snprintf(st->open_run_id, sizeof st->open_run_id, "%s", run_id);
	snprintf(st->open_journal_id, sizeof st->open_journal_id, "%s", b->journal_id);
	st->open_seq = b->last_seq;
	st->open_time = b->now;
	st->open_full = b->full_reason != NULL;
	st->open_after_seq = b->full_reason != NULL ? 0 : st->committed_seq;
	memcpy(st->floor_journal_id, fj, sizeof fj);
	st->floor_seq = fseq;
	st->floor_time = ftime;
	return CONSUMER_RUN_OK;
}

int
consumer_state_commit(struct consumer_state *st, const char *run_id, const char *journal_id,
    int64_t now)
{
	char cj[sizeof st->committed_journal_id];
	const char *pj;
	int64_t cseq, ctime;
	int rc = consumer_run_check(st, run_id, journal_id);

	if (rc != CONSUMER_RUN_OK)
		return rc;
	consumer_commit_point(st, &pj, &cseq, &ctime);
	snprintf(cj, sizeof cj, "%s", pj);
	st->has_committed = 1;
	memcpy(st->committed_journal_id, cj, sizeof cj);
	st->committed_seq = cseq;
	st->committed_time = ctime;
	st->commit_time = now;
	clear_open(st);
	return CONSUMER_RUN_OK;
}

int
consumer_state_abort(struct consumer_state *st, const char *run_id)
{
	int rc = consumer_run_check(st, run_id, NULL);

	if (rc != CONSUMER_RUN_OK)
		return rc;
	clear_open(st);
	return CONSUMER_RUN_OK;
}

/* Draws a run id that is not avoid: 16 hex digits from the kernel's random
 * source, so an id never comes back, not even after `forget` or for another
 * consumer, as a counter in the cursor would. Returns 0 or -1 (cs->err). */
static int
new_run_id(struct consumers *cs, char id[CONSUMER_RUN_ID_SIZE], const char *avoid)
{
	unsigned char rnd[8];
	size_t i;

	do {
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
			return chj_error_set(&cs->err, CHJ_ERR_SYS, errno, "cannot draw a run id");
		}
		for (i = 0; i < sizeof rnd; i++)
			snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	} while (strcmp(id, avoid) == 0);
	return 0;
}

int
consumer_begin(struct consumers *cs, const char *name, struct consumer_begin *b,
    struct consumer_state *st)
{
	char id[CONSUMER_RUN_ID_SIZE];
	int rc;

	if (consumer_load(cs, name, st) < 0)
		return -1;
	if (new_run_id(cs, id, st->has_open ? consumer_run_id(st) : "") < 0)
		return -1;
	rc = consumer_state_begin(st, b, id);
	if (rc == CONSUMER_RUN_OK && consumer_save_begun(cs, name, st) < 0)
		return -1;
	return rc;
}

int
consumer_commit(struct consumers *cs, const char *name, const char *run_id,
    const char *journal_id, int64_t now, struct consumer_state *st)
{
	int rc = consumer_load(cs, name, st);

	if (rc != 0)
		return rc < 0 ? -1 : CONSUMER_RUN_NO_CONSUMER;
	rc = consumer_state_commit(st, run_id, journal_id, now);
	if (rc == CONSUMER_RUN_OK && consumer_save(cs, name, st) < 0)
		return -1;
	return rc;
}

int
consumer_abort(struct consumers *cs, const char *name, const char *run_id,
    struct consumer_state *st)
{
	int rc = consumer_load(cs, name, st);

	if (rc != 0)
		return rc < 0 ? -1 : CONSUMER_RUN_NO_CONSUMER;
	rc = consumer_state_abort(st, run_id);
	if (rc == CONSUMER_RUN_OK && consumer_save(cs, name, st) < 0)
		return -1;
	return rc;
}
