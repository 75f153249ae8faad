#!/bin/sh
# make demo: a UDP->TCP->UDP tunnel on loopback, live, with its counters.
#
#   dgpeer ping --udp--> dgrelay A --tcp--> dgrelay B --udp--> echo peer
#        <-------------- (and all the way back) <----------------
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pids=
trap 'kill $pids 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM

port_of() {	# wait for a "listening on HOST PORT" or "port N" line
	for _ in $(seq 100); do
		p=$(sed -n 's/.*listening on [^ ]* \([0-9]*\)$/\1/p; s/^port //p' \
		    "$1" | head -n 1)
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.05
	done
	echo "demo: nothing listening in $1" >&2
	exit 1
}

timeout 60 test/dgpeer echo udp >"$tmp/echo" & pids="$pids $!"
echo_port=$(port_of "$tmp/echo")
timeout 60 ./dgrelay -v -S tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$echo_port" \
    2>"$tmp/b" & pids="$pids $!"
b=$!
tcp_port=$(port_of "$tmp/b")
timeout 60 ./dgrelay -v -S udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$tcp_port" \
    2>"$tmp/a" & pids="$pids $!"
a=$!
udp_port=$(port_of "$tmp/a")

echo "tunnel: UDP 127.0.0.1:$udp_port -> dgrelay -> TCP 127.0.0.1:$tcp_port -> dgrelay -> UDP echo 127.0.0.1:$echo_port"
echo "sending 5000 datagrams of 0..65507 random bytes through it and back..."
test/dgpeer ping -n 5000 -m 0 -M 65507 udp 127.0.0.1 "$udp_port"
kill -TERM $a $b
wait $a $b || true
echo
echo "entry relay (udp-listen -> tcp):"
sed 's/^/  /' "$tmp/a"
echo "exit relay (tcp-listen -> udp):"
sed 's/^/  /' "$tmp/b"
