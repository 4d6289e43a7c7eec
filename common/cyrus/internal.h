/* internal.h: helpers shared by the files of common/cyrus/ and not part of
 * its interface: error formatting, Cyrus's dlist text format (mailboxes.db
 * values, the 3.x cyrus.header line), reading a small file, mailbox-name and
 * path rules. */
#ifndef CHJ_CYRUS_INTERNAL_H
#define CHJ_CYRUS_INTERNAL_H

#include <stddef.h>

#include "cyrus/cyrus.h"

void cyrus_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- dlist ---- */
enum { DL_ATOM, DL_LIST, DL_KVLIST };

struct dl {
	int kind;
	char *s;              /* DL_ATOM: the atom, quoted string or literal */
	char **keys;          /* DL_KVLIST: key of v[i] */
	struct dl *v;         /* DL_LIST, DL_KVLIST: the members */
	size_t n;
};

/* Parses one dlist value from buf[0..len); *used gets the bytes consumed.
 * Returns 0, or -1 with a message in err. */
int dl_parse(struct dl *d, const char *buf, size_t len, size_t *used, char *err, size_t errlen);
void dl_free(struct dl *d);
/* The member of kvlist d named key, or NULL. */
const struct dl *dl_get(const struct dl *d, const char *key);
/* The atom of member key of kvlist d, or NULL. */
const char *dl_atom(const struct dl *d, const char *key);

/* ---- small files (meta.c) ---- */

/* Files larger than this are not read by cyrus_read_small (EFBIG) */
#define CYRUS_SMALL_MAX (1 << 20)
/* Reads the whole file at path into *buf (allocated, NUL-terminated, *len
 * bytes). Returns 0, or -1 with errno set. */
int cyrus_read_small(const char *path, char **buf, size_t *len);

/* ---- names and paths (paths.c) ---- */

/* Cyrus's dir_hash_c (lib/util.c): the hash directory letter of name. */
char cyrus_dir_hash_c(const char *name, int full);
/* The user ("user01", '^' turned back into '.') owning internal mailbox name
 * ("user.user01.Sent", "DELETED.user.user01.X.6B04C37D"), or NULL. Allocated. */
char *cyrus_name_user(const char *name);
/* The legacy (name-based) directory of internal name, relative to its
 * partition: "[h/]user/user01/Sent". Allocated. */
char *cyrus_legacy_relpath(const struct cyrus_conf *c, const char *name);

#endif
