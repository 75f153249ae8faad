#!/usr/bin/env bats
# systemd socket activation: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, and
# the units in contrib/.

load helpers

@test "fd:NAME takes the socket systemd named (TCP listener, fork)" {
	need_cmd systemd-socket-activate systemd
	echo_peer e udp
	p=$(free_port tcp)
	bg r systemd-socket-activate -l 127.0.0.1:"$p" --fdname=relay \
	    "$DGRELAY" -v fd:relay,fork udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'Listening on'
	run "$PEER" ping -n 100 -S 1 tcp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	run "$PEER" ping -n 100 -S 2 tcp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	[ "$(grep -c 'child [0-9]*: connection from' "$TMP/r.err")" -eq 2 ]
}

@test "fd:NAME of a UDP socket (--datagram): a datagram side" {
	need_cmd systemd-socket-activate systemd
	echo_peer e udp
	p=$(free_port udp)
	bg r systemd-socket-activate --datagram -l 127.0.0.1:"$p" \
	    --fdname=dns "$DGRELAY" -v fd:dns udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'Listening on'
	run "$PEER" ping -n 200 -M 9000 udp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	grep -q 'fd:dns: peer 127.0.0.1 ' "$TMP/r.err"
}

@test "the second of two named sockets" {
	need_cmd systemd-socket-activate systemd
	echo_peer e udp
	p=$(free_port tcp)
	q=$(free_port tcp)
	bg r systemd-socket-activate -l 127.0.0.1:"$p" -l 127.0.0.1:"$q" \
	    --fdname=one:two "$DGRELAY" -v fd:two udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" "Listening on 127.0.0.1:$q"
	run "$PEER" ping -n 50 tcp 127.0.0.1 "$q"
	[ "$status" -eq 0 ]
	grep -q "fd:two: connection from 127.0.0.1 " "$TMP/r.err"
}

@test "fd:NAME without activation, or with another process's: exit 1" {
	run --separate-stderr timeout 30 "$DGRELAY" fd:relay stdio </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: fd:relay: not socket-activated (no LISTEN_FDS for us)" ]
	run --separate-stderr env LISTEN_PID=1 LISTEN_FDS=1 LISTEN_FDNAMES=relay \
	    "$DGRELAY" fd:relay stdio </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"not socket-activated"* ]]
}

@test "a name that systemd did not pass: exit 1" {
	need_cmd systemd-socket-activate systemd
	p=$(free_port tcp)
	bg r systemd-socket-activate -l 127.0.0.1:"$p" --fdname=relay \
	    "$DGRELAY" fd:other stdio
	wait_for "$TMP/r.err" 'Listening on'
	timeout 5 socat -u /dev/null TCP:127.0.0.1:"$p" || true
	wait_exit r 10
	[ "$status_of" -eq 1 ]
	grep -q 'dgrelay: fd:other: no descriptor named other in LISTEN_FDNAMES' "$TMP/r.err"
}

@test "activated sockets are not passed on to exec: commands" {
	need_cmd systemd-socket-activate systemd
	p=$(free_port tcp)
	bg r systemd-socket-activate -l 127.0.0.1:"$p" "$DGRELAY" -v fd:3 \
	    'exec:if [ -e /proc/$$/fd/3 ]; then echo fd3 leaked >&2; else echo fd3 closed >&2; fi'
	wait_for "$TMP/r.err" 'Listening on'
	bg c socat -u /dev/null TCP:127.0.0.1:"$p"
	wait_for "$TMP/r.err" 'fd3 (leaked|closed)'
	grep -q 'fd3 closed' "$TMP/r.err"
}

@test "contrib units: systemd accepts them, and their command line relays" {
	need_cmd systemd-socket-activate systemd
	need_cmd systemd-analyze systemd
	echo_peer e udp
	p=$(free_port tcp)
	c=$BATS_TEST_DIRNAME/../contrib
	sed "s|/usr/bin/dgrelay|$DGRELAY|; s|127.0.0.1:51820|127.0.0.1:$(port e)|" \
	    "$c/dgrelay-wireguard.service" >"$TMP/dgrelay-wireguard.service"
	sed "s|^ListenStream=443|ListenStream=127.0.0.1:$p|" \
	    "$c/dgrelay-wireguard.socket" >"$TMP/dgrelay-wireguard.socket"
	run systemd-analyze verify "$TMP/dgrelay-wireguard.socket" \
	    "$TMP/dgrelay-wireguard.service"
	echo "$output"
	[ "$status" -eq 0 ]
	# the service's command line, with the socket the .socket unit makes
	name=$(sed -n 's/^FileDescriptorName=//p' "$TMP/dgrelay-wireguard.socket")
	cmd=$(sed -n 's/^ExecStart=//p' "$TMP/dgrelay-wireguard.service")
	# shellcheck disable=SC2086
	bg r systemd-socket-activate -l 127.0.0.1:"$p" --fdname="$name" $cmd
	wait_for "$TMP/r.err" 'Listening on'
	run "$PEER" ping -n 200 -M 1400 tcp 127.0.0.1 "$p"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 200 datagrams "* ]]
}
