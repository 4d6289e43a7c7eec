/* test-metadelta.c: cmocka unit tests for a folder's cyrus.index stored as
 * deltas (common/cyrus/metadelta.h): the encoder and the rebuild (records
 * appended, a flag rewritten, an expunge in place and one that shifts the
 * records, a header-only change, a shorter file, random edits, malformed
 * deltas refused); then through the real backup of a small spool (a local
 * source, no Cyrus): a chain across several runs, each run restored byte for
 * byte, a version change, a first copy and a base in a large run stored
 * whole, verify clean,
 * compaction keeping every retained run restorable (a delta whose base goes
 * rewritten whole), and a corrupt delta named by verify in one line; the
 * same for a per-user dav.db that the SQLite library changes a row at a
 * time (each run a small delta, restored byte for byte, compacted, a
 * corrupt one named; a database under 4 KiB stored whole). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "archive/archive.h"
#include "archive/runsel.h"
#include "config.h"
#include "cyrus-fixture.h"
#include "cyrus/backup.h"
#include "cyrus/metadelta.h"
#include "cyrus/restore.h"
#include "cyrus/retention.h"
#include "cyrus/verify.h"
#include "journal.h"
#include "source.h"
#include "unit-tmp.h"

#define NMSG 60
#define HDR 160
#define REC 112

static char *texts[NMSG + 8];

static void
make_texts(void)
{
	size_t i;

	for (i = 0; i < NMSG + 8; i++)
		if (texts[i] == NULL)
			assert_true(asprintf(&texts[i], "From: x\r\nSubject: %zu\r\n\r\nmessage %zu\r\n", i, i) > 0);
}

/* A v17 index of messages uid 1..n, with flags[uid-1] when flags. */
static unsigned char *
index_of(size_t n, const uint32_t *flags, size_t *len)
{
	struct fx_msg m[NMSG + 8];
	size_t i;

	make_texts();
	for (i = 0; i < n; i++) {
		m[i].uid = (uint32_t)i + 1;
		m[i].text = texts[i];
		m[i].system_flags = flags ? flags[i] : 0;
	}
	return fx_index(m, n, len);
}

/* Encodes b against a (budget max), rebuilds, compares; the delta's size. */
static size_t
roundtrip(const void *a, size_t alen, const void *b, size_t blen, size_t max)
{
	struct cyrus_delta_info info;
	struct chj_error e;
	char *d, *buf;
	size_t dlen, len = alen;

	assert_int_equal(cyrus_delta_encode(a, alen, b, blen, max, &d, &dlen), 0);
	assert_int_equal(cyrus_delta_info(d, dlen, &info, &e), 0);
	assert_int_equal(info.base_size, alen);
	assert_int_equal(info.new_size, blen);
	buf = malloc(alen + 1);
	assert_non_null(buf);
	memcpy(buf, a, alen);
	assert_int_equal(cyrus_delta_apply(&buf, &len, d, dlen, &e), 0);
	assert_int_equal(len, blen);
	assert_memory_equal(buf, b, blen);
	free(buf);
	free(d);
	return dlen;
}

static void
test_codec(void **state)
{
	uint32_t flags[NMSG + 1] = { 0 };
	unsigned char *a, *b, *c;
	size_t alen, blen, clen, dlen;
	char *d;

	(void)state;
	a = index_of(NMSG, NULL, &alen);
	assert_int_equal(alen, HDR + NMSG * REC);
	/* the same file: no extent */
	assert_int_equal(roundtrip(a, alen, a, alen, alen), CYRUS_DELTA_HEAD);
	/* one message appended: its record and the header's changed fields */
	b = index_of(NMSG + 1, NULL, &blen);
	dlen = roundtrip(a, alen, b, blen, alen / 2);
	assert_true(dlen < CYRUS_DELTA_HEAD + HDR + REC + 3 * 12);
	free(b);
	/* \Seen on one message (the record rewritten in place) */
	flags[9] = 0x10;
	b = index_of(NMSG, flags, &blen);
	dlen = roundtrip(a, alen, b, blen, alen / 2);
	assert_true(dlen < CYRUS_DELTA_HEAD + 2 * (REC + 12));
	free(b);
	/* an expunge as Cyrus 3 does it: the record's flag, in place */
	flags[9] = 0;
	flags[20] = 1u << 31;       /* CYRUS_FLAG_EXPUNGED */
	b = index_of(NMSG, flags, &blen);
	assert_true(roundtrip(a, alen, b, blen, alen / 2) < CYRUS_DELTA_HEAD + 2 * (REC + 12));
	free(b);
	/* cyr_expire's repack: the records after it all move: every one of
	 * them differs, past a budget of ten records */
	memset(flags, 0, sizeof flags);
	c = index_of(NMSG, NULL, &clen);
	memmove(c + HDR + 20 * REC, c + HDR + 21 * REC, (NMSG - 21) * REC);
	clen -= REC;
	assert_int_equal(cyrus_delta_encode(a, alen, c, clen, CYRUS_DELTA_HEAD + 10 * REC, &d, &dlen), 1);
	assert_null(d);
	/* but with room, it still rebuilds (and a shorter file) */
	roundtrip(a, alen, c, clen, 2 * alen);
	free(c);
	/* a header-only change (pop3_last_login, the CRC) */
	b = malloc(alen);
	assert_non_null(b);
	memcpy(b, a, alen);
	b[40] ^= 1;
	b[HDR - 1] ^= 0x55;
	assert_true(roundtrip(a, alen, b, alen, alen / 2) <= CYRUS_DELTA_HEAD + 2 * (12 + 1) + 0);
	free(b);
	/* the file cut short, grown from nothing */
	roundtrip(a, alen, a, HDR, alen);
	roundtrip(a, 0, a, alen, 2 * alen);
	free(a);
}

/* Random edits of random bytes: every delta rebuilds exactly. */
static void
test_random(void **state)
{
	unsigned seed = 12345;
	int round;

	(void)state;
	for (round = 0; round < 300; round++) {
		size_t alen = (size_t)(rand_r(&seed) % 3000), blen, i, k;
		unsigned char *a = malloc(alen + 1), *b;

		assert_non_null(a);
		for (i = 0; i < alen; i++)
			a[i] = (unsigned char)rand_r(&seed);
		blen = rand_r(&seed) % 4 == 0 ? (size_t)(rand_r(&seed) % 3000) : alen;
		b = malloc(blen + 1);
		assert_non_null(b);
		for (i = 0; i < blen; i++)
			b[i] = i < alen ? a[i] : (unsigned char)rand_r(&seed);
		for (k = (size_t)(rand_r(&seed) % 20); k > 0 && blen > 0; k--)
			b[rand_r(&seed) % blen] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		roundtrip(a, alen, b, blen, 4 * (alen + blen) + 1024);
		free(a);
		free(b);
	}
}

/* Malformed deltas: refused with a reason, never applied past their end. */
static void
test_malformed(void **state)
{
	unsigned char *a, *b;
	size_t alen, blen, dlen, len;
	struct cyrus_delta_info info;
	struct chj_error e;
	char *d, *buf;

	(void)state;
	a = index_of(10, NULL, &alen);
	b = index_of(11, NULL, &blen);
	assert_int_equal(cyrus_delta_encode(a, alen, b, blen, blen, &d, &dlen), 0);
	/* cut anywhere: refused */
	for (len = 0; len < dlen; len += 7)
		assert_int_equal(cyrus_delta_info(d, len, &info, &e), -1);
	/* an extent pointing past the new size */
	d[CYRUS_DELTA_HEAD + 3] = 0x7f;
	assert_int_equal(cyrus_delta_info(d, dlen, &info, &e), -1);
	assert_non_null(strstr(e.msg, "out of range"));
	d[CYRUS_DELTA_HEAD + 3] = 0;
	d[CYRUS_DELTA_HEAD + 7] = 0;
	/* the wrong base */
	buf = malloc(alen);
	assert_non_null(buf);
	memcpy(buf, a, alen - 1);
	len = alen - 1;
	assert_int_equal(cyrus_delta_apply(&buf, &len, d, dlen, &e), -1);
	assert_non_null(strstr(e.msg, "its base has"));
	/* a new size no cyrus.index has: refused before anything is allocated */
	d[18] = 0x7f;
	assert_int_equal(cyrus_delta_info(d, dlen, &info, &e), -1);
	assert_non_null(strstr(e.msg, "new size"));
	d[18] = 0;
	d[0] = 'X';
	assert_int_equal(cyrus_delta_info(d, dlen, &info, &e), -1);
	assert_true(cyrus_delta_name("folders/u/cyrus.index.delta"));
	assert_false(cyrus_delta_name("folders/u/cyrus.index"));
	free(buf);
	free(d);
	free(a);
	free(b);
}

/* ---- through the backup ---- */

struct fx {
	char base[4096];
	char top[4200];
	char dir[4096];             /* the folder's directory */
	char archive[4300];
	struct config cfg;
	struct journal *j;
	struct source *src;
	struct cyrus_backup *b;
	char *want[16];             /* the live cyrus.index at each run */
	size_t wlen[16];
	int nruns;
	char problems[8][1024];
	int nproblems;
};

static int
setup(void **state)
{
	struct source_local_opts lo;
	struct cyrus_backup_opts o;
	struct chj_error e;
	struct fx *f = calloc(1, sizeof *f);
	char p[8400], to[4200], tools[4200], *conf;

	assert_non_null(f);
	assert_non_null(unit_tmpdir(f->base, sizeof f->base, "metadelta"));
	snprintf(f->top, sizeof f->top, "%s/cyrus", f->base);
	snprintf(f->archive, sizeof f->archive, "%s/archives/alice.tar.gz", f->base);
	fx_spool(f->top);
	assert_true(asprintf(&conf, "journal = %s/j.db\nroot = %s\n", f->base, f->top) > 0);
	assert_int_equal(config_parse(&f->cfg, "test.conf", conf), 0);
	free(conf);
	f->j = journal_new();
	snprintf(p, sizeof p, "%s/j.db", f->base);
	assert_int_equal(journal_open(f->j, p, JOURNAL_CREATE), 0);
	memset(&o, 0, sizeof o);
	memset(&lo, 0, sizeof lo);
	snprintf(p, sizeof p, "%s/imapd.conf", f->top);
	snprintf(to, sizeof to, "%s/archives", f->base);
	snprintf(tools, sizeof tools, "%s/no-cyrus-tools", f->base);
	lo.cfg = &f->cfg;
	lo.journal = f->j;
	lo.imapd_conf = p;
	lo.toolsdir = tools;
	lo.lock_timeout_ms = 2000;
	assert_int_equal(source_local_open(&f->src, &lo, &e), 0);
	o.source = f->src;
	o.to = to;
	assert_int_equal(cyrus_backup_open(&f->b, &o, &e), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < f->nruns; i++)
		free(f->want[i]);
	cyrus_backup_free(f->b);
	source_free(f->src);
	journal_free(f->j);
	config_free(&f->cfg);
	unit_rmtree(f->base);
	free(f);
	return 0;
}

/* Writes the folder with messages 1..n (flags as given), its index's mtime
 * a second later each time. */
static void
write_folder(struct fx *f, size_t n, const uint32_t *flags)
{
	static int64_t tick;
	struct fx_msg m[NMSG + 8];
	struct timespec ts[2];
	char p[8400];
	size_t i;

	make_texts();
	for (i = 0; i < n; i++) {
		m[i].uid = (uint32_t)i + 1;
		m[i].text = texts[i];
		m[i].system_flags = flags ? flags[i] : 0;
	}
	fx_mailbox(f->top, "user.alice", "a1inbox", m, n, f->dir);
	snprintf(p, sizeof p, "%s/cyrus.index", f->dir);
	ts[0].tv_sec = ts[1].tv_sec = 1700000000 + ++tick;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* Sets the index's minor version (v16 to v19 share their layout) and
 * its header CRC. */
static void
set_version(struct fx *f, uint32_t v)
{
	unsigned char *x;
	char p[8400];
	size_t len;
	uint32_t crc;
	struct stat sb;
	struct timespec ts[2];

	snprintf(p, sizeof p, "%s/cyrus.index", f->dir);
	assert_int_equal(stat(p, &sb), 0);
	x = (unsigned char *)fx_read(p, &len);
	assert_non_null(x);
	x[8] = (unsigned char)(v >> 24);
	x[9] = (unsigned char)(v >> 16);
	x[10] = (unsigned char)(v >> 8);
	x[11] = (unsigned char)v;
	crc = (uint32_t)crc32(0L, x, HDR - 4);
	x[HDR - 4] = (unsigned char)(crc >> 24);
	x[HDR - 3] = (unsigned char)(crc >> 16);
	x[HDR - 2] = (unsigned char)(crc >> 8);
	x[HDR - 1] = (unsigned char)crc;
	fx_write(p, x, len);
	free(x);
	ts[0] = sb.st_atim;
	ts[1] = sb.st_mtim;
	ts[1].tv_sec += 1000;
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* Backs alice up (one run), keeps the live index as that run's. */
static void
run(struct fx *f)
{
	struct strvec u = { 0 };
	char p[8400];

	assert_int_equal(strvec_add(&u, "alice"), 0);
	assert_int_equal(cyrus_backup_users(f->b, &u, 42), 0);
	strvec_free(&u);
	snprintf(p, sizeof p, "%s/cyrus.index", f->dir);
	f->want[f->nruns] = fx_read(p, &f->wlen[f->nruns]);
	f->nruns++;
}

/* How run r (1, 2, ...) stored entry name: 'w' whole, 'd' delta, '-' not;
 * the member's size into *size when not NULL. */
static char
stored_entry_as(struct fx *f, const char *name, int64_t r, uint64_t *size)
{
	struct chj_error err;
	struct arch *a;
	struct arch_entry e;
	char how = '-';
	int delta;

	assert_int_equal(arch_open(&a, f->archive, ARCH_READ, &err), 0);
	if (cyrus_meta_latest(a, name, r, &e, &delta) == 1) {
		if (e.run == r)
			how = delta ? 'd' : 'w';
		if (size != NULL)
			*size = e.size;
		arch_entry_free(&e);
	}
	arch_close(a);
	return how;
}

/* How run r stored the index. */
static char
stored_as(struct fx *f, int64_t r)
{
	return stored_entry_as(f, "folders/a1inbox/cyrus.index", r, NULL);
}

/* Restores run at (runsel text) and compares the file rel (below the
 * restore's directory) with want. */
static void
assert_restores_file(struct fx *f, const char *at, const char *rel, const char *want, size_t wlen)
{
	struct cyrus_restore_result res;
	struct chj_error e;
	struct runsel sel;
	char to[4200], p[8400];
	static int n;
	size_t len;
	char *got;

	assert_int_equal(runsel_parse(&sel, at, &e), 0);
	snprintf(to, sizeof to, "%s/out%d", f->base, ++n);
	memset(&res, 0, sizeof res);
	if (cyrus_restore(f->archive, to, &sel, NULL, 0, &res, &e) < 0)
		fail_msg("restore --at %s: %s", at, e.msg);
	snprintf(p, sizeof p, "%s/%s", to, rel);
	got = fx_read(p, &len);
	assert_non_null(got);
	assert_int_equal(len, wlen);
	assert_memory_equal(got, want, wlen);
	free(got);
	cyrus_restore_result_free(&res);
}

/* Restores run at and compares the index with want. */
static void
assert_restores(struct fx *f, const char *at, const char *want, size_t wlen)
{
	assert_restores_file(f, at, "spool/default/uuid/a/1/a1inbox/cyrus.index", want, wlen);
}

static void
on_problem(void *ctx, int problem, const char *msg)
{
	struct fx *f = ctx;

	if (problem && f->nproblems < 8)
		snprintf(f->problems[f->nproblems++], sizeof f->problems[0], "%s", msg);
}

static long
verify(struct fx *f)
{
	struct chj_error e;

	f->nproblems = 0;
	return cyrus_verify(f->archive, on_problem, f, &e);
}

/* A chain over several runs: each restored exactly, a whole copy where
 * the version changes, verify clean. */
static void
test_chain(void **state)
{
	struct fx *f = *state;
	uint32_t flags[NMSG + 8] = { 0 };
	char at[16];
	int i;

	write_folder(f, NMSG, NULL);
	run(f);                                 /* 1: the first copy, whole */
	write_folder(f, NMSG + 1, NULL);
	run(f);                                 /* 2: a message delivered */
	flags[4] = 0x10;
	write_folder(f, NMSG + 1, flags);
	run(f);                                 /* 3: \Seen */
	flags[7] = 1u << 31;
	write_folder(f, NMSG + 2, flags);
	run(f);                                 /* 4: an expunge and a delivery */
	set_version(f, 18);
	run(f);                                 /* 5: another minor version: whole */
	flags[1] = 0x2;
	write_folder(f, NMSG + 2, flags);
	run(f);                                 /* 6: back to v17 (whole), a flag */
	flags[2] = 0x2;
	write_folder(f, NMSG + 3, flags);
	run(f);                                 /* 7: a delta again */
	assert_int_equal(f->nruns, 7);
	assert_int_equal(stored_as(f, 1), 'w');
	assert_int_equal(stored_as(f, 2), 'd');
	assert_int_equal(stored_as(f, 3), 'd');
	assert_int_equal(stored_as(f, 4), 'd');
	assert_int_equal(stored_as(f, 5), 'w');
	assert_int_equal(stored_as(f, 6), 'w');
	assert_int_equal(stored_as(f, 7), 'd');
	for (i = 0; i < f->nruns; i++) {
		snprintf(at, sizeof at, "%d", i + 1);
		assert_restores(f, at, f->want[i], f->wlen[i]);
	}
	/* nothing changed but the time: no run */
	write_folder(f, NMSG + 3, flags);
	{
		struct strvec u = { 0 };
		const struct cyrus_backup_stats *st = cyrus_backup_stats(f->b);
		unsigned long runs = st->runs;

		assert_int_equal(strvec_add(&u, "alice"), 0);
		assert_int_equal(cyrus_backup_users(f->b, &u, 42), 0);
		strvec_free(&u);
		assert_int_equal(st->runs, runs);
	}
	assert_int_equal(verify(f), 0);
}

/* A chain is bounded: after enough deltas a whole copy starts a new one. */
static void
test_chain_bound(void **state)
{
	struct fx *f = *state;
	uint32_t flags[NMSG + 8] = { 0 };
	int i, whole = 0;

	write_folder(f, NMSG, NULL);
	run(f);
	/* each run rewrites many records: the chain's deltas outgrow the file */
	for (i = 0; i < 8; i++) {
		size_t k;

		for (k = 0; k < NMSG; k++)
			flags[k] ^= 1u << (i % 8);
		write_folder(f, NMSG, flags);
		run(f);
	}
	for (i = 2; i <= f->nruns; i++)
		whole += stored_as(f, i) == 'w';
	assert_true(whole >= 1);
	assert_true(whole < f->nruns - 1);
	for (i = 0; i < f->nruns; i++) {
		char at[16];

		snprintf(at, sizeof at, "%d", i + 1);
		assert_restores(f, at, f->want[i], f->wlen[i]);
	}
	assert_int_equal(verify(f), 0);
}

/* An index whose only copy is in a large run (a first, full run over 64
 * MiB) is stored whole the first time it changes, so that its chain is
 * not read back through that run; the next change is a delta again. */
static void
test_large_base(void **state)
{
	struct fx *f = *state;
	uint32_t flags[NMSG + 8] = { 0 };
	size_t big = 65u * 1024 * 1024;
	char *saved = texts[0], *text = malloc(big + 1);

	assert_non_null(text);
	memset(text, 'x', big);
	memcpy(text, "From: big\r\n\r\n", 13);
	text[big] = '\0';
	texts[0] = text;
	write_folder(f, 3, NULL);
	run(f);
	flags[1] = 0x10;
	write_folder(f, 3, flags);
	run(f);
	flags[2] = 0x10;
	write_folder(f, 3, flags);
	run(f);
	texts[0] = saved;
	free(text);
	assert_int_equal(stored_as(f, 1), 'w');
	assert_int_equal(stored_as(f, 2), 'w');
	assert_int_equal(stored_as(f, 3), 'd');
	assert_restores(f, "3", f->want[2], f->wlen[2]);
}

/* Compaction: the runs kept restore as they did; the first kept run's
 * delta, whose base goes, is stored whole. */
static void
test_compact(void **state)
{
	struct fx *f = *state;
	uint32_t flags[NMSG + 8] = { 0 };
	struct cyrus_compact_result res;
	struct prune_rules rules;
	struct chj_error e;
	char at[16];
	int i;

	write_folder(f, NMSG, NULL);
	run(f);
	for (i = 0; i < 5; i++) {
		flags[i] = 0x10;
		write_folder(f, NMSG + (size_t)i + 1, flags);
		run(f);
	}
	for (i = 2; i <= 6; i++)
		assert_int_equal(stored_as(f, i), 'd');
	memset(&rules, 0, sizeof rules);
	rules.last = 3;                         /* runs 4, 5, 6 stay */
	if (cyrus_compact(f->archive, &rules, CYRUS_COMPACT_FORCE, 1800000000, &res, &e) < 0)
		fail_msg("compact: %s", e.msg);
	assert_int_equal(res.outcome, CYRUS_COMPACT_DONE);
	assert_int_equal(res.kept, 3);
	cyrus_compact_result_free(&res);
	/* the kept runs are now 1, 2, 3 */
	assert_int_equal(stored_as(f, 1), 'w');
	assert_int_equal(stored_as(f, 2), 'd');
	assert_int_equal(stored_as(f, 3), 'd');
	for (i = 0; i < 3; i++) {
		snprintf(at, sizeof at, "%d", i + 1);
		assert_restores(f, at, f->want[i + 3], f->wlen[i + 3]);
	}
	assert_int_equal(verify(f), 0);
	/* and a backup after it goes on from the state */
	flags[30] = 0x10;
	write_folder(f, NMSG + 6, flags);
	run(f);
	assert_int_equal(stored_as(f, 4), 'd');
	assert_restores(f, "4", f->want[f->nruns - 1], f->wlen[f->nruns - 1]);
	assert_int_equal(verify(f), 0);
}

/* Appends a run holding member name (data, len) and the last run's
 * manifest, as a backup would. */
static void
append_run(struct fx *f, const char *name, const void *data, size_t len)
{
	struct arch_run *runs = NULL;
	struct chj_error err;
	struct arch *a;
	char *man = NULL, runname[64];
	size_t ml, nr;

	assert_int_equal(arch_open(&a, f->archive, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_runs(a, &runs, &nr), 0);
	assert_true(nr > 0);
	assert_int_equal(arch_read_manifest(a, runs[nr - 1].id, &man, &ml), 0);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, name, data, len, 1700000000000000000LL, 0600), 0);
	assert_int_equal(arch_run_commit(a, man, ml, runname, sizeof runname), 0);
	assert_int_equal(arch_close(a), 0);
	free(runs);
	free(man);
}

/* A delta that does not rebuild what it says: verify names it, one line;
 * restore of that run fails naming it; earlier runs restore. */
static void
test_corrupt(void **state)
{
	struct fx *f = *state;
	struct cyrus_restore_result res;
	struct chj_error err;
	struct runsel sel;
	unsigned char *x, *y;
	char *d, to[4200];
	size_t xl, yl, dl;

	write_folder(f, NMSG, NULL);
	run(f);
	write_folder(f, NMSG + 1, NULL);
	run(f);
	assert_int_equal(stored_as(f, 2), 'd');
	/* run 3: a delta from run 2's state with one byte of its data flipped
	 * after encoding, so its SHA1 check fails */
	x = (unsigned char *)f->want[1];
	xl = f->wlen[1];
	y = index_of(NMSG + 2, NULL, &yl);
	assert_int_equal(cyrus_delta_encode(x, xl, y, yl, yl, &d, &dl), 0);
	d[dl - 1] ^= 0x20;
	append_run(f, "folders/a1inbox/cyrus.index.delta", d, dl);
	free(d);
	free(y);
	if (verify(f) != 1)
		fail_msg("%d problems: %s / %s", f->nproblems, f->problems[0], f->problems[1]);
	assert_non_null(strstr(f->problems[0], "folders/a1inbox/cyrus.index.delta"));
	assert_non_null(strstr(f->problems[0], "run 3"));
	assert_non_null(strstr(f->problems[0], "SHA1"));
	assert_null(strchr(f->problems[0], '\n'));
	assert_restores(f, "2", f->want[1], f->wlen[1]);
	assert_int_equal(runsel_parse(&sel, "3", &err), 0);
	snprintf(to, sizeof to, "%s/bad", f->base);
	memset(&res, 0, sizeof res);
	assert_int_equal(cyrus_restore(f->archive, to, &sel, NULL, 0, &res, &err), -1);
	assert_non_null(strstr(err.msg, "cyrus.index.delta' (run 3)"));
	cyrus_restore_result_free(&res);
}

#define DAV_REL "conf/user/uuid/a/1/a1inbox/dav.db"
#define DAV_ENTRY "user/" DAV_REL

/* Runs sql on alice's dav.db through the SQLite library (created on first
 * use), its mtime a second later each time; *out: the file's bytes after. */
static void
dav_exec(struct fx *f, const char *sql, char **out, size_t *len)
{
	static int64_t tick;
	struct timespec ts[2];
	char p[8400], *msg = NULL;
	struct stat sb;
	sqlite3 *db;

	snprintf(p, sizeof p, "%s/" DAV_REL, f->top);
	if (stat(p, &sb) < 0)
		fx_write(p, "", 0);     /* its directories; SQLite takes an empty file as new */
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("sqlite: %s", msg);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	ts[0].tv_sec = ts[1].tv_sec = 1750000000 + ++tick;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	*out = fx_read(p, len);
	assert_non_null(*out);
}

/* SQL inserting rows [from, to) of the dav table (about 300 bytes each). */
static char *
dav_rows(int from, int to)
{
	char *sql = NULL, *next;
	int i;

	assert_true(asprintf(&sql, "BEGIN;") > 0);
	for (i = from; i < to; i++) {
		assert_true(asprintf(&next, "%sINSERT INTO ical_objs VALUES (%d, 'user.alice.#calendars.Default', "
		    "'event-%d.ics', printf('%%.280c', 'a'), %d);", sql, i, i, i) > 0);
		free(sql);
		sql = next;
	}
	assert_true(asprintf(&next, "%sCOMMIT;", sql) > 0);
	free(sql);
	return next;
}

/* Creates alice's dav.db with rows 0..n-1 (4 KiB pages); *out: its bytes. */
static void
dav_create(struct fx *f, int n, char **out, size_t *len)
{
	char *sql = dav_rows(0, n), *all;

	assert_true(asprintf(&all, "PRAGMA page_size=4096; CREATE TABLE ical_objs (rowid INTEGER "
	    "PRIMARY KEY, mailbox TEXT, resource TEXT, data TEXT, modseq INTEGER); %s", sql) > 0);
	dav_exec(f, all, out, len);
	free(all);
	free(sql);
}

/* A per-user SQLite database changed a row at a time: each change a small
 * delta of dav.db; every run restores it byte for byte; verify clean;
 * compaction keeps the retained runs restorable. */
static void
test_user_db(void **state)
{
	struct fx *f = *state;
	struct cyrus_compact_result res;
	struct prune_rules rules;
	struct chj_error e;
	char *dav[8], at[16], *sql;
	size_t dlen[8];
	uint64_t size;
	int i;

	write_folder(f, NMSG, NULL);
	dav_create(f, 400, &dav[0], &dlen[0]);
	assert_true(dlen[0] > 100000);
	run(f);                                         /* 1: whole */
	dav_exec(f, "UPDATE ical_objs SET modseq = 1000 WHERE rowid = 200;", &dav[1], &dlen[1]);
	run(f);                                         /* 2: a row rewritten */
	sql = dav_rows(400, 402);
	dav_exec(f, sql, &dav[2], &dlen[2]);
	free(sql);
	run(f);                                         /* 3: two rows added */
	dav_exec(f, "DELETE FROM ical_objs WHERE rowid = 7;", &dav[3], &dlen[3]);
	run(f);                                         /* 4: a row deleted */
	assert_int_equal(stored_entry_as(f, DAV_ENTRY, 1, NULL), 'w');
	for (i = 2; i <= 4; i++) {
		assert_int_equal(stored_entry_as(f, DAV_ENTRY, i, &size), 'd');
		/* a few pages' worth at most, not the database */
		if (size > 3 * 4096)
			fail_msg("run %d: a delta of %llu bytes for a change of a row", i, (unsigned long long)size);
	}
	for (i = 0; i < 4; i++) {
		snprintf(at, sizeof at, "%d", i + 1);
		assert_restores_file(f, at, DAV_REL, dav[i], dlen[i]);
	}
	assert_int_equal(verify(f), 0);
	memset(&rules, 0, sizeof rules);
	rules.last = 2;                                 /* runs 3 and 4 stay */
	if (cyrus_compact(f->archive, &rules, CYRUS_COMPACT_FORCE, 1800000000, &res, &e) < 0)
		fail_msg("compact: %s", e.msg);
	assert_int_equal(res.outcome, CYRUS_COMPACT_DONE);
	cyrus_compact_result_free(&res);
	assert_int_equal(stored_entry_as(f, DAV_ENTRY, 1, NULL), 'w');
	assert_int_equal(stored_entry_as(f, DAV_ENTRY, 2, NULL), 'd');
	assert_restores_file(f, "1", DAV_REL, dav[2], dlen[2]);
	assert_restores_file(f, "2", DAV_REL, dav[3], dlen[3]);
	assert_int_equal(verify(f), 0);
	/* the next backup goes on from the compacted state */
	dav_exec(f, "UPDATE ical_objs SET modseq = 2000 WHERE rowid = 300;", &dav[4], &dlen[4]);
	run(f);
	assert_int_equal(stored_entry_as(f, DAV_ENTRY, 3, NULL), 'd');
	assert_restores_file(f, "3", DAV_REL, dav[4], dlen[4]);
	/* only touched: no run */
	{
		const struct cyrus_backup_stats *st = cyrus_backup_stats(f->b);
		unsigned long runs = st->runs;
		char *same;
		size_t slen;

		dav_exec(f, "SELECT count(*) FROM ical_objs;", &same, &slen);
		free(same);
		run(f);
		assert_int_equal(st->runs, runs);
	}
	/* a database under 4 KiB (sub.db) changed in one byte: whole, as
	 * deflated its copy costs what a delta would */
	{
		char p[8400], sub[600];
		struct timespec ts[2] = { { 1760000000, 0 }, { 1760000000, 0 } };

		memset(sub, 'n', sizeof sub);
		snprintf(p, sizeof p, "%s/conf/user/uuid/a/1/a1inbox/sub.db", f->top);
		fx_write(p, sub, sizeof sub);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
		run(f);                                 /* 4 */
		sub[300] = 'N';
		fx_write(p, sub, sizeof sub);
		ts[0].tv_sec = ts[1].tv_sec = 1760000001;
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
		run(f);                                 /* 5 */
		assert_int_equal(stored_entry_as(f, "user/conf/user/uuid/a/1/a1inbox/sub.db", 5, NULL), 'w');
		assert_restores_file(f, "5", "conf/user/uuid/a/1/a1inbox/sub.db", sub, sizeof sub);
	}
	for (i = 0; i < 5; i++)
		free(dav[i]);
}

/* A per-user database's delta that does not rebuild what it says: verify
 * names it in one line, restore of that run fails naming it, the run
 * before restores. */
static void
test_user_db_corrupt(void **state)
{
	struct fx *f = *state;
	struct cyrus_restore_result res;
	struct chj_error err;
	struct runsel sel;
	char *dav[3], *d, to[4200];
	size_t dlen[3], dl;

	write_folder(f, NMSG, NULL);
	dav_create(f, 100, &dav[0], &dlen[0]);
	run(f);
	dav_exec(f, "UPDATE ical_objs SET modseq = 5 WHERE rowid = 50;", &dav[1], &dlen[1]);
	run(f);
	assert_int_equal(stored_entry_as(f, DAV_ENTRY, 2, NULL), 'd');
	dav_exec(f, "UPDATE ical_objs SET modseq = 6 WHERE rowid = 60;", &dav[2], &dlen[2]);
	assert_int_equal(cyrus_delta_encode(dav[1], dlen[1], dav[2], dlen[2], dlen[2], &d, &dl), 0);
	d[dl - 1] ^= 0x20;
	append_run(f, DAV_ENTRY ".delta", d, dl);
	free(d);
	if (verify(f) != 1)
		fail_msg("%d problems: %s / %s", f->nproblems, f->problems[0], f->problems[1]);
	assert_non_null(strstr(f->problems[0], DAV_ENTRY ".delta' (run 3)"));
	assert_non_null(strstr(f->problems[0], "SHA1"));
	assert_null(strchr(f->problems[0], '\n'));
	assert_restores_file(f, "2", DAV_REL, dav[1], dlen[1]);
	assert_int_equal(runsel_parse(&sel, "3", &err), 0);
	snprintf(to, sizeof to, "%s/bad", f->base);
	memset(&res, 0, sizeof res);
	assert_int_equal(cyrus_restore(f->archive, to, &sel, NULL, 0, &res, &err), -1);
	assert_non_null(strstr(err.msg, "dav.db.delta' (run 3)"));
	cyrus_restore_result_free(&res);
	free(dav[0]);
	free(dav[1]);
	free(dav[2]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_db, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_db_corrupt, setup, teardown),
	};
	size_t i;
	int rc;

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (i = 0; i < NMSG + 8; i++)
		free(texts[i]);
	return rc;
}
