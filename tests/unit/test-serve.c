/* test-serve.c: the serve protocol end to end without ssh or a running Cyrus:
 * serve (common/serve.c) answers in a child process on one end of a socket
 * pair, on a local source over a small spool built here (cyrus-fixture.h);
 * a remote source (common/remote.c) on the other end feeds the Cyrus backup.
 * The pulled archives hold what a local backup stores; a message whose file
 * does not match its GUID fails its user alone, checked on arrival; a path
 * outside the Cyrus directories and a mailbox serve did not list are refused
 * without ending the connection; a serve that dies breaks the source; the
 * HELLO is not waited for; and the connection cut at any byte of serve's
 * answers leaves every archive valid, the next pull completing it. Folder
 * annotations (annotations.db, written here as Cyrus lays it out) come
 * through serve as the local source reads them; the capabilities are
 * negotiated with an older serve (a fake one, as it answered) and an older
 * client (raw frames, as it asked); a malformed answer breaks the source. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "archive/archive.h"
#include "config.h"
#include "cyrus-fixture.h"
#include "cyrus/backup.h"
#include "cyrus/verify.h"
#include "proto.h"
#include "source.h"
#include "unit-tmp.h"

static const char *mA = "From: a\r\n\r\nA\r\n";
static const char *mB = "From: b\r\n\r\nB\r\n";
static const char *mC = "From: c\r\n\r\nC\r\n";

struct fx {
	char base[4096];
	char top[4200];
	char inbox[4096], bobdir[4096];
	struct config cfg;
	struct source *local;
	struct source *remote;
	pid_t pid2;                 /* the cutting proxy, or 0 */
	pid_t pid;                  /* serve */
	int fd;                     /* our end */
};

static int
setup(void **state)
{
	static const struct fx_msg inbox[] = { { 1, NULL, 0 }, { 2, NULL, 0 } };
	struct fx_msg in[2], sent[1] = { { 1, NULL, 0 } }, bob[1] = { { 1, NULL, 0 } };
	struct source_local_opts lo;
	struct chj_error e;
	struct fx *f = calloc(1, sizeof *f);
	char p[8400], tools[8400], *conf;

	assert_non_null(f);
	assert_non_null(unit_tmpdir(f->base, sizeof f->base, "serve"));
	snprintf(f->top, sizeof f->top, "%s/cyrus", f->base);
	fx_spool(f->top);
	memcpy(in, inbox, sizeof in);
	in[0].text = mA;
	in[1].text = mB;
	sent[0].text = mA;
	bob[0].text = mC;
	fx_mailbox(f->top, "user.alice", "a1inbox", in, 2, f->inbox);
	fx_mailbox(f->top, "user.alice.Sent", "a2sent", sent, 1, NULL);
	fx_mailbox(f->top, "user.bob", "b1inbox", bob, 1, f->bobdir);
	snprintf(p, sizeof p, "%s/conf/user/uuid/a/1/a1inbox/seen.db", f->top);
	fx_write(p, "seen", 4);
	assert_true(asprintf(&conf, "journal = %s/j.db\nroot = %s\n", f->base, f->top) > 0);
	assert_int_equal(config_parse(&f->cfg, "test.conf", conf), 0);
	free(conf);
	memset(&lo, 0, sizeof lo);
	snprintf(p, sizeof p, "%s/imapd.conf", f->top);
	snprintf(tools, sizeof tools, "%s/no-cyrus-tools", f->base);
	lo.cfg = &f->cfg;
	lo.imapd_conf = p;
	lo.toolsdir = tools;
	lo.lock_timeout_ms = 2000;
	assert_int_equal(source_local_open(&f->local, &lo, &e), 0);
	*state = f;
	return 0;
}

/* Forks serve answering on fd, after closing the caller's other ends
 * close_fds[0..n) in the child. Returns its pid. */
static pid_t
fork_serve(struct fx *f, int fd, const int *close_fds, size_t n)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct serve_opts so;
		struct chj_error e;
		struct wire w;
		size_t i;

		for (i = 0; i < n; i++)
			close(close_fds[i]);
		memset(&so, 0, sizeof so);
		so.local = f->local;
		so.consumer = "cyrus-archive";
		so.host = "fixture";
		wire_init(&w, fd, fd);
		_exit(serve_run(&w, &so, &e) == 0 ? 0 : 1);
	}
	return pid;
}

/* Starts serve on one end of a socket pair, the remote source on the other. */
static void
start_serve(struct fx *f)
{
	struct chj_error e;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->pid = fork_serve(f, sv[1], &sv[0], 1);
	close(sv[1]);
	f->fd = sv[0];
	assert_int_equal(source_remote_open(&f->remote, f->fd, f->fd, "fixture", 0, &e), 0);
}

/* The proxy of start_serve_cut: forwards both ways between the client
 * (cfd) and serve (sfd), serve's side only its first cut bytes, then ends
 * both connections as a dropped line does. Never returns. */
static void
cutting_proxy(int cfd, int sfd, long cut)
{
	char buf[4096];
	long sent = 0;

	for (;;) {
		struct pollfd p[2] = { { cfd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		ssize_t k;

		if (poll(p, 2, -1) < 0)
			_exit(1);
		if (p[0].revents) {
			if ((k = read(cfd, buf, sizeof buf)) <= 0 || write(sfd, buf, (size_t)k) != k)
				_exit(0);
		}
		if (p[1].revents) {
			if ((k = read(sfd, buf, sizeof buf)) <= 0)
				_exit(0);
			if (sent + k > cut)
				k = cut - sent;
			if (k > 0 && write(cfd, buf, (size_t)k) != k)
				_exit(0);
			sent += k;
			if (sent >= cut)
				_exit(0);         /* the line drops: both ends see EOF */
		}
	}
}

/* start_serve with the answers cut after cut bytes: serve in one child, a
 * proxy in another (f->pid2). */
static void
start_serve_cut(struct fx *f, long cut)
{
	struct chj_error e;
	int to_serve[2], to_client[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to_serve), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to_client), 0);
	{
		const int others[] = { to_serve[0], to_client[0], to_client[1] };

		f->pid = fork_serve(f, to_serve[1], others, 3);
	}
	close(to_serve[1]);
	f->pid2 = fork();
	assert_true(f->pid2 >= 0);
	if (f->pid2 == 0) {
		close(to_client[0]);
		cutting_proxy(to_client[1], to_serve[0], cut);
	}
	close(to_serve[0]);
	close(to_client[1]);
	f->fd = to_client[0];
	assert_int_equal(source_remote_open(&f->remote, f->fd, f->fd, "fixture", 10000, &e), 0);
}

/* Ends the connection; serve's exit status. */
static int
stop_serve(struct fx *f)
{
	int status;

	source_free(f->remote);
	f->remote = NULL;
	close(f->fd);
	if (f->pid2 > 0) {
		assert_int_equal(waitpid(f->pid2, &status, 0), f->pid2);
		f->pid2 = 0;
	}
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->remote != NULL)
		stop_serve(f);
	source_free(f->local);
	config_free(&f->cfg);
	unit_rmtree(f->base);
	free(f);
	return 0;
}

/* Backs up alice and bob from src into DIR base/to: users failed, or -1. */
static int
backup(struct fx *f, struct source *src, const char *to, struct cyrus_backup_stats *st)
{
	struct cyrus_backup_opts o;
	struct cyrus_backup *b;
	struct strvec users = { 0 };
	struct chj_error e;
	char dir[4200];
	int failed;

	snprintf(dir, sizeof dir, "%s/%s", f->base, to);
	memset(&o, 0, sizeof o);
	o.source = src;
	o.to = dir;
	o.host = src == f->remote ? "fixture" : NULL;
	assert_int_equal(cyrus_backup_open(&b, &o, &e), 0);
	assert_int_equal(strvec_add(&users, "alice"), 0);
	assert_int_equal(strvec_add(&users, "bob"), 0);
	failed = cyrus_backup_users(b, &users, 0);
	*st = *cyrus_backup_stats(b);
	cyrus_backup_free(b);
	strvec_free(&users);
	return failed;
}

static void
test_pull_as_local(void **state)
{
	struct fx *f = *state;
	struct cyrus_backup_stats local, pulled;
	char a[8400], b[8400];
	size_t la, lb;
	char *da, *db;

	assert_int_equal(backup(f, f->local, "local", &local), 0);
	start_serve(f);
	assert_int_equal(backup(f, f->remote, "pulled", &pulled), 0);
	assert_int_equal(pulled.runs, 2);
	assert_int_equal(pulled.messages, local.messages);
	assert_int_equal(pulled.messages, 3);      /* alice's A (twice) and B, bob's C */
	assert_true(pulled.bytes == local.bytes);
	assert_int_equal(pulled.folders_changed, local.folders_changed);
	/* nothing new: no run */
	assert_int_equal(backup(f, f->remote, "pulled", &pulled), 0);
	assert_int_equal(pulled.runs, 0);
	assert_int_equal(stop_serve(f), 0);
	/* the archives exist; their sizes differ only by the manifests' times
	 * and host, so the messages' share is compared through the stats */
	snprintf(a, sizeof a, "%s/local/alice.tar.gz", f->base);
	snprintf(b, sizeof b, "%s/pulled/alice.tar.gz", f->base);
	da = fx_read(a, &la);
	db = fx_read(b, &lb);
	assert_non_null(da);
	assert_non_null(db);
	free(da);
	free(db);
}

static void
test_guid_mismatch(void **state)
{
	struct fx *f = *state;
	struct cyrus_backup_stats st;
	char p[8400];

	/* bob's message no longer matches the GUID its index names */
	snprintf(p, sizeof p, "%s/1.", f->bobdir);
	fx_write(p, "From: x\r\n\r\nX\r\n", (size_t)-1);
	start_serve(f);
	assert_int_equal(backup(f, f->remote, "pulled", &st), 1);
	assert_int_equal(st.users_failed, 1);
	assert_int_equal(st.runs, 1);               /* alice's */
	assert_false(f->remote->broken);
	assert_int_equal(stop_serve(f), 0);
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	struct cyrus_mboxlist ml;
	struct cyrus_mailbox fake;
	struct source_meta meta;
	struct source_run run;
	const char *paths[1];
	char p[8400];

	start_serve(f);
	paths[0] = "/etc/passwd";
	assert_int_equal(source_fetch(f->remote, paths, 1, NULL, NULL), -1);
	assert_int_equal(f->remote->err.code, CHJ_ERR_REFUSED);
	assert_non_null(strstr(f->remote->err.msg, "path '/etc/passwd' refused"));
	assert_false(f->remote->broken);
	snprintf(p, sizeof p, "%s/../../../../../../etc/passwd", f->inbox);
	paths[0] = p;
	assert_int_equal(source_fetch(f->remote, paths, 1, NULL, NULL), -1);
	assert_int_equal(f->remote->err.code, CHJ_ERR_REFUSED);
	snprintf(p, sizeof p, "%s/conf/mailboxes.db", f->top);
	fx_write(p, "db", 2);
	assert_int_equal(source_fetch(f->remote, paths, 1, NULL, NULL), -1);
	assert_int_equal(f->remote->err.code, CHJ_ERR_REFUSED);
	/* a mailbox serve never listed */
	memset(&fake, 0, sizeof fake);
	fake.name = (char *)"user.mallory";
	fake.path = (char *)"/etc";
	assert_int_equal(source_meta_read(f->remote, &fake, &meta), -1);
	assert_non_null(strstr(f->remote->err.msg, "not one this serve listed"));
	/* another consumer */
	assert_int_equal(source_begin(f->remote, "other", 0, &run), -1);
	assert_non_null(strstr(f->remote->err.msg, "consumer 'other' refused"));
	source_run_free(&run);
	/* the connection still answers */
	assert_int_equal(source_mailboxes(f->remote, "alice", &ml), 0);
	assert_int_equal(ml.n, 2);
	assert_int_equal(source_meta_read(f->remote, &ml.v[0], &meta), 0);
	assert_non_null(meta.buf[CYRUS_META_INDEX]);
	source_meta_free(&meta);
	cyrus_mboxlist_free(&ml);
	assert_int_equal(stop_serve(f), 0);
}

static void
test_serve_dies(void **state)
{
	struct fx *f = *state;
	struct cyrus_mboxlist ml;

	start_serve(f);
	kill(f->pid, SIGKILL);
	assert_int_equal(source_mailboxes(f->remote, "alice", &ml), -1);
	cyrus_mboxlist_free(&ml);
	assert_true(f->remote->broken);
	assert_int_equal(f->remote->err.code, CHJ_ERR_PEER);
	/* and at once from then on */
	assert_int_equal(source_mailboxes(f->remote, "bob", &ml), -1);
	cyrus_mboxlist_free(&ml);
	assert_int_equal(stop_serve(f), 128 + SIGKILL);
}

/* The HELLO's answer is not waited for: opening sends it and returns (an
 * idle pull is one round trip, HELLO and BEGIN in one flight); the answer
 * is checked before the first request's, so garbage at the other end (a
 * shell's banner) fails that request in one line. */
static void
test_hello_pipelined(void **state)
{
	struct timeval tv = { 2, 0 };
	struct source *src = NULL;
	struct source_run run;
	struct chj_error e;
	static const char banner[] = "Welcome to imap9\n";
	char buf[256];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* nobody answers: waiting for the HELLO would fail after 2 s */
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	assert_int_equal(source_remote_open(&src, sv[0], sv[0], "imap9", 0, &e), 0);
	assert_true(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0);     /* the HELLO */
	assert_int_equal(write(sv[1], banner, sizeof banner - 1), (ssize_t)(sizeof banner - 1));
	close(sv[1]);
	memset(&run, 0, sizeof run);
	assert_int_equal(source_begin(src, "cyrus-archive", 0, &run), -1);
	assert_int_equal(src->err.code, CHJ_ERR_PEER);
	assert_non_null(strstr(src->err.msg, "connection to 'imap9': not a `chjournal serve` at the "
	    "other end"));
	assert_null(strchr(src->err.msg, '\n'));
	source_free(src);
	close(sv[0]);
}

/* Problems verify finds in every archive of base/dir (notes, such as an
 * interrupted run the next backup cuts, are not problems). */
static void
count_problem(void *ctx, int problem, const char *msg)
{
	if (problem)
		print_message("# %s\n", msg);
	*(long *)ctx += problem != 0;
}

static long
verify_dir(struct fx *f, const char *dir)
{
	static const char *users[] = { "alice", "bob" };
	struct chj_error e;
	char p[8400];
	long problems = 0;
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/%s/%s.tar.gz", f->base, dir, users[i]);
		if (access(p, F_OK) != 0)
			continue;             /* its first run never began */
		if (cyrus_verify(p, count_problem, &problems, &e) < 0) {
			print_message("# %s: %s\n", p, e.msg);
			problems++;
		}
	}
	return problems;
}

/* The connection cut at any byte of serve's answers: the pull fails (or,
 * cut after the last byte, succeeds), every archive it leaves verifies, and
 * the next pull over a whole connection backs up both users. Offsets: each
 * of the first 300 bytes (the hello, the begin, the first list), then
 * spread over the whole stream. */
static void
test_cut_anywhere(void **state)
{
	struct fx *f = *state;
	struct cyrus_backup_stats st;
	uint64_t total;
	long cut, step;
	int cases = 0;

	start_serve(f);
	assert_int_equal(backup(f, f->remote, "whole", &st), 0);
	total = f->remote->bytes_in;
	assert_int_equal(stop_serve(f), 0);
	assert_true(total > 1000);
	step = (long)(total / 150) + 1;
	for (cut = 0; cut <= (long)total; cut += cut < 300 ? 1 : step) {
		char dir[32];
		int failed;

		snprintf(dir, sizeof dir, "cut%ld", cut);
		start_serve_cut(f, cut);
		failed = backup(f, f->remote, dir, &st);
		if (failed == 0)
			assert_true(cut >= (long)total);   /* only a cut after the last byte */
		stop_serve(f);
		if (verify_dir(f, dir) != 0)
			fail_msg("cut after %ld of %llu bytes: an archive does not verify", cut,
			    (unsigned long long)total);
		/* the next pull, whole, completes it */
		start_serve(f);
		assert_int_equal(backup(f, f->remote, dir, &st), 0);
		assert_int_equal(stop_serve(f), 0);
		assert_int_equal(verify_dir(f, dir), 0);
		cases++;
	}
	assert_true(cases > 400);
}

/* ---- folder annotations ---- */

struct fx_annot {
	const char *id, *entry, *userid;
	uint64_t modseq;
	const char *value;
	size_t vlen;
};

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void
be64(unsigned char *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* One twoskip record at b+off (type, level 1, key, value, next), as
 * lib/cyrusdb_twoskip.c writes it; returns its size (b NULL: only that). */
static size_t
ts_record(unsigned char *b, size_t off, char type, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t next)
{
	size_t pad = (klen + vlen + 7) & ~(size_t)7, head = 8 + 16;

	if (b != NULL) {
		unsigned char *r = b + off;

		memset(r, 0, head + 8 + pad);
		r[0] = (unsigned char)type;
		r[1] = 1;
		r[2] = (unsigned char)(klen >> 8), r[3] = (unsigned char)klen;
		be32(r + 4, (uint32_t)vlen);
		be64(r + 8, next);
		memcpy(r + head + 8, key, klen);
		memcpy(r + head + 8 + klen, val, vlen);
		be32(r + head, (uint32_t)crc32(0L, r, (uInt)head));
		be32(r + head + 4, (uint32_t)crc32(0L, r + head + 8, (uInt)pad));
	}
	return head + 8 + pad;
}

/* The annotations.db key and value of a (imap/annotate.c make_key,
 * make_entry): "ID\0ENTRY\0USERID\0"; length, value, NUL, content type,
 * modifiedsince, modseq, flags. Allocated. */
static void
annot_kv(const struct fx_annot *a, char **key, size_t *klen, char **val, size_t *vlen)
{
	static const char ct[] = "text/plain";

	*klen = strlen(a->id) + strlen(a->entry) + strlen(a->userid) + 3;
	assert_non_null(*key = calloc(1, *klen));
	memcpy(*key, a->id, strlen(a->id));
	memcpy(*key + strlen(a->id) + 1, a->entry, strlen(a->entry));
	memcpy(*key + strlen(a->id) + strlen(a->entry) + 2, a->userid, strlen(a->userid));
	*vlen = 8 + a->vlen + 1 + sizeof ct + 8 + 8 + 1;
	assert_non_null(*val = calloc(1, *vlen));
	be32((unsigned char *)*val, (uint32_t)a->vlen);
	memcpy(*val + 8, a->value, a->vlen);
	memcpy(*val + 8 + a->vlen + 1, ct, sizeof ct);
	be64((unsigned char *)*val + 8 + a->vlen + 1 + sizeof ct + 8, a->modseq);
}

/* Writes annotations.db at path holding v[0..n). */
static void
write_annots_db(const char *path, const struct fx_annot *v, size_t n)
{
	static const char magic[20] = "\241\002\213\015twoskip file\0\0\0\0";
	size_t *off = calloc(n + 1, sizeof *off), len, i;
	unsigned char *b;

	assert_non_null(off);
	/* the offsets first: the dummy at 64, then each record */
	off[0] = 64 + ts_record(NULL, 0, '=', "", 0, "", 0, 0);
	for (i = 0; i < n; i++) {
		char *k, *val;
		size_t kl, vl;

		annot_kv(&v[i], &k, &kl, &val, &vl);
		off[i + 1] = off[i] + ts_record(NULL, 0, '+', k, kl, val, vl, 0);
		free(k);
		free(val);
	}
	len = off[n];
	assert_non_null(b = calloc(1, len));
	memcpy(b, magic, sizeof magic);
	be32(b + 20, 1);
	be64(b + 24, 1);
	be64(b + 32, n);
	be64(b + 48, len);
	be32(b + 60, (uint32_t)crc32(0L, b, 60));
	ts_record(b, 64, '=', "", 0, "", 0, n > 0 ? off[0] : 0);
	for (i = 0; i < n; i++) {
		char *k, *val;
		size_t kl, vl;

		annot_kv(&v[i], &k, &kl, &val, &vl);
		ts_record(b, off[i], '+', k, kl, val, vl, i + 1 < n ? off[i + 1] : 0);
		free(k);
		free(val);
	}
	fx_write(path, b, len);
	free(b);
	free(off);
}

/* The fixture's annotations.db: alice's inbox (shared, and the owner's
 * holding a NUL),
 * her Sent a value too long for one frame's inline field, bob's inbox, a
 * server annotation (never sent) and a folder no longer listed. */
static void
fx_annots(struct fx *f, char **longval)
{
	struct fx_annot v[6] = {
		{ "a1inbox", "/comment", "", 7, "alice's inbox", 13 },
		{ "a1inbox", "/comment", CYRUS_OWNER_TOKEN, 8, "mi\0ne\r\n", 7 },
		{ "a2sent", "/vendor/x/big", "", 9, NULL, PROTO_ANNOT_INLINE + 4000 },
		{ "b1inbox", "/comment", "", 3, "bob", 3 },
		{ "", "/motd", "", 1, "the server's", 12 },
		{ "zz9gone", "/comment", "", 2, "gone", 4 },
	};
	char p[8400];
	size_t i;

	assert_non_null(*longval = malloc(v[2].vlen));
	for (i = 0; i < v[2].vlen; i++)
		(*longval)[i] = (char)('a' + i % 26);
	v[2].value = *longval;
	snprintf(p, sizeof p, "%s/conf/annotations.db", f->top);
	write_annots_db(p, v, 6);
}

static void
assert_annots_equal(const struct cyrus_annots *a, const struct cyrus_annots *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_string_equal(a->v[i].mboxid, b->v[i].mboxid);
		assert_string_equal(a->v[i].entry, b->v[i].entry);
		assert_string_equal(a->v[i].userid, b->v[i].userid);
		assert_true(a->v[i].modseq == b->v[i].modseq);
		assert_int_equal(a->v[i].vlen, b->v[i].vlen);
		assert_memory_equal(a->v[i].value, b->v[i].value, a->v[i].vlen);
	}
}

/* The SHA1 of the newest copy of name in DIR/user.tar.gz ("" none). */
static void
member_sha1(struct fx *f, const char *dir, const char *user, const char *name, char sha1[41])
{
	struct chj_error err;
	struct arch_entry e;
	struct arch *a;
	char p[8400];

	snprintf(p, sizeof p, "%s/%s/%s.tar.gz", f->base, dir, user);
	assert_int_equal(arch_open(&a, p, ARCH_READ, &err), 0);
	sha1[0] = '\0';
	if (arch_latest(a, name, 0, &e) == 1) {
		snprintf(sha1, 41, "%s", e.sha1);
		arch_entry_free(&e);
	}
	arch_close(a);
}

/* Serve answers the folder annotations the local source reads: of every
 * folder, of some (named, or too many to name: every folder's, the others
 * dropped by the client), a value longer than a frame's inline field; the
 * pulled archives hold the folder records a local backup stores. */
static void
test_folder_annots(void **state)
{
	struct fx *f = *state;
	struct cyrus_backup_stats st;
	struct cyrus_annots loc, rem;
	struct strvec many = { 0 };
	const char *some[] = { "a2sent", "b1inbox" };
	char *longval, hl[41], hp[41], id[64];
	size_t i;

	fx_annots(f, &longval);
	start_serve(f);
	assert_true(source_has_folder_annots(f->remote));
	assert_int_equal(source_folder_annots(f->local, NULL, 0, &loc), 0);
	assert_int_equal(source_folder_annots(f->remote, NULL, 0, &rem), 0);
	assert_int_equal(loc.n, 5);                 /* not the server's */
	assert_annots_equal(&loc, &rem);
	assert_int_equal(rem.v[2].vlen, PROTO_ANNOT_INLINE + 4000);
	assert_memory_equal(rem.v[2].value, longval, rem.v[2].vlen);
	cyrus_annots_free(&loc);
	cyrus_annots_free(&rem);
	assert_int_equal(source_folder_annots(f->local, some, 2, &loc), 0);
	assert_int_equal(source_folder_annots(f->remote, some, 2, &rem), 0);
	assert_int_equal(rem.n, 2);
	assert_annots_equal(&loc, &rem);
	cyrus_annots_free(&loc);
	cyrus_annots_free(&rem);
	/* more uniqueids than one request holds */
	for (i = 0; i < 20000; i++) {
		snprintf(id, sizeof id, "0000000000-0000-0000-%08zu", i);
		assert_int_equal(strvec_add(&many, id), 0);
	}
	assert_int_equal(strvec_add(&many, "a1inbox"), 0);
	strvec_sort_unique(&many);
	assert_int_equal(source_folder_annots(f->remote, (const char *const *)many.v, many.n, &rem), 0);
	assert_int_equal(rem.n, 2);
	assert_string_equal(rem.v[0].mboxid, "a1inbox");
	assert_string_equal(rem.v[1].mboxid, "a1inbox");
	cyrus_annots_free(&rem);
	strvec_free(&many);
	/* the backups: the same folder records, local and pulled */
	assert_int_equal(backup(f, f->local, "local", &st), 0);
	assert_int_equal(backup(f, f->remote, "pulled", &st), 0);
	assert_false(f->remote->broken);
	assert_int_equal(stop_serve(f), 0);
	member_sha1(f, "local", "alice", "folders/a1inbox/mailbox", hl);
	member_sha1(f, "pulled", "alice", "folders/a1inbox/mailbox", hp);
	assert_true(hl[0] != '\0');
	assert_string_equal(hl, hp);
	member_sha1(f, "local", "alice", "folders/a2sent/mailbox", hl);
	member_sha1(f, "pulled", "alice", "folders/a2sent/mailbox", hp);
	assert_true(hl[0] != '\0');
	assert_string_equal(hl, hp);
	member_sha1(f, "pulled", "bob", "folders/b1inbox/mailbox", hp);
	assert_true(hp[0] != '\0');
	free(longval);
}

/* ---- negotiation ---- */

enum fake_mode {
	FAKE_OLD,                   /* answers as a serve before capabilities */
	FAKE_ANNOT_FIELDS,          /* an ANNOT frame of 5 fields */
	FAKE_ANNOT_NOT_ASKED,       /* an annotation of a folder not asked for */
	FAKE_ANNOT_LENGTH,          /* a value shorter than its length */
	FAKE_ANNOT_LONG_NOT_LAST,   /* a long value, another annotation after it */
	FAKE_RUN_GLOBALS,           /* RUN's fifth field not a number */
};

/* A serve made of frames: HELLO, BEGIN and FOLDER_ANNOTS answered as mode
 * says, anything else refused (as an older serve refuses a request it does
 * not know). Never returns. */
static void
fake_serve(int fd, enum fake_mode mode)
{
	struct wire w;
	struct wire_msg m;

	wire_init(&w, fd, fd);
	while (wire_recv(&w, &m) == 0) {
		uint64_t flags = 0;

		switch (m.type) {
		case PROTO_HELLO:
			wire_start(&w, PROTO_HELLO);
			wire_put_str(&w, PROTO_MAGIC);
			wire_put_str(&w, "fake");
			if (mode != FAKE_OLD)
				wire_put_str(&w, "something-else " PROTO_CAP_FOLDER_ANNOTS);
			wire_end(&w);
			break;
		case PROTO_BEGIN:
			if (wire_u64(&w, 1, "flags", &flags) < 0)
				_exit(2);
			wire_start(&w, PROTO_RUN);
			wire_put_str(&w, "r1");
			wire_put_str(&w, "");
			wire_put_u64(&w, 5);
			wire_put_u64(&w, 0);
			if (mode == FAKE_RUN_GLOBALS)
				wire_put_str(&w, "abc");
			wire_end(&w);
			wire_start(&w, PROTO_USERS);
			wire_put_str(&w, "alice");
			wire_end(&w);
			wire_start(&w, PROTO_OK);
			wire_end(&w);
			break;
		case PROTO_FOLDER_ANNOTS:
			if (mode == FAKE_OLD)
				goto refuse;
			wire_start(&w, PROTO_ANNOT);
			wire_put_str(&w, mode == FAKE_ANNOT_NOT_ASKED ? "zz" : "a1");
			wire_put_str(&w, "/comment");
			wire_put_str(&w, "");
			wire_put_u64(&w, 1);
			wire_put_u64(&w, mode == FAKE_ANNOT_LENGTH ? 10 :
			    mode == FAKE_ANNOT_LONG_NOT_LAST ? PROTO_ANNOT_INLINE + 1 : 3);
			if (mode != FAKE_ANNOT_FIELDS)
				wire_put_str(&w, mode == FAKE_ANNOT_LONG_NOT_LAST ? "" : "abc");
			if (mode == FAKE_ANNOT_LONG_NOT_LAST) {
				wire_put_str(&w, "a1");
				wire_put_str(&w, "/x");
				wire_put_str(&w, "");
				wire_put_u64(&w, 1);
				wire_put_u64(&w, 0);
				wire_put_str(&w, "");
			}
			wire_end(&w);
			wire_start(&w, PROTO_OK);
			wire_end(&w);
			break;
		default:
		refuse:
			wire_start(&w, PROTO_ERR);
			wire_put_u64(&w, CHJ_ERR_REFUSED);
			wire_put_u64(&w, 0);
			wire_put_str(&w, "request refused: serve only reads");
			wire_end(&w);
			break;
		}
		if (wire_flush(&w) < 0)
			_exit(1);
	}
	_exit(0);
}

/* A remote source on a fake serve (f->pid). */
static void
start_fake(struct fx *f, enum fake_mode mode)
{
	struct chj_error e;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		close(sv[0]);
		fake_serve(sv[1], mode);
	}
	close(sv[1]);
	f->fd = sv[0];
	assert_int_equal(source_remote_open(&f->remote, f->fd, f->fd, "oldhost", 5000, &e), 0);
}

static void
count_note(void *ctx, const char *line)
{
	print_message("# note: %s\n", line);
	if (strstr(line, "oldhost: `chjournal serve` there is too old for folder annotations") != NULL)
		(*(int *)ctx)++;
}

/* A new client, an older serve: the run as before, no folder annotations
 * (backup goes on without them), told once for the connection. */
static void
test_older_serve(void **state)
{
	struct fx *f = *state;
	struct cyrus_annots a;
	struct source_run run;
	int told = 0, i;

	start_fake(f, FAKE_OLD);
	f->remote->note = count_note;
	f->remote->note_ctx = &told;
	for (i = 0; i < 2; i++) {
		memset(&run, 0, sizeof run);
		assert_int_equal(source_begin(f->remote, "cyrus-archive", SOURCE_BEGIN_CYRUS, &run), 0);
		assert_string_equal(run.run_id, "r1");
		assert_int_equal(run.seq, 5);
		assert_int_equal(run.cyrus_annots, 0);
		assert_int_equal(run.users.n, 1);
		source_run_free(&run);
		assert_false(source_has_folder_annots(f->remote));
	}
	assert_int_equal(told, 1);
	/* never asked of it: refused here */
	assert_int_equal(source_folder_annots(f->remote, NULL, 0, &a), -1);
	assert_int_equal(f->remote->err.code, CHJ_ERR_REFUSED);
	assert_non_null(strstr(f->remote->err.msg, "Cyrus folder annotations on oldhost: not available"));
	cyrus_annots_free(&a);
	assert_false(f->remote->broken);
	assert_int_equal(stop_serve(f), 0);
}

/* Malformed answers to the new fields break the source, in one line. */
static void
test_malformed_annots(void **state)
{
	static const enum fake_mode modes[] = { FAKE_ANNOT_FIELDS, FAKE_ANNOT_NOT_ASKED,
	    FAKE_ANNOT_LENGTH, FAKE_ANNOT_LONG_NOT_LAST, FAKE_RUN_GLOBALS };
	struct fx *f = *state;
	struct cyrus_annots a;
	struct source_run run;
	const char *ids[] = { "a1" };
	size_t i;

	for (i = 0; i < sizeof modes / sizeof *modes; i++) {
		start_fake(f, modes[i]);
		if (modes[i] == FAKE_RUN_GLOBALS) {
			memset(&run, 0, sizeof run);
			assert_int_equal(source_begin(f->remote, "cyrus-archive", SOURCE_BEGIN_CYRUS, &run),
			    -1);
			source_run_free(&run);
		} else {
			assert_true(source_has_folder_annots(f->remote));
			assert_int_equal(source_folder_annots(f->remote, ids, 1, &a), -1);
			assert_int_equal(a.n, 0);
			cyrus_annots_free(&a);
		}
		print_message("# %s\n", f->remote->err.msg);
		assert_true(f->remote->broken);
		assert_int_equal(f->remote->err.code, CHJ_ERR_PEER);
		assert_null(strchr(f->remote->err.msg, '\n'));
		stop_serve(f);
	}
}

/* The journal side of a local source for test_older_client: a full run. */
static int
fake_begin(void *ctx, const char *consumer, int replace, struct consumer_state *st,
    const char **full_reason, source_note_fn note, void *note_ctx, struct chj_error *e)
{
	(void)ctx, (void)consumer, (void)replace, (void)note, (void)note_ctx, (void)e;
	memset(st, 0, sizeof *st);
	st->has_open = 1;
	snprintf(st->open_run_id, sizeof st->open_run_id, "run1");
	st->open_seq = 9;
	st->open_full = 1;
	*full_reason = "the first run";
	return 0;
}

static int
fake_end(void *ctx, const char *consumer, const char *run_id, int commit, source_note_fn note,
    void *note_ctx, struct chj_error *e)
{
	(void)ctx, (void)consumer, (void)run_id, (void)commit, (void)note, (void)note_ctx, (void)e;
	return 0;
}

/* Sends a request of type with the fields of fmt ('s' string, 'u' u64)
 * and reads the first frame of its answer into *m. */
static void
raw_request(struct wire *w, struct wire_msg *m, int type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wire_start(w, type);
	for (; *fmt; fmt++) {
		if (*fmt == 's')
			wire_put_str(w, va_arg(ap, const char *));
		else
			wire_put_u64(w, va_arg(ap, uint64_t));
	}
	va_end(ap);
	assert_int_equal(wire_end(w), 0);
	assert_int_equal(wire_flush(w), 0);
	assert_int_equal(wire_recv(w, m), 0);
}

/* Reads frames up to the answer's OK. */
static void
raw_until_ok(struct wire *w)
{
	struct wire_msg m;

	do
		assert_int_equal(wire_recv(w, &m), 0);
	while (m.type != PROTO_OK);
}

/* An older client, a new serve: HELLO asked with its one field is answered
 * (the magic first, then the host, then the capabilities it does not
 * read), a BEGIN without GLOBALS gets RUN's four fields, with it five. */
static void
test_older_client(void **state)
{
	static const struct source_runner runner = { fake_begin, fake_end, NULL, NULL };
	struct fx *f = *state;
	struct source_local_opts lo;
	struct source *with_runner;
	struct chj_error e;
	struct wire w;
	struct wire_msg m;
	char conf[8400], tools[8400];
	uint64_t globals = 1;
	int sv[2];

	memset(&lo, 0, sizeof lo);
	snprintf(conf, sizeof conf, "%s/imapd.conf", f->top);
	snprintf(tools, sizeof tools, "%s/no-cyrus-tools", f->base);
	lo.cfg = &f->cfg;
	lo.imapd_conf = conf;
	lo.toolsdir = tools;
	lo.runner = &runner;
	assert_int_equal(source_local_open(&with_runner, &lo, &e), 0);
	source_free(f->local);
	f->local = with_runner;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->pid = fork_serve(f, sv[1], &sv[0], 1);
	close(sv[1]);
	wire_init(&w, sv[0], sv[0]);
	raw_request(&w, &m, PROTO_HELLO, "s", PROTO_MAGIC);
	assert_int_equal(m.type, PROTO_HELLO);
	assert_int_equal(m.nfields, 3);
	assert_string_equal(wire_str(&w, 0, 64, "magic"), PROTO_MAGIC);
	assert_string_equal(wire_str(&w, 2, PROTO_CAPS_MAX, "caps"), PROTO_CAP_FOLDER_ANNOTS);
	raw_request(&w, &m, PROTO_BEGIN, "su", "cyrus-archive", (uint64_t)SOURCE_BEGIN_CYRUS);
	assert_int_equal(m.type, PROTO_RUN);
	assert_int_equal(m.nfields, 4);
	raw_until_ok(&w);
	raw_request(&w, &m, PROTO_BEGIN, "su", "cyrus-archive",
	    (uint64_t)(SOURCE_BEGIN_CYRUS | SOURCE_BEGIN_REPLACE | PROTO_BEGIN_GLOBALS));
	assert_int_equal(m.type, PROTO_RUN);
	assert_int_equal(m.nfields, 5);
	assert_int_equal(wire_u64(&w, 4, "globals", &globals), 0);
	assert_true(globals == 0);          /* a full run: the journal was not read */
	raw_until_ok(&w);
	wire_free(&w);
	close(sv[0]);
	assert_int_equal(waitpid(f->pid, NULL, 0), f->pid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pull_as_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guid_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_dies, setup, teardown),
		cmocka_unit_test(test_hello_pipelined),
		cmocka_unit_test_setup_teardown(test_cut_anywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_annots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_serve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_annots, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
