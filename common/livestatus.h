/* livestatus.h: the daemon's figures as they are now, for `chjournal status`
 * and `begin`, without waiting for a flush and even when the journal cannot
 * be written (a full disk): a small file beside the journal
 * ("<journal>.status"), made whole when the daemon starts (so updating it
 * never needs a new block of a full disk), mapped and updated in place by
 * the daemon, read by the agent. One typed record (no string keys), with a
 * sequence count around each update (odd while writing, as a seqlock) so a
 * reader never takes half of one. A record whose pid is not the running
 * daemon's (the lock file's) is a stopped daemon's last state. */
#ifndef CHJ_LIVESTATUS_H
#define CHJ_LIVESTATUS_H

#include <stdint.h>

#include "error.h"

#define LIVESTATUS_MAGIC   0x43484a53u      /* "CHJS" */
#define LIVESTATUS_VERSION 1
#define LIVESTATUS_SUFFIX  ".status"

/* What the daemon is doing. */
enum livestatus_state {
	LIVESTATUS_STARTING = 0,      /* reading the configuration, opening */
	LIVESTATUS_CRAWLING,          /* watching the roots (inotify's crawl) */
	LIVESTATUS_READY,             /* every root watched (or covered by rescans) */
	LIVESTATUS_STOPPED,           /* stopped cleanly */
};

struct livestatus {
	uint32_t magic, version;
	uint64_t seq;                 /* odd while being written */
	int64_t pid;
	int64_t started;              /* unix time */
	int64_t updated;              /* unix time of this update */
	uint32_t state;               /* enum livestatus_state */
	char backend[16];
	uint64_t watches;             /* directories watched, file systems marked */
	uint64_t crawled;             /* directories the crawl has watched so far */
	uint64_t unwatched;           /* roots or directories covered by rescans */
	uint64_t events;
	uint64_t overflows;
	uint64_t rescans_recorded;
	uint64_t watch_failures;
	uint64_t flushes;
	uint64_t pending;             /* changes in memory, not yet journaled */
	int64_t last_flush;           /* unix time of the last journal write */
	int64_t journal_error_since;  /* 0: the journal is written; else since when not */
	char journal_error[256];      /* why not ("disk full: ...") */
	char reserved[512];           /* room for later fields: the file keeps its size */
};

struct livestatus_writer;

/* The daemon: makes (or takes over) "<journal>.status", whole, mode 0644,
 * and maps it. NULL with e filled. */
struct livestatus_writer *livestatus_open(const char *journal, struct chj_error *e);
/* The record to update between begin and end (seq made odd, then even). */
struct livestatus *livestatus_begin(struct livestatus_writer *w);
void livestatus_end(struct livestatus_writer *w);
void livestatus_close(struct livestatus_writer *w);

/* The agent: reads a consistent copy. Returns 1 (read), 0 (no file: no
 * daemon ever ran with this journal, or an older one), -1 with e. */
int livestatus_read(const char *journal, struct livestatus *out, struct chj_error *e);

/* "starting", "crawling", "ready", "stopped". */
const char *livestatus_state_name(uint32_t state);

#endif
