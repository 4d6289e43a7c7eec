#!/bin/bash
# t1233-cyrus-restore-server-legacy: t1232 (restore --to-server of a deleted
# folder and a deleted user) on a Cyrus lab with the legacy, name-based spool
# layout (mailbox_legacy_dirs: 1).
CHJ_CYRUS_LEGACY_DIRS=1
. "$(dirname "$0")/t1232-cyrus-restore-server.sh"
