/* test-cyrus.c: cmocka unit tests for common/cyrus/: cyrus.index of a real
 * Cyrus 3.6 mailbox (tests/data/cyrus/v17.index, its GUIDs checked against
 * the SHA1 of the message files copied with it), synthetic indexes of minor
 * versions 10 to 20 built here from the per-version layout (header and
 * record sizes, field offsets, CRC32s), truncated and corrupt ones; both
 * cyrus.header formats; imapd.conf; legacy paths; the user file name escape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

#ifndef DATADIR
#define DATADIR "tests/data/cyrus"
#endif

static char *
slurp(const char *name, size_t *len)
{
	char path[4096];
	const char *src = getenv("CHJ_SRCDIR");
	FILE *f;
	char *b;
	long n;

	snprintf(path, sizeof path, "%s/%s/%s", src ? src : ".", DATADIR, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* ---- real 3.6 index ---- */

static void
test_real_v17(void **state)
{
	struct cyrus_index x;
	size_t len, mlen, checked = 0;
	char *b = slurp("v17.index", &len), name[64], *msg;
	unsigned char sha[20];
	uint32_t i;

	(void)state;
	if (!b)
		skip();
	assert_int_equal(cyrus_index_parse(&x, b, len), 0);
	assert_int_equal(x.minor_version, 17);
	assert_int_equal(x.start_offset, 160);
	assert_int_equal(x.record_size, 112);
	assert_int_equal(len, 160 + (size_t)x.num_records * 112);
	assert_true(x.exists <= x.num_records);
	assert_true(x.last_uid >= x.records[x.num_records - 1].uid);
	for (i = 0; i < x.num_records; i++) {
		snprintf(name, sizeof name, "v17-msgs/%u.", x.records[i].uid);
		msg = slurp(name, &mlen);
		if (!msg)
			continue;               /* a file cyr_expire would have removed */
		SHA1((unsigned char *)msg, mlen, sha);
		assert_memory_equal(sha, x.records[i].guid, 20);
		assert_int_equal(x.records[i].size, mlen);
		free(msg);
		checked++;
	}
	assert_true(checked >= 20);
	/* a flipped byte in record 3 is a CRC error naming record 3 */
	b[160 + 2 * 112 + 61] ^= 1;
	cyrus_index_free(&x);
	assert_int_equal(cyrus_index_parse(&x, b, len), -1);
	assert_non_null(strstr(x.err.msg, "record 3: bad CRC"));
	assert_int_equal(x.err.code, CHJ_ERR_CORRUPT);
	b[160 + 2 * 112 + 61] ^= 1;
	b[20] ^= 0x10;                      /* header */
	assert_int_equal(cyrus_index_parse(&x, b, len), -1);
	assert_non_null(strstr(x.err.msg, "header: bad CRC"));
	b[20] ^= 0x10;
	assert_int_equal(cyrus_index_parse(&x, b, len - 1), -1);
	assert_non_null(strstr(x.err.msg, "truncated at record"));
	assert_int_equal(cyrus_index_parse(&x, b, 100), -1);
	assert_non_null(strstr(x.err.msg, "truncated header"));
	free(b);
}

/* ---- synthetic indexes, per version ---- */

struct vlayout {
	uint32_t v, hsize, rsize, crc;
	uint32_t h_last_uid, h_uidvalidity, h_modseq, h_exists;
	uint32_t r_date, r_size, r_sflags, r_uflags, wide;
};

/* the layouts as Cyrus's sources give them (see common/cyrus/meta.c) */
static const struct vlayout vl[] = {
	{ 10,  96,  88, 0, 28, 44, 68, 0,  4, 12, 32, 36, 0 },
	{ 11,  96,  96, 1, 28, 44, 68, 0,  4, 12, 32, 36, 0 },
	{ 12, 128,  96, 1, 28, 44, 68, 84, 4, 12, 32, 36, 0 },
	{ 13, 128, 104, 1, 28, 44, 68, 84, 4, 12, 32, 36, 0 },
	{ 14, 160, 104, 1, 28, 44, 68, 84, 4, 12, 32, 36, 0 },
	{ 16, 160, 112, 1, 28, 44, 68, 84, 4, 12, 32, 36, 0 },
	{ 17, 160, 112, 1, 28, 44, 68, 84, 4, 12, 32, 36, 0 },
	{ 20, 192, 144, 1, 88, 92, 72, 60, 8, 24, 36, 40, 1 },
};

static void
seal(unsigned char *p, uint32_t size)
{
	put32(p + size - 4, (uint32_t)crc32(0L, p, size - 4));
}

/* An index of version L with n records (uid i+1, guid = sha1("msg i")). */
static unsigned char *
build(const struct vlayout *L, uint32_t n, uint32_t extra_rec, size_t *len)
{
	uint32_t rs = L->rsize + extra_rec, i;
	unsigned char *b;
	char text[32];

	*len = L->hsize + (size_t)n * rs;
	b = calloc(1, *len);
	assert_non_null(b);
	put32(b + 8, L->v);
	put32(b + 12, L->hsize);
	put32(b + 16, rs);
	put32(b + 20, n);
	put32(b + L->h_last_uid, n + 5);
	put32(b + L->h_uidvalidity, 1234567);
	put64(b + L->h_modseq, 99);
	if (L->h_exists)
		put32(b + L->h_exists, n ? n - 1 : 0);
	if (L->crc)
		seal(b, L->hsize);
	for (i = 0; i < n; i++) {
		unsigned char *r = b + L->hsize + (size_t)i * rs;

		put32(r, i + 1);
		if (L->wide) {
			put64(r + L->r_date, (uint64_t)(1700000000u + i) * 1000000000u + 123);
			put64(r + L->r_size, 1000 + i);
		} else {
			put32(r + L->r_date, 1700000000u + i);
			put32(r + L->r_size, 1000 + i);
		}
		put32(r + L->r_sflags, i == 0 ? 0x80000011u : 0x2u);
		put32(r + L->r_uflags + 4, 0x5u);
		snprintf(text, sizeof text, "msg %u", i);
		SHA1((unsigned char *)text, strlen(text), r + 60);
		put64(r + 80, 40 + i);
		if (L->crc)
			seal(r, L->rsize);     /* the CRC covers the version's record */
	}
	return b;
}

static void
check_built(const struct vlayout *L, const unsigned char *b, size_t len, uint32_t n)
{
	struct cyrus_index x;
	unsigned char sha[20];
	char text[32];
	uint32_t i;

	assert_int_equal(cyrus_index_parse(&x, b, len), 0);
	assert_int_equal(x.minor_version, L->v);
	assert_int_equal(x.num_records, n);
	assert_int_equal(x.last_uid, n + 5);
	assert_int_equal(x.uidvalidity, 1234567);
	assert_int_equal(x.highestmodseq, 99);
	assert_int_equal(x.exists, L->h_exists ? n - 1 : n);
	for (i = 0; i < n; i++) {
		snprintf(text, sizeof text, "msg %u", i);
		SHA1((unsigned char *)text, strlen(text), sha);
		assert_int_equal(x.records[i].uid, i + 1);
		assert_int_equal(x.records[i].internaldate, 1700000000u + i);
		assert_int_equal(x.records[i].size, 1000 + i);
		assert_int_equal(x.records[i].user_flags[1], 5);
		assert_int_equal(x.records[i].modseq, 40 + i);
		assert_memory_equal(x.records[i].guid, sha, 20);
	}
	assert_true(x.records[0].system_flags & CYRUS_FLAG_EXPUNGED);
	assert_true(x.records[0].system_flags & CYRUS_FLAG_SEEN);
	assert_true(x.records[1].system_flags & CYRUS_FLAG_FLAGGED);
	assert_true(cyrus_record_has_file(&x.records[0]));
	cyrus_index_free(&x);
}

static void
test_versions(void **state)
{
	size_t k, len;
	uint32_t hs, rs;

	(void)state;
	for (k = 0; k < sizeof vl / sizeof vl[0]; k++) {
		const struct vlayout *L = &vl[k];
		struct cyrus_index x;
		unsigned char *b;

		assert_int_equal(cyrus_index_layout(L->v, &hs, &rs), 0);
		assert_int_equal(hs, L->hsize);
		assert_int_equal(rs, L->rsize);
		b = build(L, 5, 0, &len);
		check_built(L, b, len, 5);
		/* truncated in record 4 */
		assert_int_equal(cyrus_index_parse(&x, b, len - L->rsize - 1), -1);
		assert_non_null(strstr(x.err.msg, "truncated at record 4 of 5"));
		if (L->crc) {
			b[L->hsize + 3 * L->rsize + 62] ^= 0x40;
			assert_int_equal(cyrus_index_parse(&x, b, len), -1);
			assert_non_null(strstr(x.err.msg, "record 4: bad CRC"));
		}
		/* a record size smaller than the version's */
		put32(b + 16, L->rsize - 8);
		assert_int_equal(cyrus_index_parse(&x, b, len), -1);
		assert_non_null(strstr(x.err.msg, L->crc ? "header: bad CRC" : "smaller than"));
		if (L->crc) {
			seal(b, L->hsize);
			assert_int_equal(cyrus_index_parse(&x, b, len), -1);
			assert_non_null(strstr(x.err.msg, "smaller than"));
		}
		free(b);
		/* records larger than the version needs (record_size from the file) */
		b = build(L, 3, 16, &len);
		check_built(L, b, len, 3);
		free(b);
		b = build(L, 0, 0, &len);
		assert_int_equal(cyrus_index_parse(&x, b, len), 0);
		assert_int_equal(x.num_records, 0);
		free(b);
	}
}

/* cyrus_index_same_state: only recentuid, recenttime and the header CRC
 * of versions 12 to 19 may differ; anything else is a change. */
static void
test_same_state(void **state)
{
	size_t k, len;

	(void)state;
	for (k = 0; k < sizeof vl / sizeof vl[0]; k++) {
		const struct vlayout *L = &vl[k];
		int ok = L->v >= 12 && L->v <= 19;
		unsigned char *a = build(L, 4, 0, &len), *b = build(L, 4, 0, &len);

		/* the same bytes qualify only where the fields are known */
		assert_int_equal(cyrus_index_same_state(a, len, b, len), ok);
		if (L->hsize < 112) {
			free(a);
			free(b);
			continue;
		}
		/* what a SELECT rewrites: recentuid, recenttime, the header CRC */
		put32(b + 104, 9);
		put32(b + 108, 1800000000);
		if (L->crc)
			seal(b, L->hsize);
		assert_int_equal(cyrus_index_same_state(a, len, b, len), ok);
		assert_int_equal(cyrus_index_same_state(b, len, a, len), ok);
		/* the CRC left stale: not a header Cyrus wrote */
		b[104] ^= 1;
		assert_int_equal(cyrus_index_same_state(a, len, b, len), 0);
		b[104] ^= 1;
		/* any other header field: pop3_last_login, highestmodseq, unseen */
		{
			static const size_t off[] = { 40, 68, 124 };
			size_t i;

			for (i = 0; i < 3; i++) {
				if (off[i] + 4 > L->hsize - 4)
					continue;
				b[off[i] + 3] ^= 1;
				if (L->crc)
					seal(b, L->hsize);
				assert_int_equal(cyrus_index_same_state(a, len, b, len), 0);
				b[off[i] + 3] ^= 1;
				if (L->crc)
					seal(b, L->hsize);
				assert_int_equal(cyrus_index_same_state(a, len, b, len), ok);
			}
		}
		/* a record: \Seen set on message 2 */
		b[L->hsize + L->rsize + L->r_sflags + 3] |= 0x10;
		if (L->crc)
			seal(b + L->hsize + L->rsize, L->rsize);
		assert_int_equal(cyrus_index_same_state(a, len, b, len), 0);
		/* a length that differs (a record appended) */
		assert_int_equal(cyrus_index_same_state(a, len - L->rsize, a, len), 0);
		free(a);
		free(b);
	}
	assert_int_equal(cyrus_index_same_state("", 0, "", 0), 0);
}

static void
test_bad_versions(void **state)
{
	unsigned char b[256];
	struct cyrus_index x;

	(void)state;
	memset(b, 0, sizeof b);
	put32(b + 8, 9);
	assert_int_equal(cyrus_index_parse(&x, b, sizeof b), -1);
	assert_non_null(strstr(x.err.msg, "unsupported minor version 9"));
	put32(b + 8, 21);
	assert_int_equal(cyrus_index_parse(&x, b, sizeof b), -1);
	assert_int_equal(cyrus_index_parse(&x, b, 5), -1);
	assert_non_null(strstr(x.err.msg, "truncated header"));
}

/* ---- cyrus.header ---- */

static void
test_header_v3(void **state)
{
	struct cyrus_header h;
	size_t len;
	char *b = slurp("v3.header", &len);

	(void)state;
	assert_non_null(b);
	assert_int_equal(cyrus_header_parse(&h, b, len), 0);
	assert_string_equal(h.name, "user.user01");
	assert_int_equal(strlen(h.uniqueid), 24);
	assert_null(h.quotaroot);
	assert_non_null(strstr(h.acl, "user01\tlrswipkxtecdan\t"));
	cyrus_header_free(&h);
	assert_int_equal(cyrus_header_parse(&h, b, len - 30), -1);
	free(b);
	b = strdup("\241\002\213\015Cyrus mailbox header\nq1\nq2\n"
	    "%(T e N user.a^b.x I abc123 Q user.a^b A %(a.b lrs \"x y\" p) U (\\Junk \"two words\" {3+}\r\nlit))\n");
	assert_int_equal(cyrus_header_parse(&h, b, strlen(b)), 0);
	assert_string_equal(h.name, "user.a^b.x");
	assert_string_equal(h.quotaroot, "user.a^b");
	assert_string_equal(h.acl, "a.b\tlrs\tx y\tp\t");
	assert_int_equal(h.nflags, 3);
	assert_string_equal(h.flagnames[0], "\\Junk");
	assert_string_equal(h.flagnames[1], "two words");
	assert_string_equal(h.flagnames[2], "lit");
	cyrus_header_free(&h);
	b[0] = 'X';
	assert_int_equal(cyrus_header_parse(&h, b, strlen(b)), -1);
	assert_non_null(strstr(h.err.msg, "bad magic"));
	assert_int_equal(h.err.code, CHJ_ERR_CORRUPT);
	free(b);
}

static void
test_header_v2(void **state)
{
	struct cyrus_header h;
	size_t len;
	char *b = slurp("v2.header", &len);

	(void)state;
	assert_non_null(b);
	assert_int_equal(cyrus_header_parse(&h, b, len), 0);
	assert_null(h.name);
	assert_string_equal(h.quotaroot, "user.bob");
	assert_string_equal(h.uniqueid, "2b9e1a3c4d5e6f70");
	assert_int_equal(h.nflags, 2);
	assert_string_equal(h.flagnames[0], "Junk");
	assert_string_equal(h.flagnames[1], "$Label1");
	assert_string_equal(h.acl, "bob\tlrswipkxtecda\tanyone\tp\t");
	cyrus_header_free(&h);
	/* cut before the flag line ends */
	assert_int_equal(cyrus_header_parse(&h, b, len - 40), -1);
	assert_non_null(strstr(h.err.msg, "truncated"));
	free(b);
}

/* ---- imapd.conf, paths, names ---- */

static void
test_conf_and_paths(void **state)
{
	char tmpl[] = "/tmp/chj-unit-cyrus.XXXXXX";
	int fd = mkstemp(tmpl);
	struct cyrus_conf c;
	struct cyrus_mailbox m;
	struct chj_error err;
	const char *text =
	    "# comment\n\nconfigdirectory: /var/lib/imap\nPartition-Default: /sp/a  \n"
	    "partition-two: /sp/b\nhashimapspool: true\nunixhierarchysep: no\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(cyrus_conf_load(&c, tmpl), 0);
	assert_string_equal(c.configdirectory, "/var/lib/imap");
	assert_string_equal(c.lockpath, "/var/lib/imap/lock");
	assert_string_equal(c.sievedir, "/usr/sieve");
	assert_string_equal(c.mboxlist_db, "twoskip");
	assert_string_equal(cyrus_partition_path(&c, "default"), "/sp/a");
	assert_string_equal(cyrus_partition_path(&c, "two"), "/sp/b");
	assert_null(cyrus_partition_path(&c, "three"));
	assert_int_equal(c.hashimapspool, 1);
	assert_int_equal(c.unixhierarchysep, 0);
	assert_int_equal(c.fulldirhash, 0);

	memset(&m, 0, sizeof m);
	m.name = "user.j^doe.x^y";
	m.uniqueid = "3fb44vpdwy89mlqwkzumetu7";
	m.mbtype = "el";
	m.partition = "two";
	assert_int_equal(cyrus_mailbox_set_path(&c, &m, &err), 0);
	assert_string_equal(m.path, "/sp/b/j/user/j^doe/x^y");
	m.name = "DELETED.user.Zed.Drafts.6B04C37D";
	assert_int_equal(cyrus_mailbox_set_path(&c, &m, &err), 0);
	assert_string_equal(m.relpath, "z/DELETED/user/Zed/Drafts/6B04C37D");
	m.mbtype = "e";
	assert_int_equal(cyrus_mailbox_set_path(&c, &m, &err), 0);
	assert_string_equal(m.relpath, "uuid/3/f/3fb44vpdwy89mlqwkzumetu7");
	free(m.path);
	free(m.relpath);
	m.partition = "nope";
	m.path = m.relpath = NULL;
	assert_int_equal(cyrus_mailbox_set_path(&c, &m, &err), -1);
	assert_non_null(strstr(err.msg, "partition 'nope'"));
	assert_int_equal(err.code, CHJ_ERR_NOTFOUND);
	cyrus_conf_free(&c);

	/* dir_hash_c: first letter, 'q' for non-letters; fulldirhash A..W */
	assert_int_equal(cyrus_dir_hash_c("9nine", 0), 'q');
	assert_int_equal(cyrus_dir_hash_c("Zed", 0), 'z');
	assert_true(cyrus_dir_hash_c("user01", 1) >= 'A' && cyrus_dir_hash_c("user01", 1) <= 'W');
	assert_int_equal(cyrus_dir_hash_c("ab", 1), 'A' + (((((uint32_t)'a' << 3) ^ ('a' >> 5)) ^ 'b') % 23));

	/* virtdomains and a line without a colon are refused */
	fd = open(tmpl, O_WRONLY | O_TRUNC);
	text = "configdirectory: /x\npartition-default: /y\nvirtdomains: userid\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(cyrus_conf_load(&c, tmpl), -1);
	assert_non_null(strstr(c.err.msg, "virtdomains"));
	assert_int_equal(c.err.code, CHJ_ERR_INVALID);
	cyrus_conf_free(&c);
	fd = open(tmpl, O_WRONLY | O_TRUNC);
	text = "configdirectory /x\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(cyrus_conf_load(&c, tmpl), -1);
	assert_non_null(strstr(c.err.msg, ":1: not a 'key: value' line"));
	assert_int_equal(c.err.code, CHJ_ERR_INVALID);
	cyrus_conf_free(&c);
	unlink(tmpl);
}

static void
test_user_file_name(void **state)
{
	const char *names[] = { "user01", "j.doe", ".hidden", "a/b", "50%", "tab\there", "..", "é", NULL };
	int i;

	(void)state;
	for (i = 0; names[i]; i++) {
		char *f = cyrus_user_file_name(names[i]), *back;

		assert_non_null(f);
		assert_null(strchr(f, '/'));
		assert_true(f[0] != '.');
		assert_null(strchr(f, '\t'));
		back = cyrus_user_from_file_name(f);
		assert_string_equal(back, names[i]);
		free(f);
		free(back);
	}
	assert_null(cyrus_user_file_name(""));
	assert_null(cyrus_user_from_file_name("bad%2"));
	assert_null(cyrus_user_from_file_name("bad%zz"));
	{
		char *u = cyrus_name_user("DELETED.user.j^doe.Drafts.6B04C37D");

		assert_string_equal(u, "j.doe");
		free(u);
		assert_null(cyrus_name_user("shared.folder"));
	}
}

/* Folder annotations: the record the backup archives (parsed back as the
 * restore parses it), the lookup by folder, a missing annotations.db (no
 * annotations) and a backend that is not twoskip (refused). */
static void
test_folder_annots(void **state)
{
	struct cyrus_annots a;
	struct cyrus_conf c;
	struct dl d;
	const struct dl *an;
	struct chj_error err;
	char *buf = NULL, dir[] = "/tmp/chj-annots-XXXXXX", path[256];
	size_t len = 0, first = 0;

	(void)state;
	memset(&a, 0, sizeof a);
	assert_int_equal(cyrus_annots_add(&a, "zz1", "/comment", "", 7, "shared one", 10), 0);
	assert_int_equal(cyrus_annots_add(&a, "aa1", "/comment", CYRUS_OWNER_TOKEN, 0, "x\r\ny", 4), 0);
	assert_int_equal(cyrus_annots_add(&a, "aa1", "/comment", "", 0, "", 0), 0);
	cyrus_annots_sort(&a);
	assert_int_equal(cyrus_annots_of(&a, "aa1", &first), 2);
	assert_int_equal(first, 0);
	assert_string_equal(a.v[0].userid, "");
	assert_int_equal(cyrus_annots_of(&a, "mm", &first), 0);
	assert_int_equal(cyrus_annots_of(&a, "zz1", &first), 1);
	assert_int_equal(first, 2);
	assert_int_equal(cyrus_folder_record(NULL, a.v, 2, &buf, &len), 0);
	assert_int_equal(buf[len - 1], '\n');
	assert_int_equal(dl_parse(&d, buf, len, NULL, &err), 0);
	an = dl_get(&d, "ANNOTATIONS");
	assert_non_null(an);
	assert_int_equal(an->n, 2);
	assert_string_equal(dl_atom(&an->v[1], "USERID"), CYRUS_OWNER_TOKEN);
	assert_string_equal(dl_atom(&an->v[1], "VALUE"), "x\r\ny");  /* a literal */
	assert_string_equal(dl_atom(&an->v[0], "VALUE"), "");
	dl_free(&d);
	free(buf);
	assert_int_equal(cyrus_folder_record(NULL, NULL, 0, &buf, &len), 0);
	assert_string_equal(buf, "%(ANNOTATIONS ())\n");
	free(buf);
	/* with the mailboxes.db value: as it is, parsed back with its ACL */
	assert_int_equal(cyrus_folder_record("%(T e I u1 P default A %(bob lrs anyone p))", NULL, 0,
	    &buf, &len), 0);
	assert_string_equal(buf, "%(MBOXLIST %(T e I u1 P default A %(bob lrs anyone p)) "
	    "ANNOTATIONS ())\n");
	assert_int_equal(dl_parse(&d, buf, len, NULL, &err), 0);
	an = dl_get(dl_get(&d, "MBOXLIST"), "A");
	assert_non_null(an);
	assert_int_equal(an->n, 2);
	assert_string_equal(an->keys[1], "anyone");
	dl_free(&d);
	free(buf);
	cyrus_annots_free(&a);

	memset(&c, 0, sizeof c);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/annotations.db", dir);
	c.annotation_db_path = path;
	assert_int_equal(cyrus_annots_load(&a, &c, NULL, 0, 100), 0);
	assert_int_equal(a.n, 0);
	cyrus_annots_free(&a);
	c.annotation_db = "skiplist";
	assert_int_equal(cyrus_annots_load(&a, &c, NULL, 0, 100), -1);
	assert_non_null(strstr(a.err.msg, "skiplist"));
	assert_int_equal(a.err.code, CHJ_ERR_INVALID);
	cyrus_annots_free(&a);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_v17),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_same_state),
		cmocka_unit_test(test_bad_versions),
		cmocka_unit_test(test_header_v3),
		cmocka_unit_test(test_header_v2),
		cmocka_unit_test(test_conf_and_paths),
		cmocka_unit_test(test_user_file_name),
		cmocka_unit_test(test_folder_annots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
