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
    char *const *folders, size_t nfolders, struct cyrus_restore_result *res, struct chj_error *e);
void cyrus_restore_result_free(struct cyrus_restore_result *res);

#endif
