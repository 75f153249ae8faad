#!/usr/bin/env bats
# A udp-listen bound to a wildcard address answers from the address its
# peer wrote to (IP_PKTINFO, IPV6_PKTINFO), not from the one the route
# prefers: a client with a connected socket (DNS stubs, QUIC) accepts
# replies only from the address it sent to.  Two network namespaces: the
# server's holds a second address, and the client writes to that one.

load helpers

setup() {
	TMP=$BATS_TEST_TMPDIR
	: >"$TMP/pids"
	need_root
	two_netns
	# NB holds a second address of each family; its route back to the
	# client prefers the first
	ip -n "$NB" addr add 10.201.1.2/24 dev vb
	ip -n "$NA" route add 10.201.1.0/24 dev va
	ip -n "$NA" addr add fd00:201::1/64 dev va nodad
	ip -n "$NB" addr add fd00:201::2/64 dev vb nodad
	ip -n "$NB" addr add fd00:202::2/64 dev vb nodad
	ip -n "$NA" route add fd00:202::/64 dev va
}

teardown() {
	kill_bg
	del_netns
}

# server ADDRESS-OPTIONS: in NB, an echo behind dgrelay udp-listen:0,...
server() {
	bg e ip netns exec "$NB" "$PEER" echo udp
	wait_for "$TMP/e.out" '^port'
	bg r ip netns exec "$NB" "$DGRELAY" -v "udp-listen:0$1" \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'listening on'
}

# client HOST [PORT]: from NA, 50 datagrams through a connected socket
# to HOST (and r's port), each answered, intact and in order
client() {
	run timeout 30 ip netns exec "$NA" "$PEER" ping -n 50 -t 5 udp "$1" \
	    "${2:-$(port r)}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 50 datagrams "* ]]
}

@test "reply source, IPv4: a plain udp-listen answers from the address the peer wrote to" {
	server ""
	client 10.201.1.2
	grep -qE 'replies from (::ffff:)?10.201.1.2, where the peer sent to$' "$TMP/r.err"
}

@test "reply source, IPv4: the first address, which the route picks, needs nothing" {
	server ""
	client 10.201.0.2
	[ "$(grep -c 'replies from' "$TMP/r.err")" -eq 0 ]
}

@test "reply source, IPv4: each fork child answers from the address its peer wrote to" {
	server ",fork"
	client 10.201.1.2
	client 10.201.0.2
	[ "$(grep -c 'child [0-9]*: peer' "$TMP/r.err")" -eq 2 ]
}

@test "reply source, IPv6: plain and fork" {
	server ""
	client fd00:202::2
	grep -q 'replies from fd00:202::2, where the peer sent to$' "$TMP/r.err"
	stop r
	server ",fork"
	client fd00:202::2
	client fd00:201::2
}

@test "reply source: multi answers every peer from the address it wrote to, IPv4 and IPv6" {
	server ",multi"
	client 10.201.1.2
	client 10.201.0.2
	client fd00:202::2
	client fd00:201::2
	[ "$(grep -c 'peer from' "$TMP/r.err")" -eq 4 ]
}

@test "reply source: an activated datagram socket (fd:, systemd --datagram) too" {
	need_cmd systemd-socket-activate systemd
	bg e ip netns exec "$NB" "$PEER" echo udp
	wait_for "$TMP/e.out" '^port'
	bg r ip netns exec "$NB" systemd-socket-activate --datagram -l 5353 \
	    "$DGRELAY" -v fd:3 udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'Listening on'
	client 10.201.1.2 5353
	grep -qE 'replies from (::ffff:)?10.201.1.2, where the peer sent to$' "$TMP/r.err"
}
