/* internal.h: helpers shared by the files of common/cyrus/ and not part of
 * its interface: Cyrus's dlist text format (mailboxes.db
 * values, the 3.x cyrus.header line), reading a small file, mailbox-name and
 * path rules. */
#ifndef CHJ_CYRUS_INTERNAL_H
#define CHJ_CYRUS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bigend.h"
#include "cyrus/cyrus.h"

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
 * Returns 0, or -1 with e set: CHJ_ERR_CORRUPT for malformed text,
 * CHJ_ERR_NOMEM. */
int dl_parse(struct dl *d, const char *buf, size_t len, size_t *used, struct chj_error *e);
void dl_free(struct dl *d);
/* The member of kvlist d named key, or NULL. */
const struct dl *dl_get(const struct dl *d, const char *key);
/* The atom of member key of kvlist d, or NULL. */
const char *dl_atom(const struct dl *d, const char *key);
/* The number in member key of kvlist d: 1 and *v, or 0 when it is missing
 * or not a decimal number (up to 2^64 - 1). */
int dl_num(const struct dl *d, const char *key, uint64_t *v);

/* A dlist writer: values appended to a growing buffer in the form Cyrus's
 * own parser (imap/dlist.c dlist_parse) reads: an atom where Cyrus's
 * imparse_isatom would take one, else a "quoted string" of quotable
 * characters, else a {N+} literal; members separated by one space. A
 * failed allocation is remembered (oom) and the text is then not to be
 * used; dlw_free frees it either way. */
struct dlw {
	char *buf;
	size_t len, cap;
	int sep;              /* a space goes before the next value */
	int oom;
};

void dlw_free(struct dlw *w);
/* Raw bytes, no separator handling (a command word, CRLF). */
void dlw_raw(struct dlw *w, const void *p, size_t n);
/* A string value (a key is one too); dlw_map may hold any byte. */
void dlw_str(struct dlw *w, const char *s);
void dlw_map(struct dlw *w, const void *p, size_t n);
void dlw_num(struct dlw *w, uint64_t v);
/* A value already in dlist form (a mailboxes.db record), written as it is. */
void dlw_text(struct dlw *w, const char *text);
/* A system flag (\\Seen): written as it is, as Cyrus prints and reads them. */
void dlw_flag(struct dlw *w, const char *flag);
/* "KEY value" in a kvlist */
void dlw_kstr(struct dlw *w, const char *key, const char *s);
void dlw_knum(struct dlw *w, const char *key, uint64_t v);
/* Opens "(" or "%(" (after an optional key), closes ")". */
void dlw_open(struct dlw *w, const char *key, int kv);
void dlw_close(struct dlw *w);

/* ---- twoskip databases (twoskip.c) ---- */

typedef int (*cyrus_twoskip_cb)(void *ctx, const char *key, size_t klen, const char *val,
    size_t vlen);
/* Calls cb for every committed record of the twoskip database held in
 * buf[0..len), in key order. Returns 0, -1 with e set (CHJ_ERR_CORRUPT: not
 * a twoskip file, a bad CRC, a pointer past the end), or the first nonzero
 * value cb returns (e untouched: cb says why). */
int cyrus_twoskip_foreach(const void *buf, size_t len, cyrus_twoskip_cb cb, void *ctx,
    struct chj_error *e);
/* Splits an annotation record's value (cyrus.annotations, annotations.db)
 * into the annotation's bytes (pointing into val), its modseq and whether
 * it is a tombstone. Returns 0, or -1 when val is too short for what it
 * announces. */
int cyrus_annot_value(const char *val, size_t vlen, const char **data, size_t *dlen,
    uint64_t *modseq, int *deleted);

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
