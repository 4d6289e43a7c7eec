/* user.c: per-user knowledge of a Cyrus spool: which user a changed path
 * belongs to, the user's files outside the spool (seen, subscriptions,
 * dav.db, sieve scripts) and a reversible file-name escape of user names. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "path.h"
#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

/* Per-user files in the config directory that chjournal keeps: seen state,
 * subscriptions and dav.db (SQLite; in 3.x it indexes the "#sieve" mailbox
 * that holds the sieve sources, so ManageSieve lists a restored user's
 * scripts without a dav_reconstruct). conversations, counters and
 * xapianactive are left out: Cyrus rebuilds them (ctl_conversationsdb -b). */
static const char *const uuid_user_files[] = { "seen.db", "sub.db", "dav.db", NULL };
static const char *const legacy_user_suffixes[] = { "seen", "sub", "dav", NULL };
/* every suffix a legacy per-user file may have, to find the user in a name */
static const char *const all_user_suffixes[] = {
	"seen", "sub", "dav", "conversations", "counters", "xapianactive", NULL
};

/* The internal name in dir/cyrus.header (3.x headers only), allocated; NULL
 * with errno (ENOENT: no header; EINVAL: 2.x header or unparsable). */
static char *
header_name(const char *dir)
{
	char *p = path_join(dir, "cyrus.header"), *buf = NULL, *name = NULL;
	struct cyrus_header h;
	size_t len;

	if (!p)
		return NULL;
	if (cyrus_read_small(p, &buf, &len) == 0) {
		if (cyrus_header_parse(&h, buf, len) == 0 && h.name)
			name = strdup(h.name);
		else
			errno = EINVAL;
		cyrus_header_free(&h);
	}
	free(buf);
	free(p);
	return name;
}

/* ---- which user a path belongs to ---- */

/* rest of path below dir ("" when equal), or NULL */
static const char *
below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (strncmp(path, dir, n))
		return NULL;
	if (path[n] == '\0')
		return path + n;
	if (path[n] != '/')
		return NULL;
	return path + n + 1;
}

/* Copies component i of the '/'-separated rel into buf. */
static int
comp(const char *rel, int i, char *buf, size_t len)
{
	const char *e;

	while (i-- > 0) {
		rel = strchr(rel, '/');
		if (!rel)
			return -1;
		rel++;
	}
	e = strchrnul(rel, '/');
	if ((size_t)(e - rel) >= len || e == rel)
		return -1;
	memcpy(buf, rel, (size_t)(e - rel));
	buf[e - rel] = '\0';
	return 0;
}

/* The user whose INBOX has uniqueid id: from its spool cyrus.header. */
static int
user_of_inbox_uid(const struct cyrus_conf *c, const char *id, char **user, struct chj_error *e)
{
	char dir[8192];
	size_t i;

	for (i = 0; i < c->npartitions; i++) {
		char *name;

		snprintf(dir, sizeof dir, "%s/uuid/%c/%c/%s", c->partitions[i].path, id[0],
		    id[1] ? id[1] : '_', id);
		name = header_name(dir);
		if (!name) {
			if (errno == ENOENT)
				continue;
			chj_error_set(e, CHJ_ERR_SYS, errno, "cannot read '%s/cyrus.header'", dir);
			return -1;
		}
		*user = cyrus_name_user(name);
		free(name);
		return *user ? 1 : 0;
	}
	return 0;
}

static int
user_in_partition(const struct cyrus_conf *c, const char *part, const char *rel,
    char **user, struct chj_error *e)
{
	char a[1024], b[1024], dir[8192];
	int i = 0;

	if (comp(rel, 0, a, sizeof a) < 0)
		return 0;
	if (!strcmp(a, "uuid")) {
		char *name;

		if (comp(rel, 3, b, sizeof b) < 0)
			return 0;
		snprintf(dir, sizeof dir, "%s/uuid/%c/%c/%s", part, b[0], b[1] ? b[1] : '_', b);
		name = header_name(dir);
		if (!name) {
			if (errno == ENOENT)
				return 0;       /* gone (cyr_expire -D): nobody's any more */
			chj_error_set(e, CHJ_ERR_SYS, errno, "cannot read '%s/cyrus.header'", dir);
			return -1;
		}
		*user = cyrus_name_user(name);
		free(name);
		return *user ? 1 : 0;
	}
	if (c->hashimapspool && strlen(a) == 1)
		i = 1;
	if (comp(rel, i, a, sizeof a) < 0)
		return 0;
	if (!strcmp(a, "DELETED"))
		i++;
	if (comp(rel, i, a, sizeof a) < 0 || strcmp(a, "user") || comp(rel, i + 1, b, sizeof b) < 0)
		return 0;
	for (i = 0; b[i]; i++)
		if (b[i] == '^')
			b[i] = '.';
	*user = strdup(b);
	return *user ? 1 : chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
}

/* NAME from a legacy per-user file name "NAME.seen" (or ".seen.NEW"). */
static char *
user_of_legacy_file(const char *file)
{
	char buf[1024];
	size_t n = strlen(file), s;
	int i;

	if (n >= sizeof buf)
		return NULL;
	memcpy(buf, file, n + 1);
	if (n > 4 && !strcmp(buf + n - 4, ".NEW"))
		buf[n -= 4] = '\0';
	for (i = 0; all_user_suffixes[i]; i++) {
		s = strlen(all_user_suffixes[i]);
		if (n > s + 1 && buf[n - s - 1] == '.' && !strcmp(buf + n - s, all_user_suffixes[i])) {
			buf[n - s - 1] = '\0';
			return strdup(buf);
		}
	}
	return NULL;
}

/* Paths in the uuid trees of conf/user and sievedir: uuid/c1/c2/INBOXUID/... */
static int
user_in_uuid_tree(const struct cyrus_conf *c, const char *rel, char **user, struct chj_error *e)
{
	char id[1024];

	if (comp(rel, 3, id, sizeof id) < 0)
		return 0;
	return user_of_inbox_uid(c, id, user, e);
}

int
cyrus_user_of_path(const struct cyrus_conf *c, const char *path, char **user, struct chj_error *e)
{
	char userdir[8192], a[1024], b[1024];
	const char *rel;
	size_t i;

	*user = NULL;
	for (i = 0; i < c->npartitions; i++)
		if ((rel = below(path, c->partitions[i].path)))
			return user_in_partition(c, c->partitions[i].path, rel, user, e);
	snprintf(userdir, sizeof userdir, "%s/user", c->configdirectory);
	if ((rel = below(path, userdir))) {
		if (comp(rel, 0, a, sizeof a) < 0)
			return 0;
		if (!strcmp(a, "uuid"))
			return user_in_uuid_tree(c, rel, user, e);
		if (comp(rel, 1, b, sizeof b) < 0)
			return 0;
		*user = user_of_legacy_file(b);
		return *user ? 1 : 0;
	}
	/* a quota root's file (quotalegacy): quota/H/ROOT, ROOT a folder name */
	snprintf(userdir, sizeof userdir, "%s/quota", c->configdirectory);
	if ((rel = below(path, userdir))) {
		if (comp(rel, 1, b, sizeof b) < 0)
			return 0;
		if (strlen(b) > 4 && !strcmp(b + strlen(b) - 4, ".NEW"))
			b[strlen(b) - 4] = '\0';
		*user = cyrus_name_user(b);
		return *user ? 1 : 0;
	}
	if ((rel = below(path, c->sievedir))) {
		if (comp(rel, 0, a, sizeof a) < 0)
			return 0;
		if (!strcmp(a, "uuid"))
			return user_in_uuid_tree(c, rel, user, e);
		if (comp(rel, 1, b, sizeof b) < 0)
			return 0;
		*user = strdup(b);
		return *user ? 1 : chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	return 0;
}

/* ---- the user's files outside the spool ---- */

static int
push(char ***v, size_t *n, const char *path)
{
	char **nv;

	if (access(path, F_OK) < 0) {
		struct stat st;

		if (lstat(path, &st) < 0)
			return 0;           /* only those that exist (a dangling link counts) */
	}
	nv = realloc(*v, (*n + 2) * sizeof *nv);
	if (!nv)
		return -1;
	*v = nv;
	nv[*n] = strdup(path);
	if (!nv[*n])
		return -1;
	nv[++*n] = NULL;
	return 0;
}

/* Regular files and symlinks (defaultbc) directly in dir. */
static int
push_dir(char ***v, size_t *n, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int r = 0;

	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	while (r == 0 && (e = readdir(d))) {
		char *p;
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = path_join(dir, e->d_name);
		if (!p)
			r = -1;
		else if (lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
			r = push(v, n, p);
		free(p);
	}
	closedir(d);
	return r;
}

int
cyrus_user_files(const struct cyrus_conf *c, const struct cyrus_mboxlist *l,
    const char *user, char ***files, size_t *n, struct chj_error *e)
{
	const struct cyrus_mailbox *inbox = NULL;
	char path[8192], inboxname[1024], *q;
	size_t i;
	int r = 0;

	*files = NULL;
	*n = 0;
	snprintf(inboxname, sizeof inboxname, "user.%s", user);
	for (q = inboxname + 5; *q; q++)
		if (*q == '.')
			*q = '^';
	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, inboxname))
			inbox = &l->v[i];
	if (!inbox)
		return 0;                   /* no INBOX: the user's files are gone */
	if (cyrus_mailbox_is_legacy(inbox)) {
		char h = cyrus_dir_hash_c(user, c->fulldirhash);

		for (i = 0; r == 0 && legacy_user_suffixes[i]; i++) {
			snprintf(path, sizeof path, "%s/user/%c/%s.%s", c->configdirectory, h, user,
			    legacy_user_suffixes[i]);
			r = push(files, n, path);
		}
		snprintf(path, sizeof path, "%s/%c/%s", c->sievedir, h, user);
	} else {
		const char *id = inbox->uniqueid;

		for (i = 0; r == 0 && uuid_user_files[i]; i++) {
			snprintf(path, sizeof path, "%s/user/uuid/%c/%c/%s/%s", c->configdirectory,
			    id[0], id[1], id, uuid_user_files[i]);
			r = push(files, n, path);
		}
		snprintf(path, sizeof path, "%s/uuid/%c/%c/%s", c->sievedir, id[0], id[1], id);
	}
	if (r == 0)
		r = push_dir(files, n, path);
	if (r < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "user '%s': cannot list files", user);
		for (i = 0; i < *n; i++)
			free((*files)[i]);
		free(*files);
		*files = NULL;
		*n = 0;
		return -1;
	}
	array_sort(*files, *n, sizeof **files, array_str_cmp);
	return 0;
}

int
cyrus_user_quota_files(const struct cyrus_conf *c, const struct cyrus_mboxlist *l,
    const char *user, char ***files, size_t *n, struct chj_error *e)
{
	char path[8192];
	size_t i;

	*files = NULL;
	*n = 0;
	if (c->quota_db != NULL && strcmp(c->quota_db, "quotalegacy") != 0)
		return 0;
	for (i = 0; i < l->n; i++) {
		const struct cyrus_mailbox *m = &l->v[i];

		if (m->deleted || m->user == NULL || strcmp(m->user, user) != 0)
			continue;
		snprintf(path, sizeof path, "%s/quota/%c/%s", c->configdirectory,
		    cyrus_dir_hash_c(m->name, c->fulldirhash), m->name);
		if (push(files, n, path) < 0) {
			chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
			for (i = 0; i < *n; i++)
				free((*files)[i]);
			free(*files);
			*files = NULL;
			*n = 0;
			return -1;
		}
	}
	return 0;
}

/* ---- names ---- */

/* '%XX' for '%', '/', control bytes, DEL and a leading '.'; nothing else. */
char *
cyrus_user_file_name(const char *user)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0, len = strlen(user);
	char *r;

	if (!len)
		return NULL;                /* no file name for the empty name */
	r = malloc(len * 3 + 1);
	if (!r)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)user[i];

		if (ch == '%' || ch == '/' || ch < 0x20 || ch == 0x7f || (i == 0 && ch == '.')) {
			r[o++] = '%';
			r[o++] = hex[ch >> 4];
			r[o++] = hex[ch & 15];
		} else {
			r[o++] = (char)ch;
		}
	}
	r[o] = '\0';
	return r;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

char *
cyrus_user_from_file_name(const char *name)
{
	size_t i, o = 0, len = strlen(name);
	char *r = malloc(len + 1);

	if (!r)
		return NULL;
	for (i = 0; i < len; i++) {
		if (name[i] == '%') {
			int h, lo;

			if (i + 2 >= len + 0 || (h = hexval(name[i + 1])) < 0 || (lo = hexval(name[i + 2])) < 0 ||
			    (h == 0 && lo == 0)) {
				free(r);
				return NULL;
			}
			r[o++] = (char)(h << 4 | lo);
			i += 2;
		} else {
			r[o++] = name[i];
		}
	}
	r[o] = '\0';
	return r;
}
