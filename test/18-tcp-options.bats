#!/usr/bin/env bats
# TCP options for tunnels that must notice a dead path: keepalive,
# keepidle=, keepintvl=, keepcnt=, user-timeout=; and mptcp.

load helpers

teardown() {
	kill_bg
	del_netns
}

need_mptcp() {
	[ -r /proc/sys/net/mptcp/enabled ] ||
	    skip "no MPTCP in this kernel (/proc/sys/net/mptcp/enabled missing)"
	[ "$(cat /proc/sys/net/mptcp/enabled)" = 1 ] ||
	    skip "MPTCP is off here (net.mptcp.enabled is 0)"
}

@test "keepalive options: set on the connecting socket and on accepted ones" {
	need_cmd strace
	not_under_valgrind "strace on top of valgrind"
	echo_peer e udp
	relay s tcp-listen:127.0.0.1:0,keepidle=5 udp:127.0.0.1:"$(port e)"
	bg c strace -f -e trace=setsockopt -o "$TMP/st" "$DGRELAY" -v \
	    udp-listen:127.0.0.1:0 \
	    "tcp:127.0.0.1:$(port s),keepalive,keepidle=7,keepintvl=2,keepcnt=3,user-timeout=5000"
	wait_for "$TMP/c.err" 'listening on'
	run timeout 30 "$PEER" ping -n 20 udp 127.0.0.1 "$(port c)"
	[ "$status" -eq 0 ]
	grep -q 'SO_KEEPALIVE, \[1\]' "$TMP/st"
	grep -q 'TCP_KEEPIDLE, \[7\]' "$TMP/st"
	grep -q 'TCP_KEEPINTVL, \[2\]' "$TMP/st"
	grep -q 'TCP_KEEPCNT, \[3\]' "$TMP/st"
	grep -q 'TCP_USER_TIMEOUT, \[5000\]' "$TMP/st"
	# both ends of the connection run a keepalive timer
	[ "$(ss -Htno state established "sport = :$(port s) or dport = :$(port s)" |
	    grep -c 'timer:(keepalive')" -eq 2 ]
}

@test "TCP options: bad values exit 2, and they apply to tcp only" {
	bad tcp:127.0.0.1:5,keepcnt=0 stdio "option keepcnt=0: too small"
	bad tcp:127.0.0.1:5,keepidle=40000 stdio "option keepidle=40000: too large"
	bad tcp:127.0.0.1:5,user-timeout=x stdio "option user-timeout=x: invalid"
	bad tcp:127.0.0.1:5,keepalive=1 stdio "option keepalive takes no value"
	bad udp:127.0.0.1:5,keepalive stdio "option keepalive does not apply"
	bad unix:/x,mptcp stdio "option mptcp does not apply"
}

# A tunnel across two namespaces: NB listens (tcp -> udp echo), NA is the
# client (udp-listen -> tcp, with OPTIONS); then NB's way back to NA is
# black-holed, so the path goes silent in both directions.
SRCPORT=40777

silent_path() {
	need_root
	two_netns
	bg e ip netns exec "$NB" "$PEER" echo udp
	wait_for "$TMP/e.out" '^port'
	bg s ip netns exec "$NB" "$DGRELAY" -v tcp-listen:0 \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/s.err" 'listening on'
	bg c ip netns exec "$NA" "$DGRELAY" -v udp-listen:127.0.0.1:0 \
	    "tcp:10.201.0.2:$(port s),$1"
	wait_for "$TMP/c.err" 'listening on'
	# from a fixed source, so that a later pinger is the same peer
	timeout 30 ip netns exec "$NA" "$PEER" ping -n 10 udpfrom \
	    127.0.0.1 "$SRCPORT" 127.0.0.1 "$(port c)" >"$TMP/ping.out"
	grep -q '^ok 10 datagrams' "$TMP/ping.out"
	ip -n "$NB" route add blackhole 10.201.0.1/32
}

@test "keepalive notices a path that went silent: exit 1, timed out" {
	silent_path keepidle=1,keepintvl=1,keepcnt=2
	wait_exit c 20
	[ "$status_of" -eq 1 ]
	grep -q 'tcp:10.201.0.2:[0-9]*: read: Connection timed out' "$TMP/c.err"
}

@test "user-timeout notices a silent path while data waits: exit 1, timed out" {
	silent_path user-timeout=1500
	# the same peer goes on sending into the dead path: the data stays
	# unacknowledged, and after 1.5 s the connection is given up
	bg p ip netns exec "$NA" "$PEER" ping -n 1000 -i 50 -t 30 udpfrom \
	    127.0.0.1 "$SRCPORT" 127.0.0.1 "$(port c)"
	wait_exit c 20
	[ "$status_of" -eq 1 ]
	grep -qE 'tcp:10.201.0.2:[0-9]+: (read|write): Connection timed out' "$TMP/c.err"
}

@test "mptcp: a tunnel over Multipath TCP carries datagrams byte for byte" {
	need_mptcp
	need_cmd ss iproute2
	echo_peer e udp
	relay s tcp-listen:127.0.0.1:0,mptcp udp:127.0.0.1:"$(port e)"
	relay c udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$(port s)",mptcp
	run timeout 60 "$PEER" ping -n 500 -m 0 -M 65507 udp 127.0.0.1 "$(port c)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 500 datagrams "* ]]
	# the kernel's MPTCP sockets, both ends of it
	[ "$(ss -HMn state established | grep -c "127.0.0.1:$(port s)")" -ge 2 ]
}

@test "mptcp: a plain TCP peer still works (the kernel falls back)" {
	need_mptcp
	echo_peer e udp
	relay s tcp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	relay c udp-listen:127.0.0.1:0 tcp:127.0.0.1:"$(port s)",mptcp
	run timeout 60 "$PEER" ping -n 200 -M 8000 udp 127.0.0.1 "$(port c)"
	[ "$status" -eq 0 ]
}

@test "mptcp where the kernel will not: exit 1 with a clear line, never plain TCP" {
	need_root
	[ -r /proc/sys/net/mptcp/enabled ] ||
	    skip "no MPTCP in this kernel to turn off in a namespace"
	two_netns
	ip netns exec "$NA" sysctl -qw net.mptcp.enabled=0
	run --separate-stderr timeout 10 ip netns exec "$NA" "$DGRELAY" \
	    tcp-listen:0,mptcp udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == "dgrelay: tcp-listen:0: socket IPPROTO_MPTCP: "*"(no MPTCP in this kernel, or net.mptcp.enabled is 0)" ]]
}
