/* promtext.c: Prometheus text-format label values (promtext.h). */
#include "promtext.h"

char *
prom_label_value(const char *s, char *out, size_t size)
{
	size_t k = 0;

	for (; *s != '\0' && k + 3 <= size - 1; s++) {
		if (*s == '\\' || *s == '"') {
			out[k++] = '\\';
			out[k++] = *s;
		} else if (*s == '\n') {
			out[k++] = '\\';
			out[k++] = 'n';
		} else {
			out[k++] = *s;
		}
	}
	out[k] = '\0';
	return out;
}
