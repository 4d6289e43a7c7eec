/* remote.c: a source (source.h) whose every operation is a request to a
 * `chjournal serve` at the other end of a pair of descriptors (proto.h).
 * What comes back is checked as it is parsed: field limits, counts, a file
 * never longer than it said. A connection that ends or sends garbage breaks
 * the source (CHJ_ERR_PEER), so every later operation fails at once. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define REMOTE_META_MAX ((uint64_t)1 << 31)  /* a meta file, at most */
#define REMOTE_ANNOT_MAX ((uint64_t)1 << 31) /* an annotation's value, at most */

struct remote {
	struct source s;
	struct wire w;
	int hello_due;          /* HELLO sent, its answer not read yet */
	unsigned caps;          /* SOURCE_CAP_*: what serve said in HELLO */
	int told_old;           /* that serve lacks a capability: told */
};

static int read_hello(struct remote *r);
static void remote_free(struct source *s);

static struct remote *
remote_of(struct source *s)
{
	return (struct remote *)s;
}

/* The connection is unusable: s breaks, with what went wrong. */
static int
broke(struct remote *r)
{
	struct chj_error e = r->w.err;

	if (r->s.broken)
		return -1;
	if (e.code == CHJ_OK)
		chj_error_set(&e, CHJ_ERR_PROTOCOL, 0, "unexpected answer");
	chj_error_set(&r->s.err, CHJ_ERR_PEER, 0, "connection to '%s': %s", r->s.name, e.msg);
	r->s.broken = 1;
	return -1;
}

static int __attribute__((format(printf, 2, 3)))
bad_answer(struct remote *r, const char *fmt, ...)
{
	va_list ap;

	chj_error_clear(&r->w.err);
	r->w.err.code = CHJ_ERR_PROTOCOL;
	va_start(ap, fmt);
	vsnprintf(r->w.err.msg, sizeof r->w.err.msg, fmt, ap);
	va_end(ap);
	return broke(r);
}

/* Sends the request being built. */
static int
send_request(struct remote *r)
{
	if (wire_end(&r->w) < 0 || wire_flush(&r->w) < 0) {
		/* the other end went away without reading: what it said in
		 * answer to HELLO says why (a banner: not a serve) */
		if (r->hello_due) {
			struct chj_error werr = r->w.err;

			r->hello_due = 0;
			if (read_hello(r) < 0)
				return -1;
			r->w.err = werr;
		}
		return broke(r);
	}
	return 0;
}

/* The next frame of an answer, notes told on the way. Returns 0 and *m; 1
 * when it was PROTO_ERR (s->err set: the answer is over); -1 broken. */
static int
next(struct remote *r, struct wire_msg *m)
{
	if (r->hello_due) {
		r->hello_due = 0;
		if (read_hello(r) < 0)
			return -1;
	}
	for (;;) {
		int rc = wire_recv(&r->w, m);

		r->s.bytes_in = r->w.bytes_in;
		if (rc == 1)
			return bad_answer(r, "the connection ended (is `chjournal serve` running there?)");
		if (rc < 0)
			return broke(r);
		if (m->type == PROTO_NOTE) {
			const char *line = wire_str(&r->w, 0, PROTO_LINE_MAX, "note");

			if (line == NULL)
				return broke(r);
			source_note(&r->s, "%s: %s", r->s.name, line);
			continue;
		}
		if (m->type == PROTO_ERR) {
			uint64_t code, errnum;
			const char *msg;

			if (wire_nfields(&r->w, 3, 3, "error") < 0 || wire_u64(&r->w, 0, "code", &code) < 0 ||
			    wire_u64(&r->w, 1, "errno", &errnum) < 0 ||
			    (msg = wire_str(&r->w, 2, PROTO_LINE_MAX, "message")) == NULL)
				return broke(r);
			if (code == CHJ_OK || code > CHJ_ERR_PROTOCOL)
				code = CHJ_ERR_REFUSED;
			chj_error_clear(&r->s.err);
			r->s.err.code = (enum chj_code)code;
			r->s.err.errnum = errnum < 4096 ? (int)errnum : 0;
			snprintf(r->s.err.msg, sizeof r->s.err.msg, "%s: %s", r->s.name, msg);
			if (code == CHJ_ERR_PROTOCOL || code == CHJ_ERR_PEER)
				r->s.broken = 1;    /* serve ends the connection after one */
			return 1;
		}
		return 0;
	}
}

/* Expects PROTO_OK to end the answer: 0, or -1. */
static int
expect_ok(struct remote *r)
{
	struct wire_msg m;
	int rc = next(r, &m);

	if (rc != 0)
		return -1;
	if (m.type != PROTO_OK)
		return bad_answer(r, "answer of type %d where the end was expected", m.type);
	return 0;
}

/* ---- the run ---- */

static int
remote_begin(struct source *s, const char *consumer, int flags, struct source_run *run)
{
	struct remote *r = remote_of(s);
	struct wire_msg m;
	const char *id, *why;
	uint64_t seq, committed;
	size_t i;
	int rc;

	wire_start(&r->w, PROTO_BEGIN);
	wire_put_str(&r->w, consumer);
	/* an older serve ignores GLOBALS and answers four fields */
	wire_put_u64(&r->w, (uint64_t)flags | PROTO_BEGIN_GLOBALS);
	if (send_request(r) < 0 || (rc = next(r, &m)) < 0)
		return -1;
	if (rc == 1)
		return -1;
	if (m.type != PROTO_RUN || wire_nfields(&r->w, 4, 5, "run") < 0 ||
	    (id = wire_str(&r->w, 0, CONSUMER_RUN_ID_SIZE - 1, "run id")) == NULL ||
	    (why = wire_str(&r->w, 1, sizeof run->full_reason - 1, "full reason")) == NULL ||
	    wire_u64(&r->w, 2, "seq", &seq) < 0 || wire_u64(&r->w, 3, "committed", &committed) < 0)
		return m.type != PROTO_RUN ? bad_answer(r, "answer of type %d to begin", m.type) : broke(r);
	snprintf(run->run_id, sizeof run->run_id, "%s", id);
	snprintf(run->full_reason, sizeof run->full_reason, "%s", why);
	run->seq = (int64_t)seq;
	run->committed = committed != 0;
	if (m.nfields == 5) {
		uint64_t globals;

		if (wire_u64(&r->w, 4, "globals", &globals) < 0)
			return broke(r);
		run->cyrus_annots = (globals & PROTO_GLOBAL_ANNOTS) != 0;
	}
	if ((flags & SOURCE_BEGIN_CYRUS) && !(r->caps & SOURCE_CAP_FOLDER_ANNOTS) && !r->told_old) {
		r->told_old = 1;
		source_note(s, "%s: `chjournal serve` there is too old for folder annotations (IMAP "
		    "METADATA): its backups lack them until it is upgraded", s->name);
	}
	for (;;) {
		if ((rc = next(r, &m)) != 0)
			return -1;
		if (m.type == PROTO_OK)
			return 0;
		if (m.type != PROTO_USERS)
			return bad_answer(r, "answer of type %d to begin", m.type);
		for (i = 0; i < m.nfields; i++) {
			const char *u = wire_str(&r->w, i, PROTO_PATH_MAX, "user");

			if (u == NULL)
				return broke(r);
			if (strvec_add(&run->users, u) < 0)
				return chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
		}
	}
}

static int
remote_end(struct source *s, const char *consumer, const char *run_id, int commit)
{
	struct remote *r = remote_of(s);

	wire_start(&r->w, PROTO_END);
	wire_put_str(&r->w, consumer);
	wire_put_str(&r->w, run_id ? run_id : "");
	wire_put_u64(&r->w, (uint64_t)(commit != 0));
	if (send_request(r) < 0)
		return -1;
	return expect_ok(r);
}

static int
remote_list(struct source *s, const char *consumer, const char *run_id, enum source_list_what what,
    FILE *out)
{
	struct remote *r = remote_of(s);
	struct wire_msg m;
	int failed = 0;

	wire_start(&r->w, PROTO_LIST);
	wire_put_str(&r->w, consumer);
	wire_put_str(&r->w, run_id ? run_id : "");
	wire_put_u64(&r->w, (uint64_t)what);
	if (send_request(r) < 0)
		return -1;
	for (;;) {
		const unsigned char *p;
		size_t len;

		if (next(r, &m) != 0)
			return -1;
		if (m.type == PROTO_OK)
			break;
		if (m.type != PROTO_DATA)
			return bad_answer(r, "answer of type %d to list", m.type);
		if ((p = wire_bytes(&r->w, 0, WIRE_DATA_MAX, "data", &len)) == NULL)
			return broke(r);
		if (!failed && fwrite(p, 1, len, out) != len)
			failed = errno ? errno : EIO;
	}
	if (failed)
		return chj_error_set(&s->err, CHJ_ERR_SYS, failed, "cannot write the list");
	return 0;
}

/* ---- Cyrus ---- */

static char *
dup_field(struct remote *r, size_t i, const char *what, int null_if_empty, int *bad)
{
	const char *v = wire_str(&r->w, i, PROTO_PATH_MAX, what);
	char *d;

	if (v == NULL) {
		*bad = 1;
		return NULL;
	}
	if (null_if_empty && v[0] == '\0')
		return NULL;
	if ((d = strdup(v)) == NULL)
		*bad = 2;
	return d;
}

static int
remote_mailboxes(struct source *s, const char *user, struct cyrus_mboxlist *l)
{
	struct remote *r = remote_of(s);
	struct wire_msg m;
	size_t cap = 0;

	wire_start(&r->w, PROTO_MAILBOXES);
	wire_put_u64(&r->w, user != NULL);
	wire_put_str(&r->w, user);
	if (send_request(r) < 0)
		return -1;
	for (;;) {
		size_t i;

		if (next(r, &m) != 0)
			return -1;
		if (m.type == PROTO_OK)
			return 0;
		if (m.type != PROTO_MBOX || m.nfields % PROTO_MBOX_FIELDS != 0)
			return bad_answer(r, "malformed answer (type %d) to mailboxes", m.type);
		for (i = 0; i < m.nfields; i += PROTO_MBOX_FIELDS) {
			struct cyrus_mailbox *mb;
			uint64_t del;
			int bad = 0;

			if (l->n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct cyrus_mailbox *nv = realloc(l->v, nc * sizeof *nv);

				if (nv == NULL)
					return chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
				l->v = nv;
				cap = nc;
			}
			mb = &l->v[l->n];
			memset(mb, 0, sizeof *mb);
			l->n++;
			mb->name = dup_field(r, i, "mailbox name", 0, &bad);
			mb->uniqueid = dup_field(r, i + 1, "uniqueid", 0, &bad);
			mb->partition = dup_field(r, i + 2, "partition", 0, &bad);
			mb->mbtype = dup_field(r, i + 3, "mbtype", 0, &bad);
			mb->path = dup_field(r, i + 4, "mailbox path", 0, &bad);
			mb->relpath = dup_field(r, i + 5, "relpath", 0, &bad);
			mb->user = dup_field(r, i + 6, "owner", 1, &bad);
			if (bad == 0 && wire_u64(&r->w, i + 7, "deleted", &del) < 0)
				bad = 1;
			if (bad == 2)
				return chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
			if (bad)
				return broke(r);
			mb->deleted = del != 0;
		}
	}
}

static int
remote_meta_stat(struct source *s, const struct cyrus_mailbox *const *v, size_t n,
    struct source_stat *st)
{
	struct remote *r = remote_of(s);
	size_t done = 0;

	while (done < n) {
		struct wire_msg m;
		size_t k = done, got = done * CYRUS_NMETA, i;

		wire_start(&r->w, PROTO_META_STAT);
		while (k < n && wire_frame_size(&r->w) < PROTO_REQUEST_MAX)
			wire_put_str(&r->w, v[k++]->name);
		if (send_request(r) < 0)
			return -1;
		for (;;) {
			if (next(r, &m) != 0)
				return -1;
			if (m.type == PROTO_OK)
				break;
			if (m.type != PROTO_STAT || m.nfields % PROTO_STAT_FIELDS != 0 ||
			    got + m.nfields / PROTO_STAT_FIELDS > k * CYRUS_NMETA)
				return bad_answer(r, "malformed answer (type %d) to meta stat", m.type);
			for (i = 0; i < m.nfields; i += PROTO_STAT_FIELDS)
				if (proto_get_stat(&r->w, i, &st[got++]) < 0)
					return broke(r);
		}
		if (got != k * CYRUS_NMETA)
			return bad_answer(r, "meta stat answered %zu stats for %zu", got, k * CYRUS_NMETA);
		done = k;
	}
	return 0;
}

/* Reads len bytes of DATA frames into buf. */
static int
read_data(struct remote *r, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct wire_msg m;
		const unsigned char *p;
		size_t n;

		if (next(r, &m) != 0)
			return -1;
		if (m.type != PROTO_DATA)
			return bad_answer(r, "answer of type %d where data was expected", m.type);
		if ((p = wire_bytes(&r->w, 0, len - got, "data", &n)) == NULL)
			return broke(r);
		memcpy(buf + got, p, n);
		got += n;
	}
	return 0;
}

static int
remote_meta_read(struct source *s, const struct cyrus_mailbox *mb, struct source_meta *meta)
{
	struct remote *r = remote_of(s);
	struct wire_msg m;

	wire_start(&r->w, PROTO_META_READ);
	wire_put_str(&r->w, mb->name);
	if (send_request(r) < 0)
		return -1;
	for (;;) {
		uint64_t k, present, len;
		struct source_stat st;

		if (next(r, &m) != 0)
			goto fail;
		if (m.type == PROTO_OK)
			return 0;
		if (m.type != PROTO_META || wire_nfields(&r->w, 3 + PROTO_STAT_FIELDS,
		    3 + PROTO_STAT_FIELDS, "meta") < 0 || wire_u64(&r->w, 0, "index", &k) < 0 ||
		    wire_u64(&r->w, 1, "present", &present) < 0 || wire_u64(&r->w, 2, "length", &len) < 0 ||
		    proto_get_stat(&r->w, 3, &st) < 0 || k >= CYRUS_NMETA || meta->buf[k] != NULL ||
		    len > REMOTE_META_MAX) {
			bad_answer(r, "malformed answer (type %d) to meta read", m.type);
			goto fail;
		}
		meta->st[k] = st;
		if (!present)
			continue;
		if ((meta->buf[k] = malloc((size_t)len + 1)) == NULL) {
			chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
			s->broken = 1;      /* its data is still coming */
			goto fail;
		}
		meta->len[k] = (size_t)len;
		if (read_data(r, meta->buf[k], (size_t)len) < 0)
			goto fail;
	}
fail:
	source_meta_free(meta);
	return -1;
}

static int
remote_user_files(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **out, size_t *nout)
{
	struct remote *r = remote_of(s);
	struct source_user_file *v = NULL;
	struct wire_msg m;
	size_t n = 0, cap = 0;

	(void)ml;                   /* serve uses its own list of the user's */
	wire_start(&r->w, PROTO_USER_FILES);
	wire_put_str(&r->w, user);
	if (send_request(r) < 0)
		return -1;
	for (;;) {
		struct source_user_file *f;
		uint64_t has;
		int bad = 0;

		if (next(r, &m) != 0)
			goto fail;
		if (m.type == PROTO_OK)
			break;
		if (m.type != PROTO_UFILE || wire_nfields(&r->w, 4 + PROTO_STAT_FIELDS,
		    4 + PROTO_STAT_FIELDS, "user file") < 0) {
			bad_answer(r, "malformed answer (type %d) to user files", m.type);
			goto fail;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct source_user_file *nv = realloc(v, nc * sizeof *nv);

			if (nv == NULL) {
				chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
				goto fail;
			}
			v = nv;
			cap = nc;
		}
		f = &v[n++];
		memset(f, 0, sizeof *f);
		f->path = dup_field(r, 0, "path", 0, &bad);
		f->rel = dup_field(r, 1, "rel", 0, &bad);
		if (bad == 0 && wire_u64(&r->w, 2, "has_target", &has) < 0)
			bad = 1;
		if (bad == 0 && has)
			f->target = dup_field(r, 3, "target", 0, &bad);
		if (bad == 0 && proto_get_stat(&r->w, 4, &f->st) < 0)
			bad = 1;
		if (bad == 2) {
			chj_error_set(&s->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto fail;
		}
		if (bad) {
			broke(r);
			goto fail;
		}
	}
	*out = v;
	*nout = n;
	return 0;
fail:
	source_user_files_free(v, n);
	return -1;
}

/* ---- files ---- */

struct remote_file {
	struct remote *r;
	uint64_t left;              /* bytes of the file still to come */
	const unsigned char *cur;   /* the unread part of the DATA frame at hand */
	size_t curlen;
	struct chj_error failed;    /* FERR's (CHJ_ERR_SYS): the file broke off */
};

static ssize_t
remote_file_read(struct source_file *f, void *buf, size_t n, struct chj_error *e)
{
	struct remote_file *rf = f->impl;
	struct remote *r = rf->r;

	if (rf->failed.code != CHJ_OK) {
		*e = rf->failed;
		return -1;
	}
	if (rf->left == 0)
		return 0;
	if (rf->curlen == 0) {
		struct wire_msg m;
		const unsigned char *p;
		size_t len;

		if (next(r, &m) != 0) {
			if (!r->s.broken)
				bad_answer(r, "an error in the middle of a file");
			*e = r->s.err;
			return -1;
		}
		if (m.type == PROTO_FERR) {
			const char *msg = wire_str(&r->w, 0, PROTO_LINE_MAX, "message");

			if (msg == NULL) {
				broke(r);
				*e = r->s.err;
				return -1;
			}
			chj_error_set(&rf->failed, CHJ_ERR_SYS, 0, "%s: %s", r->s.name, msg);
			*e = rf->failed;
			return -1;
		}
		if (m.type != PROTO_DATA || (p = wire_bytes(&r->w, 0, rf->left < WIRE_DATA_MAX ?
		    (size_t)rf->left : WIRE_DATA_MAX, "data", &len)) == NULL || len == 0) {
			bad_answer(r, "malformed data (type %d) of '%s'", m.type, f->path);
			*e = r->s.err;
			return -1;
		}
		rf->cur = p;
		rf->curlen = len;
	}
	if (n > rf->curlen)
		n = rf->curlen;
	memcpy(buf, rf->cur, n);
	rf->cur += n;
	rf->curlen -= n;
	rf->left -= n;
	return (ssize_t)n;
}

static int
remote_fetch(struct source *s, const char *const *paths, size_t n, source_fetch_cb cb, void *ctx)
{
	struct remote *r = remote_of(s);
	size_t done = 0;
	int stop = 0;

	while (done < n) {
		size_t k = done, want = done;
		struct wire_msg m;

		wire_start(&r->w, PROTO_FETCH);
		while (k < n && wire_frame_size(&r->w) < PROTO_REQUEST_MAX)
			wire_put_str(&r->w, paths[k++]);
		if (send_request(r) < 0)
			return -1;
		for (;;) {
			struct source_file f;
			struct remote_file rf;
			uint64_t idx;
			struct chj_error err;
			char scratch[4096];

			if (next(r, &m) != 0)
				return -1;
			if (m.type == PROTO_OK)
				break;
			memset(&f, 0, sizeof f);
			if (m.type != PROTO_FILE || wire_nfields(&r->w, 1 + PROTO_STAT_FIELDS,
			    1 + PROTO_STAT_FIELDS, "file") < 0 || wire_u64(&r->w, 0, "index", &idx) < 0 ||
			    proto_get_stat(&r->w, 1, &f.st) < 0 || idx >= k - done ||
			    done + idx < want)
				return bad_answer(r, "malformed answer (type %d) to fetch", m.type);
			want = done + (size_t)idx + 1;
			f.index = done + (size_t)idx;
			f.path = paths[f.index];
			f.read = remote_file_read;
			f.impl = &rf;
			memset(&rf, 0, sizeof rf);
			rf.r = r;
			rf.left = f.st.err == 0 ? f.st.size : 0;
			if (!stop && cb(ctx, &f) < 0)
				stop = 1;
			if (s->broken)
				return -1;
			/* what the callback left unread is skipped */
			while (rf.left > 0 && rf.failed.code == CHJ_OK) {
				if (remote_file_read(&f, scratch, sizeof scratch, &err) < 0 &&
				    s->broken)
					return -1;
			}
		}
		done = k;
		if (stop)
			return -1;
	}
	return 0;
}

/* ---- folder annotations ---- */

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One annotation, group g of the ANNOT frame at hand (its long value read
 * from the DATA after it), added to out unless ids (sorted) does not name
 * its folder: then it is dropped when filter, else the answer is wrong. */
static int
annot_group(struct remote *r, size_t g, int last, const char *const *ids, size_t n, int filter,
    struct cyrus_annots *out)
{
	const char *id, *entry, *userid;
	const unsigned char *val;
	uint64_t modseq, vlen;
	char *big;
	size_t got;
	int keep;

	if ((id = wire_str(&r->w, g, PROTO_PATH_MAX, "uniqueid")) == NULL ||
	    (entry = wire_str(&r->w, g + 1, PROTO_PATH_MAX, "entry")) == NULL ||
	    (userid = wire_str(&r->w, g + 2, PROTO_PATH_MAX, "userid")) == NULL ||
	    wire_u64(&r->w, g + 3, "modseq", &modseq) < 0 || wire_u64(&r->w, g + 4, "length", &vlen) < 0 ||
	    (val = wire_bytes(&r->w, g + 5, PROTO_ANNOT_INLINE, "value", &got)) == NULL)
		return broke(r);
	if (id[0] == '\0' || entry[0] == '\0' || vlen > REMOTE_ANNOT_MAX ||
	    (vlen <= PROTO_ANNOT_INLINE ? got != vlen : got != 0 || !last))
		return bad_answer(r, "malformed annotation in the answer to folder annotations");
	keep = ids == NULL || bsearch(&id, ids, n, sizeof *ids, cmp_id) != NULL;
	if (!keep && !filter)
		return bad_answer(r, "folder annotations: an annotation of folder '%s', not asked for", id);
	if (keep && cyrus_annots_add(out, id, entry, userid, modseq, (const char *)val,
	    vlen <= PROTO_ANNOT_INLINE ? (size_t)vlen : 0) < 0)
		return chj_error_set(&r->s.err, CHJ_ERR_NOMEM, 0, "out of memory");
	if (vlen <= PROTO_ANNOT_INLINE)
		return 0;
	/* a long value, in the DATA after: into the annotation just added */
	if ((big = malloc((size_t)vlen + 1)) == NULL) {
		chj_error_set(&r->s.err, CHJ_ERR_NOMEM, 0, "out of memory");
		r->s.broken = 1;        /* its data is still coming */
		return -1;
	}
	if (read_data(r, big, (size_t)vlen) < 0) {
		free(big);
		return -1;
	}
	big[vlen] = '\0';
	if (keep) {
		struct cyrus_annot *an = &out->v[out->n - 1];

		free(an->value);
		an->value = big;
		an->vlen = (size_t)vlen;
	} else {
		free(big);
	}
	return 0;
}

static int
remote_folder_annots(struct source *s, const char *const *ids, size_t n, struct cyrus_annots *out)
{
	struct remote *r = remote_of(s);
	struct wire_msg m;
	size_t i, need = 64;
	int filter = 0;

	if (ids != NULL && n == 0)
		return 0;
	for (i = 0; ids != NULL && i < n; i++)
		need += strlen(ids[i]) + 4;
	/* too many to name in one request: every folder's, read at once as
	 * the local source does, the others dropped here */
	filter = ids != NULL && need > PROTO_REQUEST_MAX;
	wire_start(&r->w, PROTO_FOLDER_ANNOTS);
	wire_put_u64(&r->w, ids == NULL || filter);
	for (i = 0; ids != NULL && !filter && i < n; i++)
		wire_put_str(&r->w, ids[i]);
	if (send_request(r) < 0)
		return -1;
	for (;;) {
		if (next(r, &m) != 0)
			goto fail;
		if (m.type == PROTO_OK)
			break;
		if (m.type != PROTO_ANNOT || m.nfields == 0 || m.nfields % PROTO_ANNOT_FIELDS != 0) {
			bad_answer(r, "malformed answer (type %d) to folder annotations", m.type);
			goto fail;
		}
		for (i = 0; i < m.nfields; i += PROTO_ANNOT_FIELDS)
			if (annot_group(r, i, i + PROTO_ANNOT_FIELDS == m.nfields, ids, n, filter, out) < 0)
				goto fail;
	}
	cyrus_annots_sort(out);
	return 0;
fail:
	cyrus_annots_free(out);
	return -1;
}

/* What serve said it can do; the answer to HELLO is read first. */
static unsigned
remote_caps(struct source *s)
{
	struct remote *r = remote_of(s);

	if (r->hello_due) {
		r->hello_due = 0;
		if (read_hello(r) < 0)
			return 0;
	}
	return r->caps;
}

static void
remote_free(struct source *s)
{
	struct remote *r = remote_of(s);

	wire_free(&r->w);
	free(r);
}

static const struct source_ops remote_ops = {
	remote_begin, remote_end, remote_list, remote_mailboxes, remote_meta_stat,
	remote_meta_read, remote_user_files, remote_fetch, remote_free,
	remote_folder_annots, remote_caps,
};

/* The capabilities this client knows among the words of caps. */
static unsigned
caps_of(const char *caps)
{
	unsigned v = 0;

	while (*caps != '\0') {
		size_t n;

		caps += strspn(caps, " ");
		n = strcspn(caps, " ");
		if (n == strlen(PROTO_CAP_FOLDER_ANNOTS) && strncmp(caps, PROTO_CAP_FOLDER_ANNOTS, n) == 0)
			v |= SOURCE_CAP_FOLDER_ANNOTS;
		caps += n;
	}
	return v;
}

/* The answer to HELLO: serve's, with its magic. Read before the answer to
 * the first request, which was sent without waiting for it (an idle pull
 * is then one round trip). 0, or -1 with the source broken. */
static int
read_hello(struct remote *r)
{
	struct wire_msg m;
	const char *magic;
	int rc;

	if ((rc = next(r, &m)) < 0) {
		/* garbage where a hello was due: something else runs there (a
		 * shell's banner, another program as the forced command) */
		if (r->w.err.code == CHJ_ERR_PROTOCOL && r->w.bytes_in > 0) {
			chj_error_set(&r->s.err, CHJ_ERR_PEER, 0, "connection to '%s': not a `chjournal "
			    "serve` at the other end (%s)", r->s.name, r->w.err.msg);
			r->s.broken = 1;
		}
		return -1;
	}
	if (rc == 1) {
		r->s.broken = 1;
		return -1;
	}
	if (m.type != PROTO_HELLO || (magic = wire_str(&r->w, 0, 64, "magic")) == NULL ||
	    strcmp(magic, PROTO_MAGIC) != 0)
		return bad_answer(r, "not a `chjournal serve` (%s) at the other end", PROTO_MAGIC);
	/* an older serve names no capability */
	if (m.nfields >= 3) {
		const char *caps = wire_str(&r->w, 2, PROTO_CAPS_MAX, "capabilities");

		if (caps == NULL)
			return broke(r);
		r->caps = caps_of(caps);
	}
	return 0;
}

int
source_remote_open(struct source **out, int in, int outfd, const char *name, int timeout_ms,
    struct chj_error *e)
{
	struct remote *r = calloc(1, sizeof *r);

	*out = NULL;
	if (r == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	r->s.ops = &remote_ops;
	snprintf(r->s.name, sizeof r->s.name, "%s", name);
	wire_init(&r->w, in, outfd);
	r->w.timeout_ms = timeout_ms;
	wire_start(&r->w, PROTO_HELLO);
	wire_put_str(&r->w, PROTO_MAGIC);
	if (send_request(r) < 0) {
		*e = r->s.err;
		remote_free(&r->s);
		return -1;
	}
	r->hello_due = 1;
	*out = &r->s;
	return 0;
}
