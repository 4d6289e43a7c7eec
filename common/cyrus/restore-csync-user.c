/* restore-csync-user.c: the user's state beside the folders, in a restore
 * into a running server (restore-csync.h): the quota roots of the folders
 * created (the archived quotalegacy files, APPLY QUOTA, before the
 * folders); in a whole-user restore the subscriptions, read from the
 * archived sub.db (uuid layout) or USER.sub (legacy layout) and written
 * with APPLY SUB; the active sieve script (the archived defaultbc link)
 * activated with APPLY ACTIVATE_SIEVE, the scripts themselves being the
 * #sieve folder that restore-csync.c writes; the user's seen state in
 * other users' folders (the archived seen.db, APPLY SEEN per record). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cyrus/internal.h"
#include "cyrus/restore-csync.h"

#define QUOTA_DIR ARCH_USER "conf/quota/"
#define TWOSKIP_MAGIC "\xa1\x02\x8b\x0dtwoskip file"

/* Cyrus's quota resources: the keys of its quota files (imap/quota_db.c
 * quota_db_names) and of the protocol (quota_names) */
static const char *const quota_db_names[RC_QUOTA_NRES] = { "S", "M", "AS", "NF" };
static const char *const quota_names[RC_QUOTA_NRES] = {
	"STORAGE", "MESSAGE", "X-ANNOTATION-STORAGE", "X-NUM-FOLDERS"
};

static int
nomem(struct rc *r)
{
	return chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
}

/* ---- quota roots ---- */

/* A decimal number, all of s; 1 and *v, or 0. */
static int
num_of(const char *s, int64_t *v)
{
	char *end;
	long long x;

	if (s == NULL || *s == '\0' || (*s < '0' || *s > '9'))
		return 0;
	x = strtoll(s, &end, 10);
	if (*end != '\0' || x < 0)
		return 0;
	*v = x;
	return 1;
}

/* The historical format: "USED LIMIT [NAME USED LIMIT]...", the first pair
 * the storage's (a third number after a pair: a failed quota -f, skipped). */
static int
quota_parse_old(char *text, int64_t limit[RC_QUOTA_NRES])
{
	char *tok[64], *save = NULL, *t;
	size_t n = 0, i = 0;
	int res = 0, k;
	int64_t used;

	for (t = strtok_r(text, " \t\r\n", &save); t != NULL && n < 64;
	    t = strtok_r(NULL, " \t\r\n", &save))
		tok[n++] = t;
	for (;;) {
		if (i + 2 > n || !num_of(tok[i], &used) || !num_of(tok[i + 1], &limit[res]))
			return -1;
		i += 2;
		if (i < n && num_of(tok[i], &used))
			i++;
		if (i == n)
			return 0;
		for (res = -1, k = 0; k < RC_QUOTA_NRES; k++)
			if (strcasecmp(tok[i], quota_db_names[k]) == 0)
				res = k;
		if (res < 0)
			return -1;
		i++;
	}
}

int
rc_quota_parse(const char *buf, size_t len, int64_t limit[RC_QUOTA_NRES], uint64_t *modseq)
{
	struct chj_error e;
	struct dl d;
	char *text;
	int k, rc;

	for (k = 0; k < RC_QUOTA_NRES; k++)
		limit[k] = -1;
	*modseq = 0;
	if (len > 0 && buf[0] == '%') {
		if (dl_parse(&d, buf, len, NULL, &e) < 0)
			return -1;
		rc = d.kind == DL_KVLIST ? 0 : -1;
		for (k = 0; rc == 0 && k < RC_QUOTA_NRES; k++) {
			const struct dl *x = dl_get(&d, quota_db_names[k]);

			if (x == NULL)
				continue;
			/* (USED) or (USED LIMIT) */
			if (x->kind != DL_LIST || x->n < 1 || x->n > 2 ||
			    (x->n == 2 && !num_of(x->v[1].s, &limit[k])))
				rc = -1;
		}
		if (rc == 0 && dl_get(&d, "MODSEQ") != NULL && !dl_num(&d, "MODSEQ", modseq))
			rc = -1;
		dl_free(&d);
		return rc;
	}
	if ((text = strndup(buf, len)) == NULL)
		return -1;
	rc = quota_parse_old(text, limit);
	free(text);
	return rc;
}

void
rc_quota_command(struct dlw *w, const char *root, const struct rc_quota *q)
{
	int k;

	dlw_raw(w, "APPLY QUOTA", 11);
	w->sep = 1;
	dlw_open(w, NULL, 1);
	dlw_kstr(w, "ROOT", root);
	/* sync_encode_quota_limits: LIMIT for servers before 2.5, always */
	dlw_knum(w, "LIMIT", q->limit[0] >= 0 ? (uint64_t)q->limit[0] : 4294967295u);
	for (k = 0; k < RC_QUOTA_NRES; k++)
		if (q->limit[k] >= 0)
			dlw_knum(w, quota_names[k], (uint64_t)q->limit[k]);
	if (q->modseq)
		dlw_knum(w, "MODSEQ", q->modseq);
	dlw_close(w);
	dlw_raw(w, "\r\n", 2);
}

/* The root of the archived quota file entry: its last name component. */
static const char *
quota_root_of(const char *entry)
{
	const char *slash = strrchr(entry, '/');

	return slash ? slash + 1 : entry;
}

/* Reads the run's quota root files into r->q. */
static int
read_quotas(struct rc *r)
{
	size_t i;

	for (i = 0; i < r->man.nfiles; i++) {
		const char *f = r->man.files[i];
		struct rc_quota *q;
		struct rc_blob b;

		if (strncmp(f, QUOTA_DIR, strlen(QUOTA_DIR)) != 0 || *quota_root_of(f) == '\0')
			continue;
		if (rc_read_entry(r, f, &b) < 0)
			return -1;
		if (!b.have)
			continue;
		if ((q = array_grow(r->q, r->nq, &r->capq, sizeof *r->q, 8)) == NULL) {
			free(b.data);
			return nomem(r);
		}
		r->q = q;
		q = &r->q[r->nq];
		memset(q, 0, sizeof *q);
		if (rc_quota_parse(b.data, b.len, q->limit, &q->modseq) < 0) {
			free(b.data);
			return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s': '%s' is not a Cyrus "
			    "quota file", r->archive, f);
		}
		free(b.data);
		if ((q->root = strdup(quota_root_of(f))) == NULL)
			return nomem(r);
		r->nq++;
	}
	return 0;
}

/* "STORAGE 5000 MESSAGE 300" */
static void
limits_text(const struct rc_quota *q, char *buf, size_t len)
{
	size_t o = 0;
	int k;

	buf[0] = '\0';
	for (k = 0; k < RC_QUOTA_NRES; k++)
		if (q->limit[k] >= 0 && o < len)
			o += (size_t)snprintf(buf + o, len - o, "%s%s %" PRId64, o ? " " : "", quota_names[k],
			    q->limit[k]);
}

int
rc_apply_quotas(struct rc *r)
{
	size_t i, k;

	for (i = 0; i < r->nq; i++) {
		const struct rc_folder *f = NULL;
		struct cyrus_csync_event ev;
		char limits[256], what[1200];
		struct dlw w;

		for (k = 0; k < r->nf && f == NULL; k++)
			if (strcmp(r->f[k].mf->name, r->q[i].root) == 0)
				f = &r->f[k];
		/* only the roots of the folders created: a folder that is
		 * there has the server's own quota */
		if (f == NULL || f->action != CYRUS_CSYNC_CREATE)
			continue;
		limits_text(&r->q[i], limits, sizeof limits);
		if (!r->o->dry_run) {
			memset(&w, 0, sizeof w);
			rc_quota_command(&w, f->target, &r->q[i]);
			snprintf(what, sizeof what, "the quota root '%s'", f->target);
			if (rc_send(r, &w, what, NULL) < 0)
				return -1;
		}
		memset(&ev, 0, sizeof ev);
		ev.quota_root = f->target;
		ev.quota_limits = limits;
		rc_tell(r, &ev);
	}
	return 0;
}

/* ---- the seen state of other users' folders ---- */

int
rc_seen_parse(const char *val, size_t vlen, struct rc_seen *s)
{
	uint64_t v[4];
	size_t i = 0;
	int k;

	for (k = 0; k < 4; k++) {
		if (i >= vlen || val[i] < '0' || val[i] > '9')
			return -1;
		for (v[k] = 0; i < vlen && val[i] >= '0' && val[i] <= '9'; i++)
			v[k] = v[k] * 10 + (uint64_t)(val[i] - '0');
		if (i >= vlen || val[i] != ' ')
			return -1;
		i++;
	}
	if (v[0] != 1 || memchr(val + i, '\0', vlen - i) != NULL)
		return -1;             /* version 1: the only one Cyrus 2.3 to 3.x write */
	s->lastread = v[1];
	s->lastuid = v[2];
	s->lastchange = v[3];
	if ((s->seenuids = strndup(val + i, vlen - i)) == NULL)
		return -1;
	return 0;
}

void
rc_seen_command(struct dlw *w, const char *userid, const char *uniqueid, const struct rc_seen *s)
{
	dlw_raw(w, "APPLY SEEN", 10);
	w->sep = 1;
	dlw_open(w, NULL, 1);
	dlw_kstr(w, "USERID", userid);
	dlw_kstr(w, "UNIQUEID", uniqueid);
	dlw_knum(w, "LASTREAD", s->lastread);
	dlw_knum(w, "LASTUID", s->lastuid);
	dlw_knum(w, "LASTCHANGE", s->lastchange);
	dlw_kstr(w, "SEENUIDS", s->seenuids);
	dlw_close(w);
	dlw_raw(w, "\r\n", 2);
}

struct seen_read {
	struct rc *r;
	int bad;
};

/* One seen.db record (key: the folder's uniqueid) into r->seen; -2 out of
 * memory, -3 a value that is not a seen state. */
static int
seen_record(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct seen_read *sr = ctx;
	struct rc *r = sr->r;
	struct rc_seen *s;

	if ((s = array_grow(r->seen, r->nseen, &r->capseen, sizeof *r->seen, 16)) == NULL)
		return -2;
	r->seen = s;
	s = &r->seen[r->nseen];
	memset(s, 0, sizeof *s);
	if (rc_seen_parse(val, vlen, s) < 0) {
		sr->bad = 1;
		return -3;
	}
	if ((s->uniqueid = strndup(key, klen)) == NULL) {
		free(s->seenuids);
		return -2;
	}
	r->nseen++;
	return 0;
}

/* 1 when entry is one of the user's files in the config directory of this
 * kind: "KIND.db" (uuid layout) or "USER.KIND" (legacy layout) */
static int
is_user_file(const char *entry, const char *kind)
{
	size_t n = strlen(entry), k = strlen(kind);

	if (strncmp(entry, ARCH_USER "conf/user/", strlen(ARCH_USER "conf/user/")) != 0 ||
	    n < k + 4)
		return 0;
	return (entry[n - k - 4] == '/' && strncmp(entry + n - k - 3, kind, k) == 0 &&
	    strcmp(entry + n - 3, ".db") == 0) ||
	    (entry[n - k - 1] == '.' && strcmp(entry + n - k, kind) == 0);
}

/* Reads the run's seen.db into r->seen. */
static int
read_seen(struct rc *r)
{
	size_t i;

	for (i = 0; i < r->man.nfiles; i++) {
		struct seen_read sr = { r, 0 };
		struct chj_error de;
		struct rc_blob b;
		int rc;

		if (!is_user_file(r->man.files[i], "seen"))
			continue;
		if (rc_read_entry(r, r->man.files[i], &b) < 0)
			return -1;
		if (!b.have)
			continue;
		if (b.len < sizeof TWOSKIP_MAGIC - 1 ||
		    memcmp(b.data, TWOSKIP_MAGIC, sizeof TWOSKIP_MAGIC - 1) != 0) {
			/* another backend (seen_db: skiplist): not read, and said */
			free(b.data);
			r->seen_other = r->man.files[i];
			continue;
		}
		rc = cyrus_twoskip_foreach(b.data, b.len, seen_record, &sr, &de);
		free(b.data);
		if (rc == -2)
			return nomem(r);
		if (rc != 0)
			return chj_error_set(r->e, CHJ_ERR_CORRUPT, 0, "archive '%s': '%s': %s", r->archive,
			    r->man.files[i], sr.bad ? "a record is not a seen state" : de.msg);
	}
	return 0;
}

int
rc_user_read(struct rc *r)
{
	if (read_quotas(r) < 0)
		return -1;
	return r->o->nfolders == 0 ? read_seen(r) : 0;
}

void
rc_user_free(struct rc *r)
{
	size_t i;

	for (i = 0; i < r->nq; i++)
		free(r->q[i].root);
	free(r->q);
	for (i = 0; i < r->nseen; i++) {
		free(r->seen[i].uniqueid);
		free(r->seen[i].seenuids);
	}
	free(r->seen);
	r->q = NULL;
	r->seen = NULL;
	r->nq = r->nseen = r->capq = r->capseen = 0;
	r->seen_other = NULL;
}

/* "DELETED.user.u.Sent.6B04C37D" -> "user.u.Sent" (allocated), or NULL */
static char *
undeleted_name(const char *name)
{
	const char *dot;

	if (strncmp(name, "DELETED.", 8) != 0 || (dot = strrchr(name, '.')) == NULL || dot < name + 8)
		return NULL;
	return strndup(name + 8, (size_t)(dot - name - 8));
}

/* Where seen record s goes on the server: the uniqueid of its folder there
 * into out. A folder of this restore: the uniqueid it was written with.
 * Another one whose archived uniqueid only a delayed-delete copy holds
 * now: the one a restore beside that copy derived (rc_derive_id), when a
 * folder of the copy's name has it; else the archived uniqueid (a folder
 * on the server, or one to be restored later). */
static int
seen_target(struct rc *r, const struct rc_seen *s, char *out, size_t outlen)
{
	struct csync_reply rep;
	char *one[1] = { s->uniqueid }, *name = NULL, cand[25];
	const struct dl *mb;
	size_t i;
	int rc = -1, got, there;

	snprintf(out, outlen, "%s", s->uniqueid);
	for (i = 0; i < r->nf; i++)
		if (strcmp(r->f[i].mf->uniqueid, s->uniqueid) == 0 && r->f[i].target_id != NULL) {
			snprintf(out, outlen, "%s", r->f[i].target_id);
			return 0;
		}
	memset(&rep, 0, sizeof rep);
	if (rc_get_list(r, "UNIQUEIDS", one, 1, &rep) < 0)
		goto out;
	mb = rc_find_mailbox(&rep, "UNIQUEID", s->uniqueid);
	if (mb == NULL || dl_atom(mb, "MBOXNAME") == NULL ||
	    (name = undeleted_name(dl_atom(mb, "MBOXNAME"))) == NULL) {
		rc = 0;
		goto out;
	}
	/* the first free candidate: that folder is not restored (yet) */
	if ((got = rc_derived_id_for(r, s->uniqueid, name, cand, &there)) < 0)
		goto out;
	if (got == 0 && there)
		snprintf(out, outlen, "%s", cand);
	rc = 0;
out:
	free(name);
	csync_reply_free(&rep);
	return rc;
}

/* Each seen record, APPLY SEEN under its folder's uniqueid on the server. */
static int
apply_seen(struct rc *r)
{
	size_t i;

	for (i = 0; i < r->nseen; i++) {
		char id[256], what[400];
		struct dlw w;

		if (seen_target(r, &r->seen[i], id, sizeof id) < 0)
			return -1;
		memset(&w, 0, sizeof w);
		rc_seen_command(&w, r->tuser, id, &r->seen[i]);
		snprintf(what, sizeof what, "the seen state of folder %s", id);
		if (rc_send(r, &w, what, NULL) < 0)
			return -1;
	}
	return 0;
}



/* The internal name of subscription key k (klen bytes) of a version 2 file:
 * "N" then the name's parts separated by \x1f, the user's own folders under
 * "INBOX"; or of a version 1 file: the internal name itself. Allocated, NULL
 * when the key is not understood. */
static char *
subs_name(const struct rc *r, const char *k, size_t klen, int v2)
{
	struct dlw w;
	size_t i, start;
	int first = 1;

	memset(&w, 0, sizeof w);
	if (!v2) {
		dlw_raw(&w, k, klen);
		return w.oom ? (dlw_free(&w), NULL) : w.buf;
	}
	if (klen < 2 || k[0] != 'N')
		return NULL;
	for (start = i = 1; i <= klen; i++) {
		size_t j;

		if (i < klen && k[i] != '\x1f')
			continue;
		if (!first)
			dlw_raw(&w, ".", 1);
		if (first && i - start == 5 && memcmp(k + start, "INBOX", 5) == 0) {
			dlw_raw(&w, "user.", 5);
			for (j = 0; r->tuser[j]; j++)
				dlw_raw(&w, r->tuser[j] == '.' ? "^" : &r->tuser[j], 1);
		} else {
			for (j = start; j < i; j++)
				dlw_raw(&w, k[j] == '.' ? "^" : &k[j], 1);
		}
		first = 0;
		start = i + 1;
	}
	if (w.oom || w.buf == NULL) {
		dlw_free(&w);
		return NULL;
	}
	return w.buf;
}

/* The subscriptions of the archived file b: names into *v (strvec). */
static int
read_subs(struct rc *r, const struct rc_blob *b, struct strvec *v)
{
	const char *p = b->data, *end = b->data + b->len;
	int v2 = 0;

	if (b->len >= 5 && memcmp(p, "\x1fVER\x1f", 5) == 0)
		v2 = 1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *tab;
		char *name;

		if (nl == NULL)
			nl = end;
		tab = memchr(p, '\t', (size_t)(nl - p));
		if (tab == NULL)
			tab = nl;
		if (tab > p && p[0] != '\x1f') {
			name = subs_name(r, p, (size_t)(tab - p), v2);
			if (name != NULL && strvec_add(v, name) < 0) {
				free(name);
				return chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
			}
			free(name);
		}
		p = nl + 1;
	}
	return 0;
}

/* The active script: the name defaultbc points to in the archived sieve
 * directory (NAME.bc), allocated; NULL and no error when there is none. */
static int
active_sieve(struct rc *r, char **out)
{
	size_t i, n;

	*out = NULL;
	for (i = 0; i < r->man.nfiles; i++) {
		const char *f = r->man.files[i];
		struct arch_entry e;
		int got;

		n = strlen(f);
		if (strncmp(f, ARCH_USER "sieve/", strlen(ARCH_USER "sieve/")) != 0 || n < 10 ||
		    strcmp(f + n - 10, "/defaultbc") != 0)
			continue;
		got = arch_latest(r->ar, f, r->run, &e);
		if (got < 0)
			return arch_error_copy(r->ar, r->e);
		if (got == 0)
			continue;
		if (e.kind == ARCH_KIND_SYMLINK && e.target != NULL && strchr(e.target, '/') == NULL &&
		    (*out = strdup(e.target)) == NULL) {
			arch_entry_free(&e);
			return chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		arch_entry_free(&e);
		if (*out != NULL)
			break;
	}
	return 0;
}

/* One "APPLY KIND %(USERID user FILENAME name)" */
static int
apply_user_file(struct rc *r, const char *kind, const char *name, const char *what)
{
	struct dlw w;

	memset(&w, 0, sizeof w);
	dlw_raw(&w, "APPLY ", 6);
	dlw_raw(&w, kind, strlen(kind));
	w.sep = 1;
	dlw_open(&w, NULL, 1);
	dlw_kstr(&w, "USERID", r->tuser);
	dlw_kstr(&w, "FILENAME", name);
	dlw_close(&w);
	dlw_raw(&w, "\r\n", 2);
	return rc_send(r, &w, what, NULL);
}

int
rc_user_items(struct rc *r)
{
	struct cyrus_csync_event ev;
	struct strvec subs;
	struct rc_blob b;
	char *active = NULL;
	size_t i;
	int rc = -1;

	memset(&subs, 0, sizeof subs);
	memset(&b, 0, sizeof b);
	for (i = 0; i < r->man.nfiles; i++) {
		if (!is_user_file(r->man.files[i], "sub"))
			continue;
		if (rc_read_entry(r, r->man.files[i], &b) < 0)
			goto out;
		if (b.have && read_subs(r, &b, &subs) < 0)
			goto out;
		free(b.data);
		memset(&b, 0, sizeof b);
	}
	for (i = 0; !r->o->dry_run && i < subs.n; i++) {
		struct dlw w;
		char what[1100];

		memset(&w, 0, sizeof w);
		dlw_raw(&w, "APPLY SUB", 9);
		w.sep = 1;
		dlw_open(&w, NULL, 1);
		dlw_kstr(&w, "MBOXNAME", subs.v[i]);
		dlw_kstr(&w, "USERID", r->tuser);
		dlw_close(&w);
		dlw_raw(&w, "\r\n", 2);
		snprintf(what, sizeof what, "the subscription to '%s'", subs.v[i]);
		if (rc_send(r, &w, what, NULL) < 0)
			goto out;
	}
	if (active_sieve(r, &active) < 0)
		goto out;
	if (active != NULL && !r->o->dry_run &&
	    apply_user_file(r, "ACTIVATE_SIEVE", active, "the activation of the sieve script") < 0)
		goto out;
	if (!r->o->dry_run && apply_seen(r) < 0)
		goto out;
	memset(&ev, 0, sizeof ev);
	ev.user_items = 1;
	ev.subscriptions = subs.n;
	ev.active_script = active;
	ev.seen = r->nseen;
	ev.seen_other = r->seen_other;
	for (i = 0; i < r->nf; i++) {
		uint32_t k;

		if (!r->f[i].sieve)
			continue;
		for (k = 0; k < r->f[i].x.num_records; k++)
			ev.scripts += !(r->f[i].x.records[k].system_flags & CYRUS_FLAG_EXPUNGED);
	}
	rc_tell(r, &ev);
	rc = 0;
out:
	free(b.data);
	free(active);
	strvec_free(&subs);
	return rc;
}
