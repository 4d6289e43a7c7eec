/* array.c: growing and sorting arrays, arrays of strings (see array.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

void *
array_reserve(void *arr, size_t need, size_t *cap, size_t elsize, size_t first)
{
	size_t nc = *cap ? *cap : first ? first : 1;
	void *na;

	if (need <= *cap)
		return arr;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return NULL;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elsize || (na = realloc(arr, nc * elsize)) == NULL)
		return NULL;
	*cap = nc;
	return na;
}

void *
array_grow(void *arr, size_t n, size_t *cap, size_t elsize, size_t first)
{
	return n == SIZE_MAX ? NULL : array_reserve(arr, n + 1, cap, elsize, first);
}

void
array_sort(void *base, size_t n, size_t elsize, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, elsize, cmp);
}

int
array_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
array_sort_unique_strings(char **v, size_t n)
{
	size_t i, o = 0;

	/* often sorted already: one pass to see costs less than a sort */
	for (i = 1; i < n && strcmp(v[i - 1], v[i]) <= 0; i++)
		;
	if (i < n)
		array_sort(v, n, sizeof *v, array_str_cmp);
	for (i = 0; i < n; i++) {
		if (o > 0 && strcmp(v[o - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[o++] = v[i];
	}
	return o;
}

int
strvec_add(struct strvec *sv, const char *s)
{
	char **nv = array_grow(sv->v, sv->n, &sv->cap, sizeof *sv->v, 16);
	char *copy;

	if (nv == NULL)
		return -1;
	sv->v = nv;
	copy = strdup(s);
	if (copy == NULL)
		return -1;
	sv->v[sv->n++] = copy;
	return 0;
}

int
strvec_has(const struct strvec *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return 1;
	return 0;
}

void
strvec_sort_unique(struct strvec *sv)
{
	sv->n = array_sort_unique_strings(sv->v, sv->n);
}

void
strvec_free(struct strvec *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}
