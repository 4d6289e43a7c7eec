/* verify.c: the check of a user's Cyrus archive (verify.h): arch_verify_ex
 * over the archive, each stored cyrus.index and cyrus.expunge parsed as it
 * goes by, each delta of one or of a per-user database rebuilt
 * (metadelta.h), then every message they reference looked up in the
 * sidecar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "array.h"
#include "cyrus/cyrus.h"
#include "cyrus/metadelta.h"
#include "cyrus/verify.h"

/* A message a stored index references, and the index copy that does. */
struct guid_ref {
	char name[48];              /* files/<sha1> */
	char *from;                 /* "folders/UID/cyrus.index" */
};

/* A delta member seen (the scan does not say its run): every copy of it
 * is rebuilt after the pass. */
struct delta_ref {
	char *name;                 /* folders/UID/cyrus.index (the state's name) */
};

struct verify_ctx {
	const char *path;
	long problems;
	struct delta_ref *deltas;
	size_t ndeltas, capdeltas;
	struct guid_ref *refs;
	size_t nrefs, caprefs;
	int oom;
	long runs;                  /* complete runs the archive holds (-1: unknown) */
	cyrus_verify_cb cb;
	void *cbctx;
};

/* Tells one line: a problem, or a note (problem 0) that is not one. */
static void
verify_finding(void *ctx, int problem, const char *msg)
{
	struct verify_ctx *v = ctx;

	v->problems += problem != 0;
	if (v->cb != NULL)
		v->cb(v->cbctx, problem, msg);
}

static void
verify_problem(struct verify_ctx *v, const char *msg)
{
	verify_finding(v, 1, msg);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int
add_ref(struct verify_ctx *v, const uint8_t *guid, const struct arch_entry *e)
{
	struct guid_ref *r;
	char hex[41];

	if (v->nrefs == v->caprefs) {
		size_t cap = v->caprefs ? v->caprefs * 2 : 1024;
		void *np = realloc(v->refs, cap * sizeof *v->refs);

		if (np == NULL)
			return -1;
		v->refs = np;
		v->caprefs = cap;
	}
	r = &v->refs[v->nrefs];
	cyrus_guid_hex(guid, hex);
	snprintf(r->name, sizeof r->name, ARCH_FILES "%s", hex);
	if (asprintf(&r->from, "%s", e->name) < 0)
		return -1;
	v->nrefs++;
	return 0;
}

/* Adds the messages index data (the state of e->name) references. */
static void
add_index_refs(struct verify_ctx *v, const struct arch_entry *e, const void *data, size_t len)
{
	struct cyrus_index x;
	static const uint8_t zero[20];
	uint32_t i;

	memset(&x, 0, sizeof x);
	if (cyrus_index_parse(&x, data, len) < 0) {
		char msg[sizeof x.err.msg + 1200];

		snprintf(msg, sizeof msg, "%s: %s", e->name, x.err.msg);
		verify_problem(v, msg);
		cyrus_index_free(&x);
		return;
	}
	for (i = 0; i < x.num_records; i++) {
		if (!cyrus_record_has_file(&x.records[i]) || memcmp(x.records[i].guid, zero, 20) == 0)
			continue;
		if (add_ref(v, x.records[i].guid, e) < 0)
			v->oom = 1;
	}
	cyrus_index_free(&x);
}

/* A delta member going by: its head and extents must parse; it is
 * rebuilt after the pass (check_deltas). */
static int
note_delta(struct verify_ctx *v, const struct arch_entry *e, const void *data, size_t len)
{
	struct cyrus_delta_info info;
	struct chj_error err;
	struct delta_ref *d;

	if (cyrus_delta_info(data, len, &info, &err) < 0) {
		char msg[sizeof err.msg + 256];

		snprintf(msg, sizeof msg, "%s (run %lld): %s", e->name, (long long)e->run, err.msg);
		verify_problem(v, msg);
		return 0;
	}
	if ((d = array_grow(v->deltas, v->ndeltas, &v->capdeltas, sizeof *d, 16)) == NULL) {
		v->oom = 1;
		return 0;
	}
	v->deltas = d;
	d[v->ndeltas].name = strndup(e->name, strlen(e->name) - strlen(CYRUS_DELTA_SUFFIX));
	if (d[v->ndeltas].name == NULL)
		v->oom = 1;
	else
		v->ndeltas++;
	return 0;
}

static int
delta_refs_cb(void *cbctx, const struct cyrus_meta_want *w, const struct arch_entry *e, char **buf,
    size_t len, const struct cyrus_meta_chain *chain, struct chj_error *err)
{
	struct verify_ctx *v = cbctx;
	struct arch_entry named = *e;
	char name[1100];

	(void)chain;
	(void)err;
	/* a per-user database: rebuilt and its SHA1 checked is all */
	if (!ends_with(w->name, "/cyrus.index") && !ends_with(w->name, "/cyrus.expunge"))
		return 0;
	snprintf(name, sizeof name, "%s" CYRUS_DELTA_SUFFIX, w->name);
	named.name = name;
	add_index_refs(v, &named, *buf, len);
	return 0;
}

/* Notes the per-user databases stored as deltas (the scan hands over
 * folders/ entries only): their names, from the sidecar. */
static int
note_user_deltas(struct verify_ctx *v, struct arch *ar)
{
	struct arch_entry *e = NULL;
	struct delta_ref *d;
	size_t n = 0, i;
	int rc = 0;

	if (arch_list(ar, ARCH_USER, 0, &e, &n) < 0)
		return -1;
	for (i = 0; i < n && rc == 0; i++) {
		if (!cyrus_delta_name(e[i].name))
			continue;
		if ((d = array_grow(v->deltas, v->ndeltas, &v->capdeltas, sizeof *d, 16)) == NULL) {
			rc = -1;
			break;
		}
		v->deltas = d;
		d[v->ndeltas].name = strndup(e[i].name, strlen(e[i].name) - strlen(CYRUS_DELTA_SUFFIX));
		if (d[v->ndeltas].name == NULL)
			rc = -1;
		else
			v->ndeltas++;
	}
	arch_entries_free(e, n);
	return rc;
}

static int
delta_ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct delta_ref *)a)->name, ((const struct delta_ref *)b)->name);
}

/* One want per copy of each delta seen (names deduplicated), its run found
 * in the sidecar, newest first. */
static int
delta_wants(struct verify_ctx *v, struct arch *ar, struct cyrus_meta_want **out, size_t *n)
{
	struct cyrus_meta_want *w = NULL, *nw;
	size_t i, cap = 0;

	qsort(v->deltas, v->ndeltas, sizeof *v->deltas, delta_ref_cmp);
	for (i = 0; i < v->ndeltas; i++) {
		struct arch_entry e;
		char dname[1100];
		int64_t upto = 0;

		if (i > 0 && strcmp(v->deltas[i - 1].name, v->deltas[i].name) == 0)
			continue;
		snprintf(dname, sizeof dname, "%s" CYRUS_DELTA_SUFFIX, v->deltas[i].name);
		while (arch_latest(ar, dname, upto, &e) == 1) {
			upto = e.run - 1;
			arch_entry_free(&e);
			if ((nw = array_grow(w, *n, &cap, sizeof *w, 16)) == NULL) {
				free(w);
				return -1;
			}
			w = nw;
			w[*n].name = v->deltas[i].name;
			w[*n].upto = upto + 1;
			w[*n].ctx = NULL;
			(*n)++;
			if (upto < 1)
				break;
		}
	}
	*out = w;
	return 0;
}

/* Rebuilds every delta seen, and every per-user database's delta the
 * sidecar lists (each chain down to its whole copy, the
 * result's SHA1 checked): one pass for all; when that fails, one by one,
 * each broken delta a problem line naming it. */
static void
check_deltas(struct verify_ctx *v)
{
	struct cyrus_meta_want *w = NULL;
	struct arch *ar = NULL;
	struct chj_error err;
	char last[sizeof err.msg];
	size_t i, n = 0;

	if (arch_open(&ar, v->path, ARCH_READ, &err) < 0) {
		/* the scan said what is wrong; deltas it saw cannot be rebuilt */
		if (v->ndeltas > 0)
			verify_problem(v, err.msg);
		return;
	}
	if (note_user_deltas(v, ar) < 0) {
		verify_problem(v, arch_error(ar)->code == CHJ_OK ? "out of memory listing the per-user "
		    "databases' deltas" : arch_error(ar)->msg);
		goto out;
	}
	if (v->ndeltas == 0)
		goto out;
	if (delta_wants(v, ar, &w, &n) < 0) {
		v->oom = 1;
		goto out;
	}
	if (cyrus_meta_fetch(ar, w, n, delta_refs_cb, v, &err) == 0)
		goto out;
	/* a broken delta breaks the later ones built on it: named once */
	last[0] = '\0';
	for (i = 0; i < n; i++)
		if (cyrus_meta_fetch(ar, &w[i], 1, delta_refs_cb, v, &err) < 0 && strcmp(err.msg, last) != 0) {
			verify_problem(v, err.msg);
			memcpy(last, err.msg, sizeof last);
		}
out:
	free(w);
	arch_close(ar);
}

/* Called by arch_verify for each folders/ entry: a stored index must parse,
 * and every message it references is remembered for the check after. */
static int
verify_index(void *ctx, const struct arch_entry *e, const void *data, size_t len)
{
	struct verify_ctx *v = ctx;

	if (ends_with(e->name, "/cyrus.index" CYRUS_DELTA_SUFFIX) ||
	    ends_with(e->name, "/cyrus.expunge" CYRUS_DELTA_SUFFIX))
		return note_delta(v, e, data, len);
	if (ends_with(e->name, "/cyrus.index") || ends_with(e->name, "/cyrus.expunge"))
		add_index_refs(v, e, data, len);
	return 0;
}

static int
ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct guid_ref *)a)->name, ((const struct guid_ref *)b)->name);
}

/* Every referenced message must be stored (once per message named). */
static void
check_refs(struct verify_ctx *v)
{
	struct arch *ar = NULL;
	struct chj_error err;
	size_t i;

	if (v->nrefs == 0)
		return;
	if (arch_open(&ar, v->path, ARCH_READ, &err) < 0) {
		verify_problem(v, err.msg);
		return;
	}
	qsort(v->refs, v->nrefs, sizeof *v->refs, ref_cmp);
	for (i = 0; i < v->nrefs; i++) {
		char msg[1024];
		int has;

		if (i > 0 && strcmp(v->refs[i - 1].name, v->refs[i].name) == 0)
			continue;
		has = arch_has(ar, v->refs[i].name);
		if (has == 1)
			continue;
		snprintf(msg, sizeof msg, "%s references message %s, which the archive %s",
		    v->refs[i].from, v->refs[i].name + strlen(ARCH_FILES),
		    has == 0 ? "does not hold" : "cannot be searched for");
		verify_problem(v, msg);
	}
	arch_close(ar);
}

/* Opens the archive as a reader would (which writes nothing: a missing or
 * stale sidecar is derived data, read into memory; the check of the archive
 * says what is wrong with it) and counts its complete runs into v->runs.
 * Returns 1 when the sidecar was there and matched the archive (so it may
 * vouch for where the runs end). */
static int
open_as_reader(struct verify_ctx *v)
{
	struct arch *ar = NULL;
	struct chj_error err;
	char *idx = arch_sidecar_path(v->path);
	int had = idx != NULL && access(idx, F_OK) == 0, kept = 0;

	v->runs = -1;
	if (arch_open(&ar, v->path, ARCH_READ, &err) == 0) {
		struct arch_run *runs;
		size_t n;

		kept = had && !arch_sidecar_stale(ar);
		if (arch_runs(ar, &runs, &n) == 0) {
			v->runs = (long)n;
			free(runs);
		}
		arch_close(ar);
	}
	free(idx);
	return kept;
}

static void
verify_ctx_free(struct verify_ctx *v)
{
	size_t i;

	for (i = 0; i < v->nrefs; i++)
		free(v->refs[i].from);
	free(v->refs);
	for (i = 0; i < v->ndeltas; i++)
		free(v->deltas[i].name);
	free(v->deltas);
}

long
cyrus_verify(const char *path, cyrus_verify_cb cb, void *ctx, struct chj_error *e)
{
	struct verify_ctx v;
	int n, had;
	long rc;

	memset(&v, 0, sizeof v);
	v.path = path;
	v.cb = cb;
	v.cbctx = ctx;
	had = open_as_reader(&v);
	n = arch_verify_ex(path, had ? ARCH_VERIFY_TAIL_NOTE : 0, verify_finding, verify_index, &v, e);
	if (n < 0) {
		rc = -1;
	} else {
		if (v.oom)
			verify_problem(&v, "out of memory collecting the messages indexes reference");
		/* a backup always holds a run: an empty or truncated file is not ok */
		if (v.runs == 0)
			verify_problem(&v, "the archive holds no complete run (empty, or cut before its "
			    "first run ended)");
		check_deltas(&v);
		check_refs(&v);
		rc = v.problems;
	}
	verify_ctx_free(&v);
	return rc;
}
