#!/usr/bin/env bats
# AF_UNIX SOCK_SEQPACKET: a datagram side with an end.

load helpers

@test "unix-seqpacket-listen to udp: datagrams pass as they are" {
	echo_peer e udp
	relay r unix-seqpacket-listen:"$TMP/s" udp:127.0.0.1:"$(port e)"
	run "$PEER" ping -n 2000 -m 1 -M 65000 seqpacket "$TMP/s"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 2000 datagrams "* ]]
	# the client's close is a 0-byte read: the end of the relay
	wait_exit r
	[ "$status_of" -eq 0 ]
	grep -q "eof on unix-seqpacket-listen:$TMP/s" "$TMP/r.err"
}

@test "udp to unix-seqpacket (connecting) to a seqpacket echo" {
	echo_peer e seqpacket "$TMP/echo"
	relay r udp-listen:127.0.0.1:0 unix-seqpacket:"$TMP/echo"
	run "$PEER" ping -n 1000 -m 1 -M 60000 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 1000 datagrams "* ]]
}

@test "seqpacket abstract names (@name)" {
	echo_peer e udp
	name="@dgrelay-seq-$$-$RANDOM"
	relay r unix-seqpacket-listen:"$name" udp:127.0.0.1:"$(port e)"
	run "$PEER" ping -n 100 seqpacket "$name"
	[ "$status" -eq 0 ]
}

@test "seqpacket to stream and back: framed, and its end is passed on" {
	echo_peer e unix "$TMP/echo"
	relay r unix-seqpacket-listen:"$TMP/s" unix:"$TMP/echo"
	run "$PEER" ping -n 500 -m 1 -M 65000 seqpacket "$TMP/s"
	[ "$status" -eq 0 ]
	wait_exit r
	[ "$status_of" -eq 0 ]
	grep -q 'eof on unix-seqpacket-listen' "$TMP/r.err"
	grep -q 'eof on unix:' "$TMP/r.err"
}
