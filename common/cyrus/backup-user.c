/* backup-user.c: one user's run of a Cyrus backup (backup.h), read through
 * the backup's source: pass one compares each folder's meta files (stat()ed
 * all at once) with their archived copies by size and mtime; a folder that
 * differs is read under the locks a Cyrus reader takes, and every message
 * its index references that the archive lacks is fetched and stored under
 * its GUID, the SHA1 of what arrived checked against it; each meta file is
 * stored unless it holds what its newest archived copy holds (the same
 * bytes, or a cyrus.index differing only in what a read-only session
 * rewrites: cyrus_index_same_state), a changed cyrus.index as a delta from
 * the archived state when that pays (metadelta.h); then the folder-name links, the
 * per-user files (again not stored when their bytes are the archived
 * ones; a changed per-user database, dav.db or seen.db, as a delta the
 * same way) and the manifest. A user whose files changed on disk but not in
 * content gets no run. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/manifest.h"
#include "array.h"
#include "cyrus/backup-int.h"
#include "cyrus/metadelta.h"
#include "path.h"

/* What one user's run has added so far: SHA1s (so a message in two folders
 * is stored once) and whether anything was added at all. */
struct user_run {
	struct arch *ar;
	/* few next to the archive's: searching them one by one costs little
	 * next to reading a message */
	struct strvec sha1s;
	unsigned long added;
	struct manifest man;
	struct chj_error err;
};

/* 1 when the archive's newest copy of name has this size and mtime. */
static int
archived_same(struct arch *ar, const char *name, const struct source_stat *st)
{
	struct arch_entry e;
	int r = arch_latest(ar, name, 0, &e), same;

	if (r <= 0)
		return 0;
	same = e.kind == ARCH_KIND_FILE && e.size == st->size && e.mtime_ns == st->mtime_ns;
	arch_entry_free(&e);
	return same;
}

/* archived_same for a file whose state may be a delta (an index, a
 * per-user database: cyrus_delta_eligible), whose member has the file's
 * mtime (its size is the delta's). */
static int
state_archived_same(struct arch *ar, const char *name, const struct source_stat *st)
{
	struct arch_entry e;
	int delta, same;

	if (!cyrus_delta_eligible(name))
		return archived_same(ar, name, st);
	if (cyrus_meta_latest(ar, name, 0, &e, &delta) <= 0)
		return 0;
	same = e.kind == ARCH_KIND_FILE && e.mtime_ns == st->mtime_ns && (delta || e.size == st->size);
	arch_entry_free(&e);
	return same;
}

/* Pass one: 1 when every meta file of m (as st says they are) matches its
 * archived copy. */
static int
meta_unchanged(struct arch *ar, const struct cyrus_mailbox *m, const struct source_stat *st)
{
	char name[512];
	size_t i;

	for (i = 0; i < CYRUS_NMETA; i++) {
		snprintf(name, sizeof name, ARCH_FOLDERS "%s/%s", m->uniqueid, cyrus_meta_names[i]);
		if (st[i].err != 0) {
			if (st[i].err != ENOENT)
				return 0;       /* the locked read says why */
			if (arch_has(ar, name) == 1 && i <= CYRUS_META_INDEX)
				return 0;
			continue;
		}
		if (!state_archived_same(ar, name, &st[i]))
			return 0;
	}
	return 1;
}

/* 1 when buf's SHA1 is hex; got (when not NULL) is left holding buf's SHA1
 * for a store that follows (arch_run_add_buf_hashed), "" when none was
 * computed. */
static int
sha1_is(const void *buf, size_t len, const char *hex, char *got)
{
	unsigned char digest[20];
	char mine[41];

	if (got == NULL)
		got = mine;
	got[0] = '\0';
	if (strlen(hex) != 40 || EVP_Digest(buf, len, digest, NULL, EVP_sha1(), NULL) != 1)
		return 0;
	cyrus_guid_hex(digest, got);
	return strcmp(got, hex) == 0;
}

/* Stores buf as entry name: hashed once, when its SHA1 (hex, "" none) was
 * computed already. */
static int
store_buf(struct arch *ar, const char *name, const void *buf, size_t len, const char *hex,
    int64_t mtime_ns)
{
	if (hex[0] != '\0')
		return arch_run_add_buf_hashed(ar, name, buf, len, hex, mtime_ns, 0600);
	return arch_run_add_buf(ar, name, buf, len, mtime_ns, 0600);
}

/* 1 when buf, meta file name of a folder as read under the locks, holds
 * the bytes the archive's newest copy holds (an index: store_index_meta).
 * 0 when it differs; -1 on an archive error. hex: buf's SHA1 when it was
 * computed, else "". */
static int
meta_as_archived(struct user_run *r, const char *name, const char *buf, size_t len, char hex[41])
{
	struct arch_entry e;
	int got = arch_latest(r->ar, name, 0, &e), same;

	hex[0] = '\0';
	if (got < 0)
		return arch_error_copy(r->ar, &r->err);
	if (got == 0)
		return 0;
	same = e.kind == ARCH_KIND_FILE && e.size == len && sha1_is(buf, len, e.sha1, hex);
	arch_entry_free(&e);
	return same;
}

/* A file is stored whole, not as a delta, when its chain has this many
 * deltas, or reading the chain back would inflate more than this (the runs
 * holding it: a base in the first, full run is replaced by a whole copy in
 * a small run), so a restore stays fast. */
#define DELTA_CHAIN_MAX 32
#define DELTA_READ_MAX (64ull * 1024 * 1024)
/* A per-user database smaller than this is stored whole: deflated, its copy
 * costs about what a delta does (a 688-byte seen.db: 208 bytes whole, a
 * 261-byte delta), and a restore reads no chain. */
#define USER_DB_DELTA_MIN 4096

/* How an index (or cyrus.expunge) read under the locks, or a per-user
 * database, goes in: its bytes, and what the archive's state of it gave. */
struct index_store {
	const char *buf;
	size_t len;
	int is_index;               /* cyrus.index format: its rules apply */
	int whole;                  /* stored whole when it differs: no delta */
	int same;                   /* the archived state holds it */
	char *delta;                /* else a delta to store, or NULL: whole */
	size_t dlen;
};

/* The largest delta worth storing for a file of len bytes over chain c:
 * half the file, and the chain's deltas together no larger than the file;
 * 0: a whole copy. */
static size_t
delta_budget(size_t len, const struct cyrus_meta_chain *c)
{
	size_t max = len / 2;

	if (c->ndeltas >= DELTA_CHAIN_MAX || c->run_bytes > DELTA_READ_MAX || c->delta_bytes >= len)
		return 0;
	if (max > len - c->delta_bytes)
		max = len - c->delta_bytes;
	return max;
}

/* The archived state of the file, rebuilt: the same as the new one (bytes,
 * or for an index cyrus_index_same_state), or a delta from it when that
 * pays. */
static int
index_store_cb(void *ctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **buf,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct index_store *x = ctx;
	const char *old = *buf;
	size_t max;

	(void)w;
	(void)e;
	if ((len == x->len && memcmp(old, x->buf, len) == 0) ||
	    (x->is_index && cyrus_index_same_state(old, len, x->buf, x->len))) {
		x->same = 1;
		return 0;
	}
	/* another version or record size rewrites every record */
	if (x->whole || (x->is_index && (len < 12 || x->len < 12 || memcmp(old + 8, x->buf + 8, 4) != 0)))
		return 0;
	if ((max = delta_budget(x->len, chain)) == 0)
		return 0;
	if (cyrus_delta_encode(old, len, x->buf, x->len, max, &x->delta, &x->dlen) < 0)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	return 0;
}

/* Stores file name (buf: an index-format meta file read under the locks
 * when is_index, else a per-user database) unless the archive's state
 * holds it: as a delta from that state when one pays, else whole. Returns
 * 1 stored, 0 not, -1 on error. */
static int
store_state(struct user_run *r, const char *name, const char *buf, size_t len, int64_t mtime_ns,
    int is_index)
{
	struct cyrus_meta_want w = { name, 0, NULL };
	struct cyrus_meta_chain chain;
	struct index_store x;
	struct arch_entry e;
	char *dname = NULL;
	int got, delta, need = 0, rc = -1;

	memset(&x, 0, sizeof x);
	x.buf = buf;
	x.len = len;
	x.is_index = is_index;
	x.whole = !is_index && len < USER_DB_DELTA_MIN;
	if ((got = cyrus_meta_latest(r->ar, name, 0, &e, &delta)) < 0 ||
	    (got == 1 && cyrus_meta_chain_of(r->ar, name, 0, &chain) < 0)) {
		if (got == 1)
			arch_entry_free(&e);
		return arch_error_copy(r->ar, &r->err);
	}
	if (got == 1) {
		/* a whole copy: its SHA1 says "the same"; read back only what a
		 * delta or the same state (a read-only SELECT's rewrite, as
		 * large as before) needs: a base in a large run is not */
		if (!delta && e.size == len && sha1_is(buf, len, e.sha1, NULL))
			x.same = 1;
		else if (delta || (is_index && e.size == len) || (!x.whole && delta_budget(len, &chain) > 0))
			need = 1;
		arch_entry_free(&e);
	}
	/* an archived state that cannot be rebuilt: a whole copy starts a new
	 * chain (verify names the broken one) */
	if (need && cyrus_meta_fetch(r->ar, &w, 1, index_store_cb, &x, &r->err) < 0) {
		if (r->err.code == CHJ_ERR_NOMEM)
			return -1;
		r->err.code = CHJ_OK;
	}
	if (x.same)
		return 0;
	if (x.delta != NULL) {
		if (asprintf(&dname, "%s" CYRUS_DELTA_SUFFIX, name) < 0) {
			chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		if (arch_run_add_buf(r->ar, dname, x.delta, x.dlen, mtime_ns, 0600) < 0) {
			arch_error_copy(r->ar, &r->err);
			goto out;
		}
	} else if (arch_run_add_buf(r->ar, name, buf, len, mtime_ns, 0600) < 0) {
		arch_error_copy(r->ar, &r->err);
		goto out;
	}
	rc = 1;
out:
	free(dname);
	free(x.delta);
	return rc;
}

/* A message the archive lacks, to fetch: its record and path. For a
 * per-user file: the entry name as path, and the SHA1 and size of the
 * archive's newest copy (hex "" when it has none). */
struct want {
	const struct cyrus_index_record *rec;
	char hex[41];               /* its GUID; "" when the index has none */
	char *path;
	uint64_t size;
};

/* What a fetch stores into: a folder's messages (m, v: what each is), or
 * the user's files (v[i].path: the entry name of file i). */
struct fetch_ctx {
	struct cyrus_backup *b;
	struct user_run *r;
	const struct cyrus_mailbox *m;
	struct want *v;
};

/* A message's mtime as stored: whole seconds (rounded down). A message is
 * content-addressed (files/<SHA1>, one entry for every folder holding it)
 * and no restore sets its mtime, while the nanoseconds would cost each
 * message a pax header of its own (1 KiB of tar, some 55 bytes deflated):
 * without them its entry is plain ustar. Meta and user files keep theirs,
 * which pass one compares. */
static int64_t
message_mtime(int64_t mtime_ns)
{
	return mtime_ns - ((mtime_ns % 1000000000) + 1000000000) % 1000000000;
}

/* The archive reads a message or file from the source through this: a
 * failed read is the source's (CHJ_ERR_SYS, or CHJ_ERR_PEER when the source
 * is broken). */
static ssize_t
file_reader(void *ctx, void *buf, size_t len, struct chj_error *e)
{
	struct source_file *f = ctx;

	return f->read(f, buf, len, e);
}

/* A message without a GUID (Cyrus before 2.3): read whole, hashed, stored
 * under its SHA1 unless the archive has it. */
static int
store_unnamed(struct fetch_ctx *c, struct source_file *f)
{
	unsigned char digest[20];
	struct chj_error err;
	char hex[41], name[64];
	size_t got = 0;
	char *buf;
	int rc = -1, have;

	if (f->st.size > SIZE_MAX - 1 || (buf = malloc((size_t)f->st.size + 1)) == NULL)
		return chj_error_set(&c->r->err, CHJ_ERR_NOMEM, 0, "out of memory (message '%s')", f->path);
	while (got < f->st.size) {
		ssize_t k = f->read(f, buf + got, (size_t)f->st.size - got, &err);

		if (k <= 0) {
			chj_error_set(&c->r->err, k < 0 ? err.code : CHJ_ERR_SYS, 0, "mailbox '%s': %s",
			    c->m->name, k < 0 ? err.msg : "message ends early");
			goto out;
		}
		got += (size_t)k;
	}
	if (EVP_Digest(buf, got, digest, NULL, EVP_sha1(), NULL) != 1) {
		chj_error_set(&c->r->err, CHJ_ERR_SYS, 0, "sha1 failed");
		goto out;
	}
	cyrus_guid_hex(digest, hex);
	snprintf(name, sizeof name, ARCH_FILES "%s", hex);
	if (strvec_has(&c->r->sha1s, hex) || (have = arch_has(c->r->ar, name)) == 1) {
		rc = 0;
		goto out;
	}
	/* hashed once: hex is the SHA1 of buf, just computed */
	if (have < 0 || arch_run_add_buf_hashed(c->r->ar, name, buf, got, hex,
	    message_mtime(f->st.mtime_ns), 0600) < 0) {
		arch_error_copy(c->r->ar, &c->r->err);
		goto out;
	}
	rc = strvec_add(&c->r->sha1s, hex) < 0 ?
	    chj_error_set(&c->r->err, CHJ_ERR_NOMEM, 0, "out of memory") : 1;
out:
	free(buf);
	return rc;
}

/* Stores one fetched message under files/<GUID>, checking that what
 * arrived hashes to it: a mismatch fails the user (its run is dropped). */
static int
store_fetched(void *ctx, struct source_file *f)
{
	struct fetch_ctx *c = ctx;
	struct want *w = &c->v[f->index];
	char name[64];
	const char *got;
	int rc;

	if (f->st.err != 0) {
		if (f->st.err == ENOENT && (w->rec->system_flags & CYRUS_FLAG_EXPUNGED))
			return 0;   /* expunged and removed by cyr_expire since the index was read */
		return chj_error_set(&c->r->err, CHJ_ERR_SYS, f->st.err, "mailbox '%s': cannot read "
		    "message '%s'", c->m->name, f->path);
	}
	if (w->hex[0] == '\0') {
		rc = store_unnamed(c, f);
		if (rc <= 0)
			return rc;
	} else {
		snprintf(name, sizeof name, ARCH_FILES "%s", w->hex);
		if (arch_run_add_reader(c->r->ar, name, file_reader, f, f->st.size,
		    message_mtime(f->st.mtime_ns), 0600) < 0) {
			/* a source gone mid-message says so itself */
			if (c->b->src->broken)
				return chj_error_set(&c->r->err, CHJ_ERR_PEER, 0, "mailbox '%s': %s",
				    c->m->name, c->b->src->err.msg);
			return arch_error_copy(c->r->ar, &c->r->err);
		}
		got = arch_run_last_sha1(c->r->ar);
		if (got == NULL || strcmp(got, w->hex) != 0)
			return chj_error_set(&c->r->err, CHJ_ERR_CORRUPT, 0, "mailbox '%s': message '%s': "
			    "SHA1 %s does not match the GUID %s in cyrus.index", c->m->name, f->path,
			    got ? got : "?", w->hex);
		if (strvec_add(&c->r->sha1s, w->hex) < 0)
			return chj_error_set(&c->r->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	c->r->added++;
	c->b->stats.messages++;
	c->b->stats.bytes += f->st.size;
	return 0;
}

/* Adds record rec's message to the wanted ones unless this run or the
 * archive has it. */
static int
want_message(struct user_run *r, const struct cyrus_mailbox *m, const struct cyrus_index_record *rec,
    struct want **v, size_t *n, size_t *cap)
{
	static const unsigned char zero[20];
	char hex[41] = "", name[64], file[32];
	struct want *nv;
	size_t i;
	int have;

	if (memcmp(rec->guid, zero, 20) != 0) {
		cyrus_guid_hex(rec->guid, hex);
		if (strvec_has(&r->sha1s, hex))
			return 0;
		for (i = 0; i < *n; i++)
			if (strcmp((*v)[i].hex, hex) == 0)
				return 0;
		snprintf(name, sizeof name, ARCH_FILES "%s", hex);
		have = arch_has(r->ar, name);
		if (have < 0)
			return arch_error_copy(r->ar, &r->err);
		if (have)
			return 0;
	}
	if ((nv = array_grow(*v, *n, cap, sizeof *nv, 32)) == NULL)
		return chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
	*v = nv;
	snprintf(file, sizeof file, "%u.", rec->uid);
	memset(&nv[*n], 0, sizeof nv[*n]);
	nv[*n].rec = rec;
	memcpy(nv[*n].hex, hex, sizeof hex);
	if ((nv[*n].path = path_join(m->path, file)) == NULL)
		return chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
	(*n)++;
	return 0;
}

/* Stores every message an index (or expunge file) references and lacks:
 * one fetch for the folder. */
static int
store_index_messages(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m,
    const char *what, const char *buf, size_t len)
{
	struct cyrus_index x;
	struct fetch_ctx c;
	struct want *v = NULL;
	const char **paths = NULL;
	size_t n = 0, cap = 0;
	uint32_t i;
	int rc = -1;

	memset(&x, 0, sizeof x);
	if (cyrus_index_parse(&x, buf, len) < 0) {
		chj_error_set(&r->err, x.err.code, 0, "mailbox '%s': %s/%s: %s", m->name, m->path, what,
		    x.err.msg);
		cyrus_index_free(&x);
		return -1;
	}
	for (i = 0; i < x.num_records; i++) {
		if (!cyrus_record_has_file(&x.records[i]))
			continue;
		if (want_message(r, m, &x.records[i], &v, &n, &cap) < 0)
			goto out;
	}
	if (n > 0 && (paths = calloc(n, sizeof *paths)) == NULL) {
		chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		paths[i] = v[i].path;
	c.b = b;
	c.r = r;
	c.m = m;
	c.v = v;
	r->err.code = CHJ_OK;
	if (source_fetch(b->src, paths, n, store_fetched, &c) < 0) {
		if (r->err.code == CHJ_OK)  /* the source failed, not the store */
			chj_error_set(&r->err, b->src->err.code, 0, "mailbox '%s': %s", m->name,
			    b->src->err.msg);
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	free(paths);
	cyrus_index_free(&x);
	return rc;
}

/* Backs up one folder whose meta files (st: as pass one found them) are
 * not as archived: read under Cyrus's locks, its new messages, its meta
 * files. */
static int
backup_folder(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m)
{
	struct source_meta mc;
	struct cyrus_header h;
	unsigned long added = r->added, stored = 0;
	size_t i;
	int rc = -1;

	memset(&h, 0, sizeof h);
	if (source_meta_read(b->src, m, &mc) < 0) {
		r->err = b->src->err;
		return -1;
	}
	if (cyrus_header_parse(&h, mc.buf[CYRUS_META_HEADER], mc.len[CYRUS_META_HEADER]) < 0) {
		chj_error_set(&r->err, h.err.code, 0, "mailbox '%s': %s/cyrus.header: %s", m->name,
		    m->path, h.err.msg);
		goto out;
	}
	if (h.uniqueid != NULL && strcmp(h.uniqueid, m->uniqueid) != 0) {
		chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "mailbox '%s': %s/cyrus.header names uniqueid "
		    "'%s', mailboxes.db '%s'", m->name, m->path, h.uniqueid, m->uniqueid);
		goto out;
	}
	if (store_index_messages(b, r, m, "cyrus.index", mc.buf[CYRUS_META_INDEX],
	    mc.len[CYRUS_META_INDEX]) < 0)
		goto out;
	if (mc.buf[CYRUS_META_EXPUNGE] != NULL && store_index_messages(b, r, m, "cyrus.expunge",
	    mc.buf[CYRUS_META_EXPUNGE], mc.len[CYRUS_META_EXPUNGE]) < 0)
		goto out;
	for (i = 0; i < CYRUS_NMETA; i++) {
		char name[512], hex[41];
		int same;

		if (mc.buf[i] == NULL)
			continue;
		snprintf(name, sizeof name, ARCH_FOLDERS "%s/%s", m->uniqueid, cyrus_meta_names[i]);
		if (i == CYRUS_META_INDEX || i == CYRUS_META_EXPUNGE) {
			int st = store_state(r, name, mc.buf[i], mc.len[i], mc.st[i].mtime_ns, 1);

			if (st < 0)
				goto out;
			r->added += (unsigned long)st;
			stored += (unsigned long)st;
			continue;
		}
		/* rewritten (a read-only session's SELECT) or only touched:
		 * the archived copy stands for it */
		if ((same = meta_as_archived(r, name, mc.buf[i], mc.len[i], hex)) < 0)
			goto out;
		if (same)
			continue;
		if (store_buf(r->ar, name, mc.buf[i], mc.len[i], hex, mc.st[i].mtime_ns) < 0) {
			arch_error_copy(r->ar, &r->err);
			goto out;
		}
		r->added++;
		stored++;
	}
	if (stored > 0 || r->added > added)
		b->stats.folders_changed++;
	else
		b->stats.folders_same++;
	rc = 0;
out:
	cyrus_header_free(&h);
	source_meta_free(&mc);
	return rc;
}

/* The folder record of m (CYRUS_FOLDER_RECORD: its mailboxes.db value and
 * its annotations, as read once for the run) unless the newest archived
 * copy holds the same; none when it has neither and the archive has none. */
static int
backup_folder_record(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m)
{
	struct arch_entry e;
	char name[512], hex[41] = "", *buf = NULL;
	size_t len = 0, first, n;
	int got, same = 0;

	if (!b->have_annots)
		return 0;
	n = cyrus_annots_of(&b->annots, m->uniqueid, &first);
	snprintf(name, sizeof name, ARCH_FOLDERS "%s/" CYRUS_FOLDER_RECORD, m->uniqueid);
	if ((got = arch_latest(r->ar, name, 0, &e)) < 0)
		return arch_error_copy(r->ar, &r->err);
	if (got == 0 && n == 0 && m->record == NULL)
		return 0;
	if (cyrus_folder_record(m->record, b->annots.v + first, n, &buf, &len) < 0) {
		if (got == 1)
			arch_entry_free(&e);
		return chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	if (got == 1) {
		same = e.kind == ARCH_KIND_FILE && e.size == len && sha1_is(buf, len, e.sha1, hex);
		arch_entry_free(&e);
	}
	if (!same) {
		if (store_buf(r->ar, name, buf, len, hex, (int64_t)time(NULL) * 1000000000) < 0) {
			free(buf);
			return arch_error_copy(r->ar, &r->err);
		}
		r->added++;
		b->stats.folders_annotated++;
	}
	free(buf);
	return 0;
}

/* Every live folder of ml: their meta files stat()ed in one pass, then
 * each one that is not as archived backed up; its folder record. */
static int
backup_folders(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mboxlist *ml)
{
	const struct cyrus_mailbox **live = NULL;
	struct source_stat *st = NULL;
	size_t n = 0, i;
	int rc = -1;

	if (ml->n > 0 && ((live = calloc(ml->n, sizeof *live)) == NULL ||
	    (st = calloc(ml->n * CYRUS_NMETA, sizeof *st)) == NULL)) {
		chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (i = 0; i < ml->n; i++) {
		const struct cyrus_mailbox *m = &ml->v[i];

		if (m->deleted)
			continue;
		if (manifest_add_folder(&r->man, m->uniqueid, m->partition, m->relpath, m->name) < 0) {
			chj_error_set(&r->err, r->man.err.code, 0, "mailbox '%s': %s", m->name, r->man.err.msg);
			goto out;
		}
		live[n++] = m;
	}
	if (source_meta_stat(b->src, live, n, st) < 0) {
		r->err = b->src->err;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (backup_folder_record(b, r, live[i]) < 0)
			goto out;
		if (meta_unchanged(r->ar, live[i], st + i * CYRUS_NMETA))
			continue;
		if (backup_folder(b, r, live[i]) < 0)
			goto out;
	}
	rc = 0;
out:
	free(live);
	free(st);
	return rc;
}

/* Adds symlink entry name -> target unless the newest copy says the same. */
static int
link_if_changed(struct user_run *r, const char *name, const char *target)
{
	struct arch_entry e;
	int got = arch_latest(r->ar, name, 0, &e), same = 0;

	if (got < 0)
		return arch_error_copy(r->ar, &r->err);
	if (got == 1) {
		same = e.kind == ARCH_KIND_SYMLINK && strcmp(e.target ? e.target : "", target) == 0;
		arch_entry_free(&e);
	}
	if (same)
		return 0;
	if (arch_run_add_symlink(r->ar, name, target, (int64_t)time(NULL) * 1000000000) < 0)
		return arch_error_copy(r->ar, &r->err);
	r->added++;
	return 0;
}

/* imap/<name> links: one per live folder, the empty link for each folder
 * the archive had that is gone (renamed away or deleted). */
static int
backup_links(struct user_run *r, const struct cyrus_mboxlist *ml)
{
	struct arch_entry *v = NULL;
	size_t n = 0, i;
	int rc = -1;

	for (i = 0; i < ml->n; i++) {
		const struct cyrus_mailbox *m = &ml->v[i];
		char name[1024], target[256];

		if (m->deleted)
			continue;
		snprintf(name, sizeof name, ARCH_IMAP "%s", m->name);
		snprintf(target, sizeof target, "../" ARCH_FOLDERS "%s", m->uniqueid);
		if (link_if_changed(r, name, target) < 0)
			return -1;
	}
	if (arch_list(r->ar, ARCH_IMAP, 0, &v, &n) < 0)
		return arch_error_copy(r->ar, &r->err);
	for (i = 0; i < n; i++) {
		const char *folder = v[i].name + strlen(ARCH_IMAP);

		if (v[i].target == NULL || v[i].target[0] == '\0')
			continue;
		if (manifest_find_folder(&r->man, folder) != NULL)
			continue;
		if (link_if_changed(r, v[i].name, "") < 0)
			goto out;
	}
	rc = 0;
out:
	arch_entries_free(v, n);
	return rc;
}

/* A per-user file whose size is its archived copy's and whose time is not
 * is read whole, up to this size, to find whether its bytes changed; a
 * larger one is stored as it is read. */
#define USER_FILE_COMPARE_MAX (64u * 1024 * 1024)

/* A per-user file as large as its archived copy (w: its SHA1), or a
 * per-user database (cyrus_delta_eligible): read whole; stored unless its
 * bytes are the archived ones, a database as a delta when that pays. */
static int
store_user_file_if_new(struct fetch_ctx *c, struct source_file *f, const struct want *w)
{
	struct chj_error err;
	char hex[41];
	char *buf;
	size_t got = 0;
	int rc = -1;

	if ((buf = malloc((size_t)f->st.size + 1)) == NULL)
		return chj_error_set(&c->r->err, CHJ_ERR_NOMEM, 0, "out of memory ('%s')", f->path);
	while (got < f->st.size) {
		ssize_t k = f->read(f, buf + got, (size_t)f->st.size - got, &err);

		if (k <= 0) {
			if (k < 0 && c->b->src->broken)
				chj_error_set(&c->r->err, CHJ_ERR_PEER, 0, "%s", c->b->src->err.msg);
			else
				chj_error_set(&c->r->err, k < 0 ? err.code : CHJ_ERR_SYS, 0, "'%s': %s",
				    f->path, k < 0 ? err.msg : "file ends early");
			goto out;
		}
		got += (size_t)k;
	}
	if (cyrus_delta_eligible(w->path)) {
		if ((rc = store_state(c->r, w->path, buf, got, f->st.mtime_ns, 0)) > 0)
			c->r->added++;
		rc = rc < 0 ? -1 : 0;
		goto out;
	}
	rc = 0;
	if (sha1_is(buf, got, w->hex, hex))
		goto out;               /* touched, not changed */
	if (store_buf(c->r->ar, w->path, buf, got, hex, f->st.mtime_ns) < 0) {
		rc = arch_error_copy(c->r->ar, &c->r->err);
		goto out;
	}
	c->r->added++;
out:
	free(buf);
	return rc;
}

/* Stores a per-user file fetched (a regular file not as archived). */
static int
store_user_file(void *ctx, struct source_file *f)
{
	struct fetch_ctx *c = ctx;
	const struct want *w = &c->v[f->index];

	if (f->st.err != 0) {
		if (f->st.err == ENOENT)
			return 0;           /* gone since it was listed: not in this run */
		return chj_error_set(&c->r->err, CHJ_ERR_SYS, f->st.err, "cannot read '%s'", f->path);
	}
	if (f->st.size <= USER_FILE_COMPARE_MAX && (cyrus_delta_eligible(w->path) ||
	    (w->hex[0] != '\0' && f->st.size == w->size)))
		return store_user_file_if_new(c, f, w);
	if (arch_run_add_reader(c->r->ar, c->v[f->index].path, file_reader, f, f->st.size,
	    f->st.mtime_ns, 0600) < 0) {
		if (c->b->src->broken)
			return chj_error_set(&c->r->err, CHJ_ERR_PEER, 0, "%s", c->b->src->err.msg);
		return arch_error_copy(c->r->ar, &c->r->err);
	}
	c->r->added++;
	return 0;
}

/* Notes in w the SHA1 and size of the archive's newest copy of name (a
 * regular file), for store_user_file; hex "" when there is none. */
static int
archived_copy(struct user_run *r, const char *name, struct want *w)
{
	struct arch_entry e;
	int got = arch_latest(r->ar, name, 0, &e);

	w->hex[0] = '\0';
	if (got < 0)
		return arch_error_copy(r->ar, &r->err);
	if (got == 1) {
		if (e.kind == ARCH_KIND_FILE && strlen(e.sha1) == 40) {
			memcpy(w->hex, e.sha1, sizeof w->hex);
			w->size = e.size;
		}
		arch_entry_free(&e);
	}
	return 0;
}

/* Appends the user's quota root files (a source that has them) to v. */
static int
add_quota_files(struct cyrus_backup *b, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **v, size_t *n)
{
	struct source_user_file *q = NULL, *nv;
	size_t nq = 0;

	if (source_quota_files(b->src, user, ml, &q, &nq) < 0)
		return -1;
	if (nq == 0)
		return 0;
	if ((nv = realloc(*v, (*n + nq) * sizeof *nv)) == NULL) {
		source_user_files_free(q, nq);
		return chj_error_set(&b->src->err, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	memcpy(nv + *n, q, nq * sizeof *q);
	free(q);
	*v = nv;
	*n += nq;
	return 0;
}

/* The user's files outside the spool: each in the manifest; a symlink
 * whose target changed and a file not as archived into the run. */
static int
backup_user_files(struct cyrus_backup *b, struct user_run *r, const char *user,
    const struct cyrus_mboxlist *ml)
{
	struct source_user_file *uf = NULL;
	struct want *fetch = NULL;
	const char **paths = NULL;
	size_t n = 0, nf = 0, i;
	struct fetch_ctx c;
	int rc = -1;

	if (source_user_files(b->src, user, ml, &uf, &n) < 0 ||
	    add_quota_files(b, user, ml, &uf, &n) < 0) {
		r->err = b->src->err;
		source_user_files_free(uf, n);
		return -1;
	}
	if (n > 0 && ((fetch = calloc(n, sizeof *fetch)) == NULL ||
	    (paths = calloc(n, sizeof *paths)) == NULL)) {
		chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		char *name = NULL;

		if (asprintf(&name, ARCH_USER "%s", uf[i].rel) < 0) {
			chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		if (manifest_add_file(&r->man, name) < 0) {
			chj_error_set(&r->err, r->man.err.code, 0, "'%s': %s", uf[i].path, r->man.err.msg);
			free(name);
			goto out;
		}
		if (uf[i].st.kind == SOURCE_LNK) {
			rc = link_if_changed(r, name, uf[i].target ? uf[i].target : "");
			free(name);
			if (rc < 0)
				goto out;
			rc = -1;
			continue;
		}
		if (uf[i].st.kind != SOURCE_REG || state_archived_same(r->ar, name, &uf[i].st)) {
			free(name);
			continue;
		}
		fetch[nf].path = name;          /* the entry name, for store_user_file */
		paths[nf++] = uf[i].path;
		if (archived_copy(r, name, &fetch[nf - 1]) < 0)
			goto out;
	}
	c.b = b;
	c.r = r;
	c.m = NULL;
	c.v = fetch;
	r->err.code = CHJ_OK;
	if (source_fetch(b->src, paths, nf, store_user_file, &c) < 0) {
		if (r->err.code == CHJ_OK)
			r->err = b->src->err;
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < nf; i++)
		free(fetch[i].path);
	free(fetch);
	free(paths);
	source_user_files_free(uf, n);
	return rc;
}

/* 1 when the new manifest shows the same state as the archive's last run. */
static int
same_as_last_run(struct user_run *r)
{
	struct arch_run *runs = NULL;
	struct manifest old;
	size_t n = 0;
	char *buf = NULL;
	size_t len = 0;
	int same = 0;

	if (arch_runs(r->ar, &runs, &n) < 0 || n == 0)
		goto out;
	if (arch_read_manifest(r->ar, runs[n - 1].id, &buf, &len) < 0)
		goto out;
	if (manifest_parse(&old, buf, len) < 0)
		goto out;
	same = manifest_same_state(&old, &r->man);
	manifest_free(&old);
out:
	free(buf);
	free(runs);
	return same;
}

/* The user's mailboxes ml: each live folder, the links, the user's files,
 * into the open run of r. */
static int
backup_user_state(struct cyrus_backup *b, struct user_run *r, const char *user,
    const struct cyrus_mboxlist *ml)
{
	if (backup_folders(b, r, ml) < 0 || backup_links(r, ml) < 0 ||
	    backup_user_files(b, r, user, ml) < 0)
		return -1;
	return 0;
}

int
backup_user(struct cyrus_backup *b, const char *user, const struct cyrus_mboxlist *ml, int64_t seq,
    struct backup_sealed *sealed, struct chj_error *e)
{
	struct cyrus_backup_event ev;
	struct user_run r;
	char *file = NULL, *archive = NULL, *buf = NULL;
	size_t len = 0;
	int rc = -1, began = 0;

	memset(sealed, 0, sizeof *sealed);
	memset(&r, 0, sizeof r);
	manifest_init(&r.man);
	file = cyrus_user_file_name(user);
	if (file == NULL || asprintf(&archive, "%s/%s.tar.gz", b->to, file) < 0) {
		archive = NULL;
		chj_error_set(&r.err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	if (arch_open(&r.ar, archive, ARCH_APPEND, &r.err) < 0)
		goto out;
	arch_drop_if_empty(r.ar);       /* a first run that fails leaves no archive */
	if (arch_tail_cut(r.ar) > 0) {
		memset(&ev, 0, sizeof ev);
		ev.kind = CYRUS_BACKUP_TAIL_CUT;
		ev.user = user;
		ev.path = archive;
		ev.bytes_cut = arch_tail_cut(r.ar);
		backup_tell(b, &ev);
	}
	arch_set_deflate_pool(r.ar, b->pool);
	if (arch_run_begin(r.ar) < 0) {
		arch_error_copy(r.ar, &r.err);
		goto out;
	}
	began = 1;
	r.man.time = (int64_t)time(NULL);
	r.man.seq = seq;
	r.man.user = strdup(user);
	if (b->host != NULL && (r.man.host = strdup(b->host)) == NULL) {
		chj_error_set(&r.err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	if (backup_user_state(b, &r, user, ml) < 0)
		goto out;
	if (manifest_format(&r.man, &buf, &len) < 0) {
		r.err = r.man.err;
		goto out;
	}
	if (r.added == 0 && same_as_last_run(&r)) {
		arch_run_abort(r.ar);
		began = 0;
		rc = 0;
		goto out;
	}
	if ((sealed->user = strdup(user)) == NULL) {
		chj_error_set(&r.err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	began = 0;
	if (arch_run_seal(r.ar, buf, len) < 0) {
		arch_error_copy(r.ar, &r.err);
		free(sealed->user);
		sealed->user = NULL;
		goto out;
	}
	sealed->ar = r.ar;
	sealed->archive = archive;
	r.ar = NULL;
	archive = NULL;
	rc = 0;
out:
	if (began)
		arch_run_abort(r.ar);
	if (r.ar != NULL && arch_close(r.ar) < 0 && rc == 0) {
		chj_error_set(&r.err, CHJ_ERR_ARCHIVE, 0, "archive '%s': cannot close it", archive);
		rc = -1;
	}
	if (rc < 0)
		*e = r.err;
	strvec_free(&r.sha1s);
	manifest_free(&r.man);
	free(buf);
	free(archive);
	free(file);
	return rc;
}

int
backup_sealed_commit(struct backup_sealed *s, struct chj_error *e)
{
	char runname[64];
	int rc = 0;

	if (s->ar == NULL)
		return 0;
	if (arch_run_commit(s->ar, NULL, 0, runname, sizeof runname) < 0)
		rc = arch_error_copy(s->ar, e);
	if (arch_close(s->ar) < 0 && rc == 0)
		rc = chj_error_set(e, CHJ_ERR_ARCHIVE, 0, "archive '%s': cannot close it", s->archive);
	free(s->archive);
	free(s->user);
	memset(s, 0, sizeof *s);
	return rc;
}
