/* restore-csync.h: what the two halves of the restore into a running server
 * share (restore-csync.c: the folders; restore-csync-user.c: the user's
 * subscriptions and active sieve script). Internal to
 * common/cyrus/. */
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
};

/* The restore's owner name translated: user.U... to user.TU... */
char *rc_map_user_name(const struct rc *r, const char *name);
/* Reads the newest copy of entry at or before the run into b (b->have 0 when
 * there is none). 0 or -1 (r->e). */
int rc_read_entry(struct rc *r, const char *entry, struct rc_blob *b);
/* Tells the caller ev, filled with the archive and user. */
void rc_tell(struct rc *r, struct cyrus_csync_event *ev);

/* The user's subscriptions and active sieve script:
 * planned (told) and, unless a dry run, written. 0 or -1 (r->e). */
int rc_user_items(struct rc *r);

#endif
