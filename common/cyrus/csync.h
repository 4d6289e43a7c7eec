/* csync.h: a client of Cyrus's replication protocol ("csync", served by
 * sync_server): the connection, SASL PLAIN authentication, commands written
 * as dlists (internal.h's writer) and replies read into dlist trees. The
 * protocol as Cyrus 3.x speaks it (imap/sync_server.c, sync_support.c):
 *
 *   S: * SASL PLAIN LOGIN ... * OK <server> Cyrus sync server <version>
 *   C: AUTHENTICATE PLAIN <base64 of "\0authname\0password">
 *   S: OK Success (...)
 *   C: GET USER user01          S: * MAILBOX %(...) ... OK success
 *   C: APPLY MESSAGE (%{default <guid> <size>}\r\n<bytes> ...)
 *   C: APPLY MAILBOX %(UNIQUEID ... RECORD (...))   S: OK success | NO <why>
 *   C: RESTART / EXIT
 *
 * Nothing here prints: errors go to the caller's struct chj_error, one line
 * naming the server. Internal to common/cyrus/. */
#ifndef CHJ_CYRUS_CSYNC_H
#define CHJ_CYRUS_CSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "cyrus/internal.h"
#include "error.h"

/* Cyrus's csync service has no registered port: its documentation uses 2005 */
#define CSYNC_DEFAULT_PORT "2005"

struct csync_opts {
	const char *host;           /* a name, an IPv4 address or a [bracketed] IPv6 one */
	const char *port;
	const char *authname;
	const char *password;
	int timeout_ms;             /* each wait for the server; 0: 600 s */
};

struct csync;

/* One "* KEY value" line of a reply. */
struct csync_item {
	char *key;                  /* MAILBOX, LSUB, QUOTA, SIEVE, MISSING ... */
	struct dl value;
};

struct csync_reply {
	struct csync_item *items;
	size_t n, cap;
};

/* Splits "HOST[:PORT]" ("[V6]:PORT" too) into allocated *host and *port
 * (CSYNC_DEFAULT_PORT without one). 0, or -1 with e (CHJ_ERR_INVALID). */
int csync_parse_server(const char *spec, char **host, char **port, struct chj_error *e);

/* Connects, reads the banner, authenticates with SASL PLAIN (no
 * authorization id: the authname's own rights; Cyrus's sync_server wants an
 * admin). Returns 0 and *out, or -1 with e (CHJ_ERR_SYS: no connection;
 * CHJ_ERR_REFUSED: authentication refused; CHJ_ERR_CORRUPT: the peer does
 * not speak csync). */
int csync_open(struct csync **out, const struct csync_opts *o, struct chj_error *e);
/* Says EXIT (when the connection is still usable) and frees c. */
void csync_close(struct csync *c);
/* "HOST:PORT", for messages. */
const char *csync_name(const struct csync *c);

/* Sends len bytes of a command (buffered: csync_reply_read flushes). */
int csync_write(struct csync *c, const void *p, size_t len, struct chj_error *e);
/* Flushes what was written and reads the reply: its "* " lines into r
 * (appended; free with csync_reply_free), then the status line. Returns 0
 * on OK; -1 with e on NO or BAD (CHJ_ERR_REFUSED, the server's words, what
 * naming the command) or a broken connection or reply (CHJ_ERR_SYS,
 * CHJ_ERR_CORRUPT). */
int csync_reply_read(struct csync *c, const char *what, struct csync_reply *r, struct chj_error *e);
/* csync_write then csync_reply_read. */
int csync_cmd(struct csync *c, const void *cmd, size_t len, const char *what, struct csync_reply *r,
    struct chj_error *e);
void csync_reply_free(struct csync_reply *r);

#endif
