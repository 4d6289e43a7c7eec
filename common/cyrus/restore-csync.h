/* restore-csync.h: what the two halves of the restore into a running server
 * share (restore-csync.c: the folders; restore-csync-user.c: the user's
 * quota roots, subscriptions, active sieve script and seen state of other
 * users' folders). Internal to common/cyrus/. */
#ifndef CHJ_CYRUS_RESTORE_CSYNC_H
#define CHJ_CYRUS_RESTORE_CSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"
#include "archive/manifest.h"
#include "cyrus/csync.h"
#include "cyrus/cyrus.h"
#include "cyrus/restore.h"

/* One annotation: a folder's (uid 0) or a message's. */
struct rc_annot {
	uint32_t uid;
	char *entry;
	char *userid;               /* "" shared; Cyrus's owner token already resolved */
	uint64_t modseq;
	char *value;
	size_t vlen;
};

/* An archived copy read into memory. */
struct rc_blob {
	char *data;
	size_t len;
	int have;
};

struct rc_folder {
	const struct manifest_folder *mf;
	char *target;               /* the internal name written */
	char *target_id;            /* the uniqueid written */
	int sieve;                  /* the user's "#sieve" collection of scripts (mbtype f) */
	struct rc_blob header, index, annots, mbox;
	struct cyrus_header h;
	struct cyrus_index x;
	struct rc_annot *an;        /* message annotations, by uid */
	size_t nan;
	struct rc_annot *fan;       /* folder annotations */
	size_t nfan;
	char *acl;                  /* "id\trights\t..." */
	char mbtype[8];             /* the type letter replication sends; "" for email */
	uint64_t foldermodseq;
	uint64_t shift;
	uint32_t sync_crc;
	enum cyrus_csync_action action;
	int new_id;
};

/* Cyrus's quota resources, in its order (imap/quota.h QUOTA_STORAGE ...) */
#define RC_QUOTA_NRES 4

/* A quota root as the archived quotalegacy file holds it. */
struct rc_quota {
	char *root;                 /* the archived root: a folder's internal name */
	int64_t limit[RC_QUOTA_NRES];   /* -1: no limit; STORAGE in KiB */
	uint64_t modseq;
};

/* One record of the archived seen.db: the user's \Seen in a folder whose
 * owner it is not (imap/seen_db.c, version 1 values). */
struct rc_seen {
	char *uniqueid;             /* the folder's */
	uint64_t lastread, lastuid, lastchange;
	char *seenuids;             /* "1:3,5" */
};

struct rc {
	const char *archive;
	const struct cyrus_csync_opts *o;
	struct cyrus_csync_result *res;
	struct chj_error *e;
	struct arch *ar;
	int64_t run;
	struct manifest man;
	char *user;                 /* archived owner (external form) */
	char *tuser;                /* the owner written */
	struct rc_folder *f;
	size_t nf;
	struct csync *cs;
	struct rc_quota *q;         /* the run's quota roots */
	size_t nq, capq;
	struct rc_seen *seen;       /* whole-user restores: the user's seen.db */
	size_t nseen, capseen;
	const char *seen_other;     /* a seen file of another backend than twoskip (not read) */
};

/* The restore's owner name translated: user.U... to user.TU... */
char *rc_map_user_name(const struct rc *r, const char *name);
/* Reads the newest copy of entry at or before the run into b (b->have 0 when
 * there is none), rebuilt when it is a delta (cyrus_delta_eligible). 0 or
 * -1 (r->e). */
int rc_read_entry(struct rc *r, const char *entry, struct rc_blob *b);
/* Tells the caller ev, filled with the archive and user. */
void rc_tell(struct rc *r, struct cyrus_csync_event *ev);

/* GET KIND (v[0..n)) ("MAILBOXES" by name, "UNIQUEIDS"): the reply's
 * items appended to rep. 0 or -1 (r->e). */
int rc_get_list(struct rc *r, const char *kind, char **v, size_t n, struct csync_reply *rep);
/* The MAILBOX item of rep whose key (MBOXNAME, UNIQUEID) is value, not an
 * intermediate one; NULL when there is none. */
const struct dl *rc_find_mailbox(const struct csync_reply *rep, const char *key, const char *value);
/* Sends the command in w (freed here; its failed allocation is r->e's
 * CHJ_ERR_NOMEM) and reads the reply into rep (NULL: none wanted);
 * what names it in an error. 0 or -1 (r->e). */
int rc_send(struct rc *r, struct dlw *w, const char *what, struct csync_reply *rep);
/* The derived uniqueid (rc_derive_id) of folder id restored as name: the
 * first candidate no mailbox on the server has, or that name has (*there
 * 1: restored already). 0 and out, 1 when all 16 are other mailboxes', -1
 * (r->e). */
int rc_derived_id_for(struct rc *r, const char *id, const char *name, char out[25], int *there);
/* A uniqueid for a folder whose own (id) is taken on the server: derived
 * from it, the target name and n (0 to 15), 24 characters of [a-z0-9]. */
void rc_derive_id(const char *id, const char *target, unsigned n, char out[25]);

/* Reads the run's quota root files and (whole-user restores) seen.db into
 * r->q and r->seen, before anything is written: an unreadable one is an
 * error naming it. 0 or -1 (r->e). */
int rc_user_read(struct rc *r);
/* The quota roots of the folders this restore creates, each with APPLY
 * QUOTA before the folders are written (they then get it as their
 * quotaroot); told, and in a dry run not written. 0 or -1 (r->e). */
int rc_apply_quotas(struct rc *r);
/* The user's subscriptions, active sieve script and seen state of other
 * users' folders: planned (told) and, unless a dry run, written. 0 or -1
 * (r->e). */
int rc_user_items(struct rc *r);
void rc_user_free(struct rc *r);

/* Parses a quota root's quotalegacy file (3.x: "%(S (USED LIMIT) M (USED)
 * ... MODSEQ N)"; older: "USED LIMIT [M USED LIMIT]..."): the limits (-1:
 * none) and modseq. 0, or -1 when it is not a quota file. */
int rc_quota_parse(const char *buf, size_t len, int64_t limit[RC_QUOTA_NRES], uint64_t *modseq);
/* Parses a seen.db value ("1 LASTREAD LASTUID LASTCHANGE SEENUIDS") into
 * s (seenuids allocated; uniqueid untouched). 0, or -1 when malformed (or
 * out of memory). */
int rc_seen_parse(const char *val, size_t vlen, struct rc_seen *s);
/* Writes "APPLY QUOTA %(ROOT root LIMIT ... MODSEQ m)\r\n" (as sync_client's
 * sync_encode_quota_limits: LIMIT the storage one, 4294967295 for none,
 * then each resource that has one) into w. */
void rc_quota_command(struct dlw *w, const char *root, const struct rc_quota *q);
/* Writes "APPLY SEEN %(USERID u UNIQUEID id LASTREAD ... SEENUIDS s)\r\n". */
void rc_seen_command(struct dlw *w, const char *userid, const char *uniqueid,
    const struct rc_seen *s);

#endif
