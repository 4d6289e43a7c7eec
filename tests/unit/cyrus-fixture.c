/* cyrus-fixture.c: the Cyrus test fixtures of cyrus-fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cyrus-fixture.h"

#define V17_HEADER 160
#define V17_RECORD 112

/* mkdir -p of the directory of path */
static void
make_parents(const char *path)
{
	char *p = strdup(path), *s;

	assert_non_null(p);
	for (s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
		*s = '/';
	}
	free(p);
}

void
fx_write(const char *path, const void *buf, size_t len)
{
	int fd;

	if (len == (size_t)-1)
		len = strlen(buf);
	make_parents(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

char *
fx_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return b;
}

void
fx_sha1_hex(const char *text, char hex[41])
{
	unsigned char d[20];
	int i;

	SHA1((const unsigned char *)text, strlen(text), d);
	for (i = 0; i < 20; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
seal(unsigned char *p, uint32_t size)
{
	put32(p + size - 4, (uint32_t)crc32(0L, p, size - 4));
}

unsigned char *
fx_index(const struct fx_msg *msgs, size_t n, size_t *len)
{
	unsigned char *b;
	size_t i;

	*len = V17_HEADER + n * V17_RECORD;
	b = calloc(1, *len);
	assert_non_null(b);
	put32(b + 8, 17);
	put32(b + 12, V17_HEADER);
	put32(b + 16, V17_RECORD);
	put32(b + 20, (uint32_t)n);
	put32(b + 28, n ? msgs[n - 1].uid : 0);       /* last uid */
	put32(b + 44, 1700000000);                      /* uidvalidity */
	put32(b + 84, (uint32_t)n);                     /* exists */
	seal(b, V17_HEADER);
	for (i = 0; i < n; i++) {
		unsigned char *r = b + V17_HEADER + i * V17_RECORD;

		put32(r, msgs[i].uid);
		put32(r + 4, 1700000000 + msgs[i].uid);
		put32(r + 12, (uint32_t)strlen(msgs[i].text));
		put32(r + 32, msgs[i].system_flags);
		SHA1((const unsigned char *)msgs[i].text, strlen(msgs[i].text), r + 60);
		seal(r, V17_RECORD);
	}
	return b;
}

char *
fx_header(const char *name, const char *uniqueid)
{
	char *h;

	assert_true(asprintf(&h, "\241\002\213\015Cyrus mailbox header\n"
	    "\"The best thing about this system was that it had lots of goals.\"\n"
	    "\t--Jim Morris on Andrew\n"
	    "%%(T e N %s I %s A %%(admin lrswipkxtecdan))\n", name, uniqueid) > 0);
	return h;
}

void
fx_spool(const char *top)
{
	char p[4200], *conf;

	snprintf(p, sizeof p, "%s/imapd.conf", top);
	assert_true(asprintf(&conf, "configdirectory: %s/conf\npartition-default: %s/spool\n"
	    "sievedir: %s/sieve\n", top, top, top) > 0);
	fx_write(p, conf, (size_t)-1);
	free(conf);
	snprintf(p, sizeof p, "%s/conf/lock", top);
	make_parents(p);
	assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
}

void
fx_mailbox(const char *top, const char *name, const char *uniqueid, const struct fx_msg *msgs,
    size_t n, char *dir)
{
	char d[4200], p[4300], *h;
	unsigned char *x;
	size_t len, i;

	snprintf(d, sizeof d, "%s/spool/uuid/%c/%c/%s", top, uniqueid[0], uniqueid[1], uniqueid);
	h = fx_header(name, uniqueid);
	snprintf(p, sizeof p, "%s/cyrus.header", d);
	fx_write(p, h, (size_t)-1);
	free(h);
	x = fx_index(msgs, n, &len);
	snprintf(p, sizeof p, "%s/cyrus.index", d);
	fx_write(p, x, len);
	free(x);
	for (i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%s/%u.", d, msgs[i].uid);
		fx_write(p, msgs[i].text, (size_t)-1);
	}
	if (dir != NULL)
		snprintf(dir, 4096, "%.4095s", d);
}
