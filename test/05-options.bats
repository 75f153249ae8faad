#!/usr/bin/env bats
# Address options: bind, reuseport, rcvbuf, sndbuf, mark, dev, nodelay.

load helpers

# sock_of NAME DPORT: ss's line for NAME's UDP/TCP socket to port DPORT.
sock_of() {
	ss -H -tuaemp "dport = :$2" | tr '\n' ' '
}

@test "bind= on tcp: the connection comes from that address" {
	relay s tcp-listen:127.0.0.1:0 udp:127.0.0.1:9
	relay c -u udp-listen:127.0.0.1:0 "tcp:127.0.0.1:$(port s),bind=127.0.0.3:0"
	wait_for "$TMP/s.err" 'connection from 127.0.0.3 [0-9]+$'
}

@test "bind= on udp with a port: datagrams come from that address and port" {
	stdin_fifo
	relay s udp-listen:127.0.0.1:0 udp:127.0.0.1:9
	p=$(free_port udp)
	bg_in c "$TMP/in" "$DGRELAY" -v stdio "udp:127.0.0.1:$(port s),bind=127.0.0.4:$p"
	exec 5>"$TMP/in"
	frames 01 >&5
	wait_for "$TMP/s.err" "peer 127.0.0.4 $p\$"
}

@test "reuseport: two listeners share a port; without it the second fails" {
	relay a udp-listen:127.0.0.1:0,reuseport udp:127.0.0.1:9
	p=$(port a)
	relay b udp-listen:127.0.0.1:"$p",reuseport udp:127.0.0.1:9
	grep -q "listening on 127.0.0.1 $p\$" "$TMP/b.err"
	run timeout 30 "$DGRELAY" udp-listen:127.0.0.1:"$p" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	relay t tcp-listen:127.0.0.1:0,reuseport udp:127.0.0.1:9
	relay u tcp-listen:127.0.0.1:"$(port t)",reuseport udp:127.0.0.1:9
}

@test "rcvbuf= and sndbuf= set SO_RCVBUF and SO_SNDBUF (read back with ss)" {
	need_cmd ss iproute2
	mkfifo "$TMP/in"
	p=$(free_port udp)
	bg_in r "$TMP/in" "$DGRELAY" -v stdio "udp:127.0.0.1:$p,rcvbuf=100000,sndbuf=60000"
	exec 5>"$TMP/in"
	wait_for "$TMP/r.err" 'connected to'
	line=$(sock_of r "$p")
	[[ "$line" == *"rb200000,"*"tb120000,"* ]]	# the kernel doubles
}

@test "mark= sets SO_MARK (as root)" {
	need_root
	need_cmd ss iproute2
	mkfifo "$TMP/in"
	p=$(free_port udp)
	bg_in r "$TMP/in" "$DGRELAY" -v stdio "udp:127.0.0.1:$p,mark=42"
	exec 5>"$TMP/in"
	wait_for "$TMP/r.err" 'connected to'
	[[ "$(sock_of r "$p")" == *"fwmark:0x2a"* ]]
}

@test "mark= without the privilege is a clear runtime error" {
	[ "$(id -u)" != 0 ] || command -v setpriv >/dev/null ||
	    skip "needs setpriv (util-linux) to drop CAP_NET_ADMIN as root"
	run --separate-stderr timeout 30 setpriv --inh-caps=-all \
	    --bounding-set=-all "$DGRELAY" stdio udp:127.0.0.1:9,mark=1
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: udp:127.0.0.1:9: setsockopt SO_MARK: Operation not permitted" ]
}

@test "dev= binds the socket to an interface (lo)" {
	need_cmd ss iproute2
	mkfifo "$TMP/in"
	p=$(free_port udp)
	bg_in r "$TMP/in" "$DGRELAY" -v stdio "udp:127.0.0.1:$p,dev=lo"
	exec 5>"$TMP/in"
	wait_for "$TMP/r.err" 'connected to'
	[[ "$(sock_of r "$p")" == *"127.0.0.1%lo:"* ]]
	run --separate-stderr timeout 30 "$DGRELAY" stdio udp:127.0.0.1:9,dev=nosuchdev0
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: udp:127.0.0.1:9: setsockopt SO_BINDTODEVICE: No such device" ]
}

@test "TCP_NODELAY is on by default; nodelay=0 turns it off" {
	need_cmd strace
	relay s tcp-listen:127.0.0.1:0 udp:127.0.0.1:9
	run bash -c "timeout 30 strace -e trace=setsockopt '$DGRELAY' stdio tcp:127.0.0.1:$(port s) </dev/null 2>&1"
	[[ "$output" == *"TCP_NODELAY, [1], 4) = 0"* ]]
	relay t tcp-listen:127.0.0.1:0 udp:127.0.0.1:9
	run bash -c "timeout 30 strace -e trace=setsockopt '$DGRELAY' stdio tcp:127.0.0.1:$(port t),nodelay=0 </dev/null 2>&1"
	[[ "$output" == *"TCP_NODELAY, [0], 4) = 0"* ]]
	[[ "$output" != *"TCP_NODELAY, [1]"* ]]
}
