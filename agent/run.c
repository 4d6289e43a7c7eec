/* run.c: a consumer's run from the command line: `begin`, `commit`, `abort`
 * and the check `list` makes, on the protocol of common/consumer-run.c, with
 * the messages that say what to do. Shared by the commands that run a whole
 * backup themselves (`backup`). */
#include <string.h>
#include <time.h>

#include "agent.h"

int
agent_run_refused(const char *name, const struct consumer_state *st, int code,
    const char *run_id, enum agent_run_op op)
{
	static const char *to[] = { "", "", " to commit", " to abort" };
	static const char *ed[] = { "begun", "listed", "committed", "aborted" };
	char t[32];

	agent_time_str(st->open_time, t, sizeof t);
	switch (code) {
	case CONSUMER_RUN_NO_CONSUMER:
	case CONSUMER_RUN_NONE:
		if (run_id != NULL)
			return agent_error("consumer '%s' has no open run%s: run '%s' is not open (it was "
			    "committed or aborted)", name, to[op], run_id);
		return agent_error("consumer '%s' has no open run%s (run `chjournal begin %s` first)",
		    name, to[op], name);
	case CONSUMER_RUN_BUSY:
		return agent_error("consumer '%s' has an open run '%s' begun %s: commit or abort it "
		    "(`chjournal commit|abort %s --run %s`), or take it over with `chjournal begin %s "
		    "--replace`", name, consumer_run_id(st), t, name, consumer_run_id(st), name);
	case CONSUMER_RUN_OTHER:
		return agent_error("consumer '%s': run '%s' is not the open run '%s' (begun %s): not %s",
		    name, run_id, consumer_run_id(st), t, ed[op]);
	case CONSUMER_RUN_JOURNAL:
		return agent_error("consumer '%s': the journal was recreated since its begin (run '%s'): "
		    "the run cannot be %s; run begin again", name, consumer_run_id(st), ed[op]);
	}
	return agent_error("consumer '%s': unexpected run state %d", name, code);
}

/* The files open for writing, found while the sync cookies are out. */
struct open_writers {
	struct agent *a;
	struct openfiles of;
	int found;
};

static int
find_open_writers(void *ctx)
{
	struct open_writers *ow = ctx;

	ow->found = 1;
	return agent_find_open_writers(ow->a, &ow->of);
}

/* A run's begin point: a seq every change before the begin is at or below,
 * and every row up to which is durable, since a consumer's cursor names it
 * (rows lost to a power loss would have their seqs given again, to rows
 * the cursor has passed). The last cookie's seq, journaled by a synced
 * commit; without one (no root took a cookie) the journal's last seq,
 * made durable by a synced commit of this connection after it is read: the daemon's early
 * flushes are not synced (daemon/flush.c), and a synced commit syncs the
 * WAL with every frame before it. Returns 0, or -1 (printed). */
static int
begin_point(struct agent *a, int64_t cookie_seq, int64_t *seq)
{
	if (cookie_seq >= 0) {
		*seq = cookie_seq;
		return 0;
	}
	if (journal_last_seq(a->journal, seq) < 0 ||
	    journal_meta_set_int(a->journal, "last_begin", (int64_t)time(NULL)) < 0)
		return agent_error("%s", journal_errmsg(a->journal)), -1;
	return 0;
}

int
agent_run_begin(struct agent *a, const char *name, unsigned timeout, struct consumer_begin *b,
    struct consumer_state *st)
{
	struct consumers cs;
	struct open_writers ow;
	int64_t last_seq, cookie_seq = -1;
	int rc = -1, synced, code;

	memset(&ow, 0, sizeof ow);
	ow.a = a;
	if (agent_open_consumers(a, &cs, name, 1) < 0)
		return -1;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.err.msg);
		goto done;
	}
	/* refuse before the sync, which may wait: the lock keeps the answer */
	if (consumer_load(&cs, name, st) < 0) {
		agent_error("%s", cs.err.msg);
		goto done;
	}
	if (st->has_open && !b->replace) {
		agent_run_refused(name, st, CONSUMER_RUN_BUSY, NULL, AGENT_RUN_BEGIN);
		goto done;
	}
	/* the files open for writing are looked for while the daemon
	 * journals the cookies (agent/open-writers.c says why after them) */
	synced = agent_sync_with(a, timeout, &cookie_seq, find_open_writers, &ow);
	if (synced < 0)
		goto done;
	if (!ow.found && agent_find_open_writers(a, &ow.of) < 0)
		goto done;
	ow.found = 1;
	if (synced == 1 && agent_cover_daemon_gap(a) < 0)
		goto done;
	if (begin_point(a, synced == 0 ? cookie_seq : -1, &last_seq) < 0)
		goto done;
	/* this run cannot list a missing root, and its commit moves past the
	 * root's changes: the first run after it is back lists all of it (the
	 * record comes after last_seq, this run's begin point) */
	if (agent_missing_roots(a, "no sync cookie for it, and none of its files are in this run; "
	    "the first run after it is back lists all of it", last_seq) < 0)
		goto done;
	/* the files open for writing, journaled after the begin point just
	 * fixed (last_seq), before the run is saved: a run is never opened
	 * without them (agent/open-writers.c) */
	if (agent_journal_open_writers(a, &cs, &ow.of) < 0)
		goto done;
	b->journal_id = journal_id(a->journal);
	b->last_seq = last_seq;
	b->now = (int64_t)time(NULL);
	code = consumer_begin(&cs, name, b, st);
	if (code < 0) {
		agent_error("%s", cs.err.msg);
		goto done;
	}
	if (code != CONSUMER_RUN_OK) {
		agent_run_refused(name, st, code, NULL, AGENT_RUN_BEGIN);
		goto done;
	}
	if (b->replaced) {
		char t[32];
		const char *cj;
		int64_t cseq;

		consumer_commit_point(st, &cj, &cseq, NULL);
		agent_warn("consumer '%s': run '%s' takes over run '%s' (begun %s); it commits that "
		    "run's begin point (seq %lld): the changes since are listed again next time",
		    name, consumer_run_id(st), b->replaced_run_id,
		    agent_time_str(b->replaced_time, t, sizeof t), (long long)cseq);
	}
	rc = 0;
done:
	openfiles_free(&ow.of);
	consumers_close(&cs);
	return rc;
}

/* Commits (commit) or aborts name's open run, or only run_id's. */
static int
run_end(struct agent *a, const char *name, const char *run_id, int commit)
{
	struct consumers cs;
	struct consumer_state st;
	int rc = -1, code;

	if (agent_open_consumers(a, &cs, name, 0) < 0)
		return -1;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.err.msg);
		goto done;
	}
	if (commit)
		code = consumer_commit(&cs, name, run_id, journal_id(a->journal), (int64_t)time(NULL), &st);
	else
		code = consumer_abort(&cs, name, run_id, &st);
	if (code < 0) {
		agent_error("%s", cs.err.msg);
		goto done;
	}
	if (!commit && code == CONSUMER_RUN_NO_CONSUMER) {
		agent_error("no consumer '%s'", name);
		goto done;
	}
	if (!commit && code == CONSUMER_RUN_NONE && run_id == NULL) {
		agent_warn("consumer '%s' has no open run: nothing to abort", name);
		rc = 0;
		goto done;
	}
	if (code != CONSUMER_RUN_OK) {
		agent_run_refused(name, &st, code, run_id, commit ? AGENT_RUN_COMMIT : AGENT_RUN_ABORT);
		goto done;
	}
	rc = 0;
done:
	consumers_close(&cs);
	return rc;
}

int
agent_run_commit(struct agent *a, const char *name, const char *run_id)
{
	return run_end(a, name, run_id, 1);
}

int
agent_run_abort(struct agent *a, const char *name, const char *run_id)
{
	return run_end(a, name, run_id, 0);
}

/* ---- the journal side of a local source (source.h) ---- */

/* What the lines of one runner call become: the first error, the notes. */
struct capture {
	struct chj_error *e;
	source_note_fn note;
	void *note_ctx;
	agent_sink_fn old_fn;       /* the sink before: a note goes out through it */
	void *old_ctx;
};

static void
capture_line(void *ctx, int error, const char *line)
{
	struct capture *c = ctx;

	if (error) {
		if (c->e->code == CHJ_OK)
			chj_error_set(c->e, CHJ_ERR_REFUSED, 0, "%s", line);
	} else if (c->note != NULL) {
		/* the note may well print through agent_warn: not back into c */
		agent_set_sink(c->old_fn, c->old_ctx, NULL, NULL);
		c->note(c->note_ctx, line);
		agent_set_sink(capture_line, c, NULL, NULL);
	}
}

/* Sends agent_error and agent_warn into c until capture_end. */
static void
capture_begin(struct capture *c, struct chj_error *e, source_note_fn note, void *note_ctx,
    agent_sink_fn *old_fn, void **old_ctx)
{
	chj_error_clear(e);
	c->e = e;
	c->note = note;
	c->note_ctx = note_ctx;
	agent_set_sink(capture_line, c, old_fn, old_ctx);
	c->old_fn = *old_fn;
	c->old_ctx = *old_ctx;
}

static int
capture_end(struct capture *c, int rc, const char *what, agent_sink_fn old_fn, void *old_ctx)
{
	agent_set_sink(old_fn, old_ctx, NULL, NULL);
	if (rc != 0 && c->e->code == CHJ_OK)
		chj_error_set(c->e, CHJ_ERR_REFUSED, 0, "%s failed", what);
	return rc != 0 ? -1 : 0;
}

static int
runner_begin(void *ctx, const char *consumer, int replace, struct consumer_state *st,
    const char **full_reason, source_note_fn note, void *note_ctx, struct chj_error *e)
{
	struct agent *a = ctx;
	struct consumer_begin b;
	struct capture c;
	agent_sink_fn old_fn;
	void *old_ctx;
	int rc;

	memset(&b, 0, sizeof b);
	b.replace = replace;
	capture_begin(&c, e, note, note_ctx, &old_fn, &old_ctx);
	rc = agent_run_begin(a, consumer, a->cfg.sync_timeout, &b, st);
	*full_reason = b.full_reason;
	return capture_end(&c, rc, "begin", old_fn, old_ctx);
}

static int
runner_end(void *ctx, const char *consumer, const char *run_id, int commit, source_note_fn note,
    void *note_ctx, struct chj_error *e)
{
	struct agent *a = ctx;
	struct capture c;
	agent_sink_fn old_fn;
	void *old_ctx;
	int rc;

	capture_begin(&c, e, note, note_ctx, &old_fn, &old_ctx);
	rc = commit ? agent_run_commit(a, consumer, run_id) : agent_run_abort(a, consumer, run_id);
	return capture_end(&c, rc, commit ? "commit" : "abort", old_fn, old_ctx);
}

static int
runner_list(void *ctx, const char *consumer, const char *run_id, enum source_list_what what,
    FILE *out, source_note_fn note, void *note_ctx, struct chj_error *e)
{
	struct agent *a = ctx;
	struct capture c;
	agent_sink_fn old_fn;
	void *old_ctx;
	int rc;

	capture_begin(&c, e, note, note_ctx, &old_fn, &old_ctx);
	rc = agent_list(a, consumer, run_id, what, 1, out);
	return capture_end(&c, rc, "list", old_fn, old_ctx);
}

void
agent_runner(struct agent *a, struct source_runner *r)
{
	r->begin = runner_begin;
	r->end = runner_end;
	r->list = runner_list;
	r->ctx = a;
}

int
agent_end_run(struct agent *a, const char *cmd, const struct cmdline *args, int commit)
{
	const char *name = args->operands[0], *run_id = NULL;
	struct agent_remote rm;
	int rc;

	if (agent_arg_run(cmd, args, &run_id) < 0)
		return EXIT_USAGE;
	if (!cmdline_has(args, "--from")) {
		rc = commit ? agent_run_commit(a, name, run_id) : agent_run_abort(a, name, run_id);
		return rc == 0 ? EXIT_OK : EXIT_ERROR;
	}
	rc = agent_remote_open(&rm, cmdline_value(args, "--from"), cmdline_value(args, "--ssh"), 0);
	if (rc != EXIT_OK)
		return rc;
	if (source_end(rm.src, name, run_id, commit) < 0)
		rc = agent_error("%s", rm.src->err.msg);
	return agent_remote_close(&rm, rc);
}
