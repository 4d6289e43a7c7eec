/* test-cyrus-backup.c: cmocka unit tests for the Cyrus backup
 * (common/cyrus/backup.h), through a local source (common/source.h), on a
 * small spool built here (uuid layout, no
 * cyr_dbtool: the mailbox list comes from the cyrus.header files), with a
 * journal fed rows by hand: which users a window's rows make changed (a
 * mailbox file, a server file, a mailbox gone, a per-user file deleted, a
 * path whose owner cannot be read); which folders a run stores (all at
 * first, then only the changed one; none when nothing changed; a deleted
 * folder's link emptied); a message not matching its GUID failing its user
 * alone; a torn tail cut and told; what a read-only IMAP session leaves on
 * disk (cyrus.index's recentuid and recenttime rewritten, files touched)
 * writing no run, and a flag, another header field or other bytes of the
 * same size each writing one; the quota root files of a user's folders
 * (configdirectory/quota/H/ROOT) stored with the user's run, a change of
 * one naming its user; a message stored with its mtime in seconds, without
 * a pax header, a meta file with its nanoseconds; the files opened ahead
 * closed when a message fails its user. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "archive/archive.h"
#include "config.h"
#include "cyrus-fixture.h"
#include "cyrus/backup.h"
#include "cyrus/metadelta.h"
#include "journal.h"
#include "source.h"
#include "unit-tmp.h"

#define EVENT_MAX 2048

static const char *mA = "From: a\r\n\r\nA\r\n";
static const char *mB = "From: b\r\n\r\nB\r\n";
static const char *mC = "From: c\r\n\r\nC\r\n";
static const char *mD = "From: d\r\n\r\nD\r\n";

struct fx {
	char base[4096];            /* journal, archives */
	char top[4200];             /* the Cyrus tree: imapd.conf, conf/, spool/, sieve/ */
	char inbox[4096], sent[4096], bobdir[4096];
	struct config cfg;
	struct journal *j;
	struct source *src;
	struct cyrus_backup *b;
	char events[64][EVENT_MAX];       /* what the backup told, one line each */
	size_t nevents;
};

static void
on_event(void *ctx, const struct cyrus_backup_event *ev)
{
	struct fx *f = ctx;
	char *line = f->events[f->nevents++];

	assert_true(f->nevents <= 64);
	switch (ev->kind) {
	case CYRUS_BACKUP_BEGUN:
		snprintf(line, EVENT_MAX, "begun %zu", ev->users);
		break;
	case CYRUS_BACKUP_TAIL_CUT:
		snprintf(line, EVENT_MAX, "cut %s %lld", strrchr(ev->path, '/') + 1, (long long)ev->bytes_cut);
		break;
	case CYRUS_BACKUP_USER_DONE:
		snprintf(line, EVENT_MAX, "done %s %d", ev->user, ev->wrote_run);
		break;
	case CYRUS_BACKUP_USER_FAILED:
		snprintf(line, EVENT_MAX, "failed %s: %s", ev->user, ev->error->msg);
		break;
	}
}

/* The source's notes, told as events. */
static void
on_note(void *ctx, const char *line)
{
	struct fx *f = ctx;

	assert_true(f->nevents < 64);
	snprintf(f->events[f->nevents++], EVENT_MAX, "note %s", line);
}

static int
setup(void **state)
{
	static const struct fx_msg inbox[] = { { 1, NULL, 0 }, { 2, NULL, 0 } };
	struct fx_msg in[2], sent[1] = { { 1, NULL, 0 } }, bob[1] = { { 1, NULL, 0 } };
	struct source_local_opts lo;
	struct cyrus_backup_opts o;
	struct chj_error e;
	struct fx *f = calloc(1, sizeof *f);
	char p[8400], *conf;

	assert_non_null(f);
	assert_non_null(unit_tmpdir(f->base, sizeof f->base, "backup"));
	snprintf(f->top, sizeof f->top, "%s/cyrus", f->base);
	fx_spool(f->top);
	memcpy(in, inbox, sizeof in);
	in[0].text = mA;
	in[1].text = mB;
	sent[0].text = mA;          /* a copy: stored once */
	bob[0].text = mC;
	fx_mailbox(f->top, "user.alice", "a1inbox", in, 2, f->inbox);
	fx_mailbox(f->top, "user.alice.Sent", "a2sent", sent, 1, f->sent);
	fx_mailbox(f->top, "user.bob", "b1inbox", bob, 1, f->bobdir);
	snprintf(p, sizeof p, "%s/conf/user/uuid/a/1/a1inbox/seen.db", f->top);
	fx_write(p, "seen", 4);
	snprintf(p, sizeof p, "%s/conf/mailboxes.db", f->top);
	fx_write(p, "db", 2);
	assert_true(asprintf(&conf, "journal = %s/j.db\nroot = %s\n", f->base, f->top) > 0);
	assert_int_equal(config_parse(&f->cfg, "test.conf", conf), 0);
	free(conf);
	f->j = journal_new();
	snprintf(p, sizeof p, "%s/j.db", f->base);
	assert_int_equal(journal_open(f->j, p, JOURNAL_CREATE), 0);
	memset(&o, 0, sizeof o);
	memset(&lo, 0, sizeof lo);
	snprintf(p, sizeof p, "%s/imapd.conf", f->top);
	{
		char to[4200], tools[4200];

		snprintf(to, sizeof to, "%s/archives", f->base);
		snprintf(tools, sizeof tools, "%s/no-cyrus-tools", f->base);
		lo.cfg = &f->cfg;
		lo.journal = f->j;
		lo.imapd_conf = p;
		lo.toolsdir = tools;
		lo.lock_timeout_ms = 2000;
		assert_int_equal(source_local_open(&f->src, &lo, &e), 0);
		f->src->note = on_note;
		f->src->note_ctx = f;
		o.source = f->src;
		o.to = to;
		o.cb = on_event;
		o.ctx = f;
		assert_int_equal(cyrus_backup_open(&f->b, &o, &e), 0);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	cyrus_backup_free(f->b);
	source_free(f->src);
	journal_free(f->j);
	config_free(&f->cfg);
	unit_rmtree(f->base);
	free(f);
	return 0;
}

/* Journals rows (path relative to the Cyrus tree, flags) as one batch. */
static int64_t
rows(struct fx *f, const char *const *paths, const unsigned *flags, size_t n)
{
	char p[8400];
	int64_t seq;
	size_t i;

	assert_int_equal(journal_batch_begin(f->j, 0), 0);
	for (i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%s/%s", f->top, paths[i]);
		assert_int_equal(journal_batch_change(f->j, p, flags[i], 1700000000), 0);
	}
	assert_int_equal(journal_batch_commit(f->j), 0);
	assert_int_equal(journal_last_seq(f->j, &seq), 0);
	return seq;
}

/* The users changed in the window after after_seq, space-separated. */
static void
window_users(struct fx *f, int64_t after_seq, char *out, size_t len)
{
	struct strvec u = { 0 };
	size_t i, o = 0;

	assert_int_equal(source_local_users(f->src, 0, after_seq, &u), 0);
	strvec_sort_unique(&u);
	out[0] = '\0';
	for (i = 0; i < u.n; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? " " : "", u.v[i]);
	strvec_free(&u);
}

static void
test_changed_users(void **state)
{
	static const char *const w1[] = {
		"spool/uuid/a/2/a2sent/cyrus.index",    /* alice's Sent */
		"conf/mailboxes.db",                    /* the server's */
		"spool/uuid/z/z/zzgone/cyrus.index",    /* a mailbox gone since */
		"spool/uuid/q/q/qqbad/cyrus.index",     /* its header unreadable */
	};
	static const unsigned f1[] = { JF_MODIFIED, JF_MODIFIED, JF_DELETED, JF_CREATED };
	static const char *const w2[] = {
		"spool/uuid/b/1/b1inbox/1.",            /* bob's message */
		"conf/user/uuid/a/1/a1inbox/seen.db",   /* alice's seen, deleted */
	};
	static const unsigned f2[] = { JF_MODIFIED, JF_DELETED };
	struct fx *f = *state;
	char got[256], p[8400];
	int64_t seq1;

	snprintf(p, sizeof p, "%s/spool/uuid/q/q/qqbad/cyrus.header/x", f->top);
	fx_write(p, "", 0);         /* cyrus.header is a directory */
	snprintf(p, sizeof p, "%s/spool/uuid/q/q/qqbad/cyrus.index", f->top);
	fx_write(p, "", 0);
	seq1 = rows(f, w1, f1, 4);
	window_users(f, 0, got, sizeof got);
	assert_string_equal(got, "alice");
	assert_int_equal(f->nevents, 1);
	assert_non_null(strstr(f->events[0], "note '"));
	assert_non_null(strstr(f->events[0], "(the path is not archived)"));
	assert_non_null(strstr(f->events[0], "qqbad/cyrus.index': cannot read '"));
	assert_non_null(strstr(f->events[0], "qqbad/cyrus.header'"));
	snprintf(p, sizeof p, "%s/conf/user/uuid/a/1/a1inbox/seen.db", f->top);
	assert_int_equal(unlink(p), 0);
	rows(f, w2, f2, 2);
	window_users(f, seq1, got, sizeof got);
	assert_string_equal(got, "alice bob");
	/* a full run: every user owning a mailbox (the bad one out of the way) */
	snprintf(p, sizeof p, "%s/spool/uuid/q", f->top);
	unit_rmtree(p);
	{
		struct strvec u = { 0 };

		assert_int_equal(source_local_users(f->src, 1, 0, &u), 0);
		assert_int_equal(u.n, 2);
		assert_string_equal(u.v[0], "alice");
		assert_string_equal(u.v[1], "bob");
		strvec_free(&u);
	}
}

/* Gives path an mtime a second later than it has. */
static void
touch_later(const char *path)
{
	struct stat sb;
	struct timespec ts[2];

	assert_int_equal(stat(path, &sb), 0);
	ts[0] = sb.st_atim;
	ts[1] = sb.st_mtim;
	ts[1].tv_sec += 1;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Backs up users (space-separated); returns how many failed. */
static int
backup(struct fx *f, const char *names)
{
	struct strvec u = { 0 };
	char *copy = strdup(names), *s, *save = NULL;
	int failed;

	for (s = strtok_r(copy, " ", &save); s != NULL; s = strtok_r(NULL, " ", &save))
		assert_int_equal(strvec_add(&u, s), 0);
	free(copy);
	f->nevents = 0;
	failed = cyrus_backup_users(f->b, &u, 42);
	strvec_free(&u);
	return failed;
}

/* The run holding the newest copy of name in user's archive (0: none), and
 * its symlink target into target when not NULL. For a folder's index, its
 * state: a whole copy or a delta (metadelta.h). */
static int64_t
newest(struct fx *f, const char *user, const char *name, char *target)
{
	struct chj_error err;
	char p[8400];
	struct arch *a;
	struct arch_entry e;
	int64_t run = 0;
	int delta;

	snprintf(p, sizeof p, "%s/archives/%s.tar.gz", f->base, user);
	assert_int_equal(arch_open(&a, p, ARCH_READ, &err), 0);
	if (cyrus_meta_latest(a, name, 0, &e, &delta) == 1) {
		run = e.run;
		if (target != NULL)
			snprintf(target, 256, "%s", e.target ? e.target : "");
		arch_entry_free(&e);
	}
	arch_close(a);
	return run;
}

static void
test_folders(void **state)
{
	static const struct fx_msg one[] = { { 1, NULL, 0 }, { 2, NULL, 0 } };
	struct fx *f = *state;
	const struct cyrus_backup_stats *st = cyrus_backup_stats(f->b);
	struct fx_msg sent[2];
	char target[256], p[8400];

	/* the first run: every folder, each message once */
	assert_int_equal(backup(f, "alice bob"), 0);
	assert_int_equal(f->nevents, 2);
	assert_string_equal(f->events[0], "done alice 1");
	assert_string_equal(f->events[1], "done bob 1");
	assert_int_equal(st->users, 2);
	assert_int_equal(st->runs, 2);
	assert_int_equal(st->folders_changed, 3);
	assert_int_equal(st->messages, 3);
	assert_int_equal(newest(f, "alice", "user/conf/user/uuid/a/1/a1inbox/seen.db", NULL), 1);
	assert_int_equal(newest(f, "alice", "imap/user.alice.Sent", target), 1);
	assert_string_equal(target, "../folders/a2sent");
	/* nothing changed: no run */
	assert_int_equal(backup(f, "alice bob"), 0);
	assert_string_equal(f->events[0], "done alice 0");
	assert_string_equal(f->events[1], "done bob 0");
	assert_int_equal(st->runs, 2);
	assert_int_equal(st->folders_changed, 3);
	/* a message into Sent: only Sent's meta files and the new message */
	memcpy(sent, one, sizeof sent);
	sent[0].text = mA;
	sent[1].text = mD;
	fx_mailbox(f->top, "user.alice.Sent", "a2sent", sent, 2, NULL);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	assert_int_equal(st->folders_changed, 4);
	assert_int_equal(st->messages, 4);
	assert_int_equal(newest(f, "alice", "folders/a2sent/cyrus.index", NULL), 2);
	assert_int_equal(newest(f, "alice", "folders/a1inbox/cyrus.index", NULL), 1);
	/* Sent deleted: its link is emptied, nothing else is stored */
	unit_rmtree(f->sent);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	assert_int_equal(st->folders_changed, 4);
	assert_int_equal(newest(f, "alice", "imap/user.alice.Sent", target), 3);
	assert_string_equal(target, "");
	assert_int_equal(newest(f, "alice", "imap/user.alice", target), 1);
	/* a torn tail: cut, told, and the run appended after it */
	snprintf(p, sizeof p, "%s/archives/alice.tar.gz", f->base);
	{
		FILE *fp = fopen(p, "ab");

		assert_non_null(fp);
		fputs("torn torn torn", fp);
		fclose(fp);
	}
	snprintf(p, sizeof p, "%s/1.", f->inbox);
	fx_write(p, mA, (size_t)-1);        /* same bytes, new mtime: no meta change */
	sent[0].text = mB;
	fx_mailbox(f->top, "user.alice.Drafts", "a3drafts", sent, 1, NULL);
	assert_int_equal(backup(f, "alice"), 0);
	assert_int_equal(f->nevents, 2);
	assert_string_equal(f->events[0], "cut alice.tar.gz 14");
	assert_string_equal(f->events[1], "done alice 1");
	assert_int_equal(newest(f, "alice", "folders/a3drafts/cyrus.index", NULL), 4);
}

/* Rewrites the cyrus.index in dir: the 4 bytes at off of the header (or of
 * record rec, 1-based, when rec > 0) xor'ed with x, the CRC resealed, the
 * mtime a new one. */
static void
poke_index(const char *dir, int rec, size_t off, uint32_t x)
{
	char p[4200];
	unsigned char *b, *at;
	size_t len, size = rec > 0 ? 112 : 160;
	uint32_t crc;

	snprintf(p, sizeof p, "%s/cyrus.index", dir);
	b = (unsigned char *)fx_read(p, &len);
	assert_non_null(b);
	at = rec > 0 ? b + 160 + (size_t)(rec - 1) * 112 : b;
	assert_true(at + size <= b + len);
	at[off] ^= (unsigned char)(x >> 24);
	at[off + 1] ^= (unsigned char)(x >> 16);
	at[off + 2] ^= (unsigned char)(x >> 8);
	at[off + 3] ^= (unsigned char)x;
	crc = (uint32_t)crc32(0L, at, (uInt)(size - 4));
	at[size - 4] = (unsigned char)(crc >> 24);
	at[size - 3] = (unsigned char)(crc >> 16);
	at[size - 2] = (unsigned char)(crc >> 8);
	at[size - 1] = (unsigned char)crc;
	fx_write(p, b, len);
	free(b);
	touch_later(p);
}

/* What a read-only session does to the disk: no run; a real change, a run. */
static void
test_readonly(void **state)
{
	struct fx *f = *state;
	const struct cyrus_backup_stats *st = cyrus_backup_stats(f->b);
	char p[8400];

	assert_int_equal(backup(f, "alice bob"), 0);
	assert_int_equal(st->runs, 2);
	assert_int_equal(st->folders_changed, 3);
	/* a SELECT: recentuid and recenttime (and the header CRC) rewritten */
	poke_index(f->inbox, 0, 104, 2);
	poke_index(f->inbox, 0, 108, 0x6b1613a9);
	poke_index(f->bobdir, 0, 104, 1);
	assert_int_equal(backup(f, "alice bob"), 0);
	assert_string_equal(f->events[0], "done alice 0");
	assert_string_equal(f->events[1], "done bob 0");
	assert_int_equal(st->runs, 2);
	assert_int_equal(st->folders_changed, 3);
	assert_int_equal(st->folders_same, 2);
	/* files only touched: a meta file, a per-user file */
	snprintf(p, sizeof p, "%s/cyrus.header", f->sent);
	touch_later(p);
	snprintf(p, sizeof p, "%s/conf/user/uuid/a/1/a1inbox/seen.db", f->top);
	touch_later(p);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 0");
	assert_int_equal(st->runs, 2);
	assert_int_equal(st->folders_same, 4);     /* INBOX still not as archived by time */
	/* a per-user file of the same size but other bytes: a run */
	fx_write(p, "SEEN", 4);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	assert_int_equal(newest(f, "alice", "user/conf/user/uuid/a/1/a1inbox/seen.db", NULL), 2);
	assert_int_equal(newest(f, "alice", "folders/a1inbox/cyrus.index", NULL), 1);
	/* a header field no read-only session writes (pop3_last_login): a run */
	poke_index(f->inbox, 0, 40, 1);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	assert_int_equal(newest(f, "alice", "folders/a1inbox/cyrus.index", NULL), 3);
	/* \Seen on a message: a run */
	poke_index(f->inbox, 2, 32, 0x10);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	assert_int_equal(newest(f, "alice", "folders/a1inbox/cyrus.index", NULL), 4);
	/* and recent fields beside a flag in the same rewrite: a run */
	poke_index(f->bobdir, 0, 108, 7);
	poke_index(f->bobdir, 1, 32, 0x2);
	assert_int_equal(backup(f, "bob"), 0);
	assert_string_equal(f->events[0], "done bob 1");
	assert_int_equal(newest(f, "bob", "folders/b1inbox/cyrus.index", NULL), 2);
	assert_int_equal(st->users_failed, 0);
}

static void
test_failure(void **state)
{
	static const struct fx_msg two[] = { { 1, NULL, 0 }, { 2, NULL, 0 } };
	struct fx *f = *state;
	struct fx_msg bob[2];
	char p[8400], want[4300];

	assert_int_equal(backup(f, "alice bob"), 0);
	/* bob gets a message whose file is not what the index says */
	memcpy(bob, two, sizeof bob);
	bob[0].text = mC;
	bob[1].text = mD;
	fx_mailbox(f->top, "user.bob", "b1inbox", bob, 2, NULL);
	snprintf(p, sizeof p, "%s/2.", f->bobdir);
	fx_write(p, "From: d\r\n\r\nnot D\r\n", (size_t)-1);
	/* and alice a change, to show she goes on */
	snprintf(p, sizeof p, "%s/conf/user/uuid/a/1/a1inbox/seen.db", f->top);
	fx_write(p, "seen, more", (size_t)-1);
	assert_int_equal(backup(f, "alice bob"), 1);
	assert_int_equal(f->nevents, 2);
	assert_string_equal(f->events[0], "done alice 1");
	snprintf(want, sizeof want, "failed bob: mailbox 'user.bob': message '%s/2.': SHA1 ", f->bobdir);
	assert_memory_equal(f->events[1], want, strlen(want));
	assert_non_null(strstr(f->events[1], "does not match the GUID"));
	assert_int_equal(cyrus_backup_stats(f->b)->users_failed, 1);
	/* bob's archive keeps its last complete run */
	assert_int_equal(newest(f, "bob", "folders/b1inbox/cyrus.index", NULL), 1);
}

static void
test_open_refuses(void **state)
{
	struct fx *f = *state;
	struct source_local_opts o;
	struct source *s;
	struct chj_error e;
	struct config cfg;
	char p[8400], conf[8400], want[12800];

	/* a journal whose roots do not hold the spool */
	snprintf(conf, sizeof conf, "journal = %s/j2.db\nroot = %s/conf\n", f->base, f->top);
	assert_int_equal(config_parse(&cfg, "narrow.conf", conf), 0);
	memset(&o, 0, sizeof o);
	snprintf(p, sizeof p, "%s/imapd.conf", f->top);
	o.imapd_conf = p;
	o.cfg = &cfg;
	assert_int_equal(source_local_open(&s, &o, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_REFUSED);
	snprintf(want, sizeof want, "partition 'default' ('%s/spool') of %s is not under a root of "
	    "narrow.conf: its changes cannot be known", f->top, p);
	assert_string_equal(e.msg, want);
	config_free(&cfg);
	/* no imapd.conf */
	snprintf(p, sizeof p, "%s/none.conf", f->top);
	o.cfg = &f->cfg;
	assert_int_equal(source_local_open(&s, &o, &e), -1);
	snprintf(want, sizeof want, "cannot open '%s': No such file or directory", p);
	assert_string_equal(e.msg, want);
}

/* A user's quota roots: in the window (the file's change names its owner),
 * in the run (a root of each of alice's folders that has one), stored
 * again only when its bytes change. */
static void
test_quota(void **state)
{
	static const char *const w[] = {
		"conf/quota/u/user.bob.NEW",            /* Cyrus writes ROOT.NEW, renames it */
		"conf/quota/u/user.alice.Sent",
		"conf/quota/u/nobody",                  /* not a user's root */
	};
	static const unsigned fl[] = { JF_CREATED, JF_MODIFIED, JF_MODIFIED };
	struct fx *f = *state;
	char got[256], p[8400];

	snprintf(p, sizeof p, "%s/conf/quota/u/user.bob.NEW", f->top);
	fx_write(p, "%(S (1 9) MODSEQ 1)\n", (size_t)-1);
	snprintf(p, sizeof p, "%s/conf/quota/u/nobody", f->top);
	fx_write(p, "%(S (1 9) MODSEQ 1)\n", (size_t)-1);
	snprintf(p, sizeof p, "%s/conf/quota/u/user.alice", f->top);
	fx_write(p, "%(S (10 5000) M (2) MODSEQ 3)\n", (size_t)-1);
	snprintf(p, sizeof p, "%s/conf/quota/u/user.alice.Sent", f->top);
	fx_write(p, "%(S (4 700) MODSEQ 4)\n", (size_t)-1);
	snprintf(p, sizeof p, "%s/conf/quota/u/user.alice.Gone", f->top);
	fx_write(p, "%(S (0 1) MODSEQ 5)\n", (size_t)-1);     /* no such folder */
	rows(f, w, fl, 3);
	window_users(f, 0, got, sizeof got);
	assert_string_equal(got, "alice bob");
	assert_int_equal(backup(f, "alice bob"), 0);
	assert_int_equal(newest(f, "alice", "user/conf/quota/u/user.alice", NULL), 1);
	assert_int_equal(newest(f, "alice", "user/conf/quota/u/user.alice.Sent", NULL), 1);
	assert_int_equal(newest(f, "alice", "user/conf/quota/u/user.alice.Gone", NULL), 0);
	/* usage and limits change; touched only: no run */
	snprintf(p, sizeof p, "%s/conf/quota/u/user.alice", f->top);
	touch_later(p);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 0");
	fx_write(p, "%(S (10 6000) M (2) MODSEQ 6)\n", (size_t)-1);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	assert_int_equal(newest(f, "alice", "user/conf/quota/u/user.alice", NULL), 2);
	assert_int_equal(newest(f, "alice", "user/conf/quota/u/user.alice.Sent", NULL), 1);
}

/* Sets path's mtime to sec.nsec. */
static void
set_mtime(const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* The typeflag of the tar header before the one of entry name in user's
 * archive (its first member): 'x' when name has a pax header, '-' when it
 * is the first; 0 when name is not there. */
static int
flag_before(struct fx *f, const char *user, const char *name)
{
	char p[8400];
	unsigned char h[512];
	gzFile gz;
	int prev = '-', found = 0;

	snprintf(p, sizeof p, "%s/archives/%s.tar.gz", f->base, user);
	assert_non_null(gz = gzopen(p, "rb"));
	while (!found && gzread(gz, h, sizeof h) == (int)sizeof h && h[0] != '\0') {
		char sz[13];
		unsigned long long size;

		memcpy(sz, h + 124, 12);
		sz[12] = '\0';
		size = strtoull(sz, NULL, 8);
		if (strncmp((const char *)h, name, 100) == 0)
			found = 1;
		else
			prev = h[156];
		assert_int_equal(gzseek(gz, (z_off_t)((size + 511) / 512 * 512), SEEK_CUR) >= 0, 1);
	}
	gzclose(gz);
	return found ? prev : 0;
}

/* A message is stored with its mtime in whole seconds, as a plain ustar
 * entry (no pax header: nobody restores a message's mtime); a meta file
 * keeps its nanoseconds (pass one compares them). */
static void
test_message_mtime(void **state)
{
	struct fx *f = *state;
	char p[8400], hex[41], name[64];
	struct chj_error err;
	struct arch_entry e;
	struct arch *a;

	snprintf(p, sizeof p, "%s/1.", f->inbox);
	set_mtime(p, 1700000000, 123456789);
	snprintf(p, sizeof p, "%s/cyrus.index", f->inbox);
	set_mtime(p, 1700000001, 987654321);
	assert_int_equal(backup(f, "alice"), 0);
	assert_string_equal(f->events[0], "done alice 1");
	fx_sha1_hex(mA, hex);
	snprintf(name, sizeof name, "files/%s", hex);
	snprintf(p, sizeof p, "%s/archives/alice.tar.gz", f->base);
	assert_int_equal(arch_open(&a, p, ARCH_READ, &err), 0);
	assert_int_equal(arch_latest(a, name, 0, &e), 1);
	assert_int_equal(e.mtime_ns, 1700000000000000000LL);
	arch_entry_free(&e);
	assert_int_equal(arch_latest(a, "folders/a1inbox/cyrus.index", 0, &e), 1);
	assert_int_equal(e.mtime_ns, 1700000001987654321LL);
	arch_entry_free(&e);
	arch_close(a);
	assert_int_equal(flag_before(f, "alice", "folders/a1inbox/cyrus.index"), 'x');
	assert_int_not_equal(flag_before(f, "alice", name), 0);
	assert_int_not_equal(flag_before(f, "alice", name), 'x');
}

/* The descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* A message failing its user when the messages after it were opened ahead
 * (the source's readahead): those are closed unread, the user fails alone
 * and the next run stores what it could not. */
static void
test_fetch_stops(void **state)
{
	static const struct fx_msg three[] = { { 1, NULL, 0 }, { 2, NULL, 0 }, { 3, NULL, 0 } };
	struct fx *f = *state;
	struct fx_msg bob[3];
	char p[8400];
	int fds;

	memcpy(bob, three, sizeof bob);
	bob[0].text = mB;
	bob[1].text = mC;
	bob[2].text = mD;
	fx_mailbox(f->top, "user.bob", "b1inbox", bob, 3, NULL);
	snprintf(p, sizeof p, "%s/1.", f->bobdir);
	fx_write(p, "From: b\r\n\r\nnot B\r\n", (size_t)-1);
	fds = open_fds();
	assert_int_equal(backup(f, "bob"), 1);
	assert_non_null(strstr(f->events[0], "does not match the GUID"));
	assert_int_equal(open_fds(), fds);
	{
		char a[8400];

		/* a first run that fails leaves no archive */
		snprintf(a, sizeof a, "%s/archives/bob.tar.gz", f->base);
		assert_int_equal(access(a, F_OK), -1);
	}
	fx_write(p, mB, (size_t)-1);
	assert_int_equal(backup(f, "bob"), 0);
	assert_string_equal(f->events[0], "done bob 1");
	assert_int_equal(cyrus_backup_stats(f->b)->messages, 3);
	assert_int_equal(open_fds(), fds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_changed_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_mtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_stops, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
