#!/usr/bin/env bats
# mux beyond tcp: carriers over TLS (certificates, PSK), unix; the reverse
# tunnel (carriers dialled from the service side to a relay that listens
# for them); a stalled stream among flowing ones; a carrier cut inside a
# frame.  dgrelay at both ends; the certificates are made here, once.
# shellcheck disable=SC2030,SC2031 # run's status, read in the same test

load helpers

setup_file() {
	command -v openssl >/dev/null || return 0
	tls_ca "$BATS_FILE_TMPDIR"
}

need_certs() {
	need_cmd openssl
	K=$BATS_FILE_TMPDIR
	[ -s "$K/srv.pem" ] || skip "openssl could not make the certificates"
}

# conns PORT: established TCP connections to PORT (either end).
conns() { ss -Htn state established "sport = :$1" | grep -c . || :; }

# ping_ok N ARGS...: N datagrams through ARGS (a dgpeer TRANSPORT) all back.
ping_ok() {
	local n=$1
	shift
	run timeout 120 "$PEER" ping -n "$n" -t 30 "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok $n datagrams"* ]]
}

@test "mux over TLS: 500 UDP peers over exactly one TLS connection, 0..4000-byte datagrams byte for byte; a client that is not TLS opens nothing" {
	need_certs
	need_cmd python3
	echo_peer e udp
	relay far -S "tls-listen:127.0.0.1:0,mux,cert=$K/srv.pem,key=$K/srv.key" \
	    udp:127.0.0.1:"$(port e)"
	relay near -S udp-listen:127.0.0.1:0,multi \
	    "tls:127.0.0.1:$(port far),mux,cafile=$K/ca.pem"
	eventually 30 said near 'carrier 127.0.0.1 [0-9]+: TLSv1.3' 1
	bg b "$PEER" burst -H 5 -t 60 udp 500 127.0.0.1 "$(port near)"
	wait_for "$TMP/b.out" '^holding|FAIL' 90
	grep -q 'ok 500 answered' "$TMP/b.out"
	[ "$(conns "$(port far)")" -eq 1 ]
	ping_ok 300 -m 0 -M 4000 -S 3 udp 127.0.0.1 "$(port near)"
	# a yamux SYN in the clear: no TLS, so no stream, no session
	run timeout 30 python3 -c '
import socket, sys
sys.path.insert(0, sys.argv[2])
from muxframes import hdr
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(hdr(1, 1, 1, 0) * 30)
s.settimeout(20)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
' "$(port far)" "$BATS_TEST_DIRNAME"
	eventually 30 said far 'carrier 127.0.0.1 [0-9]+: lost: .*(wrong version|packet length|http|record)' 1
	stop far
	grep -q 'multi: 501 sessions served' "$TMP/far.err"
	grep -q 'streams: 0 opened, 501 accepted' "$TMP/far.err"
}

@test "mux over TLS with PSK, reverse: the service dials the relay; a service with the wrong key never carries a stream" {
	need_certs
	echo_peer e udp
	p=$(free_port tcp)
	relay pub -S udp-listen:127.0.0.1:0,multi \
	    "tls-listen:127.0.0.1:$p,mux,psk=$K/psk-bob"
	relay bad "tls:127.0.0.1:$p,mux,retry,interval=0.5,psk=$K/psk-wrong" \
	    udp:127.0.0.1:"$(port e)"
	eventually 30 said bad 'carrier .*lost' 1
	run timeout 30 "$PEER" ping -n 1 -t 2 udp 127.0.0.1 "$(port pub)"
	[ "$status" -ne 0 ]
	stop bad
	relay svc -S "tls:127.0.0.1:$p,mux,retry,psk=$K/psk-bob" \
	    udp:127.0.0.1:"$(port e)"
	eventually 30 said svc 'carrier 127.0.0.1 [0-9]+: TLSv1' 1
	bg b "$PEER" burst -H 3 -t 60 udp 200 127.0.0.1 "$(port pub)"
	wait_for "$TMP/b.out" '^holding|FAIL' 90
	grep -q 'ok 200 answered' "$TMP/b.out"
	[ "$(conns "$p")" -eq 1 ]
	ping_ok 200 -M 1400 udp 127.0.0.1 "$(port pub)"
	stop svc
	stop pub
	# the datagram sent while only the wrong key was there: counted
	grep -Eq '1>2: .* [1-9][0-9]* dropped while down' "$TMP/pub.err"
	grep -q 'streams: 201 opened, 0 accepted' "$TMP/pub.err"
	grep -q 'streams: 0 opened, 201 accepted' "$TMP/svc.err"
}

@test "reverse tunnel: 1,000 UDP peers over one connection the service dialled; the service killed, new peers are served after it redials" {
	not_under_valgrind "1,000 sessions on each side"
	echo_peer e udp
	p=$(free_port tcp)
	relay pub -S udp-listen:127.0.0.1:0,multi tcp-listen:127.0.0.1:"$p",mux
	run timeout 30 "$PEER" ping -n 1 -t 2 udp 127.0.0.1 "$(port pub)"
	[ "$status" -ne 0 ]	# no carrier up: dropped, counted
	relay svc tcp:127.0.0.1:"$p",mux,retry,interval=0.2 \
	    udp:127.0.0.1:"$(port e)"
	eventually 30 said pub 'carrier from' 1
	bg b "$PEER" burst -H 5 -t 60 udp 1000 127.0.0.1 "$(port pub)"
	wait_for "$TMP/b.out" '^holding|FAIL' 90
	grep -q 'ok 1000 answered' "$TMP/b.out"
	[ "$(conns "$p")" -eq 1 ]
	kill -KILL "$(child_of svc)"	# dgrelay, not its timeout
	eventually 30 said pub 'carrier .*lost' 1
	relay svc2 tcp:127.0.0.1:"$p",mux,retry,interval=0.2 \
	    udp:127.0.0.1:"$(port e)"
	eventually 30 said pub 'carrier from' 2
	ping_ok 50 udp 127.0.0.1 "$(port pub)"
	stop pub
	[ "$status_of" -eq 0 ]
	grep -q '1>2: .* 1 dropped while down' "$TMP/pub.err"
	grep -q '1 sessions not opened while no carrier was up' "$TMP/pub.err"
	grep -q 'multi: mux: 0 carriers up, 2 accepted or dialled' \
	    "$TMP/pub.err"
}

@test "reverse tunnel, TCP peers: a peer waits in the backlog until a carrier is up; two service instances share the streams, fewest first" {
	echo_peer e tcp
	p=$(free_port tcp)
	relay pub -v tcp-listen:127.0.0.1:0,multi tcp-listen:127.0.0.1:"$p",mux
	# connected (the kernel's backlog), its frames waiting (-vv: a line
	# per stream's session)
	bg early "$PEER" ping -n 20 -t 60 tcp 127.0.0.1 "$(port pub)"
	sleep 1
	! grep -q 'connection from' "$TMP/pub.err" || false
	relay s1 -S tcp:127.0.0.1:"$p",mux,retry tcp:127.0.0.1:"$(port e)"
	wait_for "$TMP/early.out" '^ok 20 datagrams|FAIL' 60
	grep -q '^ok 20 datagrams' "$TMP/early.out"
	said pub 'connection from' 1
	relay s2 -S tcp:127.0.0.1:"$p",mux,retry tcp:127.0.0.1:"$(port e)"
	eventually 30 said pub 'carrier from' 2
	bg b "$PEER" burst -H 5 -t 60 tcp 100 127.0.0.1 "$(port pub)"
	wait_for "$TMP/b.out" '^holding|FAIL' 90
	grep -q 'ok 100 answered' "$TMP/b.out"
	stop s1
	stop s2
	# 101 streams in all; the 100 at once were spread evenly
	a1=$(sed -n 's/.*streams: 0 opened, \([0-9]*\) accepted.*/\1/p' \
	    "$TMP/s1.err")
	a2=$(sed -n 's/.*streams: 0 opened, \([0-9]*\) accepted.*/\1/p' \
	    "$TMP/s2.err")
	echo "s1 $a1 s2 $a2"
	[ $((a1 + a2)) -eq 101 ]
	[ "$a1" -ge 49 ] && [ "$a1" -le 52 ]
}

@test "mux on unix sockets: unix-listen,mux and udp-listen,multi unix:PATH,mux" {
	echo_peer e udp
	relay far -S unix-listen:"$TMP/car.sock",mux udp:127.0.0.1:"$(port e)"
	relay near udp-listen:127.0.0.1:0,multi unix:"$TMP/car.sock",mux
	eventually 30 said near 'carrier up to' 1
	bg b "$PEER" burst -t 60 udp 100 127.0.0.1 "$(port near)"
	wait_for "$TMP/b.out" '^ok|FAIL' 90
	grep -q 'ok 100 answered' "$TMP/b.out"
	ping_ok 200 -m 0 -M 9000 udp 127.0.0.1 "$(port near)"
	stop far
	grep -q 'streams: 0 opened, 101 accepted' "$TMP/far.err"
}

@test "mux: a stream whose TCP peer stops reading stalls alone: 100 others flow beside it over the same carrier" {
	echo_peer e udp
	relay far -S tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	relay near -S tcp-listen:127.0.0.1:0,multi \
	    tcp:127.0.0.1:"$(port far)",mux
	# one connection sends 2,048 frames of 1,000 bytes and reads nothing
	bg s "$PEER" siege -q -n 2048 -t 120 0 1 127.0.0.1 "$(port near)"
	wait_for "$TMP/s.out" '^holding' 60
	bg b "$PEER" burst -t 60 tcp 100 127.0.0.1 "$(port near)"
	wait_for "$TMP/b.out" '^ok|FAIL' 90
	grep -q 'ok 100 answered' "$TMP/b.out"
	ping_ok 300 -M 1400 tcp 127.0.0.1 "$(port near)"
	! said near 'carrier .*lost' 1 || false
	stop near
	stop far
	grep -q 'streams: 102 opened' "$TMP/near.err"
}

@test "mux: a carrier cut inside a frame: its streams end, retry dials again, and every datagram that arrives is whole and arrives once" {
	need_cmd python3
	bg e "$PEER" dump -n 100000
	wait_for "$TMP/e.out" '^port ' 10
	relay far -S tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	# a proxy that cuts its first connection inside a frame, after 20,000
	# bytes, and passes the later ones whole
	bg px python3 -c '
import socket, sys, threading
far = int(sys.argv[1])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("port", ls.getsockname()[1], flush=True)
def pump(a, b, limit):
    n = 0
    try:
        while True:
            d = a.recv(4096)
            if not d:
                break
            if limit and n + len(d) > limit:
                b.sendall(d[:limit - n])
                a.close(); b.close()
                return
            n += len(d)
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.close()
        except OSError: pass
first = True
while True:
    c, _ = ls.accept()
    f = socket.create_connection(("127.0.0.1", far))
    threading.Thread(target=pump, args=(c, f, 20011 if first else 0)).start()
    threading.Thread(target=pump, args=(f, c, 0)).start()
    first = False
' "$(port far)"
	wait_for "$TMP/px.out" '^port ' 10
	relay near -S -M tcp-listen:127.0.0.1:0 udp-listen:127.0.0.1:0,multi \
	    tcp:127.0.0.1:"$(port px)",mux,retry,interval=0.2
	eventually 30 said near 'carrier up to' 1
	# 100 datagrams of 1,000 bytes (about 101,200 bytes on the carrier),
	# each its number, then 996 bytes of 0xaa
	fill=$(printf 'aa%.0s' $(seq 996))
	args=()
	for i in $(seq 100); do args+=("$(printf '%08x' "$i")$fill"); done
	"$PEER" send -i 1 127.0.0.1 "$(port near)" "${args[@]}"
	eventually 30 said near 'carrier .*lost' 1
	eventually 30 said near 'carrier up to' 2
	"$PEER" send 127.0.0.1 "$(port near)" 00112233
	wait_for "$TMP/e.out" '^4 00112233$' 30
	# every datagram that came is whole, came once, in order
	grep -E "^1000 [0-9a-f]{8}$fill\$" "$TMP/e.out" | cut -c6-13 >"$TMP/got"
	n=$(grep -c . "$TMP/got" || :)
	other=$(grep -vcE -e "^1000 [0-9a-f]{8}$fill\$" -e '^port ' \
	    -e '^4 00112233$' "$TMP/e.out" || :)
	echo "whole $n other $other"
	[ "$other" -eq 0 ]
	[ "$n" -ge 1 ]
	sort -u "$TMP/got" | cmp - "$TMP/got"
	# the carrier's redial is its address's reconnect; its streams counted
	if command -v curl >/dev/null; then
		curl -s "http://127.0.0.1:$(mport near)/metrics" >"$TMP/m"
		grep -qx 'dgrelay_reconnects_total{address="2"} 1' "$TMP/m"
		grep -qx 'dgrelay_mux_carriers 1' "$TMP/m"
		grep -qx 'dgrelay_mux_carriers_total 2' "$TMP/m"
		n=$(sed -n 's/^dgrelay_mux_streams_opened_total //p' "$TMP/m")
		[ "$n" -ge 2 ]
	fi
	stop near
	grep -q 'multi: mux: 0 carriers up, 2 accepted or dialled in all (1 redials)' "$TMP/near.err"
}

@test "mux: frame=u32be inside the streams: a 4-byte length before each datagram, both ways" {
	need_cmd python3
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,mux,frame=u32be udp:127.0.0.1:"$(port e)"
	# a yamux client: stream 1, two datagrams framed with 4-byte lengths
	# (a u16be reader would take their first two bytes, 00 00, for empty
	# datagrams), the echo's frames back the same
	run timeout 60 python3 -c '
import socket, struct, sys
sys.path.insert(0, sys.argv[2])
from muxframes import hdr, frames
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
dgs = [b"hello", bytes(range(256)) * 200]
body = b"".join(struct.pack(">I", len(d)) + d for d in dgs)
s.sendall(hdr(1, 1, 1, 0) + hdr(0, 0, 1, len(body)) + body)
got = b""
for t, f, i, n, p in frames(s):
    if t == 0 and i == 1:
        got += p
    if len(got) >= len(body):
        break
print("same" if got == body else "differ %d %d" % (len(got), len(body)))
' "$(port r)" "$BATS_TEST_DIRNAME"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = same ]
}
