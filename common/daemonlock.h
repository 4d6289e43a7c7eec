/* daemonlock.h: the lock file "<journal>.lock" that a running chjournald
 * holds (flock, exclusive) with its pid inside. The agent probes it to know
 * whether a daemon is journaling; a daemon killed with SIGKILL releases it. */
#ifndef CHJ_DAEMONLOCK_H
#define CHJ_DAEMONLOCK_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Takes the lock and writes our pid. Returns the fd to keep open, or -1 with
 * e set: CHJ_ERR_REFUSED when another daemon holds it (its pid is named),
 * CHJ_ERR_SYS, CHJ_ERR_NOMEM. */
int daemonlock_acquire(const char *journal, struct chj_error *e);

/* Takes over the lock through fd, a descriptor inherited across an exec (a
 * restart in place): fd must be the lock file at its path, and hold its
 * lock; our pid is written again. Returns fd, or -1 with e set (fd is left
 * open): CHJ_ERR_INVALID when fd is not the lock file, CHJ_ERR_REFUSED when
 * another process holds the lock, CHJ_ERR_SYS. */
int daemonlock_adopt(const char *journal, int fd, struct chj_error *e);

/* Rewrites our pid into the lock file (after a fork). Returns 0 or -1. */
int daemonlock_write_pid(int fd);

/* Returns 1 when fd (from daemonlock_acquire) is still the lock file at its
 * path, 0 when the file was removed or replaced, -1 on error. */
int daemonlock_is_current(const char *journal, int fd);

/* Returns 1 (running, *pid set), 0 (no daemon), -1 (e set: CHJ_ERR_SYS,
 * CHJ_ERR_NOMEM). */
int daemonlock_probe(const char *journal, pid_t *pid, struct chj_error *e);

#endif
