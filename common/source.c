/* source.c: what every source shares (source.h): the operations' entry
 * points, which refuse at once on a source that is gone, the notes, and
 * freeing what the operations return. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

void
source_run_free(struct source_run *r)
{
	strvec_free(&r->users);
	memset(r, 0, sizeof *r);
}

void
source_meta_free(struct source_meta *m)
{
	size_t i;

	for (i = 0; i < CYRUS_NMETA; i++) {
		free(m->buf[i]);
		m->buf[i] = NULL;
	}
}

void
source_user_files_free(struct source_user_file *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].rel);
		free(v[i].target);
	}
	free(v);
}

void
source_note(struct source *s, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (s->note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	s->note(s->note_ctx, line);
}

int
source_fail(struct source *s, const struct chj_error *e)
{
	if (e != &s->err)
		s->err = *e;
	if (s->err.code == CHJ_ERR_PEER)
		s->broken = 1;
	return -1;
}

/* -1 with the reason when s cannot be asked anything (gone, or op missing). */
static int
usable(struct source *s, int have, const char *what)
{
	if (s->broken)
		return -1;              /* s->err says why */
	if (!have)
		return chj_error_set(&s->err, CHJ_ERR_REFUSED, 0, "%s%s%s: not available here", what,
		    s->name[0] ? " on " : "", s->name);
	return 0;
}

int
source_begin(struct source *s, const char *consumer, int flags, struct source_run *run)
{
	memset(run, 0, sizeof *run);
	if (usable(s, s->ops->begin != NULL, "begin") < 0)
		return -1;
	return s->ops->begin(s, consumer, flags, run);
}

int
source_end(struct source *s, const char *consumer, const char *run_id, int commit)
{
	if (usable(s, s->ops->end != NULL, commit ? "commit" : "abort") < 0)
		return -1;
	return s->ops->end(s, consumer, run_id, commit);
}

int
source_list(struct source *s, const char *consumer, const char *run_id,
    enum source_list_what what, FILE *out)
{
	if (usable(s, s->ops->list != NULL, "list") < 0)
		return -1;
	return s->ops->list(s, consumer, run_id, what, out);
}

int
source_mailboxes(struct source *s, const char *user, struct cyrus_mboxlist *l)
{
	memset(l, 0, sizeof *l);
	if (usable(s, s->ops->mailboxes != NULL, "the Cyrus mailbox list") < 0)
		return -1;
	return s->ops->mailboxes(s, user, l);
}

int
source_meta_stat(struct source *s, const struct cyrus_mailbox *const *v, size_t n,
    struct source_stat *st)
{
	if (usable(s, s->ops->meta_stat != NULL, "Cyrus meta files") < 0)
		return -1;
	if (n == 0)
		return 0;
	return s->ops->meta_stat(s, v, n, st);
}

int
source_meta_read(struct source *s, const struct cyrus_mailbox *m, struct source_meta *meta)
{
	memset(meta, 0, sizeof *meta);
	if (usable(s, s->ops->meta_read != NULL, "Cyrus meta files") < 0)
		return -1;
	return s->ops->meta_read(s, m, meta);
}

int
source_user_files(struct source *s, const char *user, const struct cyrus_mboxlist *ml,
    struct source_user_file **v, size_t *n)
{
	*v = NULL;
	*n = 0;
	if (usable(s, s->ops->user_files != NULL, "Cyrus user files") < 0)
		return -1;
	return s->ops->user_files(s, user, ml, v, n);
}

int
source_fetch(struct source *s, const char *const *paths, size_t n, source_fetch_cb cb, void *ctx)
{
	if (usable(s, s->ops->fetch != NULL, "files") < 0)
		return -1;
	if (n == 0)
		return 0;
	return s->ops->fetch(s, paths, n, cb, ctx);
}

int
source_has_folder_annots(struct source *s)
{
	if (s->ops->folder_annots == NULL || s->broken)
		return 0;
	return s->ops->caps == NULL || (s->ops->caps(s) & SOURCE_CAP_FOLDER_ANNOTS) != 0;
}

int
source_folder_annots(struct source *s, const char *const *ids, size_t n, struct cyrus_annots *out)
{
	memset(out, 0, sizeof *out);
	if (usable(s, source_has_folder_annots(s), "Cyrus folder annotations") < 0)
		return -1;
	return s->ops->folder_annots(s, ids, n, out);
}

void
source_free(struct source *s)
{
	if (s != NULL)
		s->ops->free(s);
}
