#!/usr/bin/env bats
# vsock: and vsock-listen:.  This machine has no vsock loopback transport,
# so the kernel runs what it can (sockets, bind, listen, errors) and the
# relay paths run end to end through test/vsock_shim.so, an LD_PRELOAD
# test shim that maps AF_VSOCK to AF_UNIX.  CID 2 (the host) is never
# connected to.

load helpers

need_vsock() {
	timeout 10 "$DGRELAY" vsock-listen:0 udp:127.0.0.1:9 2>"$TMP/probe.err" 3>&- &
	local pid=$!
	eventually 2 grep -q 'listening on\|socket AF_VSOCK' "$TMP/probe.err" ||
	    true
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	grep -q 'socket AF_VSOCK' "$TMP/probe.err" &&
	    skip "no AF_VSOCK in this kernel: $(cat "$TMP/probe.err")"
	return 0
}

# shim NAME ARGS...: dgrelay -v with the shim, in the background.
shim() {
	local name=$1
	shift
	mkdir -p "$TMP/vsock"
	bg "$name" env LD_PRELOAD="$BATS_TEST_DIRNAME/vsock_shim.so" \
	    VSOCK_SHIM_DIR="$TMP/vsock" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	    "$DGRELAY" -v "$@"
	case "$*" in
	*-listen:*) wait_for "$TMP/$name.err" 'listening on' ;;
	esac
}

@test "vsock: malformed addresses exit 2" {
	run --separate-stderr timeout 30 "$DGRELAY" vsock:5 stdio
	[ "$status" -eq 2 ]
	[ "$stderr" = "dgrelay: vsock:5: expected CID:PORT, got '5'" ]
	run --separate-stderr timeout 30 "$DGRELAY" vsock:any:5 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"CID any only makes sense to listen on" ]]
	run --separate-stderr timeout 30 "$DGRELAY" vsock:nohost:5 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"CID nohost: invalid" ]]
	run --separate-stderr timeout 30 "$DGRELAY" vsock:local:4294967295 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"port 4294967295: too large" ]]
	run --separate-stderr timeout 30 "$DGRELAY" vsock:local:0 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"port 0 needs a listen address" ]]
	run --separate-stderr timeout 30 "$DGRELAY" vsock:1:5,nodelay=0 stdio
	[ "$status" -eq 2 ]
}

@test "vsock-listen binds VMADDR_CID_ANY in the kernel and names its port" {
	need_vsock
	relay r vsock-listen:0 udp:127.0.0.1:9
	grep -qE 'vsock-listen:0: listening on any [0-9]+$' "$TMP/r.err"
	relay q vsock-listen:any:0,seqpacket udp:127.0.0.1:9
	grep -qE 'listening on any [0-9]+$' "$TMP/q.err"
}

@test "vsock: an unreachable CID is one clear line, exit 1" {
	need_vsock
	# CID 1 (local) without a loopback transport: the kernel refuses or
	# times out, depending on the kernel; either way one line, exit 1
	run --separate-stderr timeout 20 "$DGRELAY" vsock:local:5000 stdio </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" =~ ^dgrelay:\ vsock:local:5000:\ connect\ to\ 1\ 5000:\ [A-Z] ]]
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
}

@test "vsock end to end in the kernel (needs a vsock loopback transport)" {
	need_vsock
	echo_peer e udp
	relay b vsock-listen:0 udp:127.0.0.1:"$(port e)"
	p=$(sed -n 's/.*listening on any \([0-9]*\)$/\1/p' "$TMP/b.err")
	run --separate-stderr timeout 20 "$DGRELAY" -u vsock:local:"$p" stdio </dev/null
	[[ "$stderr" == *"connect to "* ]] &&
	    skip "no vsock loopback transport: connecting to CID 1 fails ($stderr)"
	relay a udp-listen:127.0.0.1:0 vsock:local:"$p"
	run "$PEER" ping -n 200 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
}

@test "vsock stream end to end (through the LD_PRELOAD shim)" {
	echo_peer e udp
	shim b vsock-listen:5000 udp:127.0.0.1:"$(port e)"
	grep -q 'listening on any 5000$' "$TMP/b.err"
	shim a udp-listen:127.0.0.1:0 vsock:local:5000
	wait_for "$TMP/a.err" 'listening on'
	run "$PEER" ping -n 1000 -m 0 -M 65507 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 1000 datagrams "* ]]
	grep -q 'vsock:local:5000: connected to 1 5000$' "$TMP/a.err"
}

@test "vsock seqpacket end to end, a datagram side (through the LD_PRELOAD shim)" {
	echo_peer e udp
	shim b vsock-listen:5001,seqpacket udp:127.0.0.1:"$(port e)"
	shim a udp-listen:127.0.0.1:0 vsock:1:5001,seqpacket
	wait_for "$TMP/a.err" 'listening on'
	run "$PEER" ping -n 500 -m 0 -M 60000 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 500 datagrams "* ]]
}

@test "vsock-listen,fork serves several peers (through the LD_PRELOAD shim)" {
	echo_peer e udp
	shim b vsock-listen:5002,fork udp:127.0.0.1:"$(port e)"
	for i in 1 2 3; do
		shim a$i udp-listen:127.0.0.1:0 vsock:local:5002
		wait_for "$TMP/a$i.err" 'listening on'
		run "$PEER" ping -n 100 -S "$i" udp 127.0.0.1 "$(port a$i)"
		[ "$status" -eq 0 ]
	done
	[ "$(grep -c 'child [0-9]*: connection from 1 0$' "$TMP/b.err")" -eq 3 ]
}

@test "vsock: mux carriers, vsock-listen,mux and udp-listen,multi vsock:...,mux (through the LD_PRELOAD shim)" {
	echo_peer e udp
	shim far -S vsock-listen:5002,mux udp:127.0.0.1:"$(port e)"
	shim near udp-listen:127.0.0.1:0,multi vsock:local:5002,mux
	eventually 30 said near 'carrier up to' 1
	bg b "$PEER" burst -t 60 udp 50 127.0.0.1 "$(port near)"
	wait_for "$TMP/b.out" '^ok|FAIL' 60
	grep -q 'ok 50 answered' "$TMP/b.out"
	stop far
	grep -q 'streams: 0 opened, 50 accepted' "$TMP/far.err"
}
