/* pullmetrics.h: what each `backup --from` pull of a host did, kept on the
 * backup host as DIR/HOST.prom in node_exporter's textfile format (so the
 * textfile collector can read DIR as it is) and read back by `status --pulls
 * DIR`, which shows every host in one place. Nothing here prints. */
#ifndef CHJ_PULLMETRICS_H
#define CHJ_PULLMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct pull_metrics {
	char host[256];             /* HOST: the file's name, DIR/HOST.prom */
	double last_run;            /* when the last pull ended (unix seconds) */
	double last_success;        /* when a pull last succeeded (0: never) */
	int success;                /* the last pull succeeded (consumer committed) */
	double duration;            /* how long the last pull took (seconds) */
	uint64_t received_bytes;    /* received from serve by the last pull */
	unsigned long runs_written; /* user runs the last pull wrote */
	unsigned long users_failed; /* users whose backup failed in it */
};

/* Writes dir/HOST.prom for m (atomically), the time of the last success
 * taken from the file there when m's pull failed (m->last_success is set
 * to it). Returns 0, or -1 with e. */
int pull_metrics_write(const char *dir, struct pull_metrics *m, struct chj_error *e);

/* Reads the metrics of one host from path (a HOST.prom this module wrote;
 * m->host from its name). Returns 0, or -1 with e (CHJ_ERR_NOTFOUND,
 * CHJ_ERR_SYS, CHJ_ERR_CORRUPT: a metric missing or malformed). */
int pull_metrics_read(const char *path, struct pull_metrics *m, struct chj_error *e);

/* Every host of dir (its *.prom files), sorted by host. A file that cannot
 * be read fails the whole (one line naming it). Returns 0, or -1 with e. */
int pull_metrics_list(const char *dir, struct pull_metrics **v, size_t *n, struct chj_error *e);

/* Hosts v[0..n) in the text format: each metric family once (its HELP and
 * TYPE), with one sample per host. Returns a new string (caller frees), or
 * NULL (out of memory). */
char *pull_metrics_format(const struct pull_metrics *v, size_t n);

#endif
