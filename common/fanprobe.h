/* fanprobe.h: whether the fanotify backend can watch a root, found the way
 * the daemon's backend (daemon/watch-fanotify.c) starts: the same
 * fanotify_init() flags, the same file system mark, a file handle opened
 * back. For `backend = auto` and for `chjournald -t`. */
#ifndef CHJ_FANPROBE_H
#define CHJ_FANPROBE_H

#include "error.h"

#include <stddef.h>
#include <sys/fanotify.h>

/* The events the backend marks every file system for. */
#define FANPROBE_EVENTS (FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | \
	FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR)

/* Why fanotify refused, for people: err from fanotify_init() (at_init) or
 * from a mark or a handle. A static string. */
const char *fanprobe_refusal(int err, int at_init);

/* Tries, as this process, what the backend does for root: fanotify_init()
 * (FAN_REPORT_DFID_NAME_TARGET, else FAN_REPORT_DFID_NAME), a file system
 * mark of root's file system, its fsid, a handle of root opened back.
 * Returns 0 (fanotify would watch it), or -1 with e (one line: CHJ_ERR_REFUSED
 * with the kernel's errno, CHJ_ERR_NOTFOUND or CHJ_ERR_SYS for root). */
int fanprobe_root(const char *root, struct chj_error *e);

#endif
