/* conf.c: reads Cyrus IMAP's imapd.conf ("key: value" lines) into struct
 * cyrus_conf, with the defaults Cyrus 3.6 compiles in (lib/imapoptions) for
 * the keys chjournal needs. Virtual domains are refused: this version does
 * not know their spool and user layout. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

#define CONF_MAX_INCLUDE 8

/* Cyrus's boolean spellings (lib/libconfig.c): 1/0, yes/no, on/off, true/false, t/f. */
static int
parse_bool(const char *v, int *out)
{
	static const char *yes[] = { "1", "yes", "on", "true", "t", "y", NULL };
	static const char *no[] = { "0", "no", "off", "false", "f", "n", NULL };
	int i;

	for (i = 0; yes[i]; i++)
		if (!strcasecmp(v, yes[i])) {
			*out = 1;
			return 0;
		}
	for (i = 0; no[i]; i++)
		if (!strcasecmp(v, no[i])) {
			*out = 0;
			return 0;
		}
	return -1;
}

static int
set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int
add_partition(struct cyrus_conf *c, const char *name, const char *path)
{
	struct cyrus_partition *p;
	size_t i;

	for (i = 0; i < c->npartitions; i++)
		if (!strcmp(c->partitions[i].name, name))
			return set_str(&c->partitions[i].path, path);
	p = realloc(c->partitions, (c->npartitions + 1) * sizeof *p);
	if (!p)
		return -1;
	c->partitions = p;
	p = &c->partitions[c->npartitions];
	p->name = strdup(name);
	p->path = strdup(path);
	if (!p->name || !p->path) {
		free(p->name);
		free(p->path);
		return -1;
	}
	c->npartitions++;
	return 0;
}

static int load_file(struct cyrus_conf *c, const char *file, int depth);

/* One "key: value" pair; keys are lower-cased as Cyrus does. */
static int
set_key(struct cyrus_conf *c, const char *file, int lineno, const char *key,
    const char *val, int depth)
{
	int b, r = 0;

	if (!strcmp(key, "@include"))
		return load_file(c, val, depth + 1);
	if (!strncmp(key, "partition-", 10) && key[10])
		r = add_partition(c, key + 10, val);
	else if (!strcmp(key, "configdirectory"))
		r = set_str(&c->configdirectory, val);
	else if (!strcmp(key, "sievedir"))
		r = set_str(&c->sievedir, val);
	else if (!strcmp(key, "mboxname_lockpath"))
		r = set_str(&c->lockpath, val);
	else if (!strcmp(key, "defaultpartition"))
		r = set_str(&c->defaultpartition, val);
	else if (!strcmp(key, "mboxlist_db"))
		r = set_str(&c->mboxlist_db, val);
	else if (!strcmp(key, "mboxlist_db_path"))
		r = set_str(&c->mboxlist_db_path, val);
	else if (!strcmp(key, "annotation_db"))
		r = set_str(&c->annotation_db, val);
	else if (!strcmp(key, "annotation_db_path"))
		r = set_str(&c->annotation_db_path, val);
	else if (!strcmp(key, "quota_db"))
		r = set_str(&c->quota_db, val);
	else if (!strcmp(key, "virtdomains"))
		c->virtdomains = strcasecmp(val, "off") && strcasecmp(val, "no") &&
		    strcasecmp(val, "0") && strcasecmp(val, "false");
	else if (!strcmp(key, "mailbox_legacy_dirs") || !strcmp(key, "hashimapspool") ||
	    !strcmp(key, "fulldirhash") || !strcmp(key, "unixhierarchysep")) {
		if (parse_bool(val, &b) < 0) {
			chj_error_set(&c->err, CHJ_ERR_INVALID, 0,
			    "%s:%d: '%s' wants yes or no, not '%s'", file, lineno, key, val);
			return -1;
		}
		if (key[0] == 'm')
			c->legacy_dirs = b;
		else if (key[0] == 'h')
			c->hashimapspool = b;
		else if (key[0] == 'f')
			c->fulldirhash = b;
		else
			c->unixhierarchysep = b;
	}
	if (r < 0)
		chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "%s:%d: out of memory", file, lineno);
	return r;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
load_file(struct cyrus_conf *c, const char *file, int depth)
{
	FILE *f;
	char *line = NULL, *key, *val, *p;
	size_t cap = 0;
	int lineno = 0, r = 0;

	if (depth > CONF_MAX_INCLUDE) {
		chj_error_set(&c->err, CHJ_ERR_INVALID, 0, "%s: @include nested too deep", file);
		return -1;
	}
	f = fopen(file, "r");
	if (!f) {
		chj_error_set(&c->err, CHJ_ERR_SYS, errno, "cannot open '%s'", file);
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		for (p = key; *p && *p != ':' && !isspace((unsigned char)*p); p++)
			*p = (char)tolower((unsigned char)*p);
		if (*p != ':') {
			chj_error_set(&c->err, CHJ_ERR_INVALID, 0,
			    "%s:%d: not a 'key: value' line", file, lineno);
			r = -1;
			break;
		}
		*p = '\0';
		val = trim(p + 1);
		if ((r = set_key(c, file, lineno, key, val, depth)) < 0)
			break;
	}
	if (!r && ferror(f)) {
		chj_error_set(&c->err, CHJ_ERR_SYS, errno, "cannot read '%s'", file);
		r = -1;
	}
	free(line);
	fclose(f);
	return r;
}

/* Cyrus 3.6's compiled-in defaults for what the file leaves unset. */
static int
apply_defaults(struct cyrus_conf *c)
{
	char buf[4096];

	if (!c->configdirectory) {
		chj_error_set(&c->err, CHJ_ERR_INVALID, 0, "%s: no configdirectory", c->file);
		return -1;
	}
	if (c->virtdomains) {
		chj_error_set(&c->err, CHJ_ERR_INVALID, 0,
		    "%s: virtdomains is on: virtual domains are not supported by this version", c->file);
		return -1;
	}
	if (!c->sievedir && set_str(&c->sievedir, "/usr/sieve") < 0)
		goto nomem;
	if (!c->defaultpartition && set_str(&c->defaultpartition, "default") < 0)
		goto nomem;
	if (!c->mboxlist_db && set_str(&c->mboxlist_db, "twoskip") < 0)
		goto nomem;
	if (!c->lockpath) {
		snprintf(buf, sizeof buf, "%s/lock", c->configdirectory);
		if (set_str(&c->lockpath, buf) < 0)
			goto nomem;
	}
	if (!c->mboxlist_db_path) {
		snprintf(buf, sizeof buf, "%s/mailboxes.db", c->configdirectory);
		if (set_str(&c->mboxlist_db_path, buf) < 0)
			goto nomem;
	}
	if (!c->annotation_db && set_str(&c->annotation_db, "twoskip") < 0)
		return -1;
	if (!c->annotation_db_path) {
		snprintf(buf, sizeof buf, "%s/annotations.db", c->configdirectory);
		if (set_str(&c->annotation_db_path, buf) < 0)
			return -1;
	}
	if (!c->quota_db && set_str(&c->quota_db, "quotalegacy") < 0)
		goto nomem;
	if (!cyrus_partition_path(c, c->defaultpartition)) {
		chj_error_set(&c->err, CHJ_ERR_INVALID, 0, "%s: no partition-%s for the default partition",
		    c->file, c->defaultpartition);
		return -1;
	}
	return 0;
nomem:
	return chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "out of memory");
}

int
cyrus_conf_load(struct cyrus_conf *c, const char *file)
{
	memset(c, 0, sizeof *c);
	c->unixhierarchysep = 1;
	c->file = strdup(file);
	if (!c->file) {
		chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "out of memory");
		return -1;
	}
	if (load_file(c, file, 0) < 0)
		return -1;
	return apply_defaults(c);
}

void
cyrus_conf_free(struct cyrus_conf *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->npartitions; i++) {
		free(c->partitions[i].name);
		free(c->partitions[i].path);
	}
	free(c->partitions);
	free(c->file);
	free(c->configdirectory);
	free(c->sievedir);
	free(c->lockpath);
	free(c->defaultpartition);
	free(c->mboxlist_db);
	free(c->mboxlist_db_path);
	free(c->annotation_db);
	free(c->annotation_db_path);
	free(c->quota_db);
	free(c->toolsdir);
	c->partitions = NULL;
	c->npartitions = 0;
	c->file = c->configdirectory = c->sievedir = c->lockpath = NULL;
	c->defaultpartition = c->mboxlist_db = c->mboxlist_db_path = c->toolsdir = NULL;
	c->annotation_db = c->annotation_db_path = c->quota_db = NULL;
}

const char *
cyrus_partition_path(const struct cyrus_conf *c, const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < c->npartitions; i++)
		if (!strcmp(c->partitions[i].name, name))
			return c->partitions[i].path;
	return NULL;
}
