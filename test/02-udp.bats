#!/usr/bin/env bats
# Datagram sides: udp and udp-listen, and the framing table's datagram rows.

load helpers

# udp_queued PORT: datagrams wait in the receive queue of UDP PORT.
udp_queued() {
	local q
	q=$(ss -Hunl "sport = :$1" | awk '{print $2}')
	[ "${q:-0}" -gt 0 ]
}

@test "udp-listen to udp: 2000 datagrams of 0..65507 bytes pass as they are" {
	echo_peer e udp
	relay r udp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	run "$PEER" ping -n 2000 -m 0 -M 65507 -S 7 udp 127.0.0.1 "$(port r)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 2000 datagrams "* ]]
}

@test "udp-listen relays the first datagram and prints its peer" {
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -v udp-listen:127.0.0.1:0 stdio
	hold_fifo
	wait_for "$TMP/r.err" 'listening on'
	"$PEER" send 127.0.0.1 "$(port r)" 6669727374
	bytes_in "$TMP/r.out" 7
	[ "$(hexof "$TMP/r.out")" = 00056669727374 ]
	grep -q 'udp-listen:127.0.0.1:0: peer 127.0.0.1 [0-9]*$' "$TMP/r.err"
}

@test "datagram to stream: empty datagrams become 00 00 frames" {
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -v udp-listen:127.0.0.1:0 stdio
	hold_fifo
	wait_for "$TMP/r.err" 'listening on'
	"$PEER" send -i 20 127.0.0.1 "$(port r)" 6869 - 00 -
	bytes_in "$TMP/r.out" 11
	[ "$(hexof "$TMP/r.out")" = 0002686900000001000000 ]
}

@test "stream to datagram: 00 00 frames become empty datagrams" {
	bg d "$PEER" dump -n 4
	wait_for "$TMP/d.out" '^port'
	frames 6869 - 00 - >"$TMP/frames"
	run --separate-stderr timeout 30 "$DGRELAY" -S stdio udp:127.0.0.1:"$(port d)" \
	    <"$TMP/frames"
	[ "$status" -eq 0 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '2 6869\n0 \n1 00\n0 ')" ]
	[[ "$stderr" == *"1>2: 4 datagrams, 3 bytes, 0 oversize, 0 send errors, 0 truncated"* ]]
}

@test "a datagram larger than -s is dropped and counted, never cut" {
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -v -S -s 100 udp-listen:127.0.0.1:0 stdio
	hold_fifo
	wait_for "$TMP/r.err" 'listening on'
	big=$(printf 'ab%.0s' $(seq 101))
	exact=$(printf 'cd%.0s' $(seq 100))
	"$PEER" send -i 20 127.0.0.1 "$(port r)" "$big" "$exact" 01
	bytes_in "$TMP/r.out" 105
	exec 5>&-
	wait_exit r
	[ "$status_of" -eq 0 ]
	[ "$(hexof "$TMP/r.out")" = "0064${exact}000101" ]
	grep -q '1>2: 2 datagrams, 101 bytes, 1 oversize, 0 send errors' "$TMP/r.err"
}

@test "a frame longer than -s is skipped and counted; the stream stays in sync" {
	bg d "$PEER" dump -n 2
	wait_for "$TMP/d.out" '^port'
	long=$(printf 'ee%.0s' $(seq 200))
	frames 616263 "$long" 646566 >"$TMP/frames"
	run --separate-stderr timeout 30 "$DGRELAY" -S -s 100 stdio udp:127.0.0.1:"$(port d)" \
	    <"$TMP/frames"
	[ "$status" -eq 0 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '3 616263\n3 646566')" ]
	[[ "$stderr" == *"1>2: 2 datagrams, 6 bytes, 1 oversize, 0 send errors, 0 truncated"* ]]
}

@test "ICMP port unreachable is counted and the relay goes on, losing nothing" {
	p=$(free_port udp)
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -v -S stdio udp:127.0.0.1:"$p"
	hold_fifo
	wait_for "$TMP/r.err" 'connected to'
	frames 01 02 03 04 05 06 07 08 09 0a >&5
	# counters on demand: wait until the refusals were counted
	stats_until r '1>2: 10 datagrams.* [1-9][0-9]* send errors'
	# the peer comes back: everything after that arrives
	bg d "$PEER" dump -p "$p" -n 3
	wait_for "$TMP/d.out" '^port'
	frames aa bb cc >&5
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '1 aa\n1 bb\n1 cc')" ]
	exec 5>&-
	wait_exit r
	[ "$status_of" -eq 0 ]
	grep -q '1>2: 13 datagrams, 13 bytes, 0 oversize, [1-9][0-9]* send errors, 0 truncated, 0 other peer, 0 unsent' "$TMP/r.err"
}

@test "udp-listen keeps to its first peer: others' queued datagrams are counted" {
	need_cmd ss iproute2
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -v -S udp-listen:127.0.0.1:0 stdio
	hold_fifo
	wait_for "$TMP/r.err" 'listening on'
	p=$(port r)
	# queue A, B, A while dgrelay is stopped, so one batch holds all three
	kid=$(child_of r)
	kill -STOP "$kid"
	bg a "$PEER" send -i 1000 127.0.0.1 "$p" aa cc
	eventually 5 udp_queued "$p"
	"$PEER" send 127.0.0.1 "$p" bb
	wait_exit a
	kill -CONT "$kid"
	bytes_in "$TMP/r.out" 6
	exec 5>&-
	wait_exit r
	[ "$(hexof "$TMP/r.out")" = 0001aa0001cc ]
	grep -q '1>2: 2 datagrams, 2 bytes, 0 oversize, 0 send errors, 0 truncated, 1 other peer' "$TMP/r.err"
}

@test "IPv6: udp-listen:[::1]:0 and udp:[::1]:PORT" {
	[ -e /proc/net/if_inet6 ] || skip "IPv6 is off in this kernel"
	echo_peer e -6 udp
	relay r "udp-listen:[::1]:0" "udp:[::1]:$(port e)"
	grep -q 'listening on ::1 ' "$TMP/r.err"
	run "$PEER" ping -n 300 -M 9000 udp ::1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 300 datagrams "* ]]
}

@test "udp-listen with no host takes IPv4 peers too" {
	echo_peer e udp
	relay r udp-listen:0 udp:127.0.0.1:"$(port e)"
	run "$PEER" ping -n 50 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	grep -q 'peer ::ffff:127.0.0.1 ' "$TMP/r.err"
}

@test "host names resolve (localhost)" {
	getent hosts localhost >/dev/null ||
	    skip "localhost does not resolve here (no /etc/hosts entry)"
	echo_peer e udp
	relay r udp-listen:localhost:0 udp:localhost:"$(port e)"
	run "$PEER" ping -n 50 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	grep -q 'connected to 127.0.0.1 ' "$TMP/r.err"
}

# overflow NAME PORT SPORT: with NAME stopped, 300 datagrams from SPORT
# to PORT (its UDP socket's tiny buffer overflows), then 20 more once it
# goes on (they carry the kernel's drop count)
overflow() {
	local kid
	kid=$(child_of "$1")
	kill -STOP "$kid"
	# shellcheck disable=SC2046 # one argument a datagram
	timeout 10 "$PEER" send -s "$3" -B 300 127.0.0.1 "$2" $(printf '00112233 %.0s' $(seq 300))
	kill -CONT "$kid"
	# shellcheck disable=SC2046
	timeout 10 "$PEER" send -s "$3" -i 20 127.0.0.1 "$2" $(printf '44556677 %.0s' $(seq 20))
}

@test "the kernel's drops at a full UDP socket are counted (SO_RXQ_OVFL): pair, multi and fork" {
	echo_peer e udp
	relay r -S udp-listen:127.0.0.1:0,rcvbuf=1 udp:127.0.0.1:"$(port e)"
	sp=$(free_port udp)
	timeout 10 "$PEER" send -s "$sp" 127.0.0.1 "$(port r)" 00
	wait_for "$TMP/r.err" 'peer 127.0.0.1'
	overflow r "$(port r)" "$sp"
	stats_until r '1>2: .* [1-9][0-9]* dropped by the kernel$'
	relay m -S udp-listen:127.0.0.1:0,multi,rcvbuf=1 udp:127.0.0.1:"$(port e)"
	overflow m "$(port m)" "$(free_port udp)"
	stats_until m ' [1-9][0-9]* dropped by the kernel at the listening socket$'
	# fork: the parent's listening socket (the later datagrams from a
	# new peer: the first one's go to its child's socket)
	relay f -S udp-listen:127.0.0.1:0,fork,rcvbuf=1 udp:127.0.0.1:"$(port e)"
	kid=$(child_of f)
	kill -STOP "$kid"
	# shellcheck disable=SC2046
	timeout 10 "$PEER" send -B 300 127.0.0.1 "$(port f)" $(printf '00112233 %.0s' $(seq 300))
	kill -CONT "$kid"
	# shellcheck disable=SC2046
	timeout 10 "$PEER" send -i 20 127.0.0.1 "$(port f)" $(printf '44556677 %.0s' $(seq 20))
	stats_until f 'fork: .* [1-9][0-9]* dropped by the kernel at the listening socket$'
}
