/* test-consumer-run.c: cmocka unit tests for a consumer's run protocol
 * (common/consumer-run.c): begin refuses an open run, --replace keeps the
 * replaced run's commit point (across a chain and across journals), run ids
 * select the run to commit, abort or list, legacy runs without an id; the
 * cursor-file functions; and every interleaving of two runners, each doing
 * begin, list, commit or abort once, checked against the rule that a commit
 * never moves the cursor past what the committing runner listed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consumer.h"
#include "path.h"
#include "unit-tmp.h"

#define JID_A "0123456789abcdef0123456789abcdef"
#define JID_B "fedcba9876543210fedcba9876543210"
#define RUN_1 "1111111111111111"
#define RUN_2 "2222222222222222"
#define RUN_3 "3333333333333333"

/* begin on st with journal jid at seq, time now; returns the code */
static int
begin(struct consumer_state *st, struct consumer_begin *b, const char *jid, int64_t seq,
    int64_t now, int replace, const char *run_id)
{
	memset(b, 0, sizeof *b);
	b->journal_id = jid;
	b->last_seq = seq;
	b->now = now;
	b->replace = replace;
	return consumer_state_begin(st, b, run_id);
}

static void
test_begin_commit_abort(void **state)
{
	struct consumer_state st, before;
	struct consumer_begin b;

	(void)state;
	memset(&st, 0, sizeof st);
	assert_int_equal(consumer_run_check(&st, NULL, NULL), CONSUMER_RUN_NONE);
	assert_int_equal(begin(&st, &b, JID_A, 10, 1000, 0, RUN_1), CONSUMER_RUN_OK);
	assert_string_equal(b.full_reason, "no committed run yet");
	assert_int_equal(b.replaced, 0);
	assert_int_equal(st.has_open, 1);
	assert_string_equal(consumer_run_id(&st), RUN_1);
	assert_int_equal(st.open_full, 1);
	assert_int_equal(st.open_seq, 10);
	assert_int_equal(consumer_run_check(&st, NULL, JID_A), CONSUMER_RUN_OK);
	assert_int_equal(consumer_run_check(&st, RUN_1, JID_A), CONSUMER_RUN_OK);
	assert_int_equal(consumer_run_check(&st, RUN_2, JID_A), CONSUMER_RUN_OTHER);
	assert_int_equal(consumer_run_check(&st, RUN_1, JID_B), CONSUMER_RUN_JOURNAL);

	/* a second begin is refused and changes nothing */
	before = st;
	assert_int_equal(begin(&st, &b, JID_A, 12, 1001, 0, RUN_2), CONSUMER_RUN_BUSY);
	assert_memory_equal(&st, &before, sizeof st);

	/* commit: the cursor is the begin point, the run closed */
	assert_int_equal(consumer_state_commit(&st, NULL, JID_A, 1002), CONSUMER_RUN_OK);
	assert_int_equal(st.has_committed, 1);
	assert_string_equal(st.committed_journal_id, JID_A);
	assert_int_equal(st.committed_seq, 10);
	assert_int_equal(st.committed_time, 1000);
	assert_int_equal(st.commit_time, 1002);
	assert_int_equal(st.has_open, 0);
	assert_string_equal(st.open_run_id, "");
	assert_string_equal(st.floor_journal_id, "");
	assert_int_equal(consumer_state_commit(&st, NULL, JID_A, 1003), CONSUMER_RUN_NONE);
	assert_int_equal(consumer_state_abort(&st, NULL), CONSUMER_RUN_NONE);
	assert_int_equal(consumer_state_abort(&st, RUN_1), CONSUMER_RUN_NONE);

	/* incremental now; abort keeps the cursor */
	assert_int_equal(begin(&st, &b, JID_A, 20, 1010, 0, RUN_2), CONSUMER_RUN_OK);
	assert_null(b.full_reason);
	assert_int_equal(st.open_full, 0);
	assert_int_equal(st.open_after_seq, 10);
	assert_int_equal(consumer_state_abort(&st, RUN_1), CONSUMER_RUN_OTHER);
	assert_int_equal(st.has_open, 1);
	assert_int_equal(consumer_state_abort(&st, RUN_2), CONSUMER_RUN_OK);
	assert_int_equal(st.has_open, 0);
	assert_int_equal(st.committed_seq, 10);

	/* a run begun on another journal cannot be committed */
	assert_int_equal(begin(&st, &b, JID_A, 30, 1020, 0, RUN_3), CONSUMER_RUN_OK);
	assert_int_equal(consumer_state_commit(&st, RUN_3, JID_B, 1021), CONSUMER_RUN_JOURNAL);
	assert_int_equal(consumer_state_commit(&st, RUN_2, JID_A, 1021), CONSUMER_RUN_OTHER);
	assert_int_equal(st.committed_seq, 10);
	assert_int_equal(consumer_state_commit(&st, RUN_3, JID_A, 1022), CONSUMER_RUN_OK);
	assert_int_equal(st.committed_seq, 30);
}

static void
test_replace_keeps_commit_point(void **state)
{
	struct consumer_state st;
	struct consumer_begin b;

	(void)state;
	memset(&st, 0, sizeof st);
	assert_int_equal(begin(&st, &b, JID_A, 10, 1000, 0, RUN_1), CONSUMER_RUN_OK);
	assert_int_equal(consumer_state_commit(&st, NULL, JID_A, 1001), CONSUMER_RUN_OK);
	/* replace with no run open: a plain begin */
	assert_int_equal(begin(&st, &b, JID_A, 20, 1010, 1, RUN_1), CONSUMER_RUN_OK);
	assert_int_equal(b.replaced, 0);
	/* take it over twice: the first begin's point stays */
	assert_int_equal(begin(&st, &b, JID_A, 25, 1015, 1, RUN_2), CONSUMER_RUN_OK);
	assert_int_equal(b.replaced, 1);
	assert_string_equal(b.replaced_run_id, RUN_1);
	assert_int_equal(b.replaced_time, 1010);
	assert_null(b.full_reason);
	assert_int_equal(st.open_seq, 25);
	assert_int_equal(st.open_after_seq, 10);
	assert_int_equal(begin(&st, &b, JID_A, 30, 1020, 1, RUN_3), CONSUMER_RUN_OK);
	assert_string_equal(b.replaced_run_id, RUN_2);
	assert_int_equal(consumer_state_commit(&st, RUN_2, JID_A, 1030), CONSUMER_RUN_OTHER);
	assert_int_equal(consumer_state_commit(&st, NULL, JID_A, 1030), CONSUMER_RUN_OK);
	assert_int_equal(st.committed_seq, 20);
	assert_int_equal(st.committed_time, 1010);
	assert_int_equal(st.commit_time, 1030);
}

/* The journal recreated between the two begins: the takeover is full on the
 * new journal, and its commit records the old journal, so the next run is
 * full again rather than incremental on the trust of a list of the old one. */
static void
test_replace_across_journals(void **state)
{
	struct consumer_state st;
	struct consumer_begin b;

	(void)state;
	memset(&st, 0, sizeof st);
	assert_int_equal(begin(&st, &b, JID_A, 10, 1000, 0, RUN_1), CONSUMER_RUN_OK);
	assert_int_equal(consumer_state_commit(&st, NULL, JID_A, 1001), CONSUMER_RUN_OK);
	assert_int_equal(begin(&st, &b, JID_A, 50, 1010, 0, RUN_1), CONSUMER_RUN_OK);
	assert_int_equal(begin(&st, &b, JID_B, 3, 1020, 1, RUN_2), CONSUMER_RUN_OK);
	assert_string_equal(b.full_reason, "the journal id changed (database recreated)");
	assert_int_equal(consumer_run_check(&st, NULL, JID_B), CONSUMER_RUN_OK);
	assert_int_equal(consumer_state_commit(&st, NULL, JID_B, 1030), CONSUMER_RUN_OK);
	assert_string_equal(st.committed_journal_id, JID_A);
	assert_int_equal(st.committed_seq, 50);
	assert_string_equal(consumer_full_reason(&st, JID_B, 3),
	    "the journal id changed (database recreated)");

	/* a journal restored from an older copy: the kept point is above its
	 * last seq, so the next run is full */
	assert_int_equal(begin(&st, &b, JID_A, 60, 1040, 0, RUN_1), CONSUMER_RUN_OK);
	assert_int_equal(begin(&st, &b, JID_A, 40, 1050, 1, RUN_2), CONSUMER_RUN_OK);
	assert_int_equal(consumer_state_commit(&st, NULL, JID_A, 1060), CONSUMER_RUN_OK);
	assert_int_equal(st.committed_seq, 60);
	assert_non_null(consumer_full_reason(&st, JID_A, 45));
}

/* A cursor written before run ids: the open run is "legacy" and commits its
 * own begin point. */
static void
test_legacy_run(void **state)
{
	struct consumer_state st;
	struct consumer_begin b;

	(void)state;
	memset(&st, 0, sizeof st);
	st.has_open = 1;
	memcpy(st.open_journal_id, JID_A, 33);
	st.open_seq = 7;
	st.open_time = 900;
	st.open_full = 1;
	assert_string_equal(consumer_run_id(&st), CONSUMER_LEGACY_RUN_ID);
	assert_int_equal(consumer_run_check(&st, "legacy", JID_A), CONSUMER_RUN_OK);
	assert_int_equal(begin(&st, &b, JID_A, 9, 950, 0, RUN_1), CONSUMER_RUN_BUSY);
	assert_int_equal(begin(&st, &b, JID_A, 9, 950, 1, RUN_1), CONSUMER_RUN_OK);
	assert_string_equal(b.replaced_run_id, "legacy");
	assert_int_equal(consumer_state_commit(&st, RUN_1, JID_A, 960), CONSUMER_RUN_OK);
	assert_int_equal(st.committed_seq, 7);
	assert_int_equal(st.committed_time, 900);
}

/* ---- every interleaving of two runners ---- */

enum end_kind { END_COMMIT, END_COMMIT_ID, END_ABORT, END_ABORT_ID };

struct runner {
	int replace;              /* begins with --replace */
	enum end_kind end;
	int stop_if_refused;      /* a refused begin: stop (else abort without id) */
	/* progress */
	int began;                /* 1 ok, -1 refused */
	char id[CONSUMER_RUN_ID_SIZE];
	int listed;               /* 1 ok, -1 failed */
	int list_full;
	int64_t list_lo, list_hi; /* listed the rows after lo up to hi */
};

struct world {
	struct consumer_state st;
	int64_t seq;              /* the journal's last seq: one change per step */
	int64_t now;
	char failure[256];
};

static void
step(struct world *w, struct runner *r, int op, int which)
{
	struct consumer_begin b;
	int64_t c0 = w->st.committed_seq;
	int had = w->st.has_committed, rc;

	w->seq++;                 /* a change before every step */
	w->now++;
	if (op == 0) {
		snprintf(r->id, sizeof r->id, "%016x", which + 1);
		rc = begin(&w->st, &b, JID_A, w->seq, w->now, r->replace, r->id);
		r->began = rc == CONSUMER_RUN_OK ? 1 : -1;
		return;
	}
	if (r->began < 0 && r->stop_if_refused)
		return;
	if (op == 1) {
		if (r->began < 0)
			return;
		rc = consumer_run_check(&w->st, r->end == END_COMMIT_ID || r->end == END_ABORT_ID ?
		    r->id : NULL, JID_A);
		r->listed = rc == CONSUMER_RUN_OK ? 1 : -1;
		r->list_full = w->st.open_full;
		r->list_lo = w->st.open_after_seq;
		r->list_hi = w->seq;
		return;
	}
	/* the end: a script commits only after a successful begin and list */
	if (r->began > 0 && r->listed > 0 && (r->end == END_COMMIT || r->end == END_COMMIT_ID)) {
		rc = consumer_state_commit(&w->st, r->end == END_COMMIT_ID ? r->id : NULL, JID_A, w->now);
		if (rc != CONSUMER_RUN_OK)
			return;
		/* the rule: the cursor moved from c0 to committed_seq, and this
		 * runner's list covered all of it */
		if (!(r->list_full || (had && r->list_lo <= c0)) || r->list_hi < w->st.committed_seq)
			snprintf(w->failure, sizeof w->failure, "runner %c committed %lld..%lld "
			    "having listed %s%lld..%lld", 'A' + which, (long long)c0,
			    (long long)w->st.committed_seq, r->list_full ? "(full) " : "",
			    (long long)r->list_lo, (long long)r->list_hi);
		return;
	}
	consumer_state_abort(&w->st, r->began > 0 && (r->end == END_ABORT_ID ||
	    r->end == END_COMMIT_ID) ? r->id : NULL);
}

/* Runs the interleaving given by mask (bit k set: step k is B's) of two
 * runners of three steps each; returns 0 or fails naming the case. */
static void
run_case(unsigned mask, const struct runner *ra, const struct runner *rb, int committed)
{
	struct world w;
	struct runner r[2];
	int pos[2] = { 0, 0 }, k;

	memset(&w, 0, sizeof w);
	r[0] = *ra;
	r[1] = *rb;
	w.seq = 100;
	w.now = 5000;
	if (committed) {
		w.st.has_committed = 1;
		memcpy(w.st.committed_journal_id, JID_A, 33);
		w.st.committed_seq = 50;
	}
	for (k = 0; k < 6; k++) {
		int who = (mask >> k) & 1;

		step(&w, &r[who], pos[who]++, who);
	}
	if (w.failure[0] != '\0')
		fail_msg("interleaving %02x (A: %s, end %d; B: %s, end %d; %s): %s", mask,
		    ra->replace ? "replace" : "plain", ra->end, rb->replace ? "replace" : "plain",
		    rb->end, committed ? "incremental" : "first run", w.failure);
}

static void
test_two_runners_every_interleaving(void **state)
{
	unsigned mask, cases = 0;
	int ra, rb, ea, eb, stop, committed;

	(void)state;
	for (mask = 0; mask < 64; mask++) {
		if (__builtin_popcount(mask) != 3)
			continue;        /* three steps each */
		for (ra = 0; ra < 2; ra++)
		for (rb = 0; rb < 2; rb++)
		for (ea = 0; ea < 4; ea++)
		for (eb = 0; eb < 4; eb++)
		for (stop = 0; stop < 2; stop++)
		for (committed = 0; committed < 2; committed++) {
			struct runner a, b;

			memset(&a, 0, sizeof a);
			memset(&b, 0, sizeof b);
			a.replace = ra;
			b.replace = rb;
			a.end = (enum end_kind)ea;
			b.end = (enum end_kind)eb;
			a.stop_if_refused = b.stop_if_refused = stop;
			run_case(mask, &a, &b, committed);
			cases++;
		}
	}
	assert_int_equal(cases, 20 * 2 * 2 * 4 * 4 * 2 * 2);
}

/* ---- on cursor files ---- */

static void
test_on_cursor_files(void **state)
{
	char tmpl[PATH_MAX], id1[CONSUMER_RUN_ID_SIZE];
	struct consumers cs;
	struct consumer_state st;
	struct consumer_begin b;
	char *dir;

	(void)state;
	assert_non_null(unit_tmpdir(tmpl, sizeof tmpl, "run"));
	dir = path_join(tmpl, "consumers");
	assert_int_equal(consumers_open(&cs, dir, 1), 0);
	assert_int_equal(consumers_lock(&cs), 0);

	assert_int_equal(consumer_commit(&cs, "c", NULL, JID_A, 1, &st), CONSUMER_RUN_NO_CONSUMER);
	assert_int_equal(consumer_abort(&cs, "c", NULL, &st), CONSUMER_RUN_NO_CONSUMER);
	memset(&b, 0, sizeof b);
	b.journal_id = JID_A;
	b.last_seq = 10;
	b.now = 1000;
	assert_int_equal(consumer_begin(&cs, "c", &b, &st), CONSUMER_RUN_OK);
	assert_int_equal(strlen(st.open_run_id), 16);
	assert_int_equal(strspn(st.open_run_id, "0123456789abcdef"), 16);
	memcpy(id1, st.open_run_id, sizeof id1);
	/* saved: a load finds the run, its id and its commit point */
	assert_int_equal(consumer_load(&cs, "c", &st), 0);
	assert_string_equal(st.open_run_id, id1);
	assert_string_equal(st.floor_journal_id, JID_A);
	assert_int_equal(st.floor_seq, 10);
	assert_int_equal(consumer_begin(&cs, "c", &b, &st), CONSUMER_RUN_BUSY);
	assert_string_equal(st.open_run_id, id1);
	b.replace = 1;
	b.last_seq = 12;
	assert_int_equal(consumer_begin(&cs, "c", &b, &st), CONSUMER_RUN_OK);
	assert_string_equal(b.replaced_run_id, id1);
	assert_string_not_equal(st.open_run_id, id1);
	assert_int_equal(consumer_commit(&cs, "c", id1, JID_A, 1100, &st), CONSUMER_RUN_OTHER);
	assert_int_equal(consumer_abort(&cs, "c", id1, &st), CONSUMER_RUN_OTHER);
	assert_int_equal(consumer_load(&cs, "c", &st), 0);
	assert_int_equal(st.open_seq, 12);
	assert_int_equal(consumer_commit(&cs, "c", NULL, JID_A, 1100, &st), CONSUMER_RUN_OK);
	assert_int_equal(consumer_load(&cs, "c", &st), 0);
	assert_int_equal(st.has_open, 0);
	assert_int_equal(st.committed_seq, 10);
	assert_string_equal(st.open_run_id, "");
	assert_int_equal(consumer_abort(&cs, "c", NULL, &st), CONSUMER_RUN_NONE);

	/* a corrupt run id is a corrupt cursor */
	consumers_close(&cs);
	{
		char *p = path_join(dir, "bad");
		FILE *f = fopen(p, "w");

		assert_non_null(f);
		fputs("has_open=1\nopen_run_id=XYZ\n", f);
		fclose(f);
		free(p);
	}
	assert_int_equal(consumers_open(&cs, dir, 0), 0);
	assert_int_equal(consumer_load(&cs, "bad", &st), -1);
	assert_non_null(strstr(cs.err.msg, "corrupt"));
	assert_int_equal(cs.err.code, CHJ_ERR_CORRUPT);
	consumers_close(&cs);
	unit_rmtree(tmpl);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_commit_abort),
		cmocka_unit_test(test_replace_keeps_commit_point),
		cmocka_unit_test(test_replace_across_journals),
		cmocka_unit_test(test_legacy_run),
		cmocka_unit_test(test_two_runners_every_interleaving),
		cmocka_unit_test(test_on_cursor_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
