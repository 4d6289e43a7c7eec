/* cyrus-layout.c: test helper for t1201: prints what common/cyrus/ makes of
 * a Cyrus instance, for comparison with Cyrus's own mbpath.
 *   cyrus-layout IMAPD.CONF list [USER]     name TAB uniqueid TAB mbtype TAB user TAB path
 *   cyrus-layout IMAPD.CONF files USER      the user's files outside the spool
 *   cyrus-layout IMAPD.CONF owner PATH...   the user a path belongs to ("-" for none)
 *   cyrus-layout IMAPD.CONF lock NAME MS    locks mailbox NAME, prints "locked", holds it
 *                                           until stdin closes
 * CHJ_CYRUS_TOOLSDIR sets where cyr_dbtool is looked for (a directory
 * without it: the cyrus.header fallback). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrus/cyrus.h"

static int
die(const char *what, const char *err)
{
	fprintf(stderr, "cyrus-layout: %s: %s\n", what, err);
	return 1;
}

int
main(int argc, char **argv)
{
	struct cyrus_conf c;
	struct cyrus_mboxlist l;
	struct chj_error err;
	char *u, **files;
	size_t i, n;
	int a, rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: cyrus-layout IMAPD.CONF list|files|owner|lock ...\n");
		return 2;
	}
	if (cyrus_conf_load(&c, argv[1]) < 0)
		return die("config", c.err.msg);
	if (getenv("CHJ_CYRUS_TOOLSDIR"))
		c.toolsdir = strdup(getenv("CHJ_CYRUS_TOOLSDIR"));
	if (!strcmp(argv[2], "owner")) {
		for (a = 3; a < argc; a++) {
			int r = cyrus_user_of_path(&c, argv[a], &u, &err);

			if (r < 0)
				return die(argv[a], err.msg);
			printf("%s\t%s\n", argv[a], r ? u : "-");
			free(u);
		}
		cyrus_conf_free(&c);
		return 0;
	}
	if (cyrus_mboxlist_load(&l, &c, strcmp(argv[2], "lock") && argc > 3 ? argv[3] : NULL) < 0)
		return die("mailbox list", l.err.msg);
	if (!strcmp(argv[2], "list")) {
		for (i = 0; i < l.n; i++)
			printf("%s\t%s\t%s\t%s\t%s\n", l.v[i].name, l.v[i].uniqueid ? l.v[i].uniqueid : "-",
			    l.v[i].mbtype, l.v[i].user ? l.v[i].user : "-", l.v[i].path);
	} else if (!strcmp(argv[2], "files") && argc > 3) {
		if (cyrus_user_files(&c, &l, argv[3], &files, &n, &err) < 0)
			return die("files", err.msg);
		for (i = 0; i < n; i++) {
			printf("%s\n", files[i]);
			free(files[i]);
		}
		free(files);
	} else if (!strcmp(argv[2], "lock") && argc > 4) {
		struct cyrus_lock lk;
		const struct cyrus_mailbox *m = NULL;

		for (i = 0; i < l.n; i++)
			if (!strcmp(l.v[i].name, argv[3]))
				m = &l.v[i];
		if (!m)
			return die(argv[3], "no such mailbox");
		if (cyrus_lock_mailbox(&lk, &c, m, atoi(argv[4])) < 0)
			return die("lock", lk.err.msg);
		printf("locked\n");
		fflush(stdout);
		while (getchar() != EOF)
			;
		cyrus_unlock(&lk);
	} else {
		rc = 2;
	}
	cyrus_mboxlist_free(&l);
	cyrus_conf_free(&c);
	return rc;
}
