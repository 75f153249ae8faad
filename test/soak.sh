#!/usr/bin/env bash
# make soak: SOAK_COUNT datagrams (1,000,000 by default) of sizes 0..65507,
# log-uniform (small as likely as large), with random pauses, through two
# chains of two relays, each checked end to end by dgpeer ping through an
# echo: every datagram back intact and in order (so none corrupt, merged,
# truncated, lost or reordered):
#
#   udp-tcp-udp: ping -udp-> dgrelay udp-listen|tcp -> dgrelay tcp-listen|udp
#                -> echo udp
#   tcp-udp-tcp: ping -tcp-> dgrelay tcp-listen|udp -> dgrelay udp-listen|tcp
#                -> echo tcp
#
# The relays' resident memory is sampled every second; after a warm-up
# sample it may not grow by more than 2 MiB.  Exit status 0 when all holds.
set -u
cd "$(dirname "$0")/.." || exit 1
COUNT=${SOAK_COUNT:-1000000}
D=${DGRELAY:-$PWD/dgrelay}
P=$PWD/test/dgpeer
tmp=$(mktemp -d)
pids=()
failed=0

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# bg NAME CMD...: in the background under timeout, output in $tmp/NAME.*
bg() {
	local name=$1
	shift
	timeout 3600 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	echo $! >"$tmp/$name.pid"
	pids+=($!)
}

wait_for() {	# FILE REGEX: 10 s at most
	local i
	for ((i = 0; i < 200; i++)); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "soak: timed out waiting for /$2/ in $1" >&2
	cat "$1" >&2
	return 1
}

port() {	# NAME: from "listening on HOST PORT" or "port N"
	{ sed -n 's/.*listening on [^ ]* \([0-9]*\)$/\1/p' "$tmp/$1.err"
	  awk '/^port /{ print $2 }' "$tmp/$1.out"; } 2>/dev/null | head -n 1
}

relay_pid() {	# NAME: the dgrelay under NAME's timeout
	local t
	t=$(cat "$tmp/$1.pid")
	awk '{ print $1 }' "/proc/$t/task/$t/children" 2>/dev/null
}

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# sample NAME PID...: VmRSS of each PID every second into $tmp/NAME.rss
sample() {
	local name=$1 p line
	shift
	while :; do
		line=
		for p in "$@"; do
			line="$line $(rss "$p")"
		done
		echo "$line" >>"$tmp/$name.rss"
		sleep 1
	done
}

# flat NAME: every column after the warm-up (2nd) sample within 2 MiB of it
flat() {
	awk 'NR == 2 { for (i = 1; i <= NF; i++) base[i] = $i }
	    NR >= 2 { for (i = 1; i <= NF; i++) {
		if ($i > max[i]) max[i] = $i
		if ($i > base[i] + 2048) bad = 1 } }
	    END { for (i = 1; i <= NF; i++)
		printf "relay %d: %s kB after warm-up, at most %s kB\n", i,
		    base[i], max[i]
		exit bad }' "$tmp/$1.rss"
}

# chain NAME E M: ping and echo speak E (udp or tcp), the relays M between
# them: ping -E-> entry E-listen|M -> exit M-listen|E -> echo E
chain() {
	local name=$1 e=$2 m=$3 t0 t1 spid
	bg "$name-echo" "$P" echo "$e"
	wait_for "$tmp/$name-echo.out" '^port' || return 1
	bg "$name-x" "$D" -v -S "$m-listen:127.0.0.1:0" \
	    "$e:127.0.0.1:$(port "$name-echo")"
	wait_for "$tmp/$name-x.err" 'listening on' || return 1
	bg "$name-e" "$D" -v -S "$e-listen:127.0.0.1:0" \
	    "$m:127.0.0.1:$(port "$name-x")"
	wait_for "$tmp/$name-e.err" 'listening on' || return 1
	sample "$name" "$(relay_pid "$name-e")" "$(relay_pid "$name-x")" &
	spid=$!
	pids+=("$spid")
	t0=$(date +%s)
	# -t: no progress for a minute is a failure, not a wait
	"$P" ping -L -P -n "$COUNT" -m 0 -M 65507 -w 32 -W 120000 -t 60 \
	    -S "$RANDOM" "$e" 127.0.0.1 "$(port "$name-e")" \
	    >"$tmp/$name.ping" 2>&1
	local rc=$?
	t1=$(date +%s)
	kill "$spid"
	echo "soak: $name: $(cat "$tmp/$name.ping") in $((t1 - t0)) s"
	[ "$rc" -eq 0 ] || return 1
	flat "$name" || { echo "soak: $name: memory grew" >&2; return 1; }
}

echo "soak: $COUNT datagrams per chain, sizes 0..65507 log-uniform, random pauses"
chain udp-tcp-udp udp tcp || failed=1
chain tcp-udp-tcp tcp udp || failed=1
if [ "$failed" -ne 0 ]; then
	for f in "$tmp"/*.err; do
		echo "== $f" >&2
		tail -n 5 "$f" >&2
	done
	echo "soak: FAILED"
	exit 1
fi
echo "soak: ok"
