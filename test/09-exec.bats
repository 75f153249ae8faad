#!/usr/bin/env bats
# exec:COMMAND: /bin/sh -c COMMAND on a socketpair.

load helpers

@test "udp to exec: a round trip through an exec'd dgrelay stdio" {
	echo_peer e udp
	relay r udp-listen:127.0.0.1:0 exec:"$DGRELAY stdio udp:127.0.0.1:$(port e)"
	run "$PEER" ping -n 1000 -m 0 -M 65507 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 1000 datagrams "* ]]
	grep -qE 'exec:.*: started, pid [0-9]+$' "$TMP/r.err"
}

@test "exec with seqpacket: a datagram side" {
	echo_peer e udp
	relay r udp-listen:127.0.0.1:0 exec:"$DGRELAY fd:0 udp:127.0.0.1:$(port e)",seqpacket
	run "$PEER" ping -n 500 -m 1 -M 60000 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 500 datagrams "* ]]
}

@test "a command that writes frames and exits: all delivered, exit 0" {
	bg d "$PEER" dump -n 3
	wait_for "$TMP/d.out" '^port'
	run --separate-stderr timeout 30 "$DGRELAY" -v exec:"printf '\\000\\002hi\\000\\000\\000\\001!'" \
	    udp:127.0.0.1:"$(port d)"
	[ "$status" -eq 0 ]
	wait_exit d
	[ "$(sed 1d "$TMP/d.out")" = "$(printf '2 6869\n0 \n1 21')" ]
	[[ "$stderr" == *"eof on exec:"* ]]
	[[ "$stderr" == *"exec:printf"*": exit 0"* ]]
}

@test "a command that fails: exit 1, one line with its status" {
	run --separate-stderr timeout 30 "$DGRELAY" stdio 'exec:exit 3' </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: exec:exit 3: exit 3" ]
}

@test "a command that does not exist: the shell says so, exit 1" {
	run --separate-stderr timeout 30 "$DGRELAY" stdio exec:no-such-command-here </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no-such-command-here: not found"* ]]
	[[ "$stderr" == *"dgrelay: exec:no-such-command-here: exit 127" ]]
}

@test "the command starts with the signals dgrelay was given: none blocked, SIGPIPE not ignored (dgrelay ignores it)" {
	# what a command started here without dgrelay has (a shell that
	# ran us in the background may have made some ignored, and glibc's
	# posix_spawn leaves its own 32 and 33 so: they pass on, as a
	# shell passes them on)
	want=$(sh -c 'grep -E "^Sig(Blk|Ign)" /proc/self/status')
	# stdin closed: the command ends the relay once it has said
	run --separate-stderr timeout 30 "$DGRELAY" stdio \
	    'exec:grep -E "^Sig(Blk|Ign)" /proc/self/status >&2' </dev/null
	echo "want: $want"
	echo "got: $stderr"
	[ "$status" -eq 0 ]
	[ "$stderr" = "$want" ]
	[[ "$stderr" == *"SigBlk:	0000000000000000"* ]]
}

@test "the command's stderr is dgrelay's; commas stay in the command" {
	run --separate-stderr timeout 30 "$DGRELAY" stdio 'exec:echo a,b,c >&2' </dev/null
	[ "$status" -eq 0 ]
	[ "$stderr" = "a,b,c" ]
}

@test "dgrelay's end ends the command, and nothing else" {
	bg other sleep 30
	relay r -t 0.3 udp-listen:127.0.0.1:0 'exec:sleep 30'
	# said after the listening line: under valgrind, a while after
	wait_for "$TMP/r.err" 'started, pid'
	pid=$(sed -n 's/.*started, pid \([0-9]*\)$/\1/p' "$TMP/r.err")
	[ -n "$pid" ]
	wait_exit r 10
	[ "$status_of" -eq 0 ]
	grep -q 'exec:sleep 30: killed by signal 15' "$TMP/r.err"
	run kill -0 "$pid"
	[ "$status" -ne 0 ]		# the command is gone
	kill -0 "$(child_of other)"	# another sleep lives on
}

@test "multi: a command slow to end stalls no other session (it ends on the loop's timers)" {
	# A's session ends idle after 2 s; its command ignores SIGTERM, so
	# ending it takes 2.5 s (a moment, TERM, a grace, KILL).  Waited for
	# in place, that would stop the loop past B's 2 s idle limit: B's
	# session ended, a datagram lost.  Ended on the loop, B loses nothing.
	relay r -v -t 2 udp-listen:127.0.0.1:0,multi 'exec:trap "" TERM; cat; sleep 8'
	run timeout 60 "$PEER" ping -n 1 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	bg b "$PEER" ping -t 50 -i 100 -n 60 udp 127.0.0.1 "$(port r)"
	wait_exit b 60
	cat "$TMP/b.out"
	[ "$status_of" -eq 0 ]
	grep -q '^ok 60 datagrams' "$TMP/b.out"
	# A's command was killed while B went on, and B had one session
	eventually 20 grep -q "exec:trap .*: killed by signal 9" "$TMP/r.err"
	[ "$(grep -c ': peer from ' "$TMP/r.err")" -eq 2 ]
}

@test "exec: bad forms exit 2" {
	run --separate-stderr timeout 30 "$DGRELAY" stdio exec:
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"exec needs parameters after ':'"* ]]
	run --separate-stderr timeout 30 "$DGRELAY" stdio exec:,seqpacket
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"exec needs a command"* ]]
}
