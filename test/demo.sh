#!/bin/sh
# make demo: a UDP->TCP->UDP tunnel on loopback, live, with its counters.
#
#   dgpeer ping --udp--> dgrelay A --tcp--> dgrelay B --udp--> echo peer
#        <-------------- (and all the way back) <----------------
#
# Exits 0 only when every datagram came back intact and both relays ended
# cleanly; under dash (Debian's /bin/sh) as under bash.  DGRELAY names the
# binary (./dgrelay).
set -eu
cd "$(dirname "$0")/.."
DGRELAY=${DGRELAY:-./dgrelay}
tmp=$(mktemp -d)
pids=

cleanup() {
	# a process that already ended is no failure: kill's status is not ours
	for p in $pids; do
		kill "$p" 2>/dev/null || :
	done
	rm -rf "$tmp"
}
# the EXIT trap keeps the script's status (dash would take the trap's)
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
timeout 60 "$DGRELAY" -v -S tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$echo_port" \
    2>"$tmp/b" & pids="$pids $!"
b=$!
tcp_port=$(port_of "$tmp/b")
timeout 60 "$DGRELAY" -v -S udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$tcp_port" \
    2>"$tmp/a" & pids="$pids $!"
a=$!
udp_port=$(port_of "$tmp/a")

echo "tunnel: UDP 127.0.0.1:$udp_port -> dgrelay -> TCP 127.0.0.1:$tcp_port -> dgrelay -> UDP echo 127.0.0.1:$echo_port"
echo "sending 5000 datagrams of 0..65507 random bytes through it and back..."
rc=0
timeout 60 test/dgpeer ping -n 5000 -m 0 -M 65507 udp 127.0.0.1 "$udp_port" ||
    rc=1
kill -TERM $a $b
ra=0 rb=0
wait $a || ra=$?
wait $b || rb=$?
echo
echo "entry relay (udp-listen -> tcp), exit $ra:"
sed 's/^/  /' "$tmp/a"
echo "exit relay (tcp-listen -> udp), exit $rb:"
sed 's/^/  /' "$tmp/b"
if [ "$rc" -ne 0 ] || [ "$ra" -ne 0 ] || [ "$rb" -ne 0 ]; then
	echo "demo: FAILED (a datagram was lost or differs, or a relay failed)"
	exit 1
fi
echo "demo: ok"
