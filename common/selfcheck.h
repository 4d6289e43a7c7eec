/* selfcheck.h: `chjournald -t` and `chjournal check`: the configuration file
 * and the machine it runs on, checked before they break anything, like
 * `nginx -t`. Each finding is one line handed to the caller: what is fine,
 * what will degrade the journal (a warning), what will break the daemon or
 * the backups (an error). The caller prints; nothing here exits. */
#ifndef CHJ_SELFCHECK_H
#define CHJ_SELFCHECK_H

#include <stdint.h>

#include "error.h"

enum selfcheck_level {
	SELFCHECK_OK = 0,
	SELFCHECK_WARNING,   /* works, but worse than it could: fix when convenient */
	SELFCHECK_ERROR,     /* the daemon will not start, or backups will fail or miss */
};

/* Whose view: the daemon's (it creates the journal, watches the roots) or
 * the agent's (it writes cookies in the roots, and runs and cursors to the
 * journal and the consumers directory). */
enum selfcheck_role {
	SELFCHECK_DAEMON = 0,
	SELFCHECK_AGENT,
};

#define SELFCHECK_DIR_LIMIT      1000000UL    /* directories counted, then "more than" */
#define SELFCHECK_TIME_LIMIT_MS  10000U       /* and counting stops after this long */
#define SELFCHECK_FREE_WARN      (1024ULL * 1024 * 1024)   /* free space: warning below */
#define SELFCHECK_FREE_ERROR     (64ULL * 1024 * 1024)     /* error below */

struct selfcheck_opts {
	enum selfcheck_role role;
	unsigned long dir_limit;       /* 0: SELFCHECK_DIR_LIMIT */
	unsigned time_limit_ms;        /* 0: SELFCHECK_TIME_LIMIT_MS */
	uint64_t free_warn, free_error;  /* 0: the defaults above */
	const char *sysctl_dir;        /* NULL: "/proc/sys" (tests point elsewhere) */
	const char *proc_dir;          /* NULL: "/proc": who holds inotify instances */
	const char *nfs_table;         /* NULL: the kernel NFS server's tables */
};

/* Called with each finding, in order; msg is one line. */
typedef void (*selfcheck_fn)(void *ctx, enum selfcheck_level level, const char *msg);

/* Checks config_file and the machine:
 * - the configuration: every error of the file, one per line
 *   ("FILE:LINE: key 'K': why"); the machine is checked only when there is
 *   none;
 * - each root: a directory, readable, its file system and mount, a network
 *   file system, exported by the kernel NFS server, writable by the agent
 *   (its sync cookies), how many directories lie below it (a bounded walk:
 *   "more than N" past the limit), any that cannot be read;
 * - inotify: fs.inotify.max_user_watches against those directories and the
 *   watches other processes of this user hold, max_user_instances,
 *   max_queued_events; fanotify: what `backend = auto` would pick and why
 *   (each root's file system tried as the daemon does, as this process);
 * - the journal's directory (creatable, writable, free space and inodes),
 *   the journal file (readable, its schema and id, a daemon running on it,
 *   the group it should be readable by), the consumers directory and every
 *   cursor in it.
 * Returns the worst level found, or -1 with e (out of memory). */
int selfcheck_run(const char *config_file, const struct selfcheck_opts *o, selfcheck_fn fn,
    void *ctx, struct chj_error *e);

/* "ok", "warning", "error". */
const char *selfcheck_level_name(enum selfcheck_level level);

#endif
