#!/usr/bin/env bats
# Stream sides (tcp, unix, stdio, fd) and the framing table's stream rows,
# end of input and half-close.

load helpers

@test "UDP->TCP->UDP through two dgrelays: 10000 datagrams of 0..65507 bytes intact, in order" {
	echo_peer e udp
	relay b tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	relay a udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$(port b)"
	run "$PEER" ping -n 10000 -m 0 -M 65507 -S 42 udp 127.0.0.1 "$(port a)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 10000 datagrams "* ]]
	stop a
	[ "$status_of" -eq 0 ]
	grep -q '1>2: 10000 datagrams, .* 0 oversize, 0 send errors, 0 truncated' "$TMP/a.err"
	grep -q '2>1: 10000 datagrams, .* 0 oversize, 0 send errors, 0 truncated' "$TMP/a.err"
}

@test "tcp-listen side talks frames to a plain framed TCP client" {
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	run "$PEER" ping -n 1000 -m 0 -M 65507 tcp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 1000 datagrams "* ]]
	grep -q 'connection from 127.0.0.1 ' "$TMP/r.err"
}

@test "stdio over pipes: frames in, frames out; stdin EOF ends with 0" {
	echo_peer e udp
	run "$PEER" ping -n 2000 -M 65507 exec "$DGRELAY stdio udp:127.0.0.1:$(port e)"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ok 2000 datagrams $(echo "${lines[0]}" | cut -d' ' -f4) bytes" ]
	[ "${lines[1]}" = "child exit 0" ]
}

@test "fd:3 stream socket (socketpair) is a stream side" {
	echo_peer e udp
	run "$PEER" ping -n 500 -M 65507 fdexec stream "$DGRELAY fd:3 udp:127.0.0.1:$(port e)"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "child exit 0" ]
}

@test "fd:3:4 pipes are a stream side" {
	echo_peer e udp
	run "$PEER" ping -n 500 -M 65507 fdexec pipes "$DGRELAY fd:3:4 udp:127.0.0.1:$(port e)"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "child exit 0" ]
}

@test "fd:3 SOCK_DGRAM socket is a datagram side, empty datagrams too" {
	echo_peer e udp
	run "$PEER" ping -n 500 -m 0 -M 8000 fdexec dgram "$DGRELAY -t 1 fd:3 udp:127.0.0.1:$(port e)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "ok 500 datagrams "* ]]
}

@test "fd:3 SOCK_SEQPACKET socket is a datagram side; its end ends the relay" {
	echo_peer e udp
	run "$PEER" ping -n 500 -m 1 -M 65000 fdexec seqpacket "$DGRELAY fd:3 udp:127.0.0.1:$(port e)"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "child exit 0" ]
}

@test "fd:3 listening TCP socket is accepted from (socket activation)" {
	need_cmd systemd-socket-activate systemd
	echo_peer e udp
	p=$(free_port tcp)
	bg r systemd-socket-activate -l 127.0.0.1:"$p" \
	    "$DGRELAY" -v fd:3 udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'Listening on'
	run "$PEER" ping -n 200 tcp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	grep -q 'fd:3: connection from 127.0.0.1 ' "$TMP/r.err"
}

@test "unix-listen and unix: stream sides on a path" {
	echo_peer e udp
	relay b unix-listen:"$TMP/s" udp:127.0.0.1:"$(port e)"
	relay a udp-listen:127.0.0.1:0 unix:"$TMP/s"
	run "$PEER" ping -n 1000 -M 65507 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
	grep -q "listening on $TMP/s" "$TMP/b.err"
	stop b
	[ ! -e "$TMP/s" ]	# the socket file goes with dgrelay
}

@test "unix abstract names (@name)" {
	echo_peer e udp
	name="@dgrelay-test-$$-$RANDOM"
	relay b unix-listen:"$name" udp:127.0.0.1:"$(port e)"
	run "$PEER" ping -n 300 unix "$name"
	[ "$status" -eq 0 ]
}

@test "stream to stream: frames pass with their boundaries (tcp to unix echo)" {
	echo_peer e unix "$TMP/echo"
	relay r tcp-listen:127.0.0.1:0 unix:"$TMP/echo"
	run "$PEER" ping -n 1000 -m 0 -M 65535 tcp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 1000 datagrams "* ]]
}

@test "EOF at a frame boundary: everything is delivered, exit 0 (65535-byte frames)" {
	relay b tcp-listen:127.0.0.1:0 stdio </dev/null
	"$PEER" gen -n 300 -m 0 -M 65535 -S 3 >"$TMP/frames"
	run timeout 30 "$DGRELAY" stdio tcp:127.0.0.1:"$(port b)" <"$TMP/frames"
	[ "$status" -eq 0 ]
	wait_exit b
	[ "$status_of" -eq 0 ]
	run "$PEER" check -n 300 -m 0 -M 65535 -S 3 <"$TMP/b.out"
	[ "$output" = "ok 300 frames" ]
	cmp "$TMP/frames" "$TMP/b.out"
}

@test "EOF inside a frame: complete frames delivered, then exit 1 'truncated frame at eof'" {
	bg d "$PEER" dump -n 2
	wait_for "$TMP/d.out" '^port'
	{ frames aa bbbb; unhex 0005616263; } >"$TMP/frames"
	run --separate-stderr timeout 30 "$DGRELAY" -S stdio udp:127.0.0.1:"$(port d)" \
	    <"$TMP/frames"
	[ "$status" -eq 1 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '1 aa\n2 bbbb')" ]
	[[ "$stderr" == *"dgrelay: stdio: truncated frame at eof"* ]]
	[[ "$stderr" == *"1>2: 2 datagrams, 3 bytes, 0 oversize, 0 send errors, 1 truncated"* ]]
}

@test "EOF inside a header byte is a truncated frame too" {
	run --separate-stderr timeout 30 "$DGRELAY" stdio udp:127.0.0.1:9 < <(unhex 00)
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: stdio: truncated frame at eof" ]
}

@test "EOF inside a skipped oversize frame is a truncated frame" {
	run --separate-stderr timeout 30 "$DGRELAY" -s 10 stdio udp:127.0.0.1:9 \
	    < <(unhex 0100616263)
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: stdio: truncated frame at eof" ]
}

@test "half-close passes between two stream sides, both ways" {
	need_cmd socat
	"$PEER" gen -n 50 -M 3000 -S 1 >"$TMP/in1"
	"$PEER" gen -n 70 -M 3000 -S 2 >"$TMP/in2"
	bg_in a "$TMP/in2" "$DGRELAY" -v unix-listen:"$TMP/s" stdio
	wait_for "$TMP/a.err" 'listening on'
	relay b tcp-listen:127.0.0.1:0 unix:"$TMP/s"
	timeout 20 socat -t 10 TCP:127.0.0.1:"$(port b)" - \
	    <"$TMP/in1" >"$TMP/out1"
	wait_exit a
	[ "$status_of" -eq 0 ]
	wait_exit b
	[ "$status_of" -eq 0 ]
	cmp "$TMP/in2" "$TMP/out1"
	cmp "$TMP/in1" "$TMP/a.out"
	grep -q 'eof on stdio' "$TMP/a.err"
	grep -q 'eof on unix-listen:' "$TMP/a.err"
}

@test "end of a stream side ends a relay to a datagram side (after delivery)" {
	bg d "$PEER" dump -n 3
	wait_for "$TMP/d.out" '^port'
	relay b tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port d)"
	frames 01 0202 030303 | timeout 10 socat -u - TCP:127.0.0.1:"$(port b)"
	wait_exit b
	[ "$status_of" -eq 0 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '1 01\n2 0202\n3 030303')" ]
	grep -q 'eof on tcp-listen:127.0.0.1:0' "$TMP/b.err"
}

@test "fd:3 unconnected UDP socket (socket activation) locks onto its first peer" {
	need_cmd systemd-socket-activate systemd
	echo_peer e udp
	p=$(free_port udp)
	bg r systemd-socket-activate --datagram -l 127.0.0.1:"$p" \
	    "$DGRELAY" -v fd:3 udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'Listening on'
	run "$PEER" ping -n 200 -M 9000 udp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	grep -q 'fd:3: peer 127.0.0.1 ' "$TMP/r.err"
}

@test "IPv6: tcp-listen:[::1]:0 and tcp:[::1]:PORT" {
	[ -e /proc/net/if_inet6 ] || skip "IPv6 is off in this kernel"
	echo_peer e udp
	relay b "tcp-listen:[::1]:0" udp:127.0.0.1:"$(port e)"
	relay a udp-listen:127.0.0.1:0 "tcp:[::1]:$(port b)"
	run "$PEER" ping -n 300 -M 65507 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
	grep -q 'connection from ::1 ' "$TMP/b.err"
}

@test "a stream peer that ends and leaves: what it missed is unsent, exit 0" {
	echo_peer e udp
	run --separate-stderr "$PEER" flood-close "$DGRELAY -v -S fd:3 udp:127.0.0.1:$(port e)"
	echo "$output $stderr"
	[ "$output" = "child exit 0" ]
	[[ "$stderr" == *"eof on fd:3"* ]]
	[[ "$stderr" =~ 2\>1:\ [0-9]+\ datagrams,.*\ [1-9][0-9]*\ unsent ]]
}
