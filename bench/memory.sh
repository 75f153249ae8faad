#!/usr/bin/env bash
# make bench-memory: what a multi server meets in the wild, against the
# memory rules (dgrelay.1, MEMORY), at default flags unless said.
#
#  1. N UDP peers at once (one 8-byte datagram each, its own port) through
#     udp-listen,multi to a tcp: and a tls: far end (two processes of
#     tcp-listen,reuseport,multi to a UDP echo, for descriptors): how many
#     answered, in how long.
#  2. HALF peers holding half a 65,535-byte frame and NOREAD that never
#     read, against tcp-listen,multi (stall- and frame-timeout off): a
#     good client's round trips (20 datagrams one at a time, each timed
#     by the client), median and worst, beside the same client with no
#     siege; the pool's peak. Timed once the non-readers' frames have all
#     passed the shared UDP echo (while they drain, the echo's socket
#     overflows and loses the good client's datagram too).
#  3. Memory per idle session, tcp and udp multi, 1,000 sessions: PSS
#     of the server less its PSS before, over 1,000.
#  4. A pending TLS handshake: 1,000 peers that connect and say nothing,
#     1,000 that send a ClientHello and stop.
#
# Environment: MEM_N (10000), MEM_HALF (1000), MEM_NOREAD (1000),
# DGRELAY (./dgrelay).
set -u
cd "$(dirname "$0")/.." || exit 1

D=${DGRELAY:-./dgrelay}
P=test/dgpeer
N=${MEM_N:-10000}
HALF=${MEM_HALF:-1000}
NOREAD=${MEM_NOREAD:-1000}
# shellcheck source=bench/common.sh
. bench/common.sh
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# a certificate (c.pem, k.pem in $tmp) and a UDP echo ($echo_port)
bench_certs_echo
SRV="cert=$tmp/c.pem,key=$tmp/k.pem"

echo "== 1. $N UDP peers at once through udp-listen,multi to a stream far end"
for far in tcp tls; do
	fp=$("$P" free tcp | awk '{print $2}')
	opts=
	[ "$far" = tls ] && opts=",$SRV"
	start f1 "$far-listen:127.0.0.1:$fp,reuseport,multi$opts" \
	    "udp:127.0.0.1:$echo_port"
	start f2 "$far-listen:127.0.0.1:$fp,reuseport,multi$opts" \
	    "udp:127.0.0.1:$echo_port"
	until_listening "$fp"
	to="tcp:127.0.0.1:$fp"
	[ "$far" = tls ] && to="tls:localhost:$fp,verify=0"
	start n -S udp-listen:127.0.0.1:0,multi "$to"
	k0=$(rcvbuf_errors)
	timeout 300 "$P" burst -t 60 udp "$N" 127.0.0.1 "$(lport n)" \
	    >"$tmp/burst.out" 2>&1
	k1=$(rcvbuf_errors)
	ok=$(awk '/^ok / {print $2}' "$tmp/burst.out")
	[ -n "$ok" ] || ok=$(sed -n 's/.*FAIL \([0-9]*\) of.*/\1/p' "$tmp/burst.out")
	printf '%-4s far end: %s of %s answered in %s ms; kernel drops %s\n' \
	    "$far" "${ok:-0}" "$N" "$(awk '/^ms / {print $2}' "$tmp/burst.out")" \
	    "$((k1 - k0))"
	stop_all
	grep -h 'multi: .*served' "$tmp/n.err" | tail -n 1
done

# rtts PORT: 20 round trips of a good client, ms each, one a line
rtts() {
	local i t0 t1
	for i in $(seq 20); do
		t0=$(date +%s%N)
		timeout 30 "$P" ping -n 1 -M 1200 tcp 127.0.0.1 "$1" >/dev/null ||
		    { echo 99999; continue; }
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000000))
	done
}

echo "== 2. $HALF half-frame peers and $NOREAD that never read; a good client"
start r -S tcp-listen:127.0.0.1:0,multi,stall-timeout=0,frame-timeout=0 \
    "udp:127.0.0.1:$echo_port"
rp=$(lport r)
rtts "$rp" >"$tmp/calm"
timeout 600 "$P" siege -t 600 "$HALF" "$NOREAD" 127.0.0.1 "$rp" \
    >"$tmp/siege.out" 2>&1 &
pids+=($!)
until_in "$tmp/siege.out" '^holding\|FAIL' 3000
# The non-readers' 2 GB reach the one UDP echo the good client uses too:
# while it drains, the echo's own socket overflows (the good client's
# datagram is lost there, not in dgrelay). Wait for every frame to have
# passed, then time the good client against the siege as it holds.
for i in $(seq 600); do
	kill -USR1 "$r_pid"
	sleep 0.2
	n=$(sed -n 's/^dgrelay: 1>2: \([0-9]*\) datagrams.*/\1/p' \
	    "$tmp/r.err" | tail -n 1)
	[ "${n:-0}" -ge $((NOREAD * 2048)) ] && break
done
rtts "$rp" >"$tmp/siege"
kill -USR1 "$r_pid"
sleep 0.5
printf 'good client, ms a round trip (new process each): calm median %s max %s; under siege (held) median %s max %s\n' \
    "$(median <"$tmp/calm")" "$(sort -n "$tmp/calm" | tail -n 1)" \
    "$(median <"$tmp/siege")" "$(sort -n "$tmp/siege" | tail -n 1)"
grep -h 'multi: pool' "$tmp/r.err" | tail -n 1
stop_all

echo "== 3. PSS per idle session, 1,000 sessions"
for proto in tcp udp; do
	start r "$proto-listen:127.0.0.1:0,multi" "udp:127.0.0.1:$echo_port"
	rp=$(lport r)
	sleep 0.2
	base=$(tree_pss "$r_pid")
	timeout 120 "$P" burst -H 3 -t 30 "$proto" 1000 127.0.0.1 "$rp" \
	    >"$tmp/burst.out" 2>&1 &
	b=$!
	until_in "$tmp/burst.out" '^holding\|FAIL' 600
	peak=$(tree_pss "$r_pid")
	wait "$b"
	printf '%s multi: %s B a session\n' "$proto" \
	    "$(((peak - base) * 1024 / 1000))"
	stop_all
done

echo "== 4. A pending TLS handshake, 1,000 peers (max-handshakes default)"
for how in -q -h; do
	start r "tls-listen:127.0.0.1:0,$SRV,multi,handshake-timeout=120" \
	    "udp:127.0.0.1:$echo_port"
	rp=$(lport r)
	sleep 0.2
	base=$(tree_pss "$r_pid")
	timeout 300 "$P" siege -T "$how" -t 300 1000 0 127.0.0.1 "$rp" \
	    >"$tmp/siege.out" 2>&1 &
	b=$!
	until_in "$tmp/siege.out" '^holding\|FAIL' 600
	sleep 1
	peak=$(tree_pss "$r_pid")
	kill "$b"
	printf '%s: %s B a connection\n' \
	    "$([ "$how" = -q ] && echo "silent peers" || echo "ClientHello, then silence")" \
	    "$(((peak - base) * 1024 / 1000))"
	stop_all
done
