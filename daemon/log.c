/* log.c: leveled logging to stderr or syslog for chjournald. The daemon is a
 * program, not a library, so this one piece of process state is global. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int log_use_syslog;
static enum config_log_level log_level = CONFIG_LOG_INFO;

void
log_init(int use_syslog, enum config_log_level level)
{
	log_use_syslog = use_syslog;
	log_level = level;
	if (use_syslog)
		openlog("chjournald", LOG_PID, LOG_DAEMON);
}

void
log_set_level(enum config_log_level level)
{
	log_level = level;
}

int
log_enabled(enum config_log_level level)
{
	return level <= log_level;
}

static void
log_v(enum config_log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *names[] = { "error", "warning", "info", "debug" };
	char msg[8192], clean[8192 * 4];
	size_t i, o = 0;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* one record per line whatever the file names hold */
	for (i = 0; msg[i] != '\0' && o + 5 < sizeof clean; i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c == '\n')
			o += (size_t)snprintf(clean + o, sizeof clean - o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(clean + o, sizeof clean - o, "\\x%02x", c);
		else
			clean[o++] = (char)c;
	}
	clean[o] = '\0';
	if (log_use_syslog) {
		syslog(prio[level], "%s", clean);
		return;
	}
	{
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;

		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
		fprintf(stderr, "%s chjournald: %s: %s\n", ts, names[level], clean);
		fflush(stderr);
	}
}

#define LOG_FN(name, level)                   \
	void name(const char *fmt, ...)       \
	{                                     \
		va_list ap;                   \
		va_start(ap, fmt);            \
		log_v(level, fmt, ap);        \
		va_end(ap);                   \
	}

LOG_FN(log_error, CONFIG_LOG_ERROR)
LOG_FN(log_warning, CONFIG_LOG_WARNING)
LOG_FN(log_info, CONFIG_LOG_INFO)
LOG_FN(log_debug, CONFIG_LOG_DEBUG)
