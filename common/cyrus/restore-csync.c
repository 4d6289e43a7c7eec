/* restore-csync.c: a run of a user's archive back into a running Cyrus
 * through its replication protocol (restore.h): the folders' archived meta
 * files read, the server asked what exists (GET MAILBOXES, GET UNIQUEIDS),
 * a plan made (create, already there, refused), then the messages sent
 * (APPLY MESSAGE, each member of the archive inflated once), the quota
 * roots of the folders to create set (APPLY QUOTA) and each folder written
 * whole (APPLY MAILBOX) as sync_client writes a replica; the user's other
 * state follows (restore-csync-user.c). Several archives: one thread
 * and one connection each. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "array.h"
#include "archive/runsel.h"
#include "cyrus/internal.h"
#include "cyrus/metadelta.h"
#include "cyrus/restore-csync.h"

#define OWNER_TOKEN "[.OwNeR.]"       /* Cyrus's annotate.c OWNER_USERID_TOKEN */
#define ANNOT_NS "/vendor/cmu/cyrus-imapd/"
/* an APPLY MESSAGE is closed (and answered) after this many bytes or files */
#define UPLOAD_BATCH_BYTES (64u << 20)
#define UPLOAD_BATCH_FILES 2048

static int
nomem(struct rc *r)
{
	return chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
}

void
rc_tell(struct rc *r, struct cyrus_csync_event *ev)
{
	ev->archive = r->archive;
	ev->user = r->user;
	ev->dry_run = r->o->dry_run;
	if (r->o->cb != NULL)
		r->o->cb(r->o->ctx, ev);
}

int
rc_send(struct rc *r, struct dlw *w, const char *what, struct csync_reply *rep)
{
	int rc;

	if (w->oom) {
		dlw_free(w);
		return nomem(r);
	}
	rc = csync_cmd(r->cs, w->buf, w->len, what, rep, r->e);
	dlw_free(w);
	return rc;
}

/* ---- names ---- */

/* user.U[.rest] -> user.TU[.rest] in internal form ('.' in U as '^') */
char *
rc_map_user_name(const struct rc *r, const char *name)
{
	char from[1024], to[1024], *out = NULL, *p;

	snprintf(from, sizeof from, "user.%s", r->user);
	snprintf(to, sizeof to, "user.%s", r->tuser);
	for (p = from + 5; *p; p++)
		if (*p == '.')
			*p = '^';
	for (p = to + 5; *p; p++)
		if (*p == '.')
			*p = '^';
	if (strncmp(name, from, strlen(from)) == 0 &&
	    (name[strlen(from)] == '\0' || name[strlen(from)] == '.')) {
		if (asprintf(&out, "%s%s", to, name + strlen(from)) < 0)
			return NULL;
		return out;
	}
	return strdup(name);
}

/* A suffix for --beside: no hierarchy separator, no control or 8-bit byte */
static int
beside_ok(const char *s)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0')
		return 0;
	for (p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '.' || *p == '/' || *p == '^' || *p == '%' ||
		    *p == '*' || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/* The target name of folder i. Whole user: the user renamed (beside) or
 * not. Folders named: each gets the suffix, one below another named one
 * follows its parent's new name. */
static char *
target_name(struct rc *r, size_t i)
{
	const char *name = r->f[i].mf->name, *best = NULL;
	char *out = NULL;
	size_t k;

	if (r->o->nfolders == 0 || r->o->beside == NULL)
		return rc_map_user_name(r, name);
	for (k = 0; k < r->nf; k++) {
		const char *a = r->f[k].mf->name;
		size_t n = strlen(a);

		if (k != i && strncmp(name, a, n) == 0 && name[n] == '.' &&
		    (best == NULL || n > strlen(best)))
			best = a;
	}
	if (best == NULL) {
		if (asprintf(&out, "%s%s", name, r->o->beside) < 0)
			return NULL;
		return out;
	}
	for (k = 0; k < r->nf; k++)
		if (r->f[k].mf->name == best || strcmp(r->f[k].mf->name, best) == 0)
			break;
	{
		char *parent = target_name(r, k);

		if (parent == NULL || asprintf(&out, "%s%s", parent, name + strlen(best)) < 0)
			out = NULL;
		free(parent);
	}
	return out;
}

/* ---- the archived copies ---- */

struct blob_want {
	struct rc_blob *b;
	uint64_t size;
};

static int
blob_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, struct chj_error *err)
{
	struct rc_blob *b = w->ctx;
	ssize_t n;
	size_t got = 0;

	(void)cbctx;
	if (e->kind != ARCH_KIND_FILE)
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is not a file", e->name);
	if (e->size > (1u << 30))
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is %" PRIu64 " bytes: too large",
		    e->name, e->size);
	b->data = malloc((size_t)e->size + 1);
	if (b->data == NULL)
		return chj_error_set(err, CHJ_ERR_NOMEM, 0, "out of memory");
	while ((n = arch_stream_read(s, b->data + got, (size_t)e->size + 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0 || got != e->size) {
		if (n >= 0)
			chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s': %zu bytes, %" PRIu64 " announced",
			    e->name, got, e->size);
		return -1;
	}
	b->data[got] = '\0';
	b->len = got;
	b->have = 1;
	return 0;
}

/* Fills want w for the newest copy of entry at or before the run: 1, or 0
 * when the archive has none. */
static int
want_latest(struct rc *r, const char *entry, struct arch_want *w)
{
	struct arch_entry e;
	int got = arch_latest(r->ar, entry, r->run, &e);

	if (got < 0)
		return arch_error_copy(r->ar, r->e);
	if (got == 0)
		return 0;
	w->run = e.run;
	arch_entry_free(&e);
	return 1;
}

static int
fetch_wants(struct rc *r, struct arch_want *w, size_t n, arch_want_cb cb, void *ctx)
{
	if (n > 0 && arch_fetch(r->ar, w, n, cb, ctx) < 0)
		return arch_error_wrap(r->e, arch_error(r->ar), CHJ_ERR_ARCHIVE, "archive '%s': %s", r->archive,
		    arch_error(r->ar)->msg);
	return 0;
}

/* A folder's meta file, or a per-user database, as rebuilt
 * (cyrus_meta_fetch: either may be a chain of deltas) into its blob. */
static int
meta_blob_cb(void *cbctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **buf,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct rc_blob *b = w->ctx;

	(void)cbctx;
	(void)chain;
	if (len > (1u << 30))
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is %zu bytes: too large",
		    e->name, len);
	b->data = *buf;             /* cyrus_meta_fetch leaves a byte past the end */
	*buf = NULL;
	b->data[len] = '\0';
	b->len = len;
	b->have = 1;
	return 0;
}

/* Points w at the state of meta file entry at the run: 1, or 0 when the
 * archive has none. */
static int
want_meta(struct rc *r, const char *entry, struct cyrus_meta_want *w)
{
	struct arch_entry e;
	int delta, got = cyrus_meta_latest(r->ar, entry, r->run, &e, &delta);

	if (got < 0)
		return arch_error_copy(r->ar, r->e);
	if (got == 0)
		return 0;
	w->upto = r->run;
	arch_entry_free(&e);
	return 1;
}

int
rc_read_entry(struct rc *r, const char *entry, struct rc_blob *b)
{
	struct cyrus_meta_want mw;
	struct arch_want w;
	int got;

	memset(&w, 0, sizeof w);
	memset(b, 0, sizeof *b);
	/* a per-user database may be a chain of deltas (metadelta.h) */
	if (cyrus_delta_eligible(entry)) {
		if ((got = want_meta(r, entry, &mw)) <= 0)
			return got;
		mw.name = entry;
		mw.ctx = b;
		if (cyrus_meta_fetch(r->ar, &mw, 1, meta_blob_cb, r, r->e) < 0)
			return arch_error_wrap(r->e, r->e, CHJ_ERR_ARCHIVE, "archive '%s': %s", r->archive,
			    r->e->msg);
		return 0;
	}
	if ((got = want_latest(r, entry, &w)) <= 0)
		return got;
	w.name = entry;
	w.ctx = b;
	return fetch_wants(r, &w, 1, blob_cb, r);
}

/* Every wanted folder's header, index, annotations and mailbox record, in
 * one pass over the archive. */
static int
read_folder_meta(struct rc *r)
{
	static const char *const kinds[4] = { "cyrus.header", "cyrus.index", "cyrus.annotations",
	    CYRUS_FOLDER_RECORD };
	struct cyrus_meta_want *w = calloc(r->nf * 4 + 1, sizeof *w);
	char **names = calloc(r->nf * 4 + 1, sizeof *names);
	size_t i, k, n = 0;
	int rc = -1;

	if (w == NULL || names == NULL) {
		nomem(r);
		goto out;
	}
	for (i = 0; i < r->nf; i++) {
		struct rc_blob *dst[4] = { &r->f[i].header, &r->f[i].index, &r->f[i].annots, &r->f[i].mbox };

		for (k = 0; k < 4; k++) {
			int got;

			if (asprintf(&names[n], ARCH_FOLDERS "%s/%s", r->f[i].mf->uniqueid, kinds[k]) < 0) {
				names[n] = NULL;
				nomem(r);
				goto out;
			}
			got = want_meta(r, names[n], &w[n]);
			if (got < 0)
				goto out;
			if (got == 0) {
				if (k <= 1) {
					chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s' lacks '%s', which "
					    "folder '%s' needs", r->archive, names[n], r->f[i].mf->name);
					goto out;
				}
				free(names[n]);
				names[n] = NULL;
				continue;
			}
			w[n].name = names[n];
			w[n].ctx = dst[k];
			n++;
		}
	}
	rc = 0;
	if (n > 0 && cyrus_meta_fetch(r->ar, w, n, meta_blob_cb, r, r->e) < 0)
		rc = arch_error_wrap(r->e, r->e, CHJ_ERR_ARCHIVE, "archive '%s': %s", r->archive, r->e->msg);
out:
	for (i = 0; names != NULL && i < r->nf * 4; i++)
		free(names[i]);
	free(names);
	free(w);
	return rc;
}

/* ---- parsing what was read ---- */

static void
annots_free(struct rc_annot *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].entry);
		free(v[i].userid);
		free(v[i].value);
	}
	free(v);
}

static int
annot_cmp(const void *a, const void *b)
{
	const struct rc_annot *x = a, *y = b;
	int c;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	if ((c = strcmp(x->entry, y->entry)) != 0)
		return c;
	return strcmp(x->userid, y->userid);
}

struct annot_read {
	struct rc *r;
	struct rc_annot *v;
	size_t n, cap;
	int folder;                 /* keys start with the uniqueid, not a uid */
};

static int
add_annot(struct annot_read *a, uint32_t uid, const char *entry, const char *userid,
    uint64_t modseq, const char *val, size_t vlen)
{
	struct rc_annot *v;

	if ((v = array_grow(a->v, a->n, &a->cap, sizeof *a->v, 16)) == NULL)
		return -1;
	a->v = v;
	v = &a->v[a->n];
	memset(v, 0, sizeof *v);
	v->uid = uid;
	v->modseq = modseq;
	v->vlen = vlen;
	v->entry = strdup(entry);
	/* the owner's private annotations are stored under a token */
	v->userid = strdup(strcmp(userid, OWNER_TOKEN) == 0 ? a->r->tuser : userid);
	v->value = malloc(vlen + 1);
	if (v->entry == NULL || v->userid == NULL || v->value == NULL) {
		free(v->entry);
		free(v->userid);
		free(v->value);
		return -1;
	}
	memcpy(v->value, val, vlen);
	v->value[vlen] = '\0';
	a->n++;
	return 0;
}

/* A cyrus.annotations record: "UID\0ENTRY\0USERID" -> the value. */
static int
annot_record(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct annot_read *a = ctx;
	const char *entry, *userid, *data, *end = key + klen;
	size_t dlen;
	uint64_t modseq, uid = 0;
	int deleted;
	char ebuf[1024], ubuf[1024];

	for (entry = key; entry < end && *entry >= '0' && *entry <= '9'; entry++)
		uid = uid * 10 + (uint64_t)(*entry - '0');
	if (entry == key || entry >= end || *entry != '\0' || uid > UINT32_MAX)
		return 0;                   /* not a message's: passed over */
	entry++;
	userid = memchr(entry, '\0', (size_t)(end - entry));
	if (userid == NULL || (size_t)(userid - entry) >= sizeof ebuf ||
	    (size_t)(end - userid - 1) >= sizeof ubuf)
		return 0;
	snprintf(ebuf, sizeof ebuf, "%.*s", (int)(userid - entry), entry);
	userid++;
	snprintf(ubuf, sizeof ubuf, "%.*s", (int)(end - userid), userid);
	if (ubuf[0] != '\0' && ubuf[strlen(ubuf) - 1] == '\0')
		ubuf[strlen(ubuf) - 1] = '\0';
	if (cyrus_annot_value(val, vlen, &data, &dlen, &modseq, &deleted) < 0 || deleted)
		return 0;
	return add_annot(a, (uint32_t)uid, ebuf, ubuf, modseq, data, dlen) < 0 ? -2 : 0;
}

/* The archived record: %(MBOXLIST %(T e ... A %(acl)) ANNOTATIONS (%(ENTRY
 * e USERID u MODSEQ m VALUE v) ...)), see backup's cyrus_folder_record. */
static int
parse_mbox_record(struct rc *r, struct rc_folder *f)
{
	struct dl d;
	const struct dl *ml, *an, *a;
	struct chj_error de;
	struct annot_read ar;
	size_t i;
	int rc = -1;

	memset(&ar, 0, sizeof ar);
	ar.r = r;
	if (dl_parse(&d, f->mbox.data, f->mbox.len, NULL, &de) < 0)
		return chj_error_set(r->e, de.code, 0, "archive '%s': folder '%s': its mailbox "
		    "record is unreadable: %s", r->archive, f->mf->name, de.msg);
	if (d.kind != DL_KVLIST) {
		dl_free(&d);
		return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s': folder '%s': its mailbox "
		    "record is unreadable: not a key-value list", r->archive, f->mf->name);
	}
	if ((ml = dl_get(&d, "MBOXLIST")) != NULL && ml->kind == DL_KVLIST) {
		const char *t = dl_atom(ml, "T");

		if (t != NULL && *t && *t != 'e')
			snprintf(f->mbtype, sizeof f->mbtype, "%c", *t);
		dl_num(ml, "F", &f->foldermodseq);
		if ((a = dl_get(ml, "A")) != NULL && a->kind == DL_KVLIST) {
			struct dlw w;

			memset(&w, 0, sizeof w);
			for (i = 0; i < a->n; i++) {
				dlw_raw(&w, a->keys[i], strlen(a->keys[i]));
				dlw_raw(&w, "\t", 1);
				if (a->v[i].s != NULL)
					dlw_raw(&w, a->v[i].s, strlen(a->v[i].s));
				dlw_raw(&w, "\t", 1);
			}
			if (w.oom) {
				dlw_free(&w);
				nomem(r);
				goto out;
			}
			free(f->acl);
			f->acl = w.buf ? w.buf : strdup("");
		}
	}
	if ((an = dl_get(&d, "ANNOTATIONS")) != NULL && an->kind == DL_LIST) {
		for (i = 0; i < an->n; i++) {
			const struct dl *x = &an->v[i];
			const char *entry = dl_atom(x, "ENTRY"), *userid = dl_atom(x, "USERID"),
			    *value = dl_atom(x, "VALUE");
			uint64_t modseq = 0;

			if (x->kind != DL_KVLIST || entry == NULL || userid == NULL || value == NULL)
				continue;
			dl_num(x, "MODSEQ", &modseq);
			if (add_annot(&ar, 0, entry, userid, modseq, value, strlen(value)) < 0) {
				nomem(r);
				goto out;
			}
		}
	}
	f->fan = ar.v;
	f->nfan = ar.n;
	ar.v = NULL;
	ar.n = 0;
	rc = 0;
out:
	annots_free(ar.v, ar.n);
	dl_free(&d);
	return rc;
}

static int
parse_folder(struct rc *r, struct rc_folder *f)
{
	struct chj_error de;

	if (cyrus_header_parse(&f->h, f->header.data, f->header.len) < 0)
		return chj_error_set(r->e, f->h.err.code, 0, "archive '%s': folder '%s': %s", r->archive,
		    f->mf->name, f->h.err.msg);
	if (cyrus_index_parse(&f->x, f->index.data, f->index.len) < 0)
		return chj_error_set(r->e, f->x.err.code, 0, "archive '%s': folder '%s': %s", r->archive,
		    f->mf->name, f->x.err.msg);
	if (f->x.minor_version < 10)
		return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s': folder '%s': cyrus.index v%u "
		    "has no GUIDs", r->archive, f->mf->name, f->x.minor_version);
	/* what old archives have: the header's ACL; the mailbox record's wins */
	f->acl = strdup(f->h.acl ? f->h.acl : "");
	if (f->acl == NULL)
		return nomem(r);
	f->foldermodseq = f->x.highestmodseq;
	if (f->mbox.have && parse_mbox_record(r, f) < 0)
		return -1;
	/* the sieve scripts' collection: mbtype f, as mailboxes.db and the
	 * replication protocol write it */
	if (f->sieve && f->mbtype[0] == '\0')
		snprintf(f->mbtype, sizeof f->mbtype, "f");
	if (f->annots.have) {
		struct annot_read ar;
		int rc;

		memset(&ar, 0, sizeof ar);
		ar.r = r;
		rc = cyrus_twoskip_foreach(f->annots.data, f->annots.len, annot_record, &ar, &de);
		if (rc != 0) {
			annots_free(ar.v, ar.n);
			if (rc == -2)
				return nomem(r);
			return chj_error_set(r->e, de.code, 0, "archive '%s': folder '%s': "
			    "cyrus.annotations: %s", r->archive, f->mf->name, de.msg);
		}
		array_sort(ar.v, ar.n, sizeof *ar.v, annot_cmp);
		f->an = ar.v;
		f->nan = ar.n;
	}
	array_sort(f->fan, f->nfan, sizeof *f->fan, annot_cmp);
	return 0;
}

/* ---- what replication sends ---- */

static const char *
options_str(uint32_t o, char buf[8])
{
	char *p = buf;

	if (o & (1u << 0))
		*p++ = 'P';             /* OPT_POP3_NEW_UIDL */
	if (o & (1u << 2))
		*p++ = 'S';             /* OPT_IMAP_SHAREDSEEN */
	if (o & (1u << 3))
		*p++ = 'D';             /* OPT_IMAP_DUPDELIVER */
	if (o & (1u << 4))
		*p++ = 'A';             /* OPT_IMAP_HAS_ALARMS */
	*p = '\0';
	return buf;
}

static int
is_expunged(const struct cyrus_index_record *rec)
{
	return (rec->system_flags & CYRUS_FLAG_EXPUNGED) != 0;
}

/* Cyrus's sync CRC of the live records (imap/mailbox.c crc_basic): the XOR
 * over each record of the CRC32 of "UID MODSEQ LAST_UPDATED (FLAGCRC)
 * INTERNALDATE GUID", FLAGCRC the XOR of the CRC32s of its lower-cased flag
 * names. The server checks it after writing the folder. */
static uint32_t
sync_crc(const struct rc_folder *f)
{
	static const struct { uint32_t bit; const char *name; } sys[] = {
		{ CYRUS_FLAG_DELETED, "\\deleted" }, { CYRUS_FLAG_ANSWERED, "\\answered" },
		{ CYRUS_FLAG_FLAGGED, "\\flagged" }, { CYRUS_FLAG_DRAFT, "\\draft" },
		{ CYRUS_FLAG_SEEN, "\\seen" },
	};
	uint32_t crc = 0, i;
	size_t k;

	for (i = 0; i < f->x.num_records; i++) {
		const struct cyrus_index_record *rec = &f->x.records[i];
		uint32_t fc = 0;
		char buf[4096], hex[41];

		if (is_expunged(rec))
			continue;
		for (k = 0; k < sizeof sys / sizeof sys[0]; k++)
			if (rec->system_flags & sys[k].bit)
				fc ^= (uint32_t)crc32(0L, (const Bytef *)sys[k].name, (uInt)strlen(sys[k].name));
		for (k = 0; k < f->h.nflags && k < 128; k++) {
			char lower[1024];
			size_t j;

			if (!(rec->user_flags[k / 32] & (1u << (k % 32))) || f->h.flagnames[k][0] == '\0')
				continue;
			for (j = 0; f->h.flagnames[k][j] && j + 1 < sizeof lower; j++)
				lower[j] = (char)(f->h.flagnames[k][j] >= 'A' && f->h.flagnames[k][j] <= 'Z' ?
				    f->h.flagnames[k][j] + 32 : f->h.flagnames[k][j]);
			lower[j] = '\0';
			fc ^= (uint32_t)crc32(0L, (const Bytef *)lower, (uInt)j);
		}
		cyrus_guid_hex(rec->guid, hex);
		snprintf(buf, sizeof buf, "%u %" PRIu64 " %u (%u) %u %s", rec->uid, rec->modseq + f->shift,
		    rec->last_updated, fc, rec->internaldate, hex);
		crc ^= (uint32_t)crc32(0L, (const Bytef *)buf, (uInt)strlen(buf));
	}
	return crc;
}

static void
write_annots(struct dlw *w, const struct rc_annot *v, size_t n, uint64_t shift)
{
	size_t i;

	for (i = 0; i < n; i++) {
		dlw_open(w, NULL, 1);
		dlw_kstr(w, "ENTRY", v[i].entry);
		dlw_kstr(w, "USERID", v[i].userid);
		dlw_knum(w, "MODSEQ", v[i].modseq ? v[i].modseq + shift : 0);
		dlw_str(w, "VALUE");
		dlw_map(w, v[i].value, v[i].vlen);
		dlw_close(w);
	}
}

static void
write_virtual_annot(struct dlw *w, const char *name, const char *value)
{
	dlw_open(w, NULL, 1);
	dlw_kstr(w, "ENTRY", name);
	dlw_kstr(w, "USERID", "");
	dlw_knum(w, "MODSEQ", 0);
	dlw_kstr(w, "VALUE", value);
	dlw_close(w);
}

/* One RECORD of APPLY MAILBOX (sync_support.c sync_prepare_dlists). *ai
 * walks the folder's message annotations (sorted by uid). */
static void
write_record(struct dlw *w, const struct rc_folder *f, const struct cyrus_index_record *rec,
    size_t *ai)
{
	char hex[41], num[24];
	size_t k, a0;

	dlw_open(w, NULL, 1);
	dlw_knum(w, "UID", rec->uid);
	dlw_knum(w, "MODSEQ", rec->modseq + f->shift);
	dlw_knum(w, "LAST_UPDATED", rec->last_updated);
	dlw_open(w, "FLAGS", 0);
	if (rec->system_flags & CYRUS_FLAG_DELETED)
		dlw_flag(w, "\\Deleted");
	if (rec->system_flags & CYRUS_FLAG_ANSWERED)
		dlw_flag(w, "\\Answered");
	if (rec->system_flags & CYRUS_FLAG_FLAGGED)
		dlw_flag(w, "\\Flagged");
	if (rec->system_flags & CYRUS_FLAG_DRAFT)
		dlw_flag(w, "\\Draft");
	if (rec->system_flags & CYRUS_FLAG_EXPUNGED)
		dlw_flag(w, "\\Expunged");
	if (rec->system_flags & CYRUS_FLAG_SEEN)
		dlw_flag(w, "\\Seen");
	for (k = 0; k < f->h.nflags && k < 128; k++)
		if ((rec->user_flags[k / 32] & (1u << (k % 32))) && f->h.flagnames[k][0] != '\0')
			dlw_str(w, f->h.flagnames[k]);
	dlw_close(w);
	dlw_knum(w, "INTERNALDATE", rec->internaldate);
	dlw_knum(w, "SIZE", rec->size);
	cyrus_guid_hex(rec->guid, hex);
	dlw_kstr(w, "GUID", hex);
	while (*ai < f->nan && f->an[*ai].uid < rec->uid)
		(*ai)++;
	a0 = *ai;
	while (*ai < f->nan && f->an[*ai].uid == rec->uid)
		(*ai)++;
	if (*ai > a0 || rec->cid || rec->savedate || rec->createdmodseq) {
		dlw_open(w, "ANNOTATIONS", 0);
		write_annots(w, f->an + a0, *ai - a0, f->shift);
		if (rec->cid && f->x.minor_version >= 13) {
			snprintf(num, sizeof num, "%016" PRIx64, rec->cid);
			write_virtual_annot(w, ANNOT_NS "thrid", num);
		}
		if (rec->savedate && f->x.minor_version >= 15) {
			snprintf(num, sizeof num, "%u", rec->savedate);
			write_virtual_annot(w, ANNOT_NS "savedate", num);
		}
		if (rec->createdmodseq && f->x.minor_version >= 16) {
			snprintf(num, sizeof num, "%" PRIu64, rec->createdmodseq);
			write_virtual_annot(w, ANNOT_NS "createdmodseq", num);
		}
		dlw_close(w);
	}
	dlw_close(w);
}

/* In a restore as another user (--beside), the entries of an ACL
 * ("id\trights\t"...) naming the archived owner name the new one. */
static int
map_acl(const struct rc *r, char **acl)
{
	struct dlw w;
	const char *p = *acl;

	if (strcmp(r->user, r->tuser) == 0)
		return 0;
	memset(&w, 0, sizeof w);
	while (*p) {
		const char *tab = strchr(p, '\t'), *end;

		if (tab == NULL)
			break;
		end = strchr(tab + 1, '\t');
		end = end ? end + 1 : tab + 1 + strlen(tab + 1);
		if ((size_t)(tab - p) == strlen(r->user) && strncmp(p, r->user, (size_t)(tab - p)) == 0)
			dlw_raw(&w, r->tuser, strlen(r->tuser));
		else
			dlw_raw(&w, p, (size_t)(tab - p));
		dlw_raw(&w, tab, (size_t)(end - tab));
		p = end;
	}
	if (w.oom) {
		dlw_free(&w);
		return -1;
	}
	free(*acl);
	*acl = w.buf ? w.buf : strdup("");
	return *acl == NULL ? -1 : 0;
}

/* APPLY MAILBOX for folder f. */
static int
apply_mailbox(struct rc *r, struct rc_folder *f)
{
	struct dlw w;
	char opts[8], what[1200];
	size_t ai = 0;
	uint32_t i;

	memset(&w, 0, sizeof w);
	dlw_raw(&w, "APPLY MAILBOX", 13);
	w.sep = 1;
	dlw_open(&w, NULL, 1);
	dlw_kstr(&w, "UNIQUEID", f->target_id);
	dlw_kstr(&w, "MBOXNAME", f->target);
	if (f->mbtype[0] != '\0')
		dlw_kstr(&w, "MBOXTYPE", f->mbtype);
	dlw_knum(&w, "SYNC_CRC", f->sync_crc);
	dlw_knum(&w, "LAST_UID", f->x.last_uid);
	dlw_knum(&w, "HIGHESTMODSEQ", f->x.highestmodseq + f->shift);
	dlw_knum(&w, "RECENTUID", f->x.recentuid);
	dlw_knum(&w, "RECENTTIME", f->x.recenttime);
	dlw_knum(&w, "LAST_APPENDDATE", f->x.last_appenddate);
	dlw_knum(&w, "POP3_LAST_LOGIN", f->x.pop3_last_login);
	dlw_knum(&w, "POP3_SHOW_AFTER", f->x.pop3_show_after);
	dlw_knum(&w, "UIDVALIDITY", f->x.uidvalidity);
	dlw_kstr(&w, "PARTITION", f->mf->partition);
	if (map_acl(r, &f->acl) < 0) {
		dlw_free(&w);
		return nomem(r);
	}
	dlw_kstr(&w, "ACL", f->acl);
	dlw_kstr(&w, "OPTIONS", options_str(f->x.options, opts));
	if (f->x.createdmodseq)
		dlw_knum(&w, "CREATEDMODSEQ", f->x.createdmodseq);
	if (f->foldermodseq)
		dlw_knum(&w, "FOLDERMODSEQ", f->foldermodseq + f->shift);
	if (f->nfan > 0) {
		dlw_open(&w, "ANNOTATIONS", 0);
		write_annots(&w, f->fan, f->nfan, 0);
		dlw_close(&w);
	}
	dlw_open(&w, "RECORD", 0);
	for (i = 0; i < f->x.num_records; i++)
		write_record(&w, f, &f->x.records[i], &ai);
	dlw_close(&w);
	dlw_close(&w);
	dlw_raw(&w, "\r\n", 2);
	snprintf(what, sizeof what, "folder '%s'", f->target);
	return rc_send(r, &w, what, NULL);
}

/* ---- what the server has ---- */

static int
is_intermediate(const struct dl *mb)
{
	const char *t = dl_atom(mb, "MBOXTYPE");

	return t != NULL && strchr(t, 'i') != NULL;
}

/* GET KIND (v...): the MAILBOX items of the reply into rep. */
int
rc_get_list(struct rc *r, const char *kind, char **v, size_t n, struct csync_reply *rep)
{
	struct dlw w;
	size_t i;

	if (n == 0)
		return 0;
	memset(&w, 0, sizeof w);
	dlw_raw(&w, "GET ", 4);
	dlw_raw(&w, kind, strlen(kind));
	w.sep = 1;
	dlw_open(&w, NULL, 0);
	for (i = 0; i < n; i++)
		dlw_str(&w, v[i]);
	dlw_close(&w);
	dlw_raw(&w, "\r\n", 2);
	return rc_send(r, &w, kind, rep);
}

/* The MAILBOX item whose key is value (not an intermediate), or NULL. */
const struct dl *
rc_find_mailbox(const struct csync_reply *rep, const char *key, const char *value)
{
	size_t i;

	for (i = 0; i < rep->n; i++) {
		const char *v;

		if (strcmp(rep->items[i].key, "MAILBOX") != 0 || rep->items[i].value.kind != DL_KVLIST)
			continue;
		if (is_intermediate(&rep->items[i].value))
			continue;
		v = dl_atom(&rep->items[i].value, key);
		if (v != NULL && strcmp(v, value) == 0)
			return &rep->items[i].value;
	}
	return NULL;
}

/* Derived from the uniqueid, the target name and n, so a second run picks
 * the same one; 24 characters of [a-z0-9], as Cyrus's own. */
void
rc_derive_id(const char *id, const char *target, unsigned n, char out[25])
{
	static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char seed[16];

	snprintf(seed, sizeof seed, "%u", n);
	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(ctx, "chjournal-restore", 18);
		EVP_DigestUpdate(ctx, id, strlen(id) + 1);
		EVP_DigestUpdate(ctx, target, strlen(target) + 1);
		EVP_DigestUpdate(ctx, seed, strlen(seed));
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	}
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 24; i++)
		out[i] = digits[(mdlen > i ? md[i] : i) % 36];
	out[24] = '\0';
}

int
rc_derived_id_for(struct rc *r, const char *id, const char *name, char out[25], int *there)
{
	struct csync_reply rep;
	unsigned k;
	int rc = 1;

	memset(&rep, 0, sizeof rep);
	*there = 0;
	for (k = 0; k < 16; k++) {
		char *one[1] = { out };
		const struct dl *taken;
		const char *by;

		rc_derive_id(id, name, k, out);
		csync_reply_free(&rep);
		if (rc_get_list(r, "UNIQUEIDS", one, 1, &rep) < 0) {
			rc = -1;
			break;
		}
		taken = rc_find_mailbox(&rep, "UNIQUEID", out);
		by = taken != NULL ? dl_atom(taken, "MBOXNAME") : NULL;
		if (taken == NULL || (by != NULL && strcmp(by, name) == 0)) {
			*there = taken != NULL;
			rc = 0;
			break;
		}
	}
	csync_reply_free(&rep);
	return rc;
}

/* Whether the server's mailbox mb holds exactly what f would write. */
static int
same_as_planned(const struct rc_folder *f, const struct dl *mb)
{
	const char *id = dl_atom(mb, "UNIQUEID");
	uint64_t v;

	if (id == NULL || strcmp(id, f->target_id) != 0)
		return 0;
	if (!dl_num(mb, "UIDVALIDITY", &v) || v != f->x.uidvalidity)
		return 0;
	if (!dl_num(mb, "LAST_UID", &v) || v != f->x.last_uid)
		return 0;
	if (!dl_num(mb, "HIGHESTMODSEQ", &v) || v != f->x.highestmodseq + f->shift)
		return 0;
	if (f->sync_crc != 0 && (!dl_num(mb, "SYNC_CRC", &v) || v != f->sync_crc))
		return 0;
	return 1;
}

/* The modseq shift of f: what the server handed out for this folder (its
 * delayed-delete copy, which holds the archived uniqueid) must stay below
 * everything restored, or a client's cached HIGHESTMODSEQ would hide the
 * restored state from CONDSTORE/QRESYNC. */
static uint64_t
modseq_shift(const struct rc_folder *f, const struct csync_reply *ids)
{
	uint64_t base = 0, lo = f->x.highestmodseq, v;
	size_t i;

	for (i = 0; i < ids->n; i++) {
		const struct dl *mb = &ids->items[i].value;
		const char *id = dl_atom(mb, "UNIQUEID"), *name = dl_atom(mb, "MBOXNAME");

		if (strcmp(ids->items[i].key, "MAILBOX") != 0 || id == NULL || name == NULL ||
		    strcmp(id, f->mf->uniqueid) != 0 || strcmp(name, f->target) == 0)
			continue;
		if (dl_num(mb, "HIGHESTMODSEQ", &v) && v > base)
			base = v;
	}
	for (i = 0; i < f->x.num_records; i++)
		if (f->x.records[i].modseq < lo)
			lo = f->x.records[i].modseq;
	if (lo == 0)
		lo = 1;
	return base >= lo ? base - lo + 1 : 0;
}

/* With folders named: the owner's INBOX must be on the server or among
 * them, as Cyrus creates no folder of a user that does not exist. */
static int
check_owner(struct rc *r)
{
	struct csync_reply rep;
	char inbox[1100], *p, *one[1] = { inbox };
	size_t i;
	int there;

	snprintf(inbox, sizeof inbox, "user.%s", r->tuser);
	for (p = inbox + 5; *p; p++)
		if (*p == '.')
			*p = '^';
	for (i = 0; i < r->nf; i++)
		if (strcmp(r->f[i].target, inbox) == 0)
			return 0;
	memset(&rep, 0, sizeof rep);
	if (rc_get_list(r, "MAILBOXES", one, 1, &rep) < 0)
		return -1;
	there = rc_find_mailbox(&rep, "MBOXNAME", inbox) != NULL;
	csync_reply_free(&rep);
	if (!there)
		return chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "user '%s' does not exist on %s: refused "
		    "(nothing written; restore the whole user, or its INBOX '%s' with the folders)",
		    r->tuser, csync_name(r->cs), inbox);
	return 0;
}

/* Decides each folder's uniqueid, modseq shift and action. */
static int
plan(struct rc *r)
{
	struct csync_reply byname, byid;
	char **names = calloc(r->nf + 1, sizeof *names), **ids = calloc(r->nf + 1, sizeof *ids);
	size_t i, n = 0;
	int rc = -1;

	memset(&byname, 0, sizeof byname);
	memset(&byid, 0, sizeof byid);
	if (names == NULL || ids == NULL) {
		nomem(r);
		goto out;
	}
	for (i = 0; i < r->nf; i++) {
		names[n] = r->f[i].target;
		ids[n++] = r->f[i].mf->uniqueid;
	}
	if (rc_get_list(r, "MAILBOXES", names, n, &byname) < 0 ||
	    rc_get_list(r, "UNIQUEIDS", ids, n, &byid) < 0)
		goto out;
	if (r->o->nfolders > 0 && check_owner(r) < 0)
		goto out;
	for (i = 0; i < r->nf; i++) {
		struct rc_folder *f = &r->f[i];
		const struct dl *same_id = rc_find_mailbox(&byid, "UNIQUEID", f->mf->uniqueid);
		const char *used_by = same_id ? dl_atom(same_id, "MBOXNAME") : NULL;

		f->shift = modseq_shift(f, &byid);
		if (used_by == NULL || strcmp(used_by, f->target) == 0) {
			f->target_id = strdup(f->mf->uniqueid);
		} else {
			/* the archived uniqueid is another mailbox's now: a derived
			 * one that nobody but this folder's earlier restore has */
			char cand[25];
			int there, got = rc_derived_id_for(r, f->mf->uniqueid, f->target, cand, &there);

			if (got < 0)
				goto out;
			if (got > 0) {
				chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "folder '%s': no free uniqueid on %s",
				    f->mf->name, csync_name(r->cs));
				goto out;
			}
			f->target_id = strdup(cand);
			f->new_id = 1;
		}
		if (f->target_id == NULL) {
			nomem(r);
			goto out;
		}
		f->sync_crc = sync_crc(f);
		{
			const struct dl *there = rc_find_mailbox(&byname, "MBOXNAME", f->target);

			uint64_t last_uid = 1;

			/* ManageSieve creates an empty #sieve on a user's first
			 * visit: one that never held a script is replaced (the
			 * server does so when the uniqueid differs and LAST_UID is 0) */
			if (there != NULL && f->sieve && dl_num(there, "LAST_UID", &last_uid) &&
			    last_uid == 0 && !same_as_planned(f, there))
				there = NULL;
			if (there == NULL)
				f->action = CYRUS_CSYNC_CREATE;
			else if (same_as_planned(f, there))
				f->action = CYRUS_CSYNC_PRESENT;
			else
				f->action = CYRUS_CSYNC_EXISTS;
		}
	}
	rc = 0;
out:
	csync_reply_free(&byname);
	csync_reply_free(&byid);
	free(names);
	free(ids);
	return rc;
}

/* Tells the plan; refuses (one line) when something exists. */
static int
tell_plan(struct rc *r)
{
	const struct rc_folder *first = NULL;
	unsigned long clashes = 0;
	char inbox[1024], *p;
	size_t i;

	snprintf(inbox, sizeof inbox, "user.%s", r->tuser);
	for (p = inbox + 5; *p; p++)
		if (*p == '.')
			*p = '^';
	for (i = 0; i < r->nf; i++) {
		struct cyrus_csync_event ev;
		const struct rc_folder *f = &r->f[i];

		memset(&ev, 0, sizeof ev);
		ev.folder = f->mf->name;
		ev.target = f->target;
		ev.action = f->action;
		ev.uniqueid = f->target_id;
		ev.new_uniqueid = f->new_id;
		ev.modseq_shift = f->shift;
		ev.messages = f->x.num_records;
		if (r->o->dry_run || f->action == CYRUS_CSYNC_PRESENT)
			rc_tell(r, &ev);
		if (f->action == CYRUS_CSYNC_EXISTS) {
			if (first == NULL || strcmp(f->target, inbox) == 0)
				first = f;
			clashes++;
		}
	}
	if (first == NULL)
		return 0;
	if (r->o->nfolders == 0 && strcmp(first->target, inbox) == 0)
		return chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "user '%s' exists on %s: refused (nothing "
		    "written; --beside SUFFIX restores it as another user)", r->tuser, csync_name(r->cs));
	if (clashes > 1)
		return chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "folder '%s' and %lu more exist on %s: "
		    "refused (nothing written; --beside SUFFIX restores beside them)", first->target,
		    clashes - 1, csync_name(r->cs));
	return chj_error_set(r->e, CHJ_ERR_REFUSED, 0, "folder '%s' exists on %s: refused (nothing "
	    "written; --beside SUFFIX restores beside it)", first->target, csync_name(r->cs));
}

/* ---- the messages ---- */

struct upload {
	char name[64];              /* files/<sha1> */
	const char *partition;
};

struct upload_run {
	struct rc *r;
	const char *partition;
	int open;                   /* an APPLY MESSAGE is being written */
	uint64_t bytes;
	unsigned files;
	int csync_failed;           /* r->e says why (the connection is gone) */
};

static int
upload_cmp(const void *a, const void *b)
{
	const struct upload *x = a, *y = b;
	int c = strcmp(x->partition, y->partition);

	return c != 0 ? c : strcmp(x->name, y->name);
}

static int
batch_close(struct upload_run *u)
{
	if (!u->open)
		return 0;
	u->open = 0;
	u->bytes = 0;
	u->files = 0;
	if (csync_write(u->r->cs, ")\r\n", 3, u->r->e) < 0)
		return -1;
	return csync_reply_read(u->r->cs, "the upload of messages", NULL, u->r->e);
}

static int
upload_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, struct chj_error *err)
{
	struct upload_run *u = cbctx;
	struct rc *r = u->r;
	char head[256], buf[65536];
	uint64_t left = e->size;
	ssize_t n;

	(void)w;
	if (e->kind != ARCH_KIND_FILE || strlen(e->name) != strlen(ARCH_FILES) + 40) {
		return chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is not a message", e->name);
	}
	if (!u->open) {
		snprintf(head, sizeof head, "APPLY MESSAGE (");
		u->open = 1;
	} else {
		snprintf(head, sizeof head, " ");
	}
	snprintf(head + strlen(head), sizeof head - strlen(head), "%%{%s %s %" PRIu64 "}\r\n",
	    u->partition, e->name + strlen(ARCH_FILES), e->size);
	if (csync_write(r->cs, head, strlen(head), r->e) < 0)
		goto csync_fail;
	while (left > 0) {
		n = arch_stream_read(s, buf, left < sizeof buf ? (size_t)left : sizeof buf);
		if (n <= 0) {
			if (n == 0)
				chj_error_set(err, CHJ_ERR_CORRUPT, 0, "archive entry '%s' is shorter than announced",
				    e->name);
			/* the server waits for bytes that will not come: the
			 * connection cannot be used any more */
			return -1;
		}
		if (csync_write(r->cs, buf, (size_t)n, r->e) < 0)
			goto csync_fail;
		left -= (uint64_t)n;
	}
	/* the SHA1 check happens at the end of the stream */
	if (arch_stream_read(s, buf, 1) < 0)
		return -1;
	r->res->uploaded++;
	r->res->bytes += e->size;
	u->bytes += e->size;
	if (++u->files >= UPLOAD_BATCH_FILES || u->bytes >= UPLOAD_BATCH_BYTES) {
		if (batch_close(u) < 0)
			goto csync_fail;
	}
	return 0;
csync_fail:
	*err = *r->e;
	u->csync_failed = 1;
	return -1;
}

/* Sends every message the folders to create reference and the archive
 * holds, once per partition. */
static int
upload_messages(struct rc *r)
{
	struct upload *up = NULL;
	struct arch_want *w = NULL;
	size_t n = 0, cap = 0, i, j, k;
	int rc = -1;

	for (i = 0; i < r->nf; i++) {
		const struct rc_folder *f = &r->f[i];

		if (f->action != CYRUS_CSYNC_CREATE)
			continue;
		for (k = 0; k < f->x.num_records; k++) {
			const struct cyrus_index_record *rec = &f->x.records[k];
			char hex[41];
			int have;

			if (!cyrus_record_has_file(rec))
				continue;
			cyrus_guid_hex(rec->guid, hex);
			if ((up = array_grow(up, n, &cap, sizeof *up, 256)) == NULL) {
				nomem(r);
				goto out;
			}
			snprintf(up[n].name, sizeof up[n].name, ARCH_FILES "%s", hex);
			up[n].partition = f->mf->partition;
			have = arch_has(r->ar, up[n].name);
			if (have < 0) {
				arch_error_copy(r->ar, r->e);
				goto out;
			}
			if (!have) {
				/* an expunged message removed before the backup read it:
				 * the server marks the record unlinked */
				if (is_expunged(rec))
					continue;
				chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s' lacks message %s of folder "
				    "'%s' (uid %u): nothing written", r->archive, hex, f->mf->name, rec->uid);
				goto out;
			}
			n++;
		}
	}
	array_sort(up, n, sizeof *up, upload_cmp);
	for (i = 0, j = 0; i < n; i++)
		if (j == 0 || upload_cmp(&up[j - 1], &up[i]) != 0)
			up[j++] = up[i];
	n = j;
	if ((w = calloc(n + 1, sizeof *w)) == NULL) {
		nomem(r);
		goto out;
	}
	for (i = 0; i < n; i = j) {
		struct upload_run u;
		size_t m = 0;

		/* one pass over the archive per partition */
		for (j = i; j < n && strcmp(up[j].partition, up[i].partition) == 0; j++) {
			if (want_latest(r, up[j].name, &w[m]) < 0)
				goto out;
			w[m].name = up[j].name;
			w[m].ctx = NULL;
			m++;
		}
		memset(&u, 0, sizeof u);
		u.r = r;
		u.partition = up[i].partition;
		if (arch_fetch(r->ar, w, m, upload_cb, &u) < 0) {
			if (!u.csync_failed)
				arch_error_wrap(r->e, arch_error(r->ar), CHJ_ERR_ARCHIVE, "archive '%s': %s",
				    r->archive, arch_error(r->ar)->msg);
			goto out;
		}
		if (batch_close(&u) < 0)
			goto out;
	}
	rc = 0;
out:
	free(w);
	free(up);
	return rc;
}

/* ---- the whole restore ---- */

static int
folder_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rc_folder *)a)->target, ((const struct rc_folder *)b)->target);
}

static int
select_folders(struct rc *r)
{
	size_t i, k;
	char sieve[1100], *p;

	snprintf(sieve, sizeof sieve, "user.%s", r->user);
	for (p = sieve + 5; *p; p++)
		if (*p == '.')
			*p = '^';
	snprintf(sieve + strlen(sieve), sizeof sieve - strlen(sieve), ".#sieve");
	for (i = 0; i < r->o->nfolders; i++)
		if (manifest_find_folder(&r->man, r->o->folders[i]) == NULL)
			return chj_error_set(r->e, CHJ_ERR_NOTFOUND, 0, "folder '%s' is not in run %s of '%s'",
			    r->o->folders[i], r->res->run_name, r->archive);
	r->f = calloc(r->man.nfolders + 1, sizeof *r->f);
	if (r->f == NULL)
		return nomem(r);
	for (i = 0; i < r->man.nfolders; i++) {
		const struct manifest_folder *mf = &r->man.folders[i];
		int want = r->o->nfolders == 0;

		for (k = 0; k < r->o->nfolders; k++)
			if (strcmp(r->o->folders[k], mf->name) == 0)
				want = 1;
		if (!want)
			continue;
		r->f[r->nf].mf = mf;
		r->f[r->nf].sieve = strcmp(mf->name, sieve) == 0;
		r->nf++;
	}
	for (i = 0; i < r->nf; i++) {
		if ((r->f[i].target = target_name(r, i)) == NULL)
			return nomem(r);
	}
	return 0;
}

static int
read_run(struct rc *r)
{
	struct arch_run *runs = NULL;
	char *buf = NULL;
	size_t n = 0, i, len = 0;
	int rc;

	if (arch_open(&r->ar, r->archive, ARCH_READ, r->e) < 0)
		return -1;
	if (arch_runs(r->ar, &runs, &n) < 0)
		return arch_error_copy(r->ar, r->e);
	if (runsel_pick(r->o->at, runs, n, r->archive, &i, r->e) < 0) {
		free(runs);
		return -1;
	}
	r->run = runs[i].id;
	snprintf(r->res->run_name, sizeof r->res->run_name, "%s", runs[i].name);
	free(runs);
	if (arch_read_manifest(r->ar, r->run, &buf, &len) < 0)
		return arch_error_copy(r->ar, r->e);
	rc = manifest_parse(&r->man, buf, len);
	free(buf);
	if (rc < 0)
		return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s': run %s: its manifest is "
		    "unreadable: %s", r->archive, r->res->run_name, r->man.err.msg);
	r->user = strdup(r->man.user);
	if (r->user == NULL)
		return nomem(r);
	if (r->o->beside != NULL && r->o->nfolders == 0) {
		if (asprintf(&r->tuser, "%s%s", r->user, r->o->beside) < 0)
			r->tuser = NULL;
	} else {
		r->tuser = strdup(r->user);
	}
	if (r->tuser == NULL)
		return nomem(r);
	r->res->user = strdup(r->user);
	r->res->target_user = strdup(r->tuser);
	if (r->res->user == NULL || r->res->target_user == NULL)
		return nomem(r);
	return 0;
}

static void
rc_free(struct rc *r)
{
	size_t i;

	for (i = 0; r->f != NULL && i < r->nf; i++) {
		struct rc_folder *f = &r->f[i];

		free(f->target);
		free(f->target_id);
		free(f->header.data);
		free(f->index.data);
		free(f->annots.data);
		free(f->mbox.data);
		cyrus_header_free(&f->h);
		cyrus_index_free(&f->x);
		annots_free(f->an, f->nan);
		annots_free(f->fan, f->nfan);
		free(f->acl);
	}
	free(r->f);
	rc_user_free(r);
	manifest_free(&r->man);
	free(r->user);
	free(r->tuser);
	if (r->ar != NULL)
		arch_close(r->ar);
	if (r->cs != NULL)
		csync_close(r->cs);
}

/* Writes the folders to create, parents first; a failure says which
 * folders were written. */
static int
apply_folders(struct rc *r)
{
	unsigned long done = 0, todo = 0;
	size_t i;

	for (i = 0; i < r->nf; i++)
		todo += r->f[i].action == CYRUS_CSYNC_CREATE;
	if (todo == 0)
		return 0;
	if (upload_messages(r) < 0)
		goto fail;
	for (i = 0; i < r->nf; i++) {
		struct rc_folder *f = &r->f[i];
		struct cyrus_csync_event ev;

		if (f->action != CYRUS_CSYNC_CREATE)
			continue;
		if (apply_mailbox(r, f) < 0)
			goto fail;
		r->res->created++;
		done++;
		memset(&ev, 0, sizeof ev);
		ev.folder = f->mf->name;
		ev.target = f->target;
		ev.action = CYRUS_CSYNC_CREATE;
		ev.uniqueid = f->target_id;
		ev.new_uniqueid = f->new_id;
		ev.modseq_shift = f->shift;
		ev.messages = f->x.num_records;
		rc_tell(r, &ev);
	}
	return 0;
fail:
	{
		char why[sizeof r->e->msg];
		enum chj_code code = r->e->code;

		snprintf(why, sizeof why, "%s", r->e->msg);
		chj_error_set(r->e, code, 0, "%s; %lu of %lu folders were written before (run the same "
		    "restore again to complete it)", why, done, todo);
	}
	return -1;
}

/* The server to write to into res->server, and with no server given the
 * run's origin into host and port: the host its manifest names (the one it
 * was pulled from by backup --from; an IPv6 address as [ADDRESS]). */
static int
pick_server(struct rc *r, char **host, char **port)
{
	const char *h = r->man.host;
	char *spec = NULL;
	int rc;

	if (r->o->server != NULL) {
		if ((r->res->server = strdup(r->o->server)) == NULL)
			return nomem(r);
		return 0;
	}
	if (h == NULL)
		return chj_error_set(r->e, CHJ_ERR_INVALID, 0, "archive '%s': run %s was backed up on "
		    "this machine, not pulled from a host: name the server with --to-server",
		    r->archive, r->res->run_name);
	if (asprintf(&spec, strchr(h, ':') != NULL ? "[%s]%s%s" : "%s%s%s", h,
	    r->o->origin_port != NULL ? ":" : "", r->o->origin_port != NULL ? r->o->origin_port : "") < 0)
		return nomem(r);
	rc = csync_parse_server(spec, host, port, r->e);
	if (rc < 0) {
		char why[sizeof r->e->msg];

		snprintf(why, sizeof why, "%s", r->e->msg);
		chj_error_set(r->e, CHJ_ERR_INVALID, 0, "archive '%s': run %s pulled from '%s': %s",
		    r->archive, r->res->run_name, h, why);
	}
	if (rc == 0)
		r->res->server = spec;
	else
		free(spec);
	return rc;
}

int
cyrus_csync_restore(const char *archive, const struct cyrus_csync_opts *o,
    struct cyrus_csync_result *res, struct chj_error *e)
{
	struct csync_opts co;
	struct rc r;
	char *host = NULL, *port = NULL;
	size_t i;
	int rc = -1, k;

	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	chj_error_clear(e);
	r.archive = archive;
	r.o = o;
	r.res = res;
	r.e = e;
	manifest_init(&r.man);
	if (o->beside != NULL && !beside_ok(o->beside)) {
		chj_error_set(e, CHJ_ERR_INVALID, 0, "bad --beside '%s': a suffix of printable characters "
		    "without '.', '/', '^', '%%', '*', '\"' or '\\'", o->beside);
		goto out;
	}
	if (o->server != NULL && csync_parse_server(o->server, &host, &port, e) < 0)
		goto out;
	if (read_run(&r) < 0 || pick_server(&r, &host, &port) < 0 || select_folders(&r) < 0 ||
	    read_folder_meta(&r) < 0)
		goto out;
	for (i = 0; i < r.nf; i++)
		if (parse_folder(&r, &r.f[i]) < 0)
			goto out;
	if (rc_user_read(&r) < 0)
		goto out;
	array_sort(r.f, r.nf, sizeof *r.f, folder_cmp);
	res->folders = r.nf;
	memset(&co, 0, sizeof co);
	co.host = host;
	co.port = port;
	co.authname = o->authname;
	co.password = o->password;
	co.timeout_ms = o->timeout_ms;
	if (csync_open(&r.cs, &co, e) < 0)
		goto out;
	/* Cyrus 3.6 writes a user's sieve collection (#sieve, mbtype f) by
	 * APPLY MAILBOX only once the client says it replicates that way */
	for (i = 0; i < r.nf; i++)
		if (r.f[i].sieve) {
			static const char capa[] = "APPLY CAPABILITIES (SIEVE-MAILBOX)\r\n";
			struct csync_reply rep;

			memset(&rep, 0, sizeof rep);
			k = csync_cmd(r.cs, capa, sizeof capa - 1, "the SIEVE-MAILBOX capability", &rep, e);
			csync_reply_free(&rep);
			if (k < 0)
				goto out;
			break;
		}
	if (plan(&r) < 0 || tell_plan(&r) < 0)
		goto out;
	for (i = 0; i < r.nf; i++)
		res->present += r.f[i].action == CYRUS_CSYNC_PRESENT;
	if (rc_apply_quotas(&r) < 0 || (!o->dry_run && apply_folders(&r) < 0))
		goto out;
	if (o->nfolders == 0 && rc_user_items(&r) < 0)
		goto out;
	/* the staged uploads go (RESTART clears them); EXIT in csync_close */
	if (!o->dry_run && csync_cmd(r.cs, "RESTART\r\n", 9, "RESTART", NULL, e) < 0)
		goto out;
	rc = 0;
out:
	rc_free(&r);
	free(host);
	free(port);
	return rc;
}

void
cyrus_csync_result_free(struct cyrus_csync_result *res)
{
	free(res->user);
	free(res->target_user);
	free(res->server);
	res->user = res->target_user = res->server = NULL;
}

/* ---- several users at once ---- */

struct many {
	pthread_mutex_t lock;
	char *const *archives;
	size_t n, next;
	const struct cyrus_csync_opts *o;
	struct cyrus_csync_result *res;
	struct chj_error *errs;
	int failed;
};

/* The caller's callback, one thread at a time. */
static void
many_cb(void *ctx, const struct cyrus_csync_event *ev)
{
	struct many *m = ctx;

	pthread_mutex_lock(&m->lock);
	m->o->cb(m->o->ctx, ev);
	pthread_mutex_unlock(&m->lock);
}

static void *
many_worker(void *arg)
{
	struct many *m = arg;
	struct cyrus_csync_opts o = *m->o;

	if (o.cb != NULL) {
		o.cb = many_cb;
		o.ctx = m;
	}
	for (;;) {
		size_t i;
		int rc;

		pthread_mutex_lock(&m->lock);
		i = m->next++;
		pthread_mutex_unlock(&m->lock);
		if (i >= m->n)
			break;
		rc = cyrus_csync_restore(m->archives[i], &o, &m->res[i], &m->errs[i]);
		if (rc < 0) {
			pthread_mutex_lock(&m->lock);
			m->failed++;
			pthread_mutex_unlock(&m->lock);
		}
	}
	return NULL;
}

int
cyrus_csync_restore_many(char *const *archives, size_t n, int jobs,
    const struct cyrus_csync_opts *o, struct cyrus_csync_result *res, struct chj_error *errs)
{
	struct many m;
	pthread_t *t;
	int i, started = 0;

	memset(&m, 0, sizeof m);
	pthread_mutex_init(&m.lock, NULL);
	m.archives = archives;
	m.n = n;
	m.o = o;
	m.res = res;
	m.errs = errs;
	for (i = 0; (size_t)i < n; i++) {
		memset(&res[i], 0, sizeof res[i]);
		chj_error_clear(&errs[i]);
	}
	if (jobs < 1)
		jobs = 1;
	if ((size_t)jobs > n)
		jobs = (int)n;
	t = calloc((size_t)jobs + 1, sizeof *t);
	for (i = 0; t != NULL && i < jobs - 1; i++)
		if (pthread_create(&t[i], NULL, many_worker, &m) == 0)
			started++;
	many_worker(&m);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	pthread_mutex_destroy(&m.lock);
	return m.failed;
}
