/* config.c: parser and validator for chjournal.conf ("key = value" lines,
 * '#' comments). Every error names the file, the line and the key. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "path.h"

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)

/* A malformed configuration: CHJ_ERR_INVALID. */
static void
config_error(struct config *c, const char *fmt, ...)
{
	va_list ap;

	c->err.code = CHJ_ERR_INVALID;
	c->err.errnum = 0;
	va_start(ap, fmt);
	vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
	va_end(ap);
}

const char *
config_choose_file(const char *explicit_file)
{
	const char *env;

	if (explicit_file != NULL)
		return explicit_file;
	env = getenv("CHJOURNAL_CONF");
	if (env != NULL && *env != '\0')
		return env;
	return CONFIG_DEFAULT_FILE;
}

const char *
config_backend_name(enum config_backend b)
{
	switch (b) {
	case CONFIG_BACKEND_INOTIFY:
		return "inotify";
	case CONFIG_BACKEND_FANOTIFY:
		return "fanotify";
	case CONFIG_BACKEND_AUTO:
		return "auto";
	}
	return "unknown";
}

static int
push_string(char ***arr, size_t *n, const char *s)
{
	char **na = realloc(*arr, (*n + 1) * sizeof **arr);

	if (na == NULL)
		return -1;
	*arr = na;
	na[*n] = strdup(s);
	if (na[*n] == NULL)
		return -1;
	(*n)++;
	return 0;
}

/* Parses an unsigned integer in [min, max]; returns -1 on any junk. */
static int
parse_uint(const char *v, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* Returns 1 when a repetition operator (* + ? {m,n}) directly follows
 * another one outside a bracket expression: undefined in POSIX ERE, and
 * glibc's regcomp duplicates the subtree per operator (22 '+' take 3 GB). */
static int
regex_stacks_repetition(const char *re)
{
	const char *p = re;
	int after_rep = 0;

	while (*p != '\0') {
		if (*p == '\\') {
			after_rep = 0;
			p += p[1] != '\0' ? 2 : 1;
			continue;
		}
		if (*p == '[') {
			/* skip the bracket expression: ']' first is literal */
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p != '\0' && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
					char close = p[1];

					p += 2;
					while (*p != '\0' && !(*p == close && p[1] == ']'))
						p++;
					if (*p != '\0')
						p++;
				}
				if (*p != '\0')
					p++;
			}
			if (*p == ']')
				p++;
			after_rep = 0;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			if (after_rep)
				return 1;
			after_rep = 1;
			if (*p == '{')
				while (*p != '\0' && *p != '}')
					p++;
			if (*p != '\0')
				p++;
			continue;
		}
		after_rep = 0;
		p++;
	}
	return 0;
}

/* Checks one root: absolute, normalized, not a symlink, a directory. Returns
 * 0, 1 when nothing is at its path now (*missing: ENOENT or ENOTDIR: an
 * unmounted file system whose mount point was removed, a directory moved
 * away), or -1. A root that is missing is kept: the daemon covers it with
 * rescans until it is back, and every command goes on with the others. One
 * that exists but is not a directory, or that cannot be looked at
 * (permission, I/O error), stays an error: that is not a root gone for a
 * while but something to fix. */
static int
check_root(struct config *c, const char *file, int line, const char *v, char *out, size_t outsz,
    int *missing)
{
	struct stat st;
	size_t len = strlen(v);
	char disp[PATH_MAX];

	if (v[0] != '/') {
		config_error(c, "%s:%d: key 'root': '%s' is not an absolute path", file, line,
		    path_display(v, disp, sizeof disp));
		return -1;
	}
	if (len >= outsz) {
		config_error(c, "%s:%d: key 'root': path too long", file, line);
		return -1;
	}
	memcpy(out, v, len + 1);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	if (strstr(out, "/./") != NULL || strstr(out, "/../") != NULL || strstr(out, "//") != NULL ||
	    (len >= 2 && strcmp(out + len - 2, "/.") == 0) ||
	    (len >= 3 && strcmp(out + len - 3, "/..") == 0)) {
		config_error(c, "%s:%d: key 'root': '%s' is not a normalized path (no '.', '..' or '//')",
		    file, line, path_display(out, disp, sizeof disp));
		return -1;
	}
	*missing = 0;
	if (lstat(out, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			*missing = errno;
			return 1;
		}
		chj_error_set(&c->err, CHJ_ERR_SYS, errno, "%s:%d: key 'root': cannot use '%s'", file,
		    line, path_display(out, disp, sizeof disp));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		char real[PATH_MAX], rdisp[PATH_MAX];

		if (realpath(out, real) == NULL)
			config_error(c, "%s:%d: key 'root': '%s' is a symlink that cannot be resolved: %s",
			    file, line, path_display(out, disp, sizeof disp), strerror(errno));
		else
			config_error(c, "%s:%d: key 'root': '%s' is a symlink: name the directory it points to ('%s')",
			    file, line, path_display(out, disp, sizeof disp),
			    path_display(real, rdisp, sizeof rdisp));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		config_error(c, "%s:%d: key 'root': '%s' is not a directory", file, line,
		    path_display(out, disp, sizeof disp));
		return -1;
	}
	return 0;
}

/* Handles one "key = value" pair. */
/* ---- one function per key (config_keys below) ---- */

static int
set_path(struct config *c, const char *file, int line, const char *key, const char *v)
{
	int journal = strcmp(key, "journal") == 0;
	char **slot = journal ? &c->journal : &c->consumers;

	*(journal ? &c->journal_line : &c->consumers_line) = line;
	if (v[0] != '/') {
		config_error(c, "%s:%d: key '%s': '%s' is not an absolute path", file, line, key, v);
		return -1;
	}
	free(*slot);
	*slot = strdup(v);
	return *slot == NULL ? -1 : 0;
}

static int
set_root(struct config *c, const char *file, int line, const char *key, const char *v)
{
	char buf[PATH_MAX];
	size_t i;
	int missing, *nm;

	(void)key;
	if (check_root(c, file, line, v, buf, sizeof buf, &missing) < 0)
		return -1;
	for (i = 0; i < c->nroots; i++) {
		if (path_is_under(buf, c->roots[i]) || path_is_under(c->roots[i], buf)) {
			config_error(c, "%s:%d: key 'root': '%s' overlaps root '%s'", file, line,
			    buf, c->roots[i]);
			return -1;
		}
	}
	if ((nm = realloc(c->root_missing, (c->nroots + 1) * sizeof *nm)) == NULL)
		return -1;
	c->root_missing = nm;
	nm[c->nroots] = missing;
	if ((nm = realloc(c->root_lines, (c->nroots + 1) * sizeof *nm)) == NULL)
		return -1;
	c->root_lines = nm;
	nm[c->nroots] = line;
	return push_string(&c->roots, &c->nroots, buf);
}

static int
set_exclude(struct config *c, const char *file, int line, const char *key, const char *v)
{
	regex_t *nr;
	int rc;

	(void)key;
	if (regex_stacks_repetition(v)) {
		config_error(c, "%s:%d: key 'exclude': '%s' repeats a repetition (like '++' or "
		    "'*{2}'): not allowed, its compiled size grows exponentially", file, line, v);
		return -1;
	}
	nr = realloc(c->excludes, (c->nexcludes + 1) * sizeof *nr);
	if (nr == NULL)
		return -1;
	c->excludes = nr;
	rc = regcomp(&nr[c->nexcludes], v, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char rerr[256];

		regerror(rc, &nr[c->nexcludes], rerr, sizeof rerr);
		config_error(c, "%s:%d: key 'exclude': bad regular expression '%s': %s", file, line, v, rerr);
		return -1;
	}
	if (push_string(&c->exclude_sources, &c->nexcludes, v) < 0) {
		regfree(&nr[c->nexcludes]);
		return -1;
	}
	return 0;
}

static int
set_backend(struct config *c, const char *file, int line, const char *key, const char *v)
{
	(void)key;
	c->backend_line = line;
	if (strcmp(v, "inotify") == 0)
		c->backend = CONFIG_BACKEND_INOTIFY;
	else if (strcmp(v, "fanotify") == 0)
		c->backend = CONFIG_BACKEND_FANOTIFY;
	else if (strcmp(v, "auto") == 0)
		c->backend = CONFIG_BACKEND_AUTO;
	else {
		config_error(c, "%s:%d: key 'backend': unknown backend '%s' (expected 'inotify', "
		    "'fanotify' or 'auto')", file, line, v);
		return -1;
	}
	return 0;
}

static int
set_group(struct config *c, const char *file, int line, const char *key, const char *v)
{
	struct group gr, *res = NULL;
	char gbuf[16384];
	int e = getgrnam_r(v, &gr, gbuf, sizeof gbuf, &res);

	(void)key;
	if (res == NULL) {
		if (e != 0 && e != ENOENT && e != ESRCH)
			chj_error_set(&c->err, CHJ_ERR_SYS, e, "%s:%d: key 'group': cannot look up "
			    "group '%s'", file, line, v);
		else
			config_error(c, "%s:%d: key 'group': no group named '%s'", file, line, v);
		return -1;
	}
	free(c->group);
	c->group_line = line;
	if ((c->group = strdup(v)) == NULL)
		return -1;
	c->gid = gr.gr_gid;
	return 0;
}

static int
set_log_level(struct config *c, const char *file, int line, const char *key, const char *v)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	size_t i;

	(void)key;
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(v, names[i]) == 0) {
			c->log_level = (enum config_log_level)i;
			return 0;
		}
	}
	config_error(c, "%s:%d: key 'log_level': unknown level '%s' (expected error, warning, info or debug)",
	    file, line, v);
	return -1;
}

/* The keys: a numeric one is set by config_set from its range and field. */
static const struct config_key {
	const char *name;
	int single;                 /* given at most once */
	int (*set)(struct config *c, const char *file, int line, const char *key, const char *v);
	size_t field;               /* numeric keys (set NULL): offsetof the unsigned */
	unsigned min, max;
	const char *what;           /* numeric keys: "a number of seconds" */
} config_keys[] = {
	{ "journal", 1, set_path, 0, 0, 0, NULL },
	{ "consumers", 1, set_path, 0, 0, 0, NULL },
	{ "root", 0, set_root, 0, 0, 0, NULL },
	{ "exclude", 0, set_exclude, 0, 0, 0, NULL },
	{ "backend", 1, set_backend, 0, 0, 0, NULL },
	{ "flush_interval_ms", 1, NULL, offsetof(struct config, flush_interval_ms), 10, 60000,
	  "a number" },
	{ "flush_idle_ms", 1, NULL, offsetof(struct config, flush_idle_ms), 0, 60000, "a number" },
	{ "batch_size", 1, NULL, offsetof(struct config, batch_size), 1, 10000000, "a number" },
	{ "sync_timeout", 1, NULL, offsetof(struct config, sync_timeout), 1, 86400,
	  "a number of seconds" },
	{ "pending_limit", 1, NULL, offsetof(struct config, pending_limit), 100, 100000000,
	  "a number" },
	{ "log_level", 1, set_log_level, 0, 0, 0, NULL },
	{ "group", 1, set_group, 0, 0, 0, NULL },
};

static int
config_set(struct config *c, const char *file, int line, const char *key, const char *v)
{
	const struct config_key *k = NULL;
	size_t i;

	for (i = 0; i < sizeof config_keys / sizeof config_keys[0] && k == NULL; i++)
		if (strcmp(key, config_keys[i].name) == 0)
			k = &config_keys[i];
	if (k == NULL) {
		config_error(c, "%s:%d: key '%s': unknown key", file, line, key);
		return -1;
	}
	if (k->single && (c->seen & (1u << (i - 1)))) {
		config_error(c, "%s:%d: key '%s': given more than once", file, line, key);
		return -1;
	}
	c->seen |= 1u << (i - 1);
	if (k->set != NULL)
		return k->set(c, file, line, key, v);
	if (parse_uint(v, k->min, k->max, (unsigned *)((char *)c + k->field)) < 0) {
		config_error(c, "%s:%d: key '%s': '%s' is not %s from %u to %u", file, line, key, v,
		    k->what, k->min, k->max);
		return -1;
	}
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Derives defaults that depend on other keys (the consumers directory). */
static int
config_finish(struct config *c, const char *file)
{
	if (c->nroots == 0) {
		config_error(c, "%s: key 'root': no root configured (add a line 'root = /path/to/spool')", file);
		return -1;
	}
	if (c->journal == NULL && (c->journal = strdup(CONFIG_DEFAULT_JOURNAL)) == NULL)
		return -1;
	if (c->consumers == NULL) {
		const char *slash = strrchr(c->journal, '/');
		size_t dl = (size_t)(slash - c->journal);

		c->consumers = malloc(dl + sizeof "/consumers");
		if (c->consumers == NULL)
			return -1;
		memcpy(c->consumers, c->journal, dl);
		memcpy(c->consumers + dl, "/consumers", sizeof "/consumers");
	}
	{
		/* the daemon would journal its own writes, and list them */
		size_t i;

		for (i = 0; i < c->nroots; i++) {
			if (path_is_under(c->journal, c->roots[i])) {
				config_error(c, "%s:%d: key 'journal': '%s' is inside root '%s'", file,
				    c->journal_line, c->journal, c->roots[i]);
				return -1;
			}
			if (path_is_under(c->consumers, c->roots[i])) {
				config_error(c, "%s:%d: key 'consumers': '%s' is inside root '%s'", file,
				    c->consumers_line, c->consumers, c->roots[i]);
				return -1;
			}
		}
	}
	{
		struct stat st;

		if (stat(c->consumers, &st) == 0 && !S_ISDIR(st.st_mode)) {
			config_error(c, "%s:%d: key 'consumers': '%s' is not a directory", file,
			    c->consumers_line, c->consumers);
			return -1;
		}
	}
	return 0;
}

/* One error: with fn, reported (and counted) and the parse goes on; without,
 * the parse stops. Returns 0 to go on, -1 to stop. */
static int
config_report(struct config *c, config_error_fn fn, void *ctx, int *nerr)
{
	if (fn == NULL)
		return -1;
	fn(ctx, c->err.msg);
	chj_error_clear(&c->err);
	(*nerr)++;
	return 0;
}

static int
config_parse_text(struct config *c, const char *file, const char *text, config_error_fn fn,
    void *ctx)
{
	const char *p = text;
	int line = 0, nerr = 0;
	char *copy = NULL;

	memset(c, 0, sizeof *c);
	c->flush_interval_ms = 1000;
	c->flush_idle_ms = 10;
	c->batch_size = 10000;
	c->sync_timeout = 60;
	c->pending_limit = 2000000;
	c->log_level = CONFIG_LOG_INFO;
	if ((c->file = strdup(file)) == NULL)
		goto nomem;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *s, *eq, *key, *val;

		line++;
		free(copy);
		if ((copy = malloc(len + 1)) == NULL)
			goto nomem;
		memcpy(copy, p, len);
		copy[len] = '\0';
		p += len + (nl ? 1 : 0);
		if (memchr(copy, '\0', len) != NULL) {
			config_error(c, "%s:%d: line contains a NUL byte", file, line);
			if (config_report(c, fn, ctx, &nerr) < 0)
				goto fail;
			continue;
		}
		s = trim(copy);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			config_error(c, "%s:%d: expected 'key = value', got '%.60s'", file, line, s);
			if (config_report(c, fn, ctx, &nerr) < 0)
				goto fail;
			continue;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (*key == '\0') {
			config_error(c, "%s:%d: missing key before '='", file, line);
			if (config_report(c, fn, ctx, &nerr) < 0)
				goto fail;
			continue;
		}
		if (*val == '\0') {
			config_error(c, "%s:%d: key '%s': missing value", file, line, key);
			if (config_report(c, fn, ctx, &nerr) < 0)
				goto fail;
			continue;
		}
		if (config_set(c, file, line, key, val) < 0) {
			if (c->err.code == CHJ_OK)
				goto nomem;
			if (config_report(c, fn, ctx, &nerr) < 0)
				goto fail;
		}
	}
	free(copy);
	copy = NULL;
	if (config_finish(c, file) < 0) {
		if (c->err.code == CHJ_OK)
			goto nomem;
		if (config_report(c, fn, ctx, &nerr) < 0)
			goto fail;
	}
	if (nerr > 0) {
		config_free(c);
		return nerr;
	}
	return 0;
nomem:
	chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "%s: out of memory", file);
	if (fn != NULL)
		fn(ctx, c->err.msg);
fail:
	free(copy);
	{
		struct chj_error err = c->err;

		config_free(c);
		c->err = err;
	}
	return -1;
}

int
config_parse(struct config *c, const char *file, const char *text)
{
	return config_parse_text(c, file, text, NULL, NULL);
}

int
config_load(struct config *c, const char *file)
{
	return config_check(c, file, NULL, NULL) == 0 ? 0 : -1;
}

static int config_read(struct config *c, const char *file, char **textp);

int
config_check(struct config *c, const char *file, config_error_fn fn, void *ctx)
{
	char *text;
	int rc;

	memset(c, 0, sizeof *c);
	rc = config_read(c, file, &text);
	if (rc < 0) {
		if (fn != NULL)
			fn(ctx, c->err.msg);
		return -1;
	}
	rc = config_parse_text(c, file, text, fn, ctx);
	free(text);
	return rc;
}

/* Reads the whole file into *text (allocated). Returns 0, or -1 with c->err
 * (CHJ_ERR_NOTFOUND when it does not exist, CHJ_ERR_SYS when it cannot be
 * read, CHJ_ERR_INVALID when it is too large or holds a NUL byte). */
static int
config_read(struct config *c, const char *file, char **textp)
{
	FILE *f;
	char *text;
	size_t n;
	struct stat st;

	f = fopen(file, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			chj_error_set(&c->err, CHJ_ERR_NOTFOUND, 0, "%s: cannot read configuration: %s",
			    file, strerror(ENOENT));
		else
			chj_error_set(&c->err, CHJ_ERR_SYS, errno, "%s: cannot read configuration", file);
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		chj_error_set(&c->err, CHJ_ERR_SYS, EISDIR, "%s: cannot read configuration", file);
		return -1;
	}
	text = malloc(CONFIG_MAX_FILE_SIZE + 1);
	if (text == NULL) {
		fclose(f);
		chj_error_set(&c->err, CHJ_ERR_NOMEM, 0, "%s: out of memory", file);
		return -1;
	}
	n = fread(text, 1, CONFIG_MAX_FILE_SIZE + 1, f);
	if (ferror(f)) {
		chj_error_set(&c->err, CHJ_ERR_SYS, errno, "%s: cannot read configuration", file);
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	if (n > CONFIG_MAX_FILE_SIZE) {
		free(text);
		config_error(c, "%s: configuration larger than %d bytes", file, CONFIG_MAX_FILE_SIZE);
		return -1;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		/* find the line for the message */
		int line = 1;
		size_t i;

		for (i = 0; i < n && text[i] != '\0'; i++)
			if (text[i] == '\n')
				line++;
		free(text);
		config_error(c, "%s:%d: line contains a NUL byte", file, line);
		return -1;
	}
	*textp = text;
	return 0;
}

void
config_free(struct config *c)
{
	size_t i;

	free(c->file);
	free(c->journal);
	free(c->consumers);
	for (i = 0; i < c->nroots; i++)
		free(c->roots[i]);
	free(c->roots);
	free(c->root_missing);
	free(c->root_lines);
	free(c->group);
	for (i = 0; i < c->nexcludes; i++) {
		regfree(&c->excludes[i]);
		free(c->exclude_sources[i]);
	}
	free(c->excludes);
	free(c->exclude_sources);
	memset(c, 0, sizeof *c);
}

int
config_is_excluded(const struct config *c, const char *path)
{
	size_t i;

	for (i = 0; i < c->nexcludes; i++)
		if (regexec(&c->excludes[i], path, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

int
config_is_cookie_path(const struct config *c, const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL && path_is_cookie_name(slash + 1) &&
	    config_is_root(c, path, (size_t)(slash - path));
}

int
config_is_root(const struct config *c, const char *path, size_t len)
{
	size_t i;

	for (i = 0; i < c->nroots; i++)
		if (strlen(c->roots[i]) == len && strncmp(c->roots[i], path, len) == 0)
			return 1;
	return 0;
}

int
config_root_of(const struct config *c, const char *path)
{
	size_t i;

	for (i = 0; i < c->nroots; i++)
		if (path_is_under(path, c->roots[i]))
			return (int)i;
	return -1;
}

int
config_root_missing(const struct config *c, size_t i)
{
	return i < c->nroots && c->root_missing != NULL ? c->root_missing[i] : 0;
}

size_t
config_missing_roots(const struct config *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->nroots; i++)
		n += config_root_missing(c, i) != 0;
	return n;
}
