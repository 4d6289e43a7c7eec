/* daemon.h: chjournald's own header, shared by the files of the daemon
 * (main.c: options, set-up and the loop; sink.c, mount-events.c, flush.c,
 * reload.c, restart.c): the state of the running daemon and what each file
 * lends the others. Not a library interface: every function logs its own
 * failures (log.h). */
#ifndef CHJ_DAEMON_H
#define CHJ_DAEMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "consumer.h"
#include "journal.h"
#include "livestatus.h"
#include "statebuf.h"

struct handover;
struct watcher_file_id;
struct watcher_sink;

#define HEARTBEAT_MS 5000           /* refresh last_flush when idle */
/* how the daemon opens its journal, every time */
#define DAEMON_JOURNAL_FLAGS (JOURNAL_CREATE | JOURNAL_WRITER)

/* The running daemon: one, made by main() and handed to every function
 * below. */
struct daemon {
	struct config cfg;
	const char *config_file;
	struct journal *journal;
	struct pending *pending;
	struct watcher *watcher;
	struct linkset *links;          /* fanotify: multiply-linked files known */
	struct mountwatch *mounts;      /* NULL: mounts are not followed */
	struct livestatus_writer *live; /* the figures as they are now (NULL: none) */
	int64_t journal_error_since;    /* unix time the journal last failed; 0: fine */
	char journal_error[256];
	struct consumers consumers;
	int lock_fd;
	int sig_fd;
	int verbosity;
	time_t started;
	int64_t last_flush_ms;          /* monotonic */
	time_t last_error_log;
	unsigned long flushes;
	unsigned long rescans_recorded;  /* every rescan record, whatever its cause */
	int flush_failing;
	int journal_lost;               /* removed, and not made again yet */
	int mounts_dirty;               /* a directory moved: mounts may have moved with it */
	int lock_lost;                  /* its lock file removed, not taken again yet */
	char *unwatched_roots;          /* as last written to meta (NULL: not yet) */
	int64_t crawl_started_ms;       /* monotonic; 0 once "ready" is logged */
	int64_t last_flush_time;        /* unix time of the last flush written */
	dev_t journal_dev;              /* identity of the journal file we opened */
	ino_t journal_ino;
	char exe[PATH_MAX];             /* the program file, executed again by SIGUSR2 */
	const char *pidfile;            /* NULL: none */
	const char *logfile;            /* --log-file, NULL: none */
	int use_syslog;
};

static inline int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Formats a unix time as local "YYYY-MM-DDTHH:MM:SS" for the log. */
static inline char *
local_time_str(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	strftime(buf, size, "%Y-%m-%dT%H:%M:%S", localtime_r(&tt, &tm));
	return buf;
}

/* ---- sink.c: the watcher's sink (struct watcher_sink, ctx a struct daemon) ---- */

/* A path changed (JF_* flags): into pending. -1 when out of memory (said). */
int sink_change(void *ctx, const char *path, unsigned flags);

/* A rescan of path from since is recorded (logged, counted). 0, or -1. */
int sink_rescan(void *ctx, const char *path, int64_t since, const char *reason);

/* A sync cookie appeared: the mount table checked first, then into pending. */
int sink_cookie(void *ctx, const char *name);

/* fanotify: a file written through a name outside the roots. Always 0. */
int sink_outside_write(void *ctx, const struct watcher_file_id *id);

/* Follows the journal's names of hard-linked files (fanotify only). */
void refresh_links(struct daemon *d);

/* ---- mount-events.c: the mount table and the NFS exports ---- */

/* 1 when the mount table changed since it was last compared (POLLPRI). */
int mount_table_signalled(struct daemon *d);

/* mountwatch callbacks (ctx a struct daemon): while running, the path is
 * journaled as replaced and watched again; at start, only journaled. */
int mount_changed(void *ctx, const char *path);
int mount_changed_while_down(void *ctx, const char *path);

/* Compares the mount table with the last one; clears d->mounts_dirty. */
void check_mounts(struct daemon *d);

/* Names the roots the kernel NFS server exports (log, meta). */
void check_nfs_exports(struct daemon *d);

/* ---- flush.c: writing the journal ---- */

/* Remembers which file the journal is, to notice it being removed. */
void note_journal_identity(struct daemon *d);

/* Publishes the figures as they are now in the status file (livestatus.h). */
void publish_status(struct daemon *d, enum livestatus_state state);

/* What the loop is doing now, for publish_status(). */
enum livestatus_state current_state(struct daemon *d);

/* Writes what pending holds and the figures in one transaction. 0, or -1
 * when the journal cannot be written (the changes stay in memory, said). */
int flush(struct daemon *d);
int flush_unsynced(struct daemon *d);

/* Writes the roots, the backend, the pid and the start time to the meta.
 * 0, or -1 logged. */
int write_static_meta(struct daemon *d);

/* ---- reload.c: SIGHUP ---- */

/* The key `group` applied to the journal, status and cursors (a failure is
 * logged, and retried at the next reload). */
void apply_group(struct daemon *d);

/* Says so when root i, just added, is missing. */
void note_missing_root(struct daemon *d, size_t i);

/* Reads the configuration file again into nc (what: "reload", "restart").
 * 0, or -1 (refused, logged; nothing to free). */
int load_new_config(struct daemon *d, struct config *nc, const char *what);

/* Puts nc in place of the running configuration (d takes it over). */
void apply_config(struct daemon *d, struct config *nc);

/* SIGHUP: the log reopened, the configuration read again and applied. */
void reload(struct daemon *d);

/* ---- restart.c: restart in place (SIGUSR2) ---- */

/* SIGUSR2. Returns only when it did not restart: 0 (the daemon goes on, the
 * reason logged), or -1 when it cannot go on. */
int restart_in_place(struct daemon *d);

/* The program file SIGUSR2 executes again, into buf ("" when unknown). */
void program_path(const char *argv0, char *buf, size_t size);

/* The watcher handed over by the previous process (ho, its state b), when
 * the state is this daemon's; NULL with e filled when not (CHJ_ERR_REFUSED:
 * another process's, journal's, roots or excludes, or descriptor;
 * CHJ_ERR_CORRUPT: malformed; CHJ_ERR_NOMEM). */
struct watcher *adopt_handover(struct daemon *d, const struct watcher_sink *sink,
    struct handover *ho, struct statebuf *b, struct chj_error *e);

/* ---- main.c ---- */

/* The start-up crawl is done: logged, d->crawl_started_ms cleared. */
void log_ready(struct daemon *d);

#endif
