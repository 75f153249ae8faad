#!/usr/bin/env bats
# tls: and tls-listen: -- frames inside TLS, against dgrelay itself and
# real peers: openssl s_server/s_client, socat's OPENSSL addresses, stunnel
# in PSK mode, unbound serving DNS over TLS.  The certificates are made
# here (openssl req), once for the file.
# shellcheck disable=SC2030,SC2031 # run's status, read in the same test

load helpers

setup_file() {
	command -v openssl >/dev/null || return 0
	local d=$BATS_FILE_TMPDIR
	cd "$d" || return 1
	tls_ca "$d"
	printf 'extendedKeyUsage=clientAuth\n' >cext
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout other.key -out other.pem -days 30 \
	    -subj /CN=another-ca 2>/dev/null
	# an expired server, a client
	tls_cert "$d" exp localhost ext -1
	tls_cert "$d" cli test-client cext 30
	cat srv.pem srv.key >both.pem
	# stunnel's PSKsecrets: a text key and a hexadecimal one
	printf 'alice:a-text-key-of-24-bytes\nbob:00112233445566778899aabbccddeeff\n' \
	    >psk
	chmod 600 psk
}

setup() {
	TMP=$BATS_TEST_TMPDIR
	: >"$TMP/pids"
	need_cmd openssl
	K=$BATS_FILE_TMPDIR
	SRV="cert=$K/srv.pem,key=$K/srv.key"
	# the datagrams of a run: fewer under valgrind; a handshake-timeout
	# that lets valgrind's slow handshakes finish
	N=${VG_LOGS:+300}
	N=${N:-10000}
	HS=${VG_LOGS:+8.0}
	HS=${HS:-1.5}
}

# ping_udp PORT [N [LPORT]]: N datagrams of 0..65507 bytes through udp
# PORT (from LPORT if given) to an echo and back, each intact and in order.
ping_udp() {
	local to=(udp 127.0.0.1 "$1")
	[ -n "${3:-}" ] && to=(udpfrom 127.0.0.1 "$3" 127.0.0.1 "$1")
	run timeout 120 "$PEER" ping -n "${2:-$N}" -m 0 -M 65507 -t 30 \
	    "${to[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" == "ok ${2:-$N} datagrams"* ]]
}

# ping_through COMMAND: 300 datagrams of 0..16000 bytes as frames into
# COMMAND's stdin (a TLS client), each back out of its stdout intact.
ping_through() {
	run timeout 60 "$PEER" ping -n 300 -m 0 -M 16000 -w 4 -t 30 exec "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 300 datagrams"* ]]
}

# tls_pair: a server tls-listen (options $1) to a UDP echo, a client
# udp-listen to it (tls options $2); the client's UDP port in $CP.
tls_pair() {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$1" "udp:127.0.0.1:$(port e)"
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$(port s),$2"
	CP=$(port c)
}

@test "tls: two dgrelays, 10,000 datagrams of 0..65507 bytes both ways, byte for byte" {
	tls_pair "$SRV" "cafile=$K/ca.pem"
	ping_udp "$CP"
	wait_for "$TMP/c.err" 'TLSv1.3 .*server localhost verified as localhost'
	wait_for "$TMP/s.err" 'TLSv1.3 '
	# the client's end is the server's close_notify: a clean eof
	stop c
	[ "$status_of" -eq 0 ]
	wait_for "$TMP/s.err" "^dgrelay: eof on tls-listen:[^ ]*$"
	run ! grep -q 'close_notify' "$TMP/s.err"
	grep -q "1>2: $N datagrams" "$TMP/c.err"
}

@test "tls: a server that dies without close_notify: the client says so and ends; a retry client comes back" {
	echo_peer e udp
	sp=$(free_port tcp)
	relay s "tls-listen:127.0.0.1:$sp,$SRV" "udp:127.0.0.1:$(port e)"
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$sp,cafile=$K/ca.pem"
	ping_udp "$(port c)" 20
	kill -KILL "$(child_of s)"
	wait_exit c 10
	[ "$status_of" -eq 0 ]
	grep -q "eof on tls:localhost:$sp (closed without close_notify)" \
	    "$TMP/c.err"
	# with retry the same end is a lost connection, said as such
	relay s2 "tls-listen:127.0.0.1:$sp,$SRV" "udp:127.0.0.1:$(port e)"
	relay r udp-listen:127.0.0.1:0 \
	    "tls:localhost:$sp,cafile=$K/ca.pem,retry,interval=0.2"
	eventually 20 handshakes r 1
	kill -KILL "$(child_of s2)"
	wait_for "$TMP/r.err" 'lost: eof \(closed without close_notify\)'
	kill -0 "$(child_of r)"
}

# tapped HOW: a payload sent through client -> socat (a plain TCP copy
# that keeps what passed, -r/-R) -> server; prints what the tap saw.
tapped() {
	local secret=444752454c41592d5345435245542d5041594c4f4144
	echo_peer e udp
	if [ "$1" = tls ]; then
		relay s "tls-listen:127.0.0.1:0,$SRV" "udp:127.0.0.1:$(port e)"
	else
		relay s tcp-listen:127.0.0.1:0 "udp:127.0.0.1:$(port e)"
	fi
	tp=$(free_port tcp)
	bg tap socat -r "$TMP/tap-$1.in" -R "$TMP/tap-$1.out" \
	    "TCP-LISTEN:$tp,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$(port s)"
	eventually 10 listening_tcp "$tp"
	if [ "$1" = tls ]; then
		relay c udp-listen:127.0.0.1:0 "tls:localhost:$tp,cafile=$K/ca.pem"
	else
		relay c udp-listen:127.0.0.1:0 "tcp:127.0.0.1:$tp"
	fi
	# one sender (the client locks onto it), three datagrams
	"$PEER" send 127.0.0.1 "$(port c)" "$secret" "$secret" "$secret" \
	    >/dev/null
	# through, and back
	stats_until s '1>2: 3 datagrams, 66 bytes'
	stats_until s '2>1: 3 datagrams, 66 bytes'
	bytes_in "$TMP/tap-$1.out" 72
	cat "$TMP/tap-$1.in" "$TMP/tap-$1.out"
}

@test "tls: nothing of the payload crosses the wire in the clear (a plain relay in the path shows it does without TLS)" {
	not_under_valgrind "the tap test is not about memory"
	need_cmd socat
	tapped tcp >"$TMP/plain"
	grep -qa 'DGRELAY-SECRET-PAYLOAD' "$TMP/plain"
	kill_bg || true
	: >"$TMP/pids"
	tapped tls >"$TMP/tls"
	[ "$(stat -c %s "$TMP/tls")" -gt 1000 ]
	run ! grep -qa 'DGRELAY-SECRET-PAYLOAD' "$TMP/tls"
	run ! grep -qa 'SECRET' "$TMP/tls"
}

@test "tls: openssl s_client as the far client: frames pass through it unchanged" {
	not_under_valgrind "interop only: the pair test covers this path"
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV" "udp:127.0.0.1:$(port e)"
	ping_through "openssl s_client -quiet -nocommands -no_ign_eof -verify_return_error -CAfile $K/ca.pem -verify_hostname localhost -connect 127.0.0.1:$(port s) 2>/dev/null"
	wait_for "$TMP/s.err" 'TLSv1'
}

@test "tls: openssl s_server as the far server: frames pass through it unchanged" {
	not_under_valgrind "interop only: the pair test covers this path"
	sp=$(free_port tcp)
	echo_peer e udp
	# s_server's stdin and stdout are the ping's: what the ping sends
	# goes to dgrelay, to the echo, and back out of s_server
	bg ping "$PEER" ping -n 300 -m 0 -M 16000 -w 4 -t 30 exec \
	    "openssl s_server -quiet -naccept 1 -cert $K/srv.pem -key $K/srv.key -accept 127.0.0.1:$sp 2>/dev/null"
	eventually 10 listening_tcp "$sp"
	relay c "tls:localhost:$sp,cafile=$K/ca.pem" "udp:127.0.0.1:$(port e)"
	wait_exit ping 60
	cat "$TMP/ping.out"
	[ "$status_of" -eq 0 ]
	grep -q "ok 300 datagrams" "$TMP/ping.out"
}

@test "tls: socat's OPENSSL addresses as the far end, in both roles" {
	not_under_valgrind "interop only: the pair test covers this path"
	need_cmd socat
	# socat as the server, in front of a framed TCP echo
	echo_peer te tcp
	sp=$(free_port tcp)
	bg so socat "OPENSSL-LISTEN:$sp,bind=127.0.0.1,reuseaddr,cert=$K/srv.pem,key=$K/srv.key,verify=0" \
	    "TCP:127.0.0.1:$(port te)"
	eventually 10 listening_tcp "$sp"
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$sp,cafile=$K/ca.pem"
	ping_udp "$(port c)" 300
	# socat as the client
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV" "udp:127.0.0.1:$(port e)"
	ping_through "socat - OPENSSL:127.0.0.1:$(port s),cafile=$K/ca.pem,commonname=localhost"
}

# stunnel_psk NAME server|client ACCEPT CONNECT PSKFILE: stunnel4 in the
# foreground, PSK mode, from 127.0.0.1:ACCEPT to 127.0.0.1:CONNECT;
# waits until it listens.
stunnel_psk() {
	printf 'foreground = yes\npid =\nclient = %s\n[svc]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\nciphers = PSK\nPSKsecrets = %s\n' \
	    "$([ "$2" = client ] && echo yes || echo no)" "$3" "$4" "$5" \
	    >"$TMP/$1.conf"
	bg "$1" stunnel4 "$TMP/$1.conf"
	eventually 10 listening_tcp "$3"
}

@test "tls: psk= against stunnel4 in PSK mode: dgrelay as client, then as server" {
	not_under_valgrind "interop only: the wrong-PSK test covers the PSK path"
	need_cmd stunnel4
	# stunnel server -> a plain framed dgrelay -> echo
	echo_peer e udp
	relay plain tcp-listen:127.0.0.1:0 "udp:127.0.0.1:$(port e)"
	sp=$(free_port tcp)
	stunnel_psk sts server "$sp" "$(port plain)" "$K/psk"
	relay c udp-listen:127.0.0.1:0 "tls:127.0.0.1:$sp,psk=$K/psk"
	ping_udp "$(port c)" 300
	wait_for "$TMP/c.err" 'pre-shared key alice'
	# stunnel client (identity bob, a hexadecimal key) -> dgrelay server
	relay s "tls-listen:127.0.0.1:0,psk=$K/psk" "udp:127.0.0.1:$(port e)"
	cp=$(free_port tcp)
	stunnel_psk stc client "$cp" "$(port s)" "$K/psk-bob"
	relay c2 udp-listen:127.0.0.1:0 "tcp:127.0.0.1:$cp"
	ping_udp "$(port c2)" 300
	wait_for "$TMP/s.err" 'pre-shared key bob'
}

@test "tls: a wrong pre-shared key fails the handshake, one line each side" {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,psk=$K/psk,fork" "udp:127.0.0.1:$(port e)"
	run --separate-stderr timeout 20 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:127.0.0.1:$(port s),psk=$K/psk-wrong"
	echo "$stderr"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" == "dgrelay: tls:127.0.0.1:$(port s): "* ]]
	wait_for "$TMP/s.err" 'tls-listen.*: client 127.0.0.1 [0-9]+: '
	# and the right one still gets through
	relay c udp-listen:127.0.0.1:0 "tls:127.0.0.1:$(port s),psk=$K/psk-bob"
	ping_udp "$(port c)" 100
}

@test "tls: a psk client refuses a server that shows a certificate instead of taking the key, even one the system trusts" {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV,fork" "udp:127.0.0.1:$(port e)"
	# the test CA as the system's store: a plain client trusts the server
	export SSL_CERT_FILE=$K/ca.pem
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$(port s)"
	unset SSL_CERT_FILE
	ping_udp "$(port c)" 20
	# a psk client does not
	run --separate-stderr env SSL_CERT_FILE="$K/ca.pem" timeout 20 \
	    "$DGRELAY" udp-listen:127.0.0.1:0 "tls:localhost:$(port s),psk=$K/psk"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tls:localhost:$(port s): the server did not take the pre-shared key (it sent a certificate)" ]
}

@test "tls: DNS over TLS through udp-listen,fork and udp-listen,multi to unbound" {
	not_under_valgrind "interop only: the fork and multi tests cover these paths"
	need_cmd unbound
	need_cmd dig bind9-dnsutils
	up=$(free_port tcp)
	unbound_dot ub "$up" "$K/srv.key" "$K/srv.pem"
	# unbound answers over TLS itself
	[ "$(timeout 10 dig +tls +tls-ca="$K/ca.pem" +tls-hostname=localhost \
	    -p "$up" @127.0.0.1 a.test +short)" = 10.1.2.3 ]
	for mode in fork multi; do
		relay "r$mode" -t 2 "udp-listen:127.0.0.1:0,$mode" \
		    "tls:127.0.0.1:$up,cafile=$K/ca.pem"
		for i in 1 2 3 4 5; do
			for n in a b; do
				r=$(timeout 10 dig +notcp +tries=1 +time=5 \
				    -p "$(port "r$mode")" @127.0.0.1 $n.test \
				    A +short)
				want=10.1.2.3
				[ $n = b ] && want=10.1.2.4
				[ "$r" = "$want" ] ||
				    { echo "$mode: $n.test: '$r'"; false; }
			done
		done
	done
}

@test "tls: a wrong CA, a wrong name, an expired certificate: exit 1, one line naming the reason" {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV,fork" "udp:127.0.0.1:$(port e)"
	relay x "tls-listen:127.0.0.1:0,cert=$K/exp.pem,key=$K/exp.key,fork" \
	    "udp:127.0.0.1:$(port e)"
	try() {	# try ADDRESS REASON: the message names the address without
		# its options, the reason, and what to do about it
		run --separate-stderr timeout 20 "$DGRELAY" \
		    udp-listen:127.0.0.1:0 "$1"
		echo "status $status: $stderr"
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$stderr" = "dgrelay: ${1%%,*}: certificate verify failed: $2" ]
	}
	fix_ca="give cafile= with the CA that signed it (or the certificate itself), or verify=0 not to check it"
	try "tls:localhost:$(port s),cafile=$K/other.pem" \
	    "unable to get local issuer certificate; $fix_ca"
	try "tls:127.0.0.1:$(port s),cafile=$K/ca.pem,sni=elsewhere.example" \
	    "hostname mismatch; dial the name it was made for, or give sni= with it"
	try "tls:localhost:$(port x),cafile=$K/ca.pem" \
	    "certificate has expired; check the clocks, or renew it"
	# the system store does not know the test CA either
	try "tls:localhost:$(port s)" "unable to get local issuer certificate; $fix_ca"
	# dialled by address: the address is checked (the certificate has it)
	relay c udp-listen:127.0.0.1:0 "tls:127.0.0.1:$(port s),cafile=$K/ca.pem"
	ping_udp "$(port c)" 50
	wait_for "$TMP/c.err" 'verified as 127.0.0.1'
	# verify=0: no check, and -v says so
	relay n udp-listen:127.0.0.1:0 "tls:localhost:$(port x),verify=0"
	ping_udp "$(port n)" 50
	wait_for "$TMP/n.err" 'server NOT verified \(verify=0\)'
}

@test "tls: mutual TLS: with cafile= the server wants a client certificate it can verify" {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV,cafile=$K/ca.pem,fork" \
	    "udp:127.0.0.1:$(port e)"
	run --separate-stderr timeout 20 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port s),cafile=$K/ca.pem"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"certificate required"* ]]
	wait_for "$TMP/s.err" 'client 127.0.0.1 [0-9]+: peer did not return a certificate'
	relay c udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port s),cafile=$K/ca.pem,cert=$K/cli.pem,key=$K/cli.key"
	ping_udp "$(port c)" 100
	wait_for "$TMP/s.err" 'client test-client verified'
}

@test "tls: alpn= is offered and chosen; no common protocol fails the handshake" {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV,alpn=dot:h2,fork" \
	    "udp:127.0.0.1:$(port e)"
	relay c udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port s),cafile=$K/ca.pem,alpn=x:dot"
	ping_udp "$(port c)" 50
	wait_for "$TMP/c.err" ', alpn dot,'
	run --separate-stderr timeout 20 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port s),cafile=$K/ca.pem,alpn=http/1.1"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no application protocol"* ]]
}

# bad_clients PORT: what a TLS server meets: a plaintext dgrelay, garbage
# instead of a ClientHello, a client that connects and says nothing.
bad_clients() {
	printf '\000\005hello' | timeout 10 "$DGRELAY" stdio \
	    "tcp:127.0.0.1:$1" >/dev/null 2>&1 || true
	head -c 517 /dev/urandom | timeout 10 socat -t 2 - \
	    "TCP:127.0.0.1:$1" >/dev/null 2>&1 || true
	stdin_fifo
	bg_in silent "$TMP/in" socat -T 30 - "TCP:127.0.0.1:$1"
	hold_fifo
}

@test "tls: a forking server: plaintext, garbage, a silent client each end with a line; good clients are served throughout" {
	need_cmd socat
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,$SRV,fork,handshake-timeout=$HS" \
	    "udp:127.0.0.1:$(port e)"
	good_client "$(port s)" 1
	bad_clients "$(port s)"
	good_client "$(port s)" 2
	wait_for "$TMP/s.err" 'client 127.0.0.1 [0-9]+: (wrong version number|packet length too long|record layer failure)'
	wait_for "$TMP/s.err" "handshake: no answer in $HS s" 20
	[ "$(grep -c 'client 127.0.0.1' "$TMP/s.err")" -ge 3 ]
	good_client "$(port s)" 3
	kill -0 "$(pid_of s)"
}

# good_client PORT I: a new client, its datagrams through and back.
good_client() {
	relay "c$2" udp-listen:127.0.0.1:0 \
	    "tls:localhost:$1,cafile=$K/ca.pem"
	ping_udp "$(port "c$2")" 50
}

@test "tls: a multi server: bad clients end their sessions only, a silent one when the handshake times out" {
	need_cmd socat
	echo_peer e udp
	relay s -S "tls-listen:127.0.0.1:0,$SRV,multi,handshake-timeout=$HS" \
	    "udp:127.0.0.1:$(port e)"
	good_client "$(port s)" 1
	bad_clients "$(port s)"
	good_client "$(port s)" 2
	wait_for "$TMP/s.err" "handshake: no answer in $HS s" 20
	# the silent client's session is gone though it stays connected
	kill -0 "$(pid_of silent)"
	stats_until s 'multi: 5 sessions served, 2 running'
	good_client "$(port s)" 3
}

@test "tls: retry: the client comes back when the server does, and retry=N counts failed handshakes" {
	echo_peer e udp
	sp=$(free_port tcp)
	relay s "tls-listen:127.0.0.1:$sp,$SRV" "udp:127.0.0.1:$(port e)"
	relay c udp-listen:127.0.0.1:0 \
	    "tls:localhost:$sp,cafile=$K/ca.pem,retry,interval=0.2"
	# with retry, what comes before the connection is dropped: wait
	eventually 20 handshakes c 1
	lp=$(free_port udp)
	ping_udp "$(port c)" 50 "$lp"
	stop s
	relay s2 "tls-listen:127.0.0.1:$sp,$SRV" "udp:127.0.0.1:$(port e)"
	eventually 20 handshakes c 2
	eventually 20 handshakes s2 1
	ping_udp "$(port c)" 50 "$lp"
	# a server the client cannot verify: three failed attempts, exit 1
	relay s3 "tls-listen:127.0.0.1:0,$SRV,fork" "udp:127.0.0.1:$(port e)"
	run --separate-stderr timeout 30 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port s3),cafile=$K/other.pem,retry=3,interval=0.1"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"certificate verify failed: unable to get local issuer certificate; give cafile="*" (3 attempts)" ]]
}

handshakes() { [ "$(grep -c 'TLSv1' "$TMP/$1.err")" -ge "$2" ]; }

@test "tls: bad settings: usage errors (exit 2) and unreadable files (exit 1)" {
	bad tls-listen:0 udp:127.0.0.1:9 "tls-listen needs cert= (and key=) or psk="
	bad "tls-listen:0,psk=$K/psk,cert=$K/srv.pem" udp:127.0.0.1:9 \
	    "option psk excludes cert"
	bad "tls:h:1,key=$K/srv.key" udp:127.0.0.1:9 "option key needs cert"
	bad "tls-listen:0,$SRV,verify=0" udp:127.0.0.1:9 "apply to a client"
	bad "tls:h:1,alpn=a::b" udp:127.0.0.1:9 "option alpn"
	bad "tls:h:1,handshake-timeout=0" udp:127.0.0.1:9 "handshake-timeout"
	bad "tcp:h:1,cafile=x" udp:127.0.0.1:9 "does not apply"
	run --separate-stderr timeout 10 "$DGRELAY" \
	    "tls-listen:0,cert=$TMP/none.pem" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cert $TMP/none.pem: No such file or directory" ]]
	# a key that is not the certificate's: the message says so, naming both
	run --separate-stderr timeout 10 "$DGRELAY" \
	    "tls-listen:0,cert=$K/srv.pem,key=$K/other.key" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"key $K/other.key: does not match cert $K/srv.pem: "* ]]
	# a file that is no certificate: the call that read it is named
	run --separate-stderr timeout 10 "$DGRELAY" \
	    "tls-listen:0,cert=$K/psk,key=$K/srv.key" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cert $K/psk: reading a PEM certificate chain: "* ]]
	cp "$K/psk" "$TMP/open-psk"
	chmod 644 "$TMP/open-psk"
	run --separate-stderr timeout 10 "$DGRELAY" \
	    "tls-listen:0,psk=$TMP/open-psk" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"others may use it (chmod o-rwx)" ]]
	printf 'x:short\n' >"$TMP/short-psk"
	chmod 600 "$TMP/short-psk"
	run --separate-stderr timeout 10 "$DGRELAY" \
	    "tls-listen:0,psk=$TMP/short-psk" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"line 1: key of 5 bytes (16 to 512)" ]]
}

# psk_refused FILE REASON: a client with psk=FILE exits 1 at start, saying
# REASON (at once: a device or a FIFO is never read from)
psk_refused() {
	run --separate-stderr timeout 10 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:127.0.0.1:9,psk=$1"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[ "$stderr" = "dgrelay: tls:127.0.0.1:9,psk=$1: psk $1: $2" ]
}

@test "tls: the messages say the fix: keys that differ, an unknown identity, a cert without its key, verify=0 with cafile=" {
	echo_peer e udp
	relay s "tls-listen:127.0.0.1:0,psk=$K/psk-bob,fork" "udp:127.0.0.1:$(port e)"
	# the same identity, another key: both ends say so
	run --separate-stderr timeout 20 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:127.0.0.1:$(port s),psk=$K/psk-wrong"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[[ $stderr == "dgrelay: tls:127.0.0.1:$(port s): the server refused the pre-shared key: identity or key differ ("* ]]
	wait_for "$TMP/s.err" "client 127.0.0.1 [0-9]+: the client's pre-shared key differs from ours"
	# an identity the server does not know
	printf 'carol:00112233445566778899aabbccddeeff\n' >"$TMP/psk-carol"
	chmod 600 "$TMP/psk-carol"
	run --separate-stderr timeout 20 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:127.0.0.1:$(port s),psk=$TMP/psk-carol"
	[ "$status" -eq 1 ]
	[[ $stderr == *"the server refused the pre-shared key: identity or key differ"* ]]
	wait_for "$TMP/s.err" "the client offered no pre-shared key of ours"
	# a certificate file without the key, and no key=
	run --separate-stderr timeout 10 "$DGRELAY" "tls-listen:0,cert=$K/srv.pem" udp:127.0.0.1:9
	[ "$status" -eq 1 ]
	[[ $stderr == *"cert $K/srv.pem holds no private key: give key= with the file that does"* ]]
	# options that contradict each other are a usage error
	bad "tls:h:1,cafile=$K/ca.pem,verify=0" udp:127.0.0.1:9 \
	    "options verify=0 and cafile exclude each other"
}

@test "tls: psk= is a bounded regular file: no device, FIFO, NUL byte or giant; its group may read it" {
	psk_refused /dev/zero "not a regular file"
	mkfifo "$TMP/fifo"
	chmod 600 "$TMP/fifo"
	psk_refused "$TMP/fifo" "not a regular file"
	printf 'bo\000b:a-text-key-of-24-bytes\n' >"$TMP/nul"
	chmod 600 "$TMP/nul"
	psk_refused "$TMP/nul" "line 1: a NUL byte"
	head -c 1048577 /dev/zero | tr '\0' '\n' >"$TMP/big"
	chmod 600 "$TMP/big"
	psk_refused "$TMP/big" "larger than 1048576 bytes"
	# 640: a service's group may read it (stunnel checks others only):
	# taken, so the client goes on to connect, and is refused there
	cp "$K/psk" "$TMP/group-psk"
	chmod 640 "$TMP/group-psk"
	run --separate-stderr timeout 10 "$DGRELAY" udp-listen:127.0.0.1:0 \
	    "tls:127.0.0.1:9,psk=$TMP/group-psk"
	echo "status $status: $stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": connect to 127.0.0.1 9: Connection refused" ]]
}

@test "tls: -Z: the key is read before privileges go (a key only root may read)" {
	need_root
	cp "$K/srv.key" "$TMP/root.key"
	chmod 600 "$TMP/root.key"
	chmod 755 "$TMP"
	echo_peer e udp
	relay s -Z nobody "tls-listen:127.0.0.1:0,cert=$K/srv.pem,key=$TMP/root.key" \
	    "udp:127.0.0.1:$(port e)"
	relay c udp-listen:127.0.0.1:0 "tls:localhost:$(port s),cafile=$K/ca.pem"
	ping_udp "$(port c)" 50
	as_nobody "$(child_of s)"
}

@test "tls: a multi server says each failure cause at most once a second, with how many more" {
	echo_peer e udp
	relay s -S "tls-listen:127.0.0.1:0,$SRV,multi" "udp:127.0.0.1:$(port e)"
	# 300 clients that send garbage (half of a plaintext frame)
	run timeout 60 "$PEER" siege -t 1 300 0 127.0.0.1 "$(port s)"
	[ "$status" -eq 0 ]
	stats_until s 'multi: 300 sessions served, 0 running' 30
	stop s
	grep 'client 127.0.0.1' "$TMP/s.err" | head -n 5
	said=$(grep -c 'client 127.0.0.1 [0-9]*: ' "$TMP/s.err")
	# every failure is said or counted: its line, "and N more like it since"
	# and, at the end, "N more failures"
	more=$(sed -n 's/.*(and \([0-9]*\) more like it since)$/\1/p;
	    s/.*: \([0-9]*\) more failures: .*/\1/p' "$TMP/s.err" |
	    awk '{ n += $1 } END { print n + 0 }')
	echo "said $said, more $more"
	[ $((said + more)) -eq 300 ]
	[ "$said" -lt 100 ]
}

# unauthenticated MODE PORT: ten peers that never authenticate (mTLS: no
# client certificate, or one another CA signed; psk: garbage, plaintext)
unauthenticated() {
	local i
	for i in 1 2 3 4 5; do
		if [ "$1" = mtls ]; then
			timeout 10 openssl s_client -connect "127.0.0.1:$2" \
			    -servername localhost </dev/null >/dev/null 2>&1 ||
			    true
			timeout 10 openssl s_client -connect "127.0.0.1:$2" \
			    -cert "$K/other.pem" -key "$K/other.key" \
			    </dev/null >/dev/null 2>&1 || true
		else
			head -c 517 /dev/urandom | timeout 10 socat -t 1 - \
			    "TCP:127.0.0.1:$2" >/dev/null 2>&1 || true
			printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 socat -t 1 - \
			    "TCP:127.0.0.1:$2" >/dev/null 2>&1 || true
		fi
	done
	return 0
}
started() { grep -c . "$TMP/started" 2>/dev/null || echo 0; }

@test "tls: an unauthenticated peer opens nothing: no command, no backend connection (multi, fork, pair)" {
	need_cmd socat
	# an exec: backend that says each start, behind a mutual-TLS server
	exe="exec:echo started >>$TMP/started; exec cat"
	relay m "tls-listen:127.0.0.1:0,$SRV,cafile=$K/ca.pem,multi" "$exe"
	unauthenticated mtls "$(port m)"
	# ten sessions ended (their failures said once a second a cause)
	eventually 20 said m 'session ended' 10
	grep -q 'peer did not return a certificate' "$TMP/m.err"
	[ "$(started)" -eq 0 ]
	relay c udp-listen:127.0.0.1:0 \
	    "tls:localhost:$(port m),cafile=$K/ca.pem,cert=$K/cli.pem,key=$K/cli.key"
	ping_udp "$(port c)" 20
	[ "$(started)" -eq 1 ]
	# a TCP backend that counts its connections, behind a PSK server
	echo_peer e udp
	relay b tcp-listen:127.0.0.1:0,multi "udp:127.0.0.1:$(port e)"
	relay f "tls-listen:127.0.0.1:0,psk=$K/psk,fork" "tcp:127.0.0.1:$(port b)"
	unauthenticated psk "$(port f)"
	relay p "tls-listen:127.0.0.1:0,psk=$K/psk" "tcp:127.0.0.1:$(port b)"
	unauthenticated psk "$(port p)"
	wait_exit p 20
	[ "$(grep -c 'connection from' "$TMP/b.err")" -eq 0 ]
	relay c2 udp-listen:127.0.0.1:0 "tls:127.0.0.1:$(port f),psk=$K/psk"
	ping_udp "$(port c2)" 20
	[ "$(grep -c 'connection from' "$TMP/b.err")" -eq 1 ]
}
