/* archive-lib.h: libarchive, loaded when an archive is first written or read
 * instead of when a program starts (see archive-lib.c for why). */
#ifndef CHJ_ARCHIVE_LIB_H
#define CHJ_ARCHIVE_LIB_H

#include <stddef.h>
#include <archive.h>
#include <archive_entry.h>

#include "error.h"

/* Every libarchive function the archive code calls. */
#define ARCHIVE_LIB_FUNCS(X) \
	X(archive_errno) X(archive_error_string) X(archive_set_error) \
	X(archive_filter_bytes) \
	X(archive_write_new) X(archive_write_set_format_pax) \
	X(archive_write_add_filter_none) X(archive_write_set_bytes_per_block) \
	X(archive_write_set_bytes_in_last_block) X(archive_write_open) \
	X(archive_write_header) X(archive_write_data) X(archive_write_finish_entry) \
	X(archive_write_close) X(archive_write_free) \
	X(archive_read_new) X(archive_read_support_format_tar) X(archive_read_open) \
	X(archive_read_next_header) X(archive_read_data) X(archive_read_free) \
	X(archive_entry_new) X(archive_entry_free) \
	X(archive_entry_pathname) X(archive_entry_copy_pathname) \
	X(archive_entry_symlink) X(archive_entry_copy_symlink) X(archive_entry_hardlink) \
	X(archive_entry_filetype) X(archive_entry_set_filetype) \
	X(archive_entry_perm) X(archive_entry_set_perm) \
	X(archive_entry_size) X(archive_entry_set_size) \
	X(archive_entry_mtime) X(archive_entry_mtime_nsec) X(archive_entry_set_mtime) \
	X(archive_entry_set_uid) X(archive_entry_set_gid)

/* The loaded library: one pointer per function, with libarchive's own
 * prototype, under libarchive's own name. */
struct archive_lib {
	void *handle;
#define ARCHIVE_LIB_MEMBER(name) __typeof__(name) *name;
	ARCHIVE_LIB_FUNCS(ARCHIVE_LIB_MEMBER)
#undef ARCHIVE_LIB_MEMBER
};

/* Loads libarchive into al: 0, or -1 with the reason in e (CHJ_ERR_ARCHIVE).
 * The library
 * stays mapped once loaded, so a second load costs a lookup per function. */
int archive_lib_open(struct archive_lib *al, struct chj_error *e);
/* Releases al (a no-op on a zeroed or failed one). */
void archive_lib_close(struct archive_lib *al);

#endif
