#!/bin/bash
# t1235-cyrus-restore-quota-seen-legacy: t1234 (quota roots, a shared
# folder's ACL and another user's \Seen brought back by restore --to-server)
# on a Cyrus lab with the legacy, name-based spool layout (mailbox_legacy_dirs:
# 1), where the seen file is conf/user/H/USER.seen.
CHJ_CYRUS_LEGACY_DIRS=1
. "$(dirname "$0")/t1234-cyrus-restore-quota-seen.sh"
