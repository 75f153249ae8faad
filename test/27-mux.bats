#!/usr/bin/env bats
# mux: many sessions over one connection, yamux (hashicorp/yamux's
# spec).  The far end is hashicorp/yamux itself (Debian's Go package):
# test/yamuxpeer, built here.

load helpers

setup_file() {
	command -v go >/dev/null || return 0
	[ -d /usr/share/gocode/src/github.com/hashicorp/yamux ] || return 0
	GO111MODULE=off GOPATH=/usr/share/gocode \
	    GOCACHE="$BATS_FILE_TMPDIR/gocache" \
	    go build -o "$BATS_FILE_TMPDIR/yamuxpeer" \
	    "$BATS_TEST_DIRNAME/yamuxpeer/main.go" || true
}

need_yamux() {
	need_cmd go golang-go
	[ -x "$BATS_FILE_TMPDIR/yamuxpeer" ] ||
	    skip "no yamux test peer (needs golang-github-hashicorp-yamux-dev)"
	YAMUX=$BATS_FILE_TMPDIR/yamuxpeer
}

# carriers PORT: established TCP connections to PORT.
carriers() { ss -Htn state established "sport = :$1" | grep -c . || :; }

@test "mux: hashicorp/yamux opens 200 streams to tcp-listen,mux: each a session, every frame back, one connection" {
	need_yamux
	echo_peer e udp
	relay r -S tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	run timeout 60 "$YAMUX" open 127.0.0.1:"$(port r)" 200
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "ok 200 streams" ]
	stop r
	[ "$status_of" -eq 0 ]
	grep -q 'multi: 200 sessions served, 0 running' "$TMP/r.err"
	grep -q '1>2: 200 datagrams' "$TMP/r.err"
	grep -q '2>1: 200 datagrams' "$TMP/r.err"
	[ "$(grep -c 'carrier from' "$TMP/r.err")" -eq 1 ]
	grep -q 'multi: mux: 0 carriers up, 1 accepted or dialled in all (0 redials); streams: 0 opened, 200 accepted, 0 running' "$TMP/r.err"
}

@test "mux: 1,000 streams at once over exactly one TCP connection" {
	need_yamux
	not_under_valgrind "1,000 sessions"
	echo_peer e udp
	relay r -v tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	bg y "$YAMUX" open 127.0.0.1:"$(port r)" 1000 hold 5
	wait_for "$TMP/y.out" '^holding|FAIL' 60
	grep -q '^holding 1000' "$TMP/y.out"
	[ "$(carriers "$(port r)")" -eq 1 ]
	said r 'connection from .* stream [0-9]+$' 1000
	wait_exit y 60
	[ "$status_of" -eq 0 ]
	grep -q '^ok 1000 streams' "$TMP/y.out"
}

@test "mux: a hostile carrier (bad version, wrong parity, reused ID, data beyond the window) ends alone, one line each" {
	need_yamux
	need_cmd python3
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	bg good "$YAMUX" open 127.0.0.1:"$(port r)" 50 slow
	run timeout 60 python3 -c '
import socket, struct, sys
sys.path.insert(0, sys.argv[2])
from muxframes import hdr
port = int(sys.argv[1])
cases = [
    hdr(1, 1, 1, 0, v=1),                             # bad version
    hdr(1, 1, 2, 0),                                  # even ID from a dialler
    hdr(1, 1, 1, 0) + hdr(1, 1, 1, 0),                # reused ID
    hdr(1, 1, 3, 0) + hdr(0, 0, 3, 300000) + b"x" * 300000,  # window
    hdr(9, 0, 1, 0),                                  # unknown type
]
for c in cases:
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(20)
    try:
        s.sendall(c)
    except OSError:
        pass
    got = b""
    try:
        while len(got) < 12:
            b = s.recv(12 - len(got))
            if not b:
                break
            got += b
    except OSError:
        pass
    # a Go Away (type 3), code 1 (protocol error), and the end
    print("goaway" if len(got) == 12 and got[1] == 3 and
        struct.unpack(">I", got[8:12])[0] == 1 else "no goaway: %r" % got)
' "$(port r)" "$BATS_TEST_DIRNAME"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^goaway$' <<<"$output")" -eq 5 ]
	wait_exit good 60
	[ "$status_of" -eq 0 ]
	grep -q '^ok 50 streams' "$TMP/good.out"
	for why in 'a bad version' 'wrong parity' 'opened twice' \
	    'beyond the window\|longer than any window' 'unknown frame type'; do
		grep -q "lost: .*\($why\)" "$TMP/r.err" ||
		    { echo "no line for: $why"; false; }
	done
	kill -0 "$(pid_of r)"
}

@test "mux: udp-listen,multi to tcp:...,mux: every UDP peer a stream of one carrier that hashicorp/yamux accepts" {
	need_yamux
	bg y "$YAMUX" accept 127.0.0.1:0 200
	wait_for "$TMP/y.out" '^port'
	# -t: the sessions end, and with them their streams (the peer counts)
	relay r -S -t 2 udp-listen:127.0.0.1:0,multi \
	    tcp:127.0.0.1:"$(port y)",mux
	eventually 30 said r 'carrier up to' 1
	run timeout 120 "$PEER" burst -t 60 udp 200 127.0.0.1 "$(port r)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 200 answered"* ]]
	[ "$(ss -Htn state established "dport = :$(port y)" | grep -c .)" -eq 1 ]
	wait_exit y 60
	[ "$status_of" -eq 0 ]
	grep -q '^ok 200 streams' "$TMP/y.out"
}

@test "mux: dgrelay to dgrelay, 1,000 UDP peers over one TCP connection, then 0..65507-byte datagrams byte for byte" {
	not_under_valgrind "1,000 sessions on each side"
	echo_peer e udp
	relay far -S tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	relay near -S udp-listen:127.0.0.1:0,multi \
	    tcp:127.0.0.1:"$(port far)",mux
	eventually 30 said near 'carrier up to' 1
	bg b "$PEER" burst -H 5 -t 60 udp 1000 127.0.0.1 "$(port near)"
	wait_for "$TMP/b.out" '^holding|FAIL' 90
	grep -q 'ok 1000 answered' "$TMP/b.out"
	[ "$(ss -Htn state established "sport = :$(port far)" | grep -c .)" -eq 1 ]
	run timeout 120 "$PEER" ping -n 2000 -m 0 -M 65507 -S 5 udp 127.0.0.1 \
	    "$(port near)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 2000 datagrams "* ]]
	stop near
	grep -q 'multi: mux: 0 carriers up, 1 accepted or dialled in all (0 redials); streams: 1001 opened, 0 accepted' "$TMP/near.err"
}

@test "mux: the carrier lost: its sessions end; retry dials it again and new peers are served" {
	echo_peer e udp
	p=$(free_port tcp)
	relay far tcp-listen:127.0.0.1:"$p",mux udp:127.0.0.1:"$(port e)"
	relay near -v -S udp-listen:127.0.0.1:0,multi \
	    tcp:127.0.0.1:"$p",mux,retry,interval=0.2
	eventually 30 said near 'carrier up to' 1
	run timeout 60 "$PEER" ping -n 20 udp 127.0.0.1 "$(port near)"
	[ "$status" -eq 0 ]
	stop far
	eventually 30 said near 'carrier .*lost' 1
	eventually 30 said near 'session ended' 1
	relay far2 tcp-listen:127.0.0.1:"$p",mux udp:127.0.0.1:"$(port e)"
	eventually 60 said near 'carrier up to' 2
	# a new peer (its own port): a new stream on the new carrier
	run timeout 60 "$PEER" ping -n 20 udp 127.0.0.1 "$(port near)"
	echo "$output"
	[ "$status" -eq 0 ]
	stop near
	grep -q 'multi: mux: 0 carriers up, 2 accepted or dialled in all (1 redials)' "$TMP/near.err"
}

@test "mux: bad combinations exit 2" {
	bad tcp-listen:0,mux,fork udp:127.0.0.1:9 "options mux and fork exclude each other"
	bad udp-listen:0 tcp:127.0.0.1:9,mux "udp-listen:0: with mux on the other address, this one is opened once per stream"
	bad udp-listen:0,multi udp:127.0.0.1:9,mux "option mux does not apply to this address"
	bad tcp-listen:0,mux-ping=2 udp:127.0.0.1:9 "option mux-ping needs mux"
	bad udp-listen:0 tcp-listen:0,mux "udp-listen:0: with mux on the other address, this one is opened once per stream"
	bad stdio tls:127.0.0.1:9,mux "(to open streams from its peers instead, give it multi)"
	bad vsock:1:9,seqpacket,mux udp:127.0.0.1:9 "option mux needs a stream"
	bad udp-listen:0,multi unix-seqpacket:/x,mux "option mux does not apply to this address"
	bad udp-listen:0,multi tcp-listen:0,mux,max-peers=3 "max-peers goes on udp-listen:0,multi"
	bad tcp-listen:0,mux,mux-ping=0 udp:127.0.0.1:9 "option mux-ping=0"
}

@test "mux: an unanswered ping loses the carrier; SIGTERM says Go Away and ends each stream with FIN" {
	need_cmd python3
	echo_peer e udp
	relay r -v -J tcp-listen:127.0.0.1:0,mux,mux-ping=0.5 \
	    udp:127.0.0.1:"$(port e)"
	# a carrier that opens a stream, sends one frame, and answers nothing
	run timeout 60 python3 -c '
import socket, sys
sys.path.insert(0, sys.argv[2])
from muxframes import hdr, frames
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
s.sendall(hdr(1, 1, 1, 0) + hdr(0, 0, 1, 4) + b"\0\2hi")
seen = set()
for t, f, i, n, p in frames(s):
    seen.add("ping" if t == 2 else "data" if t == 0 else
        "update" if t == 1 else "goaway")
print(" ".join(sorted(seen)))
' "$(port r)" "$BATS_TEST_DIRNAME"
	echo "$output"
	[ "$status" -eq 0 ]
	# its echo came back, dgrelay pinged, then gave up on it
	[[ "$output" == *data*ping* ]]
	eventually 30 said r 'lost: no answer to a ping in 0.5 s' 1
	# SIGTERM: a live carrier hears Go Away and its stream's FIN
	bg c python3 -c '
import socket, sys
sys.path.insert(0, sys.argv[2])
from muxframes import hdr, frames
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(50)
s.sendall(hdr(1, 1, 1, 0) + hdr(0, 0, 1, 4) + b"\0\2hi")
print("open", flush=True)
goaway, fin = 0, 0
for t, f, i, n, p in frames(s):
    if t == 2 and f & 1:        # answer pings
        s.sendall(hdr(2, 2, 0, n))
    if t == 3:
        goaway = 1
    if i == 1 and f & 4:
        fin = 1
print("goaway %d fin %d" % (goaway, fin), flush=True)
' "$(port r)" "$BATS_TEST_DIRNAME"
	wait_for "$TMP/c.out" '^open'
	eventually 30 said r 'connection from .* stream 1$' 2
	kill -USR1 "$(child_of r)"
	eventually 30 said r '"mux":\{"carriers":1,"carried":2,"streams":1' 1
	stop r
	[ "$status_of" -eq 0 ]
	wait_exit c 30
	grep -q '^goaway 1 fin 1$' "$TMP/c.out"
}

@test "mux: one way, far past the window (3 MB, nothing comes back): every frame arrives, in order" {
	# the sink: frames to a file, checked after
	relay sink tcp-listen:127.0.0.1:0 stdio
	relay far tcp-listen:127.0.0.1:0,mux tcp:127.0.0.1:"$(port sink)"
	relay near tcp-listen:127.0.0.1:0,multi tcp:127.0.0.1:"$(port far)",mux
	eventually 30 said near 'carrier up to' 1
	"$PEER" gen -n 3000 -m 1000 -M 1000 -S 3 >"$TMP/frames"
	run timeout 60 "$DGRELAY" stdio tcp:127.0.0.1:"$(port near)" \
	    <"$TMP/frames"
	[ "$status" -eq 0 ]
	eventually 60 has_bytes "$TMP/sink.out" "$(stat -c %s "$TMP/frames")"
	run timeout 30 "$PEER" check -n 3000 -m 1000 -M 1000 -S 3 \
	    <"$TMP/sink.out"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "mux on both addresses: each stream of the carriers accepted is bridged to a stream of the carrier dialled" {
	need_yamux
	echo_peer e udp
	relay far -S tcp-listen:127.0.0.1:0,mux udp:127.0.0.1:"$(port e)"
	relay mid -S tcp-listen:127.0.0.1:0,mux tcp:127.0.0.1:"$(port far)",mux
	eventually 30 said mid 'carrier up to' 1
	run timeout 60 "$YAMUX" open 127.0.0.1:"$(port mid)" 50
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "ok 50 streams" ]
	[ "$(carriers "$(port far)")" -eq 1 ]
	stop mid
	stop far
	grep -q 'streams: 50 opened, 50 accepted' "$TMP/mid.err"
	grep -q 'streams: 0 opened, 50 accepted' "$TMP/far.err"
}
