/* proto.h: the requests `chjournal serve` answers and the replies it sends,
 * over the frames of wire.h; serve.c is the answering side, remote.c the
 * asking one (a source, source.h). One request at a time: the client sends
 * a request frame, the server answers with frames of the reply types and
 * ends the answer with PROTO_OK or PROTO_ERR. PROTO_NOTE frames (a line the
 * local source wants shown) may come anywhere in an answer.
 *
 * There is no request that writes: the only state a client can move is its
 * consumer's run (begin, commit, abort), and only for the consumer serve was
 * started for. Every field has a limit, checked before it is used. */
#ifndef CHJ_PROTO_H
#define CHJ_PROTO_H

#include <stdint.h>

#include "error.h"
#include "source.h"
#include "wire.h"

#define PROTO_MAGIC "chjournal-serve 1"

/* limits of the fields of a request */
#define PROTO_PATH_MAX 4096         /* a path, a mailbox name, a user name */
#define PROTO_LINE_MAX 2048         /* an error or a note */
#define PROTO_REQUEST_MAX (512 * 1024)  /* what a client puts in one request frame */

enum proto_type {
	/* requests */
	PROTO_HELLO = 1,            /* magic -> HELLO(magic, host name, capabilities) */
	PROTO_BEGIN = 2,            /* consumer, flags u64 -> RUN, USERS*, OK */
	PROTO_END = 3,              /* consumer, run_id, commit u64 -> OK */
	PROTO_LIST = 4,             /* consumer, run_id ("" none), what u64 -> DATA*, OK */
	PROTO_MAILBOXES = 5,        /* has_user u64, user -> MBOX*, OK */
	PROTO_META_STAT = 6,        /* mailbox names... -> STAT*, OK */
	PROTO_META_READ = 7,        /* mailbox name -> (META, DATA*)*, OK */
	PROTO_USER_FILES = 8,       /* user -> UFILE*, OK */
	PROTO_FETCH = 9,            /* paths... -> (FILE, DATA* [FERR])*, OK */
	PROTO_FOLDER_ANNOTS = 10,   /* all u64, uniqueids... -> (ANNOT [DATA*])*, OK
	                             * (PROTO_CAP_FOLDER_ANNOTS) */
	PROTO_REQUEST_LAST = 10,

	/* replies */
	PROTO_OK = 64,
	PROTO_ERR = 65,             /* code u64, errno u64, message */
	PROTO_NOTE = 66,            /* line */
	PROTO_RUN = 67,             /* run_id, full_reason, seq u64, committed u64
	                             * [, globals u64 when PROTO_BEGIN_GLOBALS] */
	PROTO_USERS = 68,           /* user... */
	PROTO_DATA = 69,            /* bytes */
	PROTO_MBOX = 70,            /* PROTO_MBOX_FIELDS per mailbox, repeated */
	PROTO_STAT = 71,            /* PROTO_STAT_FIELDS per stat, repeated */
	PROTO_META = 72,            /* file index u64, present u64, length u64, stat */
	PROTO_UFILE = 73,           /* path, rel, has_target u64, target, stat */
	PROTO_FILE = 74,            /* request index u64, stat; then its st.size bytes as DATA */
	PROTO_FERR = 75,            /* the file being sent failed: message */
	PROTO_ANNOT = 76,           /* PROTO_ANNOT_FIELDS per annotation, repeated */
};

#define PROTO_STAT_FIELDS 5     /* err, kind, size, mtime_ns, mode */
#define PROTO_ANNOT_FIELDS 6    /* uniqueid, entry, userid, modseq u64, length u64,
                                 * value: the bytes when length <= PROTO_ANNOT_INLINE,
                                 * else "", the frame's last, its bytes in DATA after */
#define PROTO_ANNOT_INLINE (64 * 1024)
#define PROTO_MBOX_FIELDS 8     /* name, uniqueid, partition, mbtype, path, relpath,
                                 * user ("" none), deleted u64 */

/* Capabilities. Each side learns the other's without a round trip of its
 * own, and a side that does not know one behaves as before it existed:
 * serve names its capabilities, as words, in a third field of its HELLO
 * (an older client reads the first only; an older serve sends two fields:
 * none); a client asks for what an older serve would not send through a
 * flag of the request (an older serve ignores flags it does not know, an
 * older client never sets them). A global file whose change concerns
 * some users only (annotations.db; quota files would be another) is a
 * capability word, a bit of RUN's globals, and a request reading it. */
#define PROTO_CAP_FOLDER_ANNOTS "folder-annotations"  /* PROTO_FOLDER_ANNOTS */
#define PROTO_CAPS PROTO_CAP_FOLDER_ANNOTS             /* what this serve says */
#define PROTO_CAPS_MAX 1024     /* the capabilities field, at most */

/* BEGIN's flags beyond the source's (SOURCE_BEGIN_FLAGS) */
#define PROTO_BEGIN_GLOBALS 0x100   /* answer RUN with its fifth field */
/* RUN's globals: the window changed ... */
#define PROTO_GLOBAL_ANNOTS 0x1     /* annotations.db (source_run.cyrus_annots) */

/* Puts st's PROTO_STAT_FIELDS fields into the frame being built. */
void proto_put_stat(struct wire *w, const struct source_stat *st);
/* Reads PROTO_STAT_FIELDS fields from field i of the last frame: 0 or -1 with w->err. */
int proto_get_stat(struct wire *w, size_t i, struct source_stat *st);

/* ---- the answering side (serve.c) ---- */

struct serve_opts {
	struct source *local;       /* a local source with a runner and Cyrus (not owned) */
	const char *consumer;       /* the only consumer a client may begin, end, list */
	const char *host;           /* told in HELLO */
	/* each refused request, one line (NULL: not told) */
	void (*refused)(void *ctx, const char *line);
	void *ctx;
};

/* Answers the requests arriving on w until its input ends. A well-formed
 * request that is refused (a path outside the Cyrus directories, another
 * consumer, an unknown type) is answered PROTO_ERR and told to o->refused;
 * serving goes on. Without Cyrus (o->local has none) only the consumer's
 * requests are answered. Returns 0 at a clean end of input, or -1 with e
 * when a frame was malformed or oversized (answered PROTO_ERR first, when it
 * could be) or the connection failed. A run begun with SOURCE_BEGIN_SESSION
 * and not ended when the connection ends is aborted. */
int serve_run(struct wire *w, const struct serve_opts *o, struct chj_error *e);

/* ---- the asking side (remote.c) ---- */

/* A source reading through a `chjournal serve` at the other end of in and
 * out (ssh's pipes; not closed by source_free), name the host (for
 * messages). Sends HELLO; its answer is checked before the answer to the
 * first request, sent without waiting for it (one round trip for an idle
 * pull): nothing or garbage coming back breaks that request (CHJ_ERR_PEER).
 * Each wait for the other end lasts at most timeout_ms (0: no limit; then
 * CHJ_ERR_PEER, "no answer in N s"). Returns 0 and *out, or -1 with e (the
 * HELLO could not be sent). */
int source_remote_open(struct source **out, int in, int outfd, const char *name, int timeout_ms,
    struct chj_error *e);

#endif
