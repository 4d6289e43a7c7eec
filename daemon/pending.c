/* pending.c: the in-memory coalescing set (open addressing on path). */
#include <endian.h>
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
	int plain_from_set;     /* this process's first flush wrote plain_from */
};

/* Eight bytes at a time, each word mixed in by a multiply (the constants
 * of MurmurHash3's finalizer): the byte-at-a-time FNV-1a it replaced was
 * 2% of the daemon's CPU on a backlog, one multiply per byte. Only this
 * process's table uses it. */
static uint64_t
hash_path(const char *s)
{
	size_t n = strlen(s);
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 32);
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

/* ---- the flush ----
 *
 * The paths are written in path order: the journal's rows are keyed by
 * path, so each B-tree page is visited once per flush rather than once per
 * path (a backlog's flush of 10,000 paths in hash order read and wrote
 * pages all over the table). The sort compares 32 bytes of each path after
 * the prefix all of them share, kept beside the entry, and the paths
 * themselves only where those are equal: a plain strcmp() sort chased two
 * pointers per comparison (45 ms of a flush of 100,000 paths, now 30).
 *
 * A file written, created or renamed that has more than one link: its name is
 * noted with its inode, so that `list` can find the file's other names even
 * if this one is gone by then (the kernel names only the name written
 * through). One lstat() per such path and flush: on a backlog, a third of
 * the daemon's CPU, so a flush of many paths runs them on a second thread
 * while this one writes the changes (link_probe), in path order too (a
 * directory's names looked up together: a quarter cheaper than in hash
 * order).
 *
 * The same lstat() says whether the path holds a plain file (one link, or a
 * symbolic link): its row then carries JF_PLAIN, and `list` takes that
 * instead of an lstat() of its own, the same one again (for 2,461 changed
 * files, more than half of list's time; on a cold cache a disk read per
 * file). Where the probe runs on its thread, a candidate's row is written
 * with the bit before the probe has answered, and cleared before the
 * commit where it found otherwise (gone, a directory, other links): the
 * common case costs no second write. */

#define FLUSH_KEY_WORDS 4

/* A path's place in the flush. */
struct flush_item {
	uint64_t key[FLUSH_KEY_WORDS];       /* 32 bytes of the path after the prefix, big-endian */
	const struct pending_entry *e;
};

/* The paths are read in slot (hash) order, each a cache miss away: ask for
 * the one this many slots on early. */
#define PREFETCH_AHEAD 16

/* What the probe found of a candidate: the inode of a file with more than
 * one link (ino 0: none), or that it is plain (JF_PLAIN). */
struct link_found {
	uint64_t dev, ino;
	int plain;
};

/* Where the probe stands while the changes are written. */
enum probe_state {
	PROBE_NONE,          /* no memory for the results: each probed in turn */
	PROBE_DONE,          /* all probed before the writes */
	PROBE_RUNNING,       /* on its thread: candidates written as plain */
};

/* The flush's paths: sorted (items), or in slot order when there was no
 * memory to sort (items NULL). */
struct flush_order {
	const struct pending *p;
	struct flush_item *items;
	size_t n;                            /* items, or p->nslots */
	struct link_found *found;            /* one per path (NULL: probed in turn) */
	enum probe_state probe;
};

#define LINK_PROBE_THREAD_MIN 512            /* fewer candidates: no thread */

static int
link_candidate(const struct pending_entry *e)
{
	return e->path != NULL && !(e->flags & JF_DIR) &&
	    (e->flags & (JF_MODIFIED | JF_ATTRIB | JF_CREATED | JF_RENAMED));
}

/* The i-th path of the flush (an empty slot in slot order). */
static const struct pending_entry *
entry_at(const struct flush_order *o, size_t i)
{
	return o->items != NULL ? o->items[i].e : &o->p->slots[i];
}

/* The length of the prefix every path of p shares. */
static size_t
common_prefix(const struct pending *p)
{
	const char *first = NULL;
	size_t i, len = 0;

	for (i = 0; i < p->nslots; i++) {
		const char *s = p->slots[i].path;
		size_t k;

		if (i + PREFETCH_AHEAD < p->nslots && p->slots[i + PREFETCH_AHEAD].path != NULL)
			__builtin_prefetch(p->slots[i + PREFETCH_AHEAD].path);
		if (s == NULL)
			continue;
		if (first == NULL) {
			first = s;
			len = strlen(s);
			continue;
		}
		for (k = 0; k < len && s[k] == first[k]; k++)
			;
		len = k;
	}
	return len;
}

/* The 32 bytes of path after prefix (zeros past its end), as numbers that
 * compare as the bytes do. */
static void
path_key(const char *path, size_t prefix, uint64_t key[FLUSH_KEY_WORDS])
{
	unsigned char bytes[FLUSH_KEY_WORDS * 8] = { 0 };
	const char *s = path + prefix;
	int i;

	memcpy(bytes, s, strnlen(s, sizeof bytes));
	for (i = 0; i < FLUSH_KEY_WORDS; i++) {
		uint64_t be;

		memcpy(&be, bytes + 8 * i, 8);
		key[i] = be64toh(be);
	}
}

/* Equal keys: the two paths share the 32 bytes after the prefix, none of
 * them the end (paths are distinct), so strcmp() decides as on the paths. */
static int
by_key(const void *a, const void *b)
{
	const struct flush_item *x = a, *y = b;
	int i;

	for (i = 0; i < FLUSH_KEY_WORDS; i++)
		if (x->key[i] != y->key[i])
			return x->key[i] < y->key[i] ? -1 : 1;
	return strcmp(x->e->path, y->e->path);
}

/* o's items: p's paths in path order (items NULL without the memory). */
static void
order_paths(struct flush_order *o, const struct pending *p)
{
	size_t i, prefix, n = 0;

	o->p = p;
	o->n = p->nslots;
	if ((o->items = malloc((p->used + 1) * sizeof *o->items)) == NULL)
		return;
	prefix = common_prefix(p);
	for (i = 0; i < p->nslots; i++) {
		if (i + PREFETCH_AHEAD < p->nslots && p->slots[i + PREFETCH_AHEAD].path != NULL)
			__builtin_prefetch(p->slots[i + PREFETCH_AHEAD].path + prefix);
		if (p->slots[i].path == NULL)
			continue;
		path_key(p->slots[i].path, prefix, o->items[n].key);
		o->items[n].e = &p->slots[i];
		n++;
	}
	qsort(o->items, n, sizeof *o->items, by_key);
	o->n = n;
}

/* Fills *found when e is a candidate: plain, or with more than one link. */
static void
link_probe_one(const struct pending_entry *e, struct link_found *found)
{
	struct stat st;

	if (!link_candidate(e) || lstat(e->path, &st) < 0)
		return;
	if (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink < 2)) {
		found->plain = 1;
	} else if (S_ISREG(st.st_mode)) {
		found->dev = (uint64_t)st.st_dev;
		found->ino = (uint64_t)st.st_ino;
	}
}

static void *
link_probe_run(void *arg)
{
	struct flush_order *o = arg;
	size_t i;

	for (i = 0; i < o->n; i++)
		link_probe_one(entry_at(o, i), &o->found[i]);
	return NULL;
}

/* (in slot order: the count is the same, and the slots are read in turn) */
static size_t
count_candidates(const struct pending *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->nslots; i++)
		n += link_candidate(&p->slots[i]);
	return n;
}

/* JF_PLAIN as the i-th path's row is first written (see above). */
static unsigned
plain_as_written(const struct flush_order *o, size_t i)
{
	switch (o->probe) {
	case PROBE_DONE:
		return o->found[i].plain ? JF_PLAIN : 0;
	case PROBE_RUNNING:
		return link_candidate(entry_at(o, i)) ? JF_PLAIN : 0;
	case PROBE_NONE:
		break;
	}
	return 0;
}

static int
write_changes(const struct flush_order *o, struct journal *j, int64_t now)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		const struct pending_entry *e = entry_at(o, i);

		if (o->items != NULL && i + PREFETCH_AHEAD < o->n)
			__builtin_prefetch(o->items[i + PREFETCH_AHEAD].e->path);
		if (e->path != NULL &&
		    journal_batch_change(j, e->path, e->flags | plain_as_written(o, i), now) < 0)
			return -1;
	}
	return 0;
}

/* The names of the multiply-linked files, probed (o->found) or probed now;
 * JF_PLAIN taken off where it was written ahead of the probe and wrongly. */
static int
write_links(const struct flush_order *o, struct journal *j)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		const struct pending_entry *e = entry_at(o, i);
		struct link_found one = { 0, 0, 0 };
		const struct link_found *f = o->found != NULL ? &o->found[i] : &one;

		if (o->found == NULL)
			link_probe_one(e, &one);
		if (f->ino != 0 && journal_batch_link(j, e->path, f->dev, f->ino) < 0)
			return -1;
		if (o->probe == PROBE_RUNNING && link_candidate(e) && !f->plain &&
		    journal_batch_plain_clear(j, e->path) < 0)
			return -1;
	}
	return 0;
}

/* A directory moved away, replaced or gone takes the names below it along
 * without an event for each: the marks of the rows below such a path no
 * longer say what is at those names. Only a directory has names below it,
 * and every event of one says JF_DIR (each backend takes it from the
 * kernel's IN_ISDIR or FAN_ONDIR, a mount's JF_REPLACED holds it, and the
 * flags of a path's events are a union), so a file's deletion or rename
 * costs no seek: with one for every JF_REPLACED entry, a backlog of 100,000
 * deletions drained at 0.85 (fanotify) and 0.75 (inotify) of the speed
 * before the marks (make bench-drain, DRAIN_OP=remove). A path that was a
 * directory once and is a file now had its marks below cleared by the
 * event that took the directory away. */
static int
clear_plain_below(const struct flush_order *o, struct journal *j)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		const struct pending_entry *e = entry_at(o, i);

		if (e->path != NULL && (e->flags & JF_DIR) &&
		    journal_batch_plain_clear_below(j, e->path) < 0)
			return -1;
	}
	return 0;
}

/* The seqs of this flush are the daemon's to vouch for (journal_plain_window):
 * from its first flush on, to this one. */
static int
write_plain_window(struct pending *p, struct journal *j, int64_t first_seq)
{
	if (!p->plain_from_set && journal_meta_set_int(j, "plain_from", first_seq) < 0)
		return -1;
	return journal_meta_set_int(j, "plain_upto", journal_batch_seq(j));
}

int
pending_flush(struct pending *p, struct journal *j, int64_t prune_seq,
    int64_t now, int64_t last_flush, const char *const *meta_keys,
    const int64_t *meta_values)
{
	struct flush_order o = { NULL, NULL, 0, NULL, PROBE_NONE };
	size_t i;
	pthread_t prober;
	int threaded = 0, rc = -1;
	int64_t first_seq;

	order_paths(&o, p);
	/* (without memory for the results, each is probed in turn below) */
	if (o.n > 0 && (o.found = calloc(o.n, sizeof *o.found)) != NULL &&
	    count_candidates(p) >= LINK_PROBE_THREAD_MIN)
		threaded = pthread_create(&prober, NULL, link_probe_run, &o) == 0;
	if (!threaded && o.found != NULL)
		link_probe_run(&o);
	o.probe = threaded ? PROBE_RUNNING : o.found != NULL ? PROBE_DONE : PROBE_NONE;
	if (journal_batch_begin(j, prune_seq) < 0)
		goto cleanup;
	first_seq = journal_batch_seq(j) + 1;
	if (write_changes(&o, j, now) < 0)
		goto fail;
	if (threaded) {
		pthread_join(prober, NULL);
		threaded = 0;
	}
	if (write_links(&o, j) < 0 || clear_plain_below(&o, j) < 0)
		goto fail;
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
	if (journal_meta_set_int(j, "last_flush", last_flush) < 0 ||
	    write_plain_window(p, j, first_seq) < 0)
		goto fail;
	for (i = 0; meta_keys != NULL && meta_keys[i] != NULL; i++)
		if (journal_meta_set_int(j, meta_keys[i], meta_values[i]) < 0)
			goto fail;
	if (journal_batch_commit(j) < 0)
		goto cleanup;
	p->plain_from_set = 1;
	rc = 0;
	goto cleanup;
fail:
	journal_batch_rollback(j);
cleanup:
	if (threaded)
		pthread_join(prober, NULL);
	free(o.found);
	free(o.items);
	if (rc == 0)
		clear_all(p);
	return rc;
}
