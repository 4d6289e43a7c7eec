/* cmd-restore.c: `chjournal restore ARCHIVE --to DIR [--at RUN|TIME]
 * [--folder NAME]...`: recreates under DIR the state of one run of a user's
 * archive (common/cyrus/restore.h) and says what it wrote; with
 * --to-server HOST[:PORT], puts the run back into a running Cyrus through
 * its replication protocol instead (cyrus_csync_restore); with --to-origin,
 * into the host each archive's run was pulled from (backup --from). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "archive/runsel.h"
#include "cyrus/restore.h"

/* Prints what the restore into a server did or would do, one line each. */
static void
tell(void *ctx, const struct cyrus_csync_event *ev)
{
	const char *verb;

	(void)ctx;
	if (ev->user_items) {
		printf("%suser '%s': %lu subscriptions and %lu sieve scripts %s (active: %s%s%s); ",
		    ev->dry_run ? "dry run: " : "", ev->user, ev->subscriptions, ev->scripts,
		    ev->dry_run ? "would be restored" : "restored", ev->active_script ? "'" : "",
		    ev->active_script ? ev->active_script : "none", ev->active_script ? "'" : "");
		if (ev->seen_other != NULL)
			printf("its seen state is not restored: '%s' is not a twoskip database\n",
			    ev->seen_other);
		else
			printf("its seen state in %lu folders of other users %s\n", ev->seen,
			    ev->dry_run ? "would be restored" : "restored");
		return;
	}
	if (ev->quota_root != NULL) {
		printf("%s quota root '%s' (%s)\n", ev->dry_run ? "dry run: would set" : "set",
		    ev->quota_root, ev->quota_limits[0] ? ev->quota_limits : "no limits");
		return;
	}
	switch (ev->action) {
	case CYRUS_CSYNC_CREATE:
		verb = ev->dry_run ? "would create" : "created";
		break;
	case CYRUS_CSYNC_PRESENT:
		verb = "already restored:";
		break;
	default:
		verb = "exists, refused:";
		break;
	}
	printf("%s%s folder '%s' (%lu records, uniqueid %s%s", ev->dry_run ? "dry run: " : "", verb,
	    ev->target, ev->messages, ev->uniqueid ? ev->uniqueid : "?",
	    ev->new_uniqueid ? ", a new one: the archived one is taken" : "");
	if (ev->modseq_shift)
		printf(", modseqs raised by %llu", (unsigned long long)ev->modseq_shift);
	printf(")\n");
}

/* Reads the first line of file into a static buffer; NULL with a message. */
static const char *
read_password(const char *file)
{
	static char pw[1024];
	FILE *f = fopen(file, "r");
	size_t n;

	if (f == NULL) {
		agent_error("cannot open password file '%s': %s", file, strerror(errno));
		return NULL;
	}
	if (fgets(pw, sizeof pw, f) == NULL)
		pw[0] = '\0';
	fclose(f);
	n = strcspn(pw, "\r\n");
	pw[n] = '\0';
	return pw;
}

/* Prints what the restore of one archive did. */
static void
tell_result(const struct cyrus_csync_opts *o,
    const struct cyrus_csync_result *res, const struct chj_error *e, int failed)
{
	if (failed)
		agent_error("%s", e->msg);
	else if (o->dry_run)
		printf("dry run: run %s of user '%s' into %s: %lu folders, %lu already there, "
		    "nothing written\n", res->run_name, res->user, res->server, res->folders, res->present);
	else
		printf("restored run %s of user '%s' into %s as '%s': %lu folders created, %lu "
		    "already there, %lu message files, %llu bytes sent\n", res->run_name, res->user,
		    res->server, res->target_user, res->created, res->present, res->uploaded,
		    (unsigned long long)res->bytes);
	fflush(stdout);
}

static int
to_server(char *const *archives, size_t narch, int jobs, const struct cyrus_csync_opts *o)
{
	struct cyrus_csync_result *res = calloc(narch, sizeof *res);
	struct chj_error *errs = calloc(narch, sizeof *errs);
	size_t i;
	int failed;

	if (res == NULL || errs == NULL) {
		free(res);
		free(errs);
		return agent_error("out of memory");
	}
	if (jobs <= 1 || narch == 1) {
		failed = 0;
		for (i = 0; i < narch; i++) {
			int bad = cyrus_csync_restore(archives[i], o, &res[i], &errs[i]) < 0;

			tell_result(o, &res[i], &errs[i], bad);
			failed += bad;
		}
	} else {
		/* each archive on its own connection; the lines of the results
		 * come at the end, in the order of the archives */
		failed = cyrus_csync_restore_many(archives, narch, jobs, o, res, errs);
		for (i = 0; i < narch; i++)
			tell_result(o, &res[i], &errs[i], errs[i].code != CHJ_OK);
	}
	for (i = 0; i < narch; i++)
		cyrus_csync_result_free(&res[i]);
	free(res);
	free(errs);
	return failed ? EXIT_ERROR : EXIT_OK;
}

/* --to-server's options into co; 0, or an exit status (printed) */
static int
server_opts(const struct cmdline *args, struct runsel *sel, struct cyrus_csync_opts *co)
{
	const char *pwfile = cmdline_value(args, "--password-file");

	memset(co, 0, sizeof *co);
	co->server = cmdline_value(args, "--to-server");     /* NULL: --to-origin */
	co->origin_port = cmdline_value(args, "--sync-port");
	co->authname = cmdline_value(args, "--authname");
	if (co->authname == NULL)
		co->authname = "admin";
	co->password = "";
	if (pwfile != NULL && (co->password = read_password(pwfile)) == NULL)
		return EXIT_ERROR;
	co->at = sel;
	co->folders = cmdline_values(args, "--folder", &co->nfolders);
	co->beside = cmdline_value(args, "--beside");
	co->dry_run = cmdline_has(args, "--dry-run") > 0;
	co->cb = tell;
	return 0;
}

/* --jobs N: 1 to 64; -1 (usage error printed) when bad */
static int
jobs_arg(const struct cmdline *args)
{
	const char *v = cmdline_value(args, "--jobs");
	char *end;
	long n;

	if (v == NULL)
		return 1;
	n = strtol(v, &end, 10);
	if (*end != '\0' || end == v || n < 1 || n > 64) {
		agent_usage_error("restore", "bad --jobs '%s': a number from 1 to 64", v);
		return -1;
	}
	return (int)n;
}

int
cmd_restore(struct agent *a, const struct cmdline *args)
{
	struct cyrus_restore_result res;
	struct cyrus_csync_opts co;
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	struct chj_error e;
	const char *to = cmdline_value(args, "--to");
	const char *const *only;
	size_t nonly;
	int rc, jobs;

	(void)a;
	if (agent_arg_at("restore", args, &sel) < 0 || (jobs = jobs_arg(args)) < 0)
		return EXIT_USAGE;
	only = cmdline_values(args, "--folder", &nonly);
	if (cmdline_has(args, "--to-origin") && to != NULL)
		return agent_usage_error("restore", "--to and --to-origin do not go together");
	if (cmdline_has(args, "--to-server") || cmdline_has(args, "--to-origin")) {
		if (nonly > 0 && args->operand_count > 1)
			return agent_usage_error("restore", "--folder restores from one archive only");
		rc = server_opts(args, &sel, &co);
		return rc != 0 ? rc : to_server(args->operands, (size_t)args->operand_count, jobs, &co);
	}
	if (to == NULL)
		return agent_usage_error("restore", "expected --to DIR, --to-server HOST[:PORT] or "
		    "--to-origin");
	if (args->operand_count > 1)
		return agent_usage_error("restore", "unexpected argument '%s'", args->operands[1]);
	if (cyrus_restore(args->operands[0], to, &sel, only, nonly, &res, &e) < 0) {
		rc = agent_error("%s", e.msg);
	} else {
		printf("restored run %s of user '%s': %lu folders, %lu message files, %lu other files, "
		    "%llu bytes to %s\n", res.run_name, res.user, res.folders, res.messages, res.files,
		    (unsigned long long)res.bytes, to);
		rc = EXIT_OK;
	}
	cyrus_restore_result_free(&res);
	return rc;
}
