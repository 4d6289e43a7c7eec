/* nfsexport.c: roots the kernel NFS server exports (nfsexport.h). */
#include <stdio.h>
#include <string.h>

#include "nfsexport.h"
#include "path.h"

const char *const nfsexport_tables[] = { "/proc/fs/nfsd/exports", "/var/lib/nfs/etab", NULL };

void
nfsexport_roots(const struct config *cfg, const char *table, char *text, size_t size)
{
	char line[8192];
	size_t i;
	FILE *f = fopen(table, "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		char *end = line + strcspn(line, " \t\n");

		if (line[0] != '/')
			continue;        /* comments */
		*end = '\0';
		path_unescape_octal(line);
		for (i = 0; i < cfg->nroots; i++) {
			if ((path_is_under(cfg->roots[i], line) || path_is_under(line, cfg->roots[i])) &&
			    !path_list_contains(text, cfg->roots[i]) &&
			    strlen(text) + strlen(cfg->roots[i]) + 2 < size) {
				strcat(text, cfg->roots[i]);
				strcat(text, "\n");
			}
		}
	}
	fclose(f);
}
