# Shared by every test file: start processes under timeout, wait with
bats_require_minimum_version 1.5.0
# deadlines, read ports from "listening on" lines, kill by PID in teardown.

DGRELAY=${DGRELAY:-$BATS_TEST_DIRNAME/../dgrelay}
PEER=$BATS_TEST_DIRNAME/dgpeer
LIFE=${LIFE:-60}	# seconds any background process may live

setup() {
	TMP=$BATS_TEST_TMPDIR
	: >"$TMP/pids"
}

teardown() {
	kill_bg
}

# kill_bg: end every process bg started (TERM, then KILL after 5 s).
kill_bg() {
	local pid n
	while read -r pid; do
		kill -TERM "$pid" 2>/dev/null || continue
	done <"$TMP/pids"
	for n in $(seq 50); do
		alive=0
		while read -r pid; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done <"$TMP/pids"
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	# timeout passes TERM on, not KILL: kill what it runs as well
	while read -r pid; do
		pkill -KILL -P "$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null || true
	done <"$TMP/pids"
}

# bg NAME CMD...: run CMD in the background under timeout; its output goes
# to $TMP/NAME.out and $TMP/NAME.err; its PID to $TMP/NAME.pid.
bg() {
	local name=$1
	shift
	timeout "$LIFE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" 3>&- &
	echo $! >"$TMP/$name.pid"
	echo $! >>"$TMP/pids"
}

# bg_in NAME INPUT CMD...: as bg, with stdin from the file or fifo INPUT.
bg_in() {
	local name=$1 input=$2
	shift 2
	timeout "$LIFE" "$@" <"$input" >"$TMP/$name.out" \
	    2>"$TMP/$name.err" 3>&- &
	echo $! >"$TMP/$name.pid"
	echo $! >>"$TMP/pids"
}

pid_of() { cat "$TMP/$1.pid"; }

# eventually SECS CMD...: until CMD succeeds, trying every 0.05 s; after
# SECS seconds it fails, saying what it waited for.  Every wait of the
# suite is one of these (or built on one).
eventually() {
	local secs=$1 n
	shift
	for n in $(seq $((secs * 20))); do
		"$@" && return 0
		sleep 0.05
	done
	echo "gave up after $secs s waiting for: $*" >&2
	return 1
}

# The process timeout runs for NAME (signals other than TERM/INT/HUP do not
# pass through timeout).
child_of() {
	eventually 5 pgrep -P "$(pid_of "$1")"
}

# wait_for FILE REGEX [SECONDS]: until a line of FILE matches.
wait_for() {
	local file=$1 re=$2 secs=${3:-10}
	eventually "$secs" grep -sqE -- "$re" "$file" && return 0
	cat "$file" >&2 2>/dev/null
	return 1
}

gone() { ! kill -0 "$1" 2>/dev/null; }

# wait_exit NAME [SECONDS]: wait for NAME to end; its status in $status_of.
wait_exit() {
	local pid secs=${2:-10}
	pid=$(pid_of "$1")
	eventually "$secs" gone "$pid" || return 1
	# its status is data, not a failure of the test (set -e)
	status_of=0
	wait "$pid" || status_of=$?
}

# stop NAME [SIGNAL]: signal NAME and wait for it; status in $status_of.
stop() {
	kill "-${2:-TERM}" "$(pid_of "$1")"
	wait_exit "$1"
}

# port NAME: the port from NAME's "listening on HOST PORT" line (stderr;
# not -M's), or from a dgpeer "port N" line (stdout).
port() {
	if [ -e "$TMP/$1.err" ] && grep -v '^dgrelay: -M ' "$TMP/$1.err" |
	    grep -q 'listening on'; then
		grep -v '^dgrelay: -M ' "$TMP/$1.err" |
		    sed -n 's/.*listening on [^ ]* \([0-9]*\)$/\1/p' |
		    head -n 1
		return
	fi
	awk '/^port /{print $2; exit}' "$TMP/$1.out"
}

# mport NAME: the port of NAME's -M listener.
mport() {
	sed -n 's/^dgrelay: -M .*listening on [^ ]* \([0-9]*\)$/\1/p' \
	    "$TMP/$1.err" | head -n 1
}

# relay NAME ARGS...: dgrelay -v in the background; waits for it to listen
# when an address listens.
relay() {
	local name=$1
	shift
	bg "$name" "$DGRELAY" -v "$@"
	case "$*" in
	*-listen:*) wait_for "$TMP/$name.err" 'listening on' ;;
	esac
}

# echo_peer NAME TYPE [ARGS...]: a dgpeer echo server; waits until bound.
echo_peer() {
	local name=$1
	shift
	bg "$name" "$PEER" echo "$@"
	wait_for "$TMP/$name.out" '^(port|listening)'
}

# hexof FILE: the bytes of FILE as one hex string.
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }

# unhex HEX: write the bytes HEX spells.
unhex() {
	# shellcheck disable=SC2059
	printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"
}

# frames HEX...: write the frames of the given payloads (hex, "-" empty).
frames() {
	local h
	for h in "$@"; do
		[ "$h" = - ] && h=
		unhex "$(printf '%04x' $(( ${#h} / 2 )))$h"
	done
}

# holds_socket PID: PID has a socket open.
holds_socket() {
	local f
	for f in "/proc/$1/fd/"*; do
		[[ "$(readlink "$f" 2>/dev/null)" == socket:* ]] && return 0
	done
	return 1
}

# ready NAME: until NAME's process (under timeout) holds a socket: its
# signal handlers are in place by then.
ready() {
	local kid
	kid=$(child_of "$1") && eventually 10 holds_socket "$kid"
}

# bytes_in FILE N: wait until FILE holds at least N bytes.
has_bytes() { [ "$(stat -c %s "$1")" -ge "$2" ]; }
bytes_in() {
	eventually 10 has_bytes "$1" "$2" ||
	    { echo "$1 has $(stat -c %s "$1") bytes, want $2" >&2; return 1; }
}

# stats_until NAME REGEX [SECONDS]: SIGUSR1 to NAME's dgrelay until its
# counter lines (stderr) match REGEX.
usr1_match() { kill -USR1 "$1"; sleep 0.05; grep -qE -- "$2" "$3"; }
stats_until() {
	local kid
	kid=$(child_of "$1") &&
	    eventually "${3:-10}" usr1_match "$kid" "$2" "$TMP/$1.err"
}

# as_nobody PID: PID runs as uid and gid 65534 (real, effective).
as_nobody() {
	[ "$(awk '/^(Uid|Gid):/{printf "%s %s ", $2, $3}' "/proc/$1/status")" \
	    = "65534 65534 65534 65534 " ]
}

# children_are PID N: PID has N child processes.
children_are() { [ "$(pgrep -P "$1" | grep -c .)" -eq "$2" ]; }

# accept_queue PORT N: N connections wait in TCP PORT's accept queue.
accept_queue() { [ "$(ss -Htln "sport = :$1" | awk '{print $2}')" = "$2" ]; }

# free_port udp|tcp: a port that is free now.
free_port() { "$PEER" free "$1" | awk '{print $2}'; }

# stdin_fifo: a fifo for a relay's stdin; hold_fifo holds it open on fd 5.
stdin_fifo() { mkfifo "$TMP/in"; }
hold_fifo() { exec 5>"$TMP/in"; }

# bad ARGS... MESSAGE: dgrelay ARGS exits 2 with exactly one stderr line
# containing MESSAGE, and writes nothing to stdout.
bad() {
	local msg=${*: -1}
	run --separate-stderr timeout 30 "$DGRELAY" "${@:1:$#-1}"
	[ "$status" -eq 2 ] || { echo "status $status: $stderr"; return 1; }
	[ -z "$output" ] || { echo "stdout: $output"; return 1; }
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] ||
	    { echo "stderr: $stderr"; return 1; }
	[[ "$stderr" == *"$msg"* ]] ||
	    { echo "stderr '$stderr' lacks '$msg'"; return 1; }
}

# not_under_valgrind WHY: skip a test too heavy for `make valgrind`.
not_under_valgrind() {
	[ -z "${VG_LOGS:-}" ] || skip "under valgrind: $1"
}

# two_netns [MTU]: network namespaces $NA and $NB joined by a veth pair,
# va 10.201.0.1/30 in $NA and vb 10.201.0.2/30 in $NB (MTU if given);
# del_netns removes them (from teardown, so a failed test leaves none).
two_netns() {
	NA=dgr-$$-$BATS_TEST_NUMBER-a
	NB=dgr-$$-$BATS_TEST_NUMBER-b
	ip netns add "$NA"
	ip netns add "$NB"
	ip -n "$NA" link set lo up
	ip -n "$NB" link set lo up
	ip -n "$NA" link add va ${1:+mtu "$1"} type veth peer name vb \
	    ${1:+mtu "$1"} netns "$NB"
	ip -n "$NA" addr add 10.201.0.1/30 dev va
	ip -n "$NB" addr add 10.201.0.2/30 dev vb
	ip -n "$NA" link set va up
	ip -n "$NB" link set vb up
}

del_netns() {
	[ -n "${NA:-}" ] && ip netns del "$NA" 2>/dev/null
	[ -n "${NB:-}" ] && ip netns del "$NB" 2>/dev/null
	return 0
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root (uid 0), running as uid $(id -u)"
}

need_cmd() {
	command -v "$1" >/dev/null ||
	    skip "needs $1 (Debian package ${2:-$1}), not installed"
}

# bg_fds NAME N CMD...: as bg, CMD with descriptors 0-2 only (bats leaves
# others open) and a limit of N, so that a ulimit -n counts exactly.
bg_fds() {
	local name=$1 n=$2
	shift 2
	# shellcheck disable=SC2016 # for the inner shell
	bg "$name" bash -c 'for f in /proc/$$/fd/*; do n=${f##*/};
	    [ "$n" -gt 2 ] && eval "exec $n>&-"; done
	    ulimit -n '"$n"' && exec "$0" "$@"' "$@"
}

# no_spin NAME: NAME's process (under timeout) uses under 0.2 s of CPU
# in 2 s: it waits, it does not spin.
no_spin() {
	local kid t0 t1
	kid=$(child_of "$1")
	t0=$(awk '{ print $14 + $15 }' "/proc/$kid/stat")
	sleep 2
	t1=$(awk '{ print $14 + $15 }' "/proc/$kid/stat")
	echo "CPU ticks in 2 s: $((t1 - t0))"
	[ $((t1 - t0)) -lt 20 ]
}

# unbound_dot NAME PORT KEY CERT: unbound serving DNS over TLS on
# 127.0.0.1:PORT (a.test 10.1.2.3, b.test 10.1.2.4; up to 1,000 TCP
# clients at once), in the background as NAME; waits until it listens.
unbound_dot() {
	cat >"$TMP/$1.conf" <<-EOF
	server:
	  interface: 127.0.0.1@$2
	  tls-port: $2
	  tls-service-key: "$3"
	  tls-service-pem: "$4"
	  incoming-num-tcp: 1000
	  do-daemonize: no
	  username: ""
	  chroot: ""
	  pidfile: ""
	  directory: "$TMP"
	  use-syslog: no
	  logfile: ""
	  local-zone: "test." static
	  local-data: "a.test. A 10.1.2.3"
	  local-data: "b.test. A 10.1.2.4"
	  access-control: 127.0.0.0/8 allow
	  module-config: "iterator"
	remote-control:
	  control-enable: no
	EOF
	bg "$1" unbound -d -c "$TMP/$1.conf"
	eventually 20 listening_tcp "$2"
}
listening_tcp() { ss -Htln "sport = :$1" | grep -q .; }

# said NAME REGEX N: NAME's stderr has at least N lines matching REGEX.
said() { [ "$(grep -cE -- "$2" "$TMP/$1.err")" -ge "$3" ]; }

# counter NAME DIR FIELD: a number from NAME's last counter line of DIR
# (1>2 or 2>1), the one before " FIELD".
counter() {
	sed -n "s/.*$2: \\([0-9]*\\) $3,.*/\\1/p; s/.*$2: .* \\([0-9]*\\) $3\\(,.*\\)*\$/\\1/p" \
	    "$TMP/$1.err" | tail -n 1
}

# barrier NAME [PID]: NAME (a dgrelay, or PID when it is not NAME's
# child) has printed its counters once more on SIGUSR1: everything it had
# been handed before is handled.  A check that
# nothing more happened waits for this, not for a fixed time.
barrier() {
	local n pid=${2:-}
	n=$(grep -c '1>2: ' "$TMP/$1.err" || :)
	[ -n "$pid" ] || pid=$(child_of "$1")
	kill -USR1 "$pid"
	eventually 30 said "$1" '1>2: ' $((n + 1))
}

# accept_backs_off MODE PORT: a tcp-listen,MODE (fork or multi) relay to
# udp PORT with no descriptor to spare for a connection: accept fails,
# it says so (one policy for both modes), pauses a second and does not
# spin; it serves on and ends cleanly.
accept_backs_off() {
	bg_fds r2 5 "$DGRELAY" -v "tcp-listen:127.0.0.1:0,$1" \
	    udp:127.0.0.1:"$2"
	wait_for "$TMP/r2.err" 'listening on'
	bg_in c /dev/null "$PEER" rst -w 2000 127.0.0.1 "$(port r2)"
	wait_for "$TMP/r2.err" 'accept: Too many open files; accepting again in 1 s' 10
	no_spin r2
	wait_exit c
	kill -0 "$(pid_of r2)"
	[ "$(grep -c 'accept: Too many open files' "$TMP/r2.err")" -le 4 ]
	stop r2
	[ "$status_of" -eq 0 ]
}

# tls_cert DIR NAME CN EXTFILE DAYS: NAME.key and NAME.pem in DIR, for CN,
# signed by DIR's ca (tls_ca) with EXTFILE's extensions, DAYS valid.
tls_cert() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$1/$2.key" -out "$1/$2.csr" -subj "/CN=$3" \
	    2>/dev/null &&
	openssl x509 -req -in "$1/$2.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" \
	    -CAcreateserial -out "$1/$2.pem" -days "$5" -extfile "$4" \
	    2>/dev/null
}

# tls_ca DIR: a test CA (ca.pem, ca.key) and a server certificate for
# localhost and 127.0.0.1 (srv.pem, srv.key) in DIR; PSK files psk-bob and
# psk-wrong (one identity, two keys), mode 600.
tls_ca() {
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$1/ext"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$1/ca.key" -out "$1/ca.pem" -days 30 \
	    -subj /CN=dgrelay-test-ca 2>/dev/null
	tls_cert "$1" srv localhost "$1/ext" 30
	printf 'bob:00112233445566778899aabbccddeeff\n' >"$1/psk-bob"
	printf 'bob:ffeeddccbbaa99887766554433221100\n' >"$1/psk-wrong"
	chmod 600 "$1/psk-bob" "$1/psk-wrong"
}
