/* agent.h: what every chjournal subcommand shares: the command table entry,
 * the per-invocation context, error reporting and output of path lists. */
#ifndef CHJ_AGENT_H
#define CHJ_AGENT_H

#include <stdint.h>
#include <stdio.h>

#include "cmdline.h"
#include "config.h"
#include "consumer.h"
#include "openfiles.h"
#include "journal.h"
#include <sys/types.h>

#include "source.h"

/* The Cyrus backup's consumer and imapd.conf unless told (backup, serve) */
#define BACKUP_DEFAULT_CONSUMER "cyrus-archive"
#define BACKUP_DEFAULT_IMAPD_CONF "/etc/imapd.conf"

/* Exit statuses */
#define EXIT_OK    0
#define EXIT_ERROR 1
#define EXIT_USAGE 2

/* Command flags: what agent.c sets up before calling the command. */
#define NEEDS_CONFIG  0x1
#define NEEDS_JOURNAL 0x2    /* implies NEEDS_CONFIG */
#define JOURNAL_RO    0x4    /* with NEEDS_JOURNAL: opened read-only, the command
                              * never writes it (monitoring by a `group` member) */
#define FROM_NEEDS_NOTHING 0x8  /* with --from among its arguments, neither the
                                 * configuration nor the journal is opened */
#define PULLS_NEEDS_NOTHING 0x10 /* the same with --pulls (status on a backup host) */

struct agent {
	const char *config_file;
	struct config cfg;
	struct journal *journal;
	int have_config;
};

struct agent_command {
	const char *name;
	int (*run)(struct agent *a, const struct cmdline *args);
	int flags;
	struct cmdline_spec args; /* its operands and options: parsing and usage */
	const char *summary;     /* one line */
	const char *help;        /* full description for `chjournal help CMD` */
};

/* The subcommands, one file each (agent/cmd-NAME.c). */
int cmd_abort(struct agent *, const struct cmdline *);
int cmd_backup(struct agent *, const struct cmdline *);
int cmd_begin(struct agent *, const struct cmdline *);
int cmd_check(struct agent *, const struct cmdline *);
int cmd_commit(struct agent *, const struct cmdline *);
int cmd_compact(struct agent *, const struct cmdline *);
int cmd_consumers(struct agent *, const struct cmdline *);
int cmd_forget(struct agent *, const struct cmdline *);
int cmd_help(struct agent *, const struct cmdline *);
int cmd_list(struct agent *, const struct cmdline *);
int cmd_query(struct agent *, const struct cmdline *);
int cmd_restore(struct agent *, const struct cmdline *);
int cmd_status(struct agent *, const struct cmdline *);
int cmd_sync(struct agent *, const struct cmdline *);
int cmd_verify(struct agent *, const struct cmdline *);
int cmd_reindex(struct agent *, const struct cmdline *);
int cmd_show(struct agent *, const struct cmdline *);
int cmd_snapshot(struct agent *, const struct cmdline *);
int cmd_serve(struct agent *, const struct cmdline *);

extern const struct agent_command agent_commands[];
const struct agent_command *agent_find_command(const char *name);

/* Sends the lines of agent_error (error 1) and agent_warn (error 0) to fn
 * instead of stderr, until set back (fn NULL: stderr); the previous sink
 * into *old_fn, *old_ctx when not NULL. */
typedef void (*agent_sink_fn)(void *ctx, int error, const char *line);
void agent_set_sink(agent_sink_fn fn, void *ctx, agent_sink_fn *old_fn, void **old_ctx);

/* Prints "chjournal: MESSAGE" on stderr (or to the sink). Returns EXIT_ERROR. */
int agent_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "chjournal CMD: MESSAGE" and the usage line. Returns EXIT_USAGE. */
int agent_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct prune_rules;
/* Fills r from --keep-days and the borg-like --keep-last, --keep-hourly,
 * --keep-daily, --keep-weekly, --keep-monthly of command cmd (each 1 to
 * 100000, days to 36500); what is not given stays as it is. Returns 0, or
 * -1 with the usage error printed. */
int agent_prune_options(const struct cmdline *args, const char *cmd, struct prune_rules *r);

/* Opens the consumer directory and validates the name; prints the error. */
int agent_open_consumers(struct agent *a, struct consumers *cs, const char *name, int create);

/* Waits until the daemon has journaled every change made before the call:
 * a cookie file in each root, each waited for in the journal. Returns 0
 * (synced), 1 (no daemon runs: not synced), -1 (error printed). On 0,
 * *cookie_seq (if not NULL) is the greatest seq of the cookies, each
 * journaled by a commit synced to disk: every row up to it is durable
 * (rows after it may not be yet); -1 when no root took a cookie. */
int agent_sync(struct agent *a, unsigned timeout_seconds, int64_t *cookie_seq);
/* agent_sync, calling placed(ctx) once the cookies are placed, before it
 * waits for them (not when no daemon runs: it returns 1 then); a placed()
 * that fails (-1, printed) ends the sync with -1. */
int agent_sync_with(struct agent *a, unsigned timeout_seconds, int64_t *cookie_seq,
    int (*placed)(void *ctx), void *ctx);

/* A consumer's run (run.c, on common/consumer-run.c's protocol). */
enum agent_run_op { AGENT_RUN_BEGIN, AGENT_RUN_LIST, AGENT_RUN_COMMIT, AGENT_RUN_ABORT };

/* Opens a run for consumer name (sync first, as `begin`): b->replace says
 * whether an open run is taken over (else refused, saying how to proceed);
 * fills b's outputs and st (st->open_run_id: the new run's id; a takeover is
 * told on stderr). Returns 0 or -1 (printed). */
int agent_run_begin(struct agent *a, const char *name, unsigned timeout,
    struct consumer_begin *b, struct consumer_state *st);
/* Commits (as `commit`) or aborts (as `abort`) name's open run; with run_id
 * not NULL only when it is that run. Returns 0 or -1 (printed). An abort
 * without run_id and without an open run only warns. */
int agent_run_commit(struct agent *a, const char *name, const char *run_id);
int agent_run_abort(struct agent *a, const char *name, const char *run_id);
/* `commit` (commit 1) or `abort` (0) as the command line args asks: the
 * consumer's open run here, or with --from on the host serve runs on.
 * Returns the exit status (errors printed). */
int agent_end_run(struct agent *a, const char *cmd, const struct cmdline *args, int commit);
/* Prints why op on name was refused: code is a CONSUMER_RUN_* refusal, st
 * the state found, run_id the run asked for (or NULL). Returns EXIT_ERROR. */
int agent_run_refused(const char *name, const struct consumer_state *st, int code,
    const char *run_id, enum agent_run_op op);
/* The journal side of a local source (source.h) on a's journal: begin (as
 * `begin`, with its sync and the files open for writing), commit, abort
 * and list (as `list -0`), their lines captured: errors into the error,
 * warnings to the note. */
void agent_runner(struct agent *a, struct source_runner *r);
/* `list NAME [--run RUN_ID]` for what, to out: EXIT_OK or EXIT_ERROR (printed). */
int agent_list(struct agent *a, const char *name, const char *run_id, enum source_list_what what,
    int nul, FILE *out);

/* A `chjournal serve` on another host, through ssh (remote.c). */
struct agent_remote {
	struct source *src;         /* the remote source: its operations are serve's */
	char name[256];             /* HOST */
	pid_t pid;                  /* ssh */
	int rfd, wfd;
	FILE *errf;                 /* what ssh writes on stderr */
};
/* Starts ssh (CMD split at blanks; NULL: "ssh") [-p PORT] [USER@]HOST
 * chjournal serve, and says hello. Each wait for the host (an answer, or
 * room to send) lasts at most timeout_s seconds (0: AGENT_REMOTE_TIMEOUT),
 * after which the host is taken as hung: the request fails, ssh is ended.
 * EXIT_OK, or the exit status of a failure told in one line naming the
 * host. */
#define AGENT_REMOTE_TIMEOUT 600
int agent_remote_open(struct agent_remote *r, const char *spec, const char *ssh, int timeout_s);
/* ": LINE", the last line ssh wrote, when the connection broke; else "". */
void agent_remote_why(struct agent_remote *r, char *out, size_t len);
/* Ends the connection and waits for ssh. Returns rc, or EXIT_ERROR (told)
 * when rc was EXIT_OK and ssh did not exit 0. */
int agent_remote_close(struct agent_remote *r, int rc);
/* A remote source's note (a line of serve's): told as a warning. */
void agent_remote_note(void *ctx, const char *line);
/* Prints the open run of consumer name as r's serve lists it (what, as
 * `list` prints it): EXIT_OK, or an exit status (printed). */
int agent_print_remote_list(struct agent_remote *r, const char *name, const char *run_id,
    enum source_list_what what, int nul);
/* The values of options, checked (a usage error printed, -1, when bad; 0
 * when good or not given, the default kept): --timeout (1 to 86400 seconds),
 * --at (archive/runsel.h's forms), --run (a run id). */
struct runsel;
int agent_arg_timeout(const char *cmd, const struct cmdline *args, unsigned *timeout);
int agent_arg_at(const char *cmd, const struct cmdline *args, struct runsel *sel);
int agent_arg_run(const char *cmd, const struct cmdline *args, const char **run_id);
/* The usage line of cmd: "chjournal CMD OPERANDS [OPTIONS]". */
char *agent_usage_line(const struct agent_command *c, char *buf, size_t size);

/* Says on stderr, for each root missing now, "root 'R' is missing (why):
 * what"; with after_seq >= 0 first records that the first run after it is
 * back lists all of it (changeset_cover_missing_root). Returns the number
 * of roots missing, or -1 (printed). */
int agent_missing_roots(struct agent *a, const char *what, int64_t after_seq);

/* The files under the roots open for writing (a writer the kernel reports
 * no event for: a shared mapping, native AIO, a loop device): `begin` finds
 * them once its sync cookies are placed, while the daemon journals them
 * (agent_find_open_writers, into of: openfiles_free() it), and journals them
 * as modified rows after the begin point (agent_journal_open_writers; cs,
 * locked, gives the prune point). Each says on stderr what could not be
 * checked and returns 0, or -1 (printed) when /proc cannot be read or the
 * rows cannot be journaled: no run may be opened. */
int agent_find_open_writers(struct agent *a, struct openfiles *of);
int agent_journal_open_writers(struct agent *a, struct consumers *cs, const struct openfiles *of);

/* Records a rescan of every root from the daemon's last flush: the cover for
 * changes made while no daemon was running. Returns 0 or -1 (printed). */
int agent_cover_daemon_gap(struct agent *a);

/* Path output: NUL-terminated with nul, else newline-terminated; a path with
 * a newline cannot be written without nul: refused, named on stderr, counted
 * in *refused. Returns -1 on a write error (EPIPE, full disk). */
int agent_print_path(FILE *out, const char *path, int nul, unsigned long *refused);

/* Writes s as a JSON string. Bytes that are not UTF-8 become U+FFFD: returns
 * 0 then (the caller adds the exact bytes in hex), 1 when lossless. */
int agent_json_string(FILE *out, const char *s);
/* Writes the bytes of s as a JSON string of hex digits. */
void agent_json_hex(FILE *out, const char *s);

/* The times of the text outputs (status, consumers, query) are ISO 8601 in
 * UTC, "YYYY-MM-DDTHH:MM:SSZ"; --json gives unix times.
 * agent_time_str: a time that may not have happened: "never" for t <= 0.
 * agent_utc_str: any time, 0 as 1970-01-01T00:00:00Z. */
char *agent_time_str(int64_t t, char *buf, size_t size);
char *agent_utc_str(int64_t t, char *buf, size_t size);
/* Parses a time given on the command line: "@UNIXTIME", "YYYY-MM-DDTHH:MM:SSZ"
 * or "YYYY-MM-DD" (its midnight), UTC. Returns 0, or -1 when malformed. */
int agent_parse_time(const char *s, int64_t *t);

#endif
