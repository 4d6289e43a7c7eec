/* dlist.c: Cyrus's dlist text, as in mailboxes.db values, the 3.x
 * cyrus.header line and the replication protocol: atoms, "quoted strings",
 * {N}/{N+} literals, (lists) and %(key value ...) key-value lists. A reader
 * into a tree (dl_parse) and a writer into a buffer (dlw_*), written from
 * the format as Cyrus's imap/dlist.c and lib/prot.c read and print it. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrus/internal.h"

#define DL_MAX_DEPTH 32

static int dl_value(struct dl *d, const char *b, size_t len, size_t *pos, int depth,
    struct chj_error *e);

static void
skip_sp(const char *b, size_t len, size_t *pos)
{
	while (*pos < len && b[*pos] == ' ')
		(*pos)++;
}

static char *
dup_n(const char *s, size_t n)
{
	char *r = malloc(n + 1);

	if (!r)
		return NULL;
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

static int
dl_string(struct dl *d, const char *b, size_t len, size_t *pos, struct chj_error *e)
{
	size_t i = *pos + 1, o = 0;
	char *s = malloc(len - *pos + 1);

	if (!s)
		goto nomem;
	while (i < len && b[i] != '"') {
		if (b[i] == '\\' && i + 1 < len)
			i++;
		s[o++] = b[i++];
	}
	if (i >= len) {
		free(s);
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "unterminated quoted string");
		return -1;
	}
	s[o] = '\0';
	d->kind = DL_ATOM;
	d->s = s;
	*pos = i + 1;
	return 0;
nomem:
	chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	return -1;
}

static int
dl_literal(struct dl *d, const char *b, size_t len, size_t *pos, struct chj_error *e)
{
	size_t i = *pos + 1;
	uint64_t n = 0;

	while (i < len && b[i] >= '0' && b[i] <= '9' && n < UINT32_MAX)
		n = n * 10 + (uint64_t)(b[i++] - '0');
	if (i < len && b[i] == '+')
		i++;
	if (i + 3 > len || b[i] != '}' || b[i + 1] != '\r' || b[i + 2] != '\n' || n > len - i - 3) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "bad literal");
		return -1;
	}
	i += 3;
	d->kind = DL_ATOM;
	d->s = dup_n(b + i, (size_t)n);
	if (!d->s) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return -1;
	}
	*pos = i + (size_t)n;
	return 0;
}

static int
dl_atom_tok(struct dl *d, const char *b, size_t len, size_t *pos, struct chj_error *e)
{
	size_t i = *pos;

	while (i < len && b[i] != ' ' && b[i] != '(' && b[i] != ')' && b[i] != '\n' && b[i] != '\r')
		i++;
	if (i == *pos) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "value expected at byte %zu", *pos);
		return -1;
	}
	d->kind = DL_ATOM;
	d->s = dup_n(b + *pos, i - *pos);
	if (!d->s) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		return -1;
	}
	*pos = i;
	return 0;
}

/* Members up to ')'; in a kvlist each is a key atom and a value. */
static int
dl_members(struct dl *d, int kv, const char *b, size_t len, size_t *pos, int depth,
    struct chj_error *e)
{
	struct dl key;

	d->kind = kv ? DL_KVLIST : DL_LIST;
	for (;;) {
		skip_sp(b, len, pos);
		if (*pos >= len) {
			chj_error_set(e, CHJ_ERR_CORRUPT, 0, "unterminated list");
			return -1;
		}
		if (b[*pos] == ')') {
			(*pos)++;
			return 0;
		}
		if ((d->n & (d->n + 1)) == 0 || d->n == 0) {
			size_t cap = d->n ? (d->n + 1) * 2 : 4;
			struct dl *v = realloc(d->v, cap * sizeof *v);
			char **k;

			if (!v)
				goto nomem;
			d->v = v;
			if (kv) {
				k = realloc(d->keys, cap * sizeof *k);
				if (!k)
					goto nomem;
				d->keys = k;
			}
		}
		memset(&d->v[d->n], 0, sizeof d->v[d->n]);
		if (kv) {
			if (dl_value(&key, b, len, pos, depth + 1, e) < 0) {
				dl_free(&key);      /* a list as key, cut short */
				return -1;
			}
			if (key.kind != DL_ATOM) {
				dl_free(&key);
				chj_error_set(e, CHJ_ERR_CORRUPT, 0, "key expected at byte %zu", *pos);
				return -1;
			}
			d->keys[d->n] = key.s;
			skip_sp(b, len, pos);
		}
		if (dl_value(&d->v[d->n], b, len, pos, depth + 1, e) < 0) {
			if (kv)
				free(d->keys[d->n]);
			dl_free(&d->v[d->n]);
			return -1;
		}
		d->n++;
	}
nomem:
	chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	return -1;
}

static int
dl_value(struct dl *d, const char *b, size_t len, size_t *pos, int depth, struct chj_error *e)
{
	memset(d, 0, sizeof *d);
	if (depth > DL_MAX_DEPTH) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "lists nested too deep");
		return -1;
	}
	skip_sp(b, len, pos);
	if (*pos >= len) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "value expected at the end");
		return -1;
	}
	if (b[*pos] == '(') {
		(*pos)++;
		return dl_members(d, 0, b, len, pos, depth, e);
	}
	if (b[*pos] == '%' && *pos + 1 < len && b[*pos + 1] == '(') {
		*pos += 2;
		return dl_members(d, 1, b, len, pos, depth, e);
	}
	if (b[*pos] == '"')
		return dl_string(d, b, len, pos, e);
	if (b[*pos] == '{')
		return dl_literal(d, b, len, pos, e);
	return dl_atom_tok(d, b, len, pos, e);
}

int
dl_parse(struct dl *d, const char *buf, size_t len, size_t *used, struct chj_error *e)
{
	size_t pos = 0;
	int r = dl_value(d, buf, len, &pos, 0, e);

	if (r < 0)
		dl_free(d);
	if (used)
		*used = pos;
	return r;
}

void
dl_free(struct dl *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++) {
		dl_free(&d->v[i]);
		if (d->keys)
			free(d->keys[i]);
	}
	free(d->v);
	free(d->keys);
	free(d->s);
	memset(d, 0, sizeof *d);
}

const struct dl *
dl_get(const struct dl *d, const char *key)
{
	size_t i;

	if (!d || d->kind != DL_KVLIST)
		return NULL;
	for (i = 0; i < d->n; i++)
		if (!strcmp(d->keys[i], key))
			return &d->v[i];
	return NULL;
}

const char *
dl_atom(const struct dl *d, const char *key)
{
	const struct dl *v = dl_get(d, key);

	return v && v->kind == DL_ATOM ? v->s : NULL;
}

int
dl_num(const struct dl *d, const char *key, uint64_t *v)
{
	const char *s = dl_atom(d, key);
	uint64_t n = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return 0;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return 1;
}

/* ---- the writer ---- */

/* Cyrus's prot_printstring quotes up to this many bytes, literals beyond */
#define DLW_MAXQUOTED 1024

void
dlw_free(struct dlw *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}

void
dlw_raw(struct dlw *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		char *b;

		while (cap < w->len + n + 1)
			cap *= 2;
		b = realloc(w->buf, cap);
		if (b == NULL) {
			w->oom = 1;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void
dlw_sep(struct dlw *w)
{
	if (w->sep)
		dlw_raw(w, " ", 1);
	w->sep = 1;
}

/* imparse_isatom: no 8-bit, control, space or {()"%*\ byte, shorter than 1024 */
static int
is_atom(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n >= DLW_MAXQUOTED || (n == 3 && memcmp(p, "NIL", 3) == 0))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c & 0x80 || c < 0x1f || c == 0x7f || strchr(" {()\"%*\\", c) != NULL)
			return 0;
	}
	return 1;
}

/* prot_printstring's isQCHAR: no 8-bit, CR, LF, NUL or "%\ byte */
static int
is_quotable(const char *p, size_t n)
{
	size_t i;

	if (n >= DLW_MAXQUOTED)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c & 0x80 || c == '\0' || c == '\r' || c == '\n' || c == '"' || c == '%' || c == '\\')
			return 0;
	}
	return 1;
}

void
dlw_map(struct dlw *w, const void *p, size_t n)
{
	char head[32];

	dlw_sep(w);
	if (is_atom(p, n)) {
		dlw_raw(w, p, n);
	} else if (is_quotable(p, n)) {
		dlw_raw(w, "\"", 1);
		dlw_raw(w, p, n);
		dlw_raw(w, "\"", 1);
	} else {
		/* non-synchronizing: the server's dlist parser never asks to go on */
		snprintf(head, sizeof head, "{%zu+}\r\n", n);
		dlw_raw(w, head, strlen(head));
		dlw_raw(w, p, n);
	}
}

void
dlw_str(struct dlw *w, const char *s)
{
	dlw_map(w, s, strlen(s));
}

void
dlw_flag(struct dlw *w, const char *flag)
{
	dlw_sep(w);
	dlw_raw(w, flag, strlen(flag));
}

void
dlw_text(struct dlw *w, const char *text)
{
	dlw_sep(w);
	dlw_raw(w, text, strlen(text));
}

void
dlw_num(struct dlw *w, uint64_t v)
{
	char b[24];

	dlw_sep(w);
	snprintf(b, sizeof b, "%" PRIu64, v);
	dlw_raw(w, b, strlen(b));
}

void
dlw_kstr(struct dlw *w, const char *key, const char *s)
{
	dlw_str(w, key);
	dlw_str(w, s);
}

void
dlw_knum(struct dlw *w, const char *key, uint64_t v)
{
	dlw_str(w, key);
	dlw_num(w, v);
}

void
dlw_open(struct dlw *w, const char *key, int kv)
{
	if (key != NULL)
		dlw_str(w, key);
	dlw_sep(w);
	dlw_raw(w, kv ? "%(" : "(", kv ? 2 : 1);
	w->sep = 0;
}

void
dlw_close(struct dlw *w)
{
	dlw_raw(w, ")", 1);
	w->sep = 1;
}
