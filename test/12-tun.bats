#!/usr/bin/env bats
# tun: and tap, as root, in network namespaces this file creates and
# deletes.  Addresses live only inside those namespaces: 10.201.0.0/30 on
# a veth pair between them, the tunnels' own /30s on the TUN devices.

load helpers

setup() {
	TMP=$BATS_TEST_TMPDIR
	: >"$TMP/pids"
	[ "$(id -u)" = 0 ] || skip "needs root (uid 0) for TUN devices and namespaces"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun in this kernel"
	command -v ip >/dev/null || skip "needs ip (Debian package iproute2)"
	two_netns
}

teardown() {
	kill_bg
	del_netns
}

# netns NS CMD...: CMD inside namespace NS.
netns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

@test "TUN over TCP between two namespaces: ping and 2000 UDP datagrams byte for byte" {
	need_cmd ping iputils-ping
	bg b ip netns exec "$NB" "$DGRELAY" -v -S \
	    tun:dgt,mtu=1400,up,addr=10.202.0.2/30 tcp-listen:10.201.0.2:0
	wait_for "$TMP/b.err" 'listening on'
	bg a ip netns exec "$NA" "$DGRELAY" -v -S \
	    tun:dgt,mtu=1400,up,addr=10.202.0.1/30 tcp:10.201.0.2:"$(port b)"
	wait_for "$TMP/a.err" 'connected to'
	grep -q '^dgrelay: tun:dgt: device dgt$' "$TMP/a.err"
	# the options took effect
	link=$(ip -n "$NA" -o link show dgt)
	[[ "$link" == *"mtu 1400"* ]]
	[[ "$link" == *"<POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP>"* ]]
	[[ "$(ip -n "$NA" -o -4 addr show dev dgt)" == *"inet 10.202.0.1/30 "* ]]
	# ping across
	run netns "$NA" ping -c 3 -i 0.2 -W 5 10.202.0.2
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
	# bulk UDP across, datagrams up to 8000 bytes (IP fragments)
	bg e ip netns exec "$NB" "$PEER" echo -b 10.202.0.2 udp
	wait_for "$TMP/e.out" '^port'
	run netns "$NA" "$PEER" ping -n 2000 -m 0 -M 8000 udp 10.202.0.2 "$(port e)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 2000 datagrams "* ]]
	stop a
	[ "$status_of" -eq 0 ]
	grep -qE '1>2: [0-9]+ datagrams, .* 0 oversize, 0 send errors, 0 truncated' "$TMP/a.err"
}

@test "TUN to UDP (datagram to datagram) between two namespaces" {
	need_cmd ping iputils-ping
	bg a ip netns exec "$NA" "$DGRELAY" -v \
	    tun:dgu,up,addr=10.203.0.1/30 udp-listen:10.201.0.1:0
	wait_for "$TMP/a.err" 'listening on'
	bg b ip netns exec "$NB" "$DGRELAY" -v \
	    tun:dgu,up,addr=10.203.0.2/30 udp:10.201.0.1:"$(port a)"
	wait_for "$TMP/b.err" 'connected to'
	run netns "$NB" ping -c 3 -i 0.2 -W 5 10.203.0.1
	[ "$status" -eq 0 ]
	bg e ip netns exec "$NA" "$PEER" echo -b 10.203.0.1 udp
	wait_for "$TMP/e.out" '^port'
	run netns "$NB" "$PEER" ping -n 1000 -m 0 -M 1400 udp 10.203.0.1 "$(port e)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 1000 datagrams "* ]]
}

@test "a packet larger than -s is counted, never cut" {
	need_cmd ping iputils-ping
	bg d ip netns exec "$NA" "$PEER" dump -n 1
	wait_for "$TMP/d.out" '^port'
	bg a ip netns exec "$NA" "$DGRELAY" -v -S -s 100 \
	    tun:dgo,up,addr=10.204.0.1/30 udp:127.0.0.1:"$(port d)"
	wait_for "$TMP/a.err" 'connected to'
	netns "$NA" ping -c 1 -W 1 -s 200 10.204.0.2 || true	# 228 bytes
	netns "$NA" ping -c 1 -W 1 -s 20 10.204.0.2 || true	# 48 bytes
	wait_exit d 10
	[ "$(sed 1d "$TMP/d.out" | cut -d' ' -f1)" = 48 ]
	stop a
	grep -qE '1>2: [0-9]+ datagrams, .* [1-9][0-9]* oversize' "$TMP/a.err"
}

@test "tap: an Ethernet device, with a name the kernel picks" {
	bg a ip netns exec "$NA" "$DGRELAY" -v tun:,tap,up udp:127.0.0.1:9
	wait_for "$TMP/a.err" 'device '
	dev=$(sed -n 's/.*: device \(.*\)$/\1/p' "$TMP/a.err")
	[[ "$dev" == tap* ]]
	[[ "$(ip -n "$NA" -o link show "$dev")" == *"link/ether"* ]]
}

@test "tap with frame=u32be, as QEMU's -netdev stream speaks it: a VM's ARP request answered by the host's kernel" {
	need_cmd python3
	bg a ip netns exec "$NA" "$DGRELAY" -v \
	    unix-listen:"$TMP/vm.sock",frame=u32be tun:dgq,tap,up,addr=10.203.0.1/24
	wait_for "$TMP/a.err" 'listening on'
	# the VM: who has 10.203.0.1? tell 10.203.0.2 (52:54:00:12:34:56),
	# one Ethernet frame with its u32be length; the answer read the same
	run timeout 30 python3 -c '
import os, socket, struct, sys
vm = bytes.fromhex("525400123456")
arp = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + vm + bytes([10, 203, 0, 2]) \
    + bytes(6) + bytes([10, 203, 0, 1])
eth = b"\xff" * 6 + vm + b"\x08\x06" + arp
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(struct.pack(">I", len(eth)) + eth)
def get(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit("eof")
        b += c
    return b
while True:
    f = get(struct.unpack(">I", get(4))[0])
    if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02":
        break
print("reply from", f[22:28].hex(":"), "for", ".".join(map(str, f[28:32])),
    "to", f[0:6].hex(":"))
# the device lives while the VM is connected: its address, to compare
sys.stdout.flush()
os.system("ip -n " + sys.argv[2] + " -o link show dgq")
' "$TMP/vm.sock" "$NA"
	echo "$output"
	[ "$status" -eq 0 ]
	mac=$(sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p' <<<"${lines[1]}")
	[ -n "$mac" ]
	[ "${lines[0]}" = "reply from $mac for 10.203.0.1 to 52:54:00:12:34:56" ]
}

@test "tun: clear errors for a name in use, no CAP_NET_ADMIN, no /dev/net/tun" {
	run --separate-stderr netns "$NA" "$DGRELAY" tun:lo udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == "dgrelay: tun:lo: ioctl TUNSETIFF: "*"(name in use?)" ]]
	need_cmd setpriv util-linux
	run --separate-stderr netns "$NA" setpriv --inh-caps=-all --bounding-set=-all \
	    "$DGRELAY" tun:dgx udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tun:dgx: ioctl TUNSETIFF: Operation not permitted (needs CAP_NET_ADMIN)" ]
	need_cmd unshare util-linux
	mkdir "$TMP/empty"
	run --separate-stderr unshare -m sh -c \
	    "mount --bind '$TMP/empty' /dev/net && exec '$DGRELAY' tun: udp:127.0.0.1:9"
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tun:: open /dev/net/tun: No such file or directory" ]
}

@test "tun: bad options exit 2" {
	run --separate-stderr timeout 30 "$DGRELAY" tun:,addr=10.0.0.1/33 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"option addr: prefix /33: too large" ]]
	run --separate-stderr timeout 30 "$DGRELAY" tun:,addr=10.0.0.1 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"expected A.B.C.D/LEN" ]]
	run --separate-stderr timeout 30 "$DGRELAY" tun:,mtu=10 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"option mtu=10: too small" ]]
	run --separate-stderr timeout 30 "$DGRELAY" udp:127.0.0.1:5,tap stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"option tap does not apply to this address (only to tun)" ]]
	run --separate-stderr timeout 30 "$DGRELAY" tun:abcdefghijklmnopq stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"device name longer than 15 bytes" ]]
}

@test "-Z after a TUN device and a low port: both relays run as nobody, no capabilities, and traffic flows" {
	need_cmd ping iputils-ping
	bg b ip netns exec "$NB" "$DGRELAY" -v -Z nobody \
	    tun:dgt,up,addr=10.202.0.2/30 tcp-listen:10.201.0.2:600
	wait_for "$TMP/b.err" 'listening on'
	bg a ip netns exec "$NA" "$DGRELAY" -v -Z nobody \
	    tun:dgt,up,addr=10.202.0.1/30 tcp:10.201.0.2:600
	wait_for "$TMP/a.err" 'connected to'
	wait_for "$TMP/b.err" 'connection from'
	for side in a b; do
		kid=$(child_of "$side")
		eventually 5 as_nobody "$kid"
		grep -q '^CapEff:[[:space:]]*0000000000000000$' "/proc/$kid/status"
		grep -q '^CapPrm:[[:space:]]*0000000000000000$' "/proc/$kid/status"
	done
	# the device and the connection opened as root still work
	run netns "$NA" ping -c 3 -i 0.2 -W 5 10.202.0.2
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"3 packets transmitted, 3 received"* ]]
}
