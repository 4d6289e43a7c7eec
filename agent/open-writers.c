/* open-writers.c: `begin` journals every file under the roots that is open
 * for writing, because its content can change with no event at all: writes
 * through a shared writable mapping (also after the descriptor's close),
 * native AIO, a loop device or a swap file on it.
 *
 * Why that is enough. An open file description made for writing lives until
 * its last reference goes (its last descriptor is closed, its last mapping
 * unmapped, a loop device detached), and then the daemon journals its
 * IN_CLOSE_WRITE, after every write made through it. The scan runs once the
 * run's sync cookies are placed, while the daemon journals them (it costs
 * about what the sync waits); its rows are written after the run's begin
 * point (open_seq, the cookies' seq) is fixed, so their seqs are greater:
 * this run lists them (its list reads the window up to now) and so does the
 * next (its window starts after open_seq). Take a write with no event, at
 * time t, and the first begin whose scan comes after t. If the file
 * description is alive at that scan, the scan journals the file, and the run
 * lists it after t. If it is gone, it was alive at t, so after the previous
 * begin's scan, which came after that begin's cookies: its close row came
 * after the previous begin point, inside this run's window, and the run
 * lists it after t once the daemon has journaled it; a close between this
 * run's cookies and its scan may be journaled after this run's list, and is
 * then listed by the next run. A write after this scan through a
 * description alive now is covered twice: by its close, and by the rows
 * here, which the next run lists again (a close that is never journaled,
 * say a descriptor held unreceived in a unix socket, is left to them).
 *
 * What cannot be recorded makes `begin` fail: a run that silently misses what
 * such a writer wrote must not be returned. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "openfiles.h"
#include "path.h"

/* How many of the paths that could not be journaled are named. */
#define SHOW_UNRECORDED 10

/* What the scan could not check: said, not fatal (it is no silent miss). */
static void
warn_unchecked(const struct openfiles *of)
{
	if (of->denied > 0)
		agent_warn("files open for writing by %lu process(es) could not be checked "
		    "(permission denied: run begin as root, with every capability): what they "
		    "write through a shared mapping or native AIO may be missed", of->denied);
	if (of->foreign > 0)
		agent_warn("files open for writing by %lu process(es) of another mount namespace "
		    "could not be checked: they are on a root's file system under names that are "
		    "not theirs here (a container, a bind mount); what they write through a "
		    "shared mapping or native AIO may be missed", of->foreign);
	if (of->unnamed > 0)
		agent_warn("files open for writing by %lu process(es) could not be checked: "
		    "/proc gives no name that leads to them on a root's file system (4096 "
		    "bytes or more, or a bind mount changed meanwhile); what they write "
		    "through a shared mapping or native AIO may be missed", of->unnamed);
	if (of->sys_errno != 0)
		agent_warn("cannot read '/sys/block': %s: files written through a loop device "
		    "could not be checked", strerror(of->sys_errno));
}

static void
report_unrecorded(struct agent *a, const struct openfiles *of)
{
	char disp[512];
	size_t i;

	agent_error("cannot journal the %zu file(s) under the roots open for writing: %s",
	    of->npaths, journal_errmsg(a->journal));
	for (i = 0; i < of->npaths && i < SHOW_UNRECORDED; i++)
		agent_error("not recorded: '%s'", path_display(of->paths[i], disp, sizeof disp));
	if (of->npaths > SHOW_UNRECORDED)
		agent_error("not recorded: %zu more", of->npaths - SHOW_UNRECORDED);
	agent_error("no run is opened: it could miss what is written to these files with "
	    "no event (through a shared mapping, native AIO, a loop device)");
}

/* One batch of rows, as the daemon writes them: rows every consumer has
 * committed past start afresh instead of bringing old flags back. */
static int
journal_paths(struct agent *a, struct consumers *cs, const struct openfiles *of)
{
	int64_t prune = 0, now = journal_time_now();
	size_t i;

	if (consumers_prune_point(cs, journal_id(a->journal), &prune) < 0)
		prune = 0;
	if (journal_batch_begin(a->journal, prune) < 0)
		return -1;
	for (i = 0; i < of->npaths; i++) {
		if (journal_batch_change(a->journal, of->paths[i], JF_MODIFIED, now) < 0) {
			journal_batch_rollback(a->journal);
			return -1;
		}
	}
	return journal_batch_commit(a->journal);
}

int
agent_find_open_writers(struct agent *a, struct openfiles *of)
{
	if (openfiles_scan(of, &a->cfg, getpid(), 0) < 0) {
		agent_error("cannot find the files open for writing under the roots: %s", of->err.msg);
		openfiles_free(of);
		return -1;
	}
	warn_unchecked(of);
	return 0;
}

int
agent_journal_open_writers(struct agent *a, struct consumers *cs, const struct openfiles *of)
{
	if (of->npaths > 0 && journal_paths(a, cs, of) < 0) {
		report_unrecorded(a, of);
		return -1;
	}
	return 0;
}
