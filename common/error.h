/* error.h: the library's one error model, as libarchive's archive_set_error()
 * and SQLite's errcode/errmsg: a code to decide on, the errno when a system
 * call failed, and a message for people. A handle keeps one; a function that
 * fails fills it and returns -1; callers decide on the code, never on the
 * message text. */
#ifndef CHJ_ERROR_H
#define CHJ_ERROR_H

enum chj_code {
	CHJ_OK = 0,
	CHJ_ERR_SYS,           /* a system call failed: see errnum */
	CHJ_ERR_NOMEM,
	CHJ_ERR_NOTFOUND,      /* the subject does not exist */
	CHJ_ERR_CORRUPT,       /* a file is not what it should be */
	CHJ_ERR_REFUSED,       /* refused by a rule (a run that is not the open one, ...) */
	CHJ_ERR_JOURNAL,       /* the journal (SQLite) failed */
	CHJ_ERR_ARCHIVE,       /* an archive or its sidecar could not be read or written */
	CHJ_ERR_INVALID,       /* an argument is malformed (a bad --at): a usage error */
	CHJ_ERR_PEER,          /* the other end of a connection went away, or it failed */
	CHJ_ERR_PROTOCOL,      /* what the other end sent is malformed, or not allowed */
};

struct chj_error {
	enum chj_code code;
	int errnum;            /* errno, for CHJ_ERR_SYS (0 otherwise) */
	char msg[1024];
};

/* Fills e and returns -1. The message names the subject; with errnum != 0
 * ": strerror(errnum)" is appended. */
int chj_error_set(struct chj_error *e, enum chj_code code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void chj_error_clear(struct chj_error *e);

#endif
