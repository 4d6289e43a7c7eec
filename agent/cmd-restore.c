/* cmd-restore.c: `chjournal restore ARCHIVE --to DIR [--at RUN|TIME]
 * [--folder NAME]...`: recreates under DIR the state of one run of a user's
 * archive (common/cyrus/restore.h) and says what it wrote; with
 * --to-server HOST[:PORT], puts the run back into a running Cyrus through
 * its replication protocol instead (cyrus_csync_restore). */
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
		printf("%suser '%s': %lu subscriptions and %lu sieve scripts %s (active: %s%s%s); folder "
		    "annotations, quota roots and other users' seen state are not restored by "
		    "--to-server yet\n",
		    ev->dry_run ? "dry run: " : "", ev->user, ev->subscriptions, ev->scripts,
		    ev->dry_run ? "would be restored" : "restored", ev->active_script ? "'" : "",
		    ev->active_script ? ev->active_script : "none", ev->active_script ? "'" : "");
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
		    "nothing written\n", res->run_name, res->user, o->server, res->folders, res->present);
	else
		printf("restored run %s of user '%s' into %s as '%s': %lu folders created, %lu "
		    "already there, %lu message files, %llu bytes sent\n", res->run_name, res->user,
		    o->server, res->target_user, res->created, res->present, res->uploaded,
		    (unsigned long long)res->bytes);
	fflush(stdout);
}

static int
to_server(char **archives, size_t narch, int jobs, const struct cyrus_csync_opts *o)
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

int
cmd_restore(struct agent *a, int argc, char **argv)
{
	struct cyrus_restore_result res;
	struct cyrus_csync_opts co;
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	struct chj_error e;
	const char *to = NULL, *server = NULL, *authname = NULL, *pwfile = NULL, *beside = NULL;
	char **only, **archives;
	size_t nonly = 0, narch = 0;
	int i, o, dry_run = 0, jobs = 1, rc = EXIT_USAGE;

	(void)a;
	only = calloc((size_t)argc, sizeof *only);
	archives = calloc((size_t)argc, sizeof *archives);
	if (only == NULL || archives == NULL) {
		free(only);
		free(archives);
		return agent_error("out of memory");
	}
	for (i = 1; i < argc; i++) {
		const char *v;

		if ((o = agent_opt_at("restore", argc, argv, &i, &sel)) != 0) {
			if (o < 0)
				goto out;
		} else if (agent_opt_value(argc, argv, &i, "--to", &v)) {
			to = v;
		} else if (agent_opt_value(argc, argv, &i, "--to-server", &v)) {
			if (v == NULL) {
				rc = agent_usage_error("restore", "--to-server needs HOST[:PORT]");
				goto out;
			}
			server = v;
		} else if (agent_opt_value(argc, argv, &i, "--authname", &v)) {
			if (v == NULL) {
				rc = agent_usage_error("restore", "--authname needs a name");
				goto out;
			}
			authname = v;
		} else if (agent_opt_value(argc, argv, &i, "--password-file", &v)) {
			if (v == NULL) {
				rc = agent_usage_error("restore", "--password-file needs a file");
				goto out;
			}
			pwfile = v;
		} else if (agent_opt_value(argc, argv, &i, "--beside", &v)) {
			if (v == NULL) {
				rc = agent_usage_error("restore", "--beside needs a suffix");
				goto out;
			}
			beside = v;
		} else if (agent_opt_value(argc, argv, &i, "--jobs", &v)) {
			char *end;
			long n = v ? strtol(v, &end, 10) : 0;

			if (v == NULL || *end != '\0' || end == v || n < 1 || n > 64) {
				rc = agent_usage_error("restore", "bad --jobs '%s': a number from 1 to 64",
				    v ? v : "");
				goto out;
			}
			jobs = (int)n;
		} else if (strcmp(argv[i], "--dry-run") == 0) {
			dry_run = 1;
		} else if (agent_opt_value(argc, argv, &i, "--folder", &v)) {
			if (v == NULL) {
				rc = agent_usage_error("restore", "--folder needs a folder name");
				goto out;
			}
			only[nonly++] = (char *)v;
		} else if (argv[i][0] == '-') {
			rc = agent_usage_error("restore", "unexpected argument '%s'", argv[i]);
			goto out;
		} else {
			archives[narch++] = argv[i];
		}
	}
	if (server != NULL) {
		if (to != NULL) {
			rc = agent_usage_error("restore", "--to and --to-server exclude each other");
			goto out;
		}
		if (narch == 0) {
			rc = agent_usage_error("restore", "expected ARCHIVE... and --to-server HOST[:PORT]");
			goto out;
		}
		if (nonly > 0 && narch > 1) {
			rc = agent_usage_error("restore", "--folder restores from one archive only");
			goto out;
		}
		memset(&co, 0, sizeof co);
		co.server = server;
		co.authname = authname ? authname : "admin";
		co.password = "";
		if (pwfile != NULL && (co.password = read_password(pwfile)) == NULL) {
			rc = EXIT_ERROR;
			goto out;
		}
		co.at = &sel;
		co.folders = only;
		co.nfolders = nonly;
		co.beside = beside;
		co.dry_run = dry_run;
		co.cb = tell;
		rc = to_server(archives, narch, jobs, &co);
		goto out;
	}
	if (authname != NULL || pwfile != NULL || beside != NULL || dry_run || jobs != 1) {
		rc = agent_usage_error("restore", "--authname, --password-file, --beside, --jobs and "
		    "--dry-run go with --to-server");
		goto out;
	}
	if (narch > 1) {
		rc = agent_usage_error("restore", "unexpected argument '%s'", archives[1]);
		goto out;
	}
	if (narch == 0 || to == NULL) {
		rc = agent_usage_error("restore", "expected ARCHIVE and --to DIR");
		goto out;
	}
	if (cyrus_restore(archives[0], to, &sel, only, nonly, &res, &e) < 0) {
		rc = agent_error("%s", e.msg);
	} else {
		printf("restored run %s of user '%s': %lu folders, %lu message files, %lu other files, "
		    "%llu bytes to %s\n", res.run_name, res.user, res.folders, res.messages, res.files,
		    (unsigned long long)res.bytes, to);
		rc = EXIT_OK;
	}
	cyrus_restore_result_free(&res);
out:
	free(only);
	free(archives);
	return rc;
}
