/* path.h: byte-string path helpers shared by the daemon and the agent.
 * Paths are bytes: any byte but NUL is valid, '/' separates names. Only the
 * display helpers here escape anything; nothing assumes UTF-8. */
#ifndef CHJ_PATH_H
#define CHJ_PATH_H

#include <stddef.h>

/* Prefix of the sync cookies the agent creates directly in each root; such
 * files are never journaled, listed or archived. */
#define PATH_COOKIE_PREFIX ".chjournal-cookie."

/* Returns a newly allocated "dir/name" (caller frees), or NULL on ENOMEM. */
char *path_join(const char *dir, const char *name);
/* The directory part of path ("/" for "/x" or a name without '/'), newly
 * allocated, or NULL on ENOMEM. */
char *path_dirname(const char *path);

/* Creates the directory holding file (one level, mode 0700) if missing.
 * Returns 0, or -1 with errno set. */
int path_mkdir_parent(const char *file);

/* Returns 1 when path equals dir or lies below it (component boundary). */
int path_is_under(const char *path, const char *dir);

/* Returns 1 when the final component of path has exactly the shape of a
 * sync cookie (PATH_COOKIE_PREFIX, a pid, '.', 16 hex digits). Only such a
 * name directly in a root is a cookie (config_is_cookie_path): below a root
 * it is ordinary data. */
int path_is_cookie_name(const char *name);

/* Writes a printable, C-escaped form of path into buf (always NUL-terminated,
 * truncated with "..." when too long). Returns buf. */
char *path_display(const char *path, char *buf, size_t bufsize);

/* Returns 1 when path is one line of list, a newline-joined list of paths
 * (as kept in the journal's meta: roots, unwatched roots). NULL is empty. */
int path_list_contains(const char *list, const char *path);

/* Compares two paths bytewise (memcmp order, the order of `LC_ALL=C sort`). */
int path_cmp(const void *a, const void *b);

/* Undoes, in place, the octal escapes (\NNN) the kernel writes for space,
 * tab, newline and backslash in /proc/self/mountinfo and the NFS export
 * tables. */
void path_unescape_octal(char *s);

#endif
