/* output.c: writing path lists and times for the agent's commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "path.h"

int
agent_print_path(FILE *out, const char *path, int nul, unsigned long *refused)
{
	if (!nul && strchr(path, '\n') != NULL) {
		/* every byte may need 4 to display: name the whole path */
		size_t size = strlen(path) * 4 + 8;
		char *disp = malloc(size);

		agent_warn("cannot list '%s' without -0: its name contains a newline",
		    disp ? path_display(path, disp, size) : path);
		free(disp);
		(*refused)++;
		return 0;
	}
	if (fputs(path, out) == EOF || putc(nul ? '\0' : '\n', out) == EOF)
		return -1;
	return 0;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		n = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

int
agent_json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int lossless = 1;

	putc('"', out);
	while (*p != '\0') {
		size_t n = utf8_len(p);

		if (n == 0) {
			/* not UTF-8: JSON cannot carry the byte; mark it U+FFFD */
			fputs("\\ufffd", out);
			lossless = 0;
			p++;
			continue;
		}
		if (n > 1) {
			fwrite(p, 1, n, out);
			p += n;
			continue;
		}
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			putc(*p, out);
		p++;
	}
	putc('"', out);
	return lossless;
}

void
agent_json_hex(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putc('"', out);
	for (; *p != '\0'; p++)
		fprintf(out, "%02x", *p);
	putc('"', out);
}
