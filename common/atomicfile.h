/* atomicfile.h: the one way a durable file is replaced (git's lockfile is
 * the model): write DIR/.BASE.tmp (created O_EXCL with the mode, whatever
 * the umask; hidden, so that a listing of names never takes it for one),
 * fsync it, rename it over DIR/BASE, fsync the directory. A crash at any
 * step leaves the file as it was or as it is meant to be, never partial; a
 * stale temporary file of a crashed writer is removed by the next one.
 *
 *	struct atomicfile af;
 *	if (atomicfile_begin(&af, dest, 0600, &err) < 0) ...
 *	write(af.fd, ...)          (or write af.tmp by other means: SQLite)
 *	if (atomicfile_commit(&af, &err) < 0) ...   (rolls back on failure)
 *	atomicfile_rollback(&af)   (to give up; harmless after commit)
 */
#ifndef CHJ_ATOMICFILE_H
#define CHJ_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct atomicfile {
	char *dest;
	char *tmp;             /* DIR/.BASE.tmp */
	int fd;                /* open on tmp for writing; -1 once closed */
	/* set by the caller after begin: commit leaves the directory unsynced,
	 * so the rename may not survive a crash (the file then has its previous
	 * content, whole: the new one was fsynced before the rename); for a
	 * state whose loss costs nothing but time */
	int no_dir_sync;
};

/* Creates dest.tmp (removing a stale one). Returns 0, or -1 with e. */
int atomicfile_begin(struct atomicfile *af, const char *dest, mode_t mode, struct chj_error *e);
/* fsyncs and closes the temporary file (reopened if the caller closed it),
 * renames it over dest, fsyncs the directory (unless no_dir_sync). Returns 0, or -1 with e (the
 * temporary file removed, dest untouched). Frees af either way. */
int atomicfile_commit(struct atomicfile *af, struct chj_error *e);
/* atomicfile_commit without its fsyncs: the temporary file renamed over
 * dest, for a file that a crash may lose (a cache rebuilt when found
 * missing or empty) until the caller fsyncs it and its directory. Returns
 * 0, or -1 with e (rolled back). Frees af either way. */
int atomicfile_commit_unsynced(struct atomicfile *af, struct chj_error *e);
/* Removes the temporary file and frees af. */
void atomicfile_rollback(struct atomicfile *af);
/* begin + write of len bytes + commit. */
int atomicfile_write(const char *dest, const void *buf, size_t len, mode_t mode,
    struct chj_error *e);
/* The last steps for a file written whole by other means (a new archive):
 * fsync tmp, rename it over dest, fsync the directory. Returns 0, or -1
 * with e. */
int atomicfile_publish(const char *tmp, const char *dest, struct chj_error *e);
/* Makes a rename or unlink in the directory of path durable (fsync of the
 * directory). Returns 0, or -1 with errno. */
int atomicfile_sync_dir(const char *path);

#endif
