/* user.c: per-user knowledge of a Cyrus spool: the mailbox list from the
 * partitions' cyrus.header files (when Cyrus's tools are missing), which
 * user a changed path belongs to, the user's files outside the spool
 * (seen, subscriptions, dav.db, sieve scripts) and a reversible file-name
 * escape of user names. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

#define WALK_MAX_DEPTH 64
#define HEADER_MAX (1 << 20)

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

static char *
pjoin(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *r = malloc(la + lb + 2);

	if (!r)
		return NULL;
	memcpy(r, a, la);
	r[la] = '/';
	memcpy(r + la + 1, b, lb + 1);
	return r;
}

/* Reads a whole (small) file. Returns 0, or -1 with errno set. */
static int
read_small(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	size_t got = 0;
	char *b;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size > HEADER_MAX) {
		if (st.st_size > HEADER_MAX)
			errno = EFBIG;
		close(fd);
		return -1;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

/* The internal name in dir/cyrus.header (3.x headers only), allocated; NULL
 * with errno (ENOENT: no header; EINVAL: 2.x header or unparsable). */
static char *
header_name(const char *dir)
{
	char *p = pjoin(dir, "cyrus.header"), *buf = NULL, *name = NULL;
	struct cyrus_header h;
	size_t len;

	if (!p)
		return NULL;
	if (read_small(p, &buf, &len) == 0) {
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

/* ---- the list from cyrus.header files ---- */

struct hwalk {
	struct cyrus_mboxlist *l;
	const struct cyrus_conf *c;
	const struct cyrus_partition *part;
	const char *user;
	size_t cap;
};

static int
hwalk_add(struct hwalk *w, const char *dir, const char *relpath)
{
	char *p = pjoin(dir, "cyrus.header"), *buf = NULL;
	struct cyrus_header h;
	struct cyrus_mailbox m, *v;
	const char *rp = relpath;
	size_t len;
	int legacy = strncmp(relpath, "uuid/", 5) != 0, r = -1;

	memset(&m, 0, sizeof m);
	memset(&h, 0, sizeof h);
	if (!p || read_small(p, &buf, &len) < 0) {
		int e = errno;

		free(p);
		return e == ENOENT ? 0 : (cyrus_seterr(w->l->err, sizeof w->l->err,
		    "cannot read '%s/cyrus.header': %s", dir, strerror(e)), -1);
	}
	if (cyrus_header_parse(&h, buf, len) < 0) {
		cyrus_seterr(w->l->err, sizeof w->l->err, "%s: %s", p, h.err);
		goto out;
	}
	if (legacy) {
		/* the name from the path: a legacy header's N can be stale */
		char *q;

		if (w->c->hashimapspool && rp[0] && rp[1] == '/')
			rp += 2;
		m.name = strdup(rp);
		for (q = m.name; q && *q; q++)
			if (*q == '/')
				*q = '.';
	} else {
		m.name = h.name ? strdup(h.name) : NULL;
	}
	if (!m.name) {
		r = 0;                       /* a 2.x header in a uuid directory: not ours */
		goto out;
	}
	m.user = cyrus_name_user(m.name);
	if (w->user && (!m.user || strcmp(m.user, w->user))) {
		r = 0;
		goto out;
	}
	m.uniqueid = h.uniqueid ? strdup(h.uniqueid) : NULL;
	m.partition = strdup(w->part->name);
	m.mbtype = strdup(legacy ? "el" : "e");
	m.deleted = !strncmp(m.name, "DELETED.", 8);
	if (!m.partition || !m.mbtype ||
	    cyrus_mailbox_set_path(w->c, &m, w->l->err, sizeof w->l->err) < 0)
		goto out;
	if ((v = array_grow(w->l->v, w->l->n, &w->cap, sizeof *v, 64)) == NULL)
		goto out;
	w->l->v = v;
	w->l->v[w->l->n++] = m;
	memset(&m, 0, sizeof m);
	r = 0;
out:
	free(m.name);
	free(m.user);
	free(m.uniqueid);
	free(m.partition);
	free(m.mbtype);
	free(m.path);
	free(m.relpath);
	cyrus_header_free(&h);
	free(buf);
	free(p);
	return r;
}

static int
hwalk_dir(struct hwalk *w, const char *dir, const char *relpath, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (depth > WALK_MAX_DEPTH)
		return 0;
	if (*relpath && hwalk_add(w, dir, relpath) < 0)
		return -1;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	while (r == 0 && (e = readdir(d))) {
		char *sub, *rel;

		if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
			continue;
		if (!*relpath && !strcmp(e->d_name, "stage."))
			continue;
		if (e->d_type == DT_UNKNOWN) {
			struct stat st;
			char *full = pjoin(dir, e->d_name);

			if (!full || lstat(full, &st) < 0 || !S_ISDIR(st.st_mode)) {
				free(full);
				continue;
			}
			free(full);
		}
		sub = pjoin(dir, e->d_name);
		rel = *relpath ? pjoin(relpath, e->d_name) : strdup(e->d_name);
		if (!sub || !rel)
			r = -1;
		else
			r = hwalk_dir(w, sub, rel, depth + 1);
		free(sub);
		free(rel);
	}
	closedir(d);
	return r;
}

static int
cmp_mailbox(const void *a, const void *b)
{
	return strcmp(((const struct cyrus_mailbox *)a)->name, ((const struct cyrus_mailbox *)b)->name);
}

int cyrus_mboxlist_from_headers(struct cyrus_mboxlist *l, const struct cyrus_conf *c,
    const char *user);

int
cyrus_mboxlist_from_headers(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user)
{
	struct hwalk w;
	size_t i;

	memset(&w, 0, sizeof w);
	w.l = l;
	w.c = c;
	w.user = user;
	for (i = 0; i < c->npartitions; i++) {
		w.part = &c->partitions[i];
		if (hwalk_dir(&w, w.part->path, "", 0) < 0) {
			if (!l->err[0])
				cyrus_seterr(l->err, sizeof l->err, "cannot walk partition '%s': %s",
				    w.part->path, strerror(errno));
			cyrus_mboxlist_free(l);
			return -1;
		}
	}
	if (l->n > 0) /* qsort(NULL, 0) is undefined */
		qsort(l->v, l->n, sizeof *l->v, cmp_mailbox);
	return 0;
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
user_of_inbox_uid(const struct cyrus_conf *c, const char *id, char **user, char *err, size_t errlen)
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
			cyrus_seterr(err, errlen, "cannot read '%s/cyrus.header': %s", dir, strerror(errno));
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
    char **user, char *err, size_t errlen)
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
			cyrus_seterr(err, errlen, "cannot read '%s/cyrus.header': %s", dir, strerror(errno));
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
	return *user ? 1 : -1;
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
user_in_uuid_tree(const struct cyrus_conf *c, const char *rel, char **user, char *err, size_t errlen)
{
	char id[1024];

	if (comp(rel, 3, id, sizeof id) < 0)
		return 0;
	return user_of_inbox_uid(c, id, user, err, errlen);
}

int
cyrus_user_of_path(const struct cyrus_conf *c, const char *path, char **user, char *err, size_t errlen)
{
	char userdir[8192], a[1024], b[1024];
	const char *rel;
	size_t i;

	*user = NULL;
	for (i = 0; i < c->npartitions; i++)
		if ((rel = below(path, c->partitions[i].path)))
			return user_in_partition(c, c->partitions[i].path, rel, user, err, errlen);
	snprintf(userdir, sizeof userdir, "%s/user", c->configdirectory);
	if ((rel = below(path, userdir))) {
		if (comp(rel, 0, a, sizeof a) < 0)
			return 0;
		if (!strcmp(a, "uuid"))
			return user_in_uuid_tree(c, rel, user, err, errlen);
		if (comp(rel, 1, b, sizeof b) < 0)
			return 0;
		*user = user_of_legacy_file(b);
		return *user ? 1 : 0;
	}
	if ((rel = below(path, c->sievedir))) {
		if (comp(rel, 0, a, sizeof a) < 0)
			return 0;
		if (!strcmp(a, "uuid"))
			return user_in_uuid_tree(c, rel, user, err, errlen);
		if (comp(rel, 1, b, sizeof b) < 0)
			return 0;
		*user = strdup(b);
		return *user ? 1 : -1;
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
		p = pjoin(dir, e->d_name);
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
    const char *user, char ***files, size_t *n, char *err, size_t errlen)
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
		cyrus_seterr(err, errlen, "user '%s': cannot list files: %s", user, strerror(errno));
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
