/* fuzz-path.c: libFuzzer target for the byte-string path helpers.
 *
 * Input layout: 2 bytes giving a buffer size (little endian, mod 1024, so
 * sizes 0..7 where path_display() writes nothing are covered too), then a
 * path, a NUL byte, and a second string (a directory, a list of paths, a name;
 * all the rest when there is no NUL). Each helper is compared with a simple
 * model of its documented contract (path.h). The display buffer is allocated
 * at its exact size so AddressSanitizer catches any write past it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz-path: check failed: %s\n", #cond); \
			abort();                                               \
		}                                                              \
	} while (0)

/* The full escaped form of s (the model of path_display without a limit). */
static char *
escape_all(const char *s)
{
	char *out = malloc(strlen(s) * 4 + 1), *o = out;
	const unsigned char *p;

	if (out == NULL)
		abort();
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\n')
			o += sprintf(o, "\\n");
		else if (*p == '\t')
			o += sprintf(o, "\\t");
		else if (*p == '\\')
			o += sprintf(o, "\\\\");
		else if (*p < 0x20 || *p >= 0x7f)
			o += sprintf(o, "\\x%02x", *p);
		else
			*o++ = (char)*p;
	}
	*o = '\0';
	return out;
}

static void
check_display(const char *path, size_t bufsize)
{
	char *buf = malloc(bufsize ? bufsize : 1), *full;
	size_t bl, fl, i;

	if (buf == NULL)
		abort();
	CHECK(path_display(path, buf, bufsize) == buf);
	if (bufsize == 0) {
		free(buf);
		return;
	}
	bl = strnlen(buf, bufsize);
	CHECK(bl < bufsize);                    /* NUL-terminated inside buf */
	for (i = 0; i < bl; i++)                /* printable ASCII only */
		CHECK(buf[i] >= 0x20 && buf[i] < 0x7f);
	full = escape_all(path);
	fl = strlen(full);
	if (bufsize < 8) {
		CHECK(bl == 0);
	} else if (strcmp(buf, full) != 0) {
		/* truncated: a proper prefix of the full form, then "..." */
		CHECK(bl >= 3 && strcmp(buf + bl - 3, "...") == 0);
		CHECK(bl - 3 < fl && memcmp(buf, full, bl - 3) == 0);
		/* only when the full form does not fit with room for "..." */
		CHECK(fl + 4 > bufsize);
	}
	free(full);
	free(buf);
}

/* Model of path_is_under for a directory without trailing slashes. */
/* Model of a sync cookie name: PREFIX digits '.' 16 lower-case hex digits. */
static int
model_is_cookie(const char *n)
{
	size_t pl = strlen(PATH_COOKIE_PREFIX), i = 0, digits = 0;

	if (strncmp(n, PATH_COOKIE_PREFIX, pl) != 0)
		return 0;
	n += pl;
	while (n[i] >= '0' && n[i] <= '9')
		i++, digits++;
	if (digits == 0 || n[i] != '.')
		return 0;
	n += i + 1;
	if (strlen(n) != 16)
		return 0;
	for (i = 0; i < 16; i++)
		if (!strchr("0123456789abcdef", n[i]))
			return 0;
	return 1;
}

static int
model_under(const char *path, const char *dir)
{
	size_t dl = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/';
	return strncmp(path, dir, dl) == 0 && (path[dl] == '\0' || path[dl] == '/');
}

static int
model_list_contains(const char *list, const char *path)
{
	const char *p = list;
	size_t pl = strlen(path);

	if (list == NULL || *list == '\0')
		return 0;
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);

		if (l == pl && strncmp(p, path, l) == 0)
			return 1;
		if (nl == NULL || nl[1] == '\0')
			return 0;
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a, *b, *dir, *j;
	size_t bufsize, al, bl, dl;
	const uint8_t *nul;

	if (size < 2)
		return 0;
	bufsize = (size_t)(data[0] | data[1] << 8) % 1024;
	data += 2;
	size -= 2;
	nul = memchr(data, '\0', size);
	al = nul ? (size_t)(nul - data) : size;
	a = strndup((const char *)data, al);
	bl = nul ? size - al - 1 : 0;
	b = malloc(bl + 1);
	if (a == NULL || b == NULL)
		abort();
	memcpy(b, nul ? (const char *)nul + 1 : "", bl);
	b[bl] = '\0';           /* b stops at its first NUL, if any */

	check_display(a, bufsize);
	check_display(b, bufsize);

	/* path_is_under: reflexive, and a path under dir starts with dir */
	CHECK(path_is_under(a, a) == 1);
	if (path_is_under(a, b) && strcmp(b, "/") != 0)
		CHECK(strncmp(a, b, strlen(b)) == 0);
	/* for a normalized directory (no trailing slash) it matches the model */
	dir = strdup(b);
	if (dir == NULL)
		abort();
	for (dl = strlen(dir); dl > 1 && dir[dl - 1] == '/'; dl--)
		dir[dl - 1] = '\0';
	if (dir[0] == '/')
		CHECK(path_is_under(a, dir) == model_under(a, dir));

	/* path_join: dir's trailing slashes dropped, one '/' between */
	j = path_join(dir, a);
	CHECK(j != NULL);
	if (strcmp(dir, "/") == 0) {
		CHECK(j[0] == '/' && strcmp(j + 1, a) == 0);
	} else {
		dl = strlen(dir);
		CHECK(strncmp(j, dir, dl) == 0 && j[dl] == '/' && strcmp(j + dl + 1, a) == 0);
	}
	if (dir[0] == '/' && a[0] != '\0' && strchr(a, '/') == NULL) {
		CHECK(path_is_under(j, dir) == 1);
		CHECK(path_is_cookie_name(j) == model_is_cookie(a));
	}
	free(j);
	free(dir);

	/* path_list_contains: b as a newline-joined list */
	CHECK(path_list_contains(b, a) == model_list_contains(b, a));
	CHECK(path_list_contains(NULL, a) == 0);
	if (a[0] != '\0' && strchr(a, '\n') == NULL) {
		size_t l = strlen(a) + strlen(b) + 2;
		char *list = malloc(l);

		if (list == NULL)
			abort();
		snprintf(list, l, "%s\n%s", b, a);
		CHECK(path_list_contains(list, a) == 1);
		free(list);
	}

	/* path_cmp orders like strcmp */
	{
		const char *pa = a, *pb = b;
		int r = path_cmp(&pa, &pb), m = strcmp(a, b);

		CHECK((r < 0) == (m < 0) && (r > 0) == (m > 0));
	}
	free(a);
	free(b);
	return 0;
}
