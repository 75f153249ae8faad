#!/usr/bin/env bash
# make bench-reconnect: how long a retry tunnel takes to come back after
# its server does, and what happened to the datagrams meanwhile.
#
#   dgbench gen (1,000/s) --> udp-listen:IN [client, tcp:T,retry]
#       --TCP:T--> [server: tcp-listen:T udp:OUT] --> dgbench recv OUT
#
# The server is killed, stays down for DOWN seconds, and is started again,
# REPS times for each DOWN.  Measured each time: from the server listening
# again to the client's connection being established (ss, polled every
# 10 ms), and the client's "dropped while down" counter (SIGUSR1) over the
# outage.  Prints the medians per DOWN; the backoff (interval 1 s, doubling
# to 30 s, jitter) explains the figures: a longer outage has the client
# further into its waits when the server comes back.
#
# Environment: RECONNECT_DOWN ("0.5 2 5"), RECONNECT_REPS (5),
# RECONNECT_OPTS (retry options, "retry"), DGRELAY (./dgrelay).
set -u
cd "$(dirname "$0")/.." || exit 1

D=${DGRELAY:-./dgrelay}
B=bench/dgbench
DOWNS=${RECONNECT_DOWN:-0.5 2 5}
REPS=${RECONNECT_REPS:-5}
OPTS=${RECONNECT_OPTS:-retry}
# shellcheck source=bench/common.sh
. bench/common.sh
base=$((30000 + ($$ % 1000) * 10))
in=$base tcp=$((base + 1)) out=$((base + 2))

now() { date +%s.%N; }
established() { ss -Htn state established "dport = :$tcp" | grep -q .; }
listening() { ss -Htln "sport = :$tcp" | grep -q .; }

# until CMD succeeds, every 10 ms, at most 60 s
until_ok() {
	local n
	for n in $(seq 6000); do
		"$@" && return 0
		sleep 0.01
	done
	echo "reconnect.sh: gave up waiting for $*" >&2
	exit 1
}

start_server() {
	"$D" tcp-listen:127.0.0.1:$tcp "udp:127.0.0.1:$out" 2>/dev/null &
	srv=$!
	pids+=("$srv")
	until_ok listening
}

# the client's "dropped while down" (1>2), read with SIGUSR1
dropped() {
	local n
	n=$(grep -c '1>2:' "$tmp/client.err")
	kill -USR1 "$client"
	until_ok more_lines "$n"
	sed -n 's/.*1>2: .* \([0-9]*\) dropped while down, .*$/\1/p' \
	    "$tmp/client.err" | tail -n 1
}
more_lines() { [ "$(grep -c '1>2:' "$tmp/client.err")" -gt "$1" ]; }

"$B" recv -t 600000 -T 3600 -s 100 127.0.0.1 "$out" >"$tmp/recv.out" &
pids+=($!)
start_server
"$D" -v udp-listen:127.0.0.1:$in "tcp:127.0.0.1:$tcp,$OPTS" \
    2>"$tmp/client.err" &
client=$!
pids+=("$client")
until_ok established
"$B" gen -r 1000 -t 3600 -s 100 127.0.0.1 "$in" >/dev/null &
pids+=($!)
sleep 1

printf '%-8s %-6s %-22s %-22s\n' "down s" "runs" "back after, median s" \
    "dropped, median (min-max)"
for down in $DOWNS; do
	: >"$tmp/back" && : >"$tmp/drop"
	for _ in $(seq "$REPS"); do
		sleep 2			# a connection that lasted
		d0=$(dropped)
		kill "$srv"
		wait "$srv" 2>/dev/null
		srv=
		sleep "$down"
		t0=$(now)
		start_server
		until_ok established
		t1=$(now)
		sleep 0.2
		d1=$(dropped)
		awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$tmp/back"
		echo $((d1 - d0)) >>"$tmp/drop"
	done
	printf '%-8s %-6s %-22.3f %s (%s-%s)\n' "$down" "$REPS" \
	    "$(median <"$tmp/back")" "$(median <"$tmp/drop")" \
	    "$(sort -n "$tmp/drop" | head -n 1)" \
	    "$(sort -n "$tmp/drop" | tail -n 1)"
done
grep -c 'connected to' "$tmp/client.err" |
    awk '{ print "client connections: " $1 " (the client never exited)" }'
