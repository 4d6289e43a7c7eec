/* config.h: chjournal.conf, the one configuration file read by chjournald and
 * chjournal. config_load() either fills the whole struct or fails with a
 * message naming the file, the line and the key: never half-configured. A
 * root missing from the file system is not an error: it is marked. */
#ifndef CHJ_CONFIG_H
#define CHJ_CONFIG_H

#include <regex.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#define CONFIG_DEFAULT_FILE "/etc/chjournal.conf"
#define CONFIG_DEFAULT_JOURNAL "/var/lib/chjournal/journal.db"

enum config_backend {
	CONFIG_BACKEND_INOTIFY = 0,
	CONFIG_BACKEND_FANOTIFY,
	CONFIG_BACKEND_AUTO,     /* fanotify where it works, else inotify */
};

enum config_log_level {
	CONFIG_LOG_ERROR = 0,
	CONFIG_LOG_WARNING,
	CONFIG_LOG_INFO,
	CONFIG_LOG_DEBUG,
};

struct config {
	char *file;              /* the file this was read from */
	char *journal;           /* journal database */
	char *consumers;         /* directory of consumer cursor files */
	char **roots;            /* absolute, no trailing slash, not symlinks */
	size_t nroots;
	int *root_missing;       /* per root: 0, or the errno saying it is missing */
	int *root_lines;         /* per root: the line that names it */
	char **exclude_sources;  /* the regexes as written */
	regex_t *excludes;
	size_t nexcludes;
	enum config_backend backend;
	unsigned flush_interval_ms;
	unsigned flush_idle_ms;        /* 0: no flush when the events stop */
	unsigned batch_size;
	unsigned sync_timeout;   /* seconds `sync` and `begin` wait by default */
	unsigned pending_limit;  /* changes kept in memory while the journal is not writable */
	enum config_log_level log_level;
	char *group;             /* group that may read the journal and cursors, or NULL */
	gid_t gid;               /* its id (when group is not NULL) */
	int journal_line, consumers_line;   /* where they were set (0: default) */
	int backend_line, group_line;
	unsigned seen;                      /* single-valued keys already given */
	struct chj_error err;    /* why config_load() failed */
};

/* Returns the file to read: explicit (from -c) if not NULL, else
 * $CHJOURNAL_CONF if set and non-empty, else CONFIG_DEFAULT_FILE. */
const char *config_choose_file(const char *explicit_file);

/* Reads and validates file into c (zeroed first). Returns 0, or -1 with
 * c->err set ("FILE:LINE: key 'K': why"; CHJ_ERR_INVALID for a malformed
 * configuration, CHJ_ERR_NOTFOUND or CHJ_ERR_SYS when the file cannot be read,
 * CHJ_ERR_NOMEM) and nothing allocated. */
int config_load(struct config *c, const char *file);

/* Parses configuration text as if read from file (for tests and -c -). */
int config_parse(struct config *c, const char *file, const char *text);

/* Reads file as config_load() does, but goes on past an error: calls fn
 * with each message ("FILE:LINE: key 'K': why", the line skipped) in the
 * order of the file. Returns the number of errors (0: c is filled, as by
 * config_load; else c is empty), or -1 when the file cannot be read at all
 * (fn called with why). For `chjournald -t` and `chjournal check`. */
typedef void (*config_error_fn)(void *ctx, const char *msg);
int config_check(struct config *c, const char *file, config_error_fn fn, void *ctx);

/* Frees everything config_load() allocated; c may be reused afterwards. */
void config_free(struct config *c);

/* Returns 1 when path matches one of the exclude regexes. */
int config_is_excluded(const struct config *c, const char *path);

/* Returns 1 when the first len bytes of path are exactly a root. */
int config_is_root(const struct config *c, const char *path, size_t len);

/* Returns 1 when path is a sync cookie: a cookie-shaped name directly in a
 * root. */
int config_is_cookie_path(const struct config *c, const char *path);

/* Returns the index of the root that holds path, or -1. */
int config_root_of(const struct config *c, const char *path);

/* Returns 0 when root i was a directory when the configuration was read,
 * else the errno that said it is missing (ENOENT: nothing at its path;
 * ENOTDIR: a component above it is not a directory). A missing root is not
 * a configuration error: it is kept, covered by rescans until it is back. */
int config_root_missing(const struct config *c, size_t i);
/* The number of roots missing when the configuration was read. */
size_t config_missing_roots(const struct config *c);

/* Returns the name of a backend / log level as written in the file. */
const char *config_backend_name(enum config_backend b);

#endif
