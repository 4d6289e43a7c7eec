/* runtool.h: running a system tool (btrfs, cp, rm) for the library, which
 * never prints: the tool's standard output is discarded and the first line
 * of its standard error becomes the message of a failure. */
#ifndef CHJ_RUNTOOL_H
#define CHJ_RUNTOOL_H

#include "error.h"

/* Runs argv[0] (looked up on PATH) with argv, stdin and stdout on
 * /dev/null, and waits for it. Returns 0 when it exits 0, else -1 with e:
 * CHJ_ERR_SYS when it could not be run (127: not found), CHJ_ERR_REFUSED
 * with its first line of stderr when it failed. */
int runtool(char *const argv[], struct chj_error *e);

#endif
