/* cmd-consumers.c: `chjournal consumers`: one line per consumer, with its
 * cursor and its open run. */
#include <inttypes.h>

#include "agent.h"

int
cmd_consumers(struct agent *a, const struct cmdline *args)
{
	struct consumers cs;
	char **names;
	size_t n, i;
	int rc = EXIT_OK;

	(void)args;
	if (agent_open_consumers(a, &cs, NULL, 0) < 0)
		return EXIT_ERROR;
	if (consumer_list(&cs, &names, &n) < 0) {
		consumers_close(&cs);
		return agent_error("%s", cs.err.msg);
	}
	for (i = 0; i < n; i++) {
		struct consumer_state st;
		char t1[32], t2[32], t3[32];

		if (consumer_load(&cs, names[i], &st) != 0) {
			agent_error("%s", cs.err.msg);
			rc = EXIT_ERROR;
			continue;
		}
		/* committed_begin: the begin the last commit recorded (the next
		 * window starts there); committed_at: when that commit was made */
		printf("%s\tcommitted_begin=%s\tcommitted_at=%s\tseq=%" PRId64 "\topen=%s", names[i],
		    st.has_committed ? agent_time_str(st.committed_time, t1, sizeof t1) : "never",
		    !st.has_committed ? "never" : st.commit_time > 0 ?
		    agent_time_str(st.commit_time, t3, sizeof t3) : "unknown",
		    st.committed_seq,
		    st.has_open ? agent_time_str(st.open_time, t2, sizeof t2) : "no");
		/* a field added at the end, and only for an open run, so that the
		 * lines of consumers without one read as they always did */
		if (st.has_open)
			printf("\trun=%s", consumer_run_id(&st));
		putchar('\n');
	}
	consumer_list_free(names, n);
	consumers_close(&cs);
	return rc;
}
