/* cmd-backup.c: `chjournal backup`: opens a run of the consumer (taking over
 * one a backup that died left open), has the library append a run to the
 * archive of every Cyrus user the run's window marks as changed
 * (common/cyrus/backup.h), prints what it says, and commits the consumer
 * only when every archive is safe. */
#include <stdio.h>
#include <stdlib.h>
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
    struct cyrus_users *only)
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
			if (v != NULL && cyrus_users_add(only, v) < 0)
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

int
cmd_backup(struct agent *a, int argc, char **argv)
{
	struct cyrus_backup_opts opts;
	struct cyrus_backup *b = NULL;
	const struct cyrus_backup_stats *stats;
	struct backup_ui ui;
	struct consumer_state st;
	struct consumer_begin cb;
	struct cyrus_users users = { 0 }, only = { 0 };
	struct chj_error e;
	const char *consumer = BACKUP_DEFAULT_CONSUMER, *why = NULL;
	char run_id[CONSUMER_RUN_ID_SIZE] = "";
	int64_t seq = 0;
	int rc = EXIT_ERROR, pr, began = 0, failed;

	memset(&opts, 0, sizeof opts);
	memset(&ui, 0, sizeof ui);
	opts.imapd_conf = BACKUP_DEFAULT_IMAPD_CONF;
	opts.cb = on_event;
	opts.ctx = &ui;
	pr = parse_args(argc, argv, &opts.imapd_conf, &opts.to, &consumer, &only);
	if (pr != 0)
		goto out;
	if (cyrus_backup_open(&b, &opts, &a->cfg, &e) < 0) {
		agent_error("%s", e.msg);
		goto out;
	}
	if (only.n > 0) {
		/* named users: each checked whole (pass one still skips what is
		 * archived); the consumer is neither begun nor committed */
		users = only;
		memset(&only, 0, sizeof only);
	} else {
		/* an open run is a backup that died (or runs still): take it
		 * over, which keeps its commit point; its own commit, if it
		 * comes, is refused by our run id */
		memset(&cb, 0, sizeof cb);
		cb.replace = 1;
		if (agent_run_begin(a, consumer, a->cfg.sync_timeout, &cb, &st) < 0)
			goto out;
		why = cb.full_reason;
		snprintf(run_id, sizeof run_id, "%s", consumer_run_id(&st));
		began = 1;
		seq = st.open_seq;
		if ((st.open_full ? cyrus_backup_all_users(b, &users) :
		    cyrus_backup_window_users(b, a->journal, &a->cfg, st.open_after_seq, &users)) < 0) {
			agent_error("%s", cyrus_backup_error(b)->msg);
			goto out;
		}
	}
	cyrus_users_sort_unique(&users);
	ui.show_progress = isatty(STDERR_FILENO);
	progress_start(&ui.progress, "backup", "users", users.n);
	failed = cyrus_backup_users(b, &users, seq);
	if (failed < 0) {
		agent_error("%s", cyrus_backup_error(b)->msg);
		goto out;
	}
	show_progress(&ui, 1);
	stats = cyrus_backup_stats(b);
	printf("backup: %lu users checked, %lu runs written, %lu folders changed, %lu messages "
	    "(%llu bytes) added, %lu users failed%s%s\n", stats->users, stats->runs,
	    stats->folders_changed, stats->messages, (unsigned long long)stats->bytes,
	    stats->users_failed, why ? "; full run: " : "", why ? why : "");
	if (failed > 0) {
		if (began)
			agent_warn("consumer '%s' not committed: its window will be backed up again", consumer);
		goto out;
	}
	/* every archive was fsynced by its run's commit: now the window may move */
	if (began && agent_run_commit(a, consumer, run_id) < 0) {
		began = 0;
		goto out;
	}
	began = 0;
	rc = EXIT_OK;
out:
	/* a run not committed is dropped: the next backup takes its window */
	if (began)
		agent_run_abort(a, consumer, run_id);
	cyrus_backup_free(b);
	cyrus_users_free(&users);
	cyrus_users_free(&only);
	return pr != 0 ? pr : rc;
}
