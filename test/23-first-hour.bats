#!/usr/bin/env bats
# The first hour: help that answers, errors that say the fix, examples
# that run as written.

load helpers

# examples: every dgrelay command the README, the man page and contrib/
# show, one a line, its prompt ("$ ", "server# ") cut and its continued
# lines joined.
examples() {
	awk '/^```sh/ { b = 1; next } /^```/ { b = 0 }
	    b { if (sub(/\\$/, "")) { c = c $0; next } print c $0; c = "" }' \
	    "$BATS_TEST_DIRNAME/../README.md"
	awk '/^\.Bd -literal/ { b = 1; next } /^\.Ed/ { b = 0 }
	    b { if (sub(/\\e$/, "")) { c = c $0; next } print c $0; c = "" }' \
	    "$BATS_TEST_DIRNAME/../dgrelay.1"
	# (dgrelay@.service's line is made of its config: 26-package
	# checks every example config instead)
	sed -n '/\$/d; s/^ExecStart=[^ ]*dgrelay /dgrelay /p' \
	    "$BATS_TEST_DIRNAME"/../contrib/*.service
}

@test "first hour: every example in README, man page and contrib parses and agrees (dgrelay -n)" {
	n=0
	while IFS= read -r line; do
		line=$(sed -E 's/^[a-z]*[$#] //' <<<"$line")
		[[ $line == dgrelay\ * ]] || continue
		# quotes as a shell reads them, but nothing run
		# shellcheck disable=SC2016 # the characters, not expansions
		[[ $line != *'$('* && $line != *'`'* ]]
		set -f
		eval "words=($line)"
		set +f
		run --separate-stderr timeout 10 "$DGRELAY" -n "${words[@]:1}"
		[ "$status" -eq 0 ] || { echo "$line: $status: $stderr"; false; }
		n=$((n + 1))
	done < <(examples)
	echo "$n examples"
	# both files show many: an extraction that found none would pass
	[ "$n" -ge 30 ]
}

@test "first hour: -n checks without opening: a bad pair still fails, nothing listens" {
	p=$(free_port tcp)
	run --separate-stderr timeout 10 "$DGRELAY" -n "tcp-listen:127.0.0.1:$p" stdio
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	! listening_tcp "$p" || false
	bad -n tcp-listen:0,fork udp-listen:0,multi "fork or multi on one address only"
	bad -n udp-lsiten:0 stdio "did you mean udp-listen?"
}

@test "first hour: the README's find-the-port example runs as written" {
	line=$(grep -m1 -A1 'Let the kernel pick the port' "$BATS_TEST_DIRNAME/../README.md" >/dev/null &&
	    awk '/Let the kernel pick the port/ { f = 1 } f && /^\$ dgrelay/ { sub(/^\$ /, ""); print; exit }' \
	    "$BATS_TEST_DIRNAME/../README.md")
	[[ $line == "dgrelay -v udp-listen:0 udp:127.0.0.1:5000" ]]
	# shellcheck disable=SC2086 # its words, as the README has them
	bg r "$DGRELAY" ${line#dgrelay }
	wait_for "$TMP/r.err" '^dgrelay: udp-listen:0: listening on [^ ]+ [0-9]+$'
	kill -0 "$(pid_of r)"
	stop r
	[ "$status_of" -eq 0 ]
}

@test "first hour: -h and --help list every flag, address type and option; -V and --version" {
	run --separate-stderr timeout 10 "$DGRELAY" -h
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	for f in -b -h -i -n -S -s -t -U -u -V -v -Z; do
		grep -qE -- "^  ${f}[ ,]" <<<"$output" || { echo "no $f"; false; }
	done
	for t in udp:HOST:PORT 'udp-listen:[HOST:]PORT' tcp:HOST:PORT tls:HOST:PORT \
	    unix:PATH unix-seqpacket-listen:PATH 'fd:N' stdio exec:COMMAND \
	    vsock:CID:PORT 'tun[:NAME]'; do
		grep -qF -- "  $t" <<<"$output" || { echo "no $t"; false; }
	done
	for o in bind= rcvbuf= fork multi max-peers= retry interval= cert= psk= \
	    stall-timeout= unlink-early; do
		grep -qF -- "  $o" <<<"$output" || { echo "no $o"; false; }
	done
	# the options say where they apply
	grep -qE '^  fork +udp-listen tcp-listen' <<<"$output"
	help=$output
	run --separate-stderr timeout 10 "$DGRELAY" --help
	[ "$status" -eq 0 ]
	[ "$output" = "$help" ]
	run --separate-stderr timeout 10 "$DGRELAY" -V
	[ "$status" -eq 0 ]
	[[ $output =~ ^dgrelay\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	v=$output
	run --separate-stderr timeout 10 "$DGRELAY" --version
	[ "$output" = "$v" ]
}

@test "first hour: flag errors name the flag and its range; counts of addresses are said" {
	bad -b 0 stdio stdio "dgrelay: -b 0: too small: must be 1..1024"
	bad -b 2000 stdio stdio "dgrelay: -b 2000: too large: must be 1..1024"
	bad -s 100000 stdio stdio "dgrelay: -s 100000: too large: must be 1..65535"
	bad -t 5s stdio stdio "dgrelay: -t 5s: invalid: must be seconds"
	bad -i 0 stdio stdio "dgrelay: -i 0: must be more than 0: must be seconds"
	bad --frob stdio stdio "dgrelay: --frob: unknown flag (-h for help)"
	bad stdio "dgrelay: 1 address given, 2 needed"
	bad stdio stdio stdio "dgrelay: 3 addresses given, 2 needed"
}

@test "first hour: a misspelt address type or option suggests the nearest" {
	bad udp-lsiten:0 stdio "unknown address type 'udp-lsiten' (did you mean udp-listen?)"
	bad tpc:h:1 stdio "(did you mean tcp?)"
	bad tcp-listen:0,mutli stdio "unknown option 'mutli' (did you mean multi?)"
	bad tcp-listen:0,max-peer=3 stdio "(did you mean max-peers?)"
	bad tcp:h:1,retyr stdio "(did you mean retry?)"
	# nothing near: no guess
	bad nothing-alike:1 stdio "unknown address type 'nothing-alike'"
	[[ $stderr != *"did you mean"* ]]
	# an option in the wrong place says where it belongs
	bad udp:127.0.0.1:5,fork stdio "option fork does not apply to this address (only to udp-listen tcp-listen"
}

@test "first hour: unlink-early; a stale socket file is told from a live one" {
	sock=$TMP/s.sock
	# a stale file: a socket bound, its owner gone
	bg old "$DGRELAY" -v "unix-listen:$sock" udp:127.0.0.1:9
	wait_for "$TMP/old.err" 'listening on'
	kill -KILL "$(child_of old)"
	wait_exit old
	[ -S "$sock" ]
	run --separate-stderr timeout 10 "$DGRELAY" "unix-listen:$sock" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: unix-listen:$sock: bind: $sock: a stale socket file (nothing listens on it): remove it, or give option unlink-early" ]
	# unlink-early takes its place
	relay r "unix-listen:$sock,unlink-early" udp:127.0.0.1:9
	# now it is live: said so, and unlink-early is not needed to know
	run --separate-stderr timeout 10 "$DGRELAY" "unix-listen:$sock" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: unix-listen:$sock: bind: $sock: in use: a process listens on it" ]
	kill -0 "$(pid_of r)"
	bad "unix:$sock,unlink-early" stdio "option unlink-early does not apply"
}

@test "first hour: -v lines name an address without its options; -i prints the counters as it runs" {
	echo_peer e udp
	relay r -i 0.2 "udp-listen:127.0.0.1:0,rcvbuf=262144" "udp:127.0.0.1:$(port e),sndbuf=262144"
	grep -q '^dgrelay: udp-listen:127.0.0.1:0: listening on 127.0.0.1 [0-9]*$' "$TMP/r.err"
	run timeout 30 "$PEER" ping -n 10 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	grep -q "^dgrelay: udp-listen:127.0.0.1:0: peer 127.0.0.1 [0-9]*$" "$TMP/r.err"
	grep -q "^dgrelay: udp:127.0.0.1:$(port e): connected to 127.0.0.1 $(port e)$" "$TMP/r.err"
	! grep -q 'rcvbuf=\|sndbuf=' "$TMP/r.err" || false
	# the counters, again and again while it runs, with no signal
	eventually 30 said r '^dgrelay: 1>2: 10 datagrams' 2
	stop r
	[ "$status_of" -eq 0 ]
}
