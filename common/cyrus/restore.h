/* restore.h: extraction of one run of a user's Cyrus archive into a
 * directory, from the archive alone: each folder's directory as
 * DIR/spool/PARTITION/RELPATH with its meta files and every message file
 * named <uid>. (a message in several folders hard-linked, as Cyrus's single
 * instance store had it), the per-user files under DIR/conf and DIR/sieve.
 * Everything the archive says is untrusted: every name is checked, every
 * directory below DIR opened without following symlinks, every file created
 * exclusively (mode 0600), so nothing is written outside DIR and nothing
 * there is overwritten. Nothing here prints. */
#ifndef CHJ_CYRUS_RESTORE_H
#define CHJ_CYRUS_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "archive/runsel.h"
#include "error.h"

struct cyrus_csync_event;

/* What a restore did. */
struct cyrus_restore_result {
	int64_t run;                /* the run restored (its number) */
	char run_name[32];
	char *user;                 /* the run's user, from its manifest (allocated) */
	unsigned long folders;      /* folders recreated */
	unsigned long messages;     /* message files (a hard link counts) */
	unsigned long files;        /* per-user files and links */
	uint64_t bytes;             /* data bytes written */
};

/* Recreates under to the run of archive that at picks (runsel.h). to and its
 * missing parents are created (mode 0700). With nfolders > 0 only the
 * folders named (Cyrus internal names, as the manifest has them) are
 * restored, and no per-user file; a name the run lacks is an error before
 * anything is created. Returns 0, or -1 with e: CHJ_ERR_NOTFOUND (no such
 * run or folder), CHJ_ERR_CORRUPT or CHJ_ERR_REFUSED (an unreadable or
 * unsafe archive), CHJ_ERR_ARCHIVE (it cannot be read), CHJ_ERR_SYS (DIR),
 * CHJ_ERR_NOMEM. res is filled as far as it got either way; free it with
 * cyrus_restore_result_free. */
int cyrus_restore(const char *archive, const char *to, const struct runsel *at,
    const char *const *folders, size_t nfolders, struct cyrus_restore_result *res, struct chj_error *e);
void cyrus_restore_result_free(struct cyrus_restore_result *res);

/* ---- into a running server, by Cyrus's replication protocol ----
 *
 * The run's folders are written into a running Cyrus 3.x through its
 * sync_server (restore-csync.c): each folder with its uniqueid, UIDVALIDITY,
 * UIDs, modseqs, flags, keywords, internal dates, its ACL and its
 * messages' annotations, as Cyrus's own replication
 * writes a replica; without folders named, also the user's subscriptions
 * and sieve scripts (the #sieve folder, the active one active) and its seen
 * state in other users' folders (its seen.db, each record under the
 * folder's uniqueid on the server: a derived one when that folder was
 * restored beside its delayed-delete copy). Folder annotations (METADATA)
 * and the ACL go with their folder, from its archived record
 * (CYRUS_FOLDER_RECORD: the mailboxes.db ACL) when the run has one (else
 * cyrus.header's ACL); the quota roots among the folders created are set
 * first, with their archived limits. Nothing that exists is overwritten: a
 * folder already on the server refuses the restore before anything is
 * written, unless it holds exactly what the restore would write (a second
 * run after an interrupted one): that one is left as it is. With beside,
 * the restore writes under new names instead (see cyrus_csync_opts). */

struct cyrus_csync_opts {
	const char *server;         /* HOST[:PORT] of the sync_server; NULL: the run's
	                             * origin, the host its manifest names (a run pulled
	                             * by backup --from), at origin_port */
	const char *origin_port;    /* NULL: the default, 2005 */
	const char *authname;       /* a Cyrus admin */
	const char *password;
	const struct runsel *at;
	const char *const *folders; /* internal names; none: the whole user */
	size_t nfolders;
	const char *beside;         /* NULL, or a suffix: the user (whole-user restore) or
	                             * each folder named becomes NAME<suffix>, beside what
	                             * exists */
	int dry_run;                /* plan and tell, write nothing */
	int timeout_ms;             /* each wait for the server; 0: 600 s */
	void (*cb)(void *ctx, const struct cyrus_csync_event *ev);
	void *ctx;
};

enum cyrus_csync_action {
	CYRUS_CSYNC_CREATE,         /* written (dry run: would be) */
	CYRUS_CSYNC_PRESENT,        /* already on the server, exactly as the restore writes it */
	CYRUS_CSYNC_EXISTS,         /* on the server, different: the restore is refused */
};

/* What the callback is told; valid during the call only. */
struct cyrus_csync_event {
	const char *archive;
	const char *user;           /* the archived user */
	int user_items;             /* 0: a folder (below); 1: the user's other state */
	/* a folder */
	const char *folder;         /* the archived internal name */
	const char *target;         /* the name on the server */
	enum cyrus_csync_action action;
	const char *uniqueid;       /* the uniqueid written */
	int new_uniqueid;           /* the archived one is taken on the server (the folder's
	                             * delayed-delete copy, or the original beside it) */
	uint64_t modseq_shift;      /* added to every modseq: the server had handed out
	                             * higher ones for this folder (its deleted copy) */
	unsigned long messages;     /* records (expunged ones included) */
	/* user items */
	unsigned long subscriptions, scripts;
	const char *active_script;  /* NULL: none */
	unsigned long seen;         /* records of the user's seen state in folders it does
	                             * not own (seen.db) */
	const char *seen_other;     /* the archived seen file when it is not a twoskip
	                             * database (seen_db: skiplist ...): not restored */
	/* a quota root (user_items 0, folder NULL): the root written and its
	 * limits, "STORAGE 5000 MESSAGE 300" ("" none) */
	const char *quota_root;
	const char *quota_limits;
	int dry_run;
};

struct cyrus_csync_result {
	char *user;                 /* the archived user (allocated) */
	char *target_user;          /* the user written (allocated) */
	char run_name[32];
	char *server;               /* the server written to, HOST[:PORT] (allocated) */
	unsigned long folders;      /* folders in the restore */
	unsigned long created;      /* written now */
	unsigned long present;      /* found already restored */
	unsigned long uploaded;     /* message files sent */
	uint64_t bytes;             /* their bytes */
};

/* Restores the run of archive that o->at picks into o->server (or its
 * origin: CHJ_ERR_INVALID when the run names none). Returns 0,
 * or -1 with e: CHJ_ERR_REFUSED (something exists: one line naming it; or
 * the server refused a write: the line says what was already written),
 * CHJ_ERR_NOTFOUND, CHJ_ERR_CORRUPT (the archive, or a malformed reply),
 * CHJ_ERR_ARCHIVE, CHJ_ERR_SYS (the connection), CHJ_ERR_INVALID. res is
 * filled as far as it got either way; free with cyrus_csync_result_free. */
int cyrus_csync_restore(const char *archive, const struct cyrus_csync_opts *o,
    struct cyrus_csync_result *res, struct chj_error *e);
void cyrus_csync_result_free(struct cyrus_csync_result *res);

/* Restores several archives (each a user) with up to jobs at once, each on
 * its own connection: res[i] and errs[i] for archives[i]; o->cb is called
 * from one thread at a time. Returns how many failed. */
int cyrus_csync_restore_many(char *const *archives, size_t n, int jobs,
    const struct cyrus_csync_opts *o, struct cyrus_csync_result *res, struct chj_error *errs);

#endif
