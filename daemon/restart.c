/* restart.c: chjournald's restart in place (SIGUSR2), both sides of it:
 * the running process saves its state and executes the program file again
 * (handover.h holds the exec and the descriptors); the next process checks
 * that the state is its own and adopts the watcher handed over. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "handover.h"
#include "journal.h"
#include "livestatus.h"
#include "log.h"
#include "pending.h"
#include "statebuf.h"
#include "watch.h"

#define HANDOVER_MAGIC 0x484a4843u  /* "CHJH": the state of a restart in place */
#define HANDOVER_VERSION 1

/* The start of the state: what the next process checks before it takes the
 * rest (the same process, journal, roots and excludes). */
static void
handover_put_header(struct daemon *d, struct statebuf *b, int64_t signalled_ms)
{
	size_t i;

	statebuf_put_u32(b, HANDOVER_MAGIC);
	statebuf_put_u32(b, HANDOVER_VERSION);
	statebuf_put_str(b, PACKAGE_VERSION);
	statebuf_put_i64(b, (int64_t)getpid());
	statebuf_put_i64(b, signalled_ms);
	statebuf_put_str(b, d->cfg.journal);
	statebuf_put_str(b, journal_id(d->journal));
	statebuf_put_u64(b, d->cfg.nroots);
	for (i = 0; i < d->cfg.nroots; i++)
		statebuf_put_str(b, d->cfg.roots[i]);
	statebuf_put_u64(b, d->cfg.nexcludes);
	for (i = 0; i < d->cfg.nexcludes; i++)
		statebuf_put_str(b, d->cfg.exclude_sources[i]);
}

/* The next process's check of the header. Returns 0, or -1 with e filled
 * (CHJ_ERR_CORRUPT: not a hand-over, another format, malformed;
 * CHJ_ERR_REFUSED: another process's, journal's, roots or excludes); *from
 * and *signalled_ms tell the log where the state comes from. */
static int
handover_check_header(struct daemon *d, struct statebuf *b, const char **from,
    int64_t *signalled_ms, struct chj_error *e)
{
	uint32_t magic = statebuf_get_u32(b), version = statebuf_get_u32(b);
	const char *journal, *id;
	int64_t pid;
	uint64_t i, n;

	*from = statebuf_get_str(b);
	pid = statebuf_get_i64(b);
	*signalled_ms = statebuf_get_i64(b);
	journal = statebuf_get_str(b);
	id = statebuf_get_str(b);
	if (statebuf_status(b) == 0 && magic != HANDOVER_MAGIC) {
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "the state is not a chjournald hand-over");
	}
	if (statebuf_status(b) == 0 && version != HANDOVER_VERSION) {
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "the state is of format %u (from "
		    "chjournald %s), this program reads format %u", version, *from, HANDOVER_VERSION);
	}
	if (statebuf_status(b) < 0) {
		*e = b->err;
		return -1;
	}
	if (pid != (int64_t)getpid()) {
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the state is process %lld's, not this "
		    "one's", (long long)pid);
	}
	if (strcmp(journal, d->cfg.journal) != 0 || strcmp(id, journal_id(d->journal)) != 0) {
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the state is of journal '%s' (id %s), "
		    "not of '%s' (id %s)", journal, id, d->cfg.journal, journal_id(d->journal));
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n != d->cfg.nroots) {
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the roots changed (%llu handed over, "
		    "%zu configured)", (unsigned long long)n, d->cfg.nroots);
	}
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		const char *r = statebuf_get_str(b);

		if (r != NULL && strcmp(r, d->cfg.roots[i]) != 0) {
			return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the roots changed ('%s' handed "
			    "over, '%s' configured)", r, d->cfg.roots[i]);
		}
	}
	n = statebuf_get_u64(b);
	if (statebuf_status(b) == 0 && n != d->cfg.nexcludes) {
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the excludes changed");
	}
	for (i = 0; i < n && statebuf_status(b) == 0; i++) {
		const char *x = statebuf_get_str(b);

		if (x != NULL && strcmp(x, d->cfg.exclude_sources[i]) != 0) {
			return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the excludes changed");
		}
	}
	if (statebuf_status(b) < 0) {
		*e = b->err;
		return -1;
	}
	return 0;
}

/* The arguments of the next process: the configuration file (absolute), the
 * same verbosity and log and pid file, never --daemon (it is detached
 * already, and must keep its pid). */
static void
restart_argv(struct daemon *d, char **argv, size_t max)
{
	size_t n = 0;
	int v;

	argv[n++] = d->exe;
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)d->config_file;
	for (v = 0; v < d->verbosity && n + 7 < max; v++)
		argv[n++] = (char *)"-v";
	if (d->use_syslog)
		argv[n++] = (char *)"--syslog";
	if (d->logfile != NULL) {
		argv[n++] = (char *)"--log-file";
		argv[n++] = (char *)d->logfile;
	}
	if (d->pidfile != NULL) {
		argv[n++] = (char *)"--pidfile";
		argv[n++] = (char *)d->pidfile;
	}
	argv[n] = NULL;
}

/* SIGUSR2: restarts in place. The configuration is read again (as SIGHUP
 * would: the roots the next process finds configured are the ones handed
 * over), the crawl is finished and the queue read, the watcher's state
 * saved, every pending change journaled, and the program file executed
 * again with the lock and the watcher's descriptor kept open. Returns only
 * when it did not restart: 0 (the daemon goes on, the reason logged), or -1
 * when it cannot go on (the journal could not be opened again). */
int
restart_in_place(struct daemon *d)
{
	struct statebuf b;
	struct config nc;
	char *argv[16];
	int64_t t0 = now_ms();
	struct chj_error e;

	log_info("SIGUSR2: restarting in place: '%s', the kernel state handed over", d->exe);
	if (access(d->exe, X_OK) < 0) {
		log_error("restart refused, the daemon goes on: cannot execute '%s': %s", d->exe,
		    strerror(errno));
		return 0;
	}
	if (load_new_config(d, &nc, "restart") < 0)
		return 0;
	apply_config(d, &nc);
	/* the next process takes a table, not a crawl */
	while (watcher_busy(d->watcher)) {
		watcher_step(d->watcher);
		if (watcher_process(d->watcher, &e) < 0) {
			log_error("%s", e.msg);
			return -1;
		}
	}
	if (d->crawl_started_ms != 0)
		log_ready(d);
	if (watcher_process(d->watcher, &e) < 0) {
		log_error("%s", e.msg);
		return -1;
	}
	statebuf_init(&b);
	handover_put_header(d, &b, t0);
	if (watcher_save(d->watcher, &b, &e) < 0) {
		log_error("restart refused, the daemon goes on: %s", e.msg);
		statebuf_free(&b);
		return 0;
	}
	/* what was read is journaled: the next process reads on from there */
	if (flush(d) < 0 || pending_count(d->pending) > 0) {
		log_error("restart refused, the daemon goes on: the journal cannot be written, and "
		    "the changes in memory would be lost");
		statebuf_free(&b);
		return 0;
	}
	{
		struct watcher_stats st;

		watcher_get_stats(d->watcher, &st);
		log_info("restart: %lu %s, %zu bytes of state, ready in %.3f s; executing '%s'",
		    st.watches, watcher_watch_unit(d->watcher), b.len,
		    (double)(now_ms() - t0) / 1000.0, d->exe);
	}
	restart_argv(d, argv, sizeof argv / sizeof argv[0]);
	livestatus_close(d->live);
	d->live = NULL;
	journal_free(d->journal);
	d->journal = NULL;
	handover_exec(d->exe, argv, d->lock_fd, watcher_fd(d->watcher), b.data, b.len, &e);
	statebuf_free(&b);
	log_error("restart failed, the daemon goes on: %s", e.msg);
	if ((d->journal = journal_new()) == NULL ||
	    journal_open(d->journal, d->cfg.journal, DAEMON_JOURNAL_FLAGS) < 0) {
		log_error("cannot open the journal again: %s",
		    d->journal != NULL ? journal_errmsg(d->journal) : "out of memory");
		return -1;
	}
	note_journal_identity(d);
	if ((d->live = livestatus_open(d->cfg.journal, &e)) == NULL)
		log_warning("%s: status shows the figures of the last flush", e.msg);
	return 0;
}

/* The program file SIGUSR2 executes again: the path the daemon was started
 * by (an upgrade replaces the file there), not the inode running now, which
 * /proc/self/exe names "... (deleted)" after an upgrade. */
void
program_path(const char *argv0, char *buf, size_t size)
{
	ssize_t n;

	buf[0] = '\0';
	if (argv0 != NULL && argv0[0] == '/') {
		snprintf(buf, size, "%s", argv0);
		return;
	}
	/* started by a relative path or through PATH: where that led, now
	 * (before --daemon's chdir) */
	if ((n = readlink("/proc/self/exe", buf, size - 1)) < 0) {
		buf[0] = '\0';
		return;
	}
	buf[n] = '\0';
	if ((size_t)n > strlen(" (deleted)") && strcmp(buf + n - strlen(" (deleted)"), " (deleted)") == 0)
		buf[n - strlen(" (deleted)")] = '\0';
}

/* The watcher of a restart in place, from the previous process's state and
 * descriptor (ho), once the state is found to be this daemon's: the same
 * process, journal, roots and excludes, and the descriptor of its backend.
 * Returns NULL with e filled when it is not (the caller starts afresh). */
struct watcher *
adopt_handover(struct daemon *d, const struct watcher_sink *sink, struct handover *ho,
    struct statebuf *b, struct chj_error *e)
{
	const char *from;
	int64_t signalled_ms;
	struct watcher *w;
	const char *kind;

	if (handover_check_header(d, b, &from, &signalled_ms, e) < 0)
		return NULL;
	if (!handover_fd_is(ho->watch_fd, "inotify") && !handover_fd_is(ho->watch_fd, "[fanotify]")) {
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "descriptor %d is not an inotify or fanotify "
		    "descriptor", ho->watch_fd);
		return NULL;
	}
	if ((w = watcher_adopt(&d->cfg, sink, ho->watch_fd, b, e)) == NULL)
		return NULL;
	kind = strcmp(watcher_backend(w), "inotify") == 0 ? "inotify" : "[fanotify]";
	if (!handover_fd_is(ho->watch_fd, kind)) {
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "descriptor %d is not the %s descriptor the state "
		    "describes", ho->watch_fd, watcher_backend(w));
		watcher_free(w);         /* closes it */
		ho->watch_fd = -1;
		return NULL;
	}
	ho->watch_fd = -1;               /* the watcher's now */
	log_info("restarted in place (from chjournald %s, %.3f s after SIGUSR2): the %s state "
	    "handed over, nothing to crawl, no rescan", from,
	    (double)(now_ms() - signalled_ms) / 1000.0, watcher_backend(w));
	return w;
}
