/* stateperm.h: who may read the daemon's state. With the configuration key
 * `group`, members of that group read the journal (with its -wal and -shm),
 * the live status file, the lock files and the consumers' cursors, so that
 * `chjournal status` works for monitoring without root: files 0640 and
 * directories 0750, group-owned by it; without it they stay private (0600,
 * 0700; the status file 0644 inside the private directory). */
#ifndef CHJ_STATEPERM_H
#define CHJ_STATEPERM_H

#include <sys/types.h>

#include "config.h"
#include "error.h"

#define STATEPERM_FILE_SHARED  0640
#define STATEPERM_FILE_PRIVATE 0600
#define STATEPERM_DIR_SHARED   0750
#define STATEPERM_DIR_PRIVATE  0700

/* The mode a state file (a cursor, a lock file) is created with. */
mode_t stateperm_file_mode(const struct config *c);

/* Gives the file open on fd the configured group and mode (nothing without
 * `group`). Returns 0, or -1 with errno. */
int stateperm_fix_fd(const struct config *c, int fd);

/* Gives a directory of the state (the consumers directory) group gid and
 * mode 0750 (exactly: others lose their access): only one that belongs to
 * this user and others cannot write in.
 * Returns 0 (done, or not ours), or -1 with errno. */
int stateperm_share_dir(const char *dir, gid_t gid);

/* The daemon, at start and on reload: the journal's directory, the journal,
 * <journal>-wal, -shm, .status and .lock, the consumers directory, its .lock
 * and every cursor in it get the group and the shared modes when `group` is
 * set. When it is not and the journal was shared (its group may read it: the
 * key was removed), every one of them is made private again. A directory is
 * changed only when it belongs to this user and others cannot write in it
 * (never /tmp or /var); a symlink is never followed. Returns 0, or -1 with e
 * naming the first file that could not be changed (the others are done). */
int stateperm_apply(const struct config *c, struct chj_error *e);

#endif
