/* path.c: byte-string path helpers: joining, prefix tests, display escaping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "path.h"

char *
path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	p = malloc(dl + nl + 2);
	if (p == NULL)
		return NULL;
	memcpy(p, dir, dl);
	if (!(dl == 1 && dir[0] == '/'))
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

char *
path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL || slash == path ? 1 : (size_t)(slash - path);
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, slash == NULL ? "/" : path, n);
		p[n] = '\0';
	}
	return p;
}

int
path_mkdir_parent(const char *file)
{
	char *dir = strdup(file), *slash;
	int rc = 0;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			rc = -1;
	}
	free(dir);
	return rc;
}

int
path_is_under(const char *path, const char *dir)
{
	size_t dl = strlen(dir);

	if (dl == 1 && dir[0] == '/')
		return path[0] == '/';
	if (strncmp(path, dir, dl) != 0)
		return 0;
	return path[dl] == '\0' || path[dl] == '/';
}

int
path_is_cookie_name(const char *name)
{
	const char *slash = strrchr(name, '/'), *p;
	size_t i;

	if (slash != NULL)
		name = slash + 1;
	/* exactly the shape the agent makes: PREFIX PID '.' 16 hex digits */
	if (strncmp(name, PATH_COOKIE_PREFIX, sizeof PATH_COOKIE_PREFIX - 1) != 0)
		return 0;
	p = name + sizeof PATH_COOKIE_PREFIX - 1;
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != '.')
		return 0;
	for (i = 0; i < 16; i++, p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return *p == '\0';
}

char *
path_display(const char *path, char *buf, size_t bufsize)
{
	size_t o = 0;
	const unsigned char *s;

	if (bufsize < 8) {
		if (bufsize > 0)
			buf[0] = '\0';
		return buf;
	}
	for (s = (const unsigned char *)path; *s != '\0'; s++) {
		char tmp[5];
		size_t tl;

		if (*s == '\n')
			tl = (size_t)snprintf(tmp, sizeof tmp, "\\n");
		else if (*s == '\t')
			tl = (size_t)snprintf(tmp, sizeof tmp, "\\t");
		else if (*s == '\\')
			tl = (size_t)snprintf(tmp, sizeof tmp, "\\\\");
		else if (*s < 0x20 || *s >= 0x7f)
			tl = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", *s);
		else {
			tmp[0] = (char)*s;
			tl = 1;
		}
		if (o + tl + 4 > bufsize) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		memcpy(buf + o, tmp, tl);
		o += tl;
	}
	buf[o] = '\0';
	return buf;
}

int
path_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
path_list_contains(const char *list, const char *path)
{
	size_t pl = strlen(path);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);

		if (l == pl && memcmp(p, path, pl) == 0)
			return 1;
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

void
path_unescape_octal(char *s)
{
	char *o = s;

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}
