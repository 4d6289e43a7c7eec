/* openfiles.h: the files under the roots that are open for writing now, found
 * through /proc and /sys: a file whose content can change without any inotify
 * or fanotify event (writes through a shared writable mapping, native AIO, a
 * loop device or a swap file on it) is still listed when `begin` journals
 * these. Read-only opens and private mappings are not open for writing. */
#ifndef CHJ_OPENFILES_H
#define CHJ_OPENFILES_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct config;

struct openfiles {
	char **paths;            /* under a root, not excluded, no sync cookie;
	                          * sorted bytewise, no duplicates (owned) */
	size_t npaths, cap_paths;
	unsigned long processes; /* processes whose files were read */
	unsigned long denied;    /* processes whose files could not be read
	                          * (another user's, when not root) */
	unsigned long foreign;   /* processes of another mount namespace (a
	                          * container) holding a file for writing on the
	                          * file system of a root under a name that is not
	                          * that file's here (a bind mount): it may be a
	                          * file under a root, under another name */
	unsigned long unnamed;   /* processes holding a file open for writing
	                          * (a descriptor, a mapping that may write) on
	                          * a root's file system that /proc does not
	                          * name: too long to give, or a name through a
	                          * bind mount of a root's that no longer leads
	                          * to the file (mounts changed during the
	                          * scan); it may be under a root */
	int sys_errno;           /* /sys/block could not be read (loop devices
	                          * unchecked): its errno, else 0 */
	struct chj_error err;    /* CHJ_ERR_NOMEM, or CHJ_ERR_SYS: /proc could not
	                          * be read, nothing was checked */
};

/* openfiles_scan() flags */
#define OPENFILES_MAPS_TEXT 0x1  /* read /proc/PID/maps as text even where the
                                  * PROCMAP_QUERY ioctl (Linux 6.11) is there,
                                  * as on older kernels (for tests) */

/* Finds every file under cfg's roots open for writing now: descriptors open
 * O_WRONLY or O_RDWR in every process but skip (0: none), in each of its
 * descriptor tables (a thread may have one of its own), read through a live
 * thread when its first one has exited; shared mappings
 * that may write their file ("rw-s", "-w-s", or a read-only shared mapping
 * of a file opened for writing, which mprotect() can make writable), also
 * after their descriptor's close; the backing file of each writable loop
 * device; swap files. Deleted files, sockets, pipes and anonymous inodes are
 * not files under a root. A process that exits during the scan is not an
 * error; one whose files cannot be read is counted in denied, one whose
 * names cannot be matched in foreign, one holding a file it cannot name in
 * unnamed. A
 * file held through another place that shows a root's files (a bind mount
 * of its file system, in our mount namespace) is kept under the root's
 * name. Many processes are read on several
 * threads. of is zeroed first. Returns 0, or -1 with of->err
 * set (openfiles_free() of either way). */
int openfiles_scan(struct openfiles *of, const struct config *cfg, pid_t skip, int flags);
void openfiles_free(struct openfiles *of);

/* One line of /proc/PID/maps, parsed. */
struct openfiles_map {
	unsigned long start, end;
	int shared;              /* "s": a shared mapping */
	int shared_write;        /* "rw-s" or "-w-s": writable now */
	unsigned major, minor;   /* the device of the mapped file */
	unsigned long inode;
	const char *path;        /* the name field (into the line), NULL if none;
	                          * as the kernel writes it: a newline is "\012",
	                          * an unlinked file ends in " (deleted)" */
	size_t pathlen;
};

/* Parses one line (len bytes, without its newline). The name may hold spaces.
 * Returns 0, or -1 when the line does not have the maps layout. */
int openfiles_parse_maps_line(const char *line, size_t len, struct openfiles_map *m);

#endif
