#!/usr/bin/env bats
# UDP_GRO on receive, UDP_SEGMENT on send, and their fallbacks: the same
# bytes either way.  Correctness only; speed is `make bench`.  strace shows
# which path a relay took: a UDP_GRO control message (type 0x68) on a
# recvmmsg, a UDP_SEGMENT one (0x67) on a sendmmsg.

load helpers

BENCH=$BATS_TEST_DIRNAME/../bench/dgbench

teardown() {
	kill_bg
	del_netns
}

# traced NAME ARGS...: dgrelay -v -S under strace, its calls in NAME.st
traced() {
	local name=$1
	shift
	bg "$name" strace -qq -e trace=recvmmsg,sendmmsg -o "$TMP/$name.st" \
	    "$DGRELAY" -v -S "$@"
}

# receiver NAME [dgbench recv options]: a checking receiver on 127.0.0.1
receiver() {
	local name=$1
	shift
	bg "$name" "$BENCH" recv -t 2000 -T 50 "$@" 127.0.0.1 0
	wait_for "$TMP/$name.out" '^port'
}

gro_used() { grep -q 'recvmmsg.*SOL_UDP, cmsg_type=0x68' "$TMP/$1.st"; }
gso_used() { grep -q 'sendmmsg.*SOL_UDP, cmsg_type=0x67' "$TMP/$1.st"; }

@test "GSO sender to GRO receiver through UDP->TCP->UDP, exit stopped a while: every datagram intact, in order" {
	need_cmd strace
	receiver r -g -s 1200
	traced x tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port r)"
	wait_for "$TMP/x.err" 'listening on'
	# room in the entry's socket for what comes while the exit stops
	traced e udp-listen:127.0.0.1:0,rcvbuf=4194304 tcp:127.0.0.1:"$(port x)"
	wait_for "$TMP/e.err" 'listening on'
	# the exit stops reading (its strace, so at its next call): the
	# entry's writes come up short, mid-run, and resume
	child_of x >"$TMP/x.child"
	kill -STOP "$(cat "$TMP/x.child")"
	"$BENCH" gen -g -n 6000 -r 20000 -s 1200 127.0.0.1 "$(port e)" \
	    >"$TMP/gen.out"
	sleep 1
	kill -CONT "$(cat "$TMP/x.child")"
	wait_exit r 30
	cat "$TMP/gen.out" "$TMP/r.out"
	[ "$(cat "$TMP/gen.out")" = "sent 6000" ]
	grep -qx 'recv 6000 bytes 7200000 corrupt 0 merged 0 truncated 0 reordered 0 ns [0-9]*' "$TMP/r.out"
	stop e
	wait_exit x	# its TCP peer ended
	grep -q '1>2: 6000 datagrams, 7200000 bytes, 0 oversize, 0 send errors' "$TMP/e.err"
	grep -q '1>2: 6000 datagrams, 7200000 bytes, 0 oversize, 0 send errors' "$TMP/x.err"
	gro_used e
	gso_used x
}

@test "-s below 65527 turns GRO off; the kernel splits the runs and the bytes are the same" {
	need_cmd strace
	receiver r -s 1000
	traced x -s 2000 tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port r)"
	wait_for "$TMP/x.err" 'listening on'
	traced e -s 2000 udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$(port x)"
	wait_for "$TMP/e.err" 'listening on'
	run "$BENCH" gen -g -n 2000 -r 20000 -s 1000 127.0.0.1 "$(port e)"
	[ "$output" = "sent 2000" ]
	wait_exit r 30
	cat "$TMP/r.out"
	grep -qx 'recv 2000 bytes 2000000 corrupt 0 merged 0 truncated 0 reordered 0 ns [0-9]*' "$TMP/r.out"
	stop e
	wait_exit x	# its TCP peer ended
	grep -q '1>2: 2000 datagrams, 2000000 bytes, 0 oversize' "$TMP/e.err"
	! gro_used e || false
	gso_used x
}

@test "UDP to UDP: a coalesced run leaves as one UDP_SEGMENT send, to a GRO and to a plain receiver" {
	need_cmd strace
	for gro in -g ""; do
		receiver "r$gro" $gro -s 1472
		traced "u$gro" udp-listen:127.0.0.1:0 \
		    udp:127.0.0.1:"$(port "r$gro")"
		wait_for "$TMP/u$gro.err" 'listening on'
		run "$BENCH" gen -g -n 4000 -r 40000 -s 1472 127.0.0.1 \
		    "$(port "u$gro")"
		[ "$output" = "sent 4000" ]
		wait_exit "r$gro" 30
		cat "$TMP/r$gro.out"
		grep -qx 'recv 4000 bytes 5888000 corrupt 0 merged 0 truncated 0 reordered 0 ns [0-9]*' "$TMP/r$gro.out"
		stop "u$gro"
		grep -q '1>2: 4000 datagrams, 5888000 bytes, 0 oversize, 0 send errors' "$TMP/u$gro.err"
		gro_used "u$gro"
		gso_used "u$gro"
	done
}

@test "frames from a stream: equal sizes leave as UDP_SEGMENT runs; shorter, longer and empty ones keep their boundaries" {
	need_cmd strace
	a=$(printf 'a1%.0s' $(seq 100))	# 100 bytes
	b=$(printf 'b2%.0s' $(seq 50))
	c=$(printf 'c3%.0s' $(seq 200))
	frames "$a" "$a" "$a" "$a" "$a" "$b" - "$a" "$a" "$a" "$c" "$b" "$b" \
	    >"$TMP/in"
	bg d "$PEER" dump -b 127.0.0.1 -n 13
	wait_for "$TMP/d.out" '^port'
	bg_in s "$TMP/in" strace -qq -e trace=sendmmsg -o "$TMP/s.st" \
	    "$DGRELAY" -S -u stdio udp:127.0.0.1:"$(port d)"
	wait_exit d 20
	wait_exit s 20
	[ "$status_of" -eq 0 ]
	{
		echo "port $(port d)"
		for h in "$a" "$a" "$a" "$a" "$a" "$b" - "$a" "$a" "$a" "$c" \
		    "$b" "$b"; do
			[ "$h" = - ] && h=
			echo "$(( ${#h} / 2 )) $h"
		done
	} >"$TMP/want"
	diff "$TMP/want" "$TMP/d.out"
	grep -q '1>2: 13 datagrams, 1150 bytes, 0 oversize, 0 send errors' "$TMP/s.err"
	gso_used s
}

@test "a route that refuses UDP_SEGMENT (segments above its MTU): the relay falls back, nothing lost" {
	need_root
	need_cmd strace
	need_cmd ip iproute2
	two_netns 1300
	bg r ip netns exec "$NB" "$BENCH" recv -t 2000 -T 50 -s 1400 \
	    10.201.0.2 0
	wait_for "$TMP/r.out" '^port'
	bg u ip netns exec "$NA" strace -qq -e trace=recvmmsg,sendmmsg \
	    -o "$TMP/u.st" "$DGRELAY" -v -S udp-listen:127.0.0.1:0 \
	    udp:10.201.0.2:"$(port r)"
	wait_for "$TMP/u.err" 'listening on'
	run ip netns exec "$NA" "$BENCH" gen -g -n 2000 -r 20000 -s 1400 \
	    127.0.0.1 "$(port u)"
	[ "$output" = "sent 2000" ]
	wait_exit r 30
	cat "$TMP/r.out"
	grep -qx 'recv 2000 bytes 2800000 corrupt 0 merged 0 truncated 0 reordered 0 ns [0-9]*' "$TMP/r.out"
	stop u
	grep -q '1>2: 2000 datagrams, 2800000 bytes, 0 oversize, 0 send errors' "$TMP/u.err"
	gro_used u
	# refused once (EMSGSIZE or EINVAL), then a message a datagram
	grep -qE 'sendmmsg.*cmsg_type=0x67.*= -1 (EMSGSIZE|EINVAL)' "$TMP/u.st"
	[ "$(grep -c 'sendmmsg.*= -1 ' "$TMP/u.st")" -eq 1 ]
}

@test "multi: a GSO sender's coalesced runs are cut into their datagrams, through a mux carrier: every datagram intact, in order" {
	need_cmd strace
	receiver r -g -s 1000
	relay x tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port r)"
	traced e udp-listen:127.0.0.1:0,multi,rcvbuf=8388608 \
	    tcp:127.0.0.1:"$(port x)",mux
	wait_for "$TMP/e.err" 'carrier up'
	"$BENCH" gen -g -n 6000 -r 20000 -s 1000 127.0.0.1 "$(port e)" \
	    >"$TMP/gen.out"
	wait_exit r 30
	cat "$TMP/gen.out" "$TMP/r.out"
	[ "$(cat "$TMP/gen.out")" = "sent 6000" ]
	grep -qx 'recv 6000 bytes 6000000 corrupt 0 merged 0 truncated 0 reordered 0 ns [0-9]*' "$TMP/r.out"
	stop e
	grep -q '1>2: 6000 datagrams, 6000000 bytes, 0 oversize' "$TMP/e.err"
	gro_used e
}
