/* archive-int.h: what the archive's source files share and nobody else sees:
 * the handle, the gzip-member tar writer and reader (archive-io.c), the
 * sidecar (archive-sidecar.c) and the row reader of the queries
 * (archive-query.c). They depend on each other one way only: archive-io.c
 * on none of them; archive-sidecar.c on archive-io.c; archive-append.c and
 * archive-query.c on those two; archive-fetch.c on archive-query.c;
 * archive.c (the handle) on archive-sidecar.c and archive-append.c (a close
 * drops an unfinished run); archive-ops.c on all. */
#ifndef CHJ_ARCHIVE_INT_H
#define CHJ_ARCHIVE_INT_H

#include <sqlite3.h>
#include <stdarg.h>
#include <zlib.h>
#include <openssl/evp.h>

#include "archive.h"
#include "archive-lib.h"
#include "pdeflate.h"

#define ARCH_BUF (256 * 1024)
/* zlib level 5 with a deflate block ended every PDEFLATE_BLOCK bytes: on a
 * Cyrus spool smaller than gzip -6 (what `tar czf` and pigz use, zlib's
 * own block ends) and ~1.3x faster (pdeflate.c, README). */
#define ARCH_LEVEL 5
#define ARCH_THREADS 2            /* deflate workers per member being written */
#define ARCH_CHUNK (128 * 1024)   /* input bytes per parallel deflate chunk: pigz's */
#define ARCH_NAME_MAX 4096        /* longer entry names are refused (and reported) */
#define SIDECAR_FORMAT 1          /* meta 'format' of the sidecar's schema */
/* The entry columns a query reads (arch_row_entry) */
#define ARCH_ENTRY_COLS "run, name, kind, target, size, mtime_ns, mode, sha1"

/* One entry as written or scanned, before it reaches the sidecar. */
struct went {
	char *name;
	int kind;
	char *target;
	uint64_t size;
	int64_t mtime_ns;
	unsigned mode;
	char sha1[41];
	int64_t data_off;         /* of its data in the uncompressed member */
};

/* The writer of one member: libarchive writes pax tar into our callback,
 * which deflates it (gzip wrapper) and writes at the end of the file. */
struct mwriter {
	int fd;
	int64_t start;            /* the member's first byte in the file */
	int64_t pos;              /* next byte to write */
	struct pdeflate *pd;      /* the member's compressor (both cores) */
	struct archive_lib al;    /* libarchive, loaded by mwriter_begin */
	struct archive *aw;
	uint64_t ubytes;          /* uncompressed bytes so far */
	struct went *ents;
	size_t nents, cap;
	int failed;
	int sealed;               /* mwriter_seal: the member's data all given */
	unsigned char *tmp;       /* ARCH_BUF bytes: an entry's data read from its source */
	EVP_MD_CTX *md;           /* the entries' SHA1s */
	char run_name[40];        /* the run's name, once sealed */
	struct chj_error err;
};

/* The reader of one member: inflates just it, from a file offset on. */
struct mreader {
	int fd;
	int64_t start;
	int64_t in_pos;           /* next file byte to read */
	z_stream z;
	int z_init;
	int done;                 /* the member's gzip stream ended, CRC good */
	int64_t end;              /* one past its last byte, once done */
	uint64_t out;             /* uncompressed bytes delivered */
	unsigned char *in;
	unsigned char *buf;       /* for libarchive's read callback */
	const struct archive_lib *al; /* set when libarchive reads through it */
	struct chj_error err;      /* set once reading failed: every later read fails */
};

struct arch {
	char *path;
	char *idx;
	int fd;
	int mode;
	sqlite3 *db;
	int in_memory;
	int sidecar_stale;          /* the file beside it was missing or did not match */
	int drop_empty;             /* closed without a byte, it goes (arch_drop_if_empty) */
	int created;                /* this open made the file: its name (and the sidecar's) not yet synced */
	int read_txn;               /* a run's queries share one read transaction */
	sqlite3_stmt *st_has;       /* arch_has's and arch_latest's, prepared once (one */
	sqlite3_stmt *st_latest;    /* query per message of a run), finalized by arch_close */
	int64_t tail_cut;
	int64_t size;             /* the file's length: the end of the last run */
	struct mwriter *w;        /* the run being written */
	struct pdeflate_pool *pool; /* arch_set_deflate_pool's; NULL: none */
	struct chj_error err;     /* arch_error() */
};

struct arch_stream {
	struct mreader *r;
	uint64_t left;
	int check;                /* compare the SHA1 at the end */
	EVP_MD_CTX *md;
	char want[41];
	const char *name;
	struct chj_error *err;     /* where a failed read says why (the handle's) */
};

/* What a scan of one member found. */
struct mscan {
	int64_t offset, end;
	struct went *ents;
	size_t n, cap;
	int complete;             /* gzip end + CRC, tar end, last entry runs/ */
	int64_t bytes;
};

typedef void (*scan_problem_fn)(void *ctx, const char *fmt, ...);


/* archive-io.c */
/* pool: the deflate workers to use; NULL: threads of its own. */
int mwriter_begin(struct mwriter *w, int fd, int64_t start, struct pdeflate_pool *pool);
/* Where an entry's data comes from: buf when not NULL, else stream when
 * not NULL, else fn when not NULL, else fd. */
struct arch_src {
	int fd;
	const void *buf;
	struct arch_stream *stream;
	arch_read_fn fn;
	void *fn_ctx;
	const char *sha1;         /* with buf: its SHA1 as the caller computed it, not hashed again */
};
int mwriter_add(struct mwriter *w, const char *name, int kind, const char *target,
    const struct arch_src *src, uint64_t size, int64_t mtime_ns, unsigned mode);
/* Ends the tar stream and hands the last bytes to the compressor without
 * waiting for them (mwriter_finish does, sealing first if need be). */
int mwriter_seal(struct mwriter *w);
int mwriter_finish(struct mwriter *w);
void mwriter_free(struct mwriter *w);
int mreader_open(struct mreader *r, int fd, int64_t start);
ssize_t mreader_read(struct mreader *r, void *buf, size_t len);
int mreader_skip(struct mreader *r, uint64_t n);
void mreader_close(struct mreader *r);
/* arch_stream_read (archive.h) reads an entry's data through r. */
int arch_sha1_hex(EVP_MD_CTX *md, char out[41]);
/* Scans the member at offset: entries with SHA1s, completeness. problem (may
 * be NULL) hears each oddity; want_data (may be NULL) gets folders/ data.
 * -1 (out of memory, libarchive not loaded) with the reason in e. */
int mscan_member(int fd, int64_t offset, struct mscan *m, scan_problem_fn problem, void *pctx,
    arch_entry_data_cb data_cb, void *dctx, struct chj_error *e);
void mscan_free(struct mscan *m);
void went_free(struct went *e);
/* 1 when name is safe to extract (relative, no "..", no empty component). */
int arch_name_safe(const char *name);

/* archive-sidecar.c */
/* These fail with CHJ_ERR_ARCHIVE (SQLite's message) unless said. */
int sidecar_schema(sqlite3 *db, struct chj_error *e);
int sidecar_add_member(sqlite3 *db, int64_t id, const struct mscan *m, const unsigned char tail[8],
    struct chj_error *e);
/* Builds a fresh sidecar file for the archive open on fd (temp file, fsync,
 * rename, fsync dir; with unsynced, no fsync: an archive just created, whose
 * first commit syncs both). *end: the end of the last complete member. */
int sidecar_rebuild_file(int fd, int64_t size, const char *idx, int unsynced, int64_t *end,
    struct chj_error *e);
/* Runs sql (no rows); -1 with "sidecar: MESSAGE" in e. */
int sidecar_exec(sqlite3 *db, const char *sql, struct chj_error *e);
/* The highest run id recorded (0: none). */
int64_t sidecar_max_run(sqlite3 *db);
int arch_read_tail(int fd, int64_t end, unsigned char tail[8]);
int arch_open_db(sqlite3 **db, const char *file, int flags, struct chj_error *e);
/* Scans the members from offset from on into db's tables (run ids going on
 * from next_id) in one transaction; stops at the first incomplete member,
 * unless resync (ascending offsets) names a later member start to go on at.
 * Returns the end of the last complete member, or -1 (e). */
int64_t arch_scan_into(int fd, int64_t from, int64_t size, sqlite3 *db, int64_t next_id, scan_problem_fn problem, void *pctx,
    arch_entry_data_cb data_cb, void *dctx, const int64_t *resync, size_t nresync,
    struct chj_error *e);

/* archive-append.c */
int arch_run_add_stream(struct arch *a, const struct arch_entry *e, struct arch_stream *s);
int arch_run_commit_as(struct arch *a, const void *manifest, size_t len, const char *name,
    int64_t time, char *run_name, size_t namelen);

/* archive-query.c */
/* Fills e from the ARCH_ENTRY_COLS of st starting at column c; -1 when out
 * of memory (e half filled: arch_entry_free it). */
int arch_row_entry(sqlite3_stmt *st, int c, struct arch_entry *e);
/* Sets a's error from its sidecar's, finalizes st, returns -1. */
int arch_db_fail(struct arch *a, sqlite3_stmt *st);

#endif
