/* cmdline.h: a command's arguments declared once — its operands and options
 * (name, alias, value, may repeat, required, what it does not go with, what
 * it needs) — and from that one declaration the parsing, the checks and the
 * usage line (tmux's cmd_entry args, git's parse_options). The library
 * parses and says what is wrong in the error handle; the program prints. */
#ifndef CHJ_CMDLINE_H
#define CHJ_CMDLINE_H

#include <stddef.h>

#include "error.h"

#define CMDLINE_MAX_OPTIONS 12

/* option flags */
#define CMDLINE_REPEAT   0x1   /* may be given more than once: every value kept */
#define CMDLINE_REQUIRED 0x2   /* must be given (shown without brackets) */

struct cmdline_option {
	const char *name;       /* "--timeout", or "-0"; NULL ends the list */
	const char *alias;      /* another spelling ("--null", "--config"), or NULL */
	const char *value;      /* the value's name in the usage ("SECONDS"); NULL: a flag */
	const char *missing;    /* "needs ..." when the value is missing: "a number
	                         * of seconds"; NULL: "a value" */
	int flags;
	const char *conflicts;  /* an option it does not go with (shown "[A | B]") */
	const char *needs;      /* an option it goes only with (shown "[A [B]]"), or
	                         * alternatives "A|B" (one of them; shown with A) */
};

struct cmdline_spec {
	const char *operands;   /* their usage ("CONSUMER", "ARCHIVE...", "[COMMAND]") */
	int min_operands;
	int max_operands;       /* -1: any number */
	const char *operands_missing;  /* said when fewer are given ("expected one
	                                * consumer name"); NULL: "expected OPERANDS" */
	struct cmdline_option options[CMDLINE_MAX_OPTIONS];
};

struct cmdline {
	const struct cmdline_spec *spec;
	int operand_count;
	char **operands;                          /* into argv */
	int count[CMDLINE_MAX_OPTIONS];           /* times each option was given */
	const char *value[CMDLINE_MAX_OPTIONS];   /* the last value given */
	const char **values[CMDLINE_MAX_OPTIONS]; /* CMDLINE_REPEAT: all, in order */
};

/* Parses argv[1..argc-1] (argv[0] the command) against spec: options as
 * "--name value", "--name=value" or the alias; "--" ends the options; an
 * operand may come before or after options. Returns 0, or -1 with e set
 * (CHJ_ERR_INVALID: a usage error, the message names the argument;
 * CHJ_ERR_NOMEM). The
 * result points into argv; free it with cmdline_free. */
int cmdline_parse(const struct cmdline_spec *spec, int argc, char **argv, struct cmdline *cl,
    struct chj_error *e);
void cmdline_free(struct cmdline *cl);

/* How many times option name (its first spelling) was given: 0 if never. */
int cmdline_has(const struct cmdline *cl, const char *name);
/* Its last value, or NULL when not given. */
const char *cmdline_value(const struct cmdline *cl, const char *name);
/* All its values (a CMDLINE_REPEAT option), *n of them; NULL when none. */
const char *const *cmdline_values(const struct cmdline *cl, const char *name, size_t *n);

/* The usage line after the command's name, from spec: the operands, then
 * each option ("[--timeout SECONDS]", "--to DIR" when required, "[--folder
 * NAME]..." when it repeats, "[--json | --prometheus]" for a conflicting
 * pair, "[--reconcile [--entries]]" for one needing the other). Returns buf
 * (truncated to size). */
char *cmdline_usage(const struct cmdline_spec *spec, char *buf, size_t size);

#endif
