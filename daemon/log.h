/* log.h: chjournald's log: stderr (default, for systemd) or syslog. */
#ifndef CHJ_LOG_H
#define CHJ_LOG_H

#include "config.h"

void log_init(int use_syslog, enum config_log_level level);
void log_set_level(enum config_log_level level);
int log_enabled(enum config_log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
