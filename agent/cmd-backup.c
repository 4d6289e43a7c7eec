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
	case CYRUS_BACKUP_BEGUN:
		progress_start(&ui->progress, "backup", "users", ev->users);
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

/* The source's own lines (a path no user can be found for, a run taken over). */
static void
on_note(void *ctx, const char *line)
{
	(void)ctx;
	agent_warn("%s", line);
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

int
cmd_backup(struct agent *a, int argc, char **argv)
{
	struct source_local_opts lo;
	struct source_runner runner;
	struct cyrus_backup_opts opts;
	struct cyrus_backup_result res;
	struct source *src = NULL;
	struct cyrus_backup *b = NULL;
	const struct cyrus_backup_stats *stats;
	struct backup_ui ui;
	struct strvec users = { 0 };
	struct chj_error e;
	const char *consumer = BACKUP_DEFAULT_CONSUMER;
	int rc = EXIT_ERROR, pr, failed;

	memset(&lo, 0, sizeof lo);
	memset(&opts, 0, sizeof opts);
	memset(&ui, 0, sizeof ui);
	memset(&res, 0, sizeof res);
	lo.imapd_conf = BACKUP_DEFAULT_IMAPD_CONF;
	/* named users (--user): each checked whole (pass one still skips what
	 * is archived); the consumer is neither begun nor committed */
	pr = parse_args(argc, argv, &lo.imapd_conf, &opts.to, &consumer, &users);
	if (pr != 0)
		goto out;
	agent_runner(a, &runner);
	lo.cfg = &a->cfg;
	lo.journal = a->journal;
	lo.runner = &runner;
	if (source_local_open(&src, &lo, &e) < 0) {
		agent_error("%s", e.msg);
		goto out;
	}
	src->note = on_note;
	opts.source = src;
	opts.cb = on_event;
	opts.ctx = &ui;
	if (cyrus_backup_open(&b, &opts, &e) < 0) {
		agent_error("%s", e.msg);
		goto out;
	}
	ui.show_progress = isatty(STDERR_FILENO);
	if (users.n > 0) {
		strvec_sort_unique(&users);
		progress_start(&ui.progress, "backup", "users", users.n);
		failed = cyrus_backup_users(b, &users, 0);
		if (failed < 0) {
			agent_error("%s", cyrus_backup_error(b)->msg);
			goto out;
		}
	} else if (cyrus_backup_window(b, consumer, 0, &res) < 0 && res.run_id[0] == '\0') {
		agent_error("%s", cyrus_backup_error(b)->msg);
		goto out;
	}
	show_progress(&ui, 1);
	stats = cyrus_backup_stats(b);
	printf("backup: %lu users checked, %lu runs written, %lu folders changed, %lu messages "
	    "(%llu bytes) added, %lu users failed%s%s\n", stats->users, stats->runs,
	    stats->folders_changed, stats->messages, (unsigned long long)stats->bytes,
	    stats->users_failed, res.full_reason[0] ? "; full run: " : "", res.full_reason);
	if (users.n > 0) {
		rc = stats->users_failed > 0 ? EXIT_ERROR : EXIT_OK;
		goto out;
	}
	if (!res.committed) {
		if (res.failed_users > 0)
			agent_warn("consumer '%s' not committed: its window will be backed up again",
			    consumer);
		else
			agent_error("%s", cyrus_backup_error(b)->msg);
		goto out;
	}
	rc = EXIT_OK;
out:
	cyrus_backup_free(b);
	source_free(src);
	strvec_free(&users);
	return pr != 0 ? pr : rc;
}
