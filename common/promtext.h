/* promtext.h: the Prometheus (node_exporter) text format's label values,
 * for `status --prometheus` and the pull metrics (pullmetrics.c). */
#ifndef CHJ_PROMTEXT_H
#define CHJ_PROMTEXT_H

#include <stddef.h>

/* s as a label value into out (size bytes, at least 1): backslash, double
 * quote and newline escaped; cut short rather than overflow, never inside
 * an escape. Returns out. */
char *prom_label_value(const char *s, char *out, size_t size);

#endif
