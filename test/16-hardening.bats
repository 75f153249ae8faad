#!/usr/bin/env bats
# Defects an adversarial pass found, each with the test that failed
# before its fix: -Z and exec:, empty datagrams toward seqpacket, -t and
# slow peers, default limits, what used to vanish without a count.

load helpers

# ids_caps PID: "UID GID CAPEFF" of PID (real ids).
ids_caps() {
	awk '/^Uid:/{u=$2} /^Gid:/{g=$2} /^CapEff:/{c=$2} END{print u, g, c}' \
	    "/proc/$1/status"
}

@test "-Z reaches an exec: command: it runs as that user, and SIGTERM ends both" {
	need_root
	relay r -Z nobody udp-listen:127.0.0.1:0 'exec:sleep 30'
	kid=$(child_of r)
	eventually 5 as_nobody "$kid"
	cmd=$(eventually 5 pgrep -P "$kid")
	eventually 5 as_nobody "$cmd"
	[ "$(ids_caps "$cmd")" = "65534 65534 0000000000000000" ]
	grep -q '^Groups:[[:space:]]*65534[[:space:]]*$' "/proc/$cmd/status"
	# the unprivileged relay can end its command: no hang (the signal
	# to dgrelay alone: timeout would signal its whole group)
	kill -TERM "$kid"
	wait_exit r 10
	[ "$status_of" -eq 0 ]
	gone "$cmd"
	grep -q 'exec:sleep 30: killed by signal 15' "$TMP/r.err"
}

@test "an empty datagram toward a seqpacket chain is dropped and counted; the chain stays up" {
	bg d "$PEER" dump -n 3
	wait_for "$TMP/d.out" '^port'
	relay b -S unix-seqpacket-listen:"$TMP/s" udp:127.0.0.1:"$(port d)"
	relay a -S udp-listen:127.0.0.1:0 unix-seqpacket:"$TMP/s"
	"$PEER" send -i 50 127.0.0.1 "$(port a)" 01 - 0202 - 030303
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '1 01\n2 0202\n3 030303')" ]
	# the far relay did not take an empty message for the end
	kill -0 "$(pid_of b)"
	stop a
	grep -q '1>2: 3 datagrams, 6 bytes, .* 0 unsent, 2 empty dropped, 0 dropped while down, 0 stalled, 0 slow frames, [0-9]* dropped by the kernel$' "$TMP/a.err"
	wait_exit b		# a's end is the end of b's seqpacket source
	grep -q '1>2: 3 datagrams, 6 bytes, .* 0 unsent, 0 empty dropped, 0 dropped while down, 0 stalled, 0 slow frames, [0-9]* dropped by the kernel$' "$TMP/b.err"
}

@test "an empty datagram toward exec:...,seqpacket is dropped and counted" {
	bg d "$PEER" dump -n 2
	wait_for "$TMP/d.out" '^port'
	# the command is a relay of its own: seqpacket in, its end at 0 bytes
	relay a -S udp-listen:127.0.0.1:0 "exec:$DGRELAY fd:0 udp:127.0.0.1:$(port d),seqpacket"
	"$PEER" send -i 50 127.0.0.1 "$(port a)" 0a - 0b
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '1 0a\n1 0b')" ]
	stop a
	grep -q '1>2: 2 datagrams, 2 bytes, .* 1 empty dropped, 0 dropped while down, 0 stalled, 0 slow frames, [0-9]* dropped by the kernel$' "$TMP/a.err"
}

@test "datagrams after a seqpacket source's end in the same read are counted unsent" {
	bg d "$PEER" dump
	wait_for "$TMP/d.out" '^port'
	relay r -S unix-seqpacket-listen:"$TMP/s" udp:127.0.0.1:"$(port d)"
	kid=$(child_of r)
	kill -STOP "$kid"	# all four wait in its queue, for one read
	bg q "$PEER" sendseq "$TMP/s" 01 - 02 03
	wait_for "$TMP/q.out" '^sent 4'
	kill -CONT "$kid"
	wait_exit r
	[ "$status_of" -eq 0 ]
	grep -q '1>2: 1 datagrams, 1 bytes, 0 oversize, 0 send errors, 0 truncated, 0 other peer, 2 unsent' "$TMP/r.err"
}

@test "-t counts datagrams, not bytes: a peer trickling one frame's bytes is ended" {
	need_cmd socat
	relay r -S -t 1 tcp-listen:127.0.0.1:0 udp:127.0.0.1:9
	# a 65535-byte frame announced, then a byte every 0.2 s for 20 s
	bg c bash -c "{ printf '\\xff\\xff'; head -c 100 /dev/zero; } |
	    '$PEER' trickle -d 200000 | socat -u - TCP:127.0.0.1:$(port r)"
	wait_for "$TMP/r.err" 'connection from'
	wait_exit r 10
	[ "$status_of" -eq 0 ]
	grep -q 'idle for 1000 ms: ending' "$TMP/r.err"
	# the unfinished frame is counted, not lost silently
	grep -q '1>2: 0 datagrams, 0 bytes, 0 oversize, 0 send errors, 1 truncated' "$TMP/r.err"
}

@test "SIGTERM with part of a frame buffered: counted truncated" {
	bg d "$PEER" dump
	wait_for "$TMP/d.out" '^port'
	stdin_fifo
	bg_in r "$TMP/in" "$DGRELAY" -S stdio udp:127.0.0.1:"$(port d)"
	hold_fifo
	unhex 000101 >&5
	unhex 00050102 >&5
	ready r
	stats_until r '1>2: 1 datagrams'
	stop r
	[ "$status_of" -eq 0 ]
	grep -q '1>2: 1 datagrams, 1 bytes, 0 oversize, 0 send errors, 1 truncated' "$TMP/r.err"
}

@test "fork is bounded by default: 256 children, the 257th peer waits in the backlog" {
	not_under_valgrind "257 connections, 256 children"
	relay r tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:9
	grep -q 'at most 256 children at once (max-children=N)' "$TMP/r.err"
	p=$(port r)
	for i in $(seq 257); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$p"
		fds+=("$fd")
	done
	parent=$(child_of r)
	eventually 30 children_are "$parent" 256
	eventually 10 accept_queue "$p" 1
	children_are "$parent" 256
	for fd in "${fds[@]}"; do
		exec {fd}>&-
	done
}

@test "-U with udp-listen first (or -u with it second) is refused: it would never learn its peer" {
	bad -U udp-listen:0 udp:127.0.0.1:9 "udp-listen:0: never read with -U, so it never learns its peer"
	bad -u udp:127.0.0.1:9 udp-listen:0 "udp-listen:0: never read with -u, so it never learns its peer"
	# with fork each child is connected to its peer: allowed
	run --separate-stderr timeout 1 "$DGRELAY" -U udp-listen:127.0.0.1:0,fork udp:127.0.0.1:9
	[ "$status" -eq 124 ]
	[ -z "$stderr" ]
}

@test "oversize frames are skipped in big reads, not a few bytes at a time (-s 1 -b 1)" {
	need_cmd strace
	not_under_valgrind "strace on top of valgrind"
	"$PEER" gen -n 300 -m 65535 -M 65535 >"$TMP/big"
	run timeout 60 strace -f -c -e trace=read -o "$TMP/st" \
	    "$DGRELAY" -S -s 1 -b 1 stdio udp:127.0.0.1:9 <"$TMP/big"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1>2: 0 datagrams, 0 bytes, 300 oversize"* ]]
	reads=$(awk '$NF == "read" { print $4 }' "$TMP/st")
	echo "reads: $reads"
	[ "$reads" -lt 3000 ]
}

# queued_bytes PORT N: UDP PORT's receive queue holds N bytes or more.
queued_bytes() {
	[ "$(ss -Hunl "sport = :$1" | awk '{ print $2 }')" -ge "$2" ]
}

# pss_kb PID: proportional set size of PID, in kB.
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

@test "a UDP fork child does not copy the parent's hand-over buffers: its PSS is a TCP child's" {
	not_under_valgrind "memory figures of valgrind's own"
	[[ "$DGRELAY" != */san/* ]] || skip "ASan's shadow memory decides the figures"
	echo_peer e udp
	relay u udp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	parent=$(child_of u)
	# 100 new peers at once, each with a datagram to hand over; each
	# waits for its echo, so no two share a source port
	kill -STOP "$parent"
	pings=()
	for i in $(seq 100); do
		timeout 30 "$PEER" ping -n 1 -m 1000 -M 1000 -S "$i" udp \
		    127.0.0.1 "$(port u)" >/dev/null &
		pings+=("$!")
	done
	eventually 20 queued_bytes "$(port u)" 100000
	kill -CONT "$parent"
	for p in "${pings[@]}"; do
		wait "$p"	# every peer got its echo back
	done
	children_are "$parent" 100
	sum=0
	for k in $(pgrep -P "$parent"); do
		sum=$((sum + $(pss_kb "$k")))
	done
	udp=$((sum / 100))
	relay t tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	exec {fd}<>"/dev/tcp/127.0.0.1/$(port t)"
	tparent=$(child_of t)
	eventually 10 children_are "$tparent" 1
	# the TCP child relays a datagram of the same size, and its echo
	frames "$(printf '61%.0s' $(seq 1000))" >&"$fd"
	[ "$(timeout 10 head -c 1002 <&"$fd" | od -An -tx1 -N2 | tr -d ' ')" = 03e8 ]
	tcp=$(pss_kb "$(pgrep -P "$tparent")")
	exec {fd}>&-
	echo "PSS: UDP child $udp kB (mean of 100), TCP child $tcp kB"
	# the parent's hand-over memory is megabytes (4 MiB of frames, and
	# their index): a child that copied it would be far past this
	[ "$udp" -le $((tcp + 100)) ]
}
