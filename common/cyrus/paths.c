/* paths.c: Cyrus's mailbox names and where their data lives, as Cyrus 3.6
 * computes them (imap/mboxname.c, lib/util.c): the hash directory letter,
 * the user owning an internal name, the legacy name-based directory and a
 * mailbox's data path in either layout. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

char
cyrus_dir_hash_c(const char *name, int full)
{
	unsigned char c;

	if (full) {
		const unsigned char *pt = (const unsigned char *)name;
		uint32_t n = 0;

		while (*pt && *pt != '.') {
			n = ((n << 3) ^ (n >> 5)) ^ *pt;
			pt++;
		}
		return (char)('A' + (n % 23));
	}
	c = (unsigned char)tolower((unsigned char)*name);
	if (!(c >= 'a' && c <= 'z'))
		c = 'q';
	return (char)c;
}

/* Component i (0-based) of a '.'-separated internal name, allocated. */
static char *
name_part(const char *name, int i)
{
	const char *p = name, *e;

	while (i-- > 0) {
		p = strchr(p, '.');
		if (!p)
			return NULL;
		p++;
	}
	e = strchr(p, '.');
	if (!e)
		e = p + strlen(p);
	return strndup(p, (size_t)(e - p));
}

static void
unhat(char *s)
{
	for (; s && *s; s++)
		if (*s == '^')
			*s = '.';
}

char *
cyrus_name_user(const char *name)
{
	char *u = NULL;

	if (!strncmp(name, "user.", 5))
		u = name_part(name, 1);
	else if (!strncmp(name, "DELETED.user.", 13))
		u = name_part(name, 2);
	if (u && !*u) {
		free(u);
		return NULL;
	}
	unhat(u);
	return u;
}

char *
cyrus_legacy_relpath(const struct cyrus_conf *c, const char *name)
{
	char *owner = cyrus_name_user(name), *first, *r, *p;
	size_t len = strlen(name);
	char hash = 0;

	if (c->hashimapspool) {
		/* hashed on the user (mbname_localpart), else the first name part */
		first = owner ? owner : name_part(name, 0);
		if (!first)
			return NULL;
		hash = cyrus_dir_hash_c(first, c->fulldirhash);
		if (first != owner)
			free(first);
	}
	free(owner);
	r = malloc(len + 3);
	if (!r)
		return NULL;
	p = r;
	if (hash) {
		*p++ = hash;
		*p++ = '/';
	}
	memcpy(p, name, len + 1);
	for (; *p; p++)
		if (*p == '.')
			*p = '/';
	return r;
}
int
cyrus_mailbox_is_legacy(const struct cyrus_mailbox *m)
{
	return !m->uniqueid || !*m->uniqueid || (m->mbtype && strchr(m->mbtype, 'l'));
}

/* Fills path and relpath of m from its name, uniqueid, mbtype and partition. */
int
cyrus_mailbox_set_path(const struct cyrus_conf *c, struct cyrus_mailbox *m, struct chj_error *e)
{
	const char *root = cyrus_partition_path(c, m->partition);
	size_t len;

	if (!root) {
		chj_error_set(e, CHJ_ERR_NOTFOUND, 0, "mailbox '%s': partition '%s' is not in %s", m->name,
		    m->partition ? m->partition : "(none)", c->file);
		return -1;
	}
	free(m->relpath);
	free(m->path);
	m->path = NULL;
	if (cyrus_mailbox_is_legacy(m)) {
		m->relpath = cyrus_legacy_relpath(c, m->name);
	} else {
		len = strlen(m->uniqueid);
		m->relpath = malloc(len + 10);
		if (m->relpath)
			snprintf(m->relpath, len + 10, "uuid/%c/%c/%s", m->uniqueid[0],
			    len > 1 ? m->uniqueid[1] : '_', m->uniqueid);
	}
	if (m->relpath) {
		len = strlen(root) + strlen(m->relpath) + 2;
		m->path = malloc(len);
		if (m->path)
			snprintf(m->path, len, "%s/%s", root, m->relpath);
	}
	if (!m->path) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return -1;
	}
	return 0;
}
