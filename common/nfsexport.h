/* nfsexport.h: which roots the kernel NFS server exports. Its clients write
 * through file handles (open_by_handle_at), which inotify does not hear once
 * a file's name has left the dentry cache: the daemon names such roots (log,
 * status) and `chjournald -t` warns about them. */
#ifndef CHJ_NFSEXPORT_H
#define CHJ_NFSEXPORT_H

#include <stddef.h>

#include "config.h"

/* The export tables read by default, NULL-terminated. */
extern const char *const nfsexport_tables[];

/* Appends to text (newline-joined, NUL-terminated, at most size bytes) each
 * root that an exported path of table (exports(5)-like lines, octal escapes)
 * is, lies above or lies below, once. A table that cannot be read adds
 * nothing. */
void nfsexport_roots(const struct config *cfg, const char *table, char *text, size_t size);

#endif
