/* test-watchcore.c: the watcher core's policy (daemon/watch.c) with scripted
 * backends in place of inotify and fanotify: what a lost path, a retry, a
 * sync cookie, a queue overflow and a held-back drain make it record, once,
 * whichever backend delivers them, and what a restart in place hands over. The two ops tables watch.c picks from
 * are defined here; "fanotify" refuses to open unless told, so auto falls
 * back to "inotify" as on a machine without it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "statebuf.h"
#include "watch.h"
#include "watch-backend.h"
#include "unit-tmp.h"

/* ---- what the core records (the sink) ---- */

#define MAX_SEEN 256

struct record {
	char kind;                 /* 'c' change, 'r' rescan, 'k' cookie */
	char path[256];
	unsigned flags;
	int64_t since;
	char why[128];
};

static struct record seen[MAX_SEEN];
static int nseen;

static struct record *
add_record(char kind, const char *path)
{
	struct record *r;

	assert_true(nseen < MAX_SEEN);
	r = &seen[nseen++];
	memset(r, 0, sizeof *r);
	r->kind = kind;
	snprintf(r->path, sizeof r->path, "%s", path);
	return r;
}

static int
sink_change(void *ctx, const char *path, unsigned flags)
{
	(void)ctx;
	add_record('c', path)->flags = flags;
	return 0;
}

static int
sink_rescan(void *ctx, const char *path, int64_t since, const char *why)
{
	struct record *r = add_record('r', path);

	(void)ctx;
	r->since = since;
	snprintf(r->why, sizeof r->why, "%s", why);
	return 0;
}

static int
sink_cookie(void *ctx, const char *name)
{
	(void)ctx;
	add_record('k', name);
	return 0;
}

static const struct watcher_sink sink = { NULL, sink_change, sink_rescan, sink_cookie, NULL };

static int
count(char kind, const char *path)
{
	int i, n = 0;

	for (i = 0; i < nseen; i++)
		if (seen[i].kind == kind && (path == NULL || strcmp(seen[i].path, path) == 0))
			n++;
	return n;
}

static const struct record *
last(char kind, const char *path)
{
	int i;

	for (i = nseen - 1; i >= 0; i--)
		if (seen[i].kind == kind && strcmp(seen[i].path, path) == 0)
			return &seen[i];
	return NULL;
}

/* ---- the scripted backend ---- */

struct watcher_impl {
	struct watch_core *core;
	int watch_answer;          /* what watch() returns for a path below a root */
	int root_answer;           /* ... and for a root */
	int watches, resyncs, overflow_in_resync;
	time_t hold;               /* what read() and idle() say is held back */
	const char *deliver;       /* a change read() delivers, or NULL */
	int overflow_on_read;
	int fd;                    /* adopt(): the descriptor handed over */
};

static struct watcher_impl *backend;   /* the one open */
static int fanotify_opens;             /* fanotify_open accepts when set */

static struct watcher_impl *
script_open(const struct config *cfg, struct watch_core *core, struct chj_error *e)
{
	struct watcher_impl *w = calloc(1, sizeof *w);

	(void)cfg;
	(void)e;
	w->core = core;
	w->watch_answer = w->root_answer = 1;
	backend = w;
	return w;
}

static struct watcher_impl *
fanotify_open(const struct config *cfg, struct watch_core *core, struct chj_error *e)
{
	if (!fanotify_opens) {
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "fanotify refused (scripted)");
		return NULL;
	}
	return script_open(cfg, core, e);
}

static void
script_close(struct watcher_impl *w)
{
	free(w);
	backend = NULL;
}

static int
script_watch(struct watcher_impl *w, const char *path, int is_root)
{
	int answer = is_root ? w->root_answer : w->watch_answer;

	w->watches++;
	if (answer == 0)
		watch_core_lost(w->core, path, "directory not watched", ENOSPC);
	return answer;
}

static void
script_unwatch(struct watcher_impl *w, const char *root)
{
	(void)w;
	(void)root;
}

static void
script_resync(struct watcher_impl *w)
{
	w->resyncs++;
	if (w->overflow_in_resync)
		watch_core_overflow(w->core);      /* must not nest */
}

static int
script_fd(const struct watcher_impl *w)
{
	(void)w;
	return -1;
}

static int
script_read(struct watcher_impl *w, struct watch_read *r, struct chj_error *e)
{
	(void)e;
	if (w->overflow_on_read) {
		r->events++;
		watch_core_overflow(w->core);
	}
	if (w->deliver != NULL) {
		r->events++;
		watch_core_change(w->core, w->deliver, JF_CREATED);
	}
	r->emptied = 1;
	r->hold = w->hold;
	return 0;
}

static void
script_idle(struct watcher_impl *w, struct watch_read *r)
{
	r->hold = w->hold;
}

static unsigned long
script_watches(const struct watcher_impl *w)
{
	return (unsigned long)w->watches;
}

static void
script_set_config(struct watcher_impl *w, const struct config *cfg)
{
	(void)w;
	(void)cfg;
}

static void
script_show_progress(struct watcher_impl *w, int on)
{
	(void)w;
	(void)on;
}

/* The hand-over: a marker and the watch count. */
static void
script_save(struct watcher_impl *w, struct statebuf *b)
{
	statebuf_put_u32(b, 0x5c41);
	statebuf_put_u32(b, (uint32_t)w->watches);
}

static struct watcher_impl *
script_adopt(const struct config *cfg, struct watch_core *core, int fd, struct statebuf *b,
    struct chj_error *e)
{
	struct watcher_impl *nw;
	uint32_t marker = statebuf_get_u32(b), watches = statebuf_get_u32(b);

	if (statebuf_status(b) < 0 || marker != 0x5c41) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "scripted state refused");
		return NULL;
	}
	nw = script_open(cfg, core, e);
	nw->watches = (int)watches;
	nw->fd = fd;
	return nw;
}

const struct watcher_ops watcher_inotify_ops = {
	.name = "inotify", .watch_unit = "directories watched",
	.queue_sysctl = "fs.inotify.max_queued_events",
	.open = script_open, .close = script_close, .watch = script_watch,
	.unwatch = script_unwatch, .resync = script_resync, .fd = script_fd,
	.read = script_read, .idle = script_idle, .watches = script_watches,
	.set_config = script_set_config, .show_progress = script_show_progress,
	.save = script_save, .adopt = script_adopt,
};

const struct watcher_ops watcher_fanotify_ops = {
	.name = "fanotify", .watch_unit = "file systems marked",
	.queue_sysctl = "fs.fanotify.max_queued_events",
	.open = fanotify_open, .close = script_close, .watch = script_watch,
	.unwatch = script_unwatch, .resync = script_resync, .fd = script_fd,
	.read = script_read, .idle = script_idle, .watches = script_watches,
	.set_config = script_set_config, .show_progress = script_show_progress,
	.save = script_save, .adopt = script_adopt,
};

/* ---- fixtures ---- */

static char dir[PATH_MAX];
static char root_a[PATH_MAX + 8], root_b[PATH_MAX + 8], cookie[PATH_MAX + 64];
static struct config cfg;
static struct watcher *w;

static int
setup(void **state)
{
	char text[3 * PATH_MAX + 128];

	(void)state;
	nseen = 0;
	fanotify_opens = 0;
	assert_non_null(unit_tmpdir(dir, sizeof dir, "watchcore"));
	snprintf(root_a, sizeof root_a, "%s/a", dir);
	snprintf(root_b, sizeof root_b, "%s/b", dir);
	assert_int_equal(mkdir(root_a, 0700), 0);
	assert_int_equal(mkdir(root_b, 0700), 0);
	/* a sync cookie a begin left in root a before the core watched it */
	snprintf(cookie, sizeof cookie, "%s/.chjournal-cookie.1.0123456789abcdef", root_a);
	assert_int_equal(close(creat(cookie, 0600)), 0);
	snprintf(text, sizeof text, "root = %s\nroot = %s\njournal = %s/j.db\nbackend = auto\n",
	    root_a, root_b, dir);
	assert_int_equal(config_parse(&cfg, "test.conf", text), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	watcher_free(w);
	w = NULL;
	config_free(&cfg);
	assert_int_equal(unit_rmtree(dir), 0);
	return 0;
}

static void
open_core(void)
{
	struct chj_error e;

	w = watcher_new(&cfg, &sink, &e);
	assert_non_null(w);
	assert_int_equal(watcher_add_root(w, root_a, &e), 0);
	assert_int_equal(watcher_add_root(w, root_b, &e), 0);
}

/* ---- tests ---- */

static void
test_auto_falls_back(void **state)
{
	(void)state;
	open_core();
	assert_string_equal(watcher_backend(w), "inotify");
	watcher_free(w);
	fanotify_opens = 1;
	open_core();
	assert_string_equal(watcher_backend(w), "fanotify");
}

/* A path the backend cannot watch is covered from the last drain, counted,
 * renewed every tick from its last renewal, and retried until it is
 * watched; a root watched again counts as changed whole. */
static void
test_lost_renewed_retried(void **state)
{
	struct watcher_stats st;
	unsigned long failures;
	char sub[PATH_MAX + 32];
	time_t t0;

	(void)state;
	open_core();
	snprintf(sub, sizeof sub, "%s/sub", root_a);
	assert_int_equal(mkdir(sub, 0700), 0);
	t0 = watcher_drained_at(w);
	watch_core_lost((struct watch_core *)w, sub, "directory not watched", ENOSPC);
	assert_int_equal(count('r', sub), 1);
	assert_int_equal(last('r', sub)->since, (int64_t)(t0 - WATCH_TIME_MARGIN));
	watcher_get_stats(w, &st);
	assert_int_equal(st.unwatched, 1);
	assert_int_equal(st.watch_failures, 1);
	/* lost again: one entry, no second record */
	watch_core_lost((struct watch_core *)w, sub, "directory not watched", ENOSPC);
	assert_int_equal(count('r', sub), 1);
	/* a tick within the period does nothing */
	watcher_tick(w, t0 + 1);
	assert_int_equal(count('r', sub), 1);
	/* the retry fails: renewed, still unwatched */
	backend->watch_answer = 0;
	watcher_tick(w, t0 + 11);
	assert_true(count('r', sub) >= 2);
	watcher_get_stats(w, &st);
	assert_int_equal(st.unwatched, 1);
	assert_true(watcher_root_is_watched(w, root_a));      /* only sub is not */
	/* the retry succeeds: renewed once more (what happened until now), gone */
	backend->watch_answer = 1;
	nseen = 0;
	watcher_tick(w, t0 + 22);
	assert_int_equal(count('r', sub), 1);
	watcher_get_stats(w, &st);
	assert_int_equal(st.unwatched, 0);
	/* a root lost and back: listed whole, its cookies claimed; a root
	 * missing is no watch failure */
	watcher_get_stats(w, &st);
	failures = st.watch_failures;
	watch_core_lost((struct watch_core *)w, root_a, "was moved away", 0);
	assert_false(watcher_root_is_watched(w, root_a));
	watcher_get_stats(w, &st);
	assert_int_equal(st.watch_failures, failures);
	nseen = 0;
	watcher_tick(w, t0 + 33);
	assert_true(watcher_root_is_watched(w, root_a));
	assert_int_equal(count('c', root_a), 1);
	assert_int_equal(last('c', root_a)->flags, JF_SUBTREE | JF_DIR);
	assert_int_equal(count('k', ".chjournal-cookie.1.0123456789abcdef"), 1);
}

/* A sync cookie directly in a root goes to the sink as a cookie and renews
 * what is not watched; one deeper is data; its deletion is nothing. */
static void
test_cookies(void **state)
{
	char deep[PATH_MAX + 96], sub[PATH_MAX + 32];

	(void)state;
	open_core();
	snprintf(sub, sizeof sub, "%s/sub", root_b);
	watch_core_lost((struct watch_core *)w, sub, "directory not watched", EACCES);
	nseen = 0;
	watch_core_change((struct watch_core *)w, cookie, JF_CREATED);
	assert_int_equal(count('k', ".chjournal-cookie.1.0123456789abcdef"), 1);
	assert_int_equal(count('c', cookie), 0);
	assert_int_equal(count('r', sub), 1);         /* renewed for the begin */
	watch_core_change((struct watch_core *)w, cookie, JF_DELETED);
	assert_int_equal(count('k', ".chjournal-cookie.1.0123456789abcdef"), 1);
	snprintf(deep, sizeof deep, "%s/x/.chjournal-cookie.1.0123456789abcdef", root_b);
	watch_core_change((struct watch_core *)w, deep, JF_CREATED);
	assert_int_equal(count('c', deep), 1);
}

/* An overflow: every root rescanned from the last drain, the cookies in the
 * roots claimed, the backend started again once (an overflow met while it
 * starts again does not nest). */
static void
test_overflow(void **state)
{
	struct watcher_stats st;
	struct chj_error e;
	time_t t0;

	(void)state;
	open_core();
	t0 = watcher_drained_at(w);
	backend->overflow_in_resync = 1;
	backend->overflow_on_read = 1;
	nseen = 0;
	assert_int_equal(watcher_process(w, &e), 0);
	assert_int_equal(backend->resyncs, 1);
	assert_int_equal(count('r', root_a), 1);
	assert_int_equal(count('r', root_b), 1);
	assert_string_equal(last('r', root_a)->why, "inotify queue overflow");
	assert_int_equal(last('r', root_a)->since, (int64_t)(t0 - WATCH_TIME_MARGIN));
	assert_int_equal(count('k', ".chjournal-cookie.1.0123456789abcdef"), 1);
	watcher_get_stats(w, &st);
	assert_int_equal(st.overflows, 2);
	assert_int_equal(st.events, 1);
	/* out of step: the same, under its own reason, no overflow counted */
	nseen = 0;
	backend->overflow_in_resync = 0;
	watch_core_out_of_step((struct watch_core *)w, "watch table inconsistent");
	assert_string_equal(last('r', root_b)->why, "watch table inconsistent");
	watcher_get_stats(w, &st);
	assert_int_equal(st.overflows, 2);
}

/* The drain time moves to the start of a read that emptied the queue, but
 * not past what the backend holds back; an idle poll moves it too. */
static void
test_drain(void **state)
{
	struct chj_error e;
	time_t t0, t1;

	(void)state;
	open_core();
	t0 = watcher_drained_at(w);
	backend->hold = t0 - 100;
	assert_int_equal(watcher_process(w, &e), 0);
	assert_int_equal(watcher_drained_at(w), t0);      /* never backwards */
	watcher_note_idle(w, t0 + 50);
	assert_int_equal(watcher_drained_at(w), t0);      /* held */
	backend->hold = t0 + 20;
	watcher_note_idle(w, t0 + 50);
	assert_int_equal(watcher_drained_at(w), t0 + 20);
	backend->hold = 0;
	watcher_note_idle(w, t0 + 50);
	assert_int_equal(watcher_drained_at(w), t0 + 50);
	/* a rescan recorded now starts from there */
	watch_core_rescan((struct watch_core *)w, root_b, "test");
	assert_int_equal(last('r', root_b)->since, (int64_t)(t0 + 50 - WATCH_TIME_MARGIN));
	t1 = time(NULL);
	backend->deliver = root_b;
	assert_int_equal(watcher_process(w, &e), 0);
	assert_true(watcher_drained_at(w) >= t0 + 50 || watcher_drained_at(w) >= t1);
	assert_int_equal(count('c', root_b), 1);
}

/* Too many paths lost below one root: the whole root is covered instead. */
static void
test_many_lost(void **state)
{
	struct watcher_stats st;
	char sub[PATH_MAX + 32];
	int i;

	(void)state;
	open_core();
	for (i = 0; i < 65; i++) {
		snprintf(sub, sizeof sub, "%s/d%d", root_a, i);
		watch_core_lost((struct watch_core *)w, sub, "directory not watched", ENOSPC);
	}
	watcher_get_stats(w, &st);
	assert_int_equal(st.unwatched, 1);
	assert_false(watcher_root_is_watched(w, root_a));
	assert_true(watcher_root_is_watched(w, root_b));
	assert_int_equal(count('r', root_a), 1);
	/* a rewatch of the root drops what covered it, and watches it */
	watcher_rewatch(w, root_a);
	assert_true(watcher_root_is_watched(w, root_a));
}

/* Saves w into a buffer and opens a reader on a copy of its first len bytes
 * (all of it: len = SIZE_MAX). */
static void
save_state(struct statebuf *out, size_t len)
{
	struct statebuf b;
	struct chj_error e;
	void *copy;

	statebuf_init(&b);
	assert_int_equal(watcher_save(w, &b, &e), 0);
	if (len > b.len)
		len = b.len;
	copy = malloc(len + 1);
	assert_non_null(copy);
	memcpy(copy, b.data, len);
	statebuf_init_read(out, copy, len);
	statebuf_free(&b);
}

/* A restart in place: the next core takes the paths not watched (with the
 * times their rescans were renewed), the drain time and the statistics, and
 * the backend its own part with the descriptor; nothing is recorded by the
 * hand-over itself. A state cut anywhere, or another backend's, is refused
 * (the descriptor stays the caller's). */
static void
test_handover(void **state)
{
	struct watcher_stats st, st2;
	struct statebuf b;
	struct watcher *w2;
	char sub[PATH_MAX + 32];
	struct chj_error e;
	size_t cut, full;
	time_t t0;

	(void)state;
	open_core();
	snprintf(sub, sizeof sub, "%s/sub", root_a);
	assert_int_equal(mkdir(sub, 0700), 0);
	watch_core_lost((struct watch_core *)w, sub, "directory not watched", ENOSPC);
	watcher_note_idle(w, watcher_drained_at(w) + 7);
	t0 = watcher_drained_at(w);
	watcher_get_stats(w, &st);
	nseen = 0;
	save_state(&b, SIZE_MAX);
	full = b.len;
	w2 = watcher_adopt(&cfg, &sink, 42, &b, &e);
	statebuf_free(&b);
	assert_non_null(w2);
	assert_int_equal(nseen, 0);
	assert_string_equal(watcher_backend(w2), "inotify");
	assert_int_equal(backend->fd, 42);
	assert_int_equal(watcher_drained_at(w2), t0);
	watcher_get_stats(w2, &st2);
	assert_int_equal(st2.unwatched, 1);
	assert_int_equal(st2.watch_failures, st.watch_failures);
	assert_int_equal(st2.watches, st.watches);
	assert_true(watcher_root_is_watched(w2, root_a));
	assert_false(watcher_root_is_watched(w2, sub));
	/* the path not watched is renewed and retried by the new core */
	backend->watch_answer = 0;
	watcher_tick(w2, t0 + 60);
	assert_true(count('r', sub) >= 1);
	assert_int_equal(backend->watches, st.watches + 1);
	watcher_free(w2);
	/* cut anywhere: refused, never read past its end */
	for (cut = 0; cut < full; cut++) {
		save_state(&b, cut);
		chj_error_clear(&e);
		assert_null(watcher_adopt(&cfg, &sink, 42, &b, &e));
		assert_true(strlen(e.msg) > 0);
		assert_int_equal(e.code, CHJ_ERR_CORRUPT);
		statebuf_free(&b);
	}
	/* another backend's state under backend = inotify */
	watcher_free(w);
	fanotify_opens = 1;
	open_core();
	assert_string_equal(watcher_backend(w), "fanotify");
	save_state(&b, SIZE_MAX);
	config_free(&cfg);
	{
		char text[3 * PATH_MAX + 128];

		snprintf(text, sizeof text, "root = %s\nroot = %s\njournal = %s/j.db\nbackend = inotify\n",
		    root_a, root_b, dir);
		assert_int_equal(config_parse(&cfg, "test.conf", text), 0);
	}
	assert_null(watcher_adopt(&cfg, &sink, 42, &b, &e));
	assert_non_null(strstr(e.msg, "fanotify"));
	assert_int_equal(e.code, CHJ_ERR_REFUSED);
	statebuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_auto_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_renewed_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cookies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handover, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
