/* test-config.c: cmocka unit tests for the chjournal.conf parser
 * (common/config.h): valid files (comments, blank lines, spaces around '=',
 * CRLF line endings, repeated root/exclude, defaults), the exact error
 * message (file, line, key) of every rejected line, that a failed parse
 * leaves nothing allocated, config_load on real files, config_is_excluded,
 * config_root_of and config_choose_file; missing roots (kept, marked with
 * their errno; still checked for syntax). Roots are real directories and
 * symlinks in a temporary directory (unit-tmp.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "unit-tmp.h"

/* The temporary tree: T/spool, T/spool/sub, T/spool2, T/file (a regular
 * file), T/link -> T/spool2, T/dangling -> T/missing. T is a real path. */
static char T[PATH_MAX];

/* T/rel into buf (PATH_MAX bytes). */
static char *
tpath(char *buf, const char *rel)
{
	return unit_join(buf, PATH_MAX, T, rel);
}

static int
group_setup(void **state)
{
	char p[PATH_MAX], q[PATH_MAX];
	FILE *f;

	(void)state;
	if (unit_tmpdir(T, sizeof T, "config") == NULL)
		return -1;
	if (mkdir(tpath(p, "spool"), 0755) < 0 || mkdir(tpath(p, "spool/sub"), 0755) < 0 ||
	    mkdir(tpath(p, "spool2"), 0755) < 0 || mkdir(tpath(p, "spool3"), 0755) < 0)
		return -1;
	if ((f = fopen(tpath(p, "file"), "w")) == NULL)
		return -1;
	fclose(f);
	if (symlink(tpath(q, "spool2"), tpath(p, "link")) < 0 ||
	    symlink(tpath(q, "missing"), tpath(p, "dangling")) < 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	unsetenv("CHJOURNAL_CONF");
	unit_rmtree(T);
	return 0;
}

/* Builds configuration text from a format where every "@" stands for T. */
static char *
conf_text(const char *fmt)
{
	static char out[16384];
	size_t o = 0, tl = strlen(T);

	for (; *fmt != '\0' && o + tl + 1 < sizeof out; fmt++) {
		if (*fmt == '@') {
			memcpy(out + o, T, tl);
			o += tl;
		} else {
			out[o++] = *fmt;
		}
	}
	out[o] = '\0';
	return out;
}

/* Same for an expected message. */
static char *
expand(const char *fmt)
{
	static char out[4096];
	size_t o = 0, tl = strlen(T);

	for (; *fmt != '\0' && o + tl + 1 < sizeof out; fmt++) {
		if (*fmt == '@') {
			memcpy(out + o, T, tl);
			o += tl;
		} else {
			out[o++] = *fmt;
		}
	}
	out[o] = '\0';
	return out;
}

/* After a failed parse nothing is allocated and the struct is empty. */
static void
assert_config_empty(const struct config *c)
{
	assert_null(c->file);
	assert_null(c->journal);
	assert_null(c->consumers);
	assert_null(c->roots);
	assert_null(c->root_missing);
	assert_int_equal(c->nroots, 0);
	assert_null(c->exclude_sources);
	assert_null(c->excludes);
	assert_int_equal(c->nexcludes, 0);
	assert_null(c->group);
	assert_null(c->root_lines);
}

/* Parses text (with @ = T) and expects failure with exactly msg (@ = T). */
static void
expect_error(const char *text, const char *msg)
{
	struct config c;
	char want[4096];

	snprintf(want, sizeof want, "%s", expand(msg));
	memset(&c, 0x5a, sizeof c);
	assert_int_equal(config_parse(&c, "test.conf", conf_text(text)), -1);
	assert_string_equal(c.err.msg, want);
	assert_int_equal(c.err.code, CHJ_ERR_INVALID);
	assert_config_empty(&c);
}

/* ---- valid files ---- */

static void
test_defaults(void **state)
{
	struct config c;

	(void)state;
	assert_int_equal(config_parse(&c, "test.conf", conf_text("root = @/spool\n")), 0);
	assert_string_equal(c.file, "test.conf");
	assert_string_equal(c.journal, "/var/lib/chjournal/journal.db");
	assert_string_equal(c.consumers, "/var/lib/chjournal/consumers");
	assert_int_equal(c.nroots, 1);
	assert_string_equal(c.roots[0], expand("@/spool"));
	assert_int_equal(c.nexcludes, 0);
	assert_int_equal(c.backend, CONFIG_BACKEND_INOTIFY);
	assert_int_equal(c.flush_interval_ms, 1000);
	assert_int_equal(c.flush_idle_ms, 10);
	assert_int_equal(c.batch_size, 10000);
	assert_int_equal(c.sync_timeout, 60);
	assert_int_equal(c.log_level, CONFIG_LOG_INFO);
	config_free(&c);
	assert_config_empty(&c);
	/* the struct may be reused after config_free */
	assert_int_equal(config_parse(&c, "again.conf", conf_text("root=@/spool2")), 0);
	assert_string_equal(c.file, "again.conf");
	assert_string_equal(c.roots[0], expand("@/spool2"));
	config_free(&c);
}

static void
test_full_file(void **state)
{
	struct config c;
	const char *text =
		"# chjournal.conf\n"
		"\n"
		"   # indented comment\n"
		"\t\n"
		"journal = /srv/chj/state/j.db\n"
		"root = @/spool\n"
		"root=@/spool2\n"
		"  root\t=\t@/spool3  \n"
		"exclude = /\\.cache(/|$)\n"
		"exclude=\\.tmp$\n"
		"exclude = a=b\n"
		"backend = inotify\n"
		"flush_interval_ms = 250\n"
		"batch_size = 5\n"
		"sync_timeout = 120\n"
		"# last line without newline\n"
		"log_level = warning";

	(void)state;
	assert_int_equal(config_parse(&c, "full.conf", conf_text(text)), 0);
	assert_string_equal(c.journal, "/srv/chj/state/j.db");
	assert_string_equal(c.consumers, "/srv/chj/state/consumers");
	assert_int_equal(c.nroots, 3);
	assert_string_equal(c.roots[0], expand("@/spool"));
	assert_string_equal(c.roots[1], expand("@/spool2"));
	assert_string_equal(c.roots[2], expand("@/spool3"));
	assert_int_equal(c.nexcludes, 3);
	assert_string_equal(c.exclude_sources[0], "/\\.cache(/|$)");
	assert_string_equal(c.exclude_sources[1], "\\.tmp$");
	assert_string_equal(c.exclude_sources[2], "a=b");
	assert_string_equal(config_backend_name(c.backend), "inotify");
	assert_int_equal(c.flush_interval_ms, 250);
	assert_int_equal(c.batch_size, 5);
	assert_int_equal(c.sync_timeout, 120);
	assert_int_equal(c.log_level, CONFIG_LOG_WARNING);
	config_free(&c);
}

static void
test_crlf(void **state)
{
	struct config c;
	const char *text =
		"# windows editor\r\n"
		"\r\n"
		"journal = /srv/j.db\r\n"
		"consumers = /srv/cursors\r\n"
		"root = @/spool\r\n"
		"exclude = x$\r\n"
		"batch_size = 77\r\n"
		"log_level = error\r\n";

	(void)state;
	assert_int_equal(config_parse(&c, "crlf.conf", conf_text(text)), 0);
	assert_string_equal(c.journal, "/srv/j.db");
	assert_string_equal(c.consumers, "/srv/cursors");
	assert_string_equal(c.roots[0], expand("@/spool"));
	assert_string_equal(c.exclude_sources[0], "x$");
	assert_int_equal(config_is_excluded(&c, "/a/bx"), 1);
	assert_int_equal(c.batch_size, 77);
	assert_int_equal(c.log_level, CONFIG_LOG_ERROR);
	config_free(&c);
	/* line numbers still count CRLF lines */
	expect_error("# c\r\n\r\nroot = @/spool\r\nbogus = 1\r\n",
	    "test.conf:4: key 'bogus': unknown key");
}

static void
test_consumers_default_follows_journal(void **state)
{
	struct config c;

	(void)state;
	assert_int_equal(config_parse(&c, "t.conf", conf_text("journal = /j.db\nroot = @/spool\n")), 0);
	assert_string_equal(c.consumers, "/consumers");
	config_free(&c);
	/* an explicit consumers directory wins, in either order */
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("consumers = /c\njournal = /a/b/j.db\nroot = @/spool\n")), 0);
	assert_string_equal(c.journal, "/a/b/j.db");
	assert_string_equal(c.consumers, "/c");
	config_free(&c);
	/* stacked repetitions blow up glibc's regcomp (fuzz finding): refused */
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("root = @/spool\nexclude = o++++++++++++++++++++++u\n")), -1);
	assert_non_null(strstr(c.err.msg, "t.conf:2: key 'exclude': "));
	assert_non_null(strstr(c.err.msg, "repeats a repetition"));
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("root = @/spool\nexclude = a*{2}\n")), -1);
	/* but not inside brackets or escaped */
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("root = @/spool\nexclude = [+*]+\\++x\n")), 0);
	config_free(&c);
	/* a single-valued key given twice is an error, not "last one wins" */
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("journal = /x/j.db\njournal = /y/z/j.db\nroot = @/spool\n")), -1);
	assert_string_equal(c.err.msg, "t.conf:2: key 'journal': given more than once");
	/* the journal and the consumers directory must not be inside a root */
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("root = @/spool\njournal = @/spool/j.db\n")), -1);
	assert_non_null(strstr(c.err.msg, "t.conf:2: key 'journal': "));
	assert_non_null(strstr(c.err.msg, "is inside root"));
	assert_int_equal(config_parse(&c, "t.conf",
	    conf_text("root = @/spool\nconsumers = @/spool/c\njournal = /j.db\n")), -1);
	assert_non_null(strstr(c.err.msg, "t.conf:2: key 'consumers': "));
}

static void
test_root_normalization(void **state)
{
	struct config c;

	(void)state;
	assert_int_equal(config_parse(&c, "t.conf", conf_text("root = @/spool///\nroot = @/spool2/\n")), 0);
	assert_int_equal(c.nroots, 2);
	assert_string_equal(c.roots[0], expand("@/spool"));
	assert_string_equal(c.roots[1], expand("@/spool2"));
	config_free(&c);
	/* "/" normalizes, but every journal would be inside it */
	assert_int_equal(config_parse(&c, "t.conf", "root = /\n"), -1);
	assert_string_equal(c.err.msg, "t.conf:0: key 'journal': '/var/lib/chjournal/journal.db' is inside root '/'");
	assert_int_equal(config_parse(&c, "t.conf", "root = //\n"), -1);
	assert_non_null(strstr(c.err.msg, "is inside root '/'"));
	/* T/spool and T/spool2 share a prefix but do not overlap */
	assert_int_equal(config_parse(&c, "t.conf", conf_text("root = @/spool2\nroot = @/spool\n")), 0);
	assert_int_equal(c.nroots, 2);
	config_free(&c);
}

/* ---- errors ---- */

static void
test_error_syntax(void **state)
{
	(void)state;
	expect_error("root = @/spool\nfrobnicate = 1\n", "test.conf:2: key 'frobnicate': unknown key");
	expect_error("Root = @/spool\n", "test.conf:1: key 'Root': unknown key");
	expect_error("root @/spool\n", "test.conf:1: expected 'key = value', got 'root @/spool'");
	expect_error("\n\n  just words  \r\n", "test.conf:3: expected 'key = value', got 'just words'");
	expect_error("root =\n", "test.conf:1: key 'root': missing value");
	expect_error("root = @/spool\nexclude =   \t \r\n", "test.conf:2: key 'exclude': missing value");
	expect_error("= @/spool\n", "test.conf:1: missing key before '='");
	expect_error("  \t= x\n", "test.conf:1: missing key before '='");
	expect_error("", "test.conf: key 'root': no root configured (add a line 'root = /path/to/spool')");
	expect_error("# only comments\n\njournal = /j.db\n",
	    "test.conf: key 'root': no root configured (add a line 'root = /path/to/spool')");
	expect_error("journal = j.db\nroot = @/spool\n", "test.conf:1: key 'journal': 'j.db' is not an absolute path");
	expect_error("root = @/spool\nconsumers = ./c\n",
	    "test.conf:2: key 'consumers': './c' is not an absolute path");
}

static void
test_error_roots(void **state)
{
	(void)state;
	expect_error("root = spool\n", "test.conf:1: key 'root': 'spool' is not an absolute path");
	expect_error("root = ~/spool\n", "test.conf:1: key 'root': '~/spool' is not an absolute path");
	/* there but not a directory: an error (a missing root is not: below) */
	expect_error("root = @/file\n", "test.conf:1: key 'root': '@/file' is not a directory");
	/* a missing root still has to be written right */
	expect_error("root = nope\n", "test.conf:1: key 'root': 'nope' is not an absolute path");
	expect_error("root = @/spool\nroot = @/spool/nope\n",
	    "test.conf:2: key 'root': '@/spool/nope' overlaps root '@/spool'");
	expect_error("root = @/nope/../spool\n",
	    "test.conf:1: key 'root': '@/nope/../spool' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = @/link\n",
	    "test.conf:1: key 'root': '@/link' is a symlink: name the directory it points to ('@/spool2')");
	expect_error("root = @/link/\n",
	    "test.conf:1: key 'root': '@/link' is a symlink: name the directory it points to ('@/spool2')");
	expect_error("root = @/dangling\n",
	    "test.conf:1: key 'root': '@/dangling' is a symlink that cannot be resolved: No such file or directory");
	/* overlapping roots, either way round, and the same root twice */
	expect_error("root = @/spool\nroot = @/spool/sub\n",
	    "test.conf:2: key 'root': '@/spool/sub' overlaps root '@/spool'");
	expect_error("root = @/spool/sub\n\nroot = @/spool\n",
	    "test.conf:3: key 'root': '@/spool' overlaps root '@/spool/sub'");
	expect_error("root = @/spool\nroot = @/spool/\n",
	    "test.conf:2: key 'root': '@/spool' overlaps root '@/spool'");
	expect_error("root = @/spool2\nroot = /\n", "test.conf:2: key 'root': '/' overlaps root '@/spool2'");
	/* not normalized: '..', '.', '//' */
	expect_error("root = @/spool/../spool2\n",
	    "test.conf:1: key 'root': '@/spool/../spool2' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = @/spool/sub/..\n",
	    "test.conf:1: key 'root': '@/spool/sub/..' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = @/spool/sub/../\n",
	    "test.conf:1: key 'root': '@/spool/sub/..' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = /..\n", "test.conf:1: key 'root': '/..' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = @/./spool\n",
	    "test.conf:1: key 'root': '@/./spool' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = @/spool/.\n",
	    "test.conf:1: key 'root': '@/spool/.' is not a normalized path (no '.', '..' or '//')");
	expect_error("root = @//spool\n",
	    "test.conf:1: key 'root': '@//spool' is not a normalized path (no '.', '..' or '//')");
	/* longer than PATH_MAX */
	{
		static char text[PATH_MAX + 64];

		strcpy(text, "root = /");
		memset(text + 8, 'a', PATH_MAX + 10);
		strcpy(text + 8 + PATH_MAX + 10, "\n");
		expect_error(text, "test.conf:1: key 'root': path too long");
	}
	/* names that merely contain dots are fine */
	{
		struct config c;
		char p[PATH_MAX];

		assert_int_equal(mkdir(tpath(p, "..spool..."), 0755), 0);
		assert_int_equal(config_parse(&c, "t.conf", conf_text("root = @/..spool...\n")), 0);
		assert_string_equal(c.roots[0], expand("@/..spool..."));
		config_free(&c);
		rmdir(p);
	}
}

/* A root that is not there (nothing at its path, or a file above it) is
 * kept and marked missing: one root gone must not stop the others. */
static void
test_missing_roots(void **state)
{
	struct config c;

	(void)state;
	assert_int_equal(config_parse(&c, "test.conf",
	    conf_text("root = @/spool\nroot = @/nope\nroot = @/file/x\nroot = @/spool2\n")), 0);
	assert_int_equal(c.nroots, 4);
	assert_string_equal(c.roots[1], expand("@/nope"));
	assert_string_equal(c.roots[2], expand("@/file/x"));
	assert_int_equal(config_root_missing(&c, 0), 0);
	assert_int_equal(config_root_missing(&c, 1), ENOENT);
	assert_int_equal(config_root_missing(&c, 2), ENOTDIR);
	assert_int_equal(config_root_missing(&c, 3), 0);
	assert_int_equal(config_root_missing(&c, 4), 0);
	assert_int_equal(config_missing_roots(&c), 2);
	assert_int_equal(config_root_of(&c, conf_text("@/nope/a/b")), 1);
	config_free(&c);
	assert_int_equal(config_parse(&c, "test.conf", conf_text("root = @/nope/\n")), 0);
	assert_string_equal(c.roots[0], expand("@/nope"));
	assert_int_equal(config_missing_roots(&c), 1);
	config_free(&c);
	assert_int_equal(config_parse(&c, "test.conf", conf_text("root = @/spool\n")), 0);
	assert_int_equal(config_missing_roots(&c), 0);
	config_free(&c);
}

static void
test_error_regex(void **state)
{
	static const char *bad[] = { "a(b", "[z-a]", "*x", "x{2,1}" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		regex_t re;
		char rerr[256], text[256], msg[600];
		int rc = regcomp(&re, bad[i], REG_EXTENDED | REG_NOSUB);

		if (rc == 0) {          /* this libc accepts it: not a test case here */
			regfree(&re);
			continue;
		}
		regerror(rc, &re, rerr, sizeof rerr);
		snprintf(text, sizeof text, "root = @/spool\nexclude = ok\nexclude = %s\n", bad[i]);
		snprintf(msg, sizeof msg, "test.conf:3: key 'exclude': bad regular expression '%s': %s",
		    bad[i], rerr);
		expect_error(text, msg);
	}
}

static void
test_error_backend(void **state)
{
	(void)state;
	expect_error("root = @/spool\nbackend = kqueue\n",
	    "test.conf:2: key 'backend': unknown backend 'kqueue' (expected 'inotify', 'fanotify' or 'auto')");
	expect_error("root = @/spool\nbackend = fanotify inotify\n",
	    "test.conf:2: key 'backend': unknown backend 'fanotify inotify' (expected 'inotify', 'fanotify' or 'auto')");
	expect_error("root = @/spool\nbackend = INOTIFY\n",
	    "test.conf:2: key 'backend': unknown backend 'INOTIFY' (expected 'inotify', 'fanotify' or 'auto')");
}

/* fanotify and auto are accepted and named back as written */
static void
test_backends(void **state)
{
	static const struct {
		const char *text;
		enum config_backend want;
	} cases[] = {
		{ "root = @/spool\nbackend = fanotify\n", CONFIG_BACKEND_FANOTIFY },
		{ "root = @/spool\nbackend = auto\n", CONFIG_BACKEND_AUTO },
		{ "root = @/spool\nbackend = inotify\n", CONFIG_BACKEND_INOTIFY },
	};
	static const char *names[] = { "fanotify", "auto", "inotify" };
	struct config c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(config_parse(&c, "test.conf", conf_text(cases[i].text)), 0);
		assert_int_equal(c.backend, cases[i].want);
		assert_string_equal(config_backend_name(c.backend), names[i]);
		config_free(&c);
	}
}

/* flush_idle_ms takes 0 (off) to 60000 */
static void
test_flush_idle(void **state)
{
	static const struct {
		const char *value;
		int ok;
		unsigned want;
	} cases[] = {
		{ "0", 1, 0 }, { "1", 1, 1 }, { "60000", 1, 60000 },
		{ "60001", 0, 0 }, { "-1", 0, 0 }, { "10ms", 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256];
		struct config c;

		snprintf(text, sizeof text, "root = @/spool\nflush_idle_ms = %s\n", cases[i].value);
		if (!cases[i].ok) {
			assert_int_equal(config_parse(&c, "t.conf", conf_text(text)), -1);
			assert_non_null(strstr(c.err.msg, "key 'flush_idle_ms'"));
			config_free(&c);
			continue;
		}
		assert_int_equal(config_parse(&c, "t.conf", conf_text(text)), 0);
		assert_int_equal(c.flush_idle_ms, cases[i].want);
		config_free(&c);
	}
}

static void
test_numbers(void **state)
{
	static const struct {
		const char *key, *value;
		unsigned want;        /* 0: must be refused */
	} cases[] = {
		{ "flush_interval_ms", "10", 10 },
		{ "flush_interval_ms", "60000", 60000 },
		{ "flush_interval_ms", "0010", 10 },
		{ "flush_interval_ms", "9", 0 },
		{ "flush_interval_ms", "0", 0 },
		{ "flush_interval_ms", "60001", 0 },
		{ "flush_interval_ms", "100ms", 0 },
		{ "flush_interval_ms", "-5", 0 },
		{ "flush_interval_ms", "+50", 0 },
		{ "flush_interval_ms", "0x20", 0 },
		{ "flush_interval_ms", "1 000", 0 },
		{ "flush_interval_ms", "1e3", 0 },
		{ "flush_interval_ms", "4294967396", 0 },       /* 2^32 + 100 */
		{ "flush_interval_ms", "99999999999999999999999", 0 },
		{ "batch_size", "1", 1 },
		{ "batch_size", "10000000", 10000000 },
		{ "batch_size", "0", 0 },
		{ "batch_size", "10000001", 0 },
		{ "batch_size", "12k", 0 },
		{ "batch_size", "18446744073709551617", 0 },    /* 2^64 + 1 */
		{ "sync_timeout", "1", 1 },
		{ "sync_timeout", "86400", 86400 },
		{ "sync_timeout", "0", 0 },
		{ "sync_timeout", "86401", 0 },
		{ "sync_timeout", "30s", 0 },
		{ "sync_timeout", "4294967297", 0 },            /* 2^32 + 1 */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256], msg[512];
		struct config c;

		snprintf(text, sizeof text, "root = @/spool\n%s = %s\n", cases[i].key, cases[i].value);
		if (cases[i].want != 0) {
			unsigned got;

			assert_int_equal(config_parse(&c, "t.conf", conf_text(text)), 0);
			got = strcmp(cases[i].key, "flush_interval_ms") == 0 ? c.flush_interval_ms :
			    strcmp(cases[i].key, "batch_size") == 0 ? c.batch_size : c.sync_timeout;
			assert_int_equal(got, cases[i].want);
			config_free(&c);
			continue;
		}
		if (strcmp(cases[i].key, "flush_interval_ms") == 0)
			snprintf(msg, sizeof msg,
			    "test.conf:2: key 'flush_interval_ms': '%s' is not a number from 10 to 60000",
			    cases[i].value);
		else if (strcmp(cases[i].key, "batch_size") == 0)
			snprintf(msg, sizeof msg,
			    "test.conf:2: key 'batch_size': '%s' is not a number from 1 to 10000000",
			    cases[i].value);
		else
			snprintf(msg, sizeof msg,
			    "test.conf:2: key 'sync_timeout': '%s' is not a number of seconds from 1 to 86400",
			    cases[i].value);
		expect_error(text, msg);
	}
}

static void
test_log_level(void **state)
{
	static const struct {
		const char *name;
		enum config_log_level level;
	} ok[] = {
		{ "error", CONFIG_LOG_ERROR }, { "warning", CONFIG_LOG_WARNING },
		{ "info", CONFIG_LOG_INFO }, { "debug", CONFIG_LOG_DEBUG },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct config c;
		char text[128];

		snprintf(text, sizeof text, "log_level = %s\nroot = @/spool\n", ok[i].name);
		assert_int_equal(config_parse(&c, "t.conf", conf_text(text)), 0);
		assert_int_equal(c.log_level, ok[i].level);
		config_free(&c);
	}
	expect_error("root = @/spool\nlog_level = verbose\n",
	    "test.conf:2: key 'log_level': unknown level 'verbose' (expected error, warning, info or debug)");
	expect_error("root = @/spool\nlog_level = warn\n",
	    "test.conf:2: key 'log_level': unknown level 'warn' (expected error, warning, info or debug)");
}

/* An error after roots and excludes were accepted frees them all (the
 * sanitizer build checks for leaks). */
static void
test_error_after_allocations(void **state)
{
	regex_t re;
	char rerr[256], msg[512];
	int rc = regcomp(&re, "(", REG_EXTENDED | REG_NOSUB);

	(void)state;
	assert_int_not_equal(rc, 0);
	regerror(rc, &re, rerr, sizeof rerr);
	snprintf(msg, sizeof msg, "test.conf:7: key 'exclude': bad regular expression '(': %s", rerr);
	expect_error("journal = /j/j.db\nconsumers = /c\nroot = @/spool\nroot = @/spool2\n"
	    "exclude = a\nexclude = b\nexclude = (\n", msg);
	expect_error("journal = /j/j.db\nroot = @/spool\nexclude = a\nroot = @/spool/sub\n",
	    "test.conf:4: key 'root': '@/spool/sub' overlaps root '@/spool'");
	expect_error("journal = /j/j.db\nroot = @/spool\nexclude = a\nlog_level = loud\n",
	    "test.conf:4: key 'log_level': unknown level 'loud' (expected error, warning, info or debug)");
	expect_error("journal = /j/j.db\nexclude = a\n",
	    "test.conf: key 'root': no root configured (add a line 'root = /path/to/spool')");
}

/* ---- config_load ---- */

static void
write_conf(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
test_load(void **state)
{
	struct config c;
	char file[PATH_MAX], want[PATH_MAX + 200];
	const char *text = conf_text("root = @/spool\nsync_timeout = 5\n");
	static const char nul_text[] = "root = /x\nexclude = a\0b\n";

	(void)state;
	tpath(file, "ok.conf");
	write_conf(file, text, strlen(text));
	assert_int_equal(config_load(&c, file), 0);
	assert_string_equal(c.file, file);
	assert_int_equal(c.sync_timeout, 5);
	assert_string_equal(c.roots[0], expand("@/spool"));
	config_free(&c);

	/* errors name the file, with its line when there is one */
	tpath(file, "bad.conf");
	text = conf_text("root = @/spool\n\nbatch_size = none\n");
	write_conf(file, text, strlen(text));
	assert_int_equal(config_load(&c, file), -1);
	snprintf(want, sizeof want, "%s:3: key 'batch_size': 'none' is not a number from 1 to 10000000", file);
	assert_string_equal(c.err.msg, want);
	assert_int_equal(c.err.code, CHJ_ERR_INVALID);
	assert_config_empty(&c);

	tpath(file, "missing.conf");
	assert_int_equal(config_load(&c, file), -1);
	snprintf(want, sizeof want, "%s: cannot read configuration: No such file or directory", file);
	assert_string_equal(c.err.msg, want);
	assert_int_equal(c.err.code, CHJ_ERR_NOTFOUND);
	assert_config_empty(&c);

	tpath(file, "spool");
	assert_int_equal(config_load(&c, file), -1);
	snprintf(want, sizeof want, "%s: cannot read configuration: Is a directory", file);
	assert_string_equal(c.err.msg, want);
	assert_int_equal(c.err.code, CHJ_ERR_SYS);
	assert_int_equal(c.err.errnum, EISDIR);
	assert_config_empty(&c);

	tpath(file, "nul.conf");
	write_conf(file, nul_text, sizeof nul_text - 1);
	assert_int_equal(config_load(&c, file), -1);
	snprintf(want, sizeof want, "%s:2: line contains a NUL byte", file);
	assert_string_equal(c.err.msg, want);
	assert_int_equal(c.err.code, CHJ_ERR_INVALID);
	assert_config_empty(&c);

	tpath(file, "empty.conf");
	write_conf(file, "", 0);
	assert_int_equal(config_load(&c, file), -1);
	snprintf(want, sizeof want, "%s: key 'root': no root configured (add a line 'root = /path/to/spool')",
	    file);
	assert_string_equal(c.err.msg, want);
	assert_config_empty(&c);
}

/* ---- lookups ---- */

static void
test_is_excluded(void **state)
{
	struct config c;

	(void)state;
	assert_int_equal(config_parse(&c, "t.conf", conf_text(
	    "root = @/spool\nexclude = /\\.cache(/|$)\nexclude = ^@/spool/tmp/\nexclude = ~$\n")), 0);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/u/.cache")), 1);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/u/.cache/x")), 1);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/u/.cachex")), 0);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/u/xcache")), 0);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/tmp/a")), 1);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/tmp")), 0);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/x/tmp/a")), 0);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/mail~")), 1);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/mail")), 0);
	config_free(&c);
	/* no excludes: nothing is excluded */
	assert_int_equal(config_parse(&c, "t.conf", conf_text("root = @/spool\n")), 0);
	assert_int_equal(config_is_excluded(&c, expand("@/spool/.cache")), 0);
	config_free(&c);
}

static void
test_root_of(void **state)
{
	struct config c;

	(void)state;
	assert_int_equal(config_parse(&c, "t.conf", conf_text("root = @/spool\nroot = @/spool2/\n")), 0);
	assert_int_equal(config_root_of(&c, expand("@/spool")), 0);
	assert_int_equal(config_root_of(&c, expand("@/spool/a/b")), 0);
	assert_int_equal(config_root_of(&c, expand("@/spool2")), 1);
	assert_int_equal(config_root_of(&c, expand("@/spool2/x")), 1);
	assert_int_equal(config_root_of(&c, expand("@/spool3/x")), -1);
	assert_int_equal(config_root_of(&c, expand("@/spoolx")), -1);
	assert_int_equal(config_root_of(&c, expand("@")), -1);
	assert_int_equal(config_root_of(&c, "/"), -1);
	config_free(&c);
}

/* group: a group name resolved to its id; unknown names and repeats refused. */
static void
test_group(void **state)
{
	struct config c;
	struct group *gr = getgrgid(getgid());

	(void)state;
	assert_non_null(gr);
	assert_int_equal(config_parse(&c, "t.conf", conf_text("root = @/spool\n")), 0);
	assert_null(c.group);
	config_free(&c);
	{
		char text[4096];

		snprintf(text, sizeof text, "root = @/spool\ngroup = %s\n", gr->gr_name);
		assert_int_equal(config_parse(&c, "t.conf", conf_text(text)), 0);
		assert_string_equal(c.group, gr->gr_name);
		assert_int_equal(c.gid, getgid());
		config_free(&c);
		snprintf(text, sizeof text, "root = @/spool\ngroup = %s\ngroup = %s\n", gr->gr_name,
		    gr->gr_name);
		expect_error(text, "test.conf:3: key 'group': given more than once");
	}
	expect_error("root = @/spool\ngroup = no-such-group-chj\n",
	    "test.conf:2: key 'group': no group named 'no-such-group-chj'");
}

static void
test_choose_file(void **state)
{
	(void)state;
	unsetenv("CHJOURNAL_CONF");
	assert_string_equal(config_choose_file(NULL), "/etc/chjournal.conf");
	assert_string_equal(config_choose_file("/x/explicit.conf"), "/x/explicit.conf");
	setenv("CHJOURNAL_CONF", "/from/env.conf", 1);
	assert_string_equal(config_choose_file(NULL), "/from/env.conf");
	assert_string_equal(config_choose_file("/x/explicit.conf"), "/x/explicit.conf");
	setenv("CHJOURNAL_CONF", "", 1);
	assert_string_equal(config_choose_file(NULL), "/etc/chjournal.conf");
	unsetenv("CHJOURNAL_CONF");
	assert_string_equal(CONFIG_DEFAULT_FILE, "/etc/chjournal.conf");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_consumers_default_follows_journal),
		cmocka_unit_test(test_root_normalization),
		cmocka_unit_test(test_error_syntax),
		cmocka_unit_test(test_error_roots),
		cmocka_unit_test(test_missing_roots),
		cmocka_unit_test(test_error_regex),
		cmocka_unit_test(test_error_backend),
		cmocka_unit_test(test_backends),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_flush_idle),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_error_after_allocations),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_is_excluded),
		cmocka_unit_test(test_root_of),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_choose_file),
	};

	return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
