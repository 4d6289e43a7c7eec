/* mount-events.c: chjournald's answers to the mount table (mountwatch.h):
 * what a root shows was mounted or unmounted, so it counts as replaced and
 * is watched again; and the roots the kernel NFS server exports. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "journal.h"
#include "log.h"
#include "mountwatch.h"
#include "nfsexport.h"
#include "watch.h"

/* 1 when the mount table changed since it was last compared (POLLPRI). */
int
mount_table_signalled(struct daemon *d)
{
	struct pollfd pfd = { mountwatch_fd(d->mounts), POLLPRI, 0 };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLPRI | POLLERR));
}

/* mountwatch callback while running: journaled, and watched again. */
int
mount_changed(void *ctx, const char *path)
{
	struct daemon *d = ctx;

	log_info("mount table: what '%s' shows was mounted or unmounted: it counts as replaced "
	    "and is watched again", path);
	if (sink_change(d, path, JF_REPLACED) < 0)
		return -1;
	watcher_rewatch(d->watcher, path);
	return 0;
}

/* mountwatch callback at start (the crawl watches what is there). */
int
mount_changed_while_down(void *ctx, const char *path)
{
	struct daemon *d = ctx;

	log_info("mount table: '%s' was mounted or unmounted while the daemon was not running: "
	    "it counts as replaced", path);
	return sink_change(d, path, JF_REPLACED);
}

/* The mount table polled POLLPRI: compares it with the last one. */
void
check_mounts(struct daemon *d)
{
	struct chj_error e;

	if (mountwatch_compare(d->mounts, &d->cfg, d->journal, mount_changed, d, &e) < 0)
		log_error("mount table: %s", e.msg);
	d->mounts_dirty = 0;
}

/* inotify does not hear writes by file handle: roots the kernel NFS server
 * exports are named in the log and in status (meta nfs_exported_roots). */
void
check_nfs_exports(struct daemon *d)
{
	char text[8192] = "";
	/* a test hook, nothing to configure: the table to read instead */
	const char *test_table = getenv("CHJ_TEST_NFS_EXPORTS");
	size_t i;

	if (strcmp(watcher_backend(d->watcher), "inotify") == 0 && test_table != NULL)
		nfsexport_roots(&d->cfg, test_table, text, sizeof text);
	else if (strcmp(watcher_backend(d->watcher), "inotify") == 0)
		for (i = 0; nfsexport_tables[i] != NULL; i++)
			nfsexport_roots(&d->cfg, nfsexport_tables[i], text, sizeof text);
	if (text[0] != '\0')
		log_warning("the kernel NFS server exports these roots (or a directory above or "
		    "below them): %s inotify does not hear what its clients write once a file's name "
		    "has left the kernel's cache: use backend = fanotify there", text);
	if (journal_meta_set_text(d->journal, "nfs_exported_roots", text) < 0)
		log_warning("%s", journal_errmsg(d->journal));
}
