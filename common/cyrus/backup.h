/* backup.h: the Cyrus backup: which users a consumer's window of the
 * journal marks as changed, and for each of them one run appended to the
 * user's archive DIR/<user>.tar.gz: the meta files of every folder whose
 * meta files are not as archived (read under the locks a Cyrus reader
 * takes), every message whose GUID the archive lacks (checked against its
 * SHA1), the folder-name links, the per-user files and the run's manifest.
 * A user with nothing new gets no run. A user that fails keeps its archive's
 * last complete run, and the others go on.
 *
 * Nothing here prints: what happens on the way (a changed path no user owns
 * that could not be read, a torn tail cut, each user's outcome) goes to the
 * caller's callback; errors stay in the handle (error.h). Opening a run of
 * the consumer and committing it is the caller's: a backup only reads the
 * window it is given.
 *
 *	cyrus_backup_open(&b, &opts, cfg, &e);
 *	cyrus_backup_window_users(b, journal, cfg, after_seq, &users);
 *	    (or cyrus_backup_all_users for a full run, or names of one's own)
 *	failed = cyrus_backup_users(b, &users, seq);
 *	cyrus_backup_free(b);
 */
#ifndef CHJ_CYRUS_BACKUP_H
#define CHJ_CYRUS_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "array.h"
#include "error.h"

struct changeset;
struct config;
struct journal;

#define CYRUS_BACKUP_LOCK_TIMEOUT_MS 30000
/* From this many users on, the mailbox list is read once for all of them
 * rather than once per user (each read runs Cyrus's cyr_dbtool). */
#define CYRUS_BACKUP_BULK_USERS 32

/* The totals of a backup so far. */
struct cyrus_backup_stats {
	unsigned long users;            /* users tried */
	unsigned long users_failed;
	unsigned long runs;             /* runs written */
	unsigned long folders_changed;  /* folders whose meta files were stored */
	unsigned long messages;         /* messages stored */
	uint64_t bytes;                 /* their bytes */
};

enum cyrus_backup_event_kind {
	CYRUS_BACKUP_PATH_SKIPPED,  /* path: a changed path whose user cannot be known
	                             * (error says why); it is not archived */
	CYRUS_BACKUP_TAIL_CUT,      /* path: an archive whose torn tail (an interrupted
	                             * run) of bytes_cut bytes was cut off */
	CYRUS_BACKUP_USER_DONE,     /* user: backed up; wrote_run 0 when nothing was new */
	CYRUS_BACKUP_USER_FAILED,   /* user: failed (error says why); its archive keeps
	                             * its last complete run */
};

/* What the callback is told; valid during the call only. */
struct cyrus_backup_event {
	enum cyrus_backup_event_kind kind;
	const char *user;
	const char *path;
	int64_t bytes_cut;
	int wrote_run;
	const struct chj_error *error;
	const struct cyrus_backup_stats *stats;     /* the totals so far */
};

typedef void (*cyrus_backup_cb)(void *ctx, const struct cyrus_backup_event *ev);

struct cyrus_backup_opts {
	const char *imapd_conf;     /* Cyrus's configuration */
	const char *to;             /* the archive directory (created, 0700, when missing) */
	const char *toolsdir;       /* Cyrus's programs (cyr_dbtool); NULL: where the
	                             * packages put them. Without one the mailbox list is
	                             * read from the cyrus.header files. */
	int lock_timeout_ms;        /* 0: CYRUS_BACKUP_LOCK_TIMEOUT_MS */
	cyrus_backup_cb cb;         /* NULL: nothing is told */
	void *ctx;                  /* cb's */
};

struct cyrus_backup;

/* Reads opts->imapd_conf, checks that every place Cyrus keeps a user's state
 * (each partition, configdirectory, sievedir) lies under a root of cfg (its
 * changes could not be known otherwise), creates opts->to. Returns 0 and
 * *out (free with cyrus_backup_free), or -1 with e and no handle. cfg must
 * outlive the handle. */
int cyrus_backup_open(struct cyrus_backup **out, const struct cyrus_backup_opts *opts,
    const struct config *cfg, struct chj_error *e);
void cyrus_backup_free(struct cyrus_backup *b);
/* The last error of a function below that returned -1. */
const struct chj_error *cyrus_backup_error(const struct cyrus_backup *b);
const struct cyrus_backup_stats *cyrus_backup_stats(const struct cyrus_backup *b);

/* The users of a backup are a struct strvec (array.h) of their names. */

/* Adds every user owning a mailbox (a full run) to users. 0 or -1. */
int cyrus_backup_all_users(struct cyrus_backup *b, struct strvec *users);
/* Adds the users cs's changed and deleted paths belong to (mailbox files,
 * per-user files in the config directory, sieve scripts) to users; a path that
 * belongs to nobody (server files) adds none, one whose owner cannot be
 * read is told (CYRUS_BACKUP_PATH_SKIPPED) and passed over. 0 or -1. */
int cyrus_backup_changed_users(struct cyrus_backup *b, const struct changeset *cs,
    struct strvec *users);
/* The same for the window of journal j after after_seq (changeset_build
 * with cfg): 0, or -1 when the window cannot be read completely. */
int cyrus_backup_window_users(struct cyrus_backup *b, struct journal *j, const struct config *cfg,
    int64_t after_seq, struct strvec *users);

/* Appends a run to the archive of each user of users (strvec_sort_unique'd),
 * recording seq (the journal seq the window ends at; 0 none) in its
 * manifest; tells each user's outcome as it goes. Returns how many users
 * failed, or -1 when none could be tried (the mailbox list unreadable). */
int cyrus_backup_users(struct cyrus_backup *b, const struct strvec *users, int64_t seq);

#endif
