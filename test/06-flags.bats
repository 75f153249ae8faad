#!/usr/bin/env bats
# Flags and signals: -b -s -t -u -U -v -S, SIGINT, SIGTERM, SIGUSR1.

load helpers

start_echo_relay() {
	echo_peer e udp
	relay r "$@" udp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
}

@test "SIGTERM ends the relay cleanly: exit 0, counters with -S" {
	start_echo_relay -S
	run "$PEER" ping -n 20 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	stop r TERM
	[ "$status_of" -eq 0 ]
	grep -q '1>2: 20 datagrams, ' "$TMP/r.err"
	grep -q '2>1: 20 datagrams, ' "$TMP/r.err"
}

@test "SIGINT ends the relay cleanly too" {
	start_echo_relay -S
	kill -INT "$(child_of r)"
	wait_exit r
	[ "$status_of" -eq 0 ]
	grep -q '1>2: 0 datagrams, ' "$TMP/r.err"
}

@test "SIGTERM while waiting for a connection: exit 0" {
	relay r tcp-listen:127.0.0.1:0 udp:127.0.0.1:9
	stop r TERM
	[ "$status_of" -eq 0 ]
}

@test "SIGUSR1 prints the counters and the relay goes on" {
	bg d "$PEER" dump -n 10
	wait_for "$TMP/d.out" '^port'
	mkfifo "$TMP/in"
	bg_in r "$TMP/in" "$DGRELAY" stdio udp:127.0.0.1:"$(port d)"
	exec 5>"$TMP/in"
	ready r
	frames 01 02 03 04 05 06 07 >&5
	stats_until r '1>2: 7 datagrams, 7 bytes'
	kid=$(child_of r)
	frames 08 09 0a >&5
	wait_exit d
	kill -USR1 "$kid"
	wait_for "$TMP/r.err" '1>2: 10 datagrams, 10 bytes'
	exec 5>&-
	wait_exit r
	[ "$status_of" -eq 0 ]
}

@test "without -S and -v, nothing is printed at the end" {
	echo_peer e udp
	bg r "$DGRELAY" udp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	ready r
	stop r TERM
	[ "$status_of" -eq 0 ]
	[ ! -s "$TMP/r.err" ]
}

@test "-t ends an idle relay, not a busy one" {
	start_echo_relay -t 1
	# busy for about 2.4 s, a datagram every 200 ms: must survive
	run "$PEER" ping -n 12 -i 200 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	wait_exit r 10
	[ "$status_of" -eq 0 ]
	grep -q 'idle for 1000 ms: ending' "$TMP/r.err"
}

@test "-t takes decimals" {
	start_echo_relay -t 0.3
	wait_exit r 10
	[ "$status_of" -eq 0 ]
	grep -q 'idle for 300 ms' "$TMP/r.err"
}

# counted NAME TEXT: NAME's counters, asked for now (SIGUSR1), say TEXT.
counted() {
	barrier "$1"
	tail -n 2 "$TMP/$1.err" | grep -q -- "$2"
}

@test "-u relays only first to second" {
	start_echo_relay -u -S
	"$PEER" send -i 20 127.0.0.1 "$(port r)" 01 02 03
	eventually 30 counted r '1>2: 3 datagrams, 3 bytes'
	stop r
	grep -q '1>2: 3 datagrams, 3 bytes' "$TMP/r.err"
	grep -q '2>1: 0 datagrams, 0 bytes' "$TMP/r.err"
}

@test "-U relays only second to first" {
	echo_peer e udp
	relay r -U -S udp:127.0.0.1:"$(port e)" udp-listen:127.0.0.1:0
	"$PEER" send -i 20 127.0.0.1 "$(port r)" 01 02 03
	eventually 30 counted r '2>1: 3 datagrams, 3 bytes'
	stop r
	grep -q '2>1: 3 datagrams, 3 bytes' "$TMP/r.err"
	grep -q '1>2: 0 datagrams, 0 bytes' "$TMP/r.err"
}

@test "-vv logs one line per datagram" {
	start_echo_relay -v
	run "$PEER" ping -n 4 -m 5 -M 5 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	stop r
	[ "$(grep -c '^dgrelay: 1>2: 5 bytes$' "$TMP/r.err")" -eq 4 ]
	[ "$(grep -c '^dgrelay: 2>1: 5 bytes$' "$TMP/r.err")" -eq 4 ]
}

@test "-b 1 and -s 65535: one buffer still carries the largest frames" {
	echo_peer e udp
	relay b -b 1 tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	relay a -b 1 udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$(port b)"
	run "$PEER" ping -n 500 -m 0 -M 65507 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 500 datagrams "* ]]
}

@test "-b 1024 (the most): 20000 small frames through two stream relays" {
	relay b -b 1024 -s 200 tcp-listen:127.0.0.1:0 stdio </dev/null
	"$PEER" gen -n 20000 -m 0 -M 200 -S 5 >"$TMP/frames"
	run timeout 30 "$DGRELAY" -b 1024 -s 200 stdio tcp:127.0.0.1:"$(port b)" \
	    <"$TMP/frames"
	[ "$status" -eq 0 ]
	wait_exit b
	run "$PEER" check -n 20000 -m 0 -M 200 -S 5 <"$TMP/b.out"
	[ "$output" = "ok 20000 frames" ]
}

@test "-b 1024 -s 200 through UDP->TCP->UDP" {
	echo_peer e udp
	relay b -b 1024 -s 200 tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	relay a -b 1024 -s 200 udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$(port b)"
	# the window stays within the kernel's default UDP receive buffers
	run "$PEER" ping -n 5000 -m 0 -M 200 -w 64 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
}

@test "-Z drops root after opening: the relay runs as that user" {
	need_root
	relay r -Z nobody udp-listen:127.0.0.1:0 udp:127.0.0.1:9
	kid=$(child_of r)
	eventually 5 as_nobody "$kid"
	grep -q '^Groups:[[:space:]]*65534[[:space:]]*$' "/proc/$kid/status"
}
