#!/usr/bin/env bats
# retry[=N] and interval=: a connecting stream address that comes back
# when its connection fails or ends, while the other side stays open.

load helpers

teardown() {
	kill_bg
	del_netns
	[ -z "${NS:-}" ] || ip netns del "$NS" 2>/dev/null || :
}

# seq_hex FROM TO: the datagrams FROM..TO, each its index in 4 digits,
# as hex into the array DG.
seq_hex() {
	local i
	DG=()
	for i in $(seq "$1" "$2"); do
		DG+=("$(printf '%04d' "$i" | od -An -tx1 | tr -d ' \n')")
	done
}

# indices FILE...: the frames of FILEs (4-digit payloads), one index a
# line; anything else prints BAD.
indices() {
	cat "$@" | od -An -tx1 -v -w6 | awk '
	    NF == 6 && $1 == "00" && $2 == "04" && $3 $4 $5 $6 ~ /^(3[0-9])+$/ {
		print (substr($3, 2) substr($4, 2) substr($5, 2) substr($6, 2)) + 0
		next }
	    NF > 0 { print "BAD " $0 }'
}

# increasing FILE: the numbers of FILE (one a line) strictly increase.
increasing() { awk 'NR > 1 && $1 <= p { exit 1 } { p = $1 }' "$1"; }

# sink NAME PORT: a TCP server (socat) that writes what it reads to
# $TMP/NAME.bin; it is up once it listens.
sink() {
	bg "$1" socat -u "tcp-listen:$2,bind=127.0.0.1,reuseaddr" \
	    "create:$TMP/$1.bin"
	eventually 10 listening "$2" || { cat "$TMP/$1.err" "$TMP/c.err"; false; }
}
listening() { ss -Htln "sport = :$1" | grep -q .; }

# handled NAME PID N: NAME's counters, asked of PID now, say N datagrams
# 1>2 were delivered or dropped while down.
handled() {
	local sent down
	barrier "$1" "$2"
	sent=$(counter "$1" '1>2' datagrams)
	down=$(counter "$1" '1>2' 'dropped while down')
	[ $((sent + down)) -ge "$3" ]
}

# last_index FILE N: the last frame in FILE is datagram N.
last_index() { [ "$(indices "$1" | tail -n 1)" = "$2" ]; }

@test "retry: bad values exit 2; it applies to connecting stream addresses only" {
	bad tcp:127.0.0.1:5,retry=0 stdio "option retry=0: too small"
	bad tcp:127.0.0.1:5,retry=x stdio "option retry=x: invalid"
	bad tcp:127.0.0.1:5,retry,interval=0 stdio "option interval=0: must be more than 0"
	bad tcp:127.0.0.1:5,retry,interval=1.2345 stdio "option interval=1.2345: at most three decimals"
	bad tcp:127.0.0.1:5,retry,interval=3601 stdio "option interval=3601: too large"
	bad tcp:127.0.0.1:5,interval=2 stdio "option interval needs retry"
	bad udp:127.0.0.1:5,retry stdio "option retry does not apply"
	bad tcp-listen:5,retry stdio "option retry does not apply"
	bad unix-listen:/x,retry stdio "option retry does not apply"
	bad tun:,retry stdio "option retry does not apply"
}

@test "retry=3 where nobody listens: three attempts, then exit 1 and one line" {
	p=$(free_port tcp)
	run --separate-stderr timeout 30 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tcp:127.0.0.1:$p,retry=3,interval=0.1"
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tcp:127.0.0.1:$p: connect to 127.0.0.1 $p: Connection refused (3 attempts)" ]
	run --separate-stderr timeout 30 "$DGRELAY" -v udp-listen:127.0.0.1:0 \
	    "tcp:127.0.0.1:$p,retry=3,interval=0.1"
	[ "$status" -eq 1 ]
	[ "$(grep -c ': connecting$' <<<"$stderr")" -eq 3 ]
	# the waits double: 0.1 s, then 0.2 s (less up to a fifth)
	grep -qE "connect to 127.0.0.1 $p: Connection refused; retrying in 0\\.[01] s$" <<<"$stderr"
	grep -qE "connect to 127.0.0.1 $p: Connection refused; retrying in 0\\.[12] s$" <<<"$stderr"
}

@test "retry: an attempt that TCP connects to itself is a failed one" {
	# bound to the port it connects to, with nothing listening there:
	# TCP's simultaneous open connects the socket to itself (a port free
	# now: a fixed one may be held by an earlier test's TIME_WAIT)
	p=$(free_port tcp)
	run --separate-stderr timeout 30 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tcp:127.0.0.1:$p,bind=127.0.0.1:$p,retry=1"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tcp:127.0.0.1:$p: connect: connected to itself (nothing listens there, a port of the local range) (1 attempt)" ]
}

@test "retry: the server starts 2 s after the client; nothing before it is delivered late or twice" {
	p=$(free_port tcp)
	# the datagrams made before the relay starts dialling: on a slow
	# machine making them takes seconds
	seq_hex 0 199
	relay c -S udp-listen:127.0.0.1:0 "tcp:127.0.0.1:$p,retry,interval=0.2"
	# 10 s of datagrams: the backoff's attempt after the server is up
	# (at most 6.2 s in) comes before they end, however slow the machine
	bg snd "$PEER" send -i 50 127.0.0.1 "$(port c)" "${DG[@]}"
	sleep 2
	sink s "$p"
	wait_exit snd 30
	[ "$status_of" -eq 0 ]
	wait_for "$TMP/c.err" 'connected to 127.0.0.1'
	# the last datagram arrived: nothing is in flight any more
	eventually 30 last_index "$TMP/s.bin" 199
	stop c
	[ "$status_of" -eq 0 ]
	indices "$TMP/s.bin" >"$TMP/got"
	[ "$(grep -c BAD "$TMP/got")" -eq 0 ]
	first=$(head -n 1 "$TMP/got")
	n=$(wc -l <"$TMP/got")
	# those sent before the connection were dropped, the rest arrived,
	# all of them, in order: k, k+1, ..., 199
	[ "$first" -gt 0 ]
	[ "$(seq "$first" 199)" = "$(cat "$TMP/got")" ]
	[ "$(counter c '1>2' datagrams)" -eq "$n" ]
	[ "$(counter c '1>2' 'dropped while down')" -eq "$first" ]
	grep -qE ': 0 reconnects, [0-9.]+ s down$' "$TMP/c.err"
}

@test "retry: the server is killed and restarted three times; the client stays, the flow resumes, nothing twice or out of order" {
	need_root
	need_cmd ip iproute2
	NS=dgr-$$-$BATS_TEST_NUMBER
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	p=40611
	# 400 datagrams, 20 a second, from one socket: one peer (made
	# before the relay starts: on a slow machine that takes seconds)
	seq_hex 0 399
	bg c ip netns exec "$NS" "$DGRELAY" -v -S udp-listen:127.0.0.1:0 \
	    "tcp:127.0.0.1:$p,retry,interval=0.2"
	wait_for "$TMP/c.err" 'listening on'
	u=$(port c)
	read0=$(ip netns exec "$NS" cat /proc/net/snmp |
	    awk '$1 == "Udp:" && ++n == 2 { print $2 }')
	bg s1 ip netns exec "$NS" socat -u "tcp-listen:$p,reuseaddr" \
	    "create:$TMP/s1.bin"
	bg snd ip netns exec "$NS" "$PEER" send -i 50 127.0.0.1 "$u" "${DG[@]}"
	for i in 1 2 3; do
		# 30 frames: the connection lasted, the next starts afresh
		eventually 15 has_bytes "$TMP/s$i.bin" 180
		stop "s$i"
		sleep 0.7
		bg "s$((i + 1))" ip netns exec "$NS" socat -u \
		    "tcp-listen:$p,reuseaddr" "create:$TMP/s$((i + 1)).bin"
	done
	# after each restart the flow resumed
	eventually 15 has_bytes "$TMP/s4.bin" 60
	wait_exit snd 60
	[ "$status_of" -eq 0 ]
	eventually 30 last_index "$TMP/s4.bin" 399
	# the client never left, and holds the same UDP port
	kid=$(child_of c)
	ip netns exec "$NS" ss -Hunp "sport = :$u" | grep -q "pid=$kid,"
	stop c
	[ "$status_of" -eq 0 ]
	cat "$TMP/c.err"
	[ "$(grep -c ': connected to 127.0.0.1' "$TMP/c.err")" -eq 4 ]
	[ "$(grep -c ': lost: eof$' "$TMP/c.err")" -eq 3 ]
	grep -qE ': 3 reconnects, [0-9.]+ s down$' "$TMP/c.err"
	indices "$TMP"/s[1-4].bin >"$TMP/got"
	[ "$(grep -c BAD "$TMP/got")" -eq 0 ]
	increasing "$TMP/got"
	got=$(wc -l <"$TMP/got")
	relayed=$(counter c '1>2' datagrams)
	down=$(counter c '1>2' 'dropped while down')
	read1=$(ip netns exec "$NS" cat /proc/net/snmp |
	    awk '$1 == "Udp:" && ++n == 2 { print $2 }')
	echo "read $((read1 - read0)) relayed $relayed down $down arrived $got"
	# every datagram dgrelay read was relayed or counted
	[ $((relayed + down)) -eq $((read1 - read0)) ]
	[ $((read1 - read0)) -eq 400 ]
	# what a killed server had not read yet died with its socket: at
	# most the frame or two in flight at each kill
	[ "$got" -le "$relayed" ]
	[ $((relayed - got)) -le 6 ]
}

@test "retry: a reset inside a frame; the next connection starts at a frame boundary" {
	echo_peer d udp
	# the first server sends two whole frames and half a third, then RST
	p=$(free_port tcp)
	{ frames 0a0b 0c0d0e; unhex 0010aabbcc; } >"$TMP/in1"
	bg_in r1 "$TMP/in1" "$PEER" rst -l -w 500 127.0.0.1 "$p"
	wait_for "$TMP/r1.out" '^port'
	bg dump "$PEER" dump
	wait_for "$TMP/dump.out" '^port'
	relay c -S "udp:127.0.0.1:$(port dump)" \
	    "tcp:127.0.0.1:$p,retry,interval=0.2"
	wait_for "$TMP/r1.out" '^reset'
	wait_for "$TMP/c.err" 'lost: Connection reset by peer'
	# the second sends whole frames and ends
	frames 1111 222222 >"$TMP/in2"
	bg s2 socat -u "open:$TMP/in2" "tcp-listen:$p,bind=127.0.0.1,reuseaddr"
	wait_for "$TMP/dump.out" '^3 222222$' 15
	stop c
	[ "$status_of" -eq 0 ]
	[ "$(cat "$TMP/dump.out")" = "$(printf 'port %s\n2 0a0b\n3 0c0d0e\n2 1111\n3 222222' "$(port dump)")" ]
	[ "$(counter c '2>1' truncated)" -eq 1 ]
	[ "$(counter c '2>1' datagrams)" -eq 4 ]
}

@test "retry: a frame half written when the connection died is not finished on the next one" {
	not_under_valgrind "fills a socket buffer against a clock"
	need_cmd strace
	p=$(free_port tcp)
	# a server that takes the connection and reads nothing, then resets
	bg h "$PEER" hold -r 4096 -t 1500 -p "$p"
	wait_for "$TMP/h.out" '^port'
	bg c strace -f -e trace=writev -o "$TMP/st" "$DGRELAY" -v -S \
	    udp-listen:127.0.0.1:0 \
	    "tcp:127.0.0.1:$p,retry,interval=0.2,sndbuf=4096"
	wait_for "$TMP/c.err" 'connected to'
	# 20,000-byte datagrams: the first frame is more than the full
	# buffers take, so it is written in part (6,144 bytes here)
	pay=$(printf 'ab%.0s' $(seq 20000))
	DG=()
	for i in $(seq 20); do DG+=("$pay"); done
	bg snd "$PEER" send -i 200 127.0.0.1 "$(port c)" "${DG[@]}"
	wait_for "$TMP/h.out" '^closed' 20
	wait_for "$TMP/c.err" ': lost: ' 20
	sink s2 "$p"
	wait_exit snd 60
	# all 20 delivered or dropped while down: nothing left in flight
	# (dgrelay runs under strace here: the counters are its to say)
	eventually 30 handled c "$(pgrep -P "$(child_of c)")" 20
	stop c
	[ "$status_of" -eq 0 ]
	run "$PEER" frames "$TMP/s2.bin"
	echo "$output"
	# whole frames only, each the 20,000 bytes sent
	[[ "$output" == "frames "*" over 0 partial 0" ]]
	n=$(awk '{print $2}' <<<"$output")
	[ "$n" -gt 0 ]
	[ "$(awk '{print $4}' <<<"$output")" -eq $((n * 20000)) ]
	[ "$(od -An -tx1 -v "$TMP/s2.bin" | tr -d ' \n' |
	    sed 's/4e20\(ab\)\{20000\}//g')" = "" ]
	[ "$(counter c '1>2' 'dropped while down')" -gt 0 ]
	# and a frame was written in part on the first connection
	awk '/^[0-9]+ +writev\(/ && $NF % 20002 != 0 && $NF > 0 { n++ }
	    END { exit !n }' "$TMP/st"
}

@test "retry on unix: a server that appears late" {
	sock=$TMP/srv.sock
	relay c -S udp-listen:127.0.0.1:0 "unix:$sock,retry,interval=0.2"
	wait_for "$TMP/c.err" "connect to $sock: No such file or directory; retrying"
	bg s socat -u "unix-listen:$sock" "create:$TMP/s.bin"
	wait_for "$TMP/c.err" "connected to $sock" 15
	run timeout 10 "$PEER" send 127.0.0.1 "$(port c)" 0102 030405
	[ "$status" -eq 0 ]
	bytes_in "$TMP/s.bin" 9
	[ "$(hexof "$TMP/s.bin")" = 000201020003030405 ]
}

@test "retry: when the other side has ended, the end is not retried (stdio pipeline)" {
	echo_peer e tcp
	frames 01 0203 >"$TMP/in"
	st=0
	timeout 20 "$DGRELAY" -v stdio \
	    "tcp:127.0.0.1:$(port e),retry,interval=0.2" \
	    <"$TMP/in" >"$TMP/out" 2>"$TMP/err" || st=$?
	[ "$st" -eq 0 ]
	[ "$(hexof "$TMP/out")" = 00010100020203 ]
	grep -q 'eof on tcp:' "$TMP/err"
	run grep -c 'lost:' "$TMP/err"
	[ "$output" -eq 0 ]
}

@test "retry: a path that goes silent is noticed (user-timeout) and reconnected once it is back" {
	need_root
	need_cmd ip iproute2
	two_netns
	bg e ip netns exec "$NB" "$PEER" echo udp
	wait_for "$TMP/e.out" '^port'
	bg s ip netns exec "$NB" "$DGRELAY" -v tcp-listen:0,fork \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/s.err" 'listening on'
	bg c ip netns exec "$NA" "$DGRELAY" -v -S udp-listen:127.0.0.1:0 \
	    "tcp:10.201.0.2:$(port s),retry,interval=0.5,user-timeout=1500"
	wait_for "$TMP/c.err" 'connected to 10.201.0.2'
	timeout 30 ip netns exec "$NA" "$PEER" ping -n 10 udpfrom \
	    127.0.0.1 40778 127.0.0.1 "$(port c)" >"$TMP/ping1.out"
	grep -q '^ok 10 datagrams' "$TMP/ping1.out"
	ip -n "$NB" route add blackhole 10.201.0.1/32
	# the same peer goes on sending: the data waits unacknowledged, and
	# after 1.5 s the connection is given up
	bg p ip netns exec "$NA" "$PEER" ping -n 1000 -i 50 -t 60 udpfrom \
	    127.0.0.1 40778 127.0.0.1 "$(port c)"
	wait_for "$TMP/c.err" 'lost: Connection timed out' 20
	stop p
	ip -n "$NB" route del blackhole 10.201.0.1/32
	eventually 30 two_connects
	timeout 30 ip netns exec "$NA" "$PEER" ping -n 10 udpfrom \
	    127.0.0.1 40778 127.0.0.1 "$(port c)" >"$TMP/ping2.out"
	grep -q '^ok 10 datagrams' "$TMP/ping2.out"
	kill -0 "$(child_of c)"	# the client never left
	stop c
	[ "$status_of" -eq 0 ]
}
two_connects() { [ "$(grep -c 'connected to 10.201.0.2' "$TMP/c.err")" -ge 2 ]; }
