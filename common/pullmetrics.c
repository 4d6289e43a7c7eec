/* pullmetrics.c: DIR/HOST.prom of each pulled host, written and read back
 * (pullmetrics.h). The file is node_exporter's text format; reading it
 * accepts what this module writes: a sample line per metric, labelled by
 * host. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "atomicfile.h"
#include "path.h"
#include "promtext.h"
#include "pullmetrics.h"

#define SUFFIX ".prom"

enum kind { K_TIME, K_INT, K_U64, K_ULONG, K_SECONDS };

/* The metric families, in file order: name, help, and where the value is. */
static const struct family {
	const char *name;
	const char *help;
	enum kind kind;
	size_t offset;
} families[] = {
	{ "chjournal_pull_last_run_time_seconds", "When the last backup --from of the host ended.",
	  K_TIME, offsetof(struct pull_metrics, last_run) },
	{ "chjournal_pull_last_success_time_seconds",
	  "When a backup --from of the host last succeeded (0: never).",
	  K_TIME, offsetof(struct pull_metrics, last_success) },
	{ "chjournal_pull_success",
	  "1 when the last backup --from of the host succeeded (consumer committed).",
	  K_INT, offsetof(struct pull_metrics, success) },
	{ "chjournal_pull_duration_seconds", "How long the last backup --from of the host took.",
	  K_SECONDS, offsetof(struct pull_metrics, duration) },
	{ "chjournal_pull_received_bytes",
	  "Bytes the last backup --from of the host received from serve.",
	  K_U64, offsetof(struct pull_metrics, received_bytes) },
	{ "chjournal_pull_runs_written", "User runs the last backup --from of the host wrote.",
	  K_ULONG, offsetof(struct pull_metrics, runs_written) },
	{ "chjournal_pull_users_failed",
	  "Users whose backup failed in the last backup --from of the host.",
	  K_ULONG, offsetof(struct pull_metrics, users_failed) },
};
#define NFAMILIES (sizeof families / sizeof families[0])

/* ---- text ---- */

struct text {
	char *s;
	size_t len;
	int failed;
};

static void
add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char *more;
	int n;

	if (t->failed)
		return;
	va_start(ap, fmt);
	n = vasprintf(&more, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = 1;
		return;
	}
	{
		char *ns = realloc(t->s, t->len + (size_t)n + 1);

		if (ns == NULL) {
			free(more);
			t->failed = 1;
			return;
		}
		t->s = ns;
	}
	memcpy(t->s + t->len, more, (size_t)n + 1);
	t->len += (size_t)n;
	free(more);
}

static void
add_sample(struct text *t, const struct family *f, const struct pull_metrics *m)
{
	const char *p = (const char *)m + f->offset;
	char host[600];

	prom_label_value(m->host, host, sizeof host);
	add(t, "%s{host=\"%s\"} ", f->name, host);
	switch (f->kind) {
	case K_TIME:
	case K_SECONDS:
		add(t, "%.3f\n", *(const double *)(const void *)p);
		break;
	case K_INT:
		add(t, "%d\n", *(const int *)(const void *)p);
		break;
	case K_U64:
		add(t, "%llu\n", (unsigned long long)*(const uint64_t *)(const void *)p);
		break;
	case K_ULONG:
		add(t, "%lu\n", *(const unsigned long *)(const void *)p);
		break;
	}
}

char *
pull_metrics_format(const struct pull_metrics *v, size_t n)
{
	struct text t = { NULL, 0, 0 };
	size_t i, k;

	add(&t, "%s", "");
	for (k = 0; k < NFAMILIES; k++) {
		add(&t, "# HELP %s %s\n# TYPE %s gauge\n", families[k].name, families[k].help,
		    families[k].name);
		for (i = 0; i < n; i++)
			add_sample(&t, &families[k], &v[i]);
	}
	if (t.failed) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

/* ---- reading ---- */

/* Parses one sample line into m; 1 when it was one of ours, 0 when not. */
static int
parse_sample(const char *line, struct pull_metrics *m, unsigned *seen)
{
	const char *brace = strchr(line, '{'), *space = strrchr(line, ' ');
	char *end;
	size_t k;

	if (brace == NULL || space == NULL || space < brace)
		return 0;
	for (k = 0; k < NFAMILIES; k++) {
		const struct family *f = &families[k];
		char *p = (char *)m + f->offset;
		double d;

		if (strlen(f->name) != (size_t)(brace - line) ||
		    strncmp(line, f->name, strlen(f->name)) != 0)
			continue;
		errno = 0;
		d = strtod(space + 1, &end);
		if (end == space + 1 || (*end != '\n' && *end != '\0') || errno != 0 || d < 0)
			return -1;
		switch (f->kind) {
		case K_TIME:
		case K_SECONDS:
			*(double *)(void *)p = d;
			break;
		case K_INT:
			*(int *)(void *)p = (int)d;
			break;
		case K_U64:
			*(uint64_t *)(void *)p = (uint64_t)d;
			break;
		case K_ULONG:
			*(unsigned long *)(void *)p = (unsigned long)d;
			break;
		}
		*seen |= 1u << k;
		return 1;
	}
	return 0;
}

/* The host a path names: its base name without ".prom". */
static int
host_of(const char *path, char *host, size_t size)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base);

	if (n <= strlen(SUFFIX) || strcmp(base + n - strlen(SUFFIX), SUFFIX) != 0 ||
	    n - strlen(SUFFIX) >= size)
		return -1;
	snprintf(host, size, "%.*s", (int)(n - strlen(SUFFIX)), base);
	return 0;
}

int
pull_metrics_read(const char *path, struct pull_metrics *m, struct chj_error *e)
{
	char line[1024];
	unsigned seen = 0;
	int lineno = 0, bad = 0;
	FILE *f;

	memset(m, 0, sizeof *m);
	if (host_of(path, m->host, sizeof m->host) < 0)
		return chj_error_set(e, CHJ_ERR_INVALID, 0, "'%s' is not a HOST%s file", path, SUFFIX);
	if ((f = fopen(path, "r")) == NULL)
		return chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "cannot read '%s'", path);
	while (!bad && fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (line[0] != '#' && parse_sample(line, m, &seen) < 0)
			bad = lineno;
	}
	fclose(f);
	if (bad)
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "'%s' line %d: a malformed value", path, bad);
	if (seen != (1u << NFAMILIES) - 1)
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "'%s': metrics missing (not written by "
		    "backup --from?)", path);
	return 0;
}

int
pull_metrics_write(const char *dir, struct pull_metrics *m, struct chj_error *e)
{
	struct pull_metrics before;
	struct chj_error ignored;
	char *path = NULL, *text = NULL;
	int rc = -1;

	if (asprintf(&path, "%s/%s%s", dir, m->host, SUFFIX) < 0) {
		path = NULL;
		goto nomem;
	}
	if (!m->success)            /* kept across failures */
		m->last_success = pull_metrics_read(path, &before, &ignored) == 0 ?
		    before.last_success : 0;
	if ((text = pull_metrics_format(m, 1)) == NULL)
		goto nomem;
	rc = atomicfile_write(path, text, strlen(text), 0644, e);
	goto out;
nomem:
	chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
out:
	free(text);
	free(path);
	return rc;
}

static int
host_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pull_metrics *)a)->host, ((const struct pull_metrics *)b)->host);
}

int
pull_metrics_list(const char *dir, struct pull_metrics **out, size_t *n, struct chj_error *e)
{
	struct pull_metrics *v = NULL, *nv;
	size_t len = 0, cap = 0;
	struct dirent *de;
	char *path;
	DIR *d;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "backup directory '%s'", dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char host[256];

		if (de->d_name[0] == '.' || host_of(de->d_name, host, sizeof host) < 0)
			continue;
		if ((nv = array_grow(v, len, &cap, sizeof *v, 16)) == NULL ||
		    (path = path_join(dir, de->d_name)) == NULL) {
			if (nv != NULL)
				v = nv;
			rc = chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
			break;
		}
		v = nv;
		rc = pull_metrics_read(path, &v[len], e);
		free(path);
		if (rc == 0)
			len++;
	}
	closedir(d);
	if (rc < 0) {
		free(v);
		return -1;
	}
	if (len > 1)
		qsort(v, len, sizeof *v, host_cmp);
	*out = v;
	*n = len;
	return 0;
}
