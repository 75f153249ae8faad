#!/usr/bin/env bash
# make bench-peers: many peers at once through one server, for dgrelay's
# multi and fork and socat's fork, side by side in the same run.
#
#   dgpeer burst tcp N --> [server: tcp-listen,MODE udp:ECHO] --> dgpeer echo
#   dgpeer burst udp N --> [server: udp-listen,MODE udp:ECHO] --> dgpeer echo
#
# N peers connect (or send) at once, each with one 8-byte datagram naming
# it, and each checks that its own comes back.  Measured: the time from
# the first send to the last answer (dgpeer's "ms"), peers answered, the
# server's drops (its -S counters), and, while every peer holds its
# connection or socket open and idle, memory per peer: PSS summed over the
# server's process tree (/proc/PID/smaps_rollup), less the tree's PSS
# before the burst, divided by N.  Medians of PEERS_REPS runs.
#
# UDP listeners ask for rcvbuf=4194304 (the kernel grants up to
# net.core.rmem_max); drops are the server's own (max-peers, full
# sessions; 0 here) and the kernel's at full socket buffers
# (/proc/net/snmp RcvbufErrors over the run, all of the machine's).
#
# Environment: PEERS_N ("100 1000 3000 10000"), PEERS_REPS (3),
# PEERS_MODES ("multi fork socat"), DGRELAY (./dgrelay).
set -u
cd "$(dirname "$0")/.." || exit 1

D=${DGRELAY:-./dgrelay}
P=test/dgpeer
NS=${PEERS_N:-100 1000 3000 10000}
REPS=${PEERS_REPS:-3}
MODES=${PEERS_MODES:-multi fork socat}
# shellcheck source=bench/common.sh
. bench/common.sh
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

"$P" echo -R 16777216 udp >"$tmp/echo.out" &
pids+=($!)
sleep 0.3
echo_port=$(awk '/^port/ {print $2; exit}' "$tmp/echo.out")

# one run: MODE PROTO N -> "ms answered kB_per_peer drops"
run_one() {
	local mode=$1 proto=$2 n=$3 port srv base peak ms ok drops buf='' k0 k1
	port=$("$P" free "$proto" | awk '{print $2}')
	[ "$proto" = udp ] && buf=,rcvbuf=4194304
	k0=$(rcvbuf_errors)
	case $mode in
	multi)
		"$D" -S "$proto-listen:127.0.0.1:$port,multi,max-peers=$n$buf" \
		    "udp:127.0.0.1:$echo_port" 2>"$tmp/srv.err" &
		;;
	fork)
		"$D" -S "$proto-listen:127.0.0.1:$port,fork,max-children=$n$buf" \
		    "udp:127.0.0.1:$echo_port" 2>"$tmp/srv.err" &
		;;
	socat)
		socat "${proto^^}-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
		    "UDP:127.0.0.1:$echo_port" 2>/dev/null &
		;;
	esac
	srv=$!
	until_listening "$port" || { echo "- - - -"; kill "$srv"; return; }
	sleep 0.2
	base=$(tree_pss "$srv")
	timeout 120 "$P" burst -H 3 -t 30 "$proto" "$n" 127.0.0.1 "$port" \
	    >"$tmp/burst.out" 2>&1 &
	local b=$!
	until_in "$tmp/burst.out" '^holding\|FAIL' 1200
	sleep 0.5
	peak=$(tree_pss "$srv")
	wait "$b"
	ms=$(awk '/^ms / {print $2}' "$tmp/burst.out")
	ok=$(awk '/^ok / {print $2}' "$tmp/burst.out")
	[ -n "$ok" ] || ok=$(sed -n 's/.*FAIL \([0-9]*\) of.*/\1/p' "$tmp/burst.out")
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
	pkill -P "$srv" 2>/dev/null
	k1=$(rcvbuf_errors)
	drops=$(sed -n 's/.* \([0-9]*\) datagrams from new peers dropped.*/\1/p' \
	    "$tmp/srv.err" | tail -n 1)
	drops=$((${drops:-0} + $(sed -n \
	    's/.* \([0-9]*\) to full sessions dropped.*/\1/p' "$tmp/srv.err" |
	    tail -n 1 | grep . || echo 0)))
	echo "${ms:--} ${ok:-0} $(( (peak - base) * 1024 / n )) $drops $((k1 - k0))"
}

printf '%-6s %-6s %-7s %12s %10s %14s %8s %8s\n' proto mode peers \
    "all served" answered "PSS/peer" drops kernel
for proto in tcp udp; do
	for n in $NS; do
		for mode in $MODES; do
			[ "$mode" = socat ] && [ "$proto" = udp ] && continue
			: >"$tmp/rows"
			for _ in $(seq "$REPS"); do
				run_one "$mode" "$proto" "$n" >>"$tmp/rows"
			done
			printf '%-6s %-6s %-7s %10s ms %10s %10s B %8s %8s\n' \
			    "$proto" "$mode" "$n" \
			    "$(awk '{print $1}' "$tmp/rows" | median)" \
			    "$(awk '{print $2}' "$tmp/rows" | median)" \
			    "$(awk '{print $3}' "$tmp/rows" | median)" \
			    "$(awk '{print $4}' "$tmp/rows" | median)" \
			    "$(awk '{print $5}' "$tmp/rows" | median)"
		done
	done
done
