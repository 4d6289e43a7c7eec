/* archive.h: the per-user archive: an append-only file of gzip members, one
 * per backup run, each holding a complete tar stream (pax format, written
 * and read with libarchive) whose last entry is "runs/<UTC time>", so GNU tar
 * (`tar -tzif`) and zcat read it without our tools. Beside it a sidecar
 * SQLite index (ARCHIVE with ".tar.gz" replaced by ".idx") says where each
 * entry is; it can always be rebuilt from the archive alone (reindex).
 *
 * Crash safety: a run is appended at the end, the file fsynced, then the
 * sidecar updated in one transaction. Opening for append cuts a torn tail
 * (anything after the last complete member ending in a runs/ entry) back
 * before anything is appended; a complete member the sidecar does not know
 * yet is indexed. Nothing here prints or exits.
 *
 * Errors follow error.h: a function that fails returns -1 and fills the
 * struct chj_error it was given (or the handle's, arch_error()) with a code
 * to decide on: CHJ_ERR_SYS (+ errno) for a failed system call,
 * CHJ_ERR_CORRUPT for a damaged archive or sidecar, CHJ_ERR_ARCHIVE for one
 * that cannot be read or written otherwise, CHJ_ERR_NOMEM, CHJ_ERR_NOTFOUND
 * for a run or entry that is not there, CHJ_ERR_INVALID for a bad argument
 * or call, CHJ_ERR_REFUSED for an archive another writer holds. */
#ifndef CHJ_ARCHIVE_H
#define CHJ_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Entry names, by prefix */
#define ARCH_FILES   "files/"       /* files/<sha1 hex>: a message, once */
#define ARCH_FOLDERS "folders/"     /* folders/<uniqueid>/cyrus.header|index|annotations|expunge */
#define ARCH_IMAP    "imap/"        /* imap/<folder name>: symlink to ../folders/<uniqueid>, "" = gone */
#define ARCH_USER    "user/"        /* user/conf/<rel>, user/sieve/<rel>: per-user files */
#define ARCH_RUNS    "runs/"        /* runs/<YYYYmmddTHHMMSSZ>: the run's manifest, always last */

enum arch_kind { ARCH_KIND_FILE = 0, ARCH_KIND_SYMLINK = 1 };

struct arch;                    /* an open archive + sidecar */

#define ARCH_READ   0
#define ARCH_APPEND 1           /* created (mode 0600) if missing; torn tail cut */

/* Opens path. With ARCH_READ nothing is written: a missing, stale or lagging
 * sidecar is rebuilt in memory from the archive; ARCH_APPEND rebuilds or
 * extends the file. Returns 0 and *out, or -1 with e filled (CHJ_ERR_REFUSED:
 * another writer holds the archive's lock). */
int arch_open(struct arch **out, const char *path, int mode, struct chj_error *e);
/* 1 when the open found the sidecar file missing or not matching the
 * archive (so it vouches for nothing); 0 when it matched as far as it goes. */
int arch_sidecar_stale(const struct arch *a);
/* Closes (and frees) a; an unfinished run is dropped (file cut back). */
int arch_close(struct arch *a);
/* The error of the last call on a that failed. */
const struct chj_error *arch_error(const struct arch *a);
/* Copies it into e (code, errno and message); returns -1. */
int arch_error_copy(const struct arch *a, struct chj_error *e);
/* Sets e as chj_error_set does, but the code and errno come from cause (a
 * lower layer's error, arch_error(a) say, which fmt quotes: its message
 * already ends in any strerror, so none is appended), or are fallback and 0
 * when cause is NULL or unset. cause may be e itself. Returns -1. */
int arch_error_wrap(struct chj_error *e, const struct chj_error *cause, enum chj_code fallback,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* What the last open did to repair the file: bytes cut off a torn tail (0 none). */
int64_t arch_tail_cut(const struct arch *a);
/* A writer's archive closed without a byte (its first run failed or was
 * aborted, nothing before it) is removed at arch_close, with its sidecar,
 * instead of staying behind as an empty archive. */
void arch_drop_if_empty(struct arch *a);

/* ---- appending one run ---- */

/* The deflate workers (pdeflate.h) that runs of several archives can
 * share: a backup of many users makes its threads and buffers once, not per
 * archive, and hands its users' members to them in turn. Returns 0, or -1
 * (out of memory, no threads). */
struct pdeflate_pool;
int arch_deflate_pool_new(struct pdeflate_pool **pool);
/* Deflates one chunk queued in pool on the caller's thread (a thread that
 * would wait for the workers works instead; pdeflate_pool_help). Returns 1
 * when it did, 0 when there was none. */
int arch_deflate_pool_help(struct pdeflate_pool *pool);
/* Frees pool: every run using it committed or aborted first. */
void arch_deflate_pool_free(struct pdeflate_pool *pool);
/* Runs begun on a from now on are deflated by pool's workers (NULL: by
 * workers of their own, the default); pool must outlive them. */
void arch_set_deflate_pool(struct arch *a, struct pdeflate_pool *pool);

int arch_run_begin(struct arch *a);
/* Adds a regular file entry, its data read from fd (exactly size bytes: a
 * short read is an error). mtime_ns is kept (pax), mode's permission bits. */
int arch_run_add_fd(struct arch *a, const char *name, int fd, uint64_t size,
    int64_t mtime_ns, mode_t mode);
int arch_run_add_buf(struct arch *a, const char *name, const void *buf, size_t len,
    int64_t mtime_ns, mode_t mode);
/* arch_run_add_buf for bytes whose SHA1 the caller has just computed over
 * exactly buf (sha1: 40 lower-case hex digits): the data is not hashed a
 * second time and sha1 is what the sidecar records. Trusted, not checked:
 * a wrong one is an entry verify reports (the data does not match the
 * sidecar, nor a files/ name). CHJ_ERR_INVALID when sha1 is not hex. */
int arch_run_add_buf_hashed(struct arch *a, const char *name, const void *buf, size_t len,
    const char *sha1, int64_t mtime_ns, mode_t mode);
/* Adds a regular file entry whose size bytes come from fn (as read(): -1
 * with e filled, 0 too early is an error: the run is then dead). The
 * entry's error keeps the code fn gave. */
typedef ssize_t (*arch_read_fn)(void *ctx, void *buf, size_t len, struct chj_error *e);
int arch_run_add_reader(struct arch *a, const char *name, arch_read_fn fn, void *ctx, uint64_t size,
    int64_t mtime_ns, mode_t mode);
/* The SHA1 (40 hex digits) of the data of the entry the open run added
 * last, or NULL: what a caller naming an entry by a hash it was told
 * checks against. */
const char *arch_run_last_sha1(const struct arch *a);
int arch_run_add_symlink(struct arch *a, const char *name, const char *target, int64_t mtime_ns);
/* Writes the manifest as runs/<name> (name: UTC "YYYYmmddTHHMMSSZ", unique:
 * a later run in the same second gets a suffix), ends the member, fsyncs the
 * file, then records the run in the sidecar. Returns 0 or -1 (the file is
 * cut back to where the run began). After arch_run_seal, manifest and len
 * are not used: the sealed run is committed. */
int arch_run_commit(struct arch *a, const void *manifest, size_t len, char *run_name, size_t namelen);
/* The first half of arch_run_commit: the manifest added, the member's last
 * bytes handed to the compressor, which goes on on its own threads while the
 * caller does other work (the next user's run, in another archive); nothing
 * is durable until arch_run_commit. No entry can be added after it. Returns
 * 0 or -1 (the run is dropped, as by arch_run_abort). */
int arch_run_seal(struct arch *a, const void *manifest, size_t len);
/* Drops the run being written: the file is cut back. */
int arch_run_abort(struct arch *a);

/* ---- what the sidecar knows ---- */

struct arch_run {
	int64_t id;                 /* 1, 2, ... in file order */
	char name[32];              /* YYYYmmddTHHMMSSZ[.N] */
	int64_t time;               /* unix time of the commit */
	int64_t offset;             /* the member's first byte */
	int64_t end;                /* one past its last byte */
	int64_t entries;
	int64_t bytes;              /* uncompressed data bytes */
};

struct arch_entry {
	int64_t run;                /* the run id holding this copy */
	char *name;
	enum arch_kind kind;
	char *target;               /* symlink target */
	uint64_t size;
	int64_t mtime_ns;
	mode_t mode;
	char sha1[41];              /* hex SHA1 of the data (files) */
};

/* Every run, in order. *runs allocated. */
int arch_runs(struct arch *a, struct arch_run **runs, size_t *n);
/* 1 when some run holds an entry called name, 0 when none, -1 on error. */
int arch_has(struct arch *a, const char *name);
/* The newest copy of name in a run <= upto_run (0: any). Returns 1 and
 * fills e (free with arch_entry_free), 0 when none, -1 on error. */
int arch_latest(struct arch *a, const char *name, int64_t upto_run, struct arch_entry *e);
/* Every entry whose name starts with prefix, newest copy each, in runs <=
 * upto_run (0: any). */
int arch_list(struct arch *a, const char *prefix, int64_t upto_run, struct arch_entry **v, size_t *n);
void arch_entry_free(struct arch_entry *e);
void arch_entries_free(struct arch_entry *v, size_t n);

/* ---- reading data ---- */

/* A wanted entry: the copy of name held in run. */
struct arch_want {
	int64_t run;
	const char *name;
	void *ctx;                  /* the caller's */
};

/* Reads data of the wanted entries, each member read once, in file order:
 * calls cb once per want with a stream to read its data from. cb returns 0
 * to go on, -1 to stop (its error in err, which becomes arch_error(a); a
 * callback that returns -1 leaving err unset gets a generic message). */
struct arch_stream;
/* Reads the entry's data as read() does: -1 with arch_error(a) filled
 * (CHJ_ERR_CORRUPT when the data ends early or does not match its SHA1). */
ssize_t arch_stream_read(struct arch_stream *s, void *buf, size_t len);
typedef int (*arch_want_cb)(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, struct chj_error *err);
int arch_fetch(struct arch *a, const struct arch_want *wants, size_t n, arch_want_cb cb, void *cbctx);

/* Reads the whole manifest of run id into *buf (allocated). */
int arch_read_manifest(struct arch *a, int64_t run, char **buf, size_t *len);

/* ---- whole-archive operations ---- */

/* Rebuilds the sidecar from the archive alone (temp file, fsync, rename). */
int arch_reindex(const char *path, struct chj_error *e);

/* Checks gzip CRCs and tar framing, every files/<sha1> against its name, the
 * sidecar against the archive. Calls problem() once per problem found (a
 * one-line message, problem 1; a note, problem 0 and its text starting
 * "note: ", is a finding that is not a problem: an interrupted run after the
 * last run the sidecar records, which the next append cuts off, or a
 * sidecar missing or behind). Returns the number of problems, -1 when it could not
 * read at all. Checking that stored indexes' GUIDs exist is the caller's
 * (it knows the cyrus.index format): it gets each folders/ entry through
 * index_cb when not NULL. */
typedef void (*arch_problem_cb)(void *ctx, int problem, const char *msg);
typedef int (*arch_entry_data_cb)(void *ctx, const struct arch_entry *e, const void *data, size_t len);
int arch_verify(const char *path, arch_problem_cb problem, arch_entry_data_cb index_cb, void *ctx,
    struct chj_error *e);
/* arch_verify with flags: ARCH_VERIFY_TAIL_NOTE (what arch_verify does) lets
 * an interrupted run after the sidecar's last run be a note; without it (a
 * sidecar that was missing and just rebuilt testifies to nothing) it is a
 * problem like any other damage. */
#define ARCH_VERIFY_TAIL_NOTE 0x1
int arch_verify_ex(const char *path, int flags, arch_problem_cb problem, arch_entry_data_cb index_cb,
    void *ctx, struct chj_error *e);

/* Rewrites the archive keeping, for each run in keep_runs (ids, ascending),
 * its entries that keep() accepts; entries of dropped runs that keep() still
 * wants move into the next kept run. New file, fsync, rename, sidecar
 * rebuilt: a crash at any point leaves the old or the new archive, valid. */
typedef int (*arch_keep_cb)(void *ctx, const struct arch_entry *e);
int arch_compact(const char *path, const int64_t *keep_runs, size_t nkeep, arch_keep_cb keep,
    void *ctx, struct chj_error *e);

/* arch_compact where keep() may also answer ARCH_KEEP_REWRITE: the entry
 * goes into the kept run under the name and with the data rewrite() gives
 * (both allocated, the caller's to free; its mtime and mode stay), asked
 * before the run's other entries are read. rewrite returns 0 or -1 with
 * err filled (the compaction then fails, the archive unchanged). */
#define ARCH_KEEP_REWRITE 2
typedef int (*arch_rewrite_cb)(void *ctx, const struct arch_entry *e, char **name, char **buf,
    size_t *len, struct chj_error *err);
int arch_compact_ex(const char *path, const int64_t *keep_runs, size_t nkeep, arch_keep_cb keep,
    arch_rewrite_cb rewrite, void *ctx, struct chj_error *e);

/* The sidecar path of an archive (allocated). */
char *arch_sidecar_path(const char *path);

#endif
