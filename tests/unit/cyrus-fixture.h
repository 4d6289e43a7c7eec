/* cyrus-fixture.h: what the unit tests of the Cyrus backup and restore build
 * without a running Cyrus (in a temporary directory of unit-tmp.h): files, cyrus.index
 * files of minor version 17 (Cyrus 3.6's) and 3.x cyrus.header files, and a
 * small spool in the uuid layout with its imapd.conf. Every helper asserts
 * (cmocka) instead of returning errors. */
#ifndef CHJ_CYRUS_FIXTURE_H
#define CHJ_CYRUS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* A message of an index: its uid, its text (the GUID is its SHA1), flags. */
struct fx_msg {
	uint32_t uid;
	const char *text;
	uint32_t system_flags;
};

/* Writes len bytes (len (size_t)-1: strlen) to path, creating its parents. */
void fx_write(const char *path, const void *buf, size_t len);
/* Reads path whole (allocated, NUL-ended); NULL when it cannot. */
char *fx_read(const char *path, size_t *len);
/* The 40 hex digits of the SHA1 of text. */
void fx_sha1_hex(const char *text, char hex[41]);
/* A v17 cyrus.index of the n messages (allocated, *len bytes). */
unsigned char *fx_index(const struct fx_msg *msgs, size_t n, size_t *len);
/* A 3.x cyrus.header naming mailbox name (internal) and uniqueid
 * (allocated). */
char *fx_header(const char *name, const char *uniqueid);

/* A spool below top: top/imapd.conf (configdirectory top/conf, partition
 * default top/spool, sievedir top/sieve, no cyr_dbtool: the mailbox list
 * comes from the cyrus.header files). */
void fx_spool(const char *top);
/* Writes mailbox name (internal, "user.alice.Sent") with uniqueid into the
 * spool below top: cyrus.header, cyrus.index and each message file <uid>.
 * The directory is top/spool/uuid/U0/U1/UNIQUEID; its path into dir when
 * not NULL. */
void fx_mailbox(const char *top, const char *name, const char *uniqueid, const struct fx_msg *msgs,
    size_t n, char *dir);

#endif
