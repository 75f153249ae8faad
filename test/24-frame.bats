#!/usr/bin/env bats
# frame=u32be: a stream side's frames with a 4-byte big-endian length (as
# QEMU's -netdev stream, passt and yamux-cli -u frame datagrams).

load helpers

# wide HEX...: the u32be frames of the given payloads (hex, "-" empty).
wide() {
	local h
	for h in "$@"; do
		[ "$h" = - ] && h=
		unhex "$(printf '%08x' $(( ${#h} / 2 )))$h"
	done
}

@test "frame=u32be in: 4-byte lengths cut, an oversize frame skipped and counted, the stream in sync" {
	bg d "$PEER" dump -n 3
	wait_for "$TMP/d.out" '^port'
	# 2 bytes, empty, 70,000 bytes (over -s: skipped), 1 byte
	{ wide 6869 -; unhex 00011170; head -c 70000 /dev/zero; wide 21; } \
	    >"$TMP/in"
	run --separate-stderr timeout 30 "$DGRELAY" -S stdio,frame=u32be \
	    udp:127.0.0.1:"$(port d)" <"$TMP/in"
	echo "$stderr"
	[ "$status" -eq 0 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '2 6869\n0 \n1 21')" ]
	[[ "$stderr" == *"1>2: 3 datagrams, 3 bytes, 1 oversize, 0 send errors, 0 truncated"* ]]
}

@test "frame=u32be in, -b 1: a largest frame (65,535 bytes and its 4-byte length) fits a one-slot ring" {
	bg d "$PEER" dump -n 1
	wait_for "$TMP/d.out" '^port'
	{ unhex 0000ffff; head -c 65535 /dev/zero; wide 21; } >"$TMP/in"
	run --separate-stderr timeout 30 "$DGRELAY" -S -b 1 stdio,frame=u32be \
	    udp:127.0.0.1:"$(port d)" <"$TMP/in"
	echo "$stderr"
	[ "$status" -eq 0 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "1 21" ]
	# cut whole, then too big for UDP: a send error, not a stuck stream
	[[ "$stderr" == *"1>2: 1 datagrams, 1 bytes, 0 oversize, 1 send errors"* ]]
}

@test "frame=u32be out: each datagram gets a 4-byte length, byte for byte" {
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -v stdio,frame=u32be udp-listen:127.0.0.1:0
	hold_fifo
	wait_for "$TMP/r.err" 'listening on'
	run timeout 30 "$PEER" send 127.0.0.1 "$(port r)" 6869 - 21
	[ "$status" -eq 0 ]
	eventually 30 has_bytes "$TMP/r.out" 15
	exec 5>&-
	wait_exit r
	[ "$(hexof "$TMP/r.out")" = 000000026869000000000000000121 ]
}

@test "frame=u32be over TCP between two dgrelays: 5000 datagrams of 0..65507 bytes intact, -b 1 too" {
	echo_peer e udp
	for b in 64 1; do
		relay "b$b" -b "$b" tcp-listen:127.0.0.1:0,frame=u32be \
		    udp:127.0.0.1:"$(port e)"
		relay "a$b" -b "$b" udp-listen:127.0.0.1:0 \
		    tcp:127.0.0.1:"$(port "b$b")",frame=u32be
		run timeout 120 "$PEER" ping -n 5000 -m 0 -M 65507 -S 7 udp \
		    127.0.0.1 "$(port "a$b")"
		echo "-b $b: $output"
		[ "$status" -eq 0 ]
		[[ "$output" == "ok 5000 datagrams "* ]]
		stop "a$b"
		grep -q '1>2: 5000 datagrams, .* 0 oversize, 0 send errors, 0 truncated' "$TMP/a$b.err"
	done
}

@test "frame=u32be over TLS, and into an exec'd command: datagrams intact" {
	need_cmd openssl
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$TMP/k.pem" -out "$TMP/c.pem" -days 2 \
	    -subj /CN=localhost 2>/dev/null
	echo_peer e udp
	relay b "tls-listen:127.0.0.1:0,cert=$TMP/c.pem,key=$TMP/k.pem,frame=u32be" \
	    exec:"$DGRELAY stdio,frame=u32be udp:127.0.0.1:$(port e)",frame=u32be
	relay a udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port b),verify=0,frame=u32be"
	run timeout 120 "$PEER" ping -n 2000 -m 0 -M 65507 -S 9 udp \
	    127.0.0.1 "$(port a)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 2000 datagrams "* ]]
}

@test "frame=u32be with multi: sessions of a tcp-listen,multi server each framed so" {
	echo_peer e udp
	relay b tcp-listen:127.0.0.1:0,multi,frame=u32be udp:127.0.0.1:"$(port e)"
	relay a udp-listen:127.0.0.1:0,multi tcp:127.0.0.1:"$(port b)",frame=u32be
	run timeout 120 "$PEER" burst -t 60 udp 200 127.0.0.1 "$(port a)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 200 answered"* ]]
}

@test "frame= where it cannot apply, or a value it does not know: exit 2 (1 for a datagram descriptor)" {
	bad stdio,frame=u64be udp:127.0.0.1:9 "option frame=u64be: must be u16be or u32be"
	bad stdio udp:127.0.0.1:9,frame=u32be "option frame does not apply to this address"
	bad stdio unix-seqpacket:/nonexistent,frame=u32be "option frame does not apply"
	bad stdio vsock:1:5,seqpacket,frame=u32be "option frame applies to a stream"
	bad stdio stdio,frame "option frame needs a value"
	# a datagram socket handed in on fd 3
	run --separate-stderr timeout 30 python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
os.set_inheritable(s.fileno(), True)
os.dup2(s.fileno(), 3)
os.execv(sys.argv[1], [sys.argv[1], "fd:3,frame=u32be", "udp:127.0.0.1:9"])
' "$DGRELAY"
	echo "$stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"option frame applies to a stream; descriptor 3 is a datagram socket"* ]]
}
