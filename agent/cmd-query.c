/* cmd-query.c: `chjournal query`: the raw journal rows, for inspection. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "path.h"

struct query_ctx {
	int json, nul;
	int64_t since_time;     /* -1: no time filter */
};

static void
print_path_field(struct query_ctx *q, const char *path)
{
	char disp[8192], *big = NULL;
	size_t size = strlen(path) * 4 + 8;   /* every byte may need 4 to display */

	if (q->json) {
		fputs(",\"path\":", stdout);
		if (!agent_json_string(stdout, path)) {
			fputs(",\"path_hex\":", stdout);
			agent_json_hex(stdout, path);
		}
		return;
	}
	/* with -0 the path is raw; otherwise escaped so a record is one line,
	 * and whole however long (the fixed buffer serves most paths) */
	if (q->nul) {
		fputs(path, stdout);
		return;
	}
	if (size > sizeof disp)
		big = malloc(size);
	if (big != NULL)
		fputs(path_display(path, big, size), stdout);
	else
		fputs(path_display(path, disp, sizeof disp), stdout);  /* cut only without memory */
	free(big);
}

static int
change_cb(void *ctx, const char *path, int64_t seq, int64_t time, unsigned flags)
{
	struct query_ctx *q = ctx;
	char what[128], ts[32];

	if (q->since_time >= 0 && time < q->since_time)
		return 0;
	journal_flags_str(flags, what, sizeof what);
	if (q->json) {
		printf("{\"type\":\"change\",\"seq\":%" PRId64 ",\"time\":%" PRId64 ",\"what\":\"%s\"",
		    seq, time, what);
		print_path_field(q, path);
		fputs("}\n", stdout);
		return 0;
	}
	printf("%" PRId64 "\t%s\t%s\t", seq, agent_utc_str(time, ts, sizeof ts), what);
	print_path_field(q, path);
	putchar(q->nul ? '\0' : '\n');
	return 0;
}

static int
rescan_cb(void *ctx, const char *path, int64_t seq, int64_t time, int64_t since, const char *reason)
{
	struct query_ctx *q = ctx;
	char ts[32], ss[32];

	if (q->since_time >= 0 && time < q->since_time)
		return 0;
	if (q->json) {
		printf("{\"type\":\"rescan\",\"seq\":%" PRId64 ",\"time\":%" PRId64 ",\"since\":%" PRId64
		    ",\"reason\":", seq, time, since);
		agent_json_string(stdout, reason);
		print_path_field(q, path);
		fputs("}\n", stdout);
		return 0;
	}
	printf("%" PRId64 "\t%s\trescan(since=%s,%s)\t", seq, agent_utc_str(time, ts, sizeof ts),
	    agent_utc_str(since, ss, sizeof ss), reason);
	print_path_field(q, path);
	putchar(q->nul ? '\0' : '\n');
	return 0;
}

int
cmd_query(struct agent *a, const struct cmdline *args)
{
	struct query_ctx q = { 0, 0, -1 };
	int64_t after = 0;
	const char *under = cmdline_value(args, "--under"), *v = cmdline_value(args, "--since");
	char *end;
	size_t l;

	q.json = cmdline_has(args, "--json") > 0;
	q.nul = cmdline_has(args, "-0") > 0;
	if (v != NULL && (v[0] == '@' || strchr(v, '-') != NULL)) {
		if (agent_parse_time(v, &q.since_time) < 0)
			return agent_usage_error("query", "bad --since '%s'", v);
	} else if (v != NULL) {
		errno = 0;
		after = strtoll(v, &end, 10);
		if (*end != '\0' || end == v || after < 0 || errno == ERANGE)
			return agent_usage_error("query", "bad --since '%s'", v);
	}
	if (under != NULL && under[0] != '/')
		return agent_usage_error("query", "--under needs an absolute path");
	/* "/a/b/" means "/a/b" (argv strings are ours to change) */
	for (l = under != NULL ? strlen(under) : 0; l > 1 && under[l - 1] == '/'; l--)
		((char *)under)[l - 1] = '\0';
	if (journal_foreach_change(a->journal, after, under, change_cb, &q) != 0 ||
	    journal_foreach_rescan(a->journal, after, under, rescan_cb, &q) != 0)
		return agent_error("%s", journal_errmsg(a->journal));
	return EXIT_OK;
}
