/* longpath.h: opening, stat()ing and naming paths of any length. The kernel
 * refuses a path of PATH_MAX bytes or more in one call (ENAMETOOLONG); these
 * helpers resolve such a path in pieces shorter than PATH_MAX, each relative
 * to a descriptor of the directory the previous piece reached. A path shorter
 * than PATH_MAX costs exactly the one call it would cost without them. */
#ifndef CHJ_LONGPATH_H
#define CHJ_LONGPATH_H

#include <sys/stat.h>

/* openat(dirfd, path, flags) for a path of any length (absolute, or relative
 * to dirfd, which may be AT_FDCWD). flags apply to the last component only:
 * the directories on the way are followed as the kernel follows them in one
 * path (symlinks included). Returns the descriptor, or -1 with errno. */
int longpath_openat(int dirfd, const char *path, int flags);

/* fstatat(dirfd, path, st, flags) for a path of any length, as
 * longpath_openat(). Returns 0, or -1 with errno. */
int longpath_fstatat(int dirfd, const char *path, struct stat *st, int flags);

/* The absolute path of the directory open at fd (any kind of descriptor,
 * O_PATH too), however long: readlink() of /proc/self/fd/N, and where the
 * kernel cannot name it in PATH_MAX bytes, the names found by reading each
 * parent up to a directory it can name. Returns a newly allocated string
 * (caller frees), or NULL with errno (ENOENT: the directory was removed). */
char *longpath_of_dir(int fd);

#endif
