/* backup.h: the Cyrus backup: for each user a window of the journal marks
 * as changed, one run appended to the user's archive DIR/<user>.tar.gz: the
 * meta files of every folder whose meta files are not as archived (read
 * under the locks a Cyrus reader takes), every message whose GUID the
 * archive lacks (its SHA1 checked against the GUID as it is stored), the
 * folder-name links, the per-user files and the run's manifest. A user with
 * nothing new gets no run. A user that fails keeps its archive's last
 * complete run, and the others go on.
 *
 * Everything is read through a source (source.h): this machine's spool and
 * journal, or a `chjournal serve` on another machine, alike. Nothing here
 * prints: what happens on the way (a torn tail cut, each user's outcome)
 * goes to the caller's callback, the source's own lines to its note; errors
 * stay in the handle (error.h).
 *
 *	cyrus_backup_open(&b, &opts, &e);        (opts.source: where to read)
 *	cyrus_backup_window(b, consumer, &res);  (the consumer's run: begin,
 *	                                          the users, commit or abort)
 *	    or cyrus_backup_users(b, &users, 0) for users of one's own
 *	cyrus_backup_free(b);
 */
#ifndef CHJ_CYRUS_BACKUP_H
#define CHJ_CYRUS_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "array.h"
#include "error.h"

struct source;

/* From this many users on, the mailbox list is read once for all of them
 * rather than once per user (each read runs Cyrus's cyr_dbtool). */
#define CYRUS_BACKUP_BULK_USERS 32

/* The totals of a backup so far. */
struct cyrus_backup_stats {
	unsigned long users;            /* users tried */
	unsigned long users_failed;
	unsigned long runs;             /* runs written */
	unsigned long folders_changed;  /* folders whose meta files were stored */
	unsigned long folders_same;     /* folders read because their meta files changed
	                                 * on disk, holding what the archive has (touched,
	                                 * or rewritten by a read-only session): none stored */
	unsigned long folders_annotated; /* folders whose record (mailboxes.db value,
	                                  * annotations) was stored */
	unsigned long messages;         /* messages stored */
	uint64_t bytes;                 /* their bytes */
};

enum cyrus_backup_event_kind {
	CYRUS_BACKUP_BEGUN,         /* cyrus_backup_window: the run is begun, users
	                             * users to back up */
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
	size_t users;
	int wrote_run;
	const struct chj_error *error;
	const struct cyrus_backup_stats *stats;     /* the totals so far */
};

typedef void (*cyrus_backup_cb)(void *ctx, const struct cyrus_backup_event *ev);

struct cyrus_backup_opts {
	struct source *source;      /* where the spool is read (not owned) */
	const char *to;             /* the archive directory (created, 0700, when missing) */
	const char *host;           /* recorded in each run's manifest as where its data
	                             * came from (NULL: this machine) */
	cyrus_backup_cb cb;         /* NULL: nothing is told */
	void *ctx;                  /* cb's */
};

struct cyrus_backup;

/* Creates opts->to. Returns 0 and *out (free with cyrus_backup_free), or -1
 * with e and no handle. The source must outlive the handle. */
int cyrus_backup_open(struct cyrus_backup **out, const struct cyrus_backup_opts *opts,
    struct chj_error *e);
void cyrus_backup_free(struct cyrus_backup *b);
/* The last error of a function below that returned -1. */
const struct chj_error *cyrus_backup_error(const struct cyrus_backup *b);
const struct cyrus_backup_stats *cyrus_backup_stats(const struct cyrus_backup *b);

/* Appends a run to the archive of each user of users (strvec_sort_unique'd),
 * recording seq (the journal seq the window ends at; 0 none) in its
 * manifest; tells each user's outcome as it goes. Returns how many users
 * failed, or -1 when the backup could not go on (the mailbox list
 * unreadable, the source gone: b's error says why; the users not reached
 * are not counted). */
int cyrus_backup_users(struct cyrus_backup *b, const struct strvec *users, int64_t seq);

/* What cyrus_backup_window did. */
struct cyrus_backup_result {
	char run_id[24];            /* the consumer's run */
	char full_reason[256];      /* "": incremental */
	size_t users;               /* users the window changed */
	int failed_users;           /* of those, failed (-1: the backup stopped early) */
	int idle;                   /* nothing changed: the source committed at once */
	int committed;              /* the consumer's run was committed */
};

/* One run of consumer on the backup's source: begins it (taking over a run
 * a backup that died left open, as `begin --replace`), backs up every user
 * its window changed (every user on a full run), then commits it when every
 * user succeeded and aborts it otherwise, so the next run takes the same
 * window again. flags are added to the source's begin (SOURCE_BEGIN_*:
 * IDLE_COMMIT, SESSION). Returns 0 when committed, -1 otherwise (b's error:
 * the failed users, or why the run could not be begun or ended). */
int cyrus_backup_window(struct cyrus_backup *b, const char *consumer, int flags,
    struct cyrus_backup_result *res);

#endif
