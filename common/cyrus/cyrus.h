/* cyrus.h: what chjournal knows of Cyrus IMAP's on-disk state: imapd.conf,
 * the mailbox list (from Cyrus's own tools), mailbox paths in both spool
 * layouts, cyrus.header, cyrus.index (minor versions 10 to 20) and the lock
 * a Cyrus reader takes. Nothing here prints or exits: functions return 0 or
 * -1 and fill the handle's err (or the struct chj_error the caller gives,
 * error.h): a code to decide on (CHJ_ERR_SYS with the errno, CHJ_ERR_CORRUPT
 * for a malformed Cyrus file, CHJ_ERR_INVALID for a malformed imapd.conf or
 * argument, CHJ_ERR_NOMEM, ...) and a one-line message. */
#ifndef CHJ_CYRUS_H
#define CHJ_CYRUS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---- imapd.conf ---- */

struct cyrus_partition {
	char *name;                 /* "default" */
	char *path;                 /* partition-default: /var/spool/cyrus/mail */
};

struct cyrus_conf {
	char *file;                 /* the imapd.conf read */
	char *configdirectory;
	char *sievedir;             /* Cyrus's default: /usr/sieve (Debian's imapd.conf: /var/lib/cyrus/sieve) */
	char *lockpath;             /* mboxname_lockpath, default: configdirectory/lock */
	char *defaultpartition;
	struct cyrus_partition *partitions;
	size_t npartitions;
	int legacy_dirs;            /* mailbox_legacy_dirs */
	int hashimapspool;
	int fulldirhash;
	int unixhierarchysep;
	int virtdomains;            /* nonzero: refused by this version, see cyrus_conf_load */
	char *mboxlist_db;          /* mailboxes.db backend: "twoskip" (default), "skiplist" ... */
	char *mboxlist_db_path;     /* default: configdirectory/mailboxes.db */
	char *annotation_db;        /* annotations.db backend: "twoskip" (default) */
	char *annotation_db_path;   /* default: configdirectory/annotations.db */
	char *quota_db;             /* quota roots: "quotalegacy" (default: one file per root,
	                             * configdirectory/quota/H/ROOT), or a database backend */
	char *toolsdir;             /* Cyrus's programs (cyr_dbtool); NULL: the first of
	                             * /usr/lib/cyrus/bin, /usr/libexec/cyrus-imapd,
	                             * /usr/lib/cyrus-imapd that has cyr_dbtool. The caller
	                             * may set it (malloc'ed; cyrus_conf_free frees it). */
	struct chj_error err;       /* why cyrus_conf_load failed */
};

/* Reads the "key: value" lines of an imapd.conf ('#' comments, blank lines,
 * @include). Keys it does not know are ignored. Refuses virtdomains and a
 * file without configdirectory or without the default partition's
 * partition-NAME. Returns 0 or -1 (err names file and line: CHJ_ERR_SYS
 * when the file cannot be read, CHJ_ERR_INVALID when it is malformed or
 * refused, CHJ_ERR_NOMEM); call cyrus_conf_free either way. */
int cyrus_conf_load(struct cyrus_conf *c, const char *file);
void cyrus_conf_free(struct cyrus_conf *c);
/* The directory of partition name, or NULL. */
const char *cyrus_partition_path(const struct cyrus_conf *c, const char *name);

/* ---- the mailbox list ---- */

struct cyrus_mailbox {
	char *name;                 /* internal name, '.'-separated: "user.user01.Sent" */
	char *uniqueid;
	char *partition;
	char *mbtype;               /* mailboxes.db letters: "e", "el", "f", "d" ... */
	char *path;                 /* absolute data directory (spool) */
	char *relpath;              /* path relative to its partition directory */
	char *user;                 /* owner's user name ("user01"), NULL if none */
	int deleted;                /* name starts "DELETED." (delayed delete) */
	char *record;               /* its mailboxes.db value, the dlist text cyr_dbtool
	                             * prints ("%(T e I ... A %(acl))"); NULL when the list
	                             * came from elsewhere (cyrus.header files, a pull) */
};

struct cyrus_mboxlist {
	struct cyrus_mailbox *v;
	size_t n;
	struct chj_error err;       /* why cyrus_mboxlist_load failed */
};

/* Fills l with the mailboxes of user (every folder, the "#sieve" one and the
 * DELETED.user.USER.* ones), or of every user when user is NULL, from
 * mailboxes.db as Cyrus's own tools dump it (run as the owner of the config
 * directory): `cyr_dbtool -C IMAPD.CONF DB MBOXLIST_DB show PREFIX` with the
 * 3.6 key prefixes "Nuser\x1fUSER" and "NDELETED\x1fuser\x1fUSER\x1f", so one
 * user costs what that user has. Tombstones (mbtype 'd') and shared
 * (non-user) mailboxes are left out. Without cyr_dbtool, from the
 * cyrus.header files of every partition (legacy names from the path, as
 * their header's name can be stale). Sorted by name. Returns 0 or -1 (err:
 * CHJ_ERR_SYS, CHJ_ERR_CORRUPT for a malformed entry or cyrus.header,
 * CHJ_ERR_INVALID for a bad user name, CHJ_ERR_NOMEM; CHJ_ERR_SYS too when
 * cyr_dbtool failed, errnum 0); free with cyrus_mboxlist_free either way. */
int cyrus_mboxlist_load(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user);
void cyrus_mboxlist_free(struct cyrus_mboxlist *l);

/* The user names (sorted, unique) owning mailboxes in the list. */
int cyrus_mboxlist_users(const struct cyrus_mboxlist *l, char ***users, size_t *n);

/* Which user a changed path (absolute) belongs to: a file of one of the
 * user's mailboxes (uuid or legacy layout; for uuid, from the directory's
 * cyrus.header), of the user's config files (seen, sub, ...) or of the user's
 * sieve directory. Returns 1 and sets *user (allocated), 0 when the path
 * belongs to no user (server files), -1 with e set on error (CHJ_ERR_SYS,
 * CHJ_ERR_NOMEM). */
int cyrus_user_of_path(const struct cyrus_conf *c, const char *path, char **user,
    struct chj_error *e);

/* The user's own files outside the spool, as absolute paths: the config
 * directory's per-user files (seen, sub, ...; conversations and counters
 * are left out: Cyrus rebuilds them) and the files of the user's sieve
 * directory. Only those that exist. Returns 0, or -1 with e set
 * (CHJ_ERR_SYS, CHJ_ERR_NOMEM). */
int cyrus_user_files(const struct cyrus_conf *c, const struct cyrus_mboxlist *l,
    const char *user, char ***files, size_t *n, struct chj_error *e);

/* The files of the user's quota roots (quota_db quotalegacy: one file per
 * root, configdirectory/quota/H/ROOT, H as Cyrus's dir_hash_c of ROOT):
 * those of the user's live folders in l that are roots, as absolute paths.
 * None with another quota_db (a database of every user's roots). Returns
 * 0, or -1 with e set (CHJ_ERR_NOMEM). */
int cyrus_user_quota_files(const struct cyrus_conf *c, const struct cyrus_mboxlist *l,
    const char *user, char ***files, size_t *n, struct chj_error *e);

/* ---- cyrus.header ---- */

struct cyrus_header {
	char *name;                 /* N (3.x) or absent in 2.x: NULL */
	char *uniqueid;
	char *quotaroot;
	char *acl;
	char **flagnames;           /* user flag (keyword) names, bit N = flagnames[N] */
	size_t nflags;
	struct chj_error err;       /* why cyrus_header_parse failed */
};

/* Parses a cyrus.header held in buf (both formats: the 2.x lines and the 3.x
 * dlist line). Returns 0 or -1 (err: CHJ_ERR_CORRUPT, CHJ_ERR_NOMEM). */
int cyrus_header_parse(struct cyrus_header *h, const void *buf, size_t len);
void cyrus_header_free(struct cyrus_header *h);

/* ---- cyrus.index ---- */

#define CYRUS_FLAG_ANSWERED  (1u << 0)
#define CYRUS_FLAG_FLAGGED   (1u << 1)
#define CYRUS_FLAG_DELETED   (1u << 2)
#define CYRUS_FLAG_DRAFT     (1u << 3)
#define CYRUS_FLAG_SEEN      (1u << 4)
#define CYRUS_FLAG_UNLINKED  (1u << 30)
#define CYRUS_FLAG_EXPUNGED  (1u << 31)

struct cyrus_index_record {
	uint32_t uid;
	uint32_t internaldate;
	uint32_t size;
	uint32_t system_flags;
	uint32_t user_flags[4];
	uint8_t guid[20];           /* SHA1 of the message file; all zero: none (old versions) */
	uint64_t modseq;
	/* minor versions 12 to 19 (else 0): what replication carries */
	uint32_t last_updated;
	uint32_t savedate;          /* v15+ */
	uint64_t cid;               /* v13+: the conversation (thread) id */
	uint64_t createdmodseq;     /* v16+ */
};

struct cyrus_index {
	uint32_t minor_version;
	uint32_t start_offset;
	uint32_t record_size;
	uint32_t num_records;
	uint32_t exists;
	uint32_t last_uid;
	uint32_t uidvalidity;
	uint64_t highestmodseq;
	/* minor versions 12 to 19 (else 0) */
	uint32_t last_appenddate, pop3_last_login, pop3_show_after, options;
	uint32_t recentuid, recenttime;
	uint32_t sync_crc, sync_crc_annot;
	uint64_t createdmodseq;     /* v16+ */
	struct cyrus_index_record *records;
	struct chj_error err;       /* why cyrus_index_parse failed */
};

/* Parses a cyrus.index (or a 2.x cyrus.expunge, same format) held in buf:
 * minor versions 10 to 20, header and record CRC32s checked where the
 * version has them. A truncated or corrupt file is an error naming the
 * record. Returns 0 or -1 (err: CHJ_ERR_CORRUPT, CHJ_ERR_NOMEM). */
int cyrus_index_parse(struct cyrus_index *x, const void *buf, size_t len);
void cyrus_index_free(struct cyrus_index *x);

/* 1 when the cyrus.index images a and b hold the same state: the same bytes
 * but for the header fields a read-only IMAP session rewrites. Cyrus 3.6's
 * SELECT (read-write) of a folder by its owner, when messages arrived since
 * the last one, sets recentuid to last_uid and recenttime to the time (the
 * next session's \Recent; RFC 9051 dropped it) and so the header's CRC;
 * nothing else changes. Only minor versions 12 to 19 (where those fields
 * are at 104 and 108), equal sizes, and headers whose CRCs are right
 * qualify; anything else, or any other byte differing, is 0 (a change). */
int cyrus_index_same_state(const void *a, size_t alen, const void *b, size_t blen);

/* The 40 lower-case hex digits of a GUID (the SHA1 of a message), NUL-ended. */
void cyrus_guid_hex(const uint8_t guid[20], char hex[41]);

/* A mailbox's meta files a backup keeps, in this order: cyrus.header,
 * cyrus.index, cyrus.annotations and a 2.x cyrus.expunge (cyrus.cache is
 * left to reconstruct). */
#define CYRUS_NMETA 4
#define CYRUS_META_HEADER 0
#define CYRUS_META_INDEX 1
#define CYRUS_META_EXPUNGE 3
extern const char *const cyrus_meta_names[CYRUS_NMETA];

/* The archive entry beside a folder's meta files that holds what
 * annotations.db and mailboxes.db say of it (folders/UNIQUEID/mailbox):
 * %([MBOXLIST <mailboxes.db value>] ANNOTATIONS (%(ENTRY e USERID u MODSEQ m
 * VALUE v) ...)). The backup writes it when either differs from the newest
 * archived copy (an empty list when the annotations were all removed;
 * MBOXLIST when the mailbox list came from mailboxes.db); the restore into
 * a server (restore-csync.c) sends the annotations in APPLY MAILBOX, and
 * uses MBOXLIST when present: the folder's type, modseq and ACL. */
#define CYRUS_FOLDER_RECORD "mailbox"

/* ---- folder annotations (annotations.db) ---- */

/* One mailbox-scope annotation (IMAP METADATA, RFC 5464) as Cyrus 3.6
 * keeps it in the global annotations.db (imap/annotate.c make_key): the key
 * "UNIQUEID\0ENTRY\0USERID\0" ("" userid: a /shared value; the folder
 * owner's /private values under the token "[.OwNeR.]"; server annotations
 * have an empty uniqueid), the value as make_entry writes it (length,
 * bytes, modseq, flags: a deleted one is a tombstone). */
struct cyrus_annot {
	char *mboxid;               /* the folder's uniqueid */
	char *entry;                /* "/comment", "/vendor/..." */
	char *userid;               /* "" shared, CYRUS_OWNER_TOKEN, or another user's id */
	uint64_t modseq;
	char *value;                /* NUL-ended; vlen bytes */
	size_t vlen;
};

#define CYRUS_OWNER_TOKEN "[.OwNeR.]"

struct cyrus_annots {
	struct cyrus_annot *v;      /* sorted by mboxid, entry, userid */
	size_t n, cap;
	struct chj_error err;
};

/* Reads the mailbox-scope annotations of the folders ids[0..nids) (sorted
 * by strcmp; ids NULL: of every folder) from annotations.db (c's
 * annotation_db_path; twoskip only) under the lock a Cyrus reader takes
 * (cyrus_lock_db), waiting at most timeout_ms. Tombstones and server
 * annotations are left out; no database is no annotations. Returns 0 or
 * -1 (err); free with cyrus_annots_free either way. */
int cyrus_annots_load(struct cyrus_annots *a, const struct cyrus_conf *c, const char *const *ids,
    size_t nids, int timeout_ms);
/* The same from an annotations.db image held in buf (for tests). */
int cyrus_annots_parse(struct cyrus_annots *a, const void *buf, size_t len, const char *const *ids,
    size_t nids);
/* Appends one (copied); 0 or -1 (out of memory). */
int cyrus_annots_add(struct cyrus_annots *a, const char *mboxid, const char *entry,
    const char *userid, uint64_t modseq, const char *value, size_t vlen);
/* Sorts a by mboxid, entry, userid. */
void cyrus_annots_sort(struct cyrus_annots *a);
void cyrus_annots_free(struct cyrus_annots *a);
/* The annotations of folder mboxid in sorted a: a->v[*first .. *first + return). */
size_t cyrus_annots_of(const struct cyrus_annots *a, const char *mboxid, size_t *first);
/* The folder record (CYRUS_FOLDER_RECORD) holding the folder's mailboxes.db
 * value mboxlist (its dlist text, or NULL: none) and annotations v[0..n):
 * "%(MBOXLIST %(T e ...) ANNOTATIONS (%(ENTRY e USERID u MODSEQ m VALUE v)
 * ...))\n", the owner's token kept (the restore writes the owner it
 * restores to). Allocated in *buf; 0 or -1 (out of memory). */
int cyrus_folder_record(const char *mboxlist, const struct cyrus_annot *v, size_t n, char **buf,
    size_t *len);

/* 1 when the record's message file exists in the spool (not UNLINKED). */
int cyrus_record_has_file(const struct cyrus_index_record *r);

/* ---- locking ---- */

struct cyrus_lock {
	int fd;                     /* cyrus.index, locked: read the index through it */
	int name_fd;                /* the name lock file under the lock path */
	int header_fd;              /* cyrus.header as it was when locked (2.x lock) */
	struct chj_error err;       /* why cyrus_lock_mailbox failed */
};

/* Takes the shared locks a Cyrus reader of mailbox m takes, in Cyrus's
 * order: a read (F_RDLCK) fcntl lock on the name lock file
 * (LOCKPATH/UNIQUEID.lock for a uuid mailbox, LOCKPATH/[h/]user/NAME/Sub.lock
 * for a legacy one; created, owned like the lock directory, when missing),
 * then on cyrus.header (what a 2.x reader locks), then on cyrus.index,
 * reopened if a repack renamed a new one over it meanwhile. Writers hold
 * the index lock exclusively, renames/deletes/repacks the name lock, so
 * while held, cyrus.index (read it through lk->fd), cyrus.header (read it
 * by path) and the message files the index references stay put. Waits at
 * most timeout_ms in all. Returns 0, or -1 with lk->err set (and nothing
 * held): CHJ_ERR_SYS with the errno (ETIMEDOUT when the time ran out),
 * CHJ_ERR_NOMEM. The locks are POSIX record locks: this process must not open and
 * close these files elsewhere while holding them (a close drops the lock). */
int cyrus_lock_mailbox(struct cyrus_lock *lk, const struct cyrus_conf *c, const struct cyrus_mailbox *m, int timeout_ms);
/* Releases what cyrus_lock_mailbox took (only after it returned 0). */
void cyrus_unlock(struct cyrus_lock *lk);
/* Opens the database at path (annotations.db) read-only under the lock a
 * Cyrus twoskip reader takes (lib/mappedfile.c mappedfile_readlock): a
 * shared fcntl lock on the whole file, reopened when a checkpoint renamed a
 * new file over it meanwhile. Writers (and checkpoints) hold it
 * exclusively. Returns the fd (close it to release), or -1 with errno
 * (ENOENT: no database) and err. */
int cyrus_lock_db(const char *path, int timeout_ms, struct chj_error *e);

/* ---- names ---- */

/* Escapes a user name into a string safe as one file name (no '/', no
 * leading '.', no control bytes; reversible): '%', '/', bytes below 0x20,
 * DEL and a leading '.' become %XX. Allocated; NULL for "" or ENOMEM. */
char *cyrus_user_file_name(const char *user);
/* The inverse of cyrus_user_file_name; NULL on a malformed name. Allocated. */
char *cyrus_user_from_file_name(const char *name);

/* ---- helpers (also used by tests) ---- */

/* 1 when m lives in the legacy name-based layout (mbtype 'l', or no uniqueid). */
int cyrus_mailbox_is_legacy(const struct cyrus_mailbox *m);
/* Sets m->path and m->relpath as Cyrus 3.6 computes them (mboxname_datapath)
 * from name, uniqueid, mbtype and partition. Returns 0, or -1 with e set
 * (CHJ_ERR_NOTFOUND: the partition is not in imapd.conf; CHJ_ERR_NOMEM). */
int cyrus_mailbox_set_path(const struct cyrus_conf *c, struct cyrus_mailbox *m,
    struct chj_error *e);
/* Header and record size of cyrus.index minor version v; -1 if unsupported. */
int cyrus_index_layout(uint32_t minor_version, uint32_t *header_size, uint32_t *record_size);

#endif
