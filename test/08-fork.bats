#!/usr/bin/env bats
# fork and max-children: a child relay per peer.

load helpers

# kids NAME: the pids of the children of NAME's dgrelay (timeout's child).
kids() {
	pgrep -P "$(child_of "$1")" || true
}

# fds NAME: how many descriptors NAME's dgrelay has open.
fds() {
	find "/proc/$(child_of "$1")/fd" -mindepth 1 -maxdepth 1 | wc -l
}

# nkids NAME N: NAME's dgrelay has N children.
nkids() { [ "$(kids "$1" | grep -c .)" -eq "$2" ]; }

# no_kids NAME: wait until NAME's dgrelay has no children.
no_kids() {
	eventually 10 nkids "$1" 0 || { echo "children left: $(kids "$1")" >&2; return 1; }
}

# clients N PREFIX CMD...: run N copies of CMD (a dgpeer ping; {} is the
# client number, used as seed) at once; wait for all; all must say ok.
clients() {
	local n=$1 prefix=$2 i pids=
	shift 2
	for i in $(seq "$n"); do
		timeout "$LIFE" "${@//\{\}/$i}" >"$TMP/$prefix$i.out" 2>&1 3>&- &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids || true
	for i in $(seq "$n"); do
		grep -q '^ok ' "$TMP/$prefix$i.out" || {
			echo "client $i: $(cat "$TMP/$prefix$i.out")" >&2
			return 1
		}
	done
}

@test "100 concurrent TCP clients through tcp-listen,fork, each checked; no child or descriptor left" {
	not_under_valgrind "100 clients at once, each a valgrind process"
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	before=$(fds r)
	clients 100 c "$PEER" ping -n 100 -w 4 -M 1200 -S {} tcp 127.0.0.1 "$(port r)"
	no_kids r
	[ "$(fds r)" -eq "$before" ]
	[ "$(grep -c ': connection from 127.0.0.1 ' "$TMP/r.err")" -eq 100 ]
	[ "$(grep -cE '^dgrelay: tcp-listen:[^ ]*: child [0-9]+ for 127\.0\.0\.1 [0-9]+: exit 0$' "$TMP/r.err")" -eq 100 ]
}

@test "50 UDP peers through udp-listen,fork: each gets its own replies, first datagram too" {
	not_under_valgrind "50 peers at once, each a valgrind process"
	echo_peer e tcp
	relay r udp-listen:127.0.0.1:0,fork,rcvbuf=4194304 tcp:127.0.0.1:"$(port e)"
	before=$(fds r)
	# each ping checks its own seed's sequence from datagram 0: a reply
	# from another peer's stream, or a lost first datagram, fails it.
	# Each client has its own source address: a port reused by a later
	# client would rightly be the same peer as before.
	clients 50 u "$PEER" ping -n 200 -m 0 -M 4000 -S {} \
	    udpfrom 127.0.1.{} 0 127.0.0.1 "$(port r)"
	# exactly one child per peer
	[ "$(grep -c ': peer 127.0.1.[0-9]* ' "$TMP/r.err")" -eq 50 ]
	[ "$(fds r)" -eq "$before" ]
	stop r
	[ "$status_of" -eq 0 ]
	grep -q 'fork: 50 children served, 0 running, 0 datagrams from new peers dropped, 0 late' "$TMP/r.err"
	# every child's counters: 200 datagrams each way, none from others
	# (on failure: the lines that are not so)
	grep -E '^dgrelay\[[0-9]+\]: 1>2: ' "$TMP/r.err" | grep -vE ': 1>2: 200 datagrams, .* 0 other peer, 0 unsent, ' || :
	[ "$(grep -cE '^dgrelay\[[0-9]+\]: 1>2: 200 datagrams, .* 0 other peer, 0 unsent, 0 empty dropped, 0 dropped while down, 0 stalled, 0 slow frames, [0-9]* dropped by the kernel$' "$TMP/r.err")" -eq 50 ]
}

@test "unix-listen,fork and unix-seqpacket-listen,fork serve clients at once" {
	echo_peer e udp
	relay s unix-listen:"$TMP/s",fork udp:127.0.0.1:"$(port e)"
	relay q unix-seqpacket-listen:"$TMP/q",fork udp:127.0.0.1:"$(port e)"
	clients 5 s "$PEER" ping -n 200 -M 8000 -S {} unix "$TMP/s"
	clients 5 q "$PEER" ping -n 200 -m 1 -M 8000 -S {} seqpacket "$TMP/q"
	stop s
	[ ! -e "$TMP/s" ]	# the parent removes its socket; children do not
}

@test "fork on an inherited listening socket (socket activation)" {
	need_cmd systemd-socket-activate systemd
	echo_peer e udp
	p=$(free_port tcp)
	bg r systemd-socket-activate -l 127.0.0.1:"$p" \
	    "$DGRELAY" -v fd:3,fork udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'Listening on'
	clients 5 c "$PEER" ping -n 100 -S {} tcp 127.0.0.1 "$p"
}

@test "max-children on a stream listener: further peers wait, then are served" {
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,fork,max-children=2 udp:127.0.0.1:"$(port e)"
	p=$(port r)
	bg a "$PEER" ping -n 10 -i 200 -S 1 tcp 127.0.0.1 "$p"
	bg b "$PEER" ping -n 10 -i 200 -S 2 tcp 127.0.0.1 "$p"
	wait_for "$TMP/r.err" 'child [0-9]+: connection from.*' 5
	eventually 5 nkids r 2
	# c waits for a and b (2 s each, far longer on a busy machine under
	# ASan): its own deadline and ours leave them room
	bg c "$PEER" ping -n 1 -t 50 -S 3 tcp 127.0.0.1 "$p"
	# c is connected, waiting in the backlog, not served while two run
	eventually 5 accept_queue "$p" 1
	nkids r 2
	[ ! -s "$TMP/c.out" ]
	wait_exit c 60
	cat "$TMP/c.out" "$TMP/c.err"
	[ "$status_of" -eq 0 ]
	grep -q '^ok 1 datagrams' "$TMP/c.out"
	wait_exit a 20
	grep -q '^ok 10 datagrams' "$TMP/a.out"
	[ "$(grep -c ': connection from' "$TMP/r.err")" -eq 3 ]
}

@test "a new UDP peer that floods from its first datagram: the parent's memory stays bounded, the child gets the rest in order" {
	not_under_valgrind "a flood: needs full speed"
	BENCH=$BATS_TEST_DIRNAME/../bench/dgbench
	bg rc "$BENCH" recv -t 2000 -T 40 -s 1200 127.0.0.1 0
	wait_for "$TMP/rc.out" '^port'
	relay r -S -t 1 udp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port rc)"
	parent=$(child_of r)
	rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$parent/status")
	bg g "$BENCH" gen -n 30000 -s 1200 127.0.0.1 "$(port r)"
	max=0
	for n in $(seq 20); do
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$parent/status")
		[ "$rss" -gt "$max" ] && max=$rss
		sleep 0.05
	done
	wait_exit g 20
	wait_exit rc 40
	wait_for "$TMP/r.err" 'child [0-9]+ for 127.0.0.1 [0-9]+: exit 0' 20
	cat "$TMP/rc.out"
	grep -E '^dgrelay(\[[0-9]*\])?: (1>2|fork)' "$TMP/r.err"
	echo "parent RSS kB: $rss0 before, at most $max during"
	got=$(awk '/^recv/ { print $2 }' "$TMP/rc.out")
	[ "$got" -gt 0 ]
	grep -q "^dgrelay\[[0-9]*\]: 1>2: $got datagrams, $((got * 1200)) bytes, 0 oversize, 0 send errors" "$TMP/r.err"
	grep -q 'corrupt 0 merged 0 truncated 0 reordered 0' "$TMP/rc.out"
	# the hand-over holds -b datagrams, not the flood
	[ "$max" -lt $((rss0 + 4096)) ]
}

@test "max-children on udp-listen: new peers' datagrams are dropped and counted" {
	echo_peer e tcp
	relay r -S udp-listen:127.0.0.1:0,fork,max-children=1 tcp:127.0.0.1:"$(port e)"
	p=$(port r)
	bg a "$PEER" ping -n 15 -i 200 -S 1 udp 127.0.0.1 "$p"
	wait_for "$TMP/r.err" ': peer 127.0.0.1'
	"$PEER" send -i 50 127.0.0.1 "$p" 01 02 03
	wait_exit a 20
	grep -q '^ok 15 datagrams' "$TMP/a.out"
	grep -q 'max-children 1 reached: [0-9]* datagrams from new peers dropped' "$TMP/r.err"
	stop r
	grep -q 'fork: 1 children served, 0 running, 3 datagrams from new peers dropped' "$TMP/r.err"
}

@test "-t ends idle children, not busy ones" {
	need_cmd socat
	echo_peer e udp
	relay r -t 1 tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	p=$(port r)
	bg idle socat -u TCP:127.0.0.1:"$p" -
	# busy for about 2.4 s, a datagram every 200 ms
	run "$PEER" ping -n 12 -i 200 tcp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	# the idle client's child ended after 1 s: socat saw the end
	wait_exit idle 5
	[ "$status_of" -eq 0 ]
	no_kids r
	# one child ended idle; the busy one ended with its client's end
	# the idle line names the session: the side with a peer
	[ "$(grep -cE '^dgrelay\[[0-9]+\]: tcp-listen:[^ ]*: 127\.0\.0\.1 [0-9]+: idle for 1000 ms: ending$' "$TMP/r.err")" -eq 1 ]
	[ "$(grep -cE '^dgrelay\[[0-9]+\]: eof on tcp-listen' "$TMP/r.err")" -eq 1 ]
}

@test "ICMP port unreachable in a child does not end it" {
	p=$(free_port udp)
	relay r -S udp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$p"
	bg a "$PEER" send -i 100 127.0.0.1 "$(port r)" 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e
	wait_for "$TMP/r.err" ': peer 127.0.0.1'
	sleep 0.5			# refused, several times
	bg d "$PEER" dump -p "$p" -n 1
	wait_exit d 10
	[ "$(sed -n 2p "$TMP/d.out" | cut -c1-2)" = "1 " ]
	wait_exit a 10
	[ "$(kids r | wc -l)" -eq 1 ]	# still relaying
	stop r
	grep -qE '^dgrelay\[[0-9]+\]: 1>2: 30 datagrams, .* [1-9][0-9]* send errors' "$TMP/r.err"
}

@test "SIGTERM to the parent ends its children; no process is left" {
	need_cmd socat
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	for i in 1 2 3; do
		bg s$i socat -u TCP:127.0.0.1:"$(port r)" -
	done
	eventually 5 nkids r 3
	pids=$(kids r)
	[ "$(echo "$pids" | wc -l)" -eq 3 ]
	stop r
	[ "$status_of" -eq 0 ]
	for pid in $pids; do
		run kill -0 "$pid"
		[ "$status" -ne 0 ]	# the child is gone
	done
	for i in 1 2 3; do
		wait_exit s$i 5
	done
}

@test "fork: a second SIGTERM (a shell or timeout(1) signals the whole group) keeps the children's grace: each ends its command and exits 0" {
	not_under_valgrind "five children ending under memcheck within a 5 s grace"
	need_cmd socat
	# each child takes 2.5 s to end: its command ignores SIGTERM, so it
	# gets SIGKILL after its own grace (exec:)
	relay r -S tcp-listen:127.0.0.1:0,fork 'exec:trap "" TERM; cat; sleep 30'
	for i in 1 2 3 4 5; do
		bg s$i socat -u TCP:127.0.0.1:"$(port r)" -
	done
	eventually 10 nkids r 5
	parent=$(child_of r)
	# the parent twice: it ends its children, and is told again while
	# they end
	kill -TERM "$parent"
	sleep 0.2
	kill -TERM "$parent"
	wait_exit r 30
	[ "$status_of" -eq 0 ]
	# every child ended by itself, its command ended (none was killed)
	cat "$TMP/r.err"
	[ "$(grep -cE '^dgrelay\[[0-9]+\]: 1>2: ' "$TMP/r.err")" -eq 5 ]
	[ "$(grep -cE ': child [0-9]+ for 127\.0\.0\.1 [0-9]+: exit 0$' "$TMP/r.err")" -eq 5 ]
}

@test "a child that crashes does not take the parent down" {
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	bg a "$PEER" ping -n 50 -i 100 tcp 127.0.0.1 "$(port r)"
	eventually 5 nkids r 1
	# SIGABRT, as abort(3) would: sanitizers turn a SIGSEGV into exit 1
	kill -ABRT "$(kids r)"
	wait_for "$TMP/r.err" 'child [0-9]+ for 127.0.0.1 [0-9]+: killed by signal 6'
	run "$PEER" ping -n 20 tcp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
}

@test "fork: bad combinations exit 2" {
	run --separate-stderr timeout 30 "$DGRELAY" tcp-listen:0,fork udp-listen:0,fork
	[ "$status" -eq 2 ]
	# a rule between the two addresses names both
	[ "$stderr" = "dgrelay: tcp-listen:0,fork udp-listen:0,fork: fork or multi on one address only" ]
	run --separate-stderr timeout 30 "$DGRELAY" tcp-listen:0,max-children=3 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"option max-children needs fork" ]]
	run --separate-stderr timeout 30 "$DGRELAY" udp:127.0.0.1:5,fork stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"option fork does not apply to this address (only to "* ]]
	run --separate-stderr timeout 30 "$DGRELAY" tcp-listen:0,fork,max-children=0 stdio
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"option max-children=0: too small" ]]
	run --separate-stderr timeout 30 "$DGRELAY" fd:0,fork stdio </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"option fork needs a listening stream socket" ]]
}

@test "fork: a burst of 300 TCP peers waits in the backlog at once, and every one is served" {
	not_under_valgrind "300 children under valgrind"
	echo_peer e udp
	relay r tcp-listen:127.0.0.1:0,fork,max-children=1000 udp:127.0.0.1:"$(port e)"
	parent=$(child_of r)
	# the parent stopped: every connection must fit in the backlog
	# (listen(16) left the rest retrying their SYNs, a second each)
	kill -STOP "$parent"
	bg b "$PEER" burst -t 30 tcp 300 127.0.0.1 "$(port r)"
	wait_for "$TMP/b.out" '^sent 300$' 10
	accept_queue "$(port r)" 300
	kill -CONT "$parent"
	wait_exit b 60
	[ "$status_of" -eq 0 ]
	grep -qx 'ok 300 answered' "$TMP/b.out"
	[ "$(grep -c 'child [0-9]*: connection from' "$TMP/r.err")" -eq 300 ]
}

@test "fork: 300 new UDP peers at once: none dropped, each answered, byte for byte" {
	not_under_valgrind "300 children under valgrind"
	echo_peer e udp
	relay r -S udp-listen:127.0.0.1:0,fork,max-children=1000 udp:127.0.0.1:"$(port e)"
	parent=$(child_of r)
	# all 300 wait on the listener for one round (256 a round was the cap)
	kill -STOP "$parent"
	bg b "$PEER" burst -t 30 udp 300 127.0.0.1 "$(port r)"
	wait_for "$TMP/b.out" '^sent 300$' 10
	kill -CONT "$parent"
	wait_exit b 60
	[ "$status_of" -eq 0 ]
	grep -qx 'ok 300 answered' "$TMP/b.out"
	stop r
	grep -q 'fork: 300 children served, 0 running, 0 datagrams from new peers dropped, 0 late' "$TMP/r.err"
}

@test "fork: 1,000 new UDP peers at once: the listener's deep receive buffer holds them all" {
	not_under_valgrind "1,000 children under valgrind"
	echo_peer e udp
	relay r -S udp-listen:127.0.0.1:0,fork,max-children=2000 udp:127.0.0.1:"$(port e)"
	run timeout 300 "$PEER" burst -t 120 udp 1000 127.0.0.1 "$(port r)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 1000 answered"* ]]
	stop r
	grep -q 'fork: 1000 children served, 0 running, 0 datagrams from new peers dropped' "$TMP/r.err"
}

@test "dgrelay raises its descriptor soft limit to the hard limit" {
	not_under_valgrind "valgrind keeps descriptors of its own below the limit"
	echo_peer e udp
	bg r bash -c "ulimit -Sn 256; ulimit -Hn 4096; exec '$DGRELAY' -v tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:$(port e)"
	wait_for "$TMP/r.err" 'listening on'
	kid=$(child_of r)
	grep -E '^Max open files +4096 +4096 ' "/proc/$kid/limits"
}
