/* main.c: chjournald: options, signals and the event loop. Kernel events
 * come from the watcher, are coalesced in pending, and are written to the
 * journal in one transaction per flush. SIGUSR2 restarts it in place: the
 * program file is executed again with the kernel state handed over
 * (handover.h), so no event is lost and no rescan is needed. What the loop
 * calls lives beside it (daemon.h): the watcher's sink (sink.c), the mount
 * table (mount-events.c), the flush (flush.c), SIGHUP (reload.c) and
 * SIGUSR2 (restart.c). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "config.h"
#include "consumer.h"
#include "daemonlock.h"
#include "daemon.h"
#include "handover.h"
#include "journal.h"
#include "linkset.h"
#include "livestatus.h"
#include "log.h"
#include "mountwatch.h"
#include "path.h"
#include "pending.h"
#include "selfcheck.h"
#include "statebuf.h"
#include "watch.h"

/* ---- main loop ---- */

static int
setup_signals(struct daemon *d)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	d->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return d->sig_fd < 0 ? -1 : 0;
}

/* Returns 1 to stop, 0 to go on, -1 on a fatal error. */
static int
handle_signals(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			reload(d);
		} else if (si.ssi_signo == SIGUSR2) {
			if (restart_in_place(d) < 0)
				return -1;
		} else {
			log_info("%s received: flushing and stopping",
			    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			return 1;
		}
	}
	return 0;
}

/* The start-up crawl is done: every directory is watched. */
void
log_ready(struct daemon *d)
{
	struct watcher_stats st;

	watcher_get_stats(d->watcher, &st);
	log_info("ready: %lu %s in %.3f s%s", st.watches, watcher_watch_unit(d->watcher),
	    (double)(now_ms() - d->crawl_started_ms) / 1000.0,
	    st.unwatched ? " (some directories could not be watched: see above)" : "");
	d->crawl_started_ms = 0;
}

/* Journaling as the events come (flush_idle_ms): once the kernel's queue is
 * read empty and that long has passed since the last flush, what pending
 * holds is written without waiting for flush_interval_ms, so that a sync
 * finds little left to write. Not while the journal fails (its retry is
 * paced by the deadline) nor during the start-up crawl. */
static int
idle_flush_due(const struct daemon *d)
{
	return d->cfg.flush_idle_ms > 0 && !d->flush_failing && pending_count(d->pending) > 0;
}

static int64_t
idle_flush_at(const struct daemon *d)
{
	return d->last_flush_ms + (int64_t)d->cfg.flush_idle_ms;
}

static int
run(struct daemon *d)
{
	struct chj_error e;

	for (;;) {
		struct pollfd pfd[3];
		int64_t now = now_ms(), deadline;
		time_t before_poll = time(NULL);
		int timeout, n;

		int64_t wake;
		int idle;

		if (pending_count(d->pending) > 0)
			deadline = d->last_flush_ms + (d->flush_failing ? 1000 : d->cfg.flush_interval_ms);
		else
			deadline = d->last_flush_ms + HEARTBEAT_MS;
		wake = idle_flush_due(d) && idle_flush_at(d) < deadline ? idle_flush_at(d) : deadline;
		timeout = wake > now ? (int)(wake - now) : 0;
		if (watcher_busy(d->watcher))
			timeout = 0;     /* a crawl slice is due */
		pfd[0].fd = watcher_fd(d->watcher);
		pfd[0].events = POLLIN;
		pfd[1].fd = d->sig_fd;
		pfd[1].events = POLLIN;
		pfd[2].fd = d->mounts != NULL ? mountwatch_fd(d->mounts) : -1;
		pfd[2].events = POLLPRI;
		pfd[2].revents = 0;
		n = poll(pfd, 3, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return -1;
		}
		/* nothing was queued when poll returned: every change before the
		 * call has been read */
		idle = n >= 0 && !(pfd[0].revents & POLLIN);
		if (idle)
			watcher_note_idle(d->watcher, before_poll);
		if (pfd[1].revents & POLLIN) {
			int sig = handle_signals(d);

			if (sig < 0)
				return -1;
			if (sig > 0)
				break;
		}
		/* a mount before the events read after it: the paths it covers
		 * are watched again first */
		if (pfd[2].revents & (POLLPRI | POLLERR))
			check_mounts(d);
		if (pfd[0].revents & POLLIN) {
			if (watcher_process(d->watcher, &e) < 0) {
				log_error("%s", e.msg);
				return -1;
			}
		}
		/* directories moved: where the mounts below them are now */
		if (d->mounts_dirty && d->mounts != NULL)
			check_mounts(d);
		if (watcher_busy(d->watcher)) {
			watcher_step(d->watcher);
			if (!watcher_busy(d->watcher) && d->crawl_started_ms != 0)
				log_ready(d);
		}
		watcher_tick(d->watcher, time(NULL));
		publish_status(d, current_state(d));
		now = now_ms();
		if (pending_has_cookies(d->pending) ||
		    pending_count(d->pending) >= d->cfg.batch_size ||
		    (now >= deadline && (pending_count(d->pending) > 0 || d->flush_failing)))
			flush(d);
		else if (now >= deadline ||
		    (idle && !watcher_busy(d->watcher) && idle_flush_due(d) &&
		    now >= idle_flush_at(d)))
			flush_unsynced(d);      /* the heartbeat, or changes as they come */
	}
	/* drain what the kernel still holds, then the last flush */
	if (watcher_process(d->watcher, &e) < 0)
		log_error("%s", e.msg);
	if (flush(d) < 0)
		return -1;
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: chjournald [-c FILE] [-v]... [--syslog | --log-file FILE] [--daemon --pidfile FILE]\n"
	    "       chjournald [-c FILE] -t [-q]\n"
	    "  -c, --config FILE   configuration (default $CHJOURNAL_CONF or " CONFIG_DEFAULT_FILE ")\n"
	    "  -t, --test          check the configuration and the machine, then exit (0: fine,\n"
	    "                      1: an error that will break the daemon or the backups)\n"
	    "  -q, --quiet         with -t: print only the warnings and errors\n"
	    "  -v, --verbose       more log detail (repeatable)\n"
	    "      --syslog        log to syslog instead of stderr\n"
	    "      --log-file FILE log to FILE (absolute; appended to, reopened on SIGHUP)\n"
	    "      --daemon        detach from the terminal (logs go to syslog, or --log-file)\n"
	    "      --pidfile FILE  write the daemon's pid to FILE\n"
	    "  -h, --help          this help\n"
	    "      --version       print the version\n");
}

struct test_counts {
	unsigned warnings, errors;
	int quiet;
};

static void
test_line(void *ctx, enum selfcheck_level level, const char *msg)
{
	struct test_counts *t = ctx;

	t->warnings += level == SELFCHECK_WARNING;
	t->errors += level == SELFCHECK_ERROR;
	if (!t->quiet || level != SELFCHECK_OK)
		printf("%s: %s\n", selfcheck_level_name(level), msg);
}

/* -t: the configuration and the machine, one line per finding on stdout
 * (with quiet, the warnings and errors only); exit 1 on an error. CHJ_TEST_SYSCTL_DIR and CHJ_TEST_NFS_EXPORTS are test
 * hooks, nothing to configure. */
static int
self_test(const char *config_file, int quiet)
{
	struct selfcheck_opts o;
	struct test_counts t = { 0, 0, quiet };
	struct chj_error e;
	int worst;

	memset(&o, 0, sizeof o);
	o.role = SELFCHECK_DAEMON;
	o.sysctl_dir = getenv("CHJ_TEST_SYSCTL_DIR");
	o.nfs_table = getenv("CHJ_TEST_NFS_EXPORTS");
	worst = selfcheck_run(config_file, &o, test_line, &t, &e);
	if (worst < 0) {
		fprintf(stderr, "chjournald: %s\n", e.msg);
		return 1;
	}
	if (!quiet || t.errors)
		printf("chjournald: test of '%s' %s: %u error%s, %u warning%s\n", config_file,
	    t.errors ? "failed" : "passed", t.errors, t.errors == 1 ? "" : "s", t.warnings,
	    t.warnings == 1 ? "" : "s");
	if (fflush(stdout) != 0)
		return 1;
	return t.errors ? 1 : 0;
}

static int
write_pidfile(const char *file, struct chj_error *e)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());

	return atomicfile_write(file, buf, (size_t)n, 0644, e);
}

/* What the command line asks beyond struct daemon's fields. */
struct daemon_args {
	int detach, test, quiet;
};

/* Reads the options into d and a. Returns -1 to go on, or the exit status
 * (0 for --help and --version; 2, the usage said, for a usage error). */
static int
parse_args(int argc, char **argv, struct daemon *d, struct daemon_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "test", no_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:vhtq", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': d->config_file = optarg; break;
		case 'v': d->verbosity++; break;
		case 'S': d->use_syslog = 1; break;
		case 'D': a->detach = 1; break;
		case 'P': d->pidfile = optarg; break;
		case 'L': d->logfile = optarg; break;
		case 't': a->test = 1; break;
		case 'q': a->quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("chjournald %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "chjournald: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (d->pidfile != NULL && d->pidfile[0] != '/') {
		fprintf(stderr, "chjournald: --pidfile '%s' must be an absolute path\n", d->pidfile);
		return 2;
	}
	if (a->quiet && !a->test) {
		fprintf(stderr, "chjournald: -q goes with -t\n");
		usage(stderr);
		return 2;
	}
	if (a->test)
		return -1;
	if (d->logfile != NULL && d->logfile[0] != '/') {
		fprintf(stderr, "chjournald: --log-file '%s' must be an absolute path\n", d->logfile);
		return 2;
	}
	if (d->logfile != NULL && d->use_syslog) {
		fprintf(stderr, "chjournald: --log-file and --syslog do not go together\n");
		usage(stderr);
		return 2;
	}
	return -1;
}

/* Loads the configuration, its path kept absolute (SIGHUP re-reads it
 * after --daemon's chdir("/")). 0, or -1 said on stderr (nothing to free). */
static int
load_config(struct daemon *d)
{
	static char config_real[PATH_MAX];

	d->config_file = config_choose_file(d->config_file);
	if (config_load(&d->cfg, d->config_file) < 0) {
		fprintf(stderr, "chjournald: %s\n", d->cfg.err.msg);
		return -1;
	}
	if (realpath(d->config_file, config_real) == NULL) {
		fprintf(stderr, "chjournald: cannot resolve '%s': %s\n", d->config_file, strerror(errno));
		config_free(&d->cfg);
		return -1;
	}
	d->config_file = config_real;
	return 0;
}

/* The journal's lock, first of all: a second daemon fails here, visibly,
 * before it detaches or touches a pid file. Restarted in place, the lock
 * handed over is adopted (it was never free); one that cannot be turns the
 * hand-over down (*have_ho -1, why in ho_err). 0, or -1 said on stderr. */
static int
take_lock(struct daemon *d, struct handover *ho, int *have_ho, struct chj_error *ho_err)
{
	struct chj_error err;

	/* the journal's directory must exist before its lock file */
	if (path_mkdir_parent(d->cfg.journal) < 0) {
		fprintf(stderr, "chjournald: cannot create the directory of journal '%s': %s\n",
		    d->cfg.journal, strerror(errno));
		return -1;
	}
	if (*have_ho != 0 && ho->lock_fd >= 0 &&
	    (d->lock_fd = daemonlock_adopt(d->cfg.journal, ho->lock_fd, &err)) < 0) {
		close(ho->lock_fd);
		if (*have_ho > 0)
			*ho_err = err;
		*have_ho = -1;
	}
	if (d->lock_fd < 0)
		d->lock_fd = daemonlock_acquire(d->cfg.journal, &err);
	if (d->lock_fd < 0) {
		fprintf(stderr, "chjournald: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The log (a file, syslog or stderr), detaching first with --daemon. 0, or
 * -1 said on stderr or in the log. */
static int
start_logging(struct daemon *d, int detach)
{
	int lvl = (int)d->cfg.log_level + d->verbosity;

	/* before detaching: a log file that cannot be written is said here */
	if (d->logfile != NULL && log_open_file(d->logfile) < 0) {
		fprintf(stderr, "chjournald: cannot open log file '%s': %s\n", d->logfile,
		    strerror(errno));
		return -1;
	}
	if (detach) {
		if (d->logfile == NULL)
			d->use_syslog = 1;
		if (daemon(0, 0) < 0) {
			fprintf(stderr, "chjournald: cannot detach: %s\n", strerror(errno));
			return -1;
		}
		/* the flock is shared with the child; the pid in it is not */
		if (daemonlock_write_pid(d->lock_fd) < 0) {
			int e = errno;

			log_init(d->logfile != NULL ? LOG_TARGET_FILE : LOG_TARGET_SYSLOG, CONFIG_LOG_ERROR);
			log_error("cannot write pid to the lock file: %s", strerror(e));
			return -1;
		}
	}
	log_init(d->logfile != NULL ? LOG_TARGET_FILE : d->use_syslog ? LOG_TARGET_SYSLOG :
	    LOG_TARGET_STDERR, (enum config_log_level)(lvl > CONFIG_LOG_DEBUG ? CONFIG_LOG_DEBUG : lvl));
	return 0;
}

/* Signals, the journal, the live status, the consumers. 0, or -1 logged. */
static int
open_state(struct daemon *d)
{
	struct chj_error e;

	if (setup_signals(d) < 0) {
		log_error("cannot set up signals: %s", strerror(errno));
		return -1;
	}
	if ((d->journal = journal_new()) == NULL || (d->pending = pending_new()) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (journal_open(d->journal, d->cfg.journal, DAEMON_JOURNAL_FLAGS) < 0) {
		log_error("%s", journal_errmsg(d->journal));
		return -1;
	}
	note_journal_identity(d);
	/* the live figures: status works without it, on the last flush's */
	if ((d->live = livestatus_open(d->cfg.journal, &e)) == NULL)
		log_warning("%s: status shows the figures of the last flush", e.msg);
	publish_status(d, LIVESTATUS_STARTING);
	if (consumers_open(&d->consumers, d->cfg.consumers, 1) < 0) {
		log_error("%s", d->consumers.err.msg);
		return -1;
	}
	apply_group(d);
	log_info("starting: journal '%s' (id %s), %zu roots, backend %s", d->cfg.journal,
	    journal_id(d->journal), d->cfg.nroots, config_backend_name(d->cfg.backend));
	return 0;
}

/* The watcher: the one handed over (have_ho > 0) when it can be adopted,
 * else a new one. Sets *adopted. 0, or -1 logged. */
static int
open_watcher(struct daemon *d, const struct watcher_sink *sink, struct handover *ho,
    struct statebuf *hstate, int have_ho, int *adopted)
{
	struct chj_error e;

	if (have_ho > 0 && (d->watcher = adopt_handover(d, sink, ho, hstate, &e)) == NULL) {
		log_warning("restart in place: the hand-over is refused (%s): starting afresh, a "
		    "rescan of every root covers the restart", e.msg);
		if (ho->watch_fd >= 0)
			close(ho->watch_fd);
	}
	*adopted = d->watcher != NULL;
	if (!*adopted)
		d->watcher = watcher_new(&d->cfg, sink, &e);
	if (d->watcher == NULL) {
		log_error("%s", e.msg);
		return -1;
	}
	watcher_show_progress(d->watcher, log_to_stderr() && isatty(STDERR_FILENO));
	/* only fanotify reports writes outside the roots */
	if (strcmp(watcher_backend(d->watcher), "fanotify") == 0 && (d->links = linkset_new()) == NULL) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

/* Records what start-up must: the gap since the last flush (daemon down or
 * crashed) as a rescan of each root, and roots new to this journal as new
 * subtrees. */
static int
record_startup_gap(struct daemon *d)
{
	int64_t last_flush = 0;
	char *old_roots = NULL;
	int rc;
	size_t i;

	if (journal_was_created(d->journal)) {
		log_info("journal '%s' created (id %s): every consumer starts with a full run",
		    d->cfg.journal, journal_id(d->journal));
		return 0;
	}
	rc = journal_meta_get_int(d->journal, "last_flush", &last_flush);
	if (rc < 0 || journal_meta_get_text(d->journal, "roots", &old_roots) < 0) {
		log_error("%s", journal_errmsg(d->journal));
		return -1;
	}
	for (i = 0; i < d->cfg.nroots; i++) {
		if (old_roots != NULL && !path_list_contains(old_roots, d->cfg.roots[i])) {
			log_info("root '%s' is new to this journal: everything below it counts as new",
			    d->cfg.roots[i]);
			pending_change(d->pending, d->cfg.roots[i], JF_SUBTREE | JF_DIR | JF_CREATED);
			continue;
		}
		if (rc == 0) {
			char ts[32];

			log_info("changes to '%s' since %s (last flush before start) are covered by a rescan",
			    d->cfg.roots[i], local_time_str(last_flush, ts, sizeof ts));
			sink_rescan(d, d->cfg.roots[i], last_flush - WATCH_TIME_MARGIN,
			    "daemon was not running");
		}
	}
	free(old_roots);
	return 0;
}

/* What was missed while down (a rescan record, the mount table), then the
 * roots watched (a watcher handed over watches them already). 0, or -1
 * logged. */
static int
watch_roots(struct daemon *d, int adopted)
{
	struct chj_error e;
	int64_t t0;
	size_t i;

	/* handed over, nothing was missed: the events of the restart wait in
	 * the kernel's queue */
	if (!adopted && record_startup_gap(d) < 0)
		return -1;
	if ((d->mounts = mountwatch_new(&e)) == NULL) {
		log_warning("%s: mounts and unmounts below the roots are not followed", e.msg);
	} else if (mountwatch_compare(d->mounts, &d->cfg, d->journal,
	    adopted ? mount_changed : mount_changed_while_down, d, &e) < 0) {
		log_error("mount table: %s", e.msg);
		return -1;
	}
	t0 = now_ms();
	for (i = 0; i < d->cfg.nroots && !adopted; i++) {
		if (watcher_add_root(d->watcher, d->cfg.roots[i], &e) < 0) {
			log_error("%s", e.msg);
			return -1;
		}
		note_missing_root(d, i);
	}
	d->crawl_started_ms = t0;
	if (!watcher_busy(d->watcher))
		log_ready(d);
	if (write_static_meta(d) < 0 || flush(d) < 0)
		return -1;
	check_nfs_exports(d);
	return 0;
}

/* After run() returned cleanly: the journal and the log say so. */
static void
note_stopped(struct daemon *d)
{
	struct watcher_stats st;

	journal_meta_set_int(d->journal, "daemon_stopped", (int64_t)time(NULL));
	publish_status(d, LIVESTATUS_STOPPED);
	journal_meta_set_int(d->journal, "daemon_pid", 0);
	watcher_get_stats(d->watcher, &st);
	log_info("stopped cleanly after %.0f s: %lu events, %lu flushes, %lu overflows, "
	    "%lu rescans recorded, %lu watches", difftime(time(NULL), d->started), st.events,
	    d->flushes, st.overflows, d->rescans_recorded, st.watches);
}

static void
daemon_free(struct daemon *d)
{
	livestatus_close(d->live);
	free(d->unwatched_roots);
	watcher_free(d->watcher);
	mountwatch_free(d->mounts);
	linkset_free(d->links);
	pending_free(d->pending);
	journal_free(d->journal);
	consumers_close(&d->consumers);
	config_free(&d->cfg);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
}

int
main(int argc, char **argv)
{
	struct daemon d;
	struct daemon_args args = { 0, 0, 0 };
	struct watcher_sink sink;
	struct handover ho;
	struct statebuf hstate;
	struct chj_error ho_err;
	int have_ho, adopted, rc = 1, wrote_pidfile = 0;

	memset(&d, 0, sizeof d);
	d.lock_fd = d.sig_fd = -1;
	statebuf_init(&hstate);
	chj_error_clear(&ho_err);
	/* a restart in place (SIGUSR2): the previous process's descriptors and
	 * state, checked once the journal is open */
	have_ho = handover_take_env(&ho, &ho_err);
	if (have_ho > 0 && handover_read_state(ho.state_fd, &hstate, &ho_err) < 0)
		have_ho = -1;
	program_path(argv[0], d.exe, sizeof d.exe);
	if ((rc = parse_args(argc, argv, &d, &args)) >= 0)
		goto done;
	if (args.test) {
		rc = self_test(config_choose_file(d.config_file), args.quiet);
		goto done;
	}
	rc = 1;
	if (load_config(&d) < 0)
		goto done;
	if (take_lock(&d, &ho, &have_ho, &ho_err) < 0 ||
	    start_logging(&d, args.detach) < 0)
		goto out;
	if (have_ho < 0) {
		log_warning("restart in place: the hand-over cannot be taken (%s): starting afresh, "
		    "a rescan of every root covers the restart", ho_err.msg);
		if (ho.watch_fd >= 0)
			close(ho.watch_fd);
		ho.watch_fd = -1;
	}
	d.started = time(NULL);
	if (d.pidfile != NULL) {
		struct chj_error e;

		if (write_pidfile(d.pidfile, &e) < 0) {
			log_error("cannot write pid file: %s", e.msg);
			goto out;
		}
		wrote_pidfile = 1;
	}
	if (open_state(&d) < 0)
		goto out;
	sink.ctx = &d;
	sink.change = sink_change;
	sink.rescan = sink_rescan;
	sink.cookie = sink_cookie;
	sink.outside_write = sink_outside_write;
	rc = open_watcher(&d, &sink, &ho, &hstate, have_ho, &adopted);
	statebuf_free(&hstate);
	if (rc < 0 || watch_roots(&d, adopted) < 0) {
		rc = 1;
		goto out;
	}
	rc = run(&d) < 0 ? 1 : 0;
	if (rc == 0)
		note_stopped(&d);
out:
	if (wrote_pidfile)
		unlink(d.pidfile);
	daemon_free(&d);
done:
	statebuf_free(&hstate);
	return rc;
}
