/* array.h: what the growing arrays in chjournal share: making room for one
 * more element, and sorting (also when empty), with duplicates dropped; and
 * the growing array of strings. */
#ifndef CHJ_ARRAY_H
#define CHJ_ARRAY_H

#include <stddef.h>

/* Room for need elements of size elsize in arr (room for *cap now): returns
 * arr itself while need <= *cap, else arr reallocated to *cap (first when *cap
 * is 0) doubled until it holds need, with *cap updated. NULL when out of
 * memory (or the size overflows): arr and *cap are then left as they were. */
void *array_reserve(void *arr, size_t need, size_t *cap, size_t elsize, size_t first);

/* Room for element n of arr: array_reserve() of n + 1 elements. */
void *array_grow(void *arr, size_t n, size_t *cap, size_t elsize, size_t first);

/* qsort(), which is undefined on a NULL base even for 0 elements. */
void array_sort(void *base, size_t n, size_t elsize, int (*cmp)(const void *, const void *));

/* Comparison of two char * elements, byte by byte (strcmp). */
int array_str_cmp(const void *a, const void *b);

/* Sorts the strings byte by byte and frees the duplicates: returns how many
 * are left at the front of v. */
size_t array_sort_unique_strings(char **v, size_t n);

/* A growing array of strings, each allocated and owned by it; zeroed, it
 * is empty. */
struct strvec {
	char **v;
	size_t n, cap;
};

/* Appends a copy of s: 0, or -1 when out of memory (sv as it was). */
int strvec_add(struct strvec *sv, const char *s);
/* 1 when s is one of the strings (a linear search), else 0. */
int strvec_has(const struct strvec *sv, const char *s);
/* Sorts the strings byte by byte, dropping duplicates. */
void strvec_sort_unique(struct strvec *sv);
/* Frees the strings and the array; sv is empty again. */
void strvec_free(struct strvec *sv);

#endif
