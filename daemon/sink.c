/* sink.c: chjournald's watcher sink (watch.h): what the watcher reports
 * (changes, rescans, sync cookies, writes outside the roots) goes into
 * pending; the names of hard-linked files written outside the roots are
 * looked up in the journal. */
#include <stdint.h>

#include "daemon.h"
#include "journal.h"
#include "linkset.h"
#include "log.h"
#include "pending.h"
#include "watch.h"

static void
pending_nomem(struct daemon *d)
{
	log_error("out of memory coalescing changes: recording a rescan of every root");
}

int
sink_change(void *ctx, const char *path, unsigned flags)
{
	struct daemon *d = ctx;

	/* a directory renamed, moved in or out takes the mounts below it
	 * along, and the kernel does not signal the mount table for that */
	if ((flags & JF_DIR) && (flags & (JF_RENAMED | JF_MOVED_OUT)))
		d->mounts_dirty = 1;
	if (pending_change(d->pending, path, flags) < 0) {
		pending_nomem(d);
		return -1;
	}
	return 0;
}

int
sink_rescan(void *ctx, const char *path, int64_t since, const char *reason)
{
	struct daemon *d = ctx;

	char ts[32];

	log_info("rescan recorded for '%s' (changes since %s may be unknown): %s", path,
	    local_time_str(since, ts, sizeof ts), reason);
	d->rescans_recorded++;
	return pending_rescan(d->pending, path, since, reason);
}

int
sink_cookie(void *ctx, const char *name)
{
	struct daemon *d = ctx;

	/* a begin is syncing: a mount made before its cookie, or a directory
	 * moved with a mount below it, must be journaled before the cookie,
	 * though the events were read before the mount table said so */
	if (d->mounts != NULL && (d->mounts_dirty || mount_table_signalled(d)))
		check_mounts(d);
	return pending_cookie(d->pending, name);
}

/* journal_links_names callback: a name inside the roots of a file written
 * through a name outside them. */
static int
outside_name_cb(void *ctx, const char *path)
{
	struct daemon *d = ctx;

	return sink_change(d, path, JF_MODIFIED);
}

/* Journals the names inside the roots of inode ino. */
static void
outside_names(void *ctx, uint64_t ino)
{
	struct daemon *d = ctx;

	log_debug("a file with names in the roots was written outside them (inode %llu)",
	    (unsigned long long)ino);
	if (journal_links_names(d->journal, ino, outside_name_cb, d) != 0)
		log_warning("%s", journal_errmsg(d->journal));
}

int
sink_outside_write(void *ctx, const struct watcher_file_id *id)
{
	struct daemon *d = ctx;
	uint64_t ino, key;

	if (d->links == NULL)
		return 0;
	key = linkset_key(id);
	if (linkset_find(d->links, key, &ino))
		outside_names(d, ino);
	else
		linkset_recent(d->links, key, now_ms());   /* a name noted since? */
	return 0;
}

/* Follows the journal's names of multiply-linked files; a file written
 * outside the roots since the last refresh whose names became known (the
 * set lags by up to a flush) is journaled now. */
void
refresh_links(struct daemon *d)
{
	int rc;

	if (d->links == NULL)
		return;
	rc = linkset_refresh(d->links, d->journal);
	if (rc < 0)
		log_warning("cannot read the names of hard-linked files: %s", journal_errmsg(d->journal));
	else if (rc == 1)
		linkset_recheck(d->links, now_ms(), 2 * HEARTBEAT_MS, outside_names, d);
}
