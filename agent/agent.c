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
#include "prune.h"

/* options more than one command takes */
#define OPT_TIMEOUT { .name = "--timeout", .value = "SECONDS", .missing = "a number of seconds" }
#define OPT_RUN { .name = "--run", .value = "ID", \
	.missing = "a run id (as `begin --print-run-id` prints it)" }
#define OPT_AT { .name = "--at", .value = "TIME|RUN", .missing = "a time or a run" }
/* another host's serve, through ssh (begin, list, commit, abort) */
#define OPT_FROM { .name = "--from", .value = "HOST", .missing = "[USER@]HOST[:PORT]" }
#define OPT_SSH { .name = "--ssh", .value = "CMD", .missing = "a command", .needs = "--from" }
/* restore --to-server's options */
#define SERVER_OPT(opt, val) { .name = opt, .value = val, .needs = "--to-server|--to-origin" }
/* compact's borg-like rules, each instead of --keep-days */
#define KEEP_RULE(opt) { .name = opt, .value = "N", .missing = "a number", \
	.conflicts = "--keep-days" }

/* The commands: each declares its operands and options (common/cmdline.h),
 * from which agent.c parses the arguments and makes the usage lines. */
const struct agent_command agent_commands[] = {
	{ "begin", cmd_begin, NEEDS_JOURNAL | FROM_NEEDS_NOTHING,
	  { "CONSUMER", 1, 1, "expected one consumer name",
	    { OPT_TIMEOUT, { .name = "--replace" }, { .name = "--print-run-id" }, { .name = "--list" },
	      { .name = "-0", .alias = "--null", .needs = "--list" }, OPT_FROM, OPT_SSH } },
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
	  "abort and list --run. --list then prints what `list CONSUMER` prints for the run\n"
	  "(-0: NUL-terminated), in the same process: one command instead of two. --timeout\n"
	  "bounds the wait for the daemon (default: key\n"
	  "sync_timeout). A root that is missing gets no cookie and is named on stderr; the\n"
	  "first run after it is back lists all of it. With --from [USER@]HOST[:PORT], the\n"
	  "run is begun on that host by its `chjournal serve` (through ssh, or --ssh CMD; no\n"
	  "configuration needed here) and stays open there for list and commit --from." },
	{ "list", cmd_list, NEEDS_JOURNAL | FROM_NEEDS_NOTHING,
	  { "CONSUMER", 1, 1, "expected a consumer name",
	    { { .name = "-0", .alias = "--null" }, { .name = "--deleted" },
	      { .name = "--reconcile", .conflicts = "--deleted" },
	      { .name = "--entries", .needs = "--reconcile" }, OPT_RUN, OPT_FROM, OPT_SSH } },
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
	  "refused (exit 1) unless ID is the open run. With --from, the open run on HOST, as its\n"
	  "`chjournal serve` lists it (see begin)." },
	{ "commit", cmd_commit, NEEDS_JOURNAL | FROM_NEEDS_NOTHING,
	  { "CONSUMER", 1, 1, "expected one consumer name", { OPT_RUN, OPT_FROM, OPT_SSH } },
	  "end the open run: the next window starts at its begin",
	  "Advances CONSUMER's window to the point of its open `begin` (or, for a run that took\n"
	  "another over, of the replaced run's begin). Changes made after that begin are listed\n"
	  "again by the next run. With --run, refused (exit 1, naming both runs) unless ID is\n"
	  "the open run. With --from, on HOST (see begin)." },
	{ "abort", cmd_abort, NEEDS_CONFIG | FROM_NEEDS_NOTHING,
	  { "CONSUMER", 1, 1, "expected one consumer name", { OPT_RUN, OPT_FROM, OPT_SSH } },
	  "drop the open run: the next begin covers the whole window again",
	  "Drops CONSUMER's open run without moving its window, so a failed backup loses\n"
	  "nothing. With --run, refused (exit 1, naming both runs) unless ID is the open run;\n"
	  "without it, no open run is only a warning. With --from, on HOST (see begin)." },
	{ "sync", cmd_sync, NEEDS_JOURNAL,
	  { "", 0, 0, NULL, { OPT_TIMEOUT } },
	  "wait until the daemon has journaled every change made so far",
	  "Creates a cookie file in each root and waits until the daemon has journaled it.\n"
	  "Exits 1, saying so, when no daemon runs or the timeout (default: key sync_timeout)\n"
	  "passes." },
	{ "query", cmd_query, NEEDS_JOURNAL | JOURNAL_RO,
	  { "", 0, 0, NULL,
	    { { .name = "--since", .value = "SEQ|TIME|@UNIXTIME", .missing = "SEQ, TIME or @UNIXTIME" },
	      { .name = "--under", .value = "PATH", .missing = "an absolute path" },
	      { .name = "--json" }, { .name = "-0", .alias = "--null", .conflicts = "--json" } } },
	  "print the raw journal rows",
	  "Prints the journal rows after SEQ (or changed at or after TIME: YYYY-MM-DDTHH:MM:SSZ,\n"
	  "YYYY-MM-DD or @UNIXTIME, UTC), optionally only below PATH: seq, time (UTC, ISO 8601),\n"
	  "what changed, path; then the rescan records. --json prints one JSON object per line,\n"
	  "times in unix seconds; -0 ends each record with NUL instead of newline." },
	{ "status", cmd_status, NEEDS_JOURNAL | JOURNAL_RO | PULLS_NEEDS_NOTHING,
	  { "", 0, 0, NULL, { { .name = "--json" }, { .name = "--prometheus", .conflicts = "--json" },
	    { .name = "--pulls", .value = "DIR", .missing = "a backup directory" } } },
	  "show the daemon, the journal and every consumer",
	  "Daemon running (pid, since), backend, roots (and the missing ones), watches, journal\n"
	  "id, last seq and time, pending rescans, overflows seen, each consumer's last commit\n"
	  "(when it was made, and the begin it recorded) and how many rows it is behind,\n"
	  "database size. Times are UTC, ISO 8601. --json prints one JSON object (times in unix\n"
	  "seconds); --prometheus prints the figures in the node_exporter text format (for its\n"
	  "textfile collector). On a backup host, --pulls DIR shows instead every host that\n"
	  "`backup --from ... --to DIR` pulls (from DIR/HOST.prom: last run, last success,\n"
	  "duration, bytes received, runs written, users failed), with --json or --prometheus\n"
	  "as well; exit status 1 when a host's last pull failed. Needs no configuration or\n"
	  "journal then." },
	{ "consumers", cmd_consumers, NEEDS_CONFIG,
	  { "", 0, 0, NULL, { { NULL } } },
	  "list the consumers and their cursors",
	  "Lists every consumer, one per line, tab-separated: NAME, committed_begin=TIME (the\n"
	  "begin the last commit recorded: the next window starts there; or never),\n"
	  "committed_at=TIME (when that commit was made; or never), seq=SEQ, open=TIME (the\n"
	  "open run's begin, or no) and, for an open run, run=ID. Times are UTC, ISO 8601." },
	{ "forget", cmd_forget, NEEDS_CONFIG,
	  { "CONSUMER", 1, 1, "expected one consumer name", { { NULL } } },
	  "remove a consumer's cursor",
	  "Removes CONSUMER. Journal rows kept only for it are pruned by the daemon." },
	{ "check", cmd_check, 0,
	  { "", 0, 0, NULL, { { NULL } } },
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
	{ "backup", cmd_backup, NEEDS_JOURNAL | FROM_NEEDS_NOTHING,
	  { "", 0, 0, NULL,
	    { { .name = "-C", .alias = "--config", .value = "IMAPD.CONF" },
	      { .name = "--to", .value = "DIR", .flags = CMDLINE_REQUIRED },
	      { .name = "--consumer", .value = "NAME" },
	      { .name = "--user", .value = "USER", .flags = CMDLINE_REPEAT },
	      { .name = "--from", .value = "HOST", .missing = "[USER@]HOST[:PORT]",
	        .flags = CMDLINE_REPEAT },
	      OPT_SSH, { .name = "-j", .alias = "--jobs", .value = "N", .missing = "a number of hosts",
	        .needs = "--from" },
	      { .name = "--timeout", .value = "SECONDS", .missing = "a number of seconds",
	        .needs = "--from" } } },
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
	  "/etc/imapd.conf).\n\n"
	  "With --from, on a backup host: pulls each HOST through the system's ssh (or --ssh\n"
	  "CMD, split at blanks, as rsync's -e; ~/.ssh/config applies), which runs `chjournal\n"
	  "serve` there (best as the forced command of the key), into DIR/HOST/USER.tar.gz.\n"
	  "No configuration, journal or daemon is needed here; the consumer is the host's.\n"
	  "Messages are checked against their GUID on arrival and compressed here. A host\n"
	  "that fails is named in one line and its consumer is not committed; the others go\n"
	  "on. -j N pulls up to N hosts at a time. A host that sends nothing, or takes nothing,\n"
	  "for --timeout SECONDS (default 600) hangs: its pull fails and its ssh is ended. Each\n"
	  "pull's metrics go to DIR/HOST.prom (status --pulls DIR shows them all)." },
	{ "serve", cmd_serve, NEEDS_JOURNAL,
	  { "", 0, 0, NULL,
	    { { .name = "-C", .alias = "--config", .value = "IMAPD.CONF" },
	      { .name = "--no-cyrus", .conflicts = "-C" },
	      { .name = "--consumer", .value = "NAME" } } },
	  "answer a backup host's read-only requests on stdin/stdout (an ssh forced command)",
	  "Run by sshd as the forced command of the backup host's key\n"
	  "(command=\"chjournal serve\",restrict in authorized_keys): answers the requests of\n"
	  "`chjournal backup --from` in framed messages (lengths and CRCs, a limit on every\n"
	  "field). Read-only: the consumer's run (begin, list, commit, abort; only for\n"
	  "NAME, default cyrus-archive), the Cyrus mailbox list, meta files read under Cyrus's\n"
	  "locks and files below a partition, the config directory's user/ or the sieve\n"
	  "directory. Anything else is refused with one line on stderr. A run left open when\n"
	  "the connection ends is aborted (begin, list, commit --from leave theirs open). -C\n"
	  "names imapd.conf (default /etc/imapd.conf); --no-cyrus serves the consumer's run\n"
	  "and list alone, for a file server pulled by begin, list and commit --from." },
	{ "restore", cmd_restore, 0,
	  { "ARCHIVE...", 1, -1, "expected ARCHIVE",
	    { { .name = "--to", .value = "DIR" },
	      { .name = "--to-server", .value = "HOST[:PORT]", .conflicts = "--to" },
	      { .name = "--to-origin", .conflicts = "--to-server" },
	      { .name = "--sync-port", .value = "PORT", .missing = "a port", .needs = "--to-origin" },
	      OPT_AT,
	      { .name = "--folder", .value = "NAME", .missing = "a folder name", .flags = CMDLINE_REPEAT },
	      SERVER_OPT("--authname", "NAME"), SERVER_OPT("--password-file", "FILE"),
	      SERVER_OPT("--beside", "SUFFIX"), SERVER_OPT("--jobs", "N"),
	      { .name = "--dry-run", .needs = "--to-server|--to-origin" } } },
	  "Cyrus mode: recreate a user's folders as they were at a run",
	  "Recreates under DIR the state of the last run, or of the run --at picks: RUN (a run\n"
	  "number or name) or the last run at or before TIME (UTC YYYY-mm-ddTHH:MM:SSZ, a day\n"
	  "YYYY-mm-dd: its last run, or @UNIXTIME), as for show: each folder in\n"
	  "DIR/spool/PARTITION/PATH with its cyrus.header, cyrus.index, cyrus.annotations and\n"
	  "every message file <uid>., byte for byte; the seen, subscription and sieve files in\n"
	  "DIR/conf and DIR/sieve. --folder NAME (internal name, e.g. user.jdoe.Sent) restores\n"
	  "only those folders. DIR is created, with its missing parents. Nothing is written\n"
	  "outside DIR; existing files are never overwritten; files are created mode 0600,\n"
	  "without owners or set-id bits.\n"
	  "--to-server puts the run back into a running Cyrus 3.x through its replication\n"
	  "protocol (sync_server, default port 2005), as an admin (--authname, default admin;\n"
	  "the password is the first line of --password-file): each folder with its UIDVALIDITY,\n"
	  "UIDs, flags, keywords, internal dates and the owner's \\Seen, modseqs raised above any\n"
	  "the server handed out; without --folder the whole user, with its subscriptions and\n"
	  "sieve scripts. A folder or user that exists and differs is refused before anything\n"
	  "is written (--beside SUFFIX restores beside it); one that holds exactly what the\n"
	  "restore writes is left as it is, so a second run completes an interrupted one.\n"
	  "--dry-run says what would be written. Several archives (users) are restored one\n"
	  "after the other, or N at a time with --jobs N, each on its own connection." },
	{ "compact", cmd_compact, 0,
	  { "ARCHIVE...", 1, -1, "expected one or more archives",
	    { { .name = "--keep-days", .value = "N", .missing = "a number of days" },
	      KEEP_RULE("--keep-last"), KEEP_RULE("--keep-hourly"), KEEP_RULE("--keep-daily"),
	      KEEP_RULE("--keep-weekly"), KEEP_RULE("--keep-monthly"),
	      { .name = "--force" }, { .name = "--dry-run" } } },
	  "Cyrus mode: rewrite archives keeping only what retained runs need",
	  "Retains the newest run and the last run of each UTC day of the last N days (--keep-days,\n"
	  "default 30), or instead, as borg prune, by rules: --keep-last N runs, and the newest run\n"
	  "of each of the N most recent hours, days, weeks (ISO) and months (UTC) holding a run\n"
	  "no earlier rule kept (--keep-hourly, --keep-daily, --keep-weekly, --keep-monthly; the\n"
	  "oldest run too when fewer periods exist). Keeps the retained runs' manifests, the\n"
	  "folder meta copies, links and per-user files they use and every message a retained\n"
	  "index references. An archive is rewritten when its live share is below a threshold of\n"
	  "80% that rises one point per week since its last compaction (so at least every 20\n"
	  "weeks), or always with --force. The new archive is written beside the old one,\n"
	  "fsynced and renamed over it. --dry-run prints each run, kept (and by which rule) or\n"
	  "dropped, and whether the archive would be rewritten, and writes nothing." },
	{ "verify", cmd_verify, 0,
	  { "ARCHIVE...", 1, -1, "expected one or more archives", { { NULL } } },
	  "check Cyrus archives: gzip, tar, message SHA1s, names, sidecar",
	  "Reads each archive whole and checks every gzip member's CRC, the tar framing, that\n"
	  "every files/<sha1> entry hashes to its name, that entry names are safe (relative, no\n"
	  "'..', no entry below a symlink, no link pointing outside), that the last run is\n"
	  "complete and that the sidecar index agrees with the archive. An archive without a\n"
	  "complete run (empty, or cut before its first run ended) is a problem. Each problem is\n"
	  "named on stderr, one line each; the exit status is 1 when any archive has one. A\n"
	  "missing or unreadable sidecar is a note (derived data): verify, show and restore\n"
	  "never write beside an archive; reindex or the next backup writes the sidecar. Needs\n"
	  "no configuration or journal." },
	{ "reindex", cmd_reindex, 0,
	  { "ARCHIVE", 1, 1, "expected one archive", { { NULL } } },
	  "rebuild an archive's sidecar index from the archive alone",
	  "Scans the archive and writes a new sidecar (ARCHIVE with .tar.gz replaced by .idx):\n"
	  "temporary file, fsync, rename. An incomplete run at the end is left out (the next\n"
	  "backup cuts it). Refused while a backup writes to the archive." },
	{ "show", cmd_show, 0,
	  { "ARCHIVE", 1, 1, "expected one archive", { OPT_AT } },
	  "show an archive's runs, or one run's folders, messages and bytes",
	  "Without --at: one line per run (number, name, UTC time, entries, bytes). With --at\n"
	  "RUN (a run number or name) or TIME (UTC YYYY-mm-ddTHH:MM:SSZ, a day YYYY-mm-dd: its\n"
	  "last run, or @UNIXTIME), as for restore: the folders alive at that run, the messages\n"
	  "stored, the archive's data bytes up to it and the live share: the bytes of the\n"
	  "newest copy of every entry at that run over all bytes stored up to it (what a\n"
	  "compaction would keep, roughly)." },
	{ "snapshot", cmd_snapshot, 0,
	  { "MIRROR DIR", 2, 2, "expected a mirror and a snapshot directory",
	    { { .name = "--kind", .value = "KIND", .missing = "auto, btrfs or reflink" },
	      { .name = "--keep-days", .value = "N", .missing = "a number of days" },
	      KEEP_RULE("--keep-last"), KEEP_RULE("--keep-hourly"), KEEP_RULE("--keep-daily"),
	      KEEP_RULE("--keep-weekly"), KEEP_RULE("--keep-monthly"), { .name = "--dry-run" } } },
	  "take a read-only snapshot of a mirror, then prune the snapshots",
	  "Makes DIR/YYYYmmddTHHMMSSZ (UTC; .N for a second one in a second), a copy of MIRROR\n"
	  "as it is now: a read-only btrfs snapshot when MIRROR is a btrfs subvolume (constant\n"
	  "time, nothing copied), else a reflink copy (cp -a --reflink=always: xfs or btrfs; it\n"
	  "reads every directory but copies no data, and is writable: guard DIR by its\n"
	  "permissions); --kind btrfs or reflink insists on one. It is\n"
	  "made under a hidden name, synced and renamed, so DIR never lists a partial one. With\n"
	  "a rule, the snapshots in DIR the rules do not keep are then removed, with compact's\n"
	  "rules: --keep-days N (the last snapshot of each UTC day of the last N days), or as\n"
	  "borg prune --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly;\n"
	  "the newest always stays. Without a rule nothing is removed. --dry-run says what it\n"
	  "would take and keep or remove. Each snapshot is a full copy of the mirror: restoring\n"
	  "a run is copying from it (rsync -a DIR/NAME/ROOT/ ROOT/). chjournal-rsync-mirror\n"
	  "--snapshot DIR runs this after each run. Needs no configuration or journal." },
	{ "help", cmd_help, 0,
	  { "[COMMAND]", 0, 1, NULL, { { NULL } } }, "show help for chjournal or a command", "" },
	{ NULL, NULL, 0, { NULL, 0, 0, NULL, { { NULL } } }, NULL, NULL },
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

/* Where agent_error and agent_warn go when not to stderr (agent_set_sink). */
static agent_sink_fn sink_fn;
static void *sink_ctx;

void
agent_set_sink(agent_sink_fn fn, void *ctx, agent_sink_fn *old_fn, void **old_ctx)
{
	if (old_fn != NULL)
		*old_fn = sink_fn;
	if (old_ctx != NULL)
		*old_ctx = sink_ctx;
	sink_fn = fn;
	sink_ctx = ctx;
}

/* One line, to the sink or to stderr (in one write: lines of several
 * threads do not mix). */
static void
say(int error, const char *fmt, va_list ap)
{
	char line[4096];
	int n;

	n = vsnprintf(line, sizeof line, fmt, ap);
	if (n < 0)
		line[0] = '\0';
	if (sink_fn != NULL) {
		sink_fn(sink_ctx, error, line);
		return;
	}
	fprintf(stderr, "chjournal: %s\n", line);
}

int
agent_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(1, fmt, ap);
	va_end(ap);
	return EXIT_ERROR;
}

void
agent_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(0, fmt, ap);
	va_end(ap);
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
	if (c != NULL) {
		char usage[512];

		fprintf(stderr, "usage: %s\n", agent_usage_line(c, usage, sizeof usage));
	}
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
		agent_error("%s", cs->err.msg);
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

char *
agent_usage_line(const struct agent_command *c, char *buf, size_t size)
{
	char args[400];

	cmdline_usage(&c->args, args, sizeof args);
	snprintf(buf, size, "chjournal %s%s%s", c->name, args[0] != '\0' ? " " : "", args);
	return buf;
}

int
agent_arg_timeout(const char *cmd, const struct cmdline *args, unsigned *timeout)
{
	const char *v = cmdline_value(args, "--timeout");
	char *end;
	unsigned long t;

	if (v == NULL)
		return 0;
	t = strtoul(v, &end, 10);
	if (*end != '\0' || end == v || v[0] == '-' || t == 0 || t > 86400) {
		agent_usage_error(cmd, "bad --timeout '%s': seconds from 1 to 86400", v);
		return -1;
	}
	*timeout = (unsigned)t;
	return 0;
}

int
agent_arg_at(const char *cmd, const struct cmdline *args, struct runsel *sel)
{
	const char *v = cmdline_value(args, "--at");
	struct chj_error e;

	if (v != NULL && runsel_parse(sel, v, &e) < 0) {
		agent_usage_error(cmd, "%s", e.msg);
		return -1;
	}
	return 0;
}

int
agent_arg_run(const char *cmd, const struct cmdline *args, const char **run_id)
{
	const char *v = cmdline_value(args, "--run");

	if (v != NULL && *v == '\0') {
		agent_usage_error(cmd, "--run needs a run id (as `begin --print-run-id` prints it)");
		return -1;
	}
	*run_id = v;
	return 0;
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
	struct cmdline args;
	struct chj_error e;
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
	if (cmdline_parse(&cmd->args, argc - i, argv + i, &args, &e) < 0) {
		if (e.code == CHJ_ERR_INVALID)
			return agent_usage_error(cmd->name, "%s", e.msg);
		return agent_error("%s", e.msg);
	}
	/* --from: the work is another host's, nothing is opened here; --pulls:
	 * the files of a backup directory */
	if (((cmd->flags & FROM_NEEDS_NOTHING) && cmdline_has(&args, "--from")) ||
	    ((cmd->flags & PULLS_NEEDS_NOTHING) && cmdline_has(&args, "--pulls"))) {
		rc = cmd->run(&a, &args);
		goto done;
	}
	if (cmd->flags & (NEEDS_CONFIG | NEEDS_JOURNAL)) {
		a.config_file = config_choose_file(a.config_file);
		if (config_load(&a.cfg, a.config_file) < 0) {
			rc = agent_error("%s", a.cfg.err.msg);
			goto done;
		}
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
	rc = cmd->run(&a, &args);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == EXIT_OK)
			rc = agent_error("cannot write output: %s", strerror(errno));
	}
done:
	cmdline_free(&args);
	journal_free(a.journal);
	if (a.have_config)
		config_free(&a.cfg);
	return rc;
}

/* A count of --keep-*: 1 to max; -1 (usage error printed) when bad. */
static int
keep_count(const struct cmdline *args, const char *cmd, const char *opt, unsigned max,
    unsigned *out)
{
	const char *v = cmdline_value(args, opt);
	char *end;
	unsigned long d;

	if (v == NULL)
		return 0;
	d = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || v[0] == '-' || d == 0 || d > max) {
		agent_usage_error(cmd, "%s '%s': expected 1 to %u", opt, v, max);
		return -1;
	}
	*out = (unsigned)d;
	return 0;
}

int
agent_prune_options(const struct cmdline *args, const char *cmd, struct prune_rules *r)
{
	if (keep_count(args, cmd, "--keep-days", 36500, &r->keep_days) < 0 ||
	    keep_count(args, cmd, "--keep-last", 100000, &r->last) < 0 ||
	    keep_count(args, cmd, "--keep-hourly", 100000, &r->hourly) < 0 ||
	    keep_count(args, cmd, "--keep-daily", 100000, &r->daily) < 0 ||
	    keep_count(args, cmd, "--keep-weekly", 100000, &r->weekly) < 0 ||
	    keep_count(args, cmd, "--keep-monthly", 100000, &r->monthly) < 0)
		return -1;
	return 0;
}
