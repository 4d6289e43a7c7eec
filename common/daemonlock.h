/* daemonlock.h: the lock file "<journal>.lock" that a running chjournald
 * holds (flock, exclusive) with its pid inside. The agent probes it to know
 * whether a daemon is journaling; a daemon killed with SIGKILL releases it. */
#ifndef CHJ_DAEMONLOCK_H
#define CHJ_DAEMONLOCK_H

#include <stddef.h>
#include <sys/types.h>

/* Takes the lock and writes our pid. Returns the fd to keep open, or -1 with
 * err filled (another daemon: its pid is named). */
int daemonlock_acquire(const char *journal, char *err, size_t errlen);

/* Takes over the lock through fd, a descriptor inherited across an exec (a
 * restart in place): fd must be the lock file at its path, and hold its
 * lock; our pid is written again. Returns fd, or -1 with err filled (fd is
 * left open). */
int daemonlock_adopt(const char *journal, int fd, char *err, size_t errlen);

/* Rewrites our pid into the lock file (after a fork). Returns 0 or -1. */
int daemonlock_write_pid(int fd);

/* Returns 1 when fd (from daemonlock_acquire) is still the lock file at its
 * path, 0 when the file was removed or replaced, -1 on error. */
int daemonlock_is_current(const char *journal, int fd);

/* Returns 1 (running, *pid set), 0 (no daemon), -1 (err filled). */
int daemonlock_probe(const char *journal, pid_t *pid, char *err, size_t errlen);

#endif
