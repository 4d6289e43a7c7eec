/* cmd-status.c: `chjournal status [--json | --prometheus] [--pulls DIR]`:
 * the daemon, the journal, the roots (and which are missing) and every
 * consumer, for people (text) or monitoring (JSON, the node_exporter text
 * format); with --pulls, on a backup host, every host `backup --from` pulls
 * into DIR instead. */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "changeset.h"
#include "daemonlock.h"
#include "livestatus.h"
#include "path.h"
#include "promtext.h"
#include "pullmetrics.h"

struct status {
	int running;
	long pid;
	int64_t started, last_seq, last_flush, watches, unwatched, overflows, events, rescans_recorded;
	int64_t pending_rescans, rows;
	int64_t db_bytes;
	char *backend;
	char *nfs_exported;    /* roots the kernel NFS server exports (inotify) */
	int live;              /* the figures below are the running daemon's now */
	const char *state;     /* starting, crawling, ready, stopped, unknown */
	int64_t pending;       /* changes in memory, not yet journaled (-1: unknown) */
	int64_t journal_error_since;
	char journal_error[256];
};

/* The running daemon's figures as they are now (livestatus.h), over those of
 * its last flush. */
static void
take_live(struct agent *a, struct status *s)
{
	struct livestatus r;
	struct chj_error e;

	s->state = s->running ? "unknown" : "stopped";
	s->pending = -1;
	if (!s->running || livestatus_read(a->cfg.journal, &r, &e) != 1 || r.pid != s->pid)
		return;
	s->live = 1;
	s->state = livestatus_state_name(r.state);
	s->started = r.started;
	s->watches = (int64_t)r.watches;
	s->unwatched = (int64_t)r.unwatched;
	s->overflows = (int64_t)r.overflows;
	s->events = (int64_t)r.events;
	s->rescans_recorded = (int64_t)r.rescans_recorded;
	s->pending = (int64_t)r.pending;
	if (r.last_flush > s->last_flush)
		s->last_flush = r.last_flush;
	s->journal_error_since = r.journal_error_since;
	memcpy(s->journal_error, r.journal_error, sizeof s->journal_error);
	s->journal_error[sizeof s->journal_error - 1] = '\0';
}

static int64_t
meta_int(struct agent *a, const char *key)
{
	int64_t v = 0;

	if (journal_meta_get_int(a->journal, key, &v) != 0)
		return 0;
	return v;
}

static int64_t
file_size(const char *path, const char *suffix)
{
	char buf[4096];
	struct stat st;

	snprintf(buf, sizeof buf, "%s%s", path, suffix);
	return stat(buf, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Returns 1 when the consumer's next run is incremental on this journal,
 * with *behind the rows after its cursor and *rescans the rescan records
 * (subtrees whose deletions are known only as directories to reconcile;
 * both -1 when full or unknown). */
static int
consumer_lag(struct agent *a, const struct consumer_state *st, int64_t *behind, int64_t *rescans)
{
	int on_this = st->has_committed &&
	    strcmp(st->committed_journal_id, journal_id(a->journal)) == 0;

	*behind = *rescans = -1;
	if (on_this && journal_count_changes(a->journal, st->committed_seq, behind) < 0)
		*behind = -1;
	if (on_this && journal_count_rescans(a->journal, st->committed_seq, rescans) < 0)
		*rescans = -1;
	return on_this;
}

/* Prints one consumer; returns 1 when printed, 0 when its cursor is bad. */
static int
print_consumer(struct agent *a, struct consumers *cs, const char *name, int json, int first, int *bad)
{
	struct consumer_state st;
	int64_t behind = -1, rescans = -1;
	char t1[32], t2[32], t3[32];
	int on_this;

	if (consumer_load(cs, name, &st) != 0) {
		agent_warn("%s", cs->err.msg);
		*bad = 1;
		return 0;
	}
	on_this = consumer_lag(a, &st, &behind, &rescans);
	if (json) {
		printf("%s{\"name\":\"%s\",\"committed\":%s,\"commit_time\":%" PRId64
		    ",\"committed_begin_time\":%" PRId64 ",\"committed_seq\":%" PRId64
		    ",\"rows_behind\":%" PRId64 ",\"rescans_behind\":%" PRId64
		    ",\"next_run\":\"%s\",\"open_run\":%s,\"open_since\":%" PRId64,
		    first ? "" : ",", name, st.has_committed ? "true" : "false", st.commit_time,
		    st.committed_time, st.committed_seq, behind, rescans, on_this ? "incremental" : "full",
		    st.has_open ? "true" : "false", st.has_open ? st.open_time : 0);
		if (st.has_open)
			printf(",\"open_run_id\":\"%s\"}", consumer_run_id(&st));
		else
			printf(",\"open_run_id\":null}");
		return 1;
	}
	printf("consumer %s: ", name);
	if (!st.has_committed)
		printf("never committed (next run full)");
	else if (!on_this)
		printf("committed at %s on another journal (next run full)",
		    agent_time_str(st.commit_time, t1, sizeof t1));
	else
		printf("committed at %s (up to its begin at %s, seq %" PRId64 "), %" PRId64
		    " rows behind", agent_time_str(st.commit_time, t1, sizeof t1),
		    agent_time_str(st.committed_time, t3, sizeof t3), st.committed_seq, behind);
	if (on_this && rescans > 0)
		printf(", %" PRId64 " rescanned subtree(s) (directories to reconcile)", rescans);
	if (st.has_open)
		printf(", run %s open since %s", consumer_run_id(&st),
		    agent_time_str(st.open_time, t2, sizeof t2));
	putchar('\n');
	return 1;
}

/* Writes s as a Prometheus label value (common/promtext.h). */
static void
prom_label(const char *s)
{
	char buf[2 * PATH_MAX + 8];

	fputs(prom_label_value(s, buf, sizeof buf), stdout);
}

static void
prom_metric(const char *name, const char *type, const char *help, int64_t v)
{
	printf("# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", name, help, name, type, name, v);
}

/* The node_exporter text format, for a textfile collector or a scrape. */
static void
print_prometheus(struct agent *a, struct consumers *cs, const struct status *s,
    char **names, size_t n, int *bad)
{
	static const struct {
		const char *name, *help;
	} cm[] = {
		{ "chjournal_consumer_rows_behind", "Journal rows after the consumer's committed point (-1: next run is full)." },
		{ "chjournal_consumer_rescans_behind", "Rescan records after the consumer's committed point: subtrees whose deletions are known only as directories to reconcile (-1: next run is full)." },
		{ "chjournal_consumer_last_commit_time_seconds", "Unix time of the consumer's last commit (0: never)." },
		{ "chjournal_consumer_committed_begin_time_seconds", "Unix time of the begin the consumer last committed." },
		{ "chjournal_consumer_next_run_full", "1 when the consumer's next run must be full." },
		{ "chjournal_consumer_run_open", "1 while the consumer has an open run." },
		{ "chjournal_consumer_open_run_start_time_seconds", "Unix time the open run began (0: none)." },
	};
	size_t i, k;

	prom_metric("chjournal_daemon_up", "gauge", "1 when chjournald runs on this journal.", s->running);
	prom_metric("chjournal_daemon_ready", "gauge",
	    "1 when the running daemon watches every root (its crawl is done).",
	    s->running && strcmp(s->state, "ready") == 0);
	prom_metric("chjournal_pending_changes", "gauge",
	    "Changes the daemon holds in memory, not yet journaled (-1: unknown).", s->pending);
	prom_metric("chjournal_journal_write_failing_since_seconds", "gauge",
	    "Unix time since which the daemon cannot write the journal (0: it can).",
	    s->journal_error_since);
	prom_metric("chjournal_daemon_start_time_seconds", "gauge", "Unix time the running daemon started.",
	    s->running ? s->started : 0);
	prom_metric("chjournal_watches", "gauge", "Directories watched.", s->watches);
	prom_metric("chjournal_unwatched_directories", "gauge",
	    "Directories (or roots) that cannot be watched now, covered by rescans.", s->unwatched);
	prom_metric("chjournal_events_total", "counter", "Kernel events read by the running daemon.", s->events);
	prom_metric("chjournal_overflows_total", "counter", "Kernel queue overflows seen by the running daemon.",
	    s->overflows);
	prom_metric("chjournal_rescans_recorded_total", "counter",
	    "Rescan records written by the running daemon.", s->rescans_recorded);
	prom_metric("chjournal_pending_rescans", "gauge", "Rescan records in the journal.", s->pending_rescans);
	prom_metric("chjournal_journal_rows", "gauge", "Changed paths in the journal.", s->rows);
	prom_metric("chjournal_last_seq", "counter", "Last journal sequence number.", s->last_seq);
	prom_metric("chjournal_last_flush_time_seconds", "gauge",
	    "Unix time up to which every change is journaled.", s->last_flush);
	prom_metric("chjournal_database_bytes", "gauge", "Journal database size with its WAL.", s->db_bytes);
	printf("# HELP chjournal_root_info A configured root.\n# TYPE chjournal_root_info gauge\n");
	for (i = 0; i < a->cfg.nroots; i++) {
		printf("chjournal_root_info{root=\"");
		prom_label(a->cfg.roots[i]);
		printf("\"} 1\n");
	}
	printf("# HELP chjournal_root_missing 1 when the root is missing (unmounted, moved away): "
	    "its files are in no list until it is back.\n# TYPE chjournal_root_missing gauge\n");
	for (i = 0; i < a->cfg.nroots; i++) {
		printf("chjournal_root_missing{root=\"");
		prom_label(a->cfg.roots[i]);
		printf("\"} %d\n", changeset_root_missing(&a->cfg, i) != 0);
	}
	printf("# HELP chjournal_root_nfs_exported 1 when the kernel NFS server exports the root "
	    "and the backend (inotify) does not hear its writes by file handle: use fanotify.\n"
	    "# TYPE chjournal_root_nfs_exported gauge\n");
	for (i = 0; i < a->cfg.nroots; i++) {
		printf("chjournal_root_nfs_exported{root=\"");
		prom_label(a->cfg.roots[i]);
		printf("\"} %d\n", path_list_contains(s->nfs_exported, a->cfg.roots[i]));
	}
	for (k = 0; k < sizeof cm / sizeof cm[0]; k++) {
		printf("# HELP %s %s\n# TYPE %s gauge\n", cm[k].name, cm[k].help, cm[k].name);
		for (i = 0; i < n; i++) {
			struct consumer_state st;
			int on_this;
			int64_t v = 0, behind = -1, rescans = -1;

			if (consumer_load(cs, names[i], &st) != 0) {
				if (k == 0) {
					agent_warn("%s", cs->err.msg);
					*bad = 1;
				}
				continue;
			}
			on_this = consumer_lag(a, &st, &behind, &rescans);
			switch (k) {
			case 0: v = behind; break;
			case 1: v = rescans; break;
			case 2: v = st.has_committed ? st.commit_time : 0; break;
			case 3: v = st.has_committed ? st.committed_time : 0; break;
			case 4: v = !on_this; break;
			case 5: v = st.has_open; break;
			case 6: v = st.has_open ? st.open_time : 0; break;
			}
			printf("%s{consumer=\"", cm[k].name);
			prom_label(names[i]);
			printf("\"} %" PRId64 "\n", v);
		}
	}
}

/* The daemon's and the journal's figures into s (free its strings with
 * status_free). Returns 0 or -1 (printed). */
static int
read_status(struct agent *a, struct status *s)
{
	struct chj_error err;
	pid_t pid;
	int rc;

	memset(s, 0, sizeof *s);
	rc = daemonlock_probe(a->cfg.journal, &pid, &err);
	if (rc < 0)
		return agent_error("%s", err.msg), -1;
	s->running = rc == 1;
	s->pid = (long)pid;
	if (journal_last_seq(a->journal, &s->last_seq) < 0 ||
	    journal_count_rescans(a->journal, 0, &s->pending_rescans) < 0 ||
	    journal_count_changes(a->journal, 0, &s->rows) < 0)
		return agent_error("%s", journal_errmsg(a->journal)), -1;
	s->started = meta_int(a, "daemon_started");
	s->last_flush = meta_int(a, "last_flush");
	s->watches = meta_int(a, "watches");
	s->unwatched = meta_int(a, "unwatched");
	s->overflows = meta_int(a, "overflows");
	s->events = meta_int(a, "events");
	s->rescans_recorded = meta_int(a, "rescans_recorded");
	if (journal_meta_get_text(a->journal, "backend", &s->backend) != 0)
		s->backend = NULL;
	if (journal_meta_get_text(a->journal, "nfs_exported_roots", &s->nfs_exported) != 0)
		s->nfs_exported = NULL;
	take_live(a, s);
	s->db_bytes = file_size(a->cfg.journal, "") + file_size(a->cfg.journal, "-wal") +
	    file_size(a->cfg.journal, "-shm");
	return 0;
}

static void
status_free(struct status *s)
{
	free(s->backend);
	free(s->nfs_exported);
}

/* which roots a JSON array lists */
enum root_set { ROOTS_ALL, ROOTS_MISSING, ROOTS_NFS_EXPORTED };

static void
json_roots(struct agent *a, const struct status *s, enum root_set which)
{
	size_t i;
	int printed = 0;

	putchar('[');
	for (i = 0; i < a->cfg.nroots; i++) {
		if ((which == ROOTS_MISSING && changeset_root_missing(&a->cfg, i) == 0) ||
		    (which == ROOTS_NFS_EXPORTED && !path_list_contains(s->nfs_exported, a->cfg.roots[i])))
			continue;
		if (printed++)
			putchar(',');
		agent_json_string(stdout, a->cfg.roots[i]);
	}
	putchar(']');
}

static void
print_json(struct agent *a, struct consumers *cs, const struct status *s, char **names, size_t n,
    int *bad)
{
	size_t i;
	int printed;

	printf("{\"daemon\":{\"running\":%s,\"pid\":%ld,\"since\":%" PRId64 ",\"state\":\"%s\","
	    "\"live\":%s,\"pending\":%" PRId64 ",\"journal_error_since\":%" PRId64
	    ",\"journal_error\":", s->running ? "true" : "false", s->running ? s->pid : 0L,
	    s->running ? s->started : 0, s->state, s->live ? "true" : "false", s->pending,
	    s->journal_error_since);
	agent_json_string(stdout, s->journal_error);
	printf("},\"backend\":\"%s\",\"roots\":",
	    s->backend ? s->backend : config_backend_name(a->cfg.backend));
	json_roots(a, s, ROOTS_ALL);
	printf(",\"missing_roots\":");
	json_roots(a, s, ROOTS_MISSING);
	printf(",\"nfs_exported_roots\":");
	json_roots(a, s, ROOTS_NFS_EXPORTED);
	printf(",\"watches\":%" PRId64 ",\"unwatched\":%" PRId64 ",\"journal\":", s->watches,
	    s->unwatched);
	agent_json_string(stdout, a->cfg.journal);
	printf(",\"journal_id\":\"%s\",\"last_seq\":%" PRId64 ",\"last_flush\":%" PRId64
	    ",\"rows\":%" PRId64 ",\"pending_rescans\":%" PRId64 ",\"overflows\":%" PRId64
	    ",\"events\":%" PRId64 ",\"rescans_recorded\":%" PRId64 ",\"database_bytes\":%" PRId64
	    ",\"consumers\":[",
	    journal_id(a->journal), s->last_seq, s->last_flush, s->rows, s->pending_rescans,
	    s->overflows, s->events, s->rescans_recorded, s->db_bytes);
	for (i = 0, printed = 0; i < n; i++)
		printed += print_consumer(a, cs, names[i], 1, printed == 0, bad);
	printf("]}\n");
}

/* the daemon's lines of the text form */
static void
print_text_daemon(struct agent *a, const struct status *s)
{
	char t[32];
	size_t i;

	if (s->running)
		printf("daemon:      running (pid %ld, since %s), %s\n", s->pid,
		    agent_time_str(s->started, t, sizeof t), s->state);
	else
		printf("daemon:      not running\n");
	if (s->journal_error_since != 0)
		printf("journal:     NOT WRITTEN since %s, changes kept in memory: %s\n",
		    agent_time_str(s->journal_error_since, t, sizeof t), s->journal_error);
	if (s->pending >= 0)
		printf("pending:     %" PRId64 " changes in memory\n", s->pending);
	printf("backend:     %s\n", s->backend ? s->backend : config_backend_name(a->cfg.backend));
	for (i = 0; i < a->cfg.nroots; i++)
		printf("root:        %s\n", a->cfg.roots[i]);
	/* lines of their own: scripts read the roots from the lines above */
	for (i = 0; i < a->cfg.nroots; i++) {
		int e = changeset_root_missing(&a->cfg, i);

		if (e != 0)
			printf("missing:     %s (%s)\n", a->cfg.roots[i], strerror(e));
		if (path_list_contains(s->nfs_exported, a->cfg.roots[i]))
			printf("nfs export:  %s (exported by the kernel NFS server: inotify does not "
			    "hear writes by file handle: use backend = fanotify)\n", a->cfg.roots[i]);
	}
}

static void
print_text(struct agent *a, struct consumers *cs, const struct status *s, char **names, size_t n,
    int *bad)
{
	char t[32];
	size_t i;

	print_text_daemon(a, s);
	printf("watches:     %" PRId64 "%s\n", s->watches,
	    s->unwatched ? " (some directories unwatched: covered by rescans)" : "");
	printf("journal:     %s (id %s, %.1f MiB)\n", a->cfg.journal, journal_id(a->journal),
	    (double)s->db_bytes / 1048576.0);
	printf("last seq:    %" PRId64 " (last flush %s)\n", s->last_seq,
	    agent_time_str(s->last_flush, t, sizeof t));
	printf("rows:        %" PRId64 " changed paths, %" PRId64 " pending rescans\n", s->rows,
	    s->pending_rescans);
	printf("overflows:   %" PRId64 "\n", s->overflows);
	for (i = 0; i < n; i++)
		print_consumer(a, cs, names[i], 0, i == 0, bad);
	if (n == 0)
		printf("consumers:   none\n");
}

/* ---- the pulls of a backup host (status --pulls DIR) ---- */

static void
pulls_text(const char *dir, const struct pull_metrics *v, size_t n, size_t failing)
{
	char run[32], ok[32];
	size_t i;

	printf("pulls in %s: %zu host%s, %zu failing\n", dir, n, n == 1 ? "" : "s", failing);
	for (i = 0; i < n; i++) {
		agent_time_str((int64_t)v[i].last_run, run, sizeof run);
		agent_time_str((int64_t)v[i].last_success, ok, sizeof ok);
		printf("host %s: %s; last run %s (%.3f s), last success %s; %llu bytes received, "
		    "%lu runs written, %lu users failed\n", v[i].host, v[i].success ? "ok" : "FAILED",
		    run, v[i].duration, ok, (unsigned long long)v[i].received_bytes, v[i].runs_written,
		    v[i].users_failed);
	}
}

static void
pulls_json(const char *dir, const struct pull_metrics *v, size_t n)
{
	size_t i;

	printf("{\"pulls\":");
	agent_json_string(stdout, dir);
	printf(",\"hosts\":[");
	for (i = 0; i < n; i++) {
		printf("%s{\"host\":", i ? "," : "");
		agent_json_string(stdout, v[i].host);
		printf(",\"success\":%s,\"last_run\":%.3f,\"last_success\":%.3f,\"duration\":%.3f,"
		    "\"received_bytes\":%llu,\"runs_written\":%lu,\"users_failed\":%lu}",
		    v[i].success ? "true" : "false", v[i].last_run, v[i].last_success, v[i].duration,
		    (unsigned long long)v[i].received_bytes, v[i].runs_written, v[i].users_failed);
	}
	printf("]}\n");
}

/* status --pulls DIR: every host backup --from pulls into DIR, from its
 * DIR/HOST.prom; exit 1 when one failed its last pull (or none is there). */
static int
status_pulls(const char *dir, const struct cmdline *args)
{
	struct pull_metrics *v;
	struct chj_error e;
	size_t n, i, failing = 0;

	if (pull_metrics_list(dir, &v, &n, &e) < 0)
		return agent_error("%s", e.msg);
	for (i = 0; i < n; i++)
		failing += !v[i].success;
	if (cmdline_has(args, "--prometheus")) {
		char *text = pull_metrics_format(v, n);

		if (text == NULL) {
			free(v);
			return agent_error("out of memory");
		}
		fputs(text, stdout);
		free(text);
	} else if (cmdline_has(args, "--json")) {
		pulls_json(dir, v, n);
	} else {
		pulls_text(dir, v, n, failing);
	}
	free(v);
	if (n == 0)
		return agent_error("no pull recorded in '%s' (no HOST.prom: has backup --from run "
		    "with --to %s?)", dir, dir);
	return failing ? EXIT_ERROR : EXIT_OK;
}

int
cmd_status(struct agent *a, const struct cmdline *args)
{
	struct status s;
	struct consumers cs;
	char **names = NULL;
	size_t n = 0;
	int bad = 0;

	if (cmdline_has(args, "--pulls"))
		return status_pulls(cmdline_value(args, "--pulls"), args);

	if (read_status(a, &s) < 0) {
		status_free(&s);
		return EXIT_ERROR;
	}
	if (agent_open_consumers(a, &cs, NULL, 0) < 0) {
		status_free(&s);
		return EXIT_ERROR;
	}
	if (consumer_list(&cs, &names, &n) < 0) {
		agent_warn("%s", cs.err.msg);
		bad = 1;
	}
	if (cmdline_has(args, "--prometheus"))
		print_prometheus(a, &cs, &s, names, n, &bad);
	else if (cmdline_has(args, "--json"))
		print_json(a, &cs, &s, names, n, &bad);
	else
		print_text(a, &cs, &s, names, n, &bad);
	consumer_list_free(names, n);
	consumers_close(&cs);
	status_free(&s);
	/* a cursor that cannot be read must not look healthy to monitoring */
	return bad ? EXIT_ERROR : EXIT_OK;
}
