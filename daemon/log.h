/* log.h: chjournald's log: stderr (default, for systemd), syslog, or a file
 * of its own (--log-file), reopened on SIGHUP for logrotate. */
#ifndef CHJ_LOG_H
#define CHJ_LOG_H

#include <stddef.h>

#include "config.h"

enum log_target {
	LOG_TARGET_STDERR = 0,
	LOG_TARGET_SYSLOG,
	LOG_TARGET_FILE,
};

/* Opens the log file (appended to, created mode 0640) without using it yet:
 * called before detaching, so that an error is seen. Returns 0, or -1 with
 * errno. */
int log_open_file(const char *file);
/* Starts logging to target at level (LOG_TARGET_FILE: the file opened). */
void log_init(enum log_target target, enum config_log_level level);
/* Closes and opens the log file again (logrotate moved it away): the old one
 * is kept when the new one cannot be opened. Returns 0 (also when the log
 * is not a file), or -1 with errno. */
int log_reopen(void);
void log_set_level(enum config_log_level level);
int log_enabled(enum config_log_level level);
/* 1 when messages go to stderr. */
int log_to_stderr(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
