/* manifest.c: formatting and parsing of a run's manifest (see manifest.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "manifest.h"

#define MANIFEST_MAGIC "chjournal-run 1"

void
manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof *m);
}

void
manifest_free(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->nfolders; i++) {
		free(m->folders[i].uniqueid);
		free(m->folders[i].partition);
		free(m->folders[i].relpath);
		free(m->folders[i].name);
	}
	free(m->folders);
	for (i = 0; i < m->nfiles; i++)
		free(m->files[i]);
	free(m->files);
	free(m->user);
	free(m->host);
	manifest_init(m);
}

static int
field_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strpbrk(s, "\t\n") == NULL;
}

static int
merr(struct manifest *m, enum chj_code code, const char *msg, const char *what)
{
	return chj_error_set(&m->err, code, 0, "%s%s%.120s%s", msg, what ? " '" : "", what ? what : "",
	    what ? "'" : "");
}

int
manifest_add_folder(struct manifest *m, const char *uniqueid, const char *partition,
    const char *relpath, const char *name)
{
	struct manifest_folder *f;

	if (!field_ok(uniqueid) || !field_ok(partition) || !field_ok(relpath) || !field_ok(name))
		return merr(m, CHJ_ERR_REFUSED, "folder field empty or holding a tab or newline:", name);
	if (m->nfolders == m->capfolders) {
		size_t cap = m->capfolders ? m->capfolders * 2 : 16;
		void *p = realloc(m->folders, cap * sizeof *m->folders);

		if (p == NULL)
			return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
		m->folders = p;
		m->capfolders = cap;
	}
	f = &m->folders[m->nfolders];
	f->uniqueid = strdup(uniqueid);
	f->partition = strdup(partition);
	f->relpath = strdup(relpath);
	f->name = strdup(name);
	m->nfolders++;
	if (!f->uniqueid || !f->partition || !f->relpath || !f->name)
		return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
	return 0;
}

int
manifest_add_file(struct manifest *m, const char *entry)
{
	if (!field_ok(entry))
		return merr(m, CHJ_ERR_REFUSED, "file name empty or holding a tab or newline:", entry);
	if (m->nfiles == m->capfiles) {
		size_t cap = m->capfiles ? m->capfiles * 2 : 16;
		void *p = realloc(m->files, cap * sizeof *m->files);

		if (p == NULL)
			return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
		m->files = p;
		m->capfiles = cap;
	}
	m->files[m->nfiles] = strdup(entry);
	if (m->files[m->nfiles] == NULL)
		return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
	m->nfiles++;
	return 0;
}

static int
folder_cmp(const void *a, const void *b)
{
	return strcmp(((const struct manifest_folder *)a)->name,
	    ((const struct manifest_folder *)b)->name);
}

int
manifest_format(struct manifest *m, char **buf, size_t *len)
{
	FILE *f;
	size_t i;

	if (!field_ok(m->user))
		return merr(m, CHJ_ERR_REFUSED, "user name empty or holding a tab or newline", NULL);
	if (m->host != NULL && !field_ok(m->host))
		return merr(m, CHJ_ERR_REFUSED, "host name empty or holding a tab or newline", NULL);
	array_sort(m->folders, m->nfolders, sizeof *m->folders, folder_cmp);
	array_sort(m->files, m->nfiles, sizeof *m->files, array_str_cmp);
	*buf = NULL;
	f = open_memstream(buf, len);
	if (f == NULL)
		return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
	fprintf(f, "%s\ntime %lld\nseq %lld\nuser %s\n", MANIFEST_MAGIC, (long long)m->time,
	    (long long)m->seq, m->user);
	if (m->host != NULL)
		fprintf(f, "host %s\n", m->host);
	for (i = 0; i < m->nfolders; i++)
		fprintf(f, "folder %s\t%s\t%s\t%s\n", m->folders[i].uniqueid, m->folders[i].partition,
		    m->folders[i].relpath, m->folders[i].name);
	for (i = 0; i < m->nfiles; i++)
		fprintf(f, "file %s\n", m->files[i]);
	if (fclose(f) != 0) {
		free(*buf);
		*buf = NULL;
		return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
	}
	return 0;
}

/* Splits a folder line's value into its 4 tab-separated fields (in place). */
static int
parse_folder(struct manifest *m, char *v)
{
	char *fld[4];
	int i;

	for (i = 0; i < 4; i++) {
		fld[i] = v;
		v = strchr(v, '\t');
		if (i < 3) {
			if (v == NULL)
				return -1;
			*v++ = '\0';
		} else if (v != NULL) {
			return -1;
		}
	}
	return manifest_add_folder(m, fld[0], fld[1], fld[2], fld[3]);
}

static int
parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (*s == '\0')
		return -1;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
parse_line(struct manifest *m, char *line)
{
	if (strncmp(line, "time ", 5) == 0)
		return parse_int(line + 5, &m->time);
	if (strncmp(line, "seq ", 4) == 0)
		return parse_int(line + 4, &m->seq);
	if (strncmp(line, "user ", 5) == 0) {
		if (m->user != NULL || !field_ok(line + 5))
			return -1;
		m->user = strdup(line + 5);
		return m->user ? 0 : -1;
	}
	if (strncmp(line, "host ", 5) == 0) {
		if (m->host != NULL || !field_ok(line + 5))
			return -1;
		m->host = strdup(line + 5);
		return m->host ? 0 : -1;
	}
	if (strncmp(line, "folder ", 7) == 0)
		return parse_folder(m, line + 7);
	if (strncmp(line, "file ", 5) == 0)
		return manifest_add_file(m, line + 5);
	return -1;
}

int
manifest_parse(struct manifest *m, const char *buf, size_t len)
{
	char *text, *line, *next;
	int lineno = 1, rc = -1;

	manifest_init(m);
	if (memchr(buf, '\0', len) != NULL)
		return merr(m, CHJ_ERR_CORRUPT, "manifest holds a NUL byte", NULL);
	text = strndup(buf, len);
	if (text == NULL)
		return merr(m, CHJ_ERR_NOMEM, "out of memory", NULL);
	next = strchr(text, '\n');
	if (next == NULL || (size_t)(next - text) != strlen(MANIFEST_MAGIC) ||
	    strncmp(text, MANIFEST_MAGIC, strlen(MANIFEST_MAGIC)) != 0) {
		merr(m, CHJ_ERR_CORRUPT, "not a chjournal run manifest (version 1)", NULL);
		goto out;
	}
	for (line = next + 1; *line != '\0'; line = next + 1) {
		lineno++;
		next = strchr(line, '\n');
		if (next == NULL) {
			chj_error_set(&m->err, CHJ_ERR_CORRUPT, 0, "manifest line %d: no newline at the end", lineno);
			goto out;
		}
		*next = '\0';
		if (parse_line(m, line) < 0) {
			chj_error_set(&m->err, CHJ_ERR_CORRUPT, 0, "manifest line %d is malformed", lineno);
			goto out;
		}
	}
	if (m->user == NULL) {
		merr(m, CHJ_ERR_CORRUPT, "manifest names no user", NULL);
		goto out;
	}
	rc = 0;
out:
	free(text);
	if (rc < 0) {
		struct chj_error e = m->err;

		manifest_free(m);
		m->err = e;
	}
	return rc;
}

int
manifest_same_state(const struct manifest *a, const struct manifest *b)
{
	size_t i;

	if (a->nfolders != b->nfolders || a->nfiles != b->nfiles || strcmp(a->user, b->user) != 0)
		return 0;
	for (i = 0; i < a->nfolders; i++) {
		const struct manifest_folder *x = &a->folders[i], *y = &b->folders[i];

		if (strcmp(x->uniqueid, y->uniqueid) || strcmp(x->partition, y->partition) ||
		    strcmp(x->relpath, y->relpath) || strcmp(x->name, y->name))
			return 0;
	}
	for (i = 0; i < a->nfiles; i++)
		if (strcmp(a->files[i], b->files[i]) != 0)
			return 0;
	return 1;
}

const struct manifest_folder *
manifest_find_folder(const struct manifest *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nfolders; i++)
		if (strcmp(m->folders[i].name, name) == 0)
			return &m->folders[i];
	return NULL;
}

int
manifest_safe_relpath(const char *rel)
{
	const char *p = rel, *slash;
	const unsigned char *c;

	if (rel == NULL || rel[0] == '\0' || rel[0] == '/')
		return 0;
	for (c = (const unsigned char *)rel; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return 0;
	for (;;) {
		size_t n;

		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (slash == NULL)
			return 1;
		p = slash + 1;
	}
}
