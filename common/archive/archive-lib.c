/* archive-lib.c: loads libarchive with dlopen() when an archive is opened.
 *
 * Linked the ordinary way, libarchive brings libxml2, ICU, libstdc++ and five
 * compression libraries into every chjournal command: mapping and relocating
 * them took 2.5 ms of each run here, more than SQLite's part of a 13,000-file
 * `list`, which uses none of them. Only the Cyrus archive code needs
 * libarchive, so it loads it (by the soname configure found) on first use.
 * The calls keep libarchive's prototypes (__typeof__ of its declarations). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "archive-lib.h"

#ifndef LIBARCHIVE_SONAME
#define LIBARCHIVE_SONAME "libarchive.so.13"
#endif

int
archive_lib_open(struct archive_lib *al, struct chj_error *err)
{
	const char *e;
	void *sym;

	memset(al, 0, sizeof *al);
	/* NODELETE: closing the last handle leaves it mapped, so the next
	 * archive opened does not load it again */
	al->handle = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (al->handle == NULL) {
		e = dlerror();
		chj_error_set(err, CHJ_ERR_ARCHIVE, 0, "cannot load libarchive '%s': %s", LIBARCHIVE_SONAME,
		    e ? e : "unknown error");
		return -1;
	}
#define ARCHIVE_LIB_LOAD(name)                                                  \
	if ((sym = dlsym(al->handle, #name)) == NULL)                            \
		goto missing;                                                    \
	memcpy(&al->name, &sym, sizeof sym);
	ARCHIVE_LIB_FUNCS(ARCHIVE_LIB_LOAD)
#undef ARCHIVE_LIB_LOAD
	return 0;
missing:
	e = dlerror();
	chj_error_set(err, CHJ_ERR_ARCHIVE, 0, "cannot load libarchive '%s': %s", LIBARCHIVE_SONAME,
	    e ? e : "a function is missing");
	archive_lib_close(al);
	return -1;
}

void
archive_lib_close(struct archive_lib *al)
{
	if (al->handle != NULL)
		dlclose(al->handle);
	memset(al, 0, sizeof *al);
}
