/* agent.c: chjournal's entry point and its one table of subcommands. Global
 * options, configuration and journal opening are done here, once, for the
 * commands whose flags ask for them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "archive/runsel.h"
#include "path.h"

const struct agent_command agent_commands[] = {
	{ "begin", cmd_begin, NEEDS_JOURNAL, "CONSUMER [--timeout SECONDS] [--replace] [--print-run-id]",
	  "open a backup run: sync, then snapshot the window since the last commit",
	  "Syncs with the daemon (every change made before `begin` is in the window), journals\n"
	  "every file under the roots open for writing (writes through a shared mapping, native\n"
	  "AIO or a loop device make no event; begin fails, opening no run, when they cannot be\n"
	  "journaled), then opens a run for CONSUMER and prints `incremental`, or `full` with the\n"
	  "reason: no committed run yet, or the journal id changed (database recreated). With\n"
	  "no daemon running, the time since it stopped is covered by a rescan and stderr says\n"
	  "so. A consumer with an open run is refused (exit 1), naming that run and when it\n"
	  "began: commit or abort it, or take it over with --replace; the new run then commits\n"
	  "the replaced run's begin point, so what changed between the two begins is listed\n"
	  "again next time. --print-run-id prints the run's id on a second line, for commit,\n"
	  "abort and list --run. --timeout bounds the wait for the daemon (default: key\n"
	  "sync_timeout). A root that is missing gets no cookie and is named on stderr; the\n"
	  "first run after it is back lists all of it." },
	{ "list", cmd_list, NEEDS_JOURNAL, "CONSUMER [-0] [--deleted | --reconcile [--entries]] [--run ID]",
	  "print the files to back up for the consumer's open run",
	  "Prints, sorted and without duplicates, one absolute path per line (NUL-terminated\n"
	  "with -0 or --null), every regular file and symlink under the roots created,\n"
	  "written, changed or renamed since the consumer's last committed begin; everything\n"
	  "for a full run.\n"
	  "--deleted prints instead the paths whose entries are gone (deleted, moved away, or\n"
	  "replaced by an exchange or by an entry of another kind): remove each with what is\n"
	  "below it, then add the list. --reconcile prints the directories that may have lost\n"
	  "entries the journal could not see one by one (rescanned subtrees; every directory\n"
	  "for a full run): make the entries directly in each match the file system. With\n"
	  "--entries each directory is printed as DIR/ followed by its entries. Without -0 a\n"
	  "path holding a newline is refused with an error naming it, and the exit status is 1.\n"
	  "A root that is missing is left out and named on stderr (exit 0). With --run,\n"
	  "refused (exit 1) unless ID is the open run." },
	{ "commit", cmd_commit, NEEDS_JOURNAL, "CONSUMER [--run ID]",
	  "end the open run: the next window starts at its begin",
	  "Advances CONSUMER's window to the point of its open `begin` (or, for a run that took\n"
	  "another over, of the replaced run's begin). Changes made after that begin are listed\n"
	  "again by the next run. With --run, refused (exit 1, naming both runs) unless ID is\n"
	  "the open run." },
	{ "abort", cmd_abort, NEEDS_CONFIG, "CONSUMER [--run ID]",
	  "drop the open run: the next begin covers the whole window again",
	  "Drops CONSUMER's open run without moving its window, so a failed backup loses\n"
	  "nothing. With --run, refused (exit 1, naming both runs) unless ID is the open run;\n"
	  "without it, no open run is only a warning." },
	{ "sync", cmd_sync, NEEDS_JOURNAL, "[--timeout SECONDS]",
	  "wait until the daemon has journaled every change made so far",
	  "Creates a cookie file in each root and waits until the daemon has journaled it.\n"
	  "Exits 1, saying so, when no daemon runs or the timeout (default: key sync_timeout)\n"
	  "passes." },
	{ "query", cmd_query, NEEDS_JOURNAL | JOURNAL_RO, "[--since SEQ|TIME|@UNIXTIME] [--under PATH] [--json] [-0]",
	  "print the raw journal rows",
	  "Prints the journal rows after SEQ (or changed at or after TIME: YYYY-MM-DDTHH:MM:SSZ,\n"
	  "YYYY-MM-DD or @UNIXTIME, UTC), optionally only below PATH: seq, time (UTC, ISO 8601),\n"
	  "what changed, path; then the rescan records. --json prints one JSON object per line,\n"
	  "times in unix seconds; -0 ends each record with NUL instead of newline." },
	{ "status", cmd_status, NEEDS_JOURNAL | JOURNAL_RO, "[--json | --prometheus]",
	  "show the daemon, the journal and every consumer",
	  "Daemon running (pid, since), backend, roots (and the missing ones), watches, journal\n"
	  "id, last seq and time, pending rescans, overflows seen, each consumer's last commit\n"
	  "(when it was made, and the begin it recorded) and how many rows it is behind,\n"
	  "database size. Times are UTC, ISO 8601. --json prints one JSON object (times in unix\n"
	  "seconds); --prometheus prints the figures in the node_exporter text format (for its\n"
	  "textfile collector)." },
	{ "consumers", cmd_consumers, NEEDS_CONFIG, "",
	  "list the consumers and their cursors",
	  "Lists every consumer, one per line, tab-separated: NAME, committed_begin=TIME (the\n"
	  "begin the last commit recorded: the next window starts there; or never),\n"
	  "committed_at=TIME (when that commit was made; or never), seq=SEQ, open=TIME (the\n"
	  "open run's begin, or no) and, for an open run, run=ID. Times are UTC, ISO 8601." },
	{ "forget", cmd_forget, NEEDS_CONFIG, "CONSUMER",
	  "remove a consumer's cursor",
	  "Removes CONSUMER. Journal rows kept only for it are pruned by the daemon." },
	{ "check", cmd_check, 0, "",
	  "check the configuration and the machine, as the agent sees them",
	  "Checks the configuration file (every error, one line each, naming FILE:LINE and the\n"
	  "key) and the machine: each root (a readable directory, writable for the sync\n"
	  "cookies, its file system, NFS exports, the directories below it, counted up to a\n"
	  "limit), the inotify limits against that count, what backend = auto would pick and\n"
	  "why, the journal's directory (free space) and file (its schema, a daemon running on\n"
	  "it, writable for begin), the consumers directory and every cursor. One line per\n"
	  "finding: ok, warning or error. Exit status 0 without errors (warnings allowed), 1\n"
	  "with one: something that will break the daemon or the backups. `chjournald -t`\n"
	  "checks the same as the daemon sees it." },
	{ "backup", cmd_backup, NEEDS_JOURNAL,
	  "[-C IMAPD.CONF] --to DIR [--consumer NAME] [--user USER]...",
	  "Cyrus mode: append a run to the archive of every user whose mailboxes changed",
	  "Opens a run of the consumer (default cyrus-archive; the first run is full: every\n"
	  "user), finds the Cyrus users whose folders, seen, subscription or sieve files changed\n"
	  "in its window, and appends to each user's archive DIR/USER.tar.gz one run: the meta\n"
	  "files of each changed folder (read under the lock a Cyrus reader takes), every\n"
	  "message whose SHA1 the archive lacks (checked against the GUID in cyrus.index),\n"
	  "folder-name links and the run's manifest. A user that fails is named, its archive\n"
	  "keeps its last complete run, the others go on; the consumer's run is committed only\n"
	  "when every user succeeded, else aborted. An open run of the consumer (a backup that\n"
	  "died) is taken over as `begin --replace` does. --user backs up the named users (every\n"
	  "folder checked) without touching the consumer. -C names imapd.conf (default\n"
	  "/etc/imapd.conf)." },
	{ "restore", cmd_restore, 0, "ARCHIVE --to DIR [--at TIME|RUN] [--folder NAME]...",
	  "Cyrus mode: recreate a user's folders as they were at a run",
	  "Recreates under DIR the state of the last run, or of the run --at picks: RUN (a run\n"
	  "number or name) or the last run at or before TIME (UTC YYYY-mm-ddTHH:MM:SSZ, a day\n"
	  "YYYY-mm-dd: its last run, or @UNIXTIME), as for show: each folder in\n"
	  "DIR/spool/PARTITION/PATH with its cyrus.header, cyrus.index, cyrus.annotations and\n"
	  "every message file <uid>., byte for byte; the seen, subscription and sieve files in\n"
	  "DIR/conf and DIR/sieve. --folder NAME (internal name, e.g. user.jdoe.Sent) restores\n"
	  "only those folders. DIR is created, with its missing parents. Nothing is written\n"
	  "outside DIR; existing files are never overwritten; files are created mode 0600,\n"
	  "without owners or set-id bits." },
	{ "compact", cmd_compact, 0, "ARCHIVE... [--keep-days N] [--force]",
	  "Cyrus mode: rewrite archives keeping only what retained runs need",
	  "Retains the last run of each UTC day of the last N days (default 30) and the newest\n"
	  "run; keeps their manifests, the folder meta copies, links and per-user files they\n"
	  "use and every message a retained index references. An archive is rewritten when its\n"
	  "live share is below a threshold of 80% that rises one point per week since its last\n"
	  "compaction (so at least every 20 weeks), or always with --force. The new archive is\n"
	  "written beside the old one, fsynced and renamed over it." },
	{ "verify", cmd_verify, 0, "ARCHIVE...",
	  "check Cyrus archives: gzip, tar, message SHA1s, names, sidecar",
	  "Reads each archive whole and checks every gzip member's CRC, the tar framing, that\n"
	  "every files/<sha1> entry hashes to its name, that entry names are safe (relative, no\n"
	  "'..', no entry below a symlink, no link pointing outside), that the last run is\n"
	  "complete and that the sidecar index agrees with the archive. Each problem is named\n"
	  "on stderr, one line each; the exit status is 1 when any archive has one. Needs no\n"
	  "configuration or journal." },
	{ "reindex", cmd_reindex, 0, "ARCHIVE",
	  "rebuild an archive's sidecar index from the archive alone",
	  "Scans the archive and writes a new sidecar (ARCHIVE with .tar.gz replaced by .idx):\n"
	  "temporary file, fsync, rename. An incomplete run at the end is left out (the next\n"
	  "backup cuts it). Refused while a backup writes to the archive." },
	{ "show", cmd_show, 0, "ARCHIVE [--at TIME|RUN]",
	  "show an archive's runs, or one run's folders, messages and bytes",
	  "Without --at: one line per run (number, name, UTC time, entries, bytes). With --at\n"
	  "RUN (a run number or name) or TIME (UTC YYYY-mm-ddTHH:MM:SSZ, a day YYYY-mm-dd: its\n"
	  "last run, or @UNIXTIME), as for restore: the folders alive at that run, the messages\n"
	  "stored, the archive's data bytes up to it and the live share: the bytes of the\n"
	  "newest copy of every entry at that run over all bytes stored up to it (what a\n"
	  "compaction would keep, roughly)." },
	{ "help", cmd_help, 0, "[COMMAND]", "show help for chjournal or a command", "" },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};

const struct agent_command *
agent_find_command(const char *name)
{
	const struct agent_command *c;

	for (c = agent_commands; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int
agent_error(const char *fmt, ...)
{
	va_list ap;

	fputs("chjournal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERROR;
}

void
agent_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("chjournal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
agent_usage_error(const char *cmd, const char *fmt, ...)
{
	const struct agent_command *c = agent_find_command(cmd);
	va_list ap;

	fprintf(stderr, "chjournal %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c != NULL)
		fprintf(stderr, "usage: chjournal %s %s\n", c->name, c->usage);
	return EXIT_USAGE;
}

int
agent_open_consumers(struct agent *a, struct consumers *cs, const char *name, int create)
{
	if (name != NULL && !consumer_name_valid(name)) {
		char disp[256];

		agent_error("invalid consumer name '%s': use 1 to %d of A-Z a-z 0-9 . _ @ + - "
		    "(not starting with '.' or '-')", path_display(name, disp, sizeof disp),
		    CONSUMER_NAME_MAX);
		return -1;
	}
	if (consumers_open(cs, a->cfg.consumers, create) < 0 ||
	    (a->cfg.group != NULL && consumers_set_group(cs, a->cfg.gid, create) < 0)) {
		agent_error("%s", cs->errmsg);
		consumers_close(cs);
		return -1;
	}
	return 0;
}

char *
agent_time_str(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0) {
		snprintf(buf, size, "never");
		return buf;
	}
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	return buf;
}

char *
agent_utc_str(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, size, "@%lld", (long long)t);
	else
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int
agent_parse_time(const char *s, int64_t *t)
{
	static const char *const formats[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d" };
	struct tm tm;
	size_t i;
	char *end;

	if (s[0] == '@') {
		long long v;

		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (*end != '\0' || end == s + 1 || s[1] == '-' || s[1] == '+' || v < 0 ||
		    errno == ERANGE)
			return -1;
		*t = (int64_t)v;
		return 0;
	}
	for (i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, formats[i], &tm);
		if (end != NULL && *end == '\0') {
			*t = (int64_t)timegm(&tm);
			return 0;
		}
	}
	return -1;
}

int
agent_opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t nl = strlen(name);

	if (strncmp(argv[*i], name, nl) != 0)
		return 0;
	if (argv[*i][nl] == '=') {
		*val = argv[*i] + nl + 1;
		return 1;
	}
	if (argv[*i][nl] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		*val = NULL;
		return 1;
	}
	*val = argv[++*i];
	return 1;
}

int
agent_opt_timeout(const char *cmd, int argc, char **argv, int *i, unsigned *timeout)
{
	const char *v;
	char *end;
	unsigned long t;

	if (!agent_opt_value(argc, argv, i, "--timeout", &v))
		return 0;
	if (v == NULL) {
		agent_usage_error(cmd, "--timeout needs a number of seconds");
		return -1;
	}
	t = strtoul(v, &end, 10);
	if (*end != '\0' || end == v || v[0] == '-' || t == 0 || t > 86400) {
		agent_usage_error(cmd, "bad --timeout '%s': seconds from 1 to 86400", v);
		return -1;
	}
	*timeout = (unsigned)t;
	return 1;
}

int
agent_opt_at(const char *cmd, int argc, char **argv, int *i, struct runsel *sel)
{
	struct chj_error e;
	const char *v;

	if (!agent_opt_value(argc, argv, i, "--at", &v))
		return 0;
	if (v == NULL) {
		agent_usage_error(cmd, "--at needs a time or a run");
		return -1;
	}
	if (runsel_parse(sel, v, &e) < 0) {
		agent_usage_error(cmd, "%s", e.msg);
		return -1;
	}
	return 1;
}

int
agent_opt_run(const char *cmd, int argc, char **argv, int *i, const char **run_id)
{
	const char *v;

	if (!agent_opt_value(argc, argv, i, "--run", &v))
		return 0;
	if (v == NULL || *v == '\0') {
		agent_usage_error(cmd, "--run needs a run id (as `begin --print-run-id` prints it)");
		return -1;
	}
	*run_id = v;
	return 1;
}

static void
main_usage(FILE *f)
{
	const struct agent_command *c;

	fprintf(f, "usage: chjournal [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
	for (c = agent_commands; c->name != NULL; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\n`chjournal help COMMAND` describes one command.\n");
}

int
main(int argc, char **argv)
{
	struct agent a;
	const struct agent_command *cmd;
	int i = 1, rc;

	memset(&a, 0, sizeof a);
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "chjournal: option '%s' needs a file\n", argv[i]);
				return EXIT_USAGE;
			}
			a.config_file = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			a.config_file = argv[i] + 9;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			main_usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("chjournal %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		} else {
			fprintf(stderr, "chjournal: unknown option '%s'\n", argv[i]);
			main_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	cmd = agent_find_command(argv[i]);
	if (cmd == NULL) {
		fprintf(stderr, "chjournal: unknown command '%s'\n", argv[i]);
		main_usage(stderr);
		return EXIT_USAGE;
	}
	if (cmd->flags & (NEEDS_CONFIG | NEEDS_JOURNAL)) {
		a.config_file = config_choose_file(a.config_file);
		if (config_load(&a.cfg, a.config_file) < 0)
			return agent_error("%s", a.cfg.errmsg);
		a.have_config = 1;
	}
	if (cmd->flags & NEEDS_JOURNAL) {
		a.journal = journal_new();
		if (a.journal == NULL) {
			rc = agent_error("out of memory");
			goto done;
		}
		if (journal_open(a.journal, a.cfg.journal,
		    (cmd->flags & JOURNAL_RO) ? JOURNAL_READONLY : 0) < 0) {
			if (journal_error(a.journal)->code == CHJ_ERR_NOTFOUND)
				rc = agent_error("%s (has chjournald ever run with this configuration?)",
				    journal_errmsg(a.journal));
			else
				rc = agent_error("%s", journal_errmsg(a.journal));
			goto done;
		}
	}
	rc = cmd->run(&a, argc - i, argv + i);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == EXIT_OK)
			rc = agent_error("cannot write output: %s", strerror(errno));
	}
done:
	journal_free(a.journal);
	if (a.have_config)
		config_free(&a.cfg);
	return rc;
}
