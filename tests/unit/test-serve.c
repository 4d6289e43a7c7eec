/* test-serve.c: the serve protocol end to end without ssh or a running Cyrus:
 * serve (common/serve.c) answers in a child process on one end of a socket
 * pair, on a local source over a small spool built here (cyrus-fixture.h);
 * a remote source (common/remote.c) on the other end feeds the Cyrus backup.
 * The pulled archives hold what a local backup stores; a message whose file
 * does not match its GUID fails its user alone, checked on arrival; a path
 * outside the Cyrus directories and a mailbox serve did not list are refused
 * without ending the connection; a serve that dies breaks the source; the
 * HELLO is not waited for; and the connection cut at any byte of serve's
 * answers leaves every archive valid, the next pull completing it. */
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
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
