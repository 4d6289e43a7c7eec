/* mboxlist.c: the mailbox list of a Cyrus 3.x server, read from mailboxes.db
 * through Cyrus's own cyr_dbtool (run as the owner of the config directory:
 * Cyrus's tools refuse root), each mailbox with its data path (paths.c).
 * When cyr_dbtool is missing, the list comes from the cyrus.header files of
 * the partitions instead (slower, and legacy names may be stale there). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "array.h"
#include "path.h"
#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

#define SEP '\x1f'             /* hierarchy separator in 3.6 mailboxes.db keys */
#define WALK_MAX_DEPTH 64

static const char *const tools_dirs[] = {
	"/usr/lib/cyrus/bin", "/usr/libexec/cyrus-imapd", "/usr/lib/cyrus-imapd", NULL
};


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
 * *out (allocated, NUL-terminated). Returns 0, or -1 with e set (CHJ_ERR_SYS:
 * a system call failed, with its errno, or the program failed, without;
 * CHJ_ERR_NOMEM). */
static int
run_tool(const struct cyrus_conf *c, char *const argv[], char **out, size_t *outlen,
    struct chj_error *e)
{
	struct stat st;
	int pfd[2], status;
	pid_t pid;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int oom = 0;

	if (stat(c->configdirectory, &st) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot stat '%s'", c->configdirectory);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "fork");
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
				oom = 1;
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
	if (oom || !buf || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (oom || !buf)
			chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		else
			chj_error_set(e, CHJ_ERR_SYS, 0, "%s failed (%s %d)", argv[0],
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
	free(m->record);
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
	if (dl_parse(&d, tab + 1, len - (size_t)(tab + 1 - line), NULL, &l->err) < 0) {
		struct chj_error e = l->err;

		chj_error_set(&l->err, e.code, 0, "mailboxes.db entry '%s': %s", m.name, e.msg);
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
		chj_error_set(&l->err, CHJ_ERR_CORRUPT, 0, "mailboxes.db entry '%s' has no partition", m.name);
		goto out;
	}
	m.mbtype = strdup(t ? t : "e");
	m.uniqueid = id ? strdup(id) : NULL;
	m.partition = strdup(part);
	m.deleted = !strncmp(m.name, "DELETED.", 8);
	m.record = strndup(tab + 1, len - (size_t)(tab + 1 - line));
	if (!m.mbtype || !m.partition || (id && !m.uniqueid) || !m.record) {
		chj_error_set(&l->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	if (cyrus_mailbox_set_path(c, &m, &l->err) < 0)
		goto out;
	if ((v = array_grow(l->v, l->n, cap, sizeof *v, 64)) == NULL) {
		chj_error_set(&l->err, CHJ_ERR_NOMEM, 0, "out of memory");
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
	chj_error_set(&l->err, CHJ_ERR_NOMEM, 0, "out of memory");
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

	if (run_tool(c, argv, &out, &len, &l->err) < 0)
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
	char *p = path_join(dir, "cyrus.header"), *buf = NULL;
	struct cyrus_header h;
	struct cyrus_mailbox m, *v;
	const char *rp = relpath;
	size_t len;
	int legacy = strncmp(relpath, "uuid/", 5) != 0, r = -1;

	memset(&m, 0, sizeof m);
	memset(&h, 0, sizeof h);
	if (!p || cyrus_read_small(p, &buf, &len) < 0) {
		int e = errno;

		free(p);
		return e == ENOENT ? 0 : chj_error_set(&w->l->err, CHJ_ERR_SYS, e,
		    "cannot read '%s/cyrus.header'", dir);
	}
	if (cyrus_header_parse(&h, buf, len) < 0) {
		chj_error_set(&w->l->err, h.err.code, 0, "%s: %s", p, h.err.msg);
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
	    cyrus_mailbox_set_path(w->c, &m, &w->l->err) < 0)
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
			char *full = path_join(dir, e->d_name);

			if (!full || lstat(full, &st) < 0 || !S_ISDIR(st.st_mode)) {
				free(full);
				continue;
			}
			free(full);
		}
		sub = path_join(dir, e->d_name);
		rel = *relpath ? path_join(relpath, e->d_name) : strdup(e->d_name);
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


/* The list without cyr_dbtool: every cyrus.header of every partition. */
static int
mboxlist_from_headers(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user)
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
			if (l->err.code == CHJ_OK)
				chj_error_set(&l->err, CHJ_ERR_SYS, errno, "cannot walk partition '%s'",
				    w.part->path);
			cyrus_mboxlist_free(l);
			return -1;
		}
	}
	if (l->n > 0) /* qsort(NULL, 0) is undefined */
		qsort(l->v, l->n, sizeof *l->v, cmp_mailbox);
	return 0;
}

int
cyrus_mboxlist_load(struct cyrus_mboxlist *l, const struct cyrus_conf *c, const char *user)
{
	char tbuf[4096], p1[1024], p2[1024];
	const char *dir;
	size_t cap = 0;

	memset(l, 0, sizeof *l);
	if (user && (!*user || strchr(user, SEP) || strlen(user) > 400)) {
		chj_error_set(&l->err, CHJ_ERR_INVALID, 0, "bad user name '%s'", user);
		return -1;
	}
	dir = tools_dir(c, tbuf, sizeof tbuf);
	if (!dir)
		return mboxlist_from_headers(l, c, user);
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
