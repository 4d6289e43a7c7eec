/* mounts.c: /proc/self/mountinfo read, looked up and compared (mounts.h).
 * A line: ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE
 * SOURCE SUPEROPTIONS, with space, tab, newline and backslash in ROOT and
 * POINT written as \040, \011, \012 and \134 (proc_pid_mountinfo(5)). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "mounts.h"
#include "path.h"

/* Appends s escaped as mountinfo does (so that a state line splits on tabs). */
static int
escape_into(char **buf, size_t *len, size_t *cap, const char *s)
{
	for (; *s != '\0'; s++) {
		char *nb = array_reserve(*buf, *len + 5, cap, 1, 256);

		if (nb == NULL)
			return -1;
		*buf = nb;
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
			*len += (size_t)sprintf(*buf + *len, "\\%03o", (unsigned char)*s);
		else
			(*buf)[(*len)++] = *s;
	}
	return 0;
}

void
mount_table_free(struct mount_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].root);
		free(t->v[i].point);
		free(t->v[i].fstype);
		free(t->v[i].source);
	}
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

/* Parses one line (modified in place) into e. Returns 0, or -1 if malformed. */
static int
parse_line(char *line, struct mount_entry *e)
{
	char *f[10], *save = NULL, *tok, *sep;
	int n = 0;

	memset(e, 0, sizeof *e);
	if ((sep = strstr(line, " - ")) == NULL)
		return -1;
	*sep = '\0';
	for (tok = strtok_r(line, " ", &save); tok != NULL && n < 5; tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	if (n < 5)
		return -1;
	for (tok = strtok_r(sep + 3, " ", &save), n = 5; tok != NULL && n < 7;
	    tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	if (n < 7 || sscanf(f[2], "%u:%u", &e->major, &e->minor) != 2)
		return -1;
	e->id = atoi(f[0]);
	e->parent = atoi(f[1]);
	path_unescape_octal(f[3]);
	path_unescape_octal(f[4]);
	path_unescape_octal(f[6]);
	if ((e->root = strdup(f[3])) == NULL || (e->point = strdup(f[4])) == NULL ||
	    (e->fstype = strdup(f[5])) == NULL || (e->source = strdup(f[6])) == NULL) {
		free(e->root);
		free(e->point);
		free(e->fstype);
		free(e->source);
		return -2;
	}
	return 0;
}

int
mount_table_parse(struct mount_table *t, const char *text, size_t len)
{
	char *copy, *line, *save = NULL;
	int rc = 0;

	mount_table_free(t);
	if ((copy = malloc(len + 1)) == NULL)
		return chj_error_set(&t->err, CHJ_ERR_NOMEM, 0, "out of memory");
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		struct mount_entry *nv = array_grow(t->v, t->n, &t->cap, sizeof *nv, 64);
		int r;

		if (nv == NULL) {
			rc = chj_error_set(&t->err, CHJ_ERR_NOMEM, 0, "out of memory");
			break;
		}
		t->v = nv;
		if ((r = parse_line(line, &t->v[t->n])) == -2) {
			rc = chj_error_set(&t->err, CHJ_ERR_NOMEM, 0, "out of memory");
			break;
		}
		if (r == 0)
			t->n++;          /* a line we cannot read names no mount we know */
	}
	free(copy);
	return rc;
}

int
mount_table_read(struct mount_table *t, int fd)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int own = fd < 0, rc = -1;
	ssize_t got;

	if (own && (fd = open(MOUNTS_FILE, O_RDONLY | O_CLOEXEC)) < 0)
		return chj_error_set(&t->err, CHJ_ERR_SYS, errno, "cannot open '%s'", MOUNTS_FILE);
	if (lseek(fd, 0, SEEK_SET) < 0) {
		chj_error_set(&t->err, CHJ_ERR_SYS, errno, "cannot rewind '%s'", MOUNTS_FILE);
		goto done;
	}
	for (;;) {
		char *nb = array_reserve(buf, len + 65536, &cap, 1, 65536);

		if (nb == NULL) {
			chj_error_set(&t->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto done;
		}
		buf = nb;
		got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			chj_error_set(&t->err, CHJ_ERR_SYS, errno, "cannot read '%s'", MOUNTS_FILE);
			goto done;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	rc = mount_table_parse(t, buf ? buf : "", len);
done:
	free(buf);
	if (own)
		close(fd);
	return rc;
}

const struct mount_entry *
mount_table_of(const struct mount_table *t, const char *path)
{
	const struct mount_entry *best = NULL;
	size_t i, bl = 0;

	for (i = 0; i < t->n; i++) {
		size_t l = strlen(t->v[i].point);

		/* the later of two mounts on one point is the one on top */
		if (path_is_under(path, t->v[i].point) && (best == NULL || l >= bl)) {
			best = &t->v[i];
			bl = l;
		}
	}
	return best;
}

/* path below prefix: what follows prefix in it ("" or "/..."); prefix "/"
 * holds every absolute path whole. */
static const char *
rest_below(const char *path, const char *prefix)
{
	return strcmp(prefix, "/") == 0 ? path : path + strlen(prefix);
}

/* dir + rest (rest "" or "/..."), allocated; "/" + "/x" is "/x". */
static char *
join_rest(const char *dir, const char *rest)
{
	return rest[0] == '\0' ? strdup(dir) : path_join(dir, rest + 1);
}

static int
add_alias(struct mount_alias **v, size_t *n, size_t *cap, char *from, char *to)
{
	struct mount_alias *nv;

	if (from == NULL || to == NULL ||
	    (nv = array_grow(*v, *n, cap, sizeof **v, 4)) == NULL) {
		free(from);
		free(to);
		return -1;
	}
	*v = nv;
	nv[*n].from = from;
	nv[*n].to = to;
	(*n)++;
	return 0;
}

int
mount_table_aliases(const struct mount_table *t, const char *root, struct mount_alias **v,
    size_t *n, size_t *cap)
{
	const struct mount_entry *holder = mount_table_of(t, root);
	char *fsdir;             /* root's directory in its file system */
	size_t i;
	int rc = 0;

	if (holder == NULL)
		return 0;
	if ((fsdir = join_rest(holder->root, rest_below(root, holder->point))) == NULL)
		return -1;
	for (i = 0; i < t->n && rc == 0; i++) {
		const struct mount_entry *e = &t->v[i];
		char *from = NULL, *to = NULL;

		if (e->major != holder->major || e->minor != holder->minor)
			continue;
		if (path_is_under(fsdir, e->root)) {
			/* the mount shows root's directory below its point */
			from = join_rest(e->point, rest_below(fsdir, e->root));
			to = strdup(root);
		} else if (path_is_under(e->root, fsdir)) {
			/* a directory under root's, mounted elsewhere */
			from = strdup(e->point);
			to = join_rest(root, rest_below(e->root, fsdir));
		} else {
			continue;
		}
		if (from != NULL && to != NULL && strcmp(from, to) == 0) {
			free(from);      /* root itself, where it is */
			free(to);
			continue;
		}
		rc = add_alias(v, n, cap, from, to);
	}
	free(fsdir);
	return rc;
}

void
mount_aliases_free(struct mount_alias *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].from);
		free(v[i].to);
	}
	free(v);
}

const char *
mount_alias_translate(const struct mount_alias *v, size_t n, const char *path, size_t len,
    char *buf, size_t size)
{
	const struct mount_alias *best = NULL;
	size_t i, bl = 0, fl, tl;

	for (i = 0; i < n; i++) {
		fl = strlen(v[i].from);
		if (strcmp(v[i].from, "/") == 0)
			fl = 0;
		if (len < fl || memcmp(path, v[i].from, fl) != 0 ||
		    (len > fl && path[fl] != '/'))
			continue;
		if (best == NULL || fl >= bl) {
			best = &v[i];
			bl = fl;
		}
	}
	if (best == NULL)
		return NULL;
	tl = strlen(best->to);
	if (tl + (len - bl) + 1 > size)
		return NULL;
	memcpy(buf, best->to, tl);
	memcpy(buf + tl, path + bl, len - bl);
	buf[tl + len - bl] = '\0';
	return buf;
}

/* Appends s as it is. */
static int
append_raw(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t l = strlen(s);
	char *nb = array_reserve(*buf, *len + l + 1, cap, 1, 256);

	if (nb == NULL)
		return -1;
	*buf = nb;
	memcpy(*buf + *len, s, l + 1);
	*len += l;
	return 0;
}

/* Appends e's state line ("POINT\tMAJOR:MINOR\tFSROOT\tFSTYPE", the paths
 * escaped) to lines. */
static int
state_line(char ***lines, size_t *n, size_t *cap, const struct mount_entry *e)
{
	char *buf = NULL, **nl;
	size_t len = 0, bcap = 0;
	char num[64];

	snprintf(num, sizeof num, "\t%u:%u\t", e->major, e->minor);
	if (escape_into(&buf, &len, &bcap, e->point) < 0 || append_raw(&buf, &len, &bcap, num) < 0 ||
	    escape_into(&buf, &len, &bcap, e->root) < 0 || append_raw(&buf, &len, &bcap, "\t") < 0 ||
	    append_raw(&buf, &len, &bcap, e->fstype) < 0 ||
	    (nl = array_grow(*lines, *n, cap, sizeof *nl, 16)) == NULL) {
		free(buf);
		return -1;
	}
	*lines = nl;
	(*lines)[(*n)++] = buf;
	return 0;
}

char *
mount_table_state(const struct mount_table *t, const char *root)
{
	const struct mount_entry *holder = mount_table_of(t, root);
	char **lines = NULL, *out = NULL;
	size_t n = 0, cap = 0, i, len = 1;

	for (i = 0; i < t->n; i++) {
		const struct mount_entry *e = &t->v[i];

		if ((e == holder || (path_is_under(e->point, root) && strcmp(e->point, root) != 0)) &&
		    state_line(&lines, &n, &cap, e) < 0)
			goto done;
	}
	n = array_sort_unique_strings(lines, n);
	for (i = 0; i < n; i++)
		len += strlen(lines[i]) + 1;
	if ((out = malloc(len)) == NULL)
		goto done;
	out[0] = '\0';
	for (i = 0, len = 0; i < n; i++) {
		size_t l = strlen(lines[i]);

		memcpy(out + len, lines[i], l);
		out[len + l] = '\n';
		len += l + 1;
	}
	out[len] = '\0';
done:
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	return out;
}

/* Returns 1 when the line (up to its newline) is one of text's lines. */
static int
has_line(const char *text, const char *line, size_t len)
{
	const char *p = text;

	while (*p != '\0') {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == len && memcmp(p, line, len) == 0)
			return 1;
		p += l + (e != NULL);
	}
	return 0;
}

/* Returns 1 when line (a state line, up to its newline) names a mount that
 * b shows at another place: same device, file system root and type. */
static int
mounted_elsewhere(const char *b, const char *line, size_t len)
{
	const char *tail = memchr(line, '\t', len), *p = b;
	size_t tl;

	if (tail == NULL)
		return 0;
	tl = len - (size_t)(tail - line);
	while (*p != '\0') {
		const char *e = strchr(p, '\n'), *t;
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if ((t = memchr(p, '\t', l)) != NULL && l - (size_t)(t - p) == tl &&
		    memcmp(t, tail, tl) == 0)
			return 1;
		p += l + (e != NULL);
	}
	return 0;
}

/* Returns 1 when the directory holding path exists. */
static int
parent_exists(const char *path)
{
	char *dir = strdup(path), *slash;
	struct stat st;
	int ok;

	if (dir == NULL)
		return 1;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir)
		*slash = '\0';
	ok = lstat(dir, &st) == 0 || errno != ENOENT;
	free(dir);
	return ok;
}

/* Calls fn for each line of a not in b, with the path it changes (unmounts:
 * with gone, a is before). */
static int
diff_one_way(const char *root, const char *a, const char *b, int gone, mount_change_fn fn,
    void *ctx)
{
	const char *p = a;
	int calls = 0;

	while (*p != '\0') {
		const char *e = strchr(p, '\n'), *tab;
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (!has_line(b, p, l) && (tab = memchr(p, '\t', l)) != NULL) {
			char *point = strndup(p, (size_t)(tab - p));
			int rc;

			if (point == NULL)
				return -1;
			path_unescape_octal(point);
			/* a change of the mount holding the root: the root itself;
			 * a mount gone from a place that is gone: the root too */
			if (!path_is_under(point, root) ||
			    (gone && !mounted_elsewhere(b, p, l) && !parent_exists(point)))
				rc = fn(ctx, root);
			else
				rc = fn(ctx, point);
			free(point);
			if (rc < 0)
				return -1;
			calls++;
		}
		p += l + (e != NULL);
	}
	return calls;
}

int
mount_state_diff(const char *root, const char *before, const char *after,
    mount_change_fn fn, void *ctx)
{
	int a, b;

	if ((a = diff_one_way(root, before ? before : "", after ? after : "", 1, fn, ctx)) < 0)
		return -1;
	if ((b = diff_one_way(root, after ? after : "", before ? before : "", 0, fn, ctx)) < 0)
		return -1;
	return a + b;
}
