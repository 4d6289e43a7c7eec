/* cmd-backup.c: `chjournal backup`: opens a run of the consumer (taking over
 * one a backup that died left open), has the library append a run to the
 * archive of every Cyrus user the run's window marks as changed
 * (common/cyrus/backup.h), prints what it says, and commits the consumer
 * only when every archive is safe. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cyrus/backup.h"
#include "progress.h"

#define BACKUP_DEFAULT_CONSUMER "cyrus-archive"
#define BACKUP_DEFAULT_IMAPD_CONF "/etc/imapd.conf"

/* What the library tells, shown on stderr; the progress line on a terminal. */
struct backup_ui {
	int show_progress;
	struct progress progress;
};

static void
show_progress(struct backup_ui *ui, int final)
{
	char line[256];

	if (!ui->show_progress)
		return;
	if (progress_format(&ui->progress, final, line, sizeof line))
		fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
}

static void
on_event(void *ctx, const struct cyrus_backup_event *ev)
{
	struct backup_ui *ui = ctx;

	switch (ev->kind) {
	case CYRUS_BACKUP_PATH_SKIPPED:
		agent_warn("'%s': %s (the path is not archived)", ev->path, ev->error->msg);
		break;
	case CYRUS_BACKUP_TAIL_CUT:
		agent_warn("archive '%s': a torn tail of %lld bytes (an interrupted run) was cut off",
		    ev->path, (long long)ev->bytes_cut);
		break;
	case CYRUS_BACKUP_USER_FAILED:
		agent_error("backup of user '%s' failed, its archive keeps its last complete run: %s",
		    ev->user, ev->error->msg);
		/* FALLTHROUGH */
	case CYRUS_BACKUP_USER_DONE:
		ui->progress.done++;
		ui->progress.bytes = ev->stats->bytes;
		show_progress(ui, 0);
		break;
	}
}

/* Reads the options; 0, or the exit status of a usage error (printed). */
static int
parse_args(int argc, char **argv, const char **imapd, const char **to, const char **consumer,
    struct strvec *only)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *v = NULL, *opt = argv[i];

		if (agent_opt_value(argc, argv, &i, "-C", &v) || agent_opt_value(argc, argv, &i, "--config", &v))
			*imapd = v;
		else if (agent_opt_value(argc, argv, &i, "--to", &v))
			*to = v;
		else if (agent_opt_value(argc, argv, &i, "--consumer", &v))
			*consumer = v;
		else if (agent_opt_value(argc, argv, &i, "--user", &v)) {
			if (v != NULL && strvec_add(only, v) < 0)
				return agent_error("out of memory");
		} else
			return agent_usage_error("backup", "unexpected argument '%s'", argv[i]);
		if (v == NULL)
			return agent_usage_error("backup", "%s needs a value", opt);
	}
	if (*to == NULL)
		return agent_usage_error("backup", "--to DIR is required");
	return 0;
}

/* The consumer's run whose window is backed up. */
struct window {
	const char *consumer;
	char run_id[CONSUMER_RUN_ID_SIZE];
	const char *why;            /* a full run: why */
	int64_t seq;                /* the journal seq it ends at */
	int began;
};

/* Opens the consumer's run and lists the users its window changed. An open
 * run is a backup that died (or runs still): it is taken over, which keeps
 * its commit point; its own commit, if it comes, is refused by our run id.
 * Returns 0, or -1 (printed). */
static int
window_users(struct agent *a, struct cyrus_backup *b, struct window *w, struct strvec *users)
{
	struct consumer_begin cb;
	struct consumer_state st;

	memset(&cb, 0, sizeof cb);
	cb.replace = 1;
	if (agent_run_begin(a, w->consumer, a->cfg.sync_timeout, &cb, &st) < 0)
		return -1;
	w->why = cb.full_reason;
	snprintf(w->run_id, sizeof w->run_id, "%s", consumer_run_id(&st));
	w->began = 1;
	w->seq = st.open_seq;
	if ((st.open_full ? cyrus_backup_all_users(b, users) :
	    cyrus_backup_window_users(b, a->journal, &a->cfg, st.open_after_seq, users)) < 0) {
		agent_error("%s", cyrus_backup_error(b)->msg);
		return -1;
	}
	return 0;
}

int
cmd_backup(struct agent *a, int argc, char **argv)
{
	struct cyrus_backup_opts opts;
	struct cyrus_backup *b = NULL;
	const struct cyrus_backup_stats *stats;
	struct backup_ui ui;
	struct window w;
	struct strvec users = { 0 };
	struct chj_error e;
	int rc = EXIT_ERROR, pr, failed;

	memset(&opts, 0, sizeof opts);
	memset(&ui, 0, sizeof ui);
	memset(&w, 0, sizeof w);
	opts.imapd_conf = BACKUP_DEFAULT_IMAPD_CONF;
	opts.cb = on_event;
	opts.ctx = &ui;
	w.consumer = BACKUP_DEFAULT_CONSUMER;
	/* named users (--user): each checked whole (pass one still skips what
	 * is archived); the consumer is neither begun nor committed */
	pr = parse_args(argc, argv, &opts.imapd_conf, &opts.to, &w.consumer, &users);
	if (pr != 0)
		goto out;
	if (cyrus_backup_open(&b, &opts, &a->cfg, &e) < 0) {
		agent_error("%s", e.msg);
		goto out;
	}
	if (users.n == 0 && window_users(a, b, &w, &users) < 0)
		goto out;
	strvec_sort_unique(&users);
	ui.show_progress = isatty(STDERR_FILENO);
	progress_start(&ui.progress, "backup", "users", users.n);
	failed = cyrus_backup_users(b, &users, w.seq);
	if (failed < 0) {
		agent_error("%s", cyrus_backup_error(b)->msg);
		goto out;
	}
	show_progress(&ui, 1);
	stats = cyrus_backup_stats(b);
	printf("backup: %lu users checked, %lu runs written, %lu folders changed, %lu messages "
	    "(%llu bytes) added, %lu users failed%s%s\n", stats->users, stats->runs,
	    stats->folders_changed, stats->messages, (unsigned long long)stats->bytes,
	    stats->users_failed, w.why ? "; full run: " : "", w.why ? w.why : "");
	if (failed > 0) {
		if (w.began)
			agent_warn("consumer '%s' not committed: its window will be backed up again",
			    w.consumer);
		goto out;
	}
	/* every archive was fsynced by its run's commit: now the window may move */
	if (w.began && agent_run_commit(a, w.consumer, w.run_id) < 0) {
		w.began = 0;
		goto out;
	}
	w.began = 0;
	rc = EXIT_OK;
out:
	/* a run not committed is dropped: the next backup takes its window */
	if (w.began)
		agent_run_abort(a, w.consumer, w.run_id);
	cyrus_backup_free(b);
	strvec_free(&users);
	return pr != 0 ? pr : rc;
}
