/* cmdline.c: parsing a command's arguments against its declaration
 * (cmdline.h), the checks that follow from it, and its usage line. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"

static int
option_count(const struct cmdline_spec *spec)
{
	int n = 0;

	while (n < CMDLINE_MAX_OPTIONS && spec->options[n].name != NULL)
		n++;
	return n;
}

static int
option_index(const struct cmdline_spec *spec, const char *name)
{
	int i, n = option_count(spec);

	for (i = 0; i < n; i++)
		if (strcmp(spec->options[i].name, name) == 0 ||
		    (spec->options[i].alias != NULL && strcmp(spec->options[i].alias, name) == 0))
			return i;
	return -1;
}

/* The option arg spells ("--at" or "--at=..."): its index, -1 if none;
 * *inline_value the text after '=' or NULL. */
static int
match_option(const struct cmdline_spec *spec, const char *arg, const char **inline_value)
{
	const char *eq = strchr(arg, '=');
	char name[64];
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	int i;

	*inline_value = NULL;
	if (len >= sizeof name)
		return -1;
	memcpy(name, arg, len);
	name[len] = '\0';
	i = option_index(spec, name);
	if (i >= 0 && eq != NULL) {
		if (spec->options[i].value == NULL)
			return -1;          /* a flag takes no "=value" */
		*inline_value = eq + 1;
	}
	return i;
}

static int
keep_value(struct cmdline *cl, int i, const char *v, struct chj_error *e)
{
	const char **grown;
	int n = cl->count[i];

	cl->value[i] = v;
	if (!(cl->spec->options[i].flags & CMDLINE_REPEAT))
		return 0;
	grown = realloc(cl->values[i], (size_t)(n + 2) * sizeof *grown);
	if (grown == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	grown[n] = v;
	grown[n + 1] = NULL;
	cl->values[i] = grown;
	return 0;
}

/* needs is one option or alternatives "A|B": 1 when one of them was given. */
static int
needs_met(const struct cmdline *cl, const char *needs)
{
	char one[64];
	size_t n;

	for (;;) {
		n = strcspn(needs, "|");
		snprintf(one, sizeof one, "%.*s", (int)n, needs);
		if (cmdline_has(cl, one))
			return 1;
		if (needs[n] == '\0')
			return 0;
		needs += n + 1;
	}
}

/* needs ("A" or "A|B") for people: "A or B", into out. */
static void
or_list(const char *needs, char *out, size_t size)
{
	size_t o = 0;
	const char *p;

	for (p = needs; *p != '\0' && o + 5 < size; p++) {
		if (*p == '|') {
			memcpy(out + o, " or ", 4);
			o += 4;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

/* 1 when needs ("A" or "A|B") names name first: the usage shows the option
 * with that one. */
static int
needs_first(const char *needs, const char *name)
{
	size_t n = strcspn(needs, "|");

	return strlen(name) == n && strncmp(needs, name, n) == 0;
}

/* argv[*k] is option i: takes its value; -1 with e set when it is missing. */
static int
take_option(struct cmdline *cl, int i, const char *inline_value, int argc, char **argv, int *k,
    struct chj_error *e)
{
	const struct cmdline_option *o = &cl->spec->options[i];
	const char *v = inline_value;

	if (o->value != NULL && v == NULL) {
		if (*k + 1 >= argc)
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "%s needs %s", argv[*k],
			    o->missing != NULL ? o->missing : "a value");
		v = argv[++*k];
	}
	if (keep_value(cl, i, v, e) < 0)
		return -1;
	cl->count[i]++;
	return 0;
}

/* The rules between options and the operands' count, once all are read. */
static int
check_rules(struct cmdline *cl, struct chj_error *e)
{
	const struct cmdline_spec *spec = cl->spec;
	int i, n = option_count(spec);

	for (i = 0; i < n; i++) {
		const struct cmdline_option *o = &spec->options[i];

		if ((o->flags & CMDLINE_REQUIRED) && cl->count[i] == 0)
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "%s %s is required", o->name,
			    o->value != NULL ? o->value : "");
		if (cl->count[i] > 0 && o->conflicts != NULL && cmdline_has(cl, o->conflicts))
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "%s and %s do not go together",
			    o->conflicts, o->name);
		if (cl->count[i] > 0 && o->needs != NULL && !needs_met(cl, o->needs)) {
			char said[256];

			or_list(o->needs, said, sizeof said);
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "%s goes with %s", o->name, said);
		}
	}
	if (cl->operand_count < spec->min_operands) {
		if (spec->operands_missing != NULL)
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "%s", spec->operands_missing);
		return chj_error_set(e, CHJ_ERR_INVALID, 0, "expected %s", spec->operands);
	}
	return 0;
}

static int
take_operand(struct cmdline *cl, char *arg, struct chj_error *e)
{
	const struct cmdline_spec *spec = cl->spec;

	if (spec->max_operands >= 0 && cl->operand_count >= spec->max_operands)
		return chj_error_set(e, CHJ_ERR_INVALID, 0, "unexpected argument '%s'", arg);
	cl->operands[cl->operand_count++] = arg;
	return 0;
}

int
cmdline_parse(const struct cmdline_spec *spec, int argc, char **argv, struct cmdline *cl,
    struct chj_error *e)
{
	int k, options_end = 0;

	memset(cl, 0, sizeof *cl);
	cl->spec = spec;
	cl->operands = calloc((size_t)(argc > 0 ? argc : 1), sizeof *cl->operands);
	if (cl->operands == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	for (k = 1; k < argc; k++) {
		const char *inline_value;
		int i;

		if (!options_end && strcmp(argv[k], "--") == 0) {
			options_end = 1;
			continue;
		}
		if (options_end || argv[k][0] != '-' || argv[k][1] == '\0') {
			if (take_operand(cl, argv[k], e) < 0)
				goto fail;
			continue;
		}
		i = match_option(spec, argv[k], &inline_value);
		if (i < 0) {
			chj_error_set(e, CHJ_ERR_INVALID, 0, "unknown option '%s'", argv[k]);
			goto fail;
		}
		if (take_option(cl, i, inline_value, argc, argv, &k, e) < 0)
			goto fail;
	}
	if (check_rules(cl, e) < 0)
		goto fail;
	return 0;
fail:
	cmdline_free(cl);
	return -1;
}

void
cmdline_free(struct cmdline *cl)
{
	int i;

	for (i = 0; i < CMDLINE_MAX_OPTIONS; i++) {
		free(cl->values[i]);
		cl->values[i] = NULL;
	}
	free(cl->operands);
	cl->operands = NULL;
	cl->operand_count = 0;
}

int
cmdline_has(const struct cmdline *cl, const char *name)
{
	int i = option_index(cl->spec, name);

	return i < 0 ? 0 : cl->count[i];
}

const char *
cmdline_value(const struct cmdline *cl, const char *name)
{
	int i = option_index(cl->spec, name);

	return i < 0 || cl->count[i] == 0 ? NULL : cl->value[i];
}

const char *const *
cmdline_values(const struct cmdline *cl, const char *name, size_t *n)
{
	int i = option_index(cl->spec, name);

	*n = i < 0 ? 0 : (size_t)cl->count[i];
	return i < 0 || cl->values[i] == NULL ? NULL : cl->values[i];
}

/* ---- the usage line ---- */

static void
append(char *buf, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + 1 >= size)
		return;
	if (n > size - 1 - *len)
		n = size - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

/* "--timeout SECONDS" or "--replace" */
static void
append_spelling(char *buf, size_t size, size_t *len, const struct cmdline_option *o)
{
	append(buf, size, len, o->name);
	if (o->value != NULL) {
		append(buf, size, len, " ");
		append(buf, size, len, o->value);
	}
}

/* The option after from that names i in its conflicts or needs; -1 if none. */
static int
follower(const struct cmdline_spec *spec, int i, int by_needs, int from)
{
	int j, n = option_count(spec);

	for (j = from + 1; j < n; j++) {
		const char *ref = by_needs ? spec->options[j].needs : spec->options[j].conflicts;

		if (ref != NULL && (by_needs ? needs_first(ref, spec->options[i].name) :
		    strcmp(ref, spec->options[i].name) == 0))
			return j;
	}
	return -1;
}

/* Option i, with the options that follow from it, "[...]" (bare: without
 * the brackets, the second of a pair "[A | B]"); marks them shown. */
static void
append_option(const struct cmdline_spec *spec, int i, int bare, int *shown, char *buf,
    size_t size, size_t *len)
{
	const struct cmdline_option *o = &spec->options[i];
	int bracket = !bare && !(o->flags & CMDLINE_REQUIRED);
	int other = follower(spec, i, 0, i), needer = follower(spec, i, 1, i);
	int more = other >= 0 ? follower(spec, i, 0, other) : -1;

	shown[i] = 1;
	if (bracket)
		append(buf, size, len, "[");
	append_spelling(buf, size, len, o);
	for (; needer >= 0; needer = follower(spec, i, 1, needer)) {
		if (shown[needer])
			continue;
		append(buf, size, len, " ");
		append_option(spec, needer, 0, shown, buf, size, len);
	}
	if (other >= 0 && !shown[other] && more < 0) {
		/* one that does not go with it: "[A | B]" */
		append(buf, size, len, " | ");
		append_option(spec, other, 1, shown, buf, size, len);
	} else if (other >= 0 && !shown[other]) {
		/* several, which go together: "[A | [B] [C]]" */
		append(buf, size, len, " |");
		for (; other >= 0; other = follower(spec, i, 0, other)) {
			append(buf, size, len, " ");
			append_option(spec, other, 0, shown, buf, size, len);
		}
	}
	if (bracket)
		append(buf, size, len, "]");
	if (o->flags & CMDLINE_REPEAT)
		append(buf, size, len, "...");
}

char *
cmdline_usage(const struct cmdline_spec *spec, char *buf, size_t size)
{
	int shown[CMDLINE_MAX_OPTIONS] = { 0 };
	int i, n = option_count(spec);
	size_t len = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	append(buf, size, &len, spec->operands != NULL ? spec->operands : "");
	for (i = 0; i < n; i++) {
		if (shown[i])
			continue;
		if (len > 0)
			append(buf, size, &len, " ");
		append_option(spec, i, 0, shown, buf, size, &len);
	}
	return buf;
}
