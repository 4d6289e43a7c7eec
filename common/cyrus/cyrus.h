/* cyrus.h: what chjournal knows of Cyrus IMAP's on-disk state: imapd.conf,
 * the mailbox list (from Cyrus's own tools), mailbox paths in both spool
 * layouts, cyrus.header, cyrus.index (minor versions 10 to 20) and the lock
 * a Cyrus reader takes. Nothing here prints or exits: functions return 0 or
 * -1 and leave a one-line message in the handle's err (or the caller's buf). */
#ifndef CHJ_CYRUS_H
#define CHJ_CYRUS_H

#include <stddef.h>
#include <stdint.h>

#define CYRUS_ERR_MAX 512

/* ---- imapd.conf ---- */

struct cyrus_partition {
	char *name;                 /* "default" */
	char *path;                 /* partition-default: /var/spool/cyrus/mail */
};

struct cyrus_conf {
	char *file;                 /* the imapd.conf read */
	char *configdirectory;
	char *sievedir;             /* default: /var/lib/cyrus/sieve (Debian: /var/spool/sieve) */
	char *lockpath;             /* mboxname_lockpath, default: configdirectory/lock */
	char *defaultpartition;
	struct cyrus_partition *partitions;
	size_t npartitions;
	int legacy_dirs;            /* mailbox_legacy_dirs */
	int hashimapspool;
	int fulldirhash;
	int unixhierarchysep;
	int virtdomains;            /* nonzero: refused by this version, see cyrus_conf_load */
	char err[CYRUS_ERR_MAX];
};

/* Reads the "key: value" lines of an imapd.conf. Returns 0 or -1 (err names
 * file and line). */
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
};

struct cyrus_mboxlist {
	struct cyrus_mailbox *v;
	size_t n;
	char err[CYRUS_ERR_MAX];
};

/* Fills l with the mailboxes of user (every folder, the "#sieve" one and the
 * DELETED.user.USER.* ones), or of every user when user is NULL, from
 * mailboxes.db as Cyrus's own tools dump it (run as the owner of the config
 * directory). Tombstones (mbtype 'd') are left out. Sorted by name. */
int cyrus_mboxlist_load(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user);
void cyrus_mboxlist_free(struct cyrus_mboxlist *l);

/* The user names (sorted, unique) owning mailboxes in the list. */
int cyrus_mboxlist_users(const struct cyrus_mboxlist *l, char ***users, size_t *n);

/* Which user a changed path (absolute) belongs to: a file of one of the
 * user's mailboxes (uuid or legacy layout; for uuid, from the directory's
 * cyrus.header), of the user's config files (seen, sub, ...) or of the user's
 * sieve directory. Returns 1 and sets *user (allocated), 0 when the path
 * belongs to no user (server files), -1 on error. */
int cyrus_user_of_path(const struct cyrus_conf *c, const char *path, char **user, char *err, size_t errlen);

/* The user's own files outside the spool, as absolute paths: the config
 * directory's per-user files (seen, sub, ...; conversations and counters
 * are left out: Cyrus rebuilds them) and the files of the user's sieve
 * directory. Only those that exist. */
int cyrus_user_files(const struct cyrus_conf *c, const struct cyrus_mboxlist *l,
    const char *user, char ***files, size_t *n, char *err, size_t errlen);

/* ---- cyrus.header ---- */

struct cyrus_header {
	char *name;                 /* N (3.x) or absent in 2.x: NULL */
	char *uniqueid;
	char *quotaroot;
	char *acl;
	char **flagnames;           /* user flag (keyword) names, bit N = flagnames[N] */
	size_t nflags;
	char err[CYRUS_ERR_MAX];
};

/* Parses a cyrus.header held in buf (both formats: the 2.x lines and the 3.x
 * dlist line). Returns 0 or -1. */
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
	struct cyrus_index_record *records;
	char err[CYRUS_ERR_MAX];
};

/* Parses a cyrus.index (or a 2.x cyrus.expunge, same format) held in buf:
 * minor versions 10 to 20, header and record CRC32s checked where the
 * version has them. A truncated or corrupt file is an error naming the
 * record. Returns 0 or -1. */
int cyrus_index_parse(struct cyrus_index *x, const void *buf, size_t len);
void cyrus_index_free(struct cyrus_index *x);

/* 1 when the record's message file exists in the spool (not UNLINKED). */
int cyrus_record_has_file(const struct cyrus_index_record *r);

/* ---- locking ---- */

struct cyrus_lock {
	int fd;
	char err[CYRUS_ERR_MAX];
};

/* Takes the shared lock a Cyrus reader of mailbox m takes (3.x: the lock file
 * under the lock path; legacy 2.x: fcntl on cyrus.header), waiting at most
 * timeout_ms. Returns 0 or -1. */
int cyrus_lock_mailbox(struct cyrus_lock *lk, const struct cyrus_conf *c, const struct cyrus_mailbox *m, int timeout_ms);
void cyrus_unlock(struct cyrus_lock *lk);

/* ---- names ---- */

/* Escapes a user name into a string safe as one file name (no '/', no
 * leading '.', no control bytes; reversible). Allocated. */
char *cyrus_user_file_name(const char *user);

#endif
