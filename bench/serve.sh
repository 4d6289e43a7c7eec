#!/bin/sh
# bench/serve.sh: the CPU `chjournal serve` spends on the IMAP host for a full
# pull (`backup --from`), against the CPU a local `chjournal backup` of the
# same spool spends there; and two hosts pulled at once (-j 2) against the
# local backups of the same two spools run one after the other
# (`make bench-serve`). Prints two tables.
#
# The spool is bench/gen-cyrus's (CYRUS_BENCH_USERS x _FOLDERS x _MESSAGES,
# default 100 x 5 x 8 messages of ~20 KB); chjournald watches it. The pull
# runs serve through a local pipe (--ssh names a wrapper that execs serve
# under /usr/bin/time), so ssh's own encryption is not counted: on a real
# pair of hosts sshd adds its cipher's cost (AES-GCM or ChaCha20, well under
# deflate's per byte). Page cache warm. Needs root and the Cyrus tools, as
# bench/cyrus.sh.
set -u
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$SRCDIR}
CHJOURNAL="$CHJ_BUILDDIR/agent/chjournal"
CHJOURNALD="$CHJ_BUILDDIR/daemon/chjournald"
GEN="$SRCDIR/bench/gen-cyrus"
USERS=${CYRUS_BENCH_USERS:-100}
FOLDERS=${CYRUS_BENCH_FOLDERS:-5}
MESSAGES=${CYRUS_BENCH_MESSAGES:-8}
BTMP=${BENCH_TMP:-/var/tmp}

die() { echo "bench-serve: $*" >&2; exit 1; }
skip() { echo "bench-serve: skipped: $*" >&2; exit 0; }
note() { echo "bench-serve: $*" >&2; }

[ -x /usr/bin/time ] || die "/usr/bin/time (package time) is needed"
[ "$(id -u)" = 0 ] || skip "needs root (Cyrus's tools run as the cyrus user)"
[ -x /usr/lib/cyrus/bin/cyr_dbtool ] || skip "Cyrus is not installed"
id cyrus >/dev/null 2>&1 || skip "no 'cyrus' user"

W=$(mktemp -d "$BTMP/chj-bench-serve.XXXXXX") || die "cannot create a work directory"
chmod 755 "$W"
LAB="$W/lab"
LAB2="$W/lab2"
CONF="$W/chjournal.conf"
CONF2="$W/chjournal2.conf"
DPID=
DPID2=
cleanup() {
	[ -z "$DPID" ] || { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; }
	[ -z "$DPID2" ] || { kill -TERM "$DPID2" 2>/dev/null; wait "$DPID2" 2>/dev/null; }
	[ -n "${BENCH_KEEP:-}" ] || { cd / && rm -rf "$W"; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# timed OUT CMD...: "ELAPSED CPUSECONDS" of CMD and its children into OUT
timed() {
	_out=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$W/time.out" "$@"
	_rc=$?
	awk '$1 ~ /^[0-9.]+$/ { printf "%.2f %.2f\n", $1, $2 + $3 }' "$W/time.out" >"$_out"
	return $_rc
}

note "generating $USERS users x $FOLDERS folders x $MESSAGES messages ..."
python3 "$GEN" spool "$LAB" --users "$USERS" --folders "$FOLDERS" --messages "$MESSAGES" \
	--big 0 --seed 1 >/dev/null || die "gen-cyrus failed"
note "generating a second spool (host two) ..."
python3 "$GEN" spool "$LAB2" --users "$USERS" --folders "$FOLDERS" --messages "$MESSAGES" \
	--big 0 --seed 2 >/dev/null || die "gen-cyrus failed"
# conf LAB CONF STATE: a configuration watching LAB
conf() {
	cat >"$2" <<EOF
journal = $3/journal.db
flush_interval_ms = 200
sync_timeout = 300
root = $1/spool
root = $1/conf
root = $1/sieve
exclude = ^$1/conf/(lock|proc|socket|sync|log|msg|db)(/|\$)
exclude = ^$1/spool/stage\\.(/|\$)
EOF
}
# daemon CONF: starts chjournald on CONF, waits until it runs; its pid in _d
daemon() {
	"$CHJOURNALD" -c "$1" 2>>"$W/daemon.log" &
	_d=$!
	i=0
	until "$CHJOURNAL" -c "$1" status 2>/dev/null | grep -q '^daemon: *running'; do
		i=$((i + 1))
		[ "$i" -lt 600 ] || die "chjournald not ready"
		sleep 0.1
	done
}
conf "$LAB" "$CONF" "$W/state"
conf "$LAB2" "$CONF2" "$W/state2"
daemon "$CONF"
DPID=$_d
daemon "$CONF2"
DPID2=$_d
(cd "$LAB/spool" && find . -type f -exec cat {} + >/dev/null)
(cd "$LAB2/spool" && find . -type f -exec cat {} + >/dev/null)
bytes=$(find "$LAB/spool" -type f -name '*.' -printf '%s\n' | awk '{ s += $1 } END { print s }')
bytes2=$(find "$LAB2/spool" -type f -name '*.' -printf '%s\n' | awk '{ s += $1 } END { print s }')

note "local full backup ..."
timed "$W/t.local" "$CHJOURNAL" -c "$CONF" backup -C "$LAB/imapd.conf" --to "$W/local" \
	>"$W/local.out" 2>&1 || { cat "$W/local.out" >&2; die "local backup failed"; }

cat >"$W/serve-wrapper" <<EOF
#!/bin/sh
exec /usr/bin/time -f '%e %U %S' -o "$W/serve.time" "$CHJOURNAL" -c "$CONF" serve -C "$LAB/imapd.conf"
EOF
chmod +x "$W/serve-wrapper"
"$CHJOURNAL" -c "$CONF" forget cyrus-archive >/dev/null || die "forget failed"
note "full pull through serve ..."
timed "$W/t.pull" "$CHJOURNAL" backup --from bench --ssh "$W/serve-wrapper" --to "$W/pulled" \
	>"$W/pull.out" 2>&1 || { cat "$W/pull.out" >&2; die "pull failed"; }
awk '$1 ~ /^[0-9.]+$/ { printf "%.2f %.2f\n", $1, $2 + $3 }' "$W/serve.time" >"$W/t.serve"
note "idle pull ..."
timed "$W/t.idle" "$CHJOURNAL" backup --from bench --ssh "$W/serve-wrapper" --to "$W/pulled" \
	>"$W/idle.out" 2>&1 || { cat "$W/idle.out" >&2; die "idle pull failed"; }

note "local full backup of host two ..."
timed "$W/t.local2" "$CHJOURNAL" -c "$CONF2" backup -C "$LAB2/imapd.conf" --to "$W/local2" \
	>"$W/local2.out" 2>&1 || { cat "$W/local2.out" >&2; die "local backup 2 failed"; }
# one --ssh for both hosts: the host name it is given picks the serve
cat >"$W/serve-both" <<EOF
#!/bin/sh
for a in "\$@"; do
	case "\$a" in
	one) exec "$CHJOURNAL" -c "$CONF" serve -C "$LAB/imapd.conf" ;;
	two) exec "$CHJOURNAL" -c "$CONF2" serve -C "$LAB2/imapd.conf" ;;
	esac
done
exit 255
EOF
chmod +x "$W/serve-both"
"$CHJOURNAL" -c "$CONF" forget cyrus-archive >/dev/null || die "forget failed"
"$CHJOURNAL" -c "$CONF2" forget cyrus-archive >/dev/null || die "forget failed"
note "two hosts pulled at once (-j 2) ..."
timed "$W/t.both" "$CHJOURNAL" backup --from one --from two -j 2 --ssh "$W/serve-both" \
	--to "$W/both" >"$W/both.out" 2>&1 || { cat "$W/both.out" >&2; die "pull of both failed"; }

read -r l_e l_c <"$W/t.local"
read -r l2_e l2_c <"$W/t.local2"
read -r b_e b_c <"$W/t.both"
read -r p_e p_c <"$W/t.pull"
read -r s_e s_c <"$W/t.serve"
read -r i_e i_c <"$W/t.idle"
arch=$(du -cb "$W/pulled"/bench/*.tar.gz | awk 'END { print $1 }')
echo
echo "serve vs local backup: $USERS users, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB of messages, full run, page cache warm"
printf '%-44s %10s %10s\n' "" "elapsed s" "CPU s"
printf '%-44s %10s %10s\n' "local backup (IMAP host)" "$l_e" "$l_c"
printf '%-44s %10s %10s\n' "serve (IMAP host, ssh not counted)" "$s_e" "$s_c"
printf '%-44s %10s %10s\n' "backup --from (backup host, serve excluded)" "$p_e" \
	"$(awk -v a="$p_c" -v b="$s_c" 'BEGIN { printf "%.2f", a - b }')"
printf '%-44s %10s %10s\n' "idle pull (nothing changed), both sides" "$i_e" "$i_c"
echo "serve CPU / local backup CPU: $(awk -v a="$s_c" -v b="$l_c" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') (target: at most 0.25)"
echo "pulled archives: $(awk -v b="$arch" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
echo
echo "two hosts, $(awk -v b="$bytes" -v c="$bytes2" 'BEGIN { printf "%.1f", (b + c) / 1e6 }') MB of messages, full runs, one machine playing the three"
printf '%-44s %10s %10s %10s\n' "" "elapsed s" "CPU s" "MB/s"
seq_e=$(awk -v a="$l_e" -v b="$l2_e" 'BEGIN { printf "%.2f", a + b }')
printf '%-44s %10s %10s %10s\n' "local backups, one after the other" "$seq_e" \
	"$(awk -v a="$l_c" -v b="$l2_c" 'BEGIN { printf "%.2f", a + b }')" \
	"$(awk -v b="$bytes" -v c="$bytes2" -v e="$seq_e" 'BEGIN { printf "%.1f", (b + c) / 1e6 / e }')"
printf '%-44s %10s %10s %10s\n' "backup --from both -j 2 (every side)" "$b_e" "$b_c" \
	"$(awk -v b="$bytes" -v c="$bytes2" -v e="$b_e" 'BEGIN { printf "%.1f", (b + c) / 1e6 / e }')"
echo "throughput, both pulled at once / local one after the other: $(awk -v a="$seq_e" -v b="$b_e" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') (target: at least 0.9)"
