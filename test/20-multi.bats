#!/usr/bin/env bats
# multi: many peers in one process, a relay session each.
# shellcheck disable=SC2030,SC2031 # run's output, read in the same test

load helpers

# peers under valgrind: a tenth
N=1000
[ -z "${VG_LOGS:-}" ] || N=100

# fds PID: how many descriptors PID holds.
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# in_quarantine NAME: how many ended sessions' UDP ports NAME holds now
# (SIGUSR1: its counters; the last such line)
in_quarantine() {
	local n
	n=$(grep -c 'in quarantine' "$TMP/$1.err")
	kill -USR1 "$(child_of "$1")"
	eventually 10 said "$1" 'in quarantine' $((n + 1)) >&2
	sed -n 's/.*multi: \([0-9]*\) ended sessions. UDP ports in quarantine.*/\1/p' \
	    "$TMP/$1.err" | tail -n 1
}

# sessions_are NAME N: NAME's -v log says N sessions ended.
sessions_ended() { [ "$(grep -c 'session ended' "$TMP/$1.err")" -ge "$2" ]; }

@test "multi: options; bad combinations exit 2" {
	bad tcp-listen:0,multi,fork udp:127.0.0.1:9 "options fork and multi exclude each other"
	bad tcp-listen:0,max-peers=5 udp:127.0.0.1:9 "option max-peers needs multi or mux"
	bad tcp-listen:0,multi,max-peers=0 udp:127.0.0.1:9 "option max-peers=0: too small"
	bad tcp:127.0.0.1:5,multi udp:127.0.0.1:9 "option multi does not apply"
	bad tcp-listen:0,multi tun: "opened once per peer"
	bad tcp-listen:0,multi stdio "opened once per peer"
	bad udp-listen:0,multi tcp-listen:0 "opened once per peer"
	bad tcp-listen:0,multi udp-listen:0,fork "fork or multi on one address only"
}

@test "multi: the other address's name is looked up once, not per session (the loop never waits on DNS)" {
	need_cmd strace
	echo_peer e tcp
	bg r strace -f -qq -e trace=openat -o "$TMP/trace" \
	    "$DGRELAY" -v -S udp-listen:127.0.0.1:0,multi tcp:localhost:"$(port e)"
	wait_for "$TMP/r.err" 'listening on' 30
	run timeout 120 "$PEER" burst -t 60 udp 20 127.0.0.1 "$(port r)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 20 answered"* ]]
	stop r
	grep -q 'multi: 20 sessions served' "$TMP/r.err"
	# the resolver reads /etc/hosts once per lookup: one, at the start
	[ "$(grep -c '"/etc/hosts"' "$TMP/trace")" -eq 1 ]
}

# burst_through tcp|udp: N peers at once through PROTO-listen,multi to a
# UDP echo, each its own datagram back, in one process; -S sums them.
burst_through() {
	echo_peer e udp
	relay r -S "$1-listen:127.0.0.1:0,multi" udp:127.0.0.1:"$(port e)"
	run timeout 120 "$PEER" burst -t 60 "$1" "$N" 127.0.0.1 "$(port r)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok $N answered"* ]]
	children_are "$(child_of r)" 0
	stop r
	[ "$status_of" -eq 0 ]
	grep -q "multi: $N sessions served" "$TMP/r.err"
	grep -q "1>2: $N datagrams, $((N * 8)) bytes" "$TMP/r.err"
	grep -q "2>1: $N datagrams, $((N * 8)) bytes" "$TMP/r.err"
}

@test "multi: 1000 TCP peers at once, one process, each gets its own datagram back" {
	burst_through tcp
}

@test "multi: 1000 UDP peers at once, each answered on its own port" {
	burst_through udp
}

@test "multi: byte for byte, sizes 0 to 65507, TCP and UDP peers side by side" {
	echo_peer e udp
	relay t tcp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	relay u udp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	timeout 60 "$PEER" ping -n 300 -m 0 -M 65507 tcp 127.0.0.1 "$(port t)" \
	    >"$TMP/p1" &
	p1=$!
	timeout 60 "$PEER" ping -n 300 -m 0 -M 65507 -S 7 udp 127.0.0.1 \
	    "$(port u)" >"$TMP/p2" &
	p2=$!
	timeout 60 "$PEER" ping -n 300 -L -m 0 -M 65507 -S 9 tcp 127.0.0.1 \
	    "$(port t)" >"$TMP/p3" &
	p3=$!
	wait "$p1"
	wait "$p2"
	wait "$p3"
	grep -q '^ok 300 datagrams' "$TMP/p1"
	grep -q '^ok 300 datagrams' "$TMP/p2"
	grep -q '^ok 300 datagrams' "$TMP/p3"
}

@test "multi: a stalled peer (reads nothing) does not slow the others" {
	echo_peer e udp
	relay r -s 8000 tcp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	# this peer sends 4,000 frames of 8,000 bytes and never reads its
	# echoes: its session's way back fills and waits
	exec {fd}<>"/dev/tcp/127.0.0.1/$(port r)"
	pay=$(printf '5a%.0s' $(seq 8000))
	for i in $(seq 40); do frames "$pay"; done >"$TMP/f40"
	for i in $(seq 100); do cat "$TMP/f40"; done >&"$fd"
	eventually 10 stalled "$(port r)"
	# meanwhile another peer's datagrams all come back
	run timeout 60 "$PEER" ping -n 500 -M 8000 tcp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 500 datagrams"* ]]
	# the pinger's session ended with it; the stalled one goes on
	eventually 10 sessions_ended r 1
	barrier r
	[ "$(grep -c 'session ended' "$TMP/r.err")" -eq 1 ]
	stalled "$(port r)"
	exec {fd}>&-
}
# stalled PORT: our end of a connection to PORT holds 100,000 unread bytes
stalled() {
	[ "$(ss -Htn state established "dport = :$1" |
	    awk '{ if ($1 > m) m = $1 } END { print m + 0 }')" -gt 100000 ]
}

@test "multi: max-peers; stream peers beyond it wait in the backlog, then are served" {
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,multi,max-peers=2 udp:127.0.0.1:"$(port e)"
	exec {a}<>"/dev/tcp/127.0.0.1/$(port r)"
	exec {b}<>"/dev/tcp/127.0.0.1/$(port r)"
	wait_for "$TMP/r.err" 'connection from .*' 10
	eventually 10 two_sessions
	exec {c}<>"/dev/tcp/127.0.0.1/$(port r)"
	eventually 10 accept_queue "$(port r)" 1
	# c's datagram waits with it; once a leaves, c is served
	frames 0c0c >&"$c"
	exec {a}>&-
	[ "$(timeout 10 head -c 4 <&"$c" | od -An -tx1 | tr -d ' \n')" = 00020c0c ]
	exec {b}>&- {c}>&-
}
two_sessions() { [ "$(grep -c 'connection from' "$TMP/r.err")" -eq 2 ]; }

@test "multi: max-peers on udp; datagrams of new peers beyond it are dropped and counted" {
	echo_peer e udp
	relay r -S udp-listen:127.0.0.1:0,multi,max-peers=1 udp:127.0.0.1:"$(port e)"
	run timeout 30 "$PEER" ping -n 5 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	run timeout 30 "$PEER" send 127.0.0.1 "$(port r)" 01 02 03
	[ "$status" -eq 0 ]
	stats_until r 'multi: 1 sessions served, 1 running, 3 datagrams from new peers dropped'
	grep -q 'max-peers=1 reached: datagrams of new peers dropped' "$TMP/r.err"
}

@test "multi: -t ends idle sessions only; a peer's end ends its session only" {
	echo_peer e udp
	relay r -t 1 tcp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	exec {idle}<>"/dev/tcp/127.0.0.1/$(port r)"
	exec {gone}<>"/dev/tcp/127.0.0.1/$(port r)"
	frames 0101 >&"$gone"
	[ "$(timeout 10 head -c 4 <&"$gone" | od -An -tx1 | tr -d ' \n')" = 00020101 ]
	exec {gone}>&-
	# an active peer, pinging every 200 ms for 4 s, outlives -t 1
	timeout 30 "$PEER" ping -n 20 -i 200 tcp 127.0.0.1 "$(port r)" \
	    >"$TMP/p" &
	p=$!
	eventually 10 sessions_ended r 2
	wait "$p"
	grep -q '^ok 20 datagrams' "$TMP/p"
	# the idle one is closed by us: its read sees the end
	[ "$(timeout 10 head -c 1 <&"$idle" | wc -c)" -eq 0 ]
	exec {idle}>&-
	kill -0 "$(child_of r)"
}

@test "multi: SIGTERM ends every session, counters summed with -S" {
	echo_peer e udp
	relay r -S tcp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	exec {a}<>"/dev/tcp/127.0.0.1/$(port r)"
	exec {b}<>"/dev/tcp/127.0.0.1/$(port r)"
	frames 01 >&"$a"
	frames 0202 >&"$b"
	[ "$(timeout 10 head -c 3 <&"$a" | od -An -tx1 | tr -d ' \n')" = 000101 ]
	[ "$(timeout 10 head -c 4 <&"$b" | od -An -tx1 | tr -d ' \n')" = 00020202 ]
	stop r
	[ "$status_of" -eq 0 ]
	grep -q 'multi: 2 sessions served, 0 running' "$TMP/r.err"
	grep -q '1>2: 2 datagrams, 3 bytes' "$TMP/r.err"
	grep -q '2>1: 2 datagrams, 3 bytes' "$TMP/r.err"
	[ "$(timeout 10 head -c 1 <&"$a" | wc -c)" -eq 0 ]
	exec {a}>&- {b}>&-
}

@test "multi: the other address is connected without blocking; a refused one ends its session only" {
	echo_peer e tcp
	relay r udp-listen:127.0.0.1:0,multi tcp:127.0.0.1:"$(port e)"
	run timeout 30 "$PEER" ping -n 50 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	p=$(free_port tcp)
	relay q udp-listen:127.0.0.1:0,multi "tcp:127.0.0.1:$p"
	run timeout 10 "$PEER" send 127.0.0.1 "$(port q)" 01
	# the message names the session's peer's other address, and where
	# the attempt went
	wait_for "$TMP/q.err" "tcp:127.0.0.1:$p: connect to 127.0.0.1 $p: Connection refused"
	kill -0 "$(child_of q)"
}

@test "multi: no descriptor or memory growth over 10,000 sessions" {
	not_under_valgrind "10,000 sessions"
	[[ "$DGRELAY" != */san/* ]] ||
	    skip "ASan keeps freed memory in quarantine: its figures grow"
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	kid=$(child_of r)
	run timeout 60 "$PEER" burst tcp 1000 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	eventually 20 sessions_ended r 1000
	# ended sessions' UDP ports are held a while (quarantine): not a leak
	q0=$(in_quarantine r)
	f0=$(($(fds "$kid") - q0))
	m0=$(awk '/^Pss:/ {print $2}' "/proc/$kid/smaps_rollup")
	for i in $(seq 9); do
		run timeout 60 "$PEER" burst tcp 1000 127.0.0.1 "$(port r)"
		[ "$status" -eq 0 ]
	done
	eventually 30 sessions_ended r 10000
	q1=$(in_quarantine r)
	f1=$(($(fds "$kid") - q1))
	m1=$(awk '/^Pss:/ {print $2}' "/proc/$kid/smaps_rollup")
	echo "fds $f0 -> $f1 (and $q0 -> $q1 in quarantine), PSS $m0 -> $m1 kB"
	[ "$q1" -le 4096 ]
	[ "$f1" -eq "$f0" ]
	# a port in quarantine costs its entry (and the heap around it)
	[ "$m1" -le $((m0 + 1024 + q1 - q0)) ]
}

@test "multi: a DNS forwarder, udp-listen,multi to dnsmasq over TCP: every query answered" {
	need_cmd dnsmasq dnsmasq-base
	need_cmd dig bind9-dnsutils
	p=$(free_port tcp)
	for i in $(seq 50); do echo "10.9.0.$i h$i.test"; done >"$TMP/hosts"
	bg dns dnsmasq -k --no-resolv --no-hosts --addn-hosts="$TMP/hosts" \
	    --listen-address=127.0.0.1 --port="$p" --bind-interfaces \
	    --log-facility="$TMP/dns.log" --user=root --pid-file=
	eventually 10 listening_tcp "$p"
	relay r -S -t 1 udp-listen:127.0.0.1:0,multi "tcp:127.0.0.1:$p"
	# waves of 10 (dnsmasq serves 20 TCP connections at once, and each
	# session holds one until -t ends it): no query waits its turn; each
	# client from a port of its own, below the ephemeral range (a port a
	# later client reused within -t would find the earlier one's session)
	p0=$((20000 + ($$ % 200) * 50))
	for w in 0 1 2 3 4; do
		digs=()
		for i in $(seq $((w * 10 + 1)) $((w * 10 + 10))); do
			timeout 10 dig +notcp +tries=1 +time=5 \
			    -b "127.0.0.1#$((p0 + i))" -p "$(port r)" \
			    @127.0.0.1 "h$i.test" A +short >"$TMP/dig$i" &
			digs+=("$!")
		done
		wait "${digs[@]}"
	done
	for i in $(seq 50); do
		[ "$(cat "$TMP/dig$i")" = "10.9.0.$i" ] ||
		    { echo "h$i.test: '$(cat "$TMP/dig$i")'"; false; }
	done
	# -t 1 ends each session, and dnsmasq's side with it
	eventually 10 sessions_ended r 50
	kill -0 "$(child_of r)"
	stats_until r 'multi: 50 sessions served, 0 running'
}

@test "multi: the resolver closing one session's connection ends that session only" {
	need_cmd dnsmasq dnsmasq-base
	need_cmd dig bind9-dnsutils
	p=$(free_port tcp)
	echo "10.9.0.1 a.test" >"$TMP/hosts"
	bg dns dnsmasq -k --no-resolv --no-hosts --addn-hosts="$TMP/hosts" \
	    --listen-address=127.0.0.1 --port="$p" --bind-interfaces \
	    --log-facility="$TMP/dns.log" --user=root --pid-file=
	eventually 10 listening_tcp "$p"
	relay r -t 30 udp-listen:127.0.0.1:0,multi "tcp:127.0.0.1:$p"
	# two clients, each from a port of its own: a session and a TCP
	# connection (a dnsmasq child) each
	c1=$(free_port udp)
	c2=$(free_port udp)
	ask() {
		timeout 10 dig +notcp +tries=1 +time=5 -b "127.0.0.1#$1" \
		    -p "$(port r)" @127.0.0.1 a.test A +short
	}
	[ "$(ask "$c1")" = 10.9.0.1 ]
	[ "$(ask "$c2")" = 10.9.0.1 ]
	dns=$(pgrep -x dnsmasq -P "$(pid_of dns)")
	eventually 10 two_kids "$dns"
	# one of dnsmasq's TCP children goes (it holds TERM): its
	# connection closes
	kill -KILL "$(pgrep -P "$dns" | head -n 1)"
	eventually 10 sessions_ended r 1
	barrier r
	[ "$(grep -c 'session ended' "$TMP/r.err")" -eq 1 ]
	# the other session, and the relay, go on; the client whose session
	# ended gets a new one with its next query
	[ "$(ask "$c1")" = 10.9.0.1 ]
	[ "$(ask "$c2")" = 10.9.0.1 ]
	[ "$(grep -c 'peer from' "$TMP/r.err")" -eq 3 ]
}
two_kids() { [ "$(pgrep -P "$1" | grep -c .)" -eq 2 ]; }

@test "multi: out of descriptors: a session that cannot open its socket fails alone; accept backs off, no spin" {
	not_under_valgrind "valgrind itself needs descriptors"
	p=$(free_port udp)
	# 0-2, epoll (3), the listener (4), an accepted connection (5): no
	# room for its UDP socket
	bg_fds r 6 "$DGRELAY" -v tcp-listen:127.0.0.1:0,multi \
	    udp:127.0.0.1:"$p"
	wait_for "$TMP/r.err" 'listening on'
	exec {a}<>"/dev/tcp/127.0.0.1/$(port r)"
	# the peer sees the end at once: its session could not be made
	[ "$(timeout 10 head -c 1 <&"$a" | wc -c)" -eq 0 ]
	exec {a}>&-
	wait_for "$TMP/r.err" "udp:127.0.0.1:$p: socket: Too many open files"
	kill -0 "$(pid_of r)"
	stop r
	[ "$status_of" -eq 0 ]
	# no room even to accept: it says so, waits a second, does not spin
	accept_backs_off multi "$p"
}

@test "multi: peers are found by SipHash-2-4 under a random key (its reference vectors)" {
	run "$BATS_TEST_DIRNAME/../bench/ptabbench" -t
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "6 of 6 vectors right" ]
}

@test "multi: -U: the end of a peer that is never read is seen; 300 that connect and close leave no session" {
	echo_peer e udp
	relay r -S -U tcp-listen:127.0.0.1:0,multi "udp:127.0.0.1:$(port e)"
	for i in $(seq 300); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$(port r)"
		exec {fd}>&-
	done
	stats_until r 'multi: 300 sessions served, 0 running' 30
	# what is left: the listener, and the ended sessions' UDP ports in
	# quarantine for a while
	[ $(($(fds "$(child_of r)") - $(in_quarantine r))) -lt 20 ]
}

@test "multi: a crowd of new connections waits its turn: a running session is served after a batch, not after all" {
	echo_peer e udp
	relay r -vv tcp-listen:127.0.0.1:0,multi "udp:127.0.0.1:$(port e)"
	exec {fd}<>"/dev/tcp/127.0.0.1/$(port r)"
	eventually 10 said r 'connection from' 1
	kid=$(child_of r)
	# while dgrelay is stopped: 1,000 connections in its backlog, then a
	# datagram from the running session; both are ready when it goes on
	kill -STOP "$kid"
	bg crowd "$PEER" siege -q -t 120 1000 0 127.0.0.1 "$(port r)"
	wait_for "$TMP/crowd.out" '^holding' 60
	frames 0a0b0c >&"$fd"
	kill -CONT "$kid"
	[ "$(timeout 10 head -c 5 <&"$fd" | od -An -tx1 | tr -d ' \n')" = 00030a0b0c ]
	eventually 30 said r 'connection from' 1001
	# the session's datagram went on after a batch of the crowd (64 a
	# turn), not after all of it
	before=$(sed -n '/1>2: 3 bytes/q; /connection from/p' "$TMP/r.err" | wc -l)
	echo "connections accepted before the running session's datagram: $before"
	[ "$before" -lt 500 ]
	exec {fd}>&-
}

@test "multi: an ended session's UDP port is kept from reuse: a late reply reaches no other peer" {
	need_root
	need_cmd ip iproute2
	two_netns
	# the relay's host has 16 local ports: an ended session's port is
	# soon another's (its peers are on the other host)
	ip netns exec "$NA" sysctl -q -w net.ipv4.ip_local_port_range="40000 40015"
	# a backend that answers 1.5 s late; sessions idle for 1 s end
	bg e ip netns exec "$NA" "$PEER" echo -w 1500 udp
	wait_for "$TMP/e.out" '^port'
	bg r ip netns exec "$NA" "$DGRELAY" -v -S -t 1 \
	    udp-listen:10.201.0.1:0,multi "udp:127.0.0.1:$(port e)"
	wait_for "$TMP/r.err" 'listening on'
	# waves of peers, each its own datagram: every answer comes after
	# its session ended; none may reach another peer
	for w in 1 2 3 4 5 6; do
		bg "w$w" ip netns exec "$NB" "$PEER" burst -t 3 udp 4 10.201.0.1 \
		    "$(port r)"
		sleep 0.4
	done
	for w in 1 2 3 4 5 6; do
		wait_exit "w$w" 30 || true
	done
	cat "$TMP"/w*.err
	[ "$(cat "$TMP"/w*.err | grep -c "someone else's answer")" -eq 0 ]
	stats_until r 'multi: [0-9]* ended sessions. UDP ports in quarantine, [1-9][0-9]* late replies to them dropped' 20
}
teardown() {
	kill_bg
	del_netns
}
