#!/usr/bin/env bats
# The command line: usage, version, and exit 2 with one line naming the
# offending text for every malformed flag or address; exit 1 for runtime
# failures.

load helpers

@test "-h prints the usage first, on stdout, and exits 0" {
	run --separate-stderr timeout 30 "$DGRELAY" -h
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "usage: dgrelay [-hJnSuUVv] [-b count] [-i seconds] [-M address] [-s size]" ]
	[ "${lines[1]}" = "               [-t idle] [-Z user] ADDRESS ADDRESS" ]
	[ -z "$stderr" ]
}

@test "usage matches the man page SYNOPSIS word for word" {
	need_cmd mandoc
	syn=$(mandoc -Tascii "$BATS_TEST_DIRNAME/../dgrelay.1" |
	    sed 's/.\x08//g' | sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' |
	    sed '1d;$d' | tr -s '[:space:]' ' ' | sed 's/^ //;s/ $//')
	run --separate-stderr timeout 30 "$DGRELAY"
	[ "$status" -eq 2 ]
	[ "$(printf '%s' "$stderr" | tr -s '[:space:]' ' ')" = "usage: $syn" ]
}

@test "-V prints the version and exits 0" {
	run timeout 30 "$DGRELAY" -V
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^dgrelay\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "wrong number of addresses: usage, or how many were given, on stderr, exit 2" {
	run --separate-stderr timeout 30 "$DGRELAY"
	[ "$status" -eq 2 ]
	[[ $stderr == "usage: dgrelay "* ]]
	[ -z "$output" ]
	bad stdio "dgrelay: 1 address given, 2 needed: dgrelay [flags] ADDRESS ADDRESS (-h for help)"
	bad stdio stdio stdio "dgrelay: 3 addresses given, 2 needed"
}

@test "bad flags exit 2 naming the value" {
	bad -x stdio stdio "-x: unknown flag"
	bad stdio stdio -b "-b needs a value"
	bad -b 0 stdio stdio "-b 0: too small: must be 1..1024"
	bad -b 1025 stdio stdio "-b 1025: too large: must be 1..1024"
	bad -b abc stdio stdio "-b abc: invalid: must be 1..1024"
	bad -s 0 stdio stdio "-s 0: too small: must be 1..65535"
	bad -s 65536 stdio stdio "-s 65536: too large: must be 1..65535"
	bad -t abc stdio stdio "-t abc: invalid: must be seconds"
	bad -t 0 stdio stdio "-t 0: must be more than 0"
	bad -t 1.2345 stdio stdio "-t 1.2345: at most three decimals"
	bad -t -1 stdio stdio "-t -1: too small"
	bad -t -0.5 stdio stdio "-t -0.5: too small"
	bad -t +1 stdio stdio "-t +1: invalid"
	bad -t " 1" stdio stdio "-t  1: invalid"
	bad -b +5 stdio stdio "-b +5: invalid"
	bad -s " 100" stdio stdio "-s  100: invalid"
	bad -u -U stdio stdio "-u and -U together relay nothing"
	bad -Z no-such-user-here stdio stdio "dgrelay: -Z no-such-user-here: no such user"
}

@test "malformed addresses exit 2 with one line naming the address" {
	bad foo:1 stdio "foo:1: unknown address type 'foo'"
	bad stdio udp "udp: udp needs parameters after ':'"
	bad udp:127.0.0.1 stdio "expected HOST:PORT, got '127.0.0.1'"
	bad udp:127.0.0.1:70000 stdio "port 70000: too large"
	bad udp:127.0.0.1:0 stdio "port 0 needs a listen address"
	bad udp:127.0.0.1:x stdio "port x: invalid"
	bad tcp::5 stdio "empty host"
	bad udp:::1:53 stdio "IPv6 address must be in brackets"
	bad "udp:[::1:53" stdio "missing ']'"
	bad "udp:[::1]53" stdio "missing port after [::1]"
	bad "udp:[]:53" stdio "empty host in brackets"
	bad udp-listen: stdio "needs parameters"
	# control characters never split the one line, nor reach a resolver
	bad "$(printf 'ud\np:1')" stdio "ud?p:1: unknown address type 'ud?p'"
	bad "$(printf 'udp:a\nb:1')" stdio "udp:a?b:1: host: invalid character"
	bad "udp:a b:1" stdio "host: invalid character"
	bad stdio:x stdio "stdio takes no parameters"
	bad fd:1x stdio "descriptor 1x: invalid"
	bad "fd:a/b" stdio "descriptor a/b: invalid"
	bad fd:3:y stdio "descriptor y: invalid"
	bad unix:@ stdio "empty abstract socket name"
	bad "unix:/$(printf 'a%.0s' $(seq 120))" stdio "path longer than 107 bytes"
	bad "udp:$(printf 'a%.0s' $(seq 1100)):1" stdio "address longer than 1023 bytes"
	# numbers are digits only; brackets only around an IPv6 address
	bad fd:-1 stdio "descriptor -1: too small"
	bad fd:+1 stdio "descriptor +1: invalid"
	bad udp:127.0.0.1:+9 stdio "port +9: invalid"
	bad "udp:127.0.0.1: 9" stdio "port  9: invalid"
	bad udp-listen:-0 stdio "port -0: too small"
	bad "udp:]:53" stdio "udp:]:53: host: invalid character"
	bad "tcp:a]b:53" stdio "host: invalid character"
	bad "udp:[a]b]:53" stdio "missing port after [a]"
	bad udp:127.0.0.1:5,rcvbuf=+5 stdio "option rcvbuf=+5: invalid"
	bad "vsock:+2:5" stdio "CID +2: invalid"
}

@test "malformed options exit 2 naming the option" {
	bad udp:127.0.0.1:5,foo stdio "unknown option 'foo'"
	bad udp:127.0.0.1:5, stdio "empty option"
	bad udp:127.0.0.1:5,rcvbuf stdio "option rcvbuf needs a value"
	bad udp:127.0.0.1:5,rcvbuf=0 stdio "option rcvbuf=0: too small"
	bad udp:127.0.0.1:5,rcvbuf=x stdio "option rcvbuf=x: invalid"
	bad udp:127.0.0.1:5,reuseport stdio "option reuseport does not apply"
	bad udp-listen:0,reuseport=1 stdio "option reuseport takes no value"
	bad udp-listen:0,bind=1 stdio "option bind does not apply"
	bad udp:127.0.0.1:5,nodelay=0 stdio "option nodelay does not apply"
	bad tcp:127.0.0.1:5,nodelay=2 stdio "option nodelay=2: too large"
	bad stdio,rcvbuf=5 stdio "option rcvbuf does not apply"
	bad unix:/x,mark=1 stdio "option mark does not apply"
	bad udp:127.0.0.1:5,mark=4294967296 stdio "option mark=4294967296: too large"
	bad udp:127.0.0.1:5,dev=abcdefghijklmnopq stdio "bad interface name"
	bad udp:127.0.0.1:5,bind=127.0.0.1:99999 stdio "port 99999: too large"
}

@test "types and options are case-insensitive" {
	echo_peer e udp
	run bash -c "printf '\0\0' | timeout 30 '$DGRELAY' STDIO UDP:127.0.0.1:$(port e),RCVBUF=65536"
	[ "$status" -eq 0 ]
}

@test "bind= that cannot be had: exit 1 naming the option, not a listener's bind" {
	run --separate-stderr timeout 30 "$DGRELAY" stdio tcp:127.0.0.1:9,bind=192.0.2.1:0 </dev/null
	[ "$status" -eq 1 ]
	# (the address is named by type and parameters: its options are in
	# the message's own words)
	[ "$stderr" = "dgrelay: tcp:127.0.0.1:9: bind=192.0.2.1:0: Cannot assign requested address" ]
}

@test "connect refused: exit 1, one line naming the address and the error" {
	p=$(free_port tcp)
	run --separate-stderr timeout 30 "$DGRELAY" tcp:127.0.0.1:"$p" stdio
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tcp:127.0.0.1:$p: connect to 127.0.0.1 $p: Connection refused" ]
}

@test "address in use: exit 1 naming the address and bind, the call that failed" {
	for t in udp tcp; do
		relay "$t" "$t-listen:127.0.0.1:0" udp:127.0.0.1:9
		p=$(port "$t")
		run --separate-stderr timeout 30 "$DGRELAY" "$t-listen:127.0.0.1:$p" udp:127.0.0.1:9
		[ "$status" -eq 1 ]
		[ "$stderr" = "dgrelay: $t-listen:127.0.0.1:$p: bind: Address already in use" ]
	done
}

@test "relay buffers that cannot be had: exit 1 naming the address, -b and -s" {
	not_under_valgrind "a small address-space limit"
	[[ "$DGRELAY" != */san/* ]] || skip "ASan reserves more address space than the limit"
	echo_peer e udp
	# a ring of 1024 x 65537 bytes (64 MiB) does not fit in 60 MB of
	# address space (a ring is borrowed only once a side is read)
	run --separate-stderr timeout 30 bash -c "ulimit -v 60000; exec '$DGRELAY' -b 1024 stdio udp:127.0.0.1:$(port e) </dev/null"
	[ "$status" -eq 1 ]
	[[ "$stderr" =~ ^dgrelay:\ (stdio|udp:127.0.0.1:[0-9]+):\ buffers\ for\ -b\ 1024\ -s\ 65535:\ Cannot\ allocate\ memory$ ]]
}

@test "missing unix socket path: exit 1 naming it" {
	run --separate-stderr timeout 30 "$DGRELAY" unix:"$TMP/nope" stdio
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: unix:$TMP/nope: connect to $TMP/nope: No such file or directory" ]
}

@test "fd: of a descriptor that is not open: exit 1" {
	run --separate-stderr timeout 30 "$DGRELAY" fd:7 stdio
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: fd:7: fstat: Bad file descriptor" ]
}
