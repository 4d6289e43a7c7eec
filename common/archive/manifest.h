/* manifest.h: the text a backup run stores as runs/<name>, the last entry of
 * its gzip member: what the run saw (time, journal sequence, user, every
 * live folder with its uniqueid and spool path, every per-user file). A run
 * is restored from its manifest alone plus the newest copies, at or before
 * it, of the entries it names.
 *
 *   chjournal-run 1
 *   time UNIXTIME
 *   seq JOURNALSEQ
 *   user NAME
 *   host NAME          (optional: the machine the run was read from)
 *   folder UNIQUEID<TAB>PARTITION<TAB>RELPATH<TAB>NAME
 *   file ENTRYNAME
 *
 * Fields hold no tab and no newline (refused when formatting and parsing). */
#ifndef CHJ_MANIFEST_H
#define CHJ_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct manifest_folder {
	char *uniqueid;
	char *partition;
	char *relpath;              /* relative to the partition directory */
	char *name;                 /* Cyrus's internal name */
};

struct manifest {
	int64_t time;
	int64_t seq;
	char *user;
	char *host;                 /* NULL: read on the machine that wrote it */
	struct manifest_folder *folders;
	size_t nfolders, capfolders;
	char **files;               /* archive entry names (user/...) */
	size_t nfiles, capfiles;
	struct chj_error err;       /* why the last call failed: CHJ_ERR_REFUSED (a field
	                             * formatting refuses), CHJ_ERR_CORRUPT (a text
	                             * that does not parse), CHJ_ERR_NOMEM */
};

void manifest_init(struct manifest *m);
void manifest_free(struct manifest *m);
int manifest_add_folder(struct manifest *m, const char *uniqueid, const char *partition,
    const char *relpath, const char *name);
int manifest_add_file(struct manifest *m, const char *entry);
/* Formats m into *buf (allocated, *len bytes). Returns 0 or -1 (m->err). */
int manifest_format(struct manifest *m, char **buf, size_t *len);
/* Parses buf into m (initialized here). Returns 0 or -1 (m->err names the line). */
int manifest_parse(struct manifest *m, const char *buf, size_t len);
/* 1 when a and b describe the same state (time, seq and host aside). */
int manifest_same_state(const struct manifest *a, const struct manifest *b);
/* Returns the folder called name, or NULL. */
const struct manifest_folder *manifest_find_folder(const struct manifest *m, const char *name);

/* 1 when rel is a safe relative path: not empty, not absolute, no empty,
 * "." or ".." component, no control bytes. Restore writes only such paths. */
int manifest_safe_relpath(const char *rel);

#endif
