/* pending.c: the in-memory coalescing set (open addressing on path). */
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

#include "journal.h"
#include "pending.h"

struct pending_entry {
	char *path;         /* NULL: empty slot */
	uint64_t hash;      /* hash_path(path): probes compare it first */
	unsigned flags;
};

struct pending_rescan {
	char *path;
	int64_t since;
	char *reason;
};

struct pending {
	struct pending_entry *slots;
	size_t nslots, used;
	struct pending_rescan *rescans;
	size_t nrescans, caprescans;
	char **cookies;
	size_t ncookies, capcookies;
	int64_t oldest;
};

static uint64_t
hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct pending *
pending_new(void)
{
	return calloc(1, sizeof(struct pending));
}

static void
note_time(struct pending *p)
{
	if (p->oldest == 0)
		p->oldest = (int64_t)time(NULL);
}

static int
grow(struct pending *p)
{
	size_t ns = p->nslots ? p->nslots * 2 : 1024, i;
	struct pending_entry *na = calloc(ns, sizeof *na);

	if (na == NULL)
		return -1;
	for (i = 0; i < p->nslots; i++) {
		size_t k;

		if (p->slots[i].path == NULL)
			continue;
		k = p->slots[i].hash & (ns - 1);
		while (na[k].path != NULL)
			k = (k + 1) & (ns - 1);
		na[k] = p->slots[i];
	}
	free(p->slots);
	p->slots = na;
	p->nslots = ns;
	return 0;
}

int
pending_change(struct pending *p, const char *path, unsigned flags)
{
	uint64_t h = hash_path(path);
	size_t k;

	if ((p->used + 1) * 4 > p->nslots * 3 && grow(p) < 0)
		return -1;
	k = h & (p->nslots - 1);
	while (p->slots[k].path != NULL) {
		if (p->slots[k].hash == h && strcmp(p->slots[k].path, path) == 0) {
			p->slots[k].flags |= flags;
			return 0;
		}
		k = (k + 1) & (p->nslots - 1);
	}
	if ((p->slots[k].path = strdup(path)) == NULL)
		return -1;
	p->slots[k].hash = h;
	p->slots[k].flags = flags;
	p->used++;
	note_time(p);
	return 0;
}

int
pending_rescan(struct pending *p, const char *path, int64_t since, const char *reason)
{
	size_t i;

	for (i = 0; i < p->nrescans; i++) {
		if (strcmp(p->rescans[i].path, path) == 0) {
			if (since < p->rescans[i].since)
				p->rescans[i].since = since;
			return 0;
		}
	}
	if (p->nrescans == p->caprescans) {
		size_t nc = p->caprescans ? p->caprescans * 2 : 16;
		struct pending_rescan *na = realloc(p->rescans, nc * sizeof *na);

		if (na == NULL)
			return -1;
		p->rescans = na;
		p->caprescans = nc;
	}
	p->rescans[p->nrescans].path = strdup(path);
	p->rescans[p->nrescans].reason = strdup(reason);
	if (p->rescans[p->nrescans].path == NULL || p->rescans[p->nrescans].reason == NULL) {
		free(p->rescans[p->nrescans].path);
		free(p->rescans[p->nrescans].reason);
		return -1;
	}
	p->rescans[p->nrescans].since = since;
	p->nrescans++;
	note_time(p);
	return 0;
}

int
pending_cookie(struct pending *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->ncookies; i++)
		if (strcmp(p->cookies[i], name) == 0)
			return 0;
	if (p->ncookies == p->capcookies) {
		size_t nc = p->capcookies ? p->capcookies * 2 : 8;
		char **na = realloc(p->cookies, nc * sizeof *na);

		if (na == NULL)
			return -1;
		p->cookies = na;
		p->capcookies = nc;
	}
	if ((p->cookies[p->ncookies] = strdup(name)) == NULL)
		return -1;
	p->ncookies++;
	note_time(p);
	return 0;
}

size_t
pending_count(const struct pending *p)
{
	return p->used + p->nrescans + p->ncookies;
}

int
pending_has_cookies(const struct pending *p)
{
	return p->ncookies > 0;
}

int64_t
pending_oldest(const struct pending *p)
{
	return p->oldest;
}

void
pending_drop_changes(struct pending *p)
{
	size_t i;

	for (i = 0; i < p->nslots; i++) {
		free(p->slots[i].path);
		p->slots[i].path = NULL;
	}
	p->used = 0;
}

static void
clear_all(struct pending *p)
{
	size_t i;

	pending_drop_changes(p);
	for (i = 0; i < p->nrescans; i++) {
		free(p->rescans[i].path);
		free(p->rescans[i].reason);
	}
	p->nrescans = 0;
	for (i = 0; i < p->ncookies; i++)
		free(p->cookies[i]);
	p->ncookies = 0;
	p->oldest = 0;
}

void
pending_free(struct pending *p)
{
	if (p == NULL)
		return;
	clear_all(p);
	free(p->slots);
	free(p->rescans);
	free(p->cookies);
	free(p);
}

/* A file written, created or renamed that has more than one link: its name is
 * noted with its inode, so that `list` can find the file's other names even
 * if this one is gone by then (the kernel names only the name written
 * through). One lstat() per such path and flush: on a backlog, a quarter of
 * the daemon's time, so a flush of many paths runs them on a second thread
 * while this one writes the changes (link_probe). */
static int
link_candidate(const struct pending_entry *e)
{
	return e->path != NULL && !(e->flags & JF_DIR) &&
	    (e->flags & (JF_MODIFIED | JF_ATTRIB | JF_CREATED | JF_RENAMED));
}

/* The inode of a candidate found with more than one link (ino 0: none). */
struct link_found {
	uint64_t dev, ino;
};

struct link_probe {
	const struct pending *p;
	struct link_found *found;            /* one per slot */
};

#define LINK_PROBE_THREAD_MIN 512            /* fewer candidates: no thread */

/* Fills *found when e is a candidate with more than one link. */
static void
link_probe_one(const struct pending_entry *e, struct link_found *found)
{
	struct stat st;

	if (link_candidate(e) && lstat(e->path, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_nlink >= 2) {
		found->dev = (uint64_t)st.st_dev;
		found->ino = (uint64_t)st.st_ino;
	}
}

static void *
link_probe_run(void *arg)
{
	struct link_probe *lp = arg;
	size_t i;

	for (i = 0; i < lp->p->nslots; i++)
		link_probe_one(&lp->p->slots[i], &lp->found[i]);
	return NULL;
}

static size_t
count_candidates(const struct pending *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->nslots; i++)
		n += link_candidate(&p->slots[i]);
	return n;
}

static int
by_path(const void *a, const void *b)
{
	return strcmp((*(const struct pending_entry *const *)a)->path,
	    (*(const struct pending_entry *const *)b)->path);
}

/* Writes every path's change, in path order: the journal's rows are keyed by
 * path, so each B-tree page is visited once per flush rather than once per
 * path (a backlog's flush of 10,000 paths in hash order read and wrote
 * pages all over the table). */
static int
write_changes(const struct pending *p, struct journal *j, int64_t now)
{
	const struct pending_entry **order;
	size_t i, n = 0;
	int rc = 0;

	if ((order = malloc((p->used + 1) * sizeof *order)) == NULL) {
		/* no memory to sort: in slot order */
		for (i = 0; i < p->nslots && rc == 0; i++)
			if (p->slots[i].path != NULL)
				rc = journal_batch_change(j, p->slots[i].path, p->slots[i].flags, now);
		return rc;
	}
	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].path != NULL)
			order[n++] = &p->slots[i];
	qsort(order, n, sizeof *order, by_path);
	for (i = 0; i < n && rc == 0; i++)
		rc = journal_batch_change(j, order[i]->path, order[i]->flags, now);
	free(order);
	return rc;
}

int
pending_flush(struct pending *p, struct journal *j, int64_t prune_seq,
    int64_t now, int64_t last_flush, const char *const *meta_keys,
    const int64_t *meta_values)
{
	struct link_probe lp = { p, NULL };
	size_t i;
	pthread_t prober;
	int threaded = 0;

	/* (without memory for the results, each is probed in turn below) */
	if (p->nslots > 0 && (lp.found = calloc(p->nslots, sizeof *lp.found)) != NULL &&
	    count_candidates(p) >= LINK_PROBE_THREAD_MIN)
		threaded = pthread_create(&prober, NULL, link_probe_run, &lp) == 0;
	if (!threaded && lp.found != NULL)
		link_probe_run(&lp);
	if (journal_batch_begin(j, prune_seq) < 0)
		goto fail_probe;
	if (write_changes(p, j, now) < 0)
		goto fail;
	if (threaded) {
		pthread_join(prober, NULL);
		threaded = 0;
	}
	for (i = 0; i < p->nslots; i++) {
		struct link_found one = { 0, 0 };
		const struct link_found *f = lp.found != NULL ? &lp.found[i] : &one;

		if (lp.found == NULL)
			link_probe_one(&p->slots[i], &one);
		if (f->ino != 0 && journal_batch_link(j, p->slots[i].path, f->dev, f->ino) < 0)
			goto fail;
	}
	for (i = 0; i < p->nrescans; i++) {
		if (journal_batch_rescan(j, p->rescans[i].path, p->rescans[i].since,
		    p->rescans[i].reason, now) < 0)
			goto fail;
	}
	/* cookies last: a cookie's seq is after every change read before it */
	for (i = 0; i < p->ncookies; i++) {
		if (journal_batch_cookie(j, p->cookies[i], now) < 0)
			goto fail;
	}
	if (journal_meta_set_int(j, "last_flush", last_flush) < 0)
		goto fail;
	for (i = 0; meta_keys != NULL && meta_keys[i] != NULL; i++)
		if (journal_meta_set_int(j, meta_keys[i], meta_values[i]) < 0)
			goto fail;
	if (journal_batch_commit(j) < 0)
		goto fail_probe;
	free(lp.found);
	clear_all(p);
	return 0;
fail:
	journal_batch_rollback(j);
fail_probe:
	if (threaded)
		pthread_join(prober, NULL);
	free(lp.found);
	return -1;
}
