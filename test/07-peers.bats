#!/usr/bin/env bats
# Real peers: the Debian udptunnel speaks the same framing; socat carries
# frames as a plain byte pipe.  See ../../shared/PEERS.md for their quirks.

load helpers

# tcp_listening PORT: wait until something listens on TCP PORT.
listens() { [ -n "$(ss -Htln "sport = :$1")" ]; }
tcp_listening() { eventually 5 listens "$1"; }

@test "dgrelay as the TCP client of a udptunnel server" {
	need_cmd udptunnel
	need_cmd ss iproute2
	x=$(free_port udp)
	t=$(free_port tcp)
	# udptunnel sends to 127.0.0.2:x and reads answers on its own port x
	echo_peer e -b 127.0.0.2 -p "$x" -r -d 127.0.0.1:"$x" udp
	bg u udptunnel -s "$t" 127.0.0.2/"$x"
	tcp_listening "$t"
	relay a -S udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$t"
	# one datagram in flight: udptunnel forwards one frame per TCP read
	run "$PEER" ping -n 300 -w 1 -m 1 -M 65000 -S 11 udp 127.0.0.1 "$(port a)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 300 datagrams "* ]]
	stop a
	grep -q '1>2: 300 datagrams, .* 0 oversize, 0 send errors, 0 truncated' "$TMP/a.err"
}

@test "dgrelay as the TCP server of a udptunnel client" {
	need_cmd udptunnel
	echo_peer e udp
	relay b -S tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	y=$(free_port udp)
	# the client takes datagrams on 127.0.0.1:y, answers to 127.0.0.2:y
	bg u udptunnel -c 127.0.0.1/"$(port b)" 127.0.0.2/"$y"
	wait_for "$TMP/b.err" 'connection from'
	run "$PEER" ping -n 300 -w 1 -m 1 -M 65000 -S 12 \
	    udpfrom 127.0.0.2 "$y" 127.0.0.1 "$y"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 300 datagrams "* ]]
}

@test "frames cross socat, a plain byte pipe, unchanged" {
	need_cmd socat
	echo_peer e udp
	relay b tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	t=$(free_port tcp)
	bg s socat TCP-LISTEN:"$t",bind=127.0.0.1,reuseaddr,nodelay \
	    TCP:127.0.0.1:"$(port b)",nodelay
	tcp_listening "$t"
	relay a udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$t"
	run "$PEER" ping -n 2000 -m 0 -M 65507 udp 127.0.0.1 "$(port a)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 2000 datagrams "* ]]
}

@test "socat as a seqpacket peer keeps datagram boundaries" {
	need_cmd socat
	mkfifo "$TMP/in"
	bg_in r "$TMP/in" "$DGRELAY" -v unix-seqpacket-listen:"$TMP/s" stdio
	exec 5>"$TMP/in"	# stdin stays open: its end would end socat
	wait_for "$TMP/r.err" 'listening on'
	# socat reads whole datagrams from UDP and writes each as one message
	p=$(free_port udp)
	bg s socat UDP-RECV:"$p",bind=127.0.0.1 UNIX-CONNECT:"$TMP/s",type=5
	wait_for "$TMP/r.err" 'connection from'
	"$PEER" send -i 20 127.0.0.1 "$p" 616263 64 6566
	bytes_in "$TMP/r.out" 12
	[ "$(hexof "$TMP/r.out")" = 000361626300016400026566 ]
}
