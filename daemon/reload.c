/* reload.c: chjournald's SIGHUP: the configuration read again and put in
 * place of the running one, roots added and removed in place (a restart in
 * place reads it the same way); and the key `group` applied to the state. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "consumer.h"
#include "daemon.h"
#include "log.h"
#include "pending.h"
#include "stateperm.h"
#include "watch.h"

/* The key `group`: who may read the journal, its status and the cursors
 * (stateperm.h). A failure is no reason to stop journaling: said, and
 * retried at the next reload. */
void
apply_group(struct daemon *d)
{
	struct chj_error e;

	if (d->cfg.group != NULL)
		consumers_set_group(&d->consumers, d->cfg.gid, 0);
	if (stateperm_apply(&d->cfg, &e) < 0)
		log_error("%s: monitoring by group '%s' may not read the state", e.msg,
		    d->cfg.group != NULL ? d->cfg.group : "(none)");
	else if (d->cfg.group != NULL)
		log_debug("journal, status and cursors readable by group '%s'", d->cfg.group);
}

static int
same_excludes(const struct config *a, const struct config *b)
{
	size_t i;

	if (a->nexcludes != b->nexcludes)
		return 0;
	for (i = 0; i < a->nexcludes; i++)
		if (strcmp(a->exclude_sources[i], b->exclude_sources[i]) != 0)
			return 0;
	return 1;
}

static int
has_root(const struct config *c, const char *root)
{
	size_t i;

	for (i = 0; i < c->nroots; i++)
		if (strcmp(c->roots[i], root) == 0)
			return 1;
	return 0;
}

/* Says so when root i, just added, is missing: the backend covers it with
 * rescan records and retries it, and journals it as a new subtree once it
 * is back (so the first run after that lists all of it). */
void
note_missing_root(struct daemon *d, size_t i)
{
	int e = config_root_missing(&d->cfg, i);

	if (e != 0 && !watcher_root_is_watched(d->watcher, d->cfg.roots[i]))
		log_warning("root '%s' is missing (%s): its changes are covered by rescan records "
		    "until it is back; it is then watched again and everything below it counts as "
		    "new", d->cfg.roots[i], strerror(e));
}

/* Reads the configuration file again into nc for a reload or a restart in
 * place (what: "reload", "restart"). Returns 0, or -1 (refused, logged). */
int
load_new_config(struct daemon *d, struct config *nc, const char *what)
{
	if (config_load(nc, d->config_file) < 0) {
		log_error("%s refused, keeping the running configuration: %s", what, nc->err.msg);
		return -1;
	}
	if (strcmp(nc->journal, d->cfg.journal) != 0) {
		log_error("%s refused: key 'journal' changed ('%s' to '%s'): stop and start chjournald "
		    "for that", what, d->cfg.journal, nc->journal);
		config_free(nc);
		return -1;
	}
	return 0;
}

/* Puts nc (read by load_new_config) in place of the running configuration:
 * adds and removes roots in place. */
void
apply_config(struct daemon *d, struct config *nc)
{
	struct config old;
	size_t i;
	struct chj_error e;
	int excludes_changed;

	flush(d);
	excludes_changed = !same_excludes(nc, &d->cfg);
	old = d->cfg;
	d->cfg = *nc;
	watcher_set_config(d->watcher, &d->cfg);
	log_set_level((enum config_log_level)((int)d->cfg.log_level + d->verbosity > CONFIG_LOG_DEBUG ?
	    CONFIG_LOG_DEBUG : (int)d->cfg.log_level + d->verbosity));
	for (i = 0; i < old.nroots; i++) {
		if (excludes_changed || !has_root(&d->cfg, old.roots[i])) {
			log_info("root '%s' removed", old.roots[i]);
			watcher_remove_root(d->watcher, old.roots[i]);
		}
	}
	for (i = 0; i < d->cfg.nroots; i++) {
		if (!excludes_changed && has_root(&old, d->cfg.roots[i]))
			continue;
		if (watcher_add_root(d->watcher, d->cfg.roots[i], &e) < 0) {
			log_error("%s", e.msg);
			continue;
		}
		note_missing_root(d, i);
		/* a new root, or one whose exclusions changed: consumers have not
		 * seen (all of) it, so everything below counts as new */
		log_info("root '%s' %s: everything below it counts as changed", d->cfg.roots[i],
		    excludes_changed && has_root(&old, d->cfg.roots[i]) ? "has new excludes" : "added");
		pending_change(d->pending, d->cfg.roots[i], JF_SUBTREE | JF_DIR | JF_CREATED);
	}
	config_free(&old);
	consumers_close(&d->consumers);
	consumers_open(&d->consumers, d->cfg.consumers, 1);
	apply_group(d);
	write_static_meta(d);
	check_nfs_exports(d);
	/* records the mount state of the new roots, so their mounts are followed */
	if (d->mounts != NULL)
		check_mounts(d);
	flush(d);
	log_info("reload done: %zu roots", d->cfg.nroots);
}

/* SIGHUP: re-reads the configuration; adds and removes roots in place. */
void
reload(struct daemon *d)
{
	struct config nc;

	/* logrotate's postrotate: the old file was moved away */
	if (log_reopen() < 0)
		log_error("cannot reopen the log file: %s: logging on to the old one", strerror(errno));
	log_info("SIGHUP: reloading '%s'", d->config_file);
	if (load_new_config(d, &nc, "reload") == 0)
		apply_config(d, &nc);
}
