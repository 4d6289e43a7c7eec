/* handover.h: chjournald's restart in place (SIGUSR2). The running process
 * re-executes its program file (a new binary after an upgrade) keeping two
 * descriptors open across the exec, the journal's lock file (its flock goes
 * along: no second daemon can start meanwhile) and the watcher's inotify or
 * fanotify descriptor (the events of the hand-over wait in its queue), with
 * its state in a memfd; the environment variable HANDOVER_ENV names the
 * three for the next process. restart.c decides what the state holds and
 * whether the next process takes it. */
#ifndef CHJ_HANDOVER_H
#define CHJ_HANDOVER_H

#include <stddef.h>

#include "error.h"
#include "statebuf.h"

#define HANDOVER_ENV "CHJ_HANDOVER"     /* "state=N lock=N watch=N" */

struct handover {
	int state_fd;          /* a memfd holding the state */
	int lock_fd;           /* the journal's lock file, locked */
	int watch_fd;          /* the watcher's kernel descriptor */
};

/* The next process: reads and unsets HANDOVER_ENV. Returns 1 (h filled, the
 * descriptors made close-on-exec again), 0 (not set: a normal start), or -1
 * with e filled (CHJ_ERR_CORRUPT: malformed; h has -1 where nothing could be
 * read). */
int handover_take_env(struct handover *h, struct chj_error *e);

/* Reads the whole state from fd into b (statebuf_init_read) and closes fd.
 * Returns 0, or -1 with e filled (CHJ_ERR_SYS, CHJ_ERR_NOMEM, CHJ_ERR_CORRUPT:
 * not a file, or shorter than its size). */
int handover_read_state(int fd, struct statebuf *b, struct chj_error *e);

/* Re-executes exe with argv, keeping lock_fd and watch_fd open and passing
 * the len bytes of state in a memfd. Returns only when it failed: -1 with e
 * filled (CHJ_ERR_SYS), the descriptors close-on-exec again and the
 * environment as it was. */
int handover_exec(const char *exe, char *const argv[], int lock_fd, int watch_fd,
    const void *state, size_t len, struct chj_error *e);

/* Returns 1 when fd is an open anonymous descriptor of this kind, as
 * /proc/self/fd names it after "anon_inode:" ("inotify", "[fanotify]"). */
int handover_fd_is(int fd, const char *kind);

#endif
