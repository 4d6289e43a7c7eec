/* test-cyrus-restore.c: cmocka unit tests for the extraction of a run
 * (common/cyrus/restore.h), and the check of an archive
 * (common/cyrus/verify.h), on a small synthetic archive written here with
 * the archive's own API: two runs of two folders (a message shared by both,
 * hard-linked when restored), a per-user file and a sieve link; each run
 * restored byte for byte into a directory whose parents are missing; one
 * folder alone; a folder, a run or an archive that is not there; a file in
 * the way; names in the manifest that would leave the target; verify
 * finding a message an index references missing, and a lost sidecar; the
 * restore into a running server (cyrus_csync_restore) against a fake
 * sync_server on loopback: a dry run writes nothing, a restore sends each
 * message once and each folder with its UIDs, a user that exists refuses
 * it before anything is written; the quota roots (APPLY QUOTA, before the
 * folders), the seen state of another user's folder (APPLY SEEN, from a
 * seen.db Cyrus 3.6 wrote, under the uniqueid a restore beside a
 * delayed-delete copy derived) and the ACL of the mailboxes.db record;
 * the parsing of quota files and seen records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/manifest.h"
#include "cyrus-fixture.h"
#include "cyrus/restore-csync.h"
#include "cyrus/restore.h"
#include "cyrus/verify.h"
#include "unit-tmp.h"

#define U1 "0a1b2c3d-inbox"
#define U2 "9f8e7d6c-sent"
#define REL1 "uuid/0/a/" U1
#define REL2 "uuid/9/f/" U2

static char dir[4096], apath[4200];

static const char *m1 = "From: a\r\n\r\none\r\n";
static const char *m2 = "From: b\r\n\r\ntwo\r\n";
static const char *m3 = "From: c\r\n\r\nthree\r\n";

static void
add_file(struct arch *a, const char *name, const void *buf, size_t len)
{
	assert_int_equal(arch_run_add_buf(a, name, buf, len, 1700000000000000000LL, 0600), 0);
}

static void
add_message(struct arch *a, const char *text)
{
	char name[64], hex[41];

	fx_sha1_hex(text, hex);
	snprintf(name, sizeof name, "files/%s", hex);
	add_file(a, name, text, strlen(text));
}

static void
add_folder(struct arch *a, const char *uid, const char *name, const struct fx_msg *msgs, size_t n)
{
	char entry[256], *h = fx_header(name, uid);
	unsigned char *x;
	size_t len;

	snprintf(entry, sizeof entry, "folders/%s/cyrus.header", uid);
	add_file(a, entry, h, strlen(h));
	free(h);
	x = fx_index(msgs, n, &len);
	snprintf(entry, sizeof entry, "folders/%s/cyrus.index", uid);
	add_file(a, entry, x, len);
	free(x);
}

/* Ends the run with a manifest of user alice, her two folders (or what
 * relpath2 says of the second) and her files. */
static void
commit_run(struct arch *a, const char *relpath2)
{
	struct manifest m;
	char *buf, name[64];
	size_t len;

	manifest_init(&m);
	m.time = 1700000000;
	m.seq = 7;
	m.user = strdup("alice");
	assert_int_equal(manifest_add_folder(&m, U1, "default", REL1, "user.alice"), 0);
	assert_int_equal(manifest_add_folder(&m, U2, "default", relpath2, "user.alice.Sent"), 0);
	assert_int_equal(manifest_add_file(&m, "user/conf/user/uuid/0/a/" U1 "/seen.db"), 0);
	assert_int_equal(manifest_add_file(&m, "user/sieve/uuid/0/a/" U1 "/defaultbc"), 0);
	assert_int_equal(manifest_format(&m, &buf, &len), 0);
	assert_int_equal(arch_run_commit(a, buf, len, name, sizeof name), 0);
	free(buf);
	manifest_free(&m);
}

/* Run 1: INBOX {1: m1, 2: m2}, Sent {1: m1}; run 2: Sent {1: m1, 3: m3}. */
static void
make_archive(const char *relpath2)
{
	static const struct fx_msg inbox[] = { { 1, NULL, 0 }, { 2, NULL, 0 } };
	struct fx_msg in[2], sent1[1] = { { 1, NULL, 0 } }, sent2[2] = { { 1, NULL, 0 }, { 3, NULL, 0 } };
	struct chj_error err;
	struct arch *a;

	memcpy(in, inbox, sizeof in);
	in[0].text = m1;
	in[1].text = m2;
	sent1[0].text = m1;
	sent2[0].text = m1;
	sent2[1].text = m3;
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	add_message(a, m1);
	add_message(a, m2);
	add_folder(a, U1, "user.alice", in, 2);
	add_folder(a, U2, "user.alice.Sent", sent1, 1);
	add_file(a, "user/conf/user/uuid/0/a/" U1 "/seen.db", "seen-1", 6);
	assert_int_equal(arch_run_add_symlink(a, "user/sieve/uuid/0/a/" U1 "/defaultbc", "main.bc",
	    1700000000000000000LL), 0);
	commit_run(a, relpath2);
	assert_int_equal(arch_run_begin(a), 0);
	add_message(a, m3);
	add_folder(a, U2, "user.alice.Sent", sent2, 2);
	add_file(a, "user/conf/user/uuid/0/a/" U1 "/seen.db", "seen-2", 6);
	commit_run(a, relpath2);
	assert_int_equal(arch_close(a), 0);
}

static int
setup(void **state)
{
	(void)state;
	assert_non_null(unit_tmpdir(dir, sizeof dir, "restore"));
	snprintf(apath, sizeof apath, "%s/alice.tar.gz", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unit_rmtree(dir);
	return 0;
}

/* The content of DIR/out/rel, or NULL. */
static char *
restored(const char *out, const char *rel)
{
	char p[8400];

	snprintf(p, sizeof p, "%s/%s/%s", dir, out, rel);
	return fx_read(p, NULL);
}

static void
assert_restored(const char *out, const char *rel, const char *want)
{
	char *got = restored(out, rel);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static int
exists(const char *out, const char *rel)
{
	char p[8400];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s/%s", dir, out, rel);
	return lstat(p, &st) == 0;
}

static ino_t
inode(const char *out, const char *rel)
{
	char p[8400];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s/%s", dir, out, rel);
	assert_int_equal(lstat(p, &st), 0);
	return st.st_ino;
}

static int
restore(const char *at, const char *out, const char *const *folders, size_t nfolders,
    struct cyrus_restore_result *res, struct chj_error *e)
{
	struct runsel sel;
	char to[4200];
	int rc;

	assert_int_equal(runsel_parse(&sel, at, e), 0);
	snprintf(to, sizeof to, "%s/%s", dir, out);
	rc = cyrus_restore(apath, to, &sel, folders, nfolders, res, e);
	if (rc < 0)
		assert_null(strchr(e->msg, '\n'));
	return rc;
}

static void
test_runs(void **state)
{
	struct cyrus_restore_result res;
	struct chj_error e;
	char link[64];
	ssize_t n;

	(void)state;
	make_archive(REL2);
	/* run 1, into a directory whose parents are missing */
	assert_int_equal(restore("1", "r1/a/b", NULL, 0, &res, &e), 0);
	assert_int_equal(res.run, 1);
	assert_string_equal(res.user, "alice");
	assert_int_equal(res.folders, 2);
	assert_int_equal(res.messages, 3);         /* INBOX 1., 2., Sent 1. */
	assert_int_equal(res.files, 2);
	cyrus_restore_result_free(&res);
	assert_restored("r1/a/b", "spool/default/" REL1 "/1.", m1);
	assert_restored("r1/a/b", "spool/default/" REL1 "/2.", m2);
	assert_restored("r1/a/b", "spool/default/" REL2 "/1.", m1);
	assert_false(exists("r1/a/b", "spool/default/" REL2 "/3."));
	/* one message in two folders: one file */
	assert_int_equal(inode("r1/a/b", "spool/default/" REL1 "/1."),
	    inode("r1/a/b", "spool/default/" REL2 "/1."));
	assert_true(exists("r1/a/b", "spool/default/" REL1 "/cyrus.header"));
	assert_true(exists("r1/a/b", "spool/default/" REL1 "/cyrus.index"));
	assert_restored("r1/a/b", "conf/user/uuid/0/a/" U1 "/seen.db", "seen-1");
	{
		char p[8400];

		snprintf(p, sizeof p, "%s/r1/a/b/sieve/uuid/0/a/" U1 "/defaultbc", dir);
		n = readlink(p, link, sizeof link - 1);
		assert_true(n > 0);
		link[n] = '\0';
		assert_string_equal(link, "main.bc");
	}
	/* the newest run: what run 2 changed, the rest as of run 1 */
	assert_int_equal(restore(NULL, "r2", NULL, 0, &res, &e), 0);
	assert_int_equal(res.run, 2);
	assert_int_equal(res.messages, 4);
	cyrus_restore_result_free(&res);
	assert_restored("r2", "spool/default/" REL1 "/2.", m2);
	assert_restored("r2", "spool/default/" REL2 "/3.", m3);
	assert_restored("r2", "conf/user/uuid/0/a/" U1 "/seen.db", "seen-2");
	/* by the run's name */
	{
		struct arch *a;
		struct arch_run *runs;
		size_t nr;
		struct chj_error err;

		assert_int_equal(arch_open(&a, apath, ARCH_READ, &err), 0);
		assert_int_equal(arch_runs(a, &runs, &nr), 0);
		assert_int_equal(restore(runs[0].name, "r3", NULL, 0, &res, &e), 0);
		assert_int_equal(res.run, runs[0].id);
		assert_string_equal(res.run_name, runs[0].name);
		cyrus_restore_result_free(&res);
		free(runs);
		arch_close(a);
	}
}

static void
test_one_folder(void **state)
{
	struct cyrus_restore_result res;
	struct chj_error e;
	const char *only[] = { "user.alice.Sent" }, *bad[] = { "user.alice.Nope" };

	(void)state;
	make_archive(REL2);
	assert_int_equal(restore(NULL, "f", only, 1, &res, &e), 0);
	assert_int_equal(res.folders, 1);
	assert_int_equal(res.messages, 2);
	assert_int_equal(res.files, 0);
	cyrus_restore_result_free(&res);
	assert_restored("f", "spool/default/" REL2 "/3.", m3);
	assert_false(exists("f", "spool/default/" REL1));
	assert_false(exists("f", "conf"));
	/* a folder the run lacks: said before anything is created */
	assert_int_equal(restore(NULL, "g", bad, 1, &res, &e), -1);
	cyrus_restore_result_free(&res);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
	assert_string_equal(e.msg, "folder 'user.alice.Nope' is not in the run");
	assert_false(exists("g", ""));
}

static void
test_errors(void **state)
{
	struct cyrus_restore_result res;
	struct chj_error e;
	char want[8600];

	(void)state;
	/* no archive */
	assert_int_equal(restore(NULL, "x", NULL, 0, &res, &e), -1);
	cyrus_restore_result_free(&res);
	assert_int_equal(e.code, CHJ_ERR_SYS);
	assert_int_equal(e.errnum, ENOENT);
	snprintf(want, sizeof want, "cannot open archive '%s': No such file or directory", apath);
	assert_string_equal(e.msg, want);
	make_archive(REL2);
	/* no such run */
	assert_int_equal(restore("3", "x", NULL, 0, &res, &e), -1);
	cyrus_restore_result_free(&res);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
	snprintf(want, sizeof want, "archive '%s' has no run 3 (its runs are numbered 1 to 2)", apath);
	assert_string_equal(e.msg, want);
	assert_false(exists("x", ""));
	/* a file in the way is never overwritten */
	snprintf(want, sizeof want, "%s/y/spool/default/" REL1 "/2.", dir);
	fx_write(want, "mine", 4);
	assert_int_equal(restore(NULL, "y", NULL, 0, &res, &e), -1);
	cyrus_restore_result_free(&res);
	assert_int_equal(e.code, CHJ_ERR_SYS);   /* the callback's code, through arch_fetch */
	assert_int_equal(e.errnum, EEXIST);
	assert_non_null(strstr(e.msg, "cannot create 'spool/default/" REL1 "/2.': File exists"));
	assert_restored("y", "spool/default/" REL1 "/2.", "mine");
	/* the target is a file */
	snprintf(want, sizeof want, "%s/z", dir);
	fx_write(want, "", 0);
	assert_int_equal(restore(NULL, "z/sub", NULL, 0, &res, &e), -1);
	cyrus_restore_result_free(&res);
	assert_int_equal(e.code, CHJ_ERR_SYS);
	assert_int_equal(e.errnum, ENOTDIR);
}

static void
test_unsafe(void **state)
{
	struct cyrus_restore_result res;
	struct chj_error e;

	(void)state;
	make_archive("uuid/../../../escaped");
	assert_int_equal(restore(NULL, "u", NULL, 0, &res, &e), -1);
	cyrus_restore_result_free(&res);
	assert_int_equal(e.code, CHJ_ERR_REFUSED);
	assert_string_equal(e.msg, "folder 'user.alice.Sent': unsafe partition or path "
	    "'default/uuid/../../../escaped' in the archive: refused");
	assert_false(exists("", "escaped"));
	assert_false(exists("u", "escaped"));
}

struct said {
	int problems, notes;
	char last[2048];
};

static void
say(void *ctx, int problem, const char *msg)
{
	struct said *w = ctx;

	if (problem)
		w->problems++;
	else
		w->notes++;
	snprintf(w->last, sizeof w->last, "%s", msg);
}

static void
test_verify(void **state)
{
	struct said w;
	struct chj_error e;
	struct arch *a;
	struct chj_error err;
	char want[4400], hex[41], *idx;
	unsigned char *x;
	size_t len;
	struct fx_msg lost[1] = { { 7, "From: x\r\n\r\nnever stored\r\n", 0 } };

	(void)state;
	make_archive(REL2);
	memset(&w, 0, sizeof w);
	assert_int_equal(cyrus_verify(apath, say, &w, &e), 0);
	assert_int_equal(w.problems, 0);
	/* the sidecar lost: read without it (nothing written), said as a
	 * note, still good */
	idx = arch_sidecar_path(apath);
	assert_int_equal(unlink(idx), 0);
	assert_int_equal(cyrus_verify(apath, say, &w, &e), 0);
	assert_int_equal(w.notes, 1);
	snprintf(want, sizeof want, "note: sidecar '%s' is missing (reindex or the next backup "
	    "writes it)", idx);
	assert_string_equal(w.last, want);
	assert_int_equal(access(idx, F_OK), -1);
	free(idx);
	/* a run whose index references a message nobody stored */
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	x = fx_index(lost, 1, &len);
	add_file(a, "folders/" U1 "/cyrus.index", x, len);
	free(x);
	commit_run(a, REL2);
	assert_int_equal(arch_close(a), 0);
	memset(&w, 0, sizeof w);
	assert_int_equal(cyrus_verify(apath, say, &w, &e), 1);
	fx_sha1_hex(lost[0].text, hex);
	snprintf(want, sizeof want, "folders/" U1 "/cyrus.index references message %s, which the "
	    "archive does not hold", hex);
	assert_string_equal(w.last, want);
	/* an archive that is not there */
	snprintf(want, sizeof want, "%s/none.tar.gz", dir);
	assert_int_equal(cyrus_verify(want, say, &w, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_SYS);
	assert_int_equal(e.errnum, ENOENT);
}

/* ---- a fake sync_server: one connection, every command logged ---- */

struct fake {
	int lfd, port;
	int user_exists;            /* GET MAILBOXES answers that user.alice exists */
	/* GET UNIQUEIDS of an id named here (a line "ID NAME") answers a
	 * mailbox of that name */
	const char *ids;
	char *log;                  /* the commands, each ended by "\n" */
	size_t len;
	pthread_t t;
};

static void
fake_log(struct fake *f, const char *p, size_t n)
{
	f->log = realloc(f->log, f->len + n + 1);
	assert_non_null(f->log);
	memcpy(f->log + f->len, p, n);
	f->len += n;
	f->log[f->len] = '\0';
}

static void
fake_say(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* The size of a literal ending line[0..n) ("{N}", "{N+}" or "%{PART GUID N}"), or -1. */
static long
fake_literal(const char *line, size_t n)
{
	size_t i = n;

	if (n < 3 || line[n - 1] != '}')
		return -1;
	i = n - 1;
	if (line[i - 1] == '+')
		i--;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || (line[i - 1] != '{' && line[i - 1] != ' '))
		return -1;
	return strtol(line + i, NULL, 10);
}

/* The MAILBOX items for "ID ID ...)" that f->ids names. */
static void
fake_ids(struct fake *f, int fd, const char *list)
{
	const char *p = f->ids;

	while (*p) {
		const char *sp = strchr(p, ' '), *nl = strchr(p, '\n');
		char id[64], name[256], item[512];

		snprintf(id, sizeof id, "%.*s", (int)(sp - p), p);
		snprintf(name, sizeof name, "%.*s", (int)(nl - sp - 1), sp + 1);
		if (strstr(list, id) != NULL) {
			snprintf(item, sizeof item, "* MAILBOX %%(UNIQUEID %s MBOXNAME %s LAST_UID 1 "
			    "HIGHESTMODSEQ 1 UIDVALIDITY 1 SYNC_CRC 0)\r\n", id, name);
			fake_say(fd, item);
		}
		p = nl + 1;
	}
}

static void *
fake_serve(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	char line[65536], c;
	size_t n = 0;

	assert_true(fd >= 0);
	fake_say(fd, "* SASL PLAIN\r\n* OK fake Cyrus sync server\r\n");
	while (read(fd, &c, 1) == 1) {
		long lit;

		if (n + 1 < sizeof line)
			line[n++] = c;
		if (n < 2 || line[n - 2] != '\r' || line[n - 1] != '\n')
			continue;
		fake_log(f, line, n - 2);
		if ((lit = fake_literal(line, n - 2)) >= 0) {
			while (lit-- > 0 && read(fd, &c, 1) == 1)
				fake_log(f, &c, 1);
			n = 0;
			continue;
		}
		fake_log(f, "\n", 1);
		if (strncmp(line, "GET MAILBOXES", 13) == 0 && f->user_exists)
			fake_say(fd, "* MAILBOX %(UNIQUEID zzz MBOXNAME user.alice LAST_UID 9 "
			    "HIGHESTMODSEQ 9 UIDVALIDITY 1 SYNC_CRC 0)\r\n");
		if (strncmp(line, "GET UNIQUEIDS (", 15) == 0 && f->ids != NULL)
			fake_ids(f, fd, line + 15);
		if (strncmp(line, "EXIT", 4) == 0) {
			fake_say(fd, "OK Finished\r\n");
			break;
		}
		fake_say(fd, strncmp(line, "AUTHENTICATE", 12) == 0 ? "OK Success\r\n" : "OK success\r\n");
		n = 0;
	}
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, int user_exists)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;

	memset(f, 0, sizeof *f);
	f->user_exists = user_exists;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->t, NULL, fake_serve, f), 0);
}

/* Waits for the connection's end; f->log holds what was said. */
static void
fake_stop(struct fake *f)
{
	pthread_join(f->t, NULL);
	close(f->lfd);
}

static int
csync_restore(struct fake *f, int dry_run, struct cyrus_csync_result *res, struct chj_error *e)
{
	struct cyrus_csync_opts o;
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	char server[64];

	snprintf(server, sizeof server, "127.0.0.1:%d", f->port);
	memset(&o, 0, sizeof o);
	o.server = server;
	o.authname = "admin";
	o.password = "x";
	o.at = &sel;
	o.dry_run = dry_run;
	o.timeout_ms = 10000;
	return cyrus_csync_restore(apath, &o, res, e);
}

static void
test_csync(void **state)
{
	struct cyrus_csync_result res;
	struct chj_error e;
	struct fake f;
	char want[256];

	(void)state;
	make_archive(REL2);

	/* a dry run asks and writes nothing */
	fake_start(&f, 0);
	assert_int_equal(csync_restore(&f, 1, &res, &e), 0);
	fake_stop(&f);
	assert_int_equal(res.folders, 2);
	assert_int_equal(res.created, 0);
	assert_string_equal(res.user, "alice");
	assert_non_null(strstr(f.log, "GET UNIQUEIDS (" U1 " " U2 ")\n"));
	assert_null(strstr(f.log, "APPLY"));
	free(f.log);
	cyrus_csync_result_free(&res);

	/* a restore: each message once, each folder with its UIDs */
	fake_start(&f, 0);
	assert_int_equal(csync_restore(&f, 0, &res, &e), 0);
	fake_stop(&f);
	assert_int_equal(res.created, 2);
	assert_int_equal(res.uploaded, 3);
	assert_non_null(strstr(f.log, "AUTHENTICATE PLAIN AGFkbWluAHg=\n"));
	assert_non_null(strstr(f.log, "GET MAILBOXES (user.alice user.alice.Sent)\n"));
	assert_non_null(strstr(f.log, m1));
	assert_non_null(strstr(f.log, m3));
	assert_null(strstr(strstr(f.log, m1) + 1, m1));
	assert_non_null(strstr(f.log, "APPLY MAILBOX %(UNIQUEID " U1 " MBOXNAME user.alice "));
	assert_non_null(strstr(f.log, "APPLY MAILBOX %(UNIQUEID " U2 " MBOXNAME user.alice.Sent "));
	assert_non_null(strstr(f.log, "RECORD (%(UID 1 MODSEQ "));
	assert_non_null(strstr(f.log, "%(UID 3 MODSEQ "));
	assert_non_null(strstr(f.log, "APPLY ACTIVATE_SIEVE %(USERID alice FILENAME main.bc)\n"));
	assert_non_null(strstr(f.log, "RESTART\nEXIT\n"));
	free(f.log);
	cyrus_csync_result_free(&res);

	/* the user exists: refused, nothing written */
	fake_start(&f, 1);
	assert_int_equal(csync_restore(&f, 0, &res, &e), -1);
	fake_stop(&f);
	assert_int_equal(e.code, CHJ_ERR_REFUSED);
	snprintf(want, sizeof want, "user 'alice' exists on 127.0.0.1:%d: refused (nothing written; "
	    "--beside SUFFIX restores it as another user)", f.port);
	assert_string_equal(e.msg, want);
	assert_null(strstr(f.log, "APPLY"));
	free(f.log);
	cyrus_csync_result_free(&res);

	/* a server that is not one: refused before any connection */
	f.port = 70000;
	assert_int_equal(csync_restore(&f, 0, &res, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_INVALID);
	assert_string_equal(e.msg, "bad server '127.0.0.1:70000': the port is not a number from 1 "
	    "to 65535");
	cyrus_csync_result_free(&res);
}

/* The seen.db of bob, who reads Sent of user01 (uniqueid SEEN_ID), as
 * Cyrus 3.6 wrote it: "1 1796615279 3 1796615278 2" */
#define SEEN_ID "sbef16l0o3oxy5p6nborje10"
#define SEEN_DB "user/conf/user/uuid/0/a/" U1 "/seen.db"
#define QUOTA_FILE "user/conf/quota/a/user.alice"

static char *
data_file(const char *name, size_t *len)
{
	char path[4096];
	const char *src = getenv("CHJ_SRCDIR");

	snprintf(path, sizeof path, "%s/tests/data/cyrus/%s", src ? src : ".", name);
	return fx_read(path, len);
}

/* Run 3 of the archive: Sent's mailboxes.db record with an ACL for bob
 * (cyrus.header gives alice's alone), a quota root on INBOX, the seen.db. */
static void
add_user_run(void)
{
	static const char quota[] = "%(S (18827 5000) M (5 300) AS (0) NF (5) MODSEQ 29)\n";
	static const char rec[] = "%(MBOXLIST %(T e I " U2 " P default V 1 C 2 F 31 M 17 "
	    "A %(alice lrswipkxtecdan bob lrs)) ANNOTATIONS ())\n";
	struct chj_error err;
	struct manifest m;
	struct arch *a;
	char *seen, *buf, name[64];
	size_t len, slen;

	assert_non_null(seen = data_file("seen.db", &slen));
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	add_file(a, SEEN_DB, seen, slen);
	add_file(a, QUOTA_FILE, quota, strlen(quota));
	add_file(a, "folders/" U2 "/mailbox", rec, strlen(rec));
	manifest_init(&m);
	m.time = 1700000100;
	m.seq = 8;
	m.user = strdup("alice");
	assert_int_equal(manifest_add_folder(&m, U1, "default", REL1, "user.alice"), 0);
	assert_int_equal(manifest_add_folder(&m, U2, "default", REL2, "user.alice.Sent"), 0);
	assert_int_equal(manifest_add_file(&m, QUOTA_FILE), 0);
	assert_int_equal(manifest_add_file(&m, SEEN_DB), 0);
	assert_int_equal(manifest_format(&m, &buf, &len), 0);
	assert_int_equal(arch_run_commit(a, buf, len, name, sizeof name), 0);
	free(buf);
	manifest_free(&m);
	assert_int_equal(arch_close(a), 0);
	free(seen);
}

static void
test_csync_user_state(void **state)
{
	struct cyrus_csync_result res;
	struct chj_error e;
	struct fake f;
	char derived[25], ids[256], want[512];
	const char *q, *mb, *sent;

	(void)state;
	make_archive(REL2);
	add_user_run();

	/* the folder of the seen record is on the server: its uniqueid */
	fake_start(&f, 0);
	assert_int_equal(csync_restore(&f, 0, &res, &e), 0);
	fake_stop(&f);
	q = strstr(f.log, "APPLY QUOTA %(ROOT user.alice LIMIT 5000 STORAGE 5000 MESSAGE 300 "
	    "MODSEQ 29)\n");
	mb = strstr(f.log, "APPLY MAILBOX");
	assert_non_null(q);
	assert_non_null(mb);
	assert_true(q < mb);            /* the root first: the folders get it */
	sent = strstr(f.log, "MBOXNAME user.alice.Sent ");
	assert_non_null(sent);
	assert_non_null(strstr(sent, "ACL \"alice\tlrswipkxtecdan\tbob\tlrs\t\""));
	assert_non_null(strstr(f.log, "APPLY SEEN %(USERID alice UNIQUEID " SEEN_ID " LASTREAD "
	    "1796615279 LASTUID 3 LASTCHANGE 1796615278 SEENUIDS 2)\n"));
	free(f.log);
	cyrus_csync_result_free(&res);

	/* only a delayed-delete copy has it; the folder was restored beside
	 * it under a derived uniqueid: the seen state goes there */
	rc_derive_id(SEEN_ID, "user.bob.Sent", 0, derived);
	snprintf(ids, sizeof ids, SEEN_ID " DELETED.user.bob.Sent.6B04C37D\n%s user.bob.Sent\n", derived);
	fake_start(&f, 0);
	f.ids = ids;
	assert_int_equal(csync_restore(&f, 0, &res, &e), 0);
	fake_stop(&f);
	snprintf(want, sizeof want, "APPLY SEEN %%(USERID alice UNIQUEID %s LASTREAD ", derived);
	assert_non_null(strstr(f.log, want));
	free(f.log);
	cyrus_csync_result_free(&res);

	/* a dry run writes none of it */
	fake_start(&f, 0);
	assert_int_equal(csync_restore(&f, 1, &res, &e), 0);
	fake_stop(&f);
	assert_null(strstr(f.log, "APPLY"));
	free(f.log);
	cyrus_csync_result_free(&res);
}

/* Quota files and seen records as Cyrus writes them, and what is not. */
static void
test_user_state_parse(void **state)
{
	struct rc_quota q;
	struct rc_seen s;
	struct dlw w;
	static const char *const bad_quota[] = {
		"hello", "", "100", "%(S (1 x))", "%(S (1 2 3))", "%(MODSEQ x)", "1 2 X 3 4",
	};
	static const char *const bad_seen[] = {
		"2 1 2 3 x", "1 2 3", "1 a 3 4 5", "", "1 2 3 4",
	};
	size_t i;

	(void)state;
	memset(&q, 0, sizeof q);
	assert_int_equal(rc_quota_parse("%(S (18827 5000) M (5 300) AS (0) NF (5) MODSEQ 29)\n", 52,
	    q.limit, &q.modseq), 0);
	assert_int_equal(q.limit[0], 5000);
	assert_int_equal(q.limit[1], 300);
	assert_int_equal(q.limit[2], -1);
	assert_int_equal(q.limit[3], -1);
	assert_int_equal(q.modseq, 29);
	/* the older formats: storage alone, then named resources */
	assert_int_equal(rc_quota_parse("100 2000\n", 9, q.limit, &q.modseq), 0);
	assert_int_equal(q.limit[0], 2000);
	assert_int_equal(q.limit[1], -1);
	assert_int_equal(q.modseq, 0);
	assert_int_equal(rc_quota_parse("100 2000 M 3 50", 15, q.limit, &q.modseq), 0);
	assert_int_equal(q.limit[1], 50);
	for (i = 0; i < sizeof bad_quota / sizeof bad_quota[0]; i++)
		assert_int_equal(rc_quota_parse(bad_quota[i], strlen(bad_quota[i]), q.limit, &q.modseq), -1);
	/* no storage limit: LIMIT as sync_client sends it, no STORAGE */
	q.limit[0] = -1;
	q.limit[1] = 7;
	q.limit[2] = q.limit[3] = -1;
	q.modseq = 0;
	memset(&w, 0, sizeof w);
	rc_quota_command(&w, "user.a^b", &q);
	assert_string_equal(w.buf, "APPLY QUOTA %(ROOT user.a^b LIMIT 4294967295 MESSAGE 7)\r\n");
	dlw_free(&w);

	memset(&s, 0, sizeof s);
	assert_int_equal(rc_seen_parse("1 10 3 11 1:3,5", 15, &s), 0);
	assert_int_equal(s.lastread, 10);
	assert_int_equal(s.lastuid, 3);
	assert_int_equal(s.lastchange, 11);
	assert_string_equal(s.seenuids, "1:3,5");
	memset(&w, 0, sizeof w);
	rc_seen_command(&w, "bob", "u1", &s);
	assert_string_equal(w.buf, "APPLY SEEN %(USERID bob UNIQUEID u1 LASTREAD 10 LASTUID 3 "
	    "LASTCHANGE 11 SEENUIDS 1:3,5)\r\n");
	dlw_free(&w);
	free(s.seenuids);
	/* nothing seen: an empty string */
	assert_int_equal(rc_seen_parse("1 10 0 11 ", 10, &s), 0);
	memset(&w, 0, sizeof w);
	rc_seen_command(&w, "bob", "u1", &s);
	assert_non_null(strstr(w.buf, " SEENUIDS \"\")\r\n"));
	dlw_free(&w);
	free(s.seenuids);
	for (i = 0; i < sizeof bad_seen / sizeof bad_seen[0]; i++)
		assert_int_equal(rc_seen_parse(bad_seen[i], strlen(bad_seen[i]), &s), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csync_user_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_state_parse, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
