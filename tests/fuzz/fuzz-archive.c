/* fuzz-archive.c: libFuzzer target for the archive reader (common/archive).
 * The input is written to a private temp directory as X.tar.gz (mode 0600),
 * then: arch_open(ARCH_READ) (which builds the sidecar X.idx, on disk or in
 * memory), arch_runs, arch_list of everything, arch_fetch of every entry
 * (data read to the end and counted), arch_read_manifest of every run, and
 * arch_verify with a problem callback and a folders/ data callback. Every
 * file is removed after each input. No crash, no leak, no UB; each problem
 * and error is one non-empty line; a fetched file yields exactly its size. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/archive.h"

#define CHECK(cond)                                                                 \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "fuzz-archive: check failed: %s\n", #cond); \
			abort();                                                    \
		}                                                                   \
	} while (0)

static char dir[64];
static char path[128];

static void
one_line(const char *msg)
{
	CHECK(msg != NULL && msg[0] != '\0' && strchr(msg, '\n') == NULL);
}

static void
problem(void *ctx, int is_problem, const char *msg)
{
	one_line(msg);
	if (is_problem)                          /* a note is not a problem */
		(*(int *)ctx)++;
}

static int
entry_data(void *ctx, const struct arch_entry *e, const void *data, size_t len)
{
	(void)ctx;
	CHECK(e != NULL && e->name != NULL);
	CHECK(len == 0 || data != NULL);
	return 0;
}

/* Reads a wanted entry's data to the end; a regular file gives its size. */
static int
fetch_cb(void *cbctx, const struct arch_want *w, const struct arch_entry *e,
    struct arch_stream *s, struct chj_error *err)
{
	char buf[4096];
	uint64_t total = 0;
	ssize_t n;

	(void)cbctx;
	(void)err;
	CHECK(e != NULL && strcmp(e->name, w->name) == 0);
	while ((n = arch_stream_read(s, buf, sizeof buf)) > 0)
		total += (uint64_t)n;
	if (n == 0 && e->kind == ARCH_KIND_FILE)
		CHECK(total == e->size);
	return 0;
}

/* Removes every file in dir (the archive, its sidecar, journals, temps). */
static void
clean_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
exercise(void)
{
	struct arch *a = NULL;
	struct arch_run *runs = NULL;
	struct arch_entry *v = NULL;
	struct arch_want *w = NULL;
	struct chj_error err;
	char *man;
	size_t nruns = 0, n = 0, i, mlen;
	int problems = 0, rc;

	if (arch_open(&a, path, ARCH_READ, &err) < 0) {
		one_line(err.msg);
		return;
	}
	if (arch_runs(a, &runs, &nruns) < 0)
		one_line(arch_error(a)->msg);
	for (i = 0; i < nruns; i++) {
		CHECK(runs[i].offset < runs[i].end);
		man = NULL;
		if (arch_read_manifest(a, runs[i].id, &man, &mlen) < 0)
			one_line(arch_error(a)->msg);
		free(man);
	}
	if (arch_list(a, "", 0, &v, &n) == 0) {
		w = calloc(n ? n : 1, sizeof *w);
		CHECK(w != NULL);
		for (i = 0; i < n; i++) {
			w[i].run = v[i].run;
			w[i].name = v[i].name;
			CHECK(arch_has(a, v[i].name) == 1);
		}
		if (arch_fetch(a, w, n, fetch_cb, NULL) < 0)
			one_line(arch_error(a)->msg);
		free(w);
		arch_entries_free(v, n);
	} else {
		one_line(arch_error(a)->msg);
	}
	free(runs);
	arch_close(a);
	chj_error_clear(&err);
	rc = arch_verify(path, problem, entry_data, &problems, &err);
	if (rc < 0)
		one_line(err.msg);
	else
		CHECK(rc == problems);
}

static void
remove_dir(void)
{
	clean_dir();
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f;

	if (dir[0] == '\0') {
		/* tmpfs when there is one: the sidecar is fsynced for every input */
		snprintf(dir, sizeof dir, "%s/fuzz-archive.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(path, sizeof path, "%s/X.tar.gz", dir);
		atexit(remove_dir);
	}
	f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	if (fwrite(data, 1, size, f) != size) {
		fclose(f);
		clean_dir();
		return 0;
	}
	fclose(f);
	exercise();
	clean_dir();
	return 0;
}
