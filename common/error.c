/* error.c: the library's error model (error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int
chj_error_set(struct chj_error *e, enum chj_code code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	e->code = code;
	e->errnum = errnum;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	if (errnum != 0 && n < sizeof e->msg)
		snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
	return -1;
}

void
chj_error_clear(struct chj_error *e)
{
	e->code = CHJ_OK;
	e->errnum = 0;
	e->msg[0] = '\0';
}
