/* test-path.c: cmocka unit tests for the byte-string path helpers
 * (common/path.h: path_join, path_is_under, path_is_cookie_name,
 * path_display, path_cmp) and for the consumer cursors (common/consumer.h:
 * consumer_name_valid, consumer_save/consumer_load round trip, corrupt
 * cursor files, consumer_list, consumers_prune_point), the latter in a
 * temporary directory (unit-tmp.h); and the array helpers
 * (common/array.h: array_grow, array_sort, array_sort_unique_strings). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "consumer.h"
#include "path.h"
#include "unit-tmp.h"

/* ---- array helpers ---- */

static void
test_array_grow(void **state)
{
	int *v = NULL, *nv;
	size_t n, cap = 0;

	(void)state;
	for (n = 0; n < 1000; n++) {
		nv = array_grow(v, n, &cap, sizeof *v, 16);
		assert_non_null(nv);
		assert_true(cap > n);
		v = nv;
		v[n] = (int)n;
	}
	/* 16 doubled up to 1024: the 1000th element fitted without a realloc */
	assert_int_equal(cap, 1024);
	for (n = 0; n < 1000; n++)
		assert_int_equal(v[n], (int)n);
	/* room left: the same array back */
	assert_ptr_equal(array_grow(v, 1000, &cap, sizeof *v, 16), v);
	/* a size that cannot be allocated: NULL, the array and cap as they were */
	cap = 1024;
	assert_null(array_grow(v, 1024, &cap, SIZE_MAX / 1024, 16));
	assert_int_equal(cap, 1024);
	assert_int_equal(v[999], 999);
	free(v);
}

static void
test_array_sort_unique_strings(void **state)
{
	const char *in[] = { "b", "a\xff", "a", "b", "a\n", "a", "", "a/" };
	const char *want[] = { "", "a", "a\n", "a/", "a\xff", "b" };
	char **v = calloc(8, sizeof *v);
	size_t i, n;

	(void)state;
	/* none: a NULL array is fine */
	assert_int_equal(array_sort_unique_strings(NULL, 0), 0);
	assert_non_null(v);
	for (i = 0; i < 8; i++)
		assert_non_null(v[i] = strdup(in[i]));
	/* byte order (0xff last, newline before '/'); duplicates freed (ASan) */
	n = array_sort_unique_strings(v, 8);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
	/* already in order (no sort): the duplicates still go */
	assert_non_null(v[n++] = strdup("b"));
	n = array_sort_unique_strings(v, n);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- helpers ---- */

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* ---- path_dirname ---- */

static void
test_path_dirname(void **state)
{
	static const struct {
		const char *path, *want;
	} cases[] = {
		{ "/var/lib/chjournal/journal.db", "/var/lib/chjournal" },
		{ "/journal.db", "/" },
		{ "/", "/" },
		{ "journal.db", "/" },
		{ "a/b", "a" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *p = path_dirname(cases[i].path);

		assert_non_null(p);
		assert_string_equal(p, cases[i].want);
		free(p);
	}
}

/* ---- path_join ---- */

static void
test_path_join(void **state)
{
	static const struct {
		const char *dir, *name, *want;
	} cases[] = {
		{ "/a", "b", "/a/b" },
		{ "/a/", "b", "/a/b" },
		{ "/a///", "b", "/a/b" },
		{ "/", "b", "/b" },
		{ "//", "b", "/b" },
		{ "/a/b", "c d", "/a/b/c d" },
		{ "rel", "x", "rel/x" },
		{ "/a", "\n\xff", "/a/\n\xff" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *p = path_join(cases[i].dir, cases[i].name);

		assert_non_null(p);
		assert_string_equal(p, cases[i].want);
		free(p);
	}
}

/* ---- path_is_under ---- */

static void
test_path_is_under(void **state)
{
	(void)state;
	assert_int_equal(path_is_under("/a/b", "/a/b"), 1);
	assert_int_equal(path_is_under("/a/b/c", "/a/b"), 1);
	assert_int_equal(path_is_under("/a/b/c/d", "/a/b"), 1);
	assert_int_equal(path_is_under("/a/bc", "/a/b"), 0);
	assert_int_equal(path_is_under("/a/b-c", "/a/b"), 0);
	assert_int_equal(path_is_under("/a", "/a/b"), 0);
	assert_int_equal(path_is_under("/x/a/b", "/a/b"), 0);
	assert_int_equal(path_is_under("/a/", "/a"), 1);
	/* "/" holds every absolute path */
	assert_int_equal(path_is_under("/", "/"), 1);
	assert_int_equal(path_is_under("/a", "/"), 1);
	assert_int_equal(path_is_under("/a/b/c", "/"), 1);
	assert_int_equal(path_is_under("a", "/"), 0);
	/* bytes, not characters */
	assert_int_equal(path_is_under("/a/\xff/x", "/a/\xff"), 1);
	assert_int_equal(path_is_under("/a/\xff\xfe", "/a/\xff"), 0);
}

/* ---- path_is_cookie_name ---- */

static void
test_path_is_cookie_name(void **state)
{
	(void)state;
	/* exactly the agent's shape: prefix, pid, '.', 16 lower-case hex digits */
	assert_int_equal(path_is_cookie_name(".chjournal-cookie.123.0123456789abcdef"), 1);
	assert_int_equal(path_is_cookie_name("/spool/.chjournal-cookie.7.ffffffffffffffff"), 1);
	assert_int_equal(path_is_cookie_name(".chjournal-cookie.123"), 0);
	assert_int_equal(path_is_cookie_name(".chjournal-cookie."), 0);
	assert_int_equal(path_is_cookie_name("/spool/.chjournal-cookie.abc"), 0);
	assert_int_equal(path_is_cookie_name("/spool/a/.chjournal-cookie.x.y"), 0);
	assert_int_equal(path_is_cookie_name(".chjournal-cookie.1.0123456789abcdeF"), 0);
	assert_int_equal(path_is_cookie_name(".chjournal-cookie.1.0123456789abcdef0"), 0);
	assert_int_equal(path_is_cookie_name(".chjournal-cookie.Secret"), 0);
	assert_int_equal(path_is_cookie_name(".chjournal-cookie"), 0);
	assert_int_equal(path_is_cookie_name("/spool/.chjournal-cookie.x/file"), 0);
	assert_int_equal(path_is_cookie_name("/spool/x.chjournal-cookie.1"), 0);
	assert_int_equal(path_is_cookie_name("chjournal-cookie.1"), 0);
	assert_int_equal(path_is_cookie_name("/spool/file"), 0);
	assert_int_equal(path_is_cookie_name(""), 0);
}

/* ---- path_display ---- */

static void
test_path_display_escapes(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(path_display("/plain/path", buf, sizeof buf), "/plain/path");
	assert_string_equal(path_display("/a\nb", buf, sizeof buf), "/a\\nb");
	assert_string_equal(path_display("/a\tb", buf, sizeof buf), "/a\\tb");
	assert_string_equal(path_display("/a\\b", buf, sizeof buf), "/a\\\\b");
	assert_string_equal(path_display("/a\x7f" "b", buf, sizeof buf), "/a\\x7fb");
	assert_string_equal(path_display("/\xff\x80", buf, sizeof buf), "/\\xff\\x80");
	assert_string_equal(path_display("/caf\xc3\xa9", buf, sizeof buf), "/caf\\xc3\\xa9");
	assert_string_equal(path_display("/\x01\x1f", buf, sizeof buf), "/\\x01\\x1f");
	assert_string_equal(path_display("/ ~'\"", buf, sizeof buf), "/ ~'\"");
	assert_string_equal(path_display("", buf, sizeof buf), "");
	/* returns buf */
	assert_ptr_equal(path_display("/x", buf, sizeof buf), buf);
}

/* The display units of s: each byte's escaped form. */
static size_t
display_units(const char *s, char units[][5], size_t max)
{
	size_t n = 0;
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0' && n < max; p++, n++) {
		if (*p == '\n')
			strcpy(units[n], "\\n");
		else if (*p == '\t')
			strcpy(units[n], "\\t");
		else if (*p == '\\')
			strcpy(units[n], "\\\\");
		else if (*p < 0x20 || *p >= 0x7f)
			snprintf(units[n], 5, "\\x%02x", *p);
		else {
			units[n][0] = (char)*p;
			units[n][1] = '\0';
		}
	}
	return n;
}

/* For every size 0..20: nothing written past the buffer, NUL-terminated,
 * and either the whole escaped form or a prefix of whole escape units
 * followed by "...". */
static void
test_path_display_truncation(void **state)
{
	static const char *inputs[] = {
		"/abcdefghijklmnopqrstuvwxyz/0123456789",
		"/\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
		"/a\nb\nc\nd\ne\nf\ng\nh",
		"/\\\\\\\\\\\\",
		"/short",
		"abcdefg",
	};
	size_t i, size;

	(void)state;
	for (i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		char units[64][5], full[512];
		size_t nu = display_units(inputs[i], units, 64), k;

		full[0] = '\0';
		for (k = 0; k < nu; k++)
			strcat(full, units[k]);
		for (size = 0; size <= 20; size++) {
			unsigned char guard[64];
			char *buf = (char *)guard + 8;
			size_t len, k2, o;

			memset(guard, 0xA5, sizeof guard);
			path_display(inputs[i], buf, size);
			/* nothing before or after [buf, buf + size) touched */
			for (k = 0; k < 8; k++)
				assert_int_equal(guard[k], 0xA5);
			for (k = 8 + size; k < sizeof guard; k++)
				assert_int_equal(guard[k], 0xA5);
			if (size == 0)
				continue;
			assert_non_null(memchr(buf, '\0', size));
			len = strlen(buf);
			assert_true(len < size);
			if (strcmp(buf, full) == 0)
				continue;
			if (len == 0)        /* too small to say anything useful */
				continue;
			/* truncated: whole units, then "..." */
			assert_true(len >= 3);
			assert_string_equal(buf + len - 3, "...");
			for (k2 = 0, o = 0; k2 < nu && o < len - 3; k2++)
				o += strlen(units[k2]);
			assert_int_equal(o, len - 3);
			assert_memory_equal(buf, full, len - 3);
		}
	}
}

/* A path that fits with room to spare is shown whole; a long one is cut
 * without wasting the buffer. */
static void
test_path_display_fits(void **state)
{
	char buf[64], big[200];

	(void)state;
	assert_string_equal(path_display("/abc", buf, 20), "/abc");
	assert_string_equal(path_display("/a\nb", buf, 20), "/a\\nb");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	path_display(big, buf, sizeof buf);
	assert_true(strlen(buf) >= sizeof buf - 8);
	assert_string_equal(buf + strlen(buf) - 3, "...");
}

/* ---- path_cmp ---- */

static void
test_path_cmp(void **state)
{
	const char *a = "a", *ff = "\xff", *b = "b", *sub = "/a/b", *dash = "/a-b", *pa = "/a";
	const char *arr[] = { "\xff", "a", "B", "/a/b", "/a", "/a-b", "/a\x80", "/a/" };
	const char *want[] = { "/a", "/a-b", "/a/", "/a/b", "/a\x80", "B", "a", "\xff" };
	size_t i;

	(void)state;
	assert_true(path_cmp(&ff, &a) > 0);
	assert_true(path_cmp(&a, &ff) < 0);
	assert_true(path_cmp(&a, &b) < 0);
	assert_int_equal(path_cmp(&a, &a), 0);
	assert_true(path_cmp(&dash, &sub) < 0);
	assert_true(path_cmp(&pa, &dash) < 0);
	qsort(arr, sizeof arr / sizeof arr[0], sizeof arr[0], path_cmp);
	for (i = 0; i < sizeof arr / sizeof arr[0]; i++)
		assert_string_equal(arr[i], want[i]);
}

/* ---- consumers ---- */

struct cfix {
	char *dir;     /* the temporary directory */
	char *cdir;    /* dir/consumers */
	struct consumers cs;
};

static int
cons_setup(void **state)
{
	struct cfix *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	f->dir = unit_tmpdir_new("path");
	f->cdir = path_join(f->dir, "consumers");
	if (consumers_open(&f->cs, f->cdir, 1) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
cons_teardown(void **state)
{
	struct cfix *f = *state;

	consumers_close(&f->cs);
	unit_rmtree(f->dir);
	free(f->dir);
	free(f->cdir);
	free(f);
	return 0;
}

static void
test_consumer_name_valid(void **state)
{
	char name[80];

	(void)state;
	assert_int_equal(consumer_name_valid("a"), 1);
	assert_int_equal(consumer_name_valid("nightly"), 1);
	assert_int_equal(consumer_name_valid("Bacula-Job_1.full@host+x"), 1);
	assert_int_equal(consumer_name_valid("0"), 1);
	assert_int_equal(consumer_name_valid("a."), 1);
	assert_int_equal(consumer_name_valid("a-"), 1);
	assert_int_equal(consumer_name_valid(""), 0);
	assert_int_equal(consumer_name_valid(".hidden"), 0);
	assert_int_equal(consumer_name_valid("."), 0);
	assert_int_equal(consumer_name_valid(".."), 0);
	assert_int_equal(consumer_name_valid("-x"), 0);
	assert_int_equal(consumer_name_valid("a/b"), 0);
	assert_int_equal(consumer_name_valid("../x"), 0);
	assert_int_equal(consumer_name_valid("a b"), 0);
	assert_int_equal(consumer_name_valid("a\nb"), 0);
	assert_int_equal(consumer_name_valid("caf\xc3\xa9"), 0);
	assert_int_equal(consumer_name_valid("a:b"), 0);
	assert_int_equal(consumer_name_valid("a*"), 0);
	memset(name, 'x', 64);
	name[64] = '\0';
	assert_int_equal(consumer_name_valid(name), 1);
	name[64] = 'x';
	name[65] = '\0';
	assert_int_equal(consumer_name_valid(name), 0);
}

static void
fill_state(struct consumer_state *st, const char *jid, int64_t seq)
{
	memset(st, 0, sizeof *st);
	st->has_committed = 1;
	snprintf(st->committed_journal_id, sizeof st->committed_journal_id, "%s", jid);
	st->committed_seq = seq;
	st->committed_time = 1700000000;
	st->commit_time = 1700000100;
}

#define JID_A "0123456789abcdef0123456789abcdef"
#define JID_B "fedcba9876543210fedcba9876543210"

static void
test_consumer_round_trip(void **state)
{
	struct cfix *f = *state;
	struct consumer_state in, out;
	struct stat stt;
	char *p;

	memset(&in, 0, sizeof in);
	in.has_committed = 1;
	memcpy(in.committed_journal_id, JID_A, 33);
	in.committed_seq = 1234567890123LL;
	in.committed_time = 1700000000;
	in.commit_time = 1700000555;
	in.has_open = 1;
	memcpy(in.open_journal_id, JID_B, 33);
	in.open_seq = 9876543210LL;
	in.open_time = 1700001000;
	in.open_full = 1;
	in.open_after_seq = 42;
	assert_int_equal(consumer_save(&f->cs, "nightly", &in), 0);
	assert_int_equal(consumer_load(&f->cs, "nightly", &out), 0);
	assert_int_equal(out.has_committed, 1);
	assert_string_equal(out.committed_journal_id, JID_A);
	assert_int_equal(out.committed_seq, 1234567890123LL);
	assert_int_equal(out.committed_time, 1700000000);
	assert_int_equal(out.commit_time, 1700000555);
	assert_int_equal(out.has_open, 1);
	assert_string_equal(out.open_journal_id, JID_B);
	assert_int_equal(out.open_seq, 9876543210LL);
	assert_int_equal(out.open_time, 1700001000);
	assert_int_equal(out.open_full, 1);
	assert_int_equal(out.open_after_seq, 42);

	/* the cursor file is private and no temporary file is left behind */
	p = path_join(f->cdir, "nightly");
	assert_int_equal(stat(p, &stt), 0);
	assert_int_equal(stt.st_mode & 07777, 0600);
	free(p);
	p = path_join(f->cdir, "nightly.tmp");
	assert_int_equal(stat(p, &stt), -1);
	assert_int_equal(errno, ENOENT);
	free(p);

	/* overwriting: the new state replaces the old one */
	in.has_open = 0;
	in.open_full = 0;
	in.committed_seq = 5;
	assert_int_equal(consumer_save(&f->cs, "nightly", &in), 0);
	assert_int_equal(consumer_load(&f->cs, "nightly", &out), 0);
	assert_int_equal(out.committed_seq, 5);
	assert_int_equal(out.has_open, 0);
	assert_int_equal(out.open_full, 0);
	assert_int_equal(out.has_committed, 1);
}

static void
test_consumer_missing_and_invalid(void **state)
{
	struct cfix *f = *state;
	struct consumer_state st;

	assert_int_equal(consumer_load(&f->cs, "nobody", &st), 1);
	assert_int_equal(consumer_load(&f->cs, "../etc", &st), -1);
	assert_non_null(strstr(f->cs.err.msg, "invalid consumer name '../etc'"));
	assert_int_equal(f->cs.err.code, CHJ_ERR_INVALID);
	fill_state(&st, JID_A, 1);
	assert_int_equal(consumer_save(&f->cs, ".x", &st), -1);
	assert_non_null(strstr(f->cs.err.msg, "invalid consumer name '.x'"));
	assert_int_equal(consumer_remove(&f->cs, "nobody"), 1);
	assert_int_equal(consumer_save(&f->cs, "gone", &st), 0);
	assert_int_equal(consumer_remove(&f->cs, "gone"), 0);
	assert_int_equal(consumer_load(&f->cs, "gone", &st), 1);
}

static void
test_consumer_corrupt(void **state)
{
	struct cfix *f = *state;
	struct consumer_state st;
	static const char *bad[] = {
		"has_committed=1\ncommitted_seq=12x\n",
		"has_committed=1\ncommitted_seq=\n",
		"has_committed=1\nthis line has no equals sign\n",
		"committed_journal_id=short\n",
		"committed_seq=99999999999999999999999999\n",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *p = path_join(f->cdir, "broken");

		write_file(p, bad[i]);
		free(p);
		chj_error_clear(&f->cs.err);
		assert_int_equal(consumer_load(&f->cs, "broken", &st), -1);
		assert_non_null(strstr(f->cs.err.msg, "consumer 'broken'"));
		assert_non_null(strstr(f->cs.err.msg, "corrupt"));
		assert_int_equal(f->cs.err.code, CHJ_ERR_CORRUPT);
	}
}

static void
test_consumer_list(void **state)
{
	struct cfix *f = *state;
	struct consumer_state st;
	char **names;
	size_t n;
	char *p;

	fill_state(&st, JID_A, 1);
	assert_int_equal(consumer_list(&f->cs, &names, &n), 0);
	assert_int_equal(n, 0);
	consumer_list_free(names, n);
	assert_int_equal(consumer_save(&f->cs, "b", &st), 0);
	assert_int_equal(consumer_save(&f->cs, "A", &st), 0);
	assert_int_equal(consumer_save(&f->cs, "a", &st), 0);
	assert_int_equal(consumers_lock(&f->cs), 0);   /* creates .lock: not a consumer */
	consumers_unlock(&f->cs);
	assert_int_equal(consumer_list(&f->cs, &names, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "A");
	assert_string_equal(names[1], "a");
	assert_string_equal(names[2], "b");
	consumer_list_free(names, n);
	/* a missing directory lists nothing */
	p = path_join(f->dir, "nonexistent");
	consumers_close(&f->cs);
	assert_int_equal(consumers_open(&f->cs, p, 0), 0);
	assert_int_equal(consumer_list(&f->cs, &names, &n), 0);
	assert_int_equal(n, 0);
	consumer_list_free(names, n);
	free(p);
}

/* A name ending in ".tmp" is a valid consumer name: it must be a consumer
 * like any other (listed, constraining the prune point). */
static void
test_consumer_tmp_suffix_name(void **state)
{
	struct cfix *f = *state;
	struct consumer_state st;
	char **names;
	size_t n;
	int64_t seq = -1;

	assert_int_equal(consumer_name_valid("weekly.tmp"), 1);
	fill_state(&st, JID_A, 7);
	assert_int_equal(consumer_save(&f->cs, "weekly.tmp", &st), 0);
	assert_int_equal(consumer_load(&f->cs, "weekly.tmp", &st), 0);
	assert_int_equal(st.committed_seq, 7);
	assert_int_equal(consumer_list(&f->cs, &names, &n), 0);
	assert_int_equal(n, 1);
	if (n == 1)
		assert_string_equal(names[0], "weekly.tmp");
	consumer_list_free(names, n);
	fill_state(&st, JID_A, 100);
	assert_int_equal(consumer_save(&f->cs, "nightly", &st), 0);
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	/* weekly.tmp has only seen up to 7: nothing above it may be pruned */
	assert_int_equal(seq, 7);
}

/* Saving consumer X must not touch consumer "X.tmp". */
static void
test_consumer_save_keeps_tmp_named_consumer(void **state)
{
	struct cfix *f = *state;
	struct consumer_state st;

	fill_state(&st, JID_A, 7);
	assert_int_equal(consumer_save(&f->cs, "x.tmp", &st), 0);
	fill_state(&st, JID_A, 100);
	assert_int_equal(consumer_save(&f->cs, "x", &st), 0);
	assert_int_equal(consumer_load(&f->cs, "x", &st), 0);
	assert_int_equal(st.committed_seq, 100);
	assert_int_equal(consumer_load(&f->cs, "x.tmp", &st), 0);
	assert_int_equal(st.committed_seq, 7);
}

static void
test_consumers_prune_point(void **state)
{
	struct cfix *f = *state;
	struct consumer_state st;
	int64_t seq = -1;
	char *p;

	/* no consumers: nothing may be pruned */
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 0);

	/* a consumer committed on another journal does not constrain */
	fill_state(&st, JID_B, 3);
	assert_int_equal(consumer_save(&f->cs, "other", &st), 0);
	seq = -1;
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 0);

	/* nor does an open run on another journal */
	memset(&st, 0, sizeof st);
	st.has_open = 1;
	memcpy(st.open_journal_id, JID_B, 33);
	st.open_seq = 1;
	st.open_full = 1;
	assert_int_equal(consumer_save(&f->cs, "fresh", &st), 0);
	seq = -1;
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 0);

	/* the minimum of the committed seqs on this journal */
	fill_state(&st, JID_A, 50);
	assert_int_equal(consumer_save(&f->cs, "c50", &st), 0);
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 50);
	fill_state(&st, JID_A, 20);
	assert_int_equal(consumer_save(&f->cs, "c20", &st), 0);
	fill_state(&st, JID_A, 90);
	assert_int_equal(consumer_save(&f->cs, "c90", &st), 0);
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 20);
	/* the other journal sees only its own consumers (committed 3, open at 1) */
	assert_int_equal(consumers_prune_point(&f->cs, JID_B, &seq), 0);
	assert_int_equal(seq, 1);

	/* an open run on this journal (a first, full run among them) will commit
	 * its begin point: rows after it must stay */
	memset(&st, 0, sizeof st);
	st.has_open = 1;
	memcpy(st.open_journal_id, JID_A, 33);
	st.open_seq = 15;
	st.open_full = 1;
	assert_int_equal(consumer_save(&f->cs, "first-run", &st), 0);
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 15);
	/* committed at 90, open run begun at 95: the committed seq rules */
	fill_state(&st, JID_A, 90);
	st.has_open = 1;
	memcpy(st.open_journal_id, JID_A, 33);
	st.open_seq = 95;
	st.open_after_seq = 90;
	assert_int_equal(consumer_save(&f->cs, "c90", &st), 0);
	assert_int_equal(consumer_remove(&f->cs, "first-run"), 0);
	assert_int_equal(consumer_remove(&f->cs, "c20"), 0);
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 50);
	assert_int_equal(consumer_remove(&f->cs, "c50"), 0);
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), 0);
	assert_int_equal(seq, 90);

	/* a corrupt cursor: error, and nothing may be pruned */
	p = path_join(f->cdir, "broken");
	write_file(p, "committed_seq=oops\n");
	free(p);
	seq = 77;
	assert_int_equal(consumers_prune_point(&f->cs, JID_A, &seq), -1);
	assert_int_equal(seq, 0);
	assert_non_null(strstr(f->cs.err.msg, "consumer 'broken'"));
	assert_int_equal(f->cs.err.code, CHJ_ERR_CORRUPT);
}

static void
test_consumers_prune_point_missing_dir(void **state)
{
	struct consumers cs;
	char *dir = unit_tmpdir_new("path"), *p = path_join(dir, "none");
	int64_t seq = -1;

	(void)state;
	assert_int_equal(consumers_open(&cs, p, 0), 0);
	assert_int_equal(consumers_prune_point(&cs, JID_A, &seq), 0);
	assert_int_equal(seq, 0);
	consumers_close(&cs);
	unit_rmtree(dir);
	free(p);
	free(dir);
}

static void
test_consumers_open_creates_private_dir(void **state)
{
	struct consumers cs;
	char *dir = unit_tmpdir_new("path"), *p = path_join(dir, "c");
	struct stat st;
	mode_t old = umask(0);

	(void)state;
	assert_int_equal(consumers_open(&cs, p, 1), 0);
	umask(old);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	consumers_close(&cs);
	unit_rmtree(dir);
	free(p);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_dirname),
		cmocka_unit_test(test_path_join),
		cmocka_unit_test(test_path_is_under),
		cmocka_unit_test(test_path_is_cookie_name),
		cmocka_unit_test(test_path_display_escapes),
		cmocka_unit_test(test_path_display_truncation),
		cmocka_unit_test(test_path_display_fits),
		cmocka_unit_test(test_path_cmp),
		cmocka_unit_test(test_array_grow),
		cmocka_unit_test(test_array_sort_unique_strings),
		cmocka_unit_test(test_consumer_name_valid),
		cmocka_unit_test_setup_teardown(test_consumer_round_trip, cons_setup, cons_teardown),
		cmocka_unit_test_setup_teardown(test_consumer_missing_and_invalid, cons_setup, cons_teardown),
		cmocka_unit_test_setup_teardown(test_consumer_corrupt, cons_setup, cons_teardown),
		cmocka_unit_test_setup_teardown(test_consumer_list, cons_setup, cons_teardown),
		cmocka_unit_test_setup_teardown(test_consumer_tmp_suffix_name, cons_setup, cons_teardown),
		cmocka_unit_test_setup_teardown(test_consumer_save_keeps_tmp_named_consumer, cons_setup,
		    cons_teardown),
		cmocka_unit_test_setup_teardown(test_consumers_prune_point, cons_setup, cons_teardown),
		cmocka_unit_test(test_consumers_prune_point_missing_dir),
		cmocka_unit_test(test_consumers_open_creates_private_dir),
	};

	return cmocka_run_group_tests_name("path and consumer", tests, NULL, NULL);
}
