/* restore-csync-user.c: the user's state beside the folders, in a whole-user
 * restore into a running server (restore-csync.h): the subscriptions, read
 * from the archived sub.db (uuid layout) or USER.sub (legacy layout) and
 * written with APPLY SUB; the active sieve script (the archived defaultbc
 * link) activated with APPLY ACTIVATE_SIEVE, the scripts themselves being
 * the #sieve folder that restore-csync.c writes. Not restored yet: quota
 * roots and the seen state of other users; the caller is told so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "cyrus/restore-csync.h"

/* 1 when entry is the user's subscription file */
static int
is_subs_file(const char *entry)
{
	size_t n = strlen(entry);

	if (strncmp(entry, ARCH_USER "conf/", strlen(ARCH_USER "conf/")) != 0)
		return 0;
	return (n > 7 && strcmp(entry + n - 7, "/sub.db") == 0) ||
	    (n > 4 && strcmp(entry + n - 4, ".sub") == 0);
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
	int k;

	memset(&w, 0, sizeof w);
	dlw_raw(&w, "APPLY ", 6);
	dlw_raw(&w, kind, strlen(kind));
	w.sep = 1;
	dlw_open(&w, NULL, 1);
	dlw_kstr(&w, "USERID", r->tuser);
	dlw_kstr(&w, "FILENAME", name);
	dlw_close(&w);
	dlw_raw(&w, "\r\n", 2);
	if (w.oom) {
		dlw_free(&w);
		return chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	k = csync_cmd(r->cs, w.buf, w.len, what, NULL, r->e);
	dlw_free(&w);
	return k;
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
		if (!is_subs_file(r->man.files[i]))
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
		int k;

		memset(&w, 0, sizeof w);
		dlw_raw(&w, "APPLY SUB", 9);
		w.sep = 1;
		dlw_open(&w, NULL, 1);
		dlw_kstr(&w, "MBOXNAME", subs.v[i]);
		dlw_kstr(&w, "USERID", r->tuser);
		dlw_close(&w);
		dlw_raw(&w, "\r\n", 2);
		if (w.oom) {
			dlw_free(&w);
			chj_error_set(r->e, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		snprintf(what, sizeof what, "the subscription to '%s'", subs.v[i]);
		k = csync_cmd(r->cs, w.buf, w.len, what, NULL, r->e);
		dlw_free(&w);
		if (k < 0)
			goto out;
	}
	if (active_sieve(r, &active) < 0)
		goto out;
	if (active != NULL && !r->o->dry_run &&
	    apply_user_file(r, "ACTIVATE_SIEVE", active, "the activation of the sieve script") < 0)
		goto out;
	memset(&ev, 0, sizeof ev);
	ev.user_items = 1;
	ev.subscriptions = subs.n;
	ev.active_script = active;
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
