/* test-cmdline.c: cmocka unit tests for a command's declared arguments
 * (common/cmdline.h): every spelling of an option, values kept in order for
 * one that repeats, each rule (required, conflicts, needs, operand counts)
 * refused with its one line, and the usage line made from the declaration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cmdline.h"

/* as `chjournal list` declares itself */
static const struct cmdline_spec list_spec = {
	"CONSUMER", 1, 1, "expected a consumer name",
	{ { .name = "-0", .alias = "--null" }, { .name = "--deleted" },
	  { .name = "--reconcile", .conflicts = "--deleted" },
	  { .name = "--entries", .needs = "--reconcile" },
	  { .name = "--run", .value = "ID", .missing = "a run id" } }
};

/* as `chjournal restore`: a required option and one that repeats */
static const struct cmdline_spec restore_spec = {
	"ARCHIVE", 1, 1, NULL,
	{ { .name = "--to", .value = "DIR", .flags = CMDLINE_REQUIRED },
	  { .name = "--at", .value = "TIME|RUN" },
	  { .name = "--folder", .value = "NAME", .flags = CMDLINE_REPEAT } }
};

static const struct cmdline_spec many_spec = { "ARCHIVE...", 1, -1, NULL, { { NULL } } };

/* an option that goes with either of two others ("A|B") */
static const struct cmdline_spec either_spec = {
	"ARCHIVE", 1, 1, NULL,
	{ { .name = "--to-server", .value = "HOST" },
	  { .name = "--to-origin", .conflicts = "--to-server" },
	  { .name = "--authname", .value = "NAME", .needs = "--to-server|--to-origin" } }
};

/* parses the NULL-ended words (the command's name first) into cl; returns
 * cmdline_parse's result, a refusal in e */
static int
parse(const struct cmdline_spec *spec, struct cmdline *cl, struct chj_error *e, ...)
{
	char *argv[16];
	va_list ap;
	int argc = 0, rc;

	va_start(ap, e);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	memset(e, 0, sizeof *e);
	rc = cmdline_parse(spec, argc, argv, cl, e);
	if (rc < 0)
		assert_int_equal(e->code, CHJ_ERR_INVALID);
	return rc;
}

static void
test_spellings(void **state)
{
	struct cmdline cl;
	struct chj_error e;

	(void)state;
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "--null", "c1",
	    "--run=abc", "--reconcile", "--entries", NULL), 0);
	assert_int_equal(cl.operand_count, 1);
	assert_string_equal(cl.operands[0], "c1");
	assert_int_equal(cmdline_has(&cl, "-0"), 1);
	assert_int_equal(cmdline_has(&cl, "--null"), 1);     /* the alias is the option */
	assert_int_equal(cmdline_has(&cl, "--deleted"), 0);
	assert_string_equal(cmdline_value(&cl, "--run"), "abc");
	cmdline_free(&cl);

	/* "--run ID" as two words; the last value wins; "--" ends the options */
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "--run", "x", "--run", "y",
	    "--", "--deleted", NULL), 0);
	assert_string_equal(cmdline_value(&cl, "--run"), "y");
	assert_string_equal(cl.operands[0], "--deleted");
	assert_int_equal(cmdline_has(&cl, "--deleted"), 0);
	cmdline_free(&cl);

	/* a value that starts with '-' is a value: the command judges it */
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "--run", "-1", NULL), 0);
	assert_string_equal(cmdline_value(&cl, "--run"), "-1");
	cmdline_free(&cl);
}

static void
test_repeat_and_required(void **state)
{
	struct cmdline cl;
	const char *const *v;
	struct chj_error e;
	size_t n;

	(void)state;
	assert_int_equal(parse(&restore_spec, &cl, &e, "restore", "--folder", "a", "ar",
	    "--to", "d", "--folder=b", NULL), 0);
	v = cmdline_values(&cl, "--folder", &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	assert_null(cmdline_values(&cl, "--at", &n));
	assert_int_equal(n, 0);
	cmdline_free(&cl);

	assert_int_equal(parse(&restore_spec, &cl, &e, "restore", "ar", NULL), -1);
	assert_string_equal(e.msg, "--to DIR is required");
	assert_int_equal(parse(&restore_spec, &cl, &e, "restore", "--to", "d", NULL), -1);
	assert_string_equal(e.msg, "expected ARCHIVE");
	assert_int_equal(parse(&restore_spec, &cl, &e, "restore", "ar", "--to", NULL), -1);
	assert_string_equal(e.msg, "--to needs a value");

	assert_int_equal(parse(&many_spec, &cl, &e, "verify", "a", "b", "c", NULL), 0);
	assert_int_equal(cl.operand_count, 3);
	cmdline_free(&cl);
}

static void
test_refusals(void **state)
{
	struct cmdline cl;
	struct chj_error e;

	(void)state;
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "--bogus", NULL), -1);
	assert_string_equal(e.msg, "unknown option '--bogus'");
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "c2", NULL), -1);
	assert_string_equal(e.msg, "unexpected argument 'c2'");
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "-0", NULL), -1);
	assert_string_equal(e.msg, "expected a consumer name");
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "--reconcile",
	    "--deleted", NULL), -1);
	assert_string_equal(e.msg, "--deleted and --reconcile do not go together");
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "--entries", NULL), -1);
	assert_string_equal(e.msg, "--entries goes with --reconcile");
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "--run", NULL), -1);
	assert_string_equal(e.msg, "--run needs a run id");
	/* needs "A|B": either will do, neither is refused naming both */
	assert_int_equal(parse(&either_spec, &cl, &e, "restore", "a", "--authname", "x", NULL), -1);
	assert_string_equal(e.msg, "--authname goes with --to-server or --to-origin");
	assert_int_equal(parse(&either_spec, &cl, &e, "restore", "a", "--to-origin", "--authname",
	    "x", NULL), 0);
	assert_string_equal(cmdline_value(&cl, "--authname"), "x");
	cmdline_free(&cl);
	assert_int_equal(parse(&either_spec, &cl, &e, "restore", "a", "--to-server", "h",
	    "--authname", "x", NULL), 0);
	cmdline_free(&cl);
	/* a flag takes no value */
	assert_int_equal(parse(&list_spec, &cl, &e, "list", "c1", "--deleted=yes", NULL), -1);
	assert_string_equal(e.msg, "unknown option '--deleted=yes'");
}

static void
test_usage(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(cmdline_usage(&list_spec, buf, sizeof buf),
	    "CONSUMER [-0] [--deleted | --reconcile [--entries]] [--run ID]");
	assert_string_equal(cmdline_usage(&restore_spec, buf, sizeof buf),
	    "ARCHIVE --to DIR [--at TIME|RUN] [--folder NAME]...");
	assert_string_equal(cmdline_usage(&many_spec, buf, sizeof buf), "ARCHIVE...");
	/* shown with the first of its alternatives */
	assert_string_equal(cmdline_usage(&either_spec, buf, sizeof buf),
	    "ARCHIVE [--to-server HOST [--authname NAME] | --to-origin]");
	/* cut to the buffer, still a string */
	assert_string_equal(cmdline_usage(&list_spec, buf, 9), "CONSUMER");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spellings),
		cmocka_unit_test(test_repeat_and_required),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
