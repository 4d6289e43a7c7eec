/* log.c: leveled logging to stderr, syslog or a file for chjournald. The
 * daemon is a program, not a library, so this one piece of process state is
 * global. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static enum config_log_level log_level = CONFIG_LOG_INFO;
static char *log_file;          /* --log-file, absolute */
static int log_fd = -1;

static int
open_log_file(const char *file)
{
	return open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0640);
}

int
log_open_file(const char *file)
{
	int fd = open_log_file(file);

	if (fd < 0)
		return -1;
	free(log_file);
	if ((log_file = strdup(file)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_init(enum log_target target, enum config_log_level level)
{
	log_target = target;
	log_level = level;
	if (target == LOG_TARGET_SYSLOG)
		openlog("chjournald", LOG_PID, LOG_DAEMON);
}

int
log_reopen(void)
{
	int fd;

	if (log_target != LOG_TARGET_FILE || log_file == NULL)
		return 0;
	if ((fd = open_log_file(log_file)) < 0)
		return -1;
	close(log_fd);
	log_fd = fd;
	return 0;
}

int
log_to_stderr(void)
{
	return log_target == LOG_TARGET_STDERR;
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
	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(prio[level], "%s", clean);
		return;
	}
	{
		char ts[32], *line;
		time_t now = time(NULL);
		struct tm tm;
		int n;

		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
		if (log_target == LOG_TARGET_STDERR) {
			fprintf(stderr, "%s chjournald: %s: %s\n", ts, names[level], clean);
			fflush(stderr);
			return;
		}
		/* one write per line: O_APPEND keeps lines whole */
		n = asprintf(&line, "%s chjournald: %s: %s\n", ts, names[level], clean);
		if (n > 0) {
			ssize_t w = write(log_fd, line, (size_t)n);

			(void)w;     /* nowhere left to say that the log failed */
			free(line);
		}
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
