/* mountwatch.c: the mount table as a source of changes (mountwatch.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "config.h"
#include "journal.h"
#include "mounts.h"
#include "mountwatch.h"

struct mountwatch {
	int fd;
	struct mount_table table;
};

/* The paths a comparison found, collected so each is reported once. */
struct found {
	char **v;
	size_t n, cap;
};

struct mountwatch *
mountwatch_new(struct chj_error *e)
{
	struct mountwatch *mw = calloc(1, sizeof *mw);

	if (mw == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return NULL;
	}
	mw->fd = open(MOUNTS_FILE, O_RDONLY | O_CLOEXEC);
	if (mw->fd < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot open '%s'", MOUNTS_FILE);
		free(mw);
		return NULL;
	}
	return mw;
}

void
mountwatch_free(struct mountwatch *mw)
{
	if (mw == NULL)
		return;
	mount_table_free(&mw->table);
	if (mw->fd >= 0)
		close(mw->fd);
	free(mw);
}

int
mountwatch_fd(const struct mountwatch *mw)
{
	return mw->fd;
}

static int
collect(void *ctx, const char *path)
{
	struct found *f = ctx;
	char **nv = array_grow(f->v, f->n, &f->cap, sizeof *nv, 8);

	if (nv == NULL || (nv[f->n] = strdup(path)) == NULL) {
		f->v = nv ? nv : f->v;
		return -1;
	}
	f->v = nv;
	f->n++;
	return 0;
}

/* Compares root's state now with the one recorded, collecting the changed
 * paths, and records the state now. A root never recorded is recorded. */
static int
root_changes(struct mountwatch *mw, struct journal *j, const char *root, struct found *f,
    struct chj_error *e)
{
	char *key = NULL, *old = NULL, *now = NULL;
	int rc = -1, got;

	if ((key = malloc(strlen(root) + 8)) == NULL || (now = mount_table_state(&mw->table, root)) == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto done;
	}
	sprintf(key, "mounts:%s", root);
	if ((got = journal_meta_get_text(j, key, &old)) < 0) {
		*e = *journal_error(j);
		goto done;
	}
	if (got == 0 && strcmp(old, now) == 0) {
		rc = 0;
		goto done;
	}
	if (got == 0 && mount_state_diff(root, old, now, collect, f) < 0) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto done;
	}
	if (journal_meta_set_text(j, key, now) < 0) {
		*e = *journal_error(j);
		goto done;
	}
	rc = 0;
done:
	free(key);
	free(old);
	free(now);
	return rc;
}

/* Compares every root, then reports each changed path once. */
static int
compare_roots(struct mountwatch *mw, const struct config *cfg, struct journal *j,
    mountwatch_fn fn, void *ctx, struct chj_error *e)
{
	struct found f = { NULL, 0, 0 };
	size_t i;
	int rc = 0;

	for (i = 0; i < cfg->nroots && rc == 0; i++)
		rc = root_changes(mw, j, cfg->roots[i], &f, e);
	f.n = array_sort_unique_strings(f.v, f.n);
	for (i = 0; i < f.n; i++) {
		if (rc == 0 && fn(ctx, f.v[i]) < 0) {
			rc = chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		}
		free(f.v[i]);
	}
	free(f.v);
	return rc < 0 ? -1 : (int)f.n;
}

int
mountwatch_compare(struct mountwatch *mw, const struct config *cfg, struct journal *j,
    mountwatch_fn fn, void *ctx, struct chj_error *e)
{
	if (mount_table_read(&mw->table, mw->fd) < 0) {
		*e = mw->table.err;
		return -1;
	}
	return compare_roots(mw, cfg, j, fn, ctx, e);
}
