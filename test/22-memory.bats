#!/usr/bin/env bats
# Memory that follows the datagrams: a multi session holds what it queues,
# within its share of the pool; peers that hold half a frame or never read
# cannot stop the others, and are ended after stall-timeout/frame-timeout.
# shellcheck disable=SC2030,SC2031 # run's output, read in the same test

load helpers

# peers: a tenth under valgrind
B=500
H=300
R=100
if [ -n "${VG_LOGS:-}" ]; then B=50; H=30; R=10; fi

# cert: a self-signed server certificate for localhost (clients: verify=0)
cert() {
	need_cmd openssl
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$TMP/k.pem" -out "$TMP/c.pem" -days 2 \
	    -subj /CN=localhost 2>/dev/null
	SRV="cert=$TMP/c.pem,key=$TMP/k.pem"
}

# far NAME PROTO: a far end, PROTO-listen,multi to a UDP echo.
far() {
	echo_peer "$1e" udp
	relay "$1" "$2-listen:127.0.0.1:0,${3:+$3,}multi" \
	    "udp:127.0.0.1:$(port "$1e")"
}

# burst_to SPEC: B UDP peers at once through udp-listen,multi to SPEC (a
# stream far end), default flags: every one answered, none dropped.
burst_to() {
	relay n -S udp-listen:127.0.0.1:0,multi "$1"
	run timeout 120 "$PEER" burst -t 60 udp "$B" 127.0.0.1 "$(port n)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok $B answered"* ]]
	stop n
	grep -q "multi: $B sessions served, 0 running, 0 datagrams from new peers dropped (max-peers), 0 to full sessions dropped" "$TMP/n.err"
}

@test "memory: $B UDP peers at once to a tcp: far end, default flags: every one answered" {
	far f tcp
	burst_to "tcp:127.0.0.1:$(port f)"
}

@test "memory: $B UDP peers at once to a tls: far end, default flags: every one answered" {
	cert
	far f tls "$SRV"
	burst_to "tls:localhost:$(port f),verify=0"
}

# siege NAME PORT RELAY [-T]: H peers holding half a frame and R that
# never read (256 frames each), held open; waits until all are connected
# and RELAY has passed every frame on (the UDP echo behind it is lossy
# while it is flooded: a good client's datagrams must not meet that).
siege() {
	bg "$1" "$PEER" siege ${4:+"$4"} -n 256 -t 120 "$H" "$R" 127.0.0.1 "$2"
	wait_for "$TMP/$1.out" '^holding' 60
	stats_until "$3" "1>2: $((R * 256)) datagrams" 60
}

# good_ping PORT [-T]: a good client's datagrams all come back.
good_ping() {
	run timeout 60 "$PEER" ping -n 50 -M 2000 -t 30 tcp 127.0.0.1 "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 50 datagrams"* ]]
}

# pool_peak NAME: the most bytes NAME's pool lent, from its last -S lines.
pool_peak() {
	sed -n 's/.*multi: pool: [0-9]* bytes lent, \([0-9]*\) at most.*/\1/p' \
	    "$TMP/$1.err" | tail -n 1
}

@test "memory: $H half-frame peers and $R that never read: a good client is answered, the pool holds what they sent" {
	echo_peer e udp
	relay r -S tcp-listen:127.0.0.1:0,multi,stall-timeout=0,frame-timeout=0 \
	    "udp:127.0.0.1:$(port e)"
	siege s "$(port r)" r
	good_ping "$(port r)"
	# they are all still there: nothing ended them, nothing froze
	stats_until r "multi: $((H + R + 1)) sessions served, $((H + R)) running"
	stop r
	# a ring each (4 MiB) would be 1.6 GB, capped at 256 MiB; what they
	# hold is about what they sent (half-frames: 32 KiB each)
	peak=$(pool_peak r)
	echo "pool peak $peak bytes"
	[ "$peak" -gt 0 ]
	[ "$peak" -lt $((128 << 20)) ]
}

@test "memory: the same over tls-listen,multi: a good TLS client is answered" {
	cert
	echo_peer e udp
	relay r -S "tls-listen:127.0.0.1:0,$SRV,multi,stall-timeout=0,frame-timeout=0" \
	    "udp:127.0.0.1:$(port e)"
	siege s "$(port r)" r -T
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$(port r),verify=0"
	run timeout 60 "$PEER" ping -n 50 -M 2000 -t 30 udp 127.0.0.1 "$(port c)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 50 datagrams"* ]]
	stats_until r "multi: $((H + R + 1)) sessions served"
}

@test "memory: stall-timeout and frame-timeout end stalled sessions, counted and said" {
	not_under_valgrind "40 MB through the relay"
	echo_peer e udp
	relay r -S tcp-listen:127.0.0.1:0,multi,stall-timeout=1,frame-timeout=1 \
	    "udp:127.0.0.1:$(port e)"
	bg s "$PEER" siege -n 8192 -t 120 5 5 127.0.0.1 "$(port r)"
	wait_for "$TMP/s.out" '^holding' 60
	# the half-frames all; the non-readers whose way back holds datagrams
	# in dgrelay (not all in the kernel's buffers): each said, counted
	eventually 30 said r 'a frame unfinished for [0-9]* ms: ending the session \(frame-timeout\)' 5
	eventually 30 said r 'took nothing for [0-9]* ms: ending the session \(stall-timeout; [1-9][0-9]* datagrams held\)' 1
	# the flood through the (lossy) UDP echo is over before a good
	# client's datagrams go that way
	eventually 30 settled r
	good_ping "$(port r)"
	stop r
	slow=$(grep -c 'ending the session (frame-timeout)' "$TMP/r.err")
	stalled=$(grep -c 'ending the session (stall-timeout' "$TMP/r.err")
	echo "slow $slow stalled $stalled"
	[ "$slow" -eq 5 ]
	grep -q "1>2: .* 0 stalled, 5 slow frames, [0-9]* dropped by the kernel$" "$TMP/r.err"
	grep -q "2>1: .* $stalled stalled, 0 slow frames, [0-9]* dropped by the kernel$" "$TMP/r.err"
}
# per_peer NAME MAX ARGS...: dgpeer ARGS (1,000 peers, "holding" once all
# are there) in the background; once NAME has a session for each, its PSS
# grew by less than MAX bytes a peer.
per_peer() {
	local kid m0 m1 per name=$1 max=$2
	shift 2
	kid=$(child_of "$name")
	m0=$(awk '/^Pss:/ {print $2}' "/proc/$kid/smaps_rollup")
	bg peers "$PEER" "$@"
	wait_for "$TMP/peers.out" '^holding' 60
	eventually 30 said "$name" 'connection from' 1000
	m1=$(awk '/^Pss:/ {print $2}' "/proc/$kid/smaps_rollup")
	per=$(((m1 - m0) * 1024 / 1000))
	echo "PSS $m0 -> $m1 kB: $per bytes a peer"
	[ "$per" -lt "$max" ]
}

# settled NAME: NAME's datagrams relayed 1>2 are the same in two looks
settled() {
	local kid a b
	kid=$(child_of "$1")
	kill -USR1 "$kid"
	sleep 0.2
	a=$(sed -n 's/.*1>2: \([0-9]*\) datagrams.*/\1/p' "$TMP/$1.err" | tail -n 1)
	kill -USR1 "$kid"
	sleep 0.2
	b=$(sed -n 's/.*1>2: \([0-9]*\) datagrams.*/\1/p' "$TMP/$1.err" | tail -n 1)
	[ -n "$a" ] && [ "$a" = "$b" ]
}


@test "memory: bad stall-timeout and frame-timeout values exit 2" {
	bad tcp-listen:0,multi,stall-timeout=x udp:127.0.0.1:9 "option stall-timeout=x: invalid (seconds, 0 for none)"
	bad tcp-listen:0,multi,frame-timeout=-1 udp:127.0.0.1:9 "option frame-timeout=-1: too small (seconds, 0 for none)"
	bad tcp:127.0.0.1:9,stall-timeout=1 udp:127.0.0.1:9 "option stall-timeout does not apply"
}

@test "memory: an idle session holds no buffer: PSS per session is KiBs, not MiBs" {
	not_under_valgrind "1,000 sessions"
	[[ "$DGRELAY" != */san/* ]] ||
	    skip "ASan's shadow memory and quarantine are not dgrelay's"
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,multi "udp:127.0.0.1:$(port e)"
	# each has moved a datagram each way and holds nothing now: a ring
	# each would be 4 MiB; the bound catches a regression, not a byte
	per_peer r 65536 burst -H 60 tcp 1000 127.0.0.1 "$(port r)"
}

@test "memory: a DNS burst through udp-listen,multi tls: to unbound: every query answered" {
	need_cmd unbound unbound
	need_cmd dig bind9-dnsutils
	not_under_valgrind "100 TLS sessions"
	cert
	p=$(free_port tcp)
	unbound_dot dns "$p" "$TMP/k.pem" "$TMP/c.pem"
	# -t: long enough for 100 handshakes at once on a slow machine
	relay r -S -t 60 udp-listen:127.0.0.1:0,multi "tls:localhost:$p,verify=0"
	# each from a port of its own, below the ephemeral range: a port a
	# later dig reused within -t would find the earlier one's session
	p0=$((20000 + ($$ % 100) * 100))
	digs=()
	for i in $(seq 100); do
		timeout 90 dig +tries=1 +time=60 -b "127.0.0.1#$((p0 + i))" \
		    -p "$(port r)" @127.0.0.1 a.test A +short >"$TMP/q$i" 2>&1 3>&- &
		digs+=($!)
	done
	wait "${digs[@]}" || true
	answered=$(cat "$TMP"/q* | grep -c '^10\.1\.2\.3$')
	echo "$answered answered; the others: $(grep -hv '^10\.1\.2\.3$' \
	    "$TMP"/q* | sort | uniq -c | head -n 5)"
	grep 'multi:\|1>2:\|2>1:' "$TMP/r.err" || true
	[ "$answered" -eq 100 ]
}

@test "memory: max-handshakes: stalled handshakes hold their slots until handshake-timeout, then a good client is served" {
	cert
	# a handshake-timeout that lets valgrind's slow handshakes finish
	hs=${VG_LOGS:+8}
	hs=${hs:-2}
	echo_peer e udp
	relay r -S "tls-listen:127.0.0.1:0,$SRV,multi,max-handshakes=2,handshake-timeout=$hs" \
	    "udp:127.0.0.1:$(port e)"
	# two ClientHellos, then silence: both slots taken; the good client
	# waits for one, then has its own handshake-timeout
	bg s "$PEER" siege -T -h -t 120 2 0 127.0.0.1 "$(port r)"
	wait_for "$TMP/s.out" '^holding' 30
	# both handshakes under way: the server answered each ClientHello
	# (the stalled clients leave its answer unread)
	eventually 30 answered_hellos "$(port r)" 2
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$(port r),verify=0"
	run timeout 60 "$PEER" ping -n 20 -M 2000 -t 30 udp 127.0.0.1 "$(port c)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 20 datagrams"* ]]
	# the good client's handshake was made once a slot came free: a
	# stalled session ended before its TLSv1 line (their "no answer"
	# lines are said once a second, so counted by their sessions)
	before=$(sed '/TLSv1/q' "$TMP/r.err" | grep -c 'session ended')
	echo "stalled sessions ended before the good client's handshake: $before"
	[ "$before" -ge 1 ]
	grep -q "handshake: no answer in $hs.0 s" "$TMP/r.err"
}

@test "memory: a server makes no TLS state for a peer that has sent nothing" {
	not_under_valgrind "1,000 connections"
	[[ "$DGRELAY" != */san/* ]] ||
	    skip "ASan's shadow memory and quarantine are not dgrelay's"
	cert
	relay r "tls-listen:127.0.0.1:0,$SRV,multi,handshake-timeout=60" \
	    udp:127.0.0.1:9
	# 1,000 connections that say nothing (an SSL each would be ~45 KiB)
	per_peer r 24576 siege -q -t 120 1000 0 127.0.0.1 "$(port r)"
}

@test "memory: sessions of one source address share as one: two sources, two groups" {
	echo_peer e udp
	relay r -S tcp-listen:127.0.0.1:0,multi "udp:127.0.0.1:$(port e)"
	bg a "$PEER" siege -b 127.0.0.1 -t 120 5 0 127.0.0.1 "$(port r)"
	bg b "$PEER" siege -b 127.0.0.2 -t 120 5 0 127.0.0.1 "$(port r)"
	wait_for "$TMP/a.out" '^holding' 30
	wait_for "$TMP/b.out" '^holding' 30
	# ten half-frames held: ten directions, two sources
	eventually 20 pool_holds r 10 2
}
# pool_holds NAME D S: NAME's pool says D directions and S sources hold
pool_holds() {
	kill -USR1 "$(child_of "$1")"
	sleep 0.2
	grep -q "multi: pool: .* $2 directions and $3 sources hold bytes" \
	    "$TMP/$1.err"
}
# answered_hellos PORT N: N connections to PORT have bytes unread
answered_hellos() {
	[ "$(ss -Htn state established "dport = :$1" |
	    awk '$1 > 0' | grep -c .)" -ge "$2" ]
}
