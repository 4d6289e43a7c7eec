/* cmd-list.c: `chjournal list CONSUMER [-0] [--deleted | --reconcile] [--run
 * ID]`: the exact files to back up for the open run, the paths whose entries
 * are gone, or the directories whose vanished entries are unknown. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "array.h"
#include "changeset.h"
#include "path.h"
#include "progress.h"

enum list_what { LIST_FILES, LIST_DELETED, LIST_RECONCILE };

/* What a full run prints: the files, the directories, or the directories
 * each with its entries (--reconcile --entries). */
enum full_what { FULL_FILES, FULL_DIRS, FULL_DIR_ENTRIES };

struct full_ctx {
	struct link_notes links;       /* FULL_FILES: multiply-linked files, to note */
	FILE *out;
	int nul;
	enum full_what what;
	char **found;                  /* FULL_DIR_ENTRIES: the directories, printed after */
	size_t nfound, cap_found;
	unsigned long refused;
	int write_failed;
	int show_progress;             /* stderr is a terminal */
	struct progress progress;      /* directories walked of those watched */
	uint64_t files;
};

static int
full_cb(void *ctx, const char *path, size_t len, unsigned char type, const struct stat *st, int depth)
{
	struct full_ctx *f = ctx;

	(void)len;
	(void)st;
	(void)depth;
	if (f->show_progress && type == DT_DIR) {
		char line[256];

		f->progress.done++;
		if (progress_format(&f->progress, 0, line, sizeof line))
			fprintf(stderr, "\r%s, %llu files\033[K", line, (unsigned long long)f->files);
	}
	if (f->what != FULL_FILES ? type != DT_DIR : (type != DT_REG && type != DT_LNK))
		return WALK_CONTINUE;
	f->files++;
	if (f->what == FULL_FILES && link_notes_add(&f->links, path, st, LINK_SEEN) < 0) {
		errno = ENOMEM;
		f->write_failed = 1;
		return WALK_STOP;
	}
	if (f->what == FULL_DIR_ENTRIES) {
		char **na = array_grow(f->found, f->nfound, &f->cap_found, sizeof *na, 256);

		if (na == NULL || (na[f->nfound] = strdup(path)) == NULL) {
			f->found = na ? na : f->found;
			errno = ENOMEM;
			f->write_failed = 1;
			return WALK_STOP;
		}
		f->found = na;
		f->nfound++;
		return WALK_CONTINUE;
	}
	if (agent_print_path(f->out, path, f->nul, &f->refused) < 0) {
		f->write_failed = 1;
		return WALK_STOP;
	}
	return WALK_CONTINUE;
}

/* Prints directory dir as "DIR/" and then each of its entries, sorted, as
 * "DIR/NAME" (sync cookies in a root left out): what a consumer that cannot
 * read the file system later (a tar chain's restore) needs to reconcile the
 * directory. A directory gone meanwhile prints alone. Returns -1 on a write
 * error, 1 when the directory could not be read (errors counted). */
static int
print_dir_entries(struct agent *a, FILE *out, const char *dir, int nul, unsigned long *refused)
{
	struct dirent *de;
	char **names = NULL, *head;
	size_t n = 0, cap = 0, i;
	int rc = 0, in_root = config_root_of(&a->cfg, dir) >= 0 &&
	    config_is_root(&a->cfg, dir, strlen(dir));
	DIR *d;

	if ((head = path_join(dir, "")) == NULL)
		return -1;
	rc = agent_print_path(out, head, nul, refused);
	free(head);
	if (rc < 0)
		return -1;
	if ((d = opendir(dir)) == NULL)
		return (errno == ENOENT || errno == ENOTDIR) ? 0 : 1;
	while ((de = readdir(d)) != NULL) {
		char **na;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (in_root && path_is_cookie_name(de->d_name)))
			continue;
		if ((na = array_grow(names, n, &cap, sizeof *na, 64)) == NULL ||
		    (na[n] = path_join(dir, de->d_name)) == NULL) {
			names = na ? na : names;
			rc = -1;
			break;
		}
		names = na;
		n++;
	}
	closedir(d);
	n = array_sort_unique_strings(names, n);
	for (i = 0; i < n; i++) {
		if (rc == 0 && agent_print_path(out, names[i], nul, refused) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Prints each directory of dirs with its entries; returns EXIT_ERROR
 * (printed) on a write error or an unreadable directory. */
static int
print_entries_of(struct agent *a, FILE *out, char **dirs, size_t n, int nul, unsigned long *refused)
{
	size_t i;
	unsigned long unreadable = 0;
	int rc;

	for (i = 0; i < n; i++) {
		rc = print_dir_entries(a, out, dirs[i], nul, refused);
		if (rc < 0)
			return agent_error("cannot write the list: %s", strerror(errno));
		unreadable += rc;
	}
	if (unreadable > 0)
		return agent_error("the list is incomplete: %lu directories to reconcile could not "
		    "be read", unreadable);
	return EXIT_OK;
}

/* A full run: every file; or every directory (nothing of the last run can
 * be known to remain: each directory is to reconcile). */
static int
list_full(struct agent *a, FILE *out, int nul, enum full_what what)
{
	struct full_ctx f;
	struct walk_result res;
	int64_t watched = 0;
	int rc = EXIT_OK;

	memset(&f, 0, sizeof f);
	f.out = out;
	f.nul = nul;
	f.what = what;
	/* progress on a terminal only; the daemon's watch count sizes the ETA */
	f.show_progress = isatty(STDERR_FILENO);
	if (journal_meta_get_int(a->journal, "watches", &watched) != 0)
		watched = 0;
	progress_start(&f.progress, "listing", "directories", (uint64_t)watched);
	/* a full run learns the names of every multiply-linked file (stat()ing
	 * each file: a full run reads every file anyway) */
	changeset_walk_full(&a->cfg, what == FULL_FILES ? WALK_STAT : 0, full_cb, &f, &res);
	if (what == FULL_FILES && !f.write_failed && res.errors == 0 &&
	    link_notes_save(&f.links, a->journal, NULL, 0, 1) < 0)
		rc = agent_error("cannot note the names of hard-linked files: %s",
		    journal_errmsg(a->journal));
	link_notes_free(&f.links);
	if (what == FULL_DIR_ENTRIES && !f.write_failed)
		rc = print_entries_of(a, out, f.found, f.nfound, nul, &f.refused);
	while (f.nfound > 0)
		free(f.found[--f.nfound]);
	free(f.found);
	if (f.show_progress) {
		char line[256];

		progress_format(&f.progress, 1, line, sizeof line);
		fprintf(stderr, "\r%s, %llu files\033[K\n", line, (unsigned long long)f.files);
	}
	if (f.write_failed)
		return agent_error("cannot write the list: %s", strerror(errno));
	if (res.errors > 0)
		rc = agent_error("the list is incomplete: %s (%lu unreadable)", res.err.msg, res.errors);
	if (f.refused > 0)
		rc = agent_error("%lu path(s) with a newline left out: use -0", f.refused);
	return rc;
}

static int
list_window(struct agent *a, FILE *out, int64_t after_seq, int nul, enum list_what what, int entries)
{
	struct changeset cs;
	char **arr;
	size_t n, i;
	unsigned long refused = 0;
	int rc = EXIT_OK, built;

	built = changeset_build(&cs, a->journal, &a->cfg, after_seq);
	arr = what == LIST_DELETED ? cs.deleted : what == LIST_RECONCILE ? cs.reconcile : cs.paths;
	n = what == LIST_DELETED ? cs.ndeleted : what == LIST_RECONCILE ? cs.nreconcile : cs.npaths;
	if (entries)
		rc = print_entries_of(a, out, arr, n, nul, &refused);
	for (i = 0; i < n && !entries; i++) {
		if (agent_print_path(out, arr[i], nul, &refused) < 0) {
			rc = agent_error("cannot write the list: %s", strerror(errno));
			break;
		}
	}
	if (built < 0)
		rc = agent_error("the list is incomplete: %s", cs.err.msg);
	if (refused > 0)
		rc = agent_error("%lu path(s) with a newline left out: use -0", refused);
	changeset_free(&cs);
	return rc;
}

int
agent_list(struct agent *a, const char *name, const char *run_id, enum source_list_what w,
    int nul, FILE *out)
{
	struct consumers cs;
	struct consumer_state st;
	enum list_what what = w == SOURCE_LIST_DELETED ? LIST_DELETED :
	    w == SOURCE_LIST_FILES ? LIST_FILES : LIST_RECONCILE;
	int entries = w == SOURCE_LIST_ENTRIES, lr, code;

	if (agent_open_consumers(a, &cs, name, 0) < 0)
		return EXIT_ERROR;
	lr = consumer_load(&cs, name, &st);
	if (lr < 0) {
		agent_error("%s", cs.err.msg);
		consumers_close(&cs);
		return EXIT_ERROR;
	}
	consumers_close(&cs);
	code = consumer_run_check(&st, run_id, journal_id(a->journal));
	if (code != CONSUMER_RUN_OK)
		return agent_run_refused(name, &st, code, run_id, AGENT_RUN_LIST);
	/* the other roots are listed; a missing one is covered once it is back
	 * (the record comes after the run's begin, so in the next window) */
	if (agent_missing_roots(a, "none of its files are listed; the first run after it is back "
	    "lists all of it", st.open_seq) < 0)
		return EXIT_ERROR;
	if (st.open_full)
		return what == LIST_DELETED ? EXIT_OK :
		    list_full(a, out, nul, what != LIST_RECONCILE ? FULL_FILES :
		    entries ? FULL_DIR_ENTRIES : FULL_DIRS);
	return list_window(a, out, st.open_after_seq, nul, what, entries);
}

/* The open run as rm's serve lists it (NUL-terminated, into a temporary
 * file), printed here as a local list prints. */
int
agent_print_remote_list(struct agent_remote *rm, const char *name, const char *run_id,
    enum source_list_what what, int nul)
{
	FILE *tmp = tmpfile();
	unsigned long refused = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = EXIT_OK;

	if (tmp == NULL)
		return agent_error("cannot create a temporary file: %s", strerror(errno));
	if (source_list(rm->src, name, run_id, what, tmp) < 0 || fflush(tmp) != 0) {
		rc = agent_error("%s", rm->src->err.msg);
		goto out;
	}
	rewind(tmp);
	while ((n = getdelim(&line, &cap, '\0', tmp)) > 0) {
		if (line[n - 1] != '\0') {
			rc = agent_error("host '%s': the list ends inside a path", rm->name);
			goto out;
		}
		if (agent_print_path(stdout, line, nul, &refused) < 0) {
			rc = agent_error("cannot write the list: %s", strerror(errno));
			goto out;
		}
	}
	if (refused > 0)
		rc = EXIT_ERROR;
out:
	free(line);
	fclose(tmp);
	return rc;
}

/* list --from: the host's serve lists its open run. */
static int
list_remote(const char *name, const char *run_id, enum source_list_what what, int nul,
    const char *from, const char *ssh)
{
	struct agent_remote rm;
	int rc = agent_remote_open(&rm, from, ssh, 0);

	if (rc != EXIT_OK)
		return rc;
	rm.src->note = agent_remote_note;
	rc = agent_print_remote_list(&rm, name, run_id, what, nul);
	return agent_remote_close(&rm, rc);
}

int
cmd_list(struct agent *a, const struct cmdline *args)
{
	const char *name = args->operands[0], *run_id = NULL, *from = cmdline_value(args, "--from");
	enum source_list_what what = cmdline_has(args, "--deleted") ? SOURCE_LIST_DELETED :
	    !cmdline_has(args, "--reconcile") ? SOURCE_LIST_FILES :
	    cmdline_has(args, "--entries") ? SOURCE_LIST_ENTRIES : SOURCE_LIST_RECONCILE;
	int nul = cmdline_has(args, "-0") > 0;

	if (agent_arg_run("list", args, &run_id) < 0)
		return EXIT_USAGE;
	if (from != NULL)
		return list_remote(name, run_id, what, nul, from, cmdline_value(args, "--ssh"));
	return agent_list(a, name, run_id, what, nul, stdout);
}
