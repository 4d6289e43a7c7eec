/* test-archive.c: cmocka unit tests for the per-user archive
 * (common/archive/archive.h): runs appended and read back, the sidecar
 * queries, torn tails cut at every kind of offset, garbage, lost or corrupt
 * sidecars, verify naming a flipped byte, compaction, and GNU tar reading
 * the result; members deflated at the same time by one shared pool of
 * workers (pdeflate.h). Each test works in its own temporary directory
 * (unit-tmp.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "archive/archive.h"
#include "archive/archive-int.h"   /* arch_run_commit_as: runs at given times */
#include "archive/pdeflate.h"
#include "unit-tmp.h"

/* ---- helpers ---- */

static char dir[4096];
static char apath[4200];

static int
setup(void **state)
{
	(void)state;
	assert_non_null(unit_tmpdir(dir, sizeof dir, "archive"));
	snprintf(apath, sizeof apath, "%s/user.tar.gz", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unit_rmtree(dir);
	return 0;
}

static void
sha1_hex(const void *buf, size_t len, char out[41])
{
	unsigned char d[20];
	unsigned int n = 0, i;

	EVP_Digest(buf, len, d, &n, EVP_sha1(), NULL);
	for (i = 0; i < 20; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static char *
files_name(const void *buf, size_t len)
{
	static char name[64];
	char h[41];

	sha1_hex(buf, len, h);
	snprintf(name, sizeof name, "files/%s", h);
	return name;
}

static off_t
file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void
copy_file(const char *from, const char *to, off_t len)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t k;
	off_t done = 0;

	assert_true(in >= 0 && out >= 0);
	while ((len < 0 || done < len) && (k = read(in, buf, len < 0 || len - done > (off_t)sizeof buf ?
	    sizeof buf : (size_t)(len - done))) > 0) {
		assert_int_equal(write(out, buf, (size_t)k), k);
		done += k;
	}
	close(in);
	close(out);
}

static char *
idx_path(void)
{
	static char p[4300];
	char *s = arch_sidecar_path(apath);

	snprintf(p, sizeof p, "%s", s);
	free(s);
	return p;
}

/* A big message file (pseudo-random, 3 MB) in the temp dir; returns its fd. */
static int
big_file(size_t len, char sha[41])
{
	char p[4300];
	unsigned char *b = malloc(len);
	unsigned x = 12345;
	size_t i;
	int fd;

	for (i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		b[i] = (unsigned char)(x >> 16);
	}
	sha1_hex(b, len, sha);
	snprintf(p, sizeof p, "%s/big", dir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	free(b);
	return fd;
}

static const char *msg1 = "From: a\r\n\r\nhello\r\n";
static const char *msg2 = "From: b\r\n\r\nworld\r\n";

/* The commit time of add_run's next run: fixed, not the clock, so that an
 * archive made again from the same steps (test_torn_tail) has the same run
 * names, whenever a second ticks between. */
static int64_t next_run_time = 1700000000;

/* Appends one small run: a message, an index copy, a link. */
static void
add_run(struct arch *a, const char *msg, const char *index, const char *folder, char *name)
{
	char iname[128], lname[128], rname[32];
	time_t t = (time_t)next_run_time++;
	struct tm tm;

	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, files_name(msg, strlen(msg)), msg, strlen(msg),
	    1700000000123456789LL, 0600), 0);
	snprintf(iname, sizeof iname, "folders/u-%s/cyrus.index", folder);
	assert_int_equal(arch_run_add_buf(a, iname, index, strlen(index), 1700000001000000000LL, 0644), 0);
	snprintf(lname, sizeof lname, "imap/%s", folder);
	snprintf(iname, sizeof iname, "../folders/u-%s", folder);
	assert_int_equal(arch_run_add_symlink(a, lname, iname, 1700000002000000000LL), 0);
	gmtime_r(&t, &tm);
	strftime(rname, sizeof rname, "%Y%m%dT%H%M%SZ", &tm);
	assert_int_equal(arch_run_commit_as(a, "manifest\n", 9, rname, (int64_t)t, name, 32), 0);
}

/* Two runs in a fresh archive; *e1 = the end of the first. */
static void
make_two(off_t *e1)
{
	struct chj_error err;
	char n[32];
	struct arch *a;

	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	add_run(a, msg1, "index-one", "INBOX", n);
	if (e1)
		*e1 = file_size(apath);
	add_run(a, msg2, "index-two", "Sent", n);
	assert_int_equal(arch_close(a), 0);
}

static int
runs_count(const char *p, int mode)
{
	struct chj_error err;
	struct arch *a;
	struct arch_run *r;
	size_t n;

	if (arch_open(&a, p, mode, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	assert_int_equal(arch_runs(a, &r, &n), 0);
	free(r);
	arch_close(a);
	return (int)n;
}

static int notes_seen;      /* notes verify gave so far */

static void
count_problem(void *ctx, int problem, const char *msg)
{
	int *n = ctx;

	/* a note (an interrupted run after the last recorded one) is not a
	 * problem, and says so in its text too */
	if (problem)
		(*n)++;
	else
		notes_seen++;
	assert_int_equal(strncmp(msg, "note: ", 6) == 0, !problem);
	fprintf(stderr, "problem: %s\n", msg);
}

static int
verify_count(const char *p)
{
	struct chj_error err;
	int n = 0, rc;

	rc = arch_verify(p, count_problem, NULL, &n, &err);
	assert_true(rc >= 0);
	assert_int_equal(rc, n);
	return n;
}

/* `tar -tzif p` output lines, or -1 when tar fails. */
static int
tar_list_count(const char *p, const char *must)
{
	char cmd[8800], line[8192];
	FILE *f;
	int n = 0, found = must == NULL, st;

	snprintf(cmd, sizeof cmd, "tar --quoting-style=escape -tzif '%s' 2>&1", p);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (must && strcmp(line, must) == 0)
			found = 1;
		if (strncmp(line, "tar:", 4) == 0)
			fprintf(stderr, "%s\n", line);   /* a warning: hdrcharset for a binary name */
		else
			n++;
	}
	st = pclose(f);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !found)
		return -1;
	return n;
}

/* ---- fetch callback: collects data ---- */

struct got {
	char buf[4 << 20];
	size_t len;
	int calls;
	char order[16][128];
};

static int
collect(void *cbctx, const struct arch_want *w, const struct arch_entry *e, struct arch_stream *s,
    struct chj_error *err)
{
	struct got *g = cbctx;
	ssize_t k;

	(void)w;
	(void)err;
	snprintf(g->order[g->calls++ % 16], 128, "%s", e->name);
	g->len = 0;
	while ((k = arch_stream_read(s, g->buf + g->len, sizeof g->buf - g->len)) > 0)
		g->len += (size_t)k;
	return k < 0 ? -1 : 0;
}

/* ---- tests ---- */

static void
test_append_and_read(void **state)
{
	struct chj_error err;
	char n1[32], n2[32], sha[41], got_sha[41], bigname[64];
	struct arch *a;
	struct arch_run *runs;
	struct arch_entry e, *v;
	struct arch_want w[3];
	struct got *g = calloc(1, sizeof *g);
	struct stat st;
	size_t n;
	char *man;
	mode_t old = umask(0);
	int fd;

	(void)state;
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	umask(old);
	assert_int_equal(arch_tail_cut(a), 0);
	add_run(a, msg1, "index-one", "INBOX", n1);
	fd = big_file(3 << 20, sha);
	snprintf(bigname, sizeof bigname, "files/%s", sha);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_fd(a, bigname, fd, 3 << 20, 1700000005000000001LL, 0640), 0);
	assert_int_equal(arch_run_add_buf(a, "folders/u-INBOX/cyrus.index", "index-two", 9, 0, 0644), 0);
	assert_int_equal(arch_run_add_symlink(a, "imap/INBOX", "", 0), 0);
	assert_int_equal(arch_run_commit(a, "m2", 2, n2, sizeof n2), 0);
	close(fd);
	assert_string_not_equal(n1, n2);   /* same second: a suffix */
	assert_int_equal(arch_close(a), 0);

	/* modes: 0600 whatever the umask */
	assert_int_equal(stat(apath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(idx_path(), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(arch_open(&a, apath, ARCH_READ, &err), 0);
	assert_int_equal(arch_runs(a, &runs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(runs[0].id, 1);
	assert_string_equal(runs[0].name, n1);
	assert_int_equal(runs[0].offset, 0);
	assert_int_equal(runs[1].offset, runs[0].end);
	assert_int_equal(runs[1].end, file_size(apath));
	assert_int_equal(runs[0].entries, 4);
	assert_int_equal(runs[1].bytes, (3 << 20) + 9 + 2);
	free(runs);

	assert_int_equal(arch_has(a, files_name(msg1, strlen(msg1))), 1);
	assert_int_equal(arch_has(a, files_name(msg2, strlen(msg2))), 0);
	assert_int_equal(arch_latest(a, "folders/u-INBOX/cyrus.index", 0, &e), 1);
	assert_int_equal(e.run, 2);
	assert_int_equal(e.size, 9);
	assert_int_equal(e.mode, 0644);
	arch_entry_free(&e);
	assert_int_equal(arch_latest(a, "folders/u-INBOX/cyrus.index", 1, &e), 1);
	assert_int_equal(e.run, 1);
	assert_int_equal(e.mtime_ns, 1700000001000000000LL);
	arch_entry_free(&e);
	assert_int_equal(arch_latest(a, bigname, 1, &e), 0);
	assert_int_equal(arch_latest(a, bigname, 0, &e), 1);
	assert_string_equal(e.sha1, sha);
	assert_int_equal(e.mtime_ns, 1700000005000000001LL);
	assert_int_equal(e.mode, 0640);
	arch_entry_free(&e);

	assert_int_equal(arch_list(a, "imap/", 0, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].kind, ARCH_KIND_SYMLINK);
	assert_string_equal(v[0].target, "");
	arch_entries_free(v, n);
	assert_int_equal(arch_list(a, "imap/", 1, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].target, "../folders/u-INBOX");
	arch_entries_free(v, n);
	assert_int_equal(arch_list(a, "files/", 0, &v, &n), 0);
	assert_int_equal(n, 2);
	arch_entries_free(v, n);
	assert_int_equal(arch_list(a, "", 0, &v, &n), 0);
	assert_int_equal(n, 6);   /* files x2, index, link, runs x2 */
	arch_entries_free(v, n);

	/* fetch: asked out of order, delivered in file order */
	w[0] = (struct arch_want){ 2, bigname, NULL };
	w[1] = (struct arch_want){ 1, files_name(msg1, strlen(msg1)), NULL };
	w[2] = (struct arch_want){ 1, "folders/u-INBOX/cyrus.index", NULL };
	w[1].name = strdup(w[1].name);
	assert_int_equal(arch_fetch(a, w, 3, collect, g), 0);
	assert_int_equal(g->calls, 3);
	assert_string_equal(g->order[0], w[1].name);
	assert_string_equal(g->order[1], "folders/u-INBOX/cyrus.index");
	assert_string_equal(g->order[2], bigname);
	assert_int_equal(g->len, 3 << 20);
	sha1_hex(g->buf, g->len, got_sha);
	assert_string_equal(got_sha, sha);
	free((char *)w[1].name);
	w[0].name = "files/none";
	assert_int_equal(arch_fetch(a, w, 1, collect, g), -1);
	assert_non_null(strstr(arch_error(a)->msg, "files/none"));
	assert_int_equal(arch_error(a)->code, CHJ_ERR_NOTFOUND);

	assert_int_equal(arch_read_manifest(a, 2, &man, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(man, "m2", 2);
	free(man);
	arch_close(a);
	free(g);

	assert_int_equal(verify_count(apath), 0);
	{
		char rn[64];

		snprintf(rn, sizeof rn, "runs/%s", n2);
		assert_int_equal(tar_list_count(apath, rn), 8);
		assert_int_equal(tar_list_count(apath, bigname), 8);
	}
}

static void
test_abort_and_bad_adds(void **state)
{
	struct chj_error err;
	char n[32];
	struct arch *a, *b;
	off_t size;
	int p[2];

	(void)state;
	make_two(NULL);
	size = file_size(apath);
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	/* a second writer is refused */
	assert_int_equal(arch_open(&b, apath, ARCH_APPEND, &err), -1);
	assert_non_null(strstr(err.msg, "in use"));
	assert_int_equal(err.code, CHJ_ERR_REFUSED);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, "files/x", "abc", 3, 0, 0600), 0);
	assert_int_equal(arch_run_add_buf(a, "../evil", "abc", 3, 0, 0600), -1);
	assert_int_equal(arch_run_add_buf(a, "/abs", "abc", 3, 0, 0600), -1);
	assert_int_equal(arch_run_add_buf(a, "runs/fake", "abc", 3, 0, 0600), -1);
	assert_int_equal(arch_run_abort(a), 0);
	assert_int_equal(file_size(apath), size);
	/* a run begun and dropped at once (a backup that found nothing new)
	 * leaves no byte behind, not even the tar stream's end */
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_abort(a), 0);
	assert_int_equal(file_size(apath), size);
	assert_int_equal(verify_count(apath), 0);
	/* a short read kills the run; commit fails and cuts back */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "12345", 5), 5);
	close(p[1]);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_fd(a, "files/short", p[0], 100, 0, 0600), -1);
	assert_non_null(strstr(arch_error(a)->msg, "short"));
	assert_int_equal(arch_error(a)->code, CHJ_ERR_ARCHIVE);
	close(p[0]);
	assert_int_equal(arch_run_commit(a, "m", 1, n, sizeof n), -1);
	assert_int_equal(file_size(apath), size);
	arch_close(a);
	assert_int_equal(runs_count(apath, ARCH_READ), 2);
	assert_int_equal(verify_count(apath), 0);
}

static void
test_torn_tail(void **state)
{
	struct chj_error err;
	char full[4300], idx2[4300], idx1[4300];
	struct arch *a;
	off_t e1, e2, off;
	int cases = 0;

	(void)state;
	/* the sidecar after run 1 only, and after both */
	make_two(&e1);
	e2 = file_size(apath);
	snprintf(full, sizeof full, "%s/full", dir);
	snprintf(idx2, sizeof idx2, "%s/idx2", dir);
	snprintf(idx1, sizeof idx1, "%s/idx1", dir);
	copy_file(apath, full, -1);
	copy_file(idx_path(), idx2, -1);
	/* the sidecar of run 1 alone, indexed from those very bytes (a run
	 * written again could get another second, so another name) */
	unlink(idx_path());
	copy_file(full, apath, e1);
	assert_int_equal(arch_reindex(apath, &err), 0);
	copy_file(idx_path(), idx1, -1);
	/* every offset inside the second member, and its boundaries */
	for (off = e1; off <= e2; off += (off < e1 + 40 || off > e2 - 40) ? 1 : 7) {
		const char *side = (cases % 2) ? idx1 : idx2;
		int64_t want_runs = off == e2 ? 2 : 1;

		copy_file(full, apath, off);
		copy_file(side, idx_path(), -1);
		assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
		assert_int_equal(arch_tail_cut(a), off == e2 ? 0 : off - e1);
		arch_close(a);
		assert_int_equal(file_size(apath), off == e2 ? e2 : e1);
		assert_int_equal(runs_count(apath, ARCH_READ), want_runs);
		cases++;
	}
	/* inside the first member: nothing left; a writer that asked for it
	 * (backup) and adds no run leaves no archive (a 0-byte one would be
	 * "empty" to verify) */
	for (off = 1; off < e1; off += 97) {
		copy_file(full, apath, off);
		copy_file(idx2, idx_path(), -1);
		assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
		assert_int_equal(arch_tail_cut(a), off);
		if (off > 1 + 97)
			arch_drop_if_empty(a);
		arch_close(a);
		if (off > 1 + 97) {
			assert_int_equal(file_size(apath), -1);
			assert_int_equal(access(idx_path(), F_OK), -1);
		} else {
			assert_int_equal(file_size(apath), 0);
			assert_int_equal(runs_count(apath, ARCH_READ), 0);
		}
	}
	/* a reader neither cuts nor misses nor writes: the torn tail is just
	 * not a run, and a sidecar that records the run the file lost stays
	 * as it was, for verify to name */
	copy_file(full, apath, e2 - 5);
	copy_file(idx2, idx_path(), -1);
	assert_int_equal(runs_count(apath, ARCH_READ), 1);
	assert_int_equal(file_size(apath), e2 - 5);
	assert_true(verify_count(apath) > 0);
	/* an interrupted run after the last recorded one is crash residue:
	 * named as a note, not a problem (the next append cuts it) */
	copy_file(idx1, idx_path(), -1);
	notes_seen = 0;
	assert_int_equal(verify_count(apath), 0);
	assert_int_equal(notes_seen, 1);
	/* without a sidecar saying where the runs end, it is a problem */
	unlink(idx_path());
	assert_true(verify_count(apath) > 0);
	assert_true(cases > 80);
	/* the sidecar consistent after a cut */
	assert_int_equal(runs_count(apath, ARCH_APPEND), 1);
	assert_int_equal(verify_count(apath), 0);
}

static void
test_garbage_and_sidecar_loss(void **state)
{
	struct chj_error err;
	struct arch *a;
	off_t size;
	int fd;

	(void)state;
	make_two(NULL);
	size = file_size(apath);
	fd = open(apath, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "\x1f\x8bgarbage garbage", 17), 17);
	close(fd);
	notes_seen = 0;
	assert_int_equal(verify_count(apath), 0);     /* after the recorded runs: a note */
	assert_int_equal(notes_seen, 1);
	assert_int_equal(runs_count(apath, ARCH_READ), 2);
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_tail_cut(a), 17);
	arch_close(a);
	assert_int_equal(file_size(apath), size);

	/* sidecar deleted: derived data, a note; a reader does not write it,
	 * an appender does */
	unlink(idx_path());
	notes_seen = 0;
	assert_int_equal(verify_count(apath), 0);
	assert_int_equal(notes_seen, 1);            /* "missing" */
	assert_int_equal(runs_count(apath, ARCH_READ), 2);
	assert_int_equal(access(idx_path(), F_OK), -1);
	assert_int_equal(runs_count(apath, ARCH_APPEND), 2);
	notes_seen = 0;
	assert_int_equal(verify_count(apath), 0);
	assert_int_equal(notes_seen, 0);
	/* sidecar garbage: a note; read in memory */
	fd = open(idx_path(), O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "not sqlite at all, no no no no no no no no no no no no no no no no no no no no "
	    "no no no no no no no no no no no no no no no no", 120), 120);
	close(fd);
	assert_int_equal(runs_count(apath, ARCH_READ), 2);
	assert_int_equal(verify_count(apath), 0);
	/* reindex */
	unlink(idx_path());
	assert_int_equal(arch_reindex(apath, &err), 0);
	assert_int_equal(verify_count(apath), 0);
}

static void
test_flipped_byte(void **state)
{
	off_t e1, size;
	int fd, i, n;
	unsigned char c;

	(void)state;
	make_two(&e1);
	size = file_size(apath);
	/* flip bytes at several places of the second member: each is named */
	for (i = 1; i < 6; i++) {
		off_t at = e1 + (size - e1) * i / 7;

		fd = open(apath, O_RDWR);
		assert_int_equal(pread(fd, &c, 1, at), 1);
		c ^= 0x20;
		assert_int_equal(pwrite(fd, &c, 1, at), 1);
		n = verify_count(apath);
		c ^= 0x20;
		assert_int_equal(pwrite(fd, &c, 1, at), 1);
		close(fd);
		assert_true(n > 0);
	}
	assert_int_equal(verify_count(apath), 0);
}

/* arch_run_add_buf_hashed: the caller's SHA1 is what the sidecar records
 * (no second hash); a right one verifies, a wrong one is caught by verify;
 * a SHA1 that is not hex is refused. */
static void
test_add_hashed(void **state)
{
	struct chj_error err;
	struct arch_entry e;
	struct arch *a;
	char h1[41], h2[41], n[32];
	off_t e1;

	(void)state;
	sha1_hex(msg1, strlen(msg1), h1);
	sha1_hex(msg2, strlen(msg2), h2);
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf_hashed(a, files_name(msg1, strlen(msg1)), msg1, strlen(msg1), h1, 0,
	    0600), 0);
	assert_string_equal(arch_run_last_sha1(a), h1);
	assert_int_equal(arch_run_add_buf_hashed(a, "files/y", "abc", 3, "not-a-sha1", 0, 0600), -1);
	assert_int_equal(arch_error(a)->code, CHJ_ERR_INVALID);
	h2[7] = 'A';    /* upper case: not as the sidecar keeps them */
	assert_int_equal(arch_run_add_buf_hashed(a, "files/y", "abc", 3, h2, 0, 0600), -1);
	h2[7] = 'a';
	sha1_hex(msg2, strlen(msg2), h2);
	assert_int_equal(arch_run_commit(a, "m\n", 2, n, sizeof n), 0);
	assert_int_equal(arch_latest(a, files_name(msg1, strlen(msg1)), 0, &e), 1);
	assert_string_equal(e.sha1, h1);
	arch_entry_free(&e);
	assert_int_equal(arch_close(a), 0);
	assert_int_equal(verify_count(apath), 0);
	assert_int_equal(tar_list_count(apath, files_name(msg1, strlen(msg1))), 2);
	e1 = file_size(apath);

	/* a wrong SHA1 (msg2's for msg1's bytes) is recorded as given, and
	 * verify finds the data does not match it */
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf_hashed(a, "folders/u-x/cyrus.index", msg1, strlen(msg1), h2, 0, 0600),
	    0);
	assert_int_equal(arch_run_commit(a, "m\n", 2, n, sizeof n), 0);
	assert_int_equal(arch_close(a), 0);
	assert_true(verify_count(apath) > 0);
	assert_int_equal(truncate(apath, e1), 0);
	unlink(idx_path());
	assert_int_equal(runs_count(apath, ARCH_APPEND), 1);
	assert_int_equal(verify_count(apath), 0);
}

/* arch_run_seal: the run's data all given, nothing more can be added; the
 * commit that follows makes the run; a sealed run dropped leaves nothing. */
static void
test_seal(void **state)
{
	struct chj_error err;
	struct arch *a, *b;
	char n[32];
	off_t size;

	(void)state;
	make_two(NULL);
	size = file_size(apath);
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, "user/x", "abc", 3, 0, 0600), 0);
	assert_int_equal(arch_run_seal(a, "m\n", 2), 0);
	assert_int_equal(arch_run_seal(a, "m\n", 2), -1);
	assert_int_equal(arch_run_add_buf(a, "user/z", "abc", 3, 0, 0600), -1);
	assert_int_equal(arch_error(a)->code, CHJ_ERR_INVALID);
	assert_int_equal(arch_run_abort(a), 0);
	assert_int_equal(file_size(apath), size);
	/* two archives sealed at once, committed one after the other (what
	 * the backup does across users) */
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, "user/x", "abc", 3, 0, 0600), 0);
	assert_int_equal(arch_run_seal(a, "m\n", 2), 0);
	{
		char p2[4300];

		snprintf(p2, sizeof p2, "%s/other.tar.gz", dir);
		assert_int_equal(arch_open(&b, p2, ARCH_APPEND, &err), 0);
		assert_int_equal(arch_run_begin(b), 0);
		assert_int_equal(arch_run_add_buf(b, "user/y", "def", 3, 0, 0600), 0);
		assert_int_equal(arch_run_seal(b, "m2\n", 3), 0);
		assert_int_equal(arch_run_commit(a, NULL, 0, n, sizeof n), 0);
		assert_int_equal(arch_run_commit(b, NULL, 0, n, sizeof n), 0);
		assert_int_equal(arch_close(b), 0);
		assert_int_equal(verify_count(p2), 0);
		assert_int_equal(tar_list_count(p2, "user/y"), 2);
	}
	assert_int_equal(arch_close(a), 0);
	assert_int_equal(runs_count(apath, ARCH_READ), 3);
	assert_int_equal(verify_count(apath), 0);
}

static int
keep_not_dropped(void *ctx, const struct arch_entry *e)
{
	(void)ctx;
	return strstr(e->name, "drop") == NULL;
}

static void
test_compact(void **state)
{
	struct chj_error err;
	char n[32];
	struct arch *a;
	struct arch_entry *v;
	struct arch_run *runs;
	struct got *g = calloc(1, sizeof *g);
	struct arch_want w;
	size_t cnt, i;
	int64_t keep[] = { 2, 3 };

	(void)state;
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	/* run 1 (dropped): kept entries move to run 2 */
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, "user/one", "1", 1, 0, 0600), 0);
	assert_int_equal(arch_run_add_buf(a, "user/drop1", "x", 1, 0, 0600), 0);
	assert_int_equal(arch_run_add_buf(a, "user/conf/seen", "old", 3, 0, 0600), 0);
	assert_int_equal(arch_run_commit(a, "r1", 2, n, sizeof n), 0);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_buf(a, "user/two", "22", 2, 0, 0600), 0);
	assert_int_equal(arch_run_add_buf(a, "user/conf/seen", "new", 3, 0, 0600), 0);
	assert_int_equal(arch_run_add_buf(a, "user/drop2", "y", 1, 0, 0600), 0);
	assert_int_equal(arch_run_commit(a, "r2", 2, n, sizeof n), 0);
	assert_int_equal(arch_run_begin(a), 0);
	assert_int_equal(arch_run_add_symlink(a, "imap/INBOX", "../folders/u1", 0), 0);
	assert_int_equal(arch_run_commit(a, "r3", 2, n, sizeof n), 0);
	arch_close(a);

	assert_int_equal(arch_compact(apath, keep, 2, keep_not_dropped, NULL, &err), 0);
	assert_int_equal(verify_count(apath), 0);
	assert_int_equal(tar_list_count(apath, "user/one"), 6);
	assert_int_equal(arch_open(&a, apath, ARCH_READ, &err), 0);
	assert_int_equal(arch_runs(a, &runs, &cnt), 0);
	assert_int_equal(cnt, 2);
	free(runs);
	assert_int_equal(arch_list(a, "", 0, &v, &cnt), 0);
	{
		const char *want[] = { "imap/INBOX", NULL, NULL, "user/conf/seen", "user/one", "user/two" };

		assert_int_equal(cnt, 6);
		for (i = 0; i < cnt; i++) {
			if (want[i])
				assert_string_equal(v[i].name, want[i]);
			else
				assert_memory_equal(v[i].name, "runs/", 5);
			assert_null(strstr(v[i].name, "drop"));
		}
		assert_int_equal(v[4].run, 1);     /* moved into the first kept run */
		assert_int_equal(v[3].run, 1);
		assert_int_equal(v[0].run, 2);
	}
	arch_entries_free(v, cnt);
	w = (struct arch_want){ 1, "user/conf/seen", NULL };
	assert_int_equal(arch_fetch(a, &w, 1, collect, g), 0);
	assert_int_equal(g->len, 3);
	assert_memory_equal(g->buf, "new", 3);   /* the newest copy wins */
	assert_int_equal(arch_read_manifest(a, 1, (char **)&v, &cnt), 0);
	assert_memory_equal(v, "r2", 2);
	free(v);
	arch_close(a);
	free(g);
	/* nothing kept: an empty archive */
	assert_int_equal(arch_compact(apath, NULL, 0, keep_not_dropped, NULL, &err), 0);
	assert_int_equal(file_size(apath), 0);
	assert_int_equal(runs_count(apath, ARCH_READ), 0);
}

static void
test_odd_names(void **state)
{
	struct chj_error err;
	char n[32], longname[600];
	const char *odd = "imap/user/b\xc3\xa4r/new\nline \xff";
	struct arch *a;
	struct arch_entry e;

	(void)state;
	memset(longname, 'x', sizeof longname);
	memcpy(longname, "folders/", 8);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	assert_int_equal(arch_run_begin(a), 0);
	if (arch_run_add_symlink(a, odd, "../../../folders/x\xfe", 0) < 0)
		fail_msg("add: %s", arch_error(a)->msg);
	assert_int_equal(arch_run_add_buf(a, longname, "d", 1, -1500000000LL, 0600), 0);
	if (arch_run_commit(a, NULL, 0, n, sizeof n) < 0)
		fail_msg("commit: %s", arch_error(a)->msg);
	arch_close(a);
	assert_int_equal(unlink(idx_path()), 0);
	assert_int_equal(arch_reindex(apath, &err), 0);
	assert_int_equal(arch_open(&a, apath, ARCH_READ, &err), 0);
	assert_int_equal(arch_latest(a, odd, 0, &e), 1);
	assert_string_equal(e.target, "../../../folders/x\xfe");
	arch_entry_free(&e);
	assert_int_equal(arch_latest(a, longname, 0, &e), 1);
	assert_int_equal(e.mtime_ns, -1500000000LL);
	arch_entry_free(&e);
	arch_close(a);
	assert_int_equal(verify_count(apath), 0);
	assert_int_equal(tar_list_count(apath, NULL), 3);
}

/* ---- the shared deflate pool (pdeflate.h) ---- */

struct membuf {
	unsigned char *b;
	size_t n, cap;
};

static int
membuf_sink(void *ctx, const void *buf, size_t n)
{
	struct membuf *m = ctx;

	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		assert_non_null(m->b = realloc(m->b, m->cap));
	}
	memcpy(m->b + m->n, buf, n);
	m->n += n;
	return 0;
}

/* n bytes of text-like data (compressible, not trivially), seeded. */
static unsigned char *
pool_data(size_t n, unsigned seed)
{
	unsigned char *d = malloc(n);
	size_t i;

	assert_non_null(d);
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		d[i] = (unsigned char)("abcdefgh ijklmnop\r\n"[(seed >> 16) % 20]);
	}
	return d;
}

/* Starts z inflating the gzip data gz into a new buffer of n + 1 bytes
 * (one more than expected), returned. */
static unsigned char *
inflate_start(z_stream *z, const struct membuf *gz, size_t n)
{
	unsigned char *out = malloc(n + 1);

	assert_non_null(out);
	memset(z, 0, sizeof *z);
	assert_int_equal(inflateInit2(z, 16 + 15), Z_OK);
	z->next_in = gz->b;
	z->avail_in = (uInt)gz->n;
	z->next_out = out;
	z->avail_out = (uInt)n + 1;
	return out;
}

/* Asserts that gz is one gzip member (nothing after it) holding want. */
static void
assert_one_member(const struct membuf *gz, const unsigned char *want, size_t n)
{
	z_stream z;
	unsigned char *out = inflate_start(&z, gz, n);

	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);
	assert_int_equal(z.total_out, n);
	assert_memory_equal(out, want, n);
	inflateEnd(&z);
	free(out);
}

/* Members written at the same time through one pool, chunks of each
 * queued among the others', come out whole and in order, each one gzip
 * member; a compressor freed with chunks still queued leaves the others
 * alone; the pool serves new members after (its buffers reused), with the
 * caller's thread deflating queued chunks beside the workers. */
static void
test_deflate_pool(void **state)
{
	enum { N = 300000, PIECE = 7000 };
	struct pdeflate_pool *pool;
	struct pdeflate *a, *b, *c;
	struct membuf ma = { 0 }, mb = { 0 }, mc = { 0 };
	unsigned char *da = pool_data(N, 1), *db = pool_data(N, 2);
	size_t off;
	int round;

	(void)state;
	assert_int_equal(pdeflate_pool_new(&pool, 6, 2, 4096), 0);
	for (round = 0; round < 2; round++) {
		ma.n = mb.n = mc.n = 0;
		assert_int_equal(pdeflate_new_pooled(&a, pool, membuf_sink, &ma), 0);
		assert_int_equal(pdeflate_new_pooled(&b, pool, membuf_sink, &mb), 0);
		assert_int_equal(pdeflate_new_pooled(&c, pool, membuf_sink, &mc), 0);
		for (off = 0; off < N; off += PIECE) {
			size_t k = N - off < PIECE ? N - off : PIECE;

			assert_int_equal(pdeflate_write(a, da + off, k), 0);
			assert_int_equal(pdeflate_write(c, db + off, k), 0);
			if (off < N / 2)
				assert_int_equal(pdeflate_write(b, db + off, k), 0);
			/* the second time, this thread deflates queued chunks too */
			while (round == 1 && pdeflate_pool_help(pool) == 1)
				;
		}
		/* c dropped with its chunks in the queue among a's and b's */
		pdeflate_free(c);
		assert_int_equal(pdeflate_seal(a), 0);
		for (off = N / 2 + (PIECE - (N / 2) % PIECE) % PIECE; off < N; off += PIECE) {
			size_t k = N - off < PIECE ? N - off : PIECE;

			assert_int_equal(pdeflate_write(b, db + off, k), 0);
		}
		assert_int_equal(pdeflate_finish(b), 0);
		assert_int_equal(pdeflate_finish(a), 0);
		assert_one_member(&ma, da, N);
		assert_one_member(&mb, db, N);
		/* deflated: the data is 20 symbols, under 5 bits each */
		assert_true(ma.n < N * 5 / 8);
		pdeflate_free(a);
		pdeflate_free(b);
		assert_int_equal(pdeflate_pool_help(pool), 0);     /* nothing queued */
	}
	pdeflate_pool_free(pool);
	free(ma.b);
	free(mb.b);
	free(mc.b);
	free(da);
	free(db);
}

/* Deflate blocks in gz's one member (a block's start each time inflate
 * stops for Z_BLOCK), checking that it holds want. */
static size_t
count_blocks(const struct membuf *gz, const unsigned char *want, size_t n)
{
	size_t blocks = 0;
	z_stream z;
	unsigned char *out = inflate_start(&z, gz, n);
	int rc;

	do {
		rc = inflate(&z, Z_BLOCK);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		/* 128: stopped before a block (also once after the gzip header) */
		if (rc == Z_OK && (z.data_type & 128) && z.total_out > 0)
			blocks++;
	} while (rc != Z_STREAM_END);
	assert_int_equal(z.total_out, n);
	assert_memory_equal(out, want, n);
	inflateEnd(&z);
	free(out);
	return blocks;
}

/* Each chunk's deflate ends a block every PDEFLATE_BLOCK bytes (mail's
 * text, headers and base64 each get their own codes), the stream staying
 * one member any gunzip reads; incompressible data (stored blocks, more
 * output than input) comes out whole too. Before, zlib ended a block only
 * when 16k symbols filled its buffer: too few blocks for this. */
static void
test_deflate_blocks(void **state)
{
	enum { N = 1 << 20, R = 300000 };
	struct pdeflate_pool *pool;
	struct pdeflate *p;
	struct membuf m = { 0 };
	unsigned char *text = pool_data(N, 3), *noise = malloc(R);
	unsigned seed = 7;
	size_t i, blocks;

	(void)state;
	assert_non_null(noise);
	for (i = 0; i < R; i++) {
		seed = seed * 1103515245u + 12345u;
		noise[i] = (unsigned char)(seed >> 16);
	}
	assert_int_equal(pdeflate_pool_new(&pool, 6, 2, 128 * 1024), 0);
	assert_int_equal(pdeflate_new_pooled(&p, pool, membuf_sink, &m), 0);
	assert_int_equal(pdeflate_write(p, text, N), 0);
	assert_int_equal(pdeflate_finish(p), 0);
	pdeflate_free(p);
	blocks = count_blocks(&m, text, N);
	assert_true(blocks >= N / PDEFLATE_BLOCK);
	m.n = 0;
	assert_int_equal(pdeflate_new_pooled(&p, pool, membuf_sink, &m), 0);
	assert_int_equal(pdeflate_write(p, noise, R), 0);
	assert_int_equal(pdeflate_finish(p), 0);
	pdeflate_free(p);
	assert_true(m.n > R);
	assert_one_member(&m, noise, R);
	pdeflate_pool_free(pool);
	free(m.b);
	free(text);
	free(noise);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_bad_adds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_and_sidecar_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_hashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal, setup, teardown),
		cmocka_unit_test(test_deflate_pool),
		cmocka_unit_test(test_deflate_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
