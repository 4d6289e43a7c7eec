/* cmd-backup.c: `chjournal backup`: opens a run of the consumer (taking over
 * one a backup that died left open), has the library append a run to the
 * archive of every Cyrus user the run's window marks as changed
 * (common/cyrus/backup.h), prints what it says, and commits the consumer
 * only when every archive is safe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cyrus/backup.h"
#include "path.h"
#include "progress.h"
#include "proto.h"
#include "pullmetrics.h"

#define BACKUP_JOBS_MAX 64

/* What the library tells, shown on stderr; the progress line on a terminal. */
struct backup_ui {
	const char *host;           /* --from: the host, named in each line */
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
		/* a host gone: its one line says so, not each user's */
		if (ui->host != NULL && ev->error->code == CHJ_ERR_PEER)
			goto done;
		agent_error("%s%s%sbackup of user '%s' failed, its archive keeps its last complete "
		    "run: %s", ui->host ? "host '" : "", ui->host ? ui->host : "", ui->host ? "': " : "",
		    ev->user, ev->error->msg);
		/* FALLTHROUGH */
	case CYRUS_BACKUP_USER_DONE:
	done:
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

struct backup_args {
	const char *imapd, *to, *consumer;
	struct strvec only;         /* --user */
	struct strvec from;         /* --from [USER@]HOST[:PORT] */
	const char *ssh;            /* --ssh CMD */
	unsigned long jobs;         /* -j N */
	int timeout_s;              /* --timeout: a host that says nothing this long hangs */
};

/* Reads the options (cmdline checked the rest); 0, or the exit status of a
 * usage error (printed). */
static int
parse_args(const struct cmdline *cl, struct backup_args *o)
{
	const char *const *v;
	const char *j = cmdline_value(cl, "-j");
	size_t n, i;

	if (cmdline_value(cl, "-C") != NULL)
		o->imapd = cmdline_value(cl, "-C");
	o->to = cmdline_value(cl, "--to");
	if (cmdline_value(cl, "--consumer") != NULL)
		o->consumer = cmdline_value(cl, "--consumer");
	o->ssh = cmdline_value(cl, "--ssh");
	{
		unsigned t = 0;

		if (agent_arg_timeout("backup", cl, &t) < 0)
			return EXIT_USAGE;
		o->timeout_s = (int)t;
	}
	if (j != NULL) {
		char *end;

		o->jobs = strtoul(j, &end, 10);
		if (*end != '\0' || end == j || o->jobs == 0 || o->jobs > BACKUP_JOBS_MAX)
			return agent_usage_error("backup", "bad -j '%s': 1 to %d", j, BACKUP_JOBS_MAX);
	}
	v = cmdline_values(cl, "--from", &n);
	for (i = 0; i < n; i++)
		if (strvec_add(&o->from, v[i]) < 0)
			return agent_error("out of memory");
	v = cmdline_values(cl, "--user", &n);
	for (i = 0; i < n; i++)
		if (strvec_add(&o->only, v[i]) < 0)
			return agent_error("out of memory");
	if (o->from.n > 0 && o->only.n > 0)
		return agent_usage_error("backup", "--user and --from do not go together");
	return 0;
}

/* Prints the totals of a run ("backup" or "backup HOST"). */
static void
print_totals(struct cyrus_backup *b, const char *host, const struct cyrus_backup_result *res)
{
	const struct cyrus_backup_stats *stats = cyrus_backup_stats(b);

	printf("backup%s%s: %lu users checked, %lu runs written, %lu folders changed, %lu messages "
	    "(%llu bytes) added, %lu folders touched but unchanged, %lu users failed%s%s\n",
	    host ? " " : "", host ? host : "",
	    stats->users, stats->runs, stats->folders_changed, stats->messages,
	    (unsigned long long)stats->bytes, stats->folders_same, stats->users_failed,
	    res->full_reason[0] ? "; full run: " : "", res->full_reason);
}

/* ---- --from: the pull of a host through ssh ---- */

/* Backs up host spec into DIR/HOST: EXIT_OK, or EXIT_ERROR with one line
 * naming the host (and a failed user in its own line, unless the host was
 * gone). */
/* What one host's pull did, for its metrics. */
struct pull_result {
	char name[256];             /* HOST; "" when the spec was malformed */
	struct cyrus_backup_stats stats;
	uint64_t bytes_in;          /* received from serve */
};

static int
pull_host(const struct backup_args *o, const char *spec, struct pull_result *pr)
{
	struct cyrus_backup_opts opts;
	struct cyrus_backup_result res;
	struct cyrus_backup *b = NULL;
	struct agent_remote r;
	struct backup_ui ui;
	struct chj_error e;
	char *to = NULL, why[1024];
	int rc;

	memset(&res, 0, sizeof res);
	memset(&ui, 0, sizeof ui);
	rc = agent_remote_open(&r, spec, o->ssh, o->timeout_s);
	snprintf(pr->name, sizeof pr->name, "%s", r.name);
	if (rc != EXIT_OK)
		return rc;
	rc = EXIT_ERROR;
	ui.host = r.name;
	r.src->note = on_note;
	if ((to = path_join(o->to, r.name)) == NULL) {
		agent_error("out of memory");
		goto out;
	}
	memset(&opts, 0, sizeof opts);
	opts.source = r.src;
	opts.to = to;
	opts.host = r.name;
	opts.cb = on_event;
	opts.ctx = &ui;
	if (cyrus_backup_open(&b, &opts, &e) < 0) {
		agent_error("host '%s': %s", r.name, e.msg);
		goto out;
	}
	if (cyrus_backup_window(b, o->consumer, SOURCE_BEGIN_IDLE_COMMIT | SOURCE_BEGIN_SESSION,
	    &res) < 0 && res.run_id[0] == '\0') {
		agent_remote_why(&r, why, sizeof why);
		agent_error("host '%s': %s%s", r.name, cyrus_backup_error(b)->msg, why);
		goto out;
	}
	print_totals(b, r.name, &res);
	if (!res.committed) {
		agent_remote_why(&r, why, sizeof why);
		agent_error("host '%s': consumer '%s' not committed, its window will be backed up "
		    "again: %s%s", r.name, o->consumer, cyrus_backup_error(b)->msg, why);
		goto out;
	}
	rc = EXIT_OK;
out:
	if (b != NULL)
		pr->stats = *cyrus_backup_stats(b);
	pr->bytes_in = r.src->bytes_in;
	cyrus_backup_free(b);
	free(to);
	return agent_remote_close(&r, rc);
}

/* Writes DIR/HOST.prom (common/pullmetrics.h) for one pull: when, how
 * long, success, bytes received, what was written, and the time of the
 * last success (kept from the file when this pull failed). A failure to
 * write is a warning: the pull itself is what counts. */
static void
write_metrics(const struct backup_args *o, const struct pull_result *pr, int ok, double t0,
    double t1)
{
	struct pull_metrics m;
	struct chj_error e;

	memset(&m, 0, sizeof m);
	snprintf(m.host, sizeof m.host, "%s", pr->name);
	m.last_run = t1;
	m.last_success = t1;
	m.success = ok;
	m.duration = t1 - t0;
	m.received_bytes = pr->bytes_in;
	m.runs_written = pr->stats.runs;
	m.users_failed = pr->stats.users_failed;
	if (pull_metrics_write(o->to, &m, &e) < 0)
		agent_warn("host '%s': %s", pr->name, e.msg);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Pulls one host and records its metrics in DIR/HOST.prom. */
static int
backup_host(const struct backup_args *o, const char *spec)
{
	struct pull_result pr;
	double t0 = now_seconds();
	int rc;

	memset(&pr, 0, sizeof pr);
	rc = pull_host(o, spec, &pr);
	if (pr.name[0] != '\0')
		write_metrics(o, &pr, rc == EXIT_OK, t0, now_seconds());
	return rc;
}

/* Every --from host, up to o->jobs at a time (each in a process of its
 * own). EXIT_OK when every host succeeded. */
static int
backup_hosts(const struct backup_args *o)
{
	pid_t pids[BACKUP_JOBS_MAX];
	size_t next = 0, running = 0, i;
	unsigned long jobs = o->jobs ? o->jobs : 1;
	int rc = EXIT_OK;

	if (mkdir(o->to, 0700) < 0 && errno != EEXIST)
		return agent_error("cannot create '%s': %s", o->to, strerror(errno));
	if (o->from.n == 1 || jobs == 1) {
		for (i = 0; i < o->from.n; i++)
			if (backup_host(o, o->from.v[i]) != EXIT_OK)
				rc = EXIT_ERROR;
		return rc;
	}
	while (next < o->from.n || running > 0) {
		int status;
		pid_t p;

		if (next < o->from.n && running < jobs) {
			fflush(NULL);
			p = fork();
			if (p == 0) {
				int r = backup_host(o, o->from.v[next]);

				fflush(NULL);
				_exit(r == EXIT_OK ? 0 : 1);
			}
			if (p < 0) {
				agent_error("host '%s': cannot fork: %s", o->from.v[next], strerror(errno));
				rc = EXIT_ERROR;
			} else {
				pids[running++] = p;
			}
			next++;
			continue;
		}
		p = waitpid(-1, &status, 0);
		if (p < 0)
			break;
		for (i = 0; i < running; i++) {
			if (pids[i] != p)
				continue;
			pids[i] = pids[--running];
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				rc = EXIT_ERROR;
			break;
		}
	}
	return rc;
}

/* ---- the local backup ---- */

int
cmd_backup(struct agent *a, const struct cmdline *cl)
{
	struct source_local_opts lo;
	struct source_runner runner;
	struct cyrus_backup_opts opts;
	struct cyrus_backup_result res;
	struct backup_args args;
	struct source *src = NULL;
	struct cyrus_backup *b = NULL;
	const struct cyrus_backup_stats *stats;
	struct backup_ui ui;
	struct chj_error e;
	int rc = EXIT_ERROR, pr, failed;

	memset(&lo, 0, sizeof lo);
	memset(&opts, 0, sizeof opts);
	memset(&ui, 0, sizeof ui);
	memset(&res, 0, sizeof res);
	memset(&args, 0, sizeof args);
	args.imapd = BACKUP_DEFAULT_IMAPD_CONF;
	args.consumer = BACKUP_DEFAULT_CONSUMER;
	/* named users (--user): each checked whole (pass one still skips what
	 * is archived); the consumer is neither begun nor committed */
	pr = parse_args(cl, &args);
	if (pr != 0)
		goto out;
	if (args.from.n > 0) {
		rc = backup_hosts(&args);
		goto out;
	}
	if (a->journal == NULL) {
		rc = agent_error("backup: no journal (without --from, backup needs the configuration)");
		goto out;
	}
	lo.imapd_conf = args.imapd;
	opts.to = args.to;
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
	if (args.only.n > 0) {
		strvec_sort_unique(&args.only);
		progress_start(&ui.progress, "backup", "users", args.only.n);
		failed = cyrus_backup_users(b, &args.only, 0);
		if (failed < 0) {
			agent_error("%s", cyrus_backup_error(b)->msg);
			goto out;
		}
	} else if (cyrus_backup_window(b, args.consumer, 0, &res) < 0 && res.run_id[0] == '\0') {
		agent_error("%s", cyrus_backup_error(b)->msg);
		goto out;
	}
	show_progress(&ui, 1);
	print_totals(b, NULL, &res);
	stats = cyrus_backup_stats(b);
	if (args.only.n > 0) {
		rc = stats->users_failed > 0 ? EXIT_ERROR : EXIT_OK;
		goto out;
	}
	if (!res.committed) {
		if (res.failed_users > 0)
			agent_warn("consumer '%s' not committed: its window will be backed up again",
			    args.consumer);
		else
			agent_error("%s", cyrus_backup_error(b)->msg);
		goto out;
	}
	rc = EXIT_OK;
out:
	cyrus_backup_free(b);
	source_free(src);
	strvec_free(&args.only);
	strvec_free(&args.from);
	return pr != 0 ? pr : rc;
}
