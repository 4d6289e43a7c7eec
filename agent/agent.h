/* agent.h: what every chjournal subcommand shares: the command table entry,
 * the per-invocation context, error reporting and output of path lists. */
#ifndef CHJ_AGENT_H
#define CHJ_AGENT_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "consumer.h"
#include "journal.h"

/* Exit statuses */
#define EXIT_OK    0
#define EXIT_ERROR 1
#define EXIT_USAGE 2

/* Command flags: what agent.c sets up before calling the command. */
#define NEEDS_CONFIG  0x1
#define NEEDS_JOURNAL 0x2    /* implies NEEDS_CONFIG */
#define JOURNAL_RO    0x4    /* with NEEDS_JOURNAL: opened read-only, the command
                              * never writes it (monitoring by a `group` member) */

struct agent {
	const char *config_file;
	struct config cfg;
	struct journal *journal;
	int have_config;
};

struct agent_command {
	const char *name;
	int (*run)(struct agent *a, int argc, char **argv);
	int flags;
	const char *usage;       /* arguments after the command name */
	const char *summary;     /* one line */
	const char *help;        /* full description for `chjournal help CMD` */
};

/* The subcommands, one file each (agent/cmd-NAME.c). */
int cmd_abort(struct agent *, int, char **);
int cmd_backup(struct agent *, int, char **);
int cmd_begin(struct agent *, int, char **);
int cmd_check(struct agent *, int, char **);
int cmd_commit(struct agent *, int, char **);
int cmd_compact(struct agent *, int, char **);
int cmd_consumers(struct agent *, int, char **);
int cmd_forget(struct agent *, int, char **);
int cmd_help(struct agent *, int, char **);
int cmd_list(struct agent *, int, char **);
int cmd_query(struct agent *, int, char **);
int cmd_restore(struct agent *, int, char **);
int cmd_status(struct agent *, int, char **);
int cmd_sync(struct agent *, int, char **);
int cmd_verify(struct agent *, int, char **);
int cmd_reindex(struct agent *, int, char **);
int cmd_show(struct agent *, int, char **);

extern const struct agent_command agent_commands[];
const struct agent_command *agent_find_command(const char *name);

/* Prints "chjournal: MESSAGE" on stderr. Returns EXIT_ERROR. */
int agent_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "chjournal CMD: MESSAGE" and the usage line. Returns EXIT_USAGE. */
int agent_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens the consumer directory and validates the name; prints the error. */
int agent_open_consumers(struct agent *a, struct consumers *cs, const char *name, int create);

/* Waits until the daemon has journaled every change made before the call:
 * a cookie file in each root, each waited for in the journal. Returns 0
 * (synced), 1 (no daemon runs: not synced), -1 (error printed). */
int agent_sync(struct agent *a, unsigned timeout_seconds);

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
/* Prints why op on name was refused: code is a CONSUMER_RUN_* refusal, st
 * the state found, run_id the run asked for (or NULL). Returns EXIT_ERROR. */
int agent_run_refused(const char *name, const struct consumer_state *st, int code,
    const char *run_id, enum agent_run_op op);
/* Parses "--at RUN" at argv[*i] for cmd (archive/runsel.h's forms): 1
 * parsed (into *sel), 0 not this option, -1 no or a bad value (usage error
 * printed). */
struct runsel;
int agent_opt_at(const char *cmd, int argc, char **argv, int *i, struct runsel *sel);
/* Parses "--run ID" at argv[*i] for cmd: 1 parsed (into *run_id), 0 not this
 * option, -1 no value (usage error printed). */
int agent_opt_run(const char *cmd, int argc, char **argv, int *i, const char **run_id);

/* Says on stderr, for each root missing now, "root 'R' is missing (why):
 * what"; with after_seq >= 0 first records that the first run after it is
 * back lists all of it (changeset_cover_missing_root). Returns the number
 * of roots missing, or -1 (printed). */
int agent_missing_roots(struct agent *a, const char *what, int64_t after_seq);

/* Journals every file under the roots open for writing now (a writer the
 * kernel reports no event for: a shared mapping, native AIO, a loop device),
 * as a modified row after the begin point; cs (locked) gives the prune point.
 * Says on stderr what could not be checked. Returns 0, or -1 (printed) when
 * /proc cannot be read or the rows cannot be journaled: no run may be opened. */
int agent_journal_open_writers(struct agent *a, struct consumers *cs);

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

/* Simple option scanning shared by commands: returns 1 when argv[*i] is
 * "--name VALUE" or "--name=VALUE" (sets *val, advances *i). */
int agent_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

/* Parses "--timeout SECONDS" at argv[*i] for cmd: 1 parsed (into *timeout),
 * 0 not this option, -1 bad value (usage error printed). */
int agent_opt_timeout(const char *cmd, int argc, char **argv, int *i, unsigned *timeout);

#endif
