/* mboxlist.c: the mailbox list of a Cyrus 3.x server, read from mailboxes.db
 * through Cyrus's own cyr_dbtool (run as the owner of the config directory:
 * Cyrus's tools refuse root), each mailbox's data path as Cyrus computes it
 * (imap/mboxname.c: uuid directories, or the legacy name-based ones for
 * mbtype 'l'), and which user a changed path or per-user file belongs to.
 * When cyr_dbtool is missing, the list comes from the cyrus.header files of
 * the partitions instead (slower, and legacy names may be stale there). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "array.h"
#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

#define SEP '\x1f'             /* hierarchy separator in 3.6 mailboxes.db keys */

static const char *const tools_dirs[] = {
	"/usr/lib/cyrus/bin", "/usr/libexec/cyrus-imapd", "/usr/lib/cyrus-imapd", NULL
};

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

/* ---- running a Cyrus tool ---- */

static const char *
tools_dir(const struct cyrus_conf *c, char *buf, size_t len)
{
	int i;

	if (c->toolsdir) {
		snprintf(buf, len, "%s/cyr_dbtool", c->toolsdir);
		return access(buf, X_OK) == 0 ? c->toolsdir : NULL;
	}
	for (i = 0; tools_dirs[i]; i++) {
		snprintf(buf, len, "%s/cyr_dbtool", tools_dirs[i]);
		if (access(buf, X_OK) == 0)
			return tools_dirs[i];
	}
	return NULL;
}

/* Runs argv as the owner of the config directory; its stdout goes into
 * *out (allocated, NUL-terminated). Returns 0 or -1. */
static int
run_tool(const struct cyrus_conf *c, char *const argv[], char **out, size_t *outlen,
    char *err, size_t errlen)
{
	struct stat st;
	int pfd[2], status;
	pid_t pid;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;

	if (stat(c->configdirectory, &st) < 0) {
		cyrus_seterr(err, errlen, "cannot stat '%s': %s", c->configdirectory, strerror(errno));
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		cyrus_seterr(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		cyrus_seterr(err, errlen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 2);
		}
		dup2(pfd[1], 1);
		if (geteuid() == 0 && st.st_uid != 0) {
			if (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)
				_exit(126);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap ? cap * 2 : 131072);

			if (!nb) {
				cyrus_seterr(err, errlen, "out of memory");
				break;
			}
			buf = nb;
			cap = cap ? cap * 2 : 131072;
		}
		n = read(pfd[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!buf || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (buf)
			cyrus_seterr(err, errlen, "%s failed (%s %d)", argv[0],
			    WIFEXITED(status) ? "exit status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* ---- the list ---- */

static int
cmp_mailbox(const void *a, const void *b)
{
	return strcmp(((const struct cyrus_mailbox *)a)->name, ((const struct cyrus_mailbox *)b)->name);
}

static void
mailbox_free(struct cyrus_mailbox *m)
{
	free(m->name);
	free(m->uniqueid);
	free(m->partition);
	free(m->mbtype);
	free(m->path);
	free(m->relpath);
	free(m->user);
}

void
cyrus_mboxlist_free(struct cyrus_mboxlist *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		mailbox_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
cyrus_mailbox_is_legacy(const struct cyrus_mailbox *m)
{
	return !m->uniqueid || !*m->uniqueid || (m->mbtype && strchr(m->mbtype, 'l'));
}

/* Fills path and relpath of m from its name, uniqueid, mbtype and partition. */
int
cyrus_mailbox_set_path(const struct cyrus_conf *c, struct cyrus_mailbox *m, char *err, size_t errlen)
{
	const char *root = cyrus_partition_path(c, m->partition);
	size_t len;

	if (!root) {
		cyrus_seterr(err, errlen, "mailbox '%s': partition '%s' is not in %s", m->name,
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
		cyrus_seterr(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Internal name from a key's name: SEP -> '.', '.' inside a part -> '^'. */
static char *
key_to_name(const char *k, size_t len)
{
	char *s = strndup(k, len), *p;

	for (p = s; p && *p; p++) {
		if (*p == '.')
			*p = '^';
		else if (*p == SEP)
			*p = '.';
	}
	return s;
}

/* One "N<name>\t<dlist>" line of cyr_dbtool's output. Returns 1 added,
 * 0 skipped, -1 error. */
static int
add_line(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user,
    const char *line, size_t len, size_t *cap)
{
	const char *tab = memchr(line, '\t', len);
	struct cyrus_mailbox m, *v;
	struct dl d;
	const char *t, *id, *part;
	int r = -1;

	if (!tab || line[0] != 'N')
		return 0;
	memset(&m, 0, sizeof m);
	m.name = key_to_name(line + 1, (size_t)(tab - line - 1));
	if (!m.name)
		goto nomem;
	m.user = cyrus_name_user(m.name);
	if (user && (!m.user || strcmp(m.user, user))) {
		mailbox_free(&m);
		return 0;
	}
	if (dl_parse(&d, tab + 1, len - (size_t)(tab + 1 - line), NULL, l->err, sizeof l->err) < 0) {
		char e[CYRUS_ERR_MAX];

		snprintf(e, sizeof e, "%s", l->err);
		cyrus_seterr(l->err, sizeof l->err, "mailboxes.db entry '%s': %s", m.name, e);
		mailbox_free(&m);
		return -1;
	}
	t = dl_atom(&d, "T");
	id = dl_atom(&d, "I");
	part = dl_atom(&d, "P");
	if (t && strchr(t, 'd')) {           /* tombstone */
		r = 0;
		goto out;
	}
	if (!part) {
		cyrus_seterr(l->err, sizeof l->err, "mailboxes.db entry '%s' has no partition", m.name);
		goto out;
	}
	m.mbtype = strdup(t ? t : "e");
	m.uniqueid = id ? strdup(id) : NULL;
	m.partition = strdup(part);
	m.deleted = !strncmp(m.name, "DELETED.", 8);
	if (!m.mbtype || !m.partition || (id && !m.uniqueid)) {
		cyrus_seterr(l->err, sizeof l->err, "out of memory");
		goto out;
	}
	if (cyrus_mailbox_set_path(c, &m, l->err, sizeof l->err) < 0)
		goto out;
	if ((v = array_grow(l->v, l->n, cap, sizeof *v, 64)) == NULL) {
		cyrus_seterr(l->err, sizeof l->err, "out of memory");
		goto out;
	}
	l->v = v;
	l->v[l->n++] = m;
	memset(&m, 0, sizeof m);
	r = 1;
out:
	dl_free(&d);
	mailbox_free(&m);
	return r;
nomem:
	cyrus_seterr(l->err, sizeof l->err, "out of memory");
	return -1;
}

/* cyr_dbtool ... show PREFIX; each line is parsed into l. */
static int
load_prefix(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *tool,
    const char *prefix, const char *user, size_t *cap)
{
	char *argv[] = { (char *)tool, "-C", c->file, c->mboxlist_db_path, c->mboxlist_db,
		"show", (char *)prefix, NULL };
	char *out = NULL, *p, *e;
	size_t len;
	int r = 0;

	if (run_tool(c, argv, &out, &len, l->err, sizeof l->err) < 0)
		return -1;
	for (p = out; p < out + len; p = e + 1) {
		e = memchr(p, '\n', (size_t)(out + len - p));
		if (!e)
			e = out + len;
		if (add_line(l, c, user, p, (size_t)(e - p), cap) < 0) {
			r = -1;
			break;
		}
	}
	free(out);
	return r;
}

int cyrus_mboxlist_from_headers(struct cyrus_mboxlist *l, const struct cyrus_conf *c,
    const char *user);

int
cyrus_mboxlist_load(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user)
{
	char tbuf[4096], p1[1024], p2[1024];
	const char *dir;
	size_t cap = 0;

	memset(l, 0, sizeof *l);
	if (user && (!*user || strchr(user, SEP) || strlen(user) > 400)) {
		cyrus_seterr(l->err, sizeof l->err, "bad user name '%s'", user);
		return -1;
	}
	dir = tools_dir(c, tbuf, sizeof tbuf);
	if (!dir)
		return cyrus_mboxlist_from_headers(l, c, user);
	snprintf(tbuf, sizeof tbuf, "%s/cyr_dbtool", dir);
	/* "Nuser\x1fNAME" also matches NAME01: add_line keeps only NAME's own */
	snprintf(p1, sizeof p1, "Nuser%c%s", SEP, user ? user : "");
	snprintf(p2, sizeof p2, "NDELETED%cuser%c%s%s", SEP, SEP, user ? user : "",
	    user ? "\x1f" : "");
	if (load_prefix(l, c, tbuf, p1, user, &cap) < 0 ||
	    load_prefix(l, c, tbuf, p2, user, &cap) < 0) {
		cyrus_mboxlist_free(l);
		return -1;
	}
	array_sort(l->v, l->n, sizeof *l->v, cmp_mailbox);
	return 0;
}

int
cyrus_mboxlist_users(const struct cyrus_mboxlist *l, char ***users, size_t *n)
{
	char **v = calloc(l->n + 1, sizeof *v);
	size_t i, k = 0;

	*users = NULL;
	*n = 0;
	if (!v)
		return -1;
	for (i = 0; i < l->n; i++) {
		if (!l->v[i].user)
			continue;
		v[k] = strdup(l->v[i].user);
		if (!v[k]) {
			while (k)
				free(v[--k]);
			free(v);
			return -1;
		}
		k++;
	}
	*n = array_sort_unique_strings(v, k);
	*users = v;
	return 0;
}
