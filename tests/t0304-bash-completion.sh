#!/bin/bash
# t0304-bash-completion: contrib/bash-completion/chjournal completes
# chjournal's commands, each command's options (read from `chjournal help
# COMMAND`), consumer names (from `chjournal consumers`, with the -c FILE of
# the line), the open run's id after --run, files for -c, and chjournald's
# options; without bash-completion's own functions.
. "$(dirname "$0")/test-lib.sh"

COMPLETION="$CHJ_SRCDIR/contrib/bash-completion/chjournal"

# complete WORD...: the completions of the last word (may be empty) of
# "WORD..." typed after the program, one per line, sorted
complete_line() {
	bash -c '
		. "$1" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(( $# - 1 ))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		case $1 in
		*chjournald) _chjournald ;;
		*) _chjournal ;;
		esac
		printf "%s\n" "${COMPREPLY[@]}"
	' complete-test "$COMPLETION" "$@" | sed "/^\$/d" | LC_ALL=C sort
}

expect_success 'the script loads in a plain bash and registers both programs' '
	bash -c ". \"$COMPLETION\" && complete -p chjournal && complete -p chjournald" >out &&
	grep -- "-F _chjournal chjournal\$" out &&
	grep -- "-F _chjournald chjournald\$" out
'

expect_success 'commands: every one chjournal help lists' '
	complete_line "$CHJOURNAL" "" >got &&
	"$CHJOURNAL" help | sed -n "/^commands:/,/^\$/s/^  \([a-z]*\) .*/\1/p" | LC_ALL=C sort >expect &&
	test_cmp expect got &&
	grep -x check got && grep -x status got &&
	complete_line "$CHJOURNAL" -c "$CONF" st >got &&
	printf "%s\n" status >expect &&
	test_cmp expect got &&
	complete_line "$CHJOURNAL" --co >got &&
	grep -x -- --config got
'

expect_success 'options per command, from its usage' '
	complete_line "$CHJOURNAL" status - >got &&
	printf "%s\n" --json --prometheus --pulls >expect &&
	test_cmp expect got &&
	complete_line "$CHJOURNAL" -c "$CONF" list c1 -- >got &&
	printf "%s\n" --deleted --entries --from --reconcile --run --ssh >expect &&
	test_cmp expect got &&
	complete_line "$CHJOURNAL" begin c1 --r >got &&
	printf "%s\n" --replace >expect &&
	test_cmp expect got &&
	complete_line "$CHJOURNAL" restore a.tar.gz --to-server h:1 -- >got &&
	printf "%s\n" --at --authname --beside --dry-run --folder --jobs --password-file --sync-port \
		--to --to-origin --to-server >expect &&
	test_cmp expect got
'

expect_success 'consumer names from chjournal consumers, with the -c of the line' '
	start_daemon &&
	backup nightly &&
	backup mirror &&
	chj begin monthly >/dev/null &&
	run=$(chj consumers | sed -n "s/^monthly	.*run=//p") &&
	test -n "$run" &&
	complete_line "$CHJOURNAL" -c "$CONF" begin "" >got &&
	printf "%s\n" mirror monthly nightly >expect &&
	test_cmp expect got &&
	complete_line "$CHJOURNAL" --config="$CONF" commit m >got &&
	printf "%s\n" mirror monthly >expect &&
	test_cmp expect got &&
	# no second consumer name
	complete_line "$CHJOURNAL" -c "$CONF" commit monthly "" >got &&
	test_cmp /dev/null got &&
	# --run: the open run of the consumer named
	complete_line "$CHJOURNAL" -c "$CONF" commit monthly --run "" >got &&
	echo "$run" >expect &&
	test_cmp expect got &&
	chj abort monthly &&
	stop_daemon
'

expect_success 'help COMMAND completes the commands; -c completes files' '
	complete_line "$CHJOURNAL" help co >got &&
	printf "%s\n" commit compact consumers >expect &&
	test_cmp expect got &&
	mkdir -p cdir && : >cdir/alpha.conf &&
	complete_line "$CHJOURNAL" -c cdir/al >got &&
	echo cdir/alpha.conf >expect &&
	test_cmp expect got
'

expect_success 'chjournald: its options from --help; files after -c and --log-file' '
	complete_line "$CHJOURNALD" -- >got &&
	for o in --config --daemon --help --log-file --pidfile --quiet --syslog --test --verbose --version; do
		grep -qx -- "$o" got || { echo "missing $o"; return 1; }
	done &&
	complete_line "$CHJOURNALD" --log-file cdir/al >got &&
	echo cdir/alpha.conf >expect &&
	test_cmp expect got
'

test_done
