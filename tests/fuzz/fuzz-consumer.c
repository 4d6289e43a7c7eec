/* fuzz-consumer.c: libFuzzer target for consumer cursor files.
 *
 * The input becomes the cursor file of consumer "fz" in a private consumers
 * directory (under $TMPDIR, /dev/shm when it exists: consumer_save() fsyncs).
 * consumer_load() must never crash or leak; when it accepts the file, the
 * state must survive consumer_save() + consumer_load() unchanged (an empty
 * journal id is written as 32 zeros; a run id and a floor only when set), and consumers_prune_point() must agree
 * with the loaded state. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consumer.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz-consumer: check failed: %s\n", #cond); \
			abort();                                               \
		}                                                              \
	} while (0)

static char dir[4096];
static char file[4200];

static void
cleanup(void)
{
	char p[4200];

	unlink(file);
	snprintf(p, sizeof p, "%s/.fz.tmp", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/.lock", dir);
	unlink(p);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	(void)argc;
	(void)argv;
	if (tmp == NULL || *tmp == '\0')
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof dir, "%s/chj-fuzz-consumer.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "fuzz-consumer: mkdtemp %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	snprintf(file, sizeof file, "%s/fz", dir);
	atexit(cleanup);
	return 0;
}

static void
expect_id(const char *got, const char *loaded)
{
	if (loaded[0] == '\0')
		CHECK(strcmp(got, "00000000000000000000000000000000") == 0);
	else
		CHECK(strcmp(got, loaded) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct consumers cs;
	struct consumer_state st, st2;
	int fd, rc;
	int64_t prune;

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size)) {
		fprintf(stderr, "fuzz-consumer: cannot write %s: %s\n", file, strerror(errno));
		abort();
	}
	close(fd);

	CHECK(consumers_open(&cs, dir, 0) == 0);
	rc = consumer_load(&cs, "fz", &st);
	CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		CHECK(cs.err.code != CHJ_OK && cs.err.msg[0] != '\0');
		CHECK(memchr(cs.err.msg, '\0', sizeof cs.err.msg) != NULL);
		/* an unreadable cursor must stop pruning */
		CHECK(consumers_prune_point(&cs, "00000000000000000000000000000000", &prune) == -1);
		consumers_close(&cs);
		return 0;
	}
	CHECK(strlen(st.committed_journal_id) == 0 || strlen(st.committed_journal_id) == 32);
	CHECK(strlen(st.open_journal_id) == 0 || strlen(st.open_journal_id) == 32);

	/* round trip */
	CHECK(consumers_lock(&cs) == 0);
	CHECK(consumer_save(&cs, "fz", &st) == 0);
	consumers_unlock(&cs);
	CHECK(consumer_load(&cs, "fz", &st2) == 0);
	CHECK(st2.has_committed == st.has_committed);
	expect_id(st2.committed_journal_id, st.committed_journal_id);
	CHECK(st2.committed_seq == st.committed_seq);
	CHECK(st2.committed_time == st.committed_time);
	CHECK(st2.commit_time == st.commit_time);
	CHECK(st2.has_open == st.has_open);
	expect_id(st2.open_journal_id, st.open_journal_id);
	CHECK(st2.open_seq == st.open_seq);
	CHECK(st2.open_time == st.open_time);
	CHECK(st2.open_full == st.open_full);
	CHECK(st2.open_after_seq == st.open_after_seq);
	CHECK(strcmp(st2.open_run_id, st.open_run_id) == 0);
	CHECK(strcmp(st2.floor_journal_id, st.floor_journal_id) == 0);
	if (st.floor_journal_id[0] != '\0') {
		CHECK(st2.floor_seq == st.floor_seq);
		CHECK(st2.floor_time == st.floor_time);
	}

	/* the prune point on the committed journal id follows the cursor */
	if (st2.committed_journal_id[0] != '\0') {
		int64_t want = 0;
		int any = 0;

		if (st2.has_committed) {
			want = st2.committed_seq;
			any = 1;
		}
		if (st2.has_open) {
			/* an open run constrains at its commit point: its floor
			 * (kept from a run it took over), else its own begin */
			const char *fj = st2.floor_journal_id[0] ? st2.floor_journal_id : st2.open_journal_id;
			int64_t fs = st2.floor_journal_id[0] ? st2.floor_seq : st2.open_seq;

			if (strcmp(fj, st2.committed_journal_id) == 0 && (!any || fs < want)) {
				want = fs;
				any = 1;
			}
		}
		CHECK(consumers_prune_point(&cs, st2.committed_journal_id, &prune) == 0);
		CHECK(prune == (any ? want : 0));
	}
	consumers_close(&cs);
	return 0;
}
