# lib-cron.sh: helpers of the tests of contrib/cron (t0601, t0602, t0603),
# sourced after test-lib.sh: tree listings to compare a backup with the
# spool, an exchange of two names, and the fields of chjournal-incremental's
# log line.

# snap DIR: every file and symlink below DIR (not directories: the journal
# lists files; an empty directory is not backed up) as one line each: type,
# mode, mtime and sha1 for files, the target for symlinks; newlines in names
# escaped
snap() {
	(cd "$1" && find . ! -type d -print0 | LC_ALL=C sort -z |
	while IFS= read -r -d '' f; do
		if [ -L "$f" ]; then
			printf 'L %s -> %s\0' "$f" "$(readlink "$f")"
		else
			printf 'F %s %s %s %s\0' "$(stat -c %a "$f")" "$(stat -c %Y "$f")" \
				"$(sha1sum <"$f" | cut -c1-40)" "$f"
		fi
	done) | tr '\n\0' '\001\n' | sed 's/\x01/\\n/g'
}

# dirs DIR: the directories below DIR (empty ones are not backed up: the
# restore may lack some, never hold one the spool lacks)
dirs() {
	(cd "$1" && find . -mindepth 1 -type d -print0 | LC_ALL=C sort -z | tr '\n\0' '\001\n')
}

# exchange A B: renameat2(RENAME_EXCHANGE)
exchange() {
	python3 -c "
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, os.fsencode(sys.argv[1]), -100, os.fsencode(sys.argv[2]), 2):
    sys.exit(os.strerror(ctypes.get_errno()))
" "$1" "$2"
}

# field NAME FILE: the value of NAME=... in the last log line of FILE
field() {
	grep '^chjournal-incremental: consumer=' "$2" | tail -n 1 |
		sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p"
}

test_eq() {
	[ "$2" = "$3" ] && return 0
	echo "$1: expected '$2', got '$3'" >&2
	return 1
}
