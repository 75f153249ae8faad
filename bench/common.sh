# shellcheck shell=bash
# Sourced by the bench scripts: their background processes in pids, a
# scratch directory in tmp, both cleaned up at exit; median of numbers;
# PSS of a process tree; the kernel's UDP drops; a wait for a listener.
tmp=$(mktemp -d)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		pkill -P "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() {	# the median of the numbers on stdin
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-";
	    else if (NR % 2) print v[(NR + 1) / 2];
	    else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# pss PID: PSS in kB of PID (0 once it is gone)
pss() {
	awk '/^Pss:/ { print $2; f = 1 } END { if (!f) print 0 }' \
	    "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}

# tree_pss PID: PSS in kB of PID and every process under it (one pass
# over the process table)
tree_pss() {
	local p sum=0
	for p in $(ps -e -o pid=,ppid= | awk -v root="$1" '
	    { kid[$2] = kid[$2] " " $1 }
	    END { q[1] = root; n = 1
		for (i = 1; i <= n; i++) { print q[i]
		    m = split(kid[q[i]], k, " ")
		    for (j = 1; j <= m; j++) q[++n] = k[j] } }'); do
		sum=$((sum + $(pss "$p")))
	done
	echo "$sum"
}

# the kernel's UDP drops at full receive buffers, so far
rcvbuf_errors() {
	awk '$1 == "Udp:" && ++n == 2 { print $6 }' /proc/net/snmp
}

until_listening() {
	local i
	for i in $(seq 200); do
		ss -Htuln "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# until_in FILE REGEX [TENTHS]: until a line of FILE matches (60 s)
until_in() {
	local i
	for i in $(seq "${3:-600}"); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# bench_certs_echo: a self-signed certificate for localhost ($tmp/c.pem,
# $tmp/k.pem) and a UDP echo with a 16 MiB buffer, its port in echo_port
bench_certs_echo() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$tmp/k.pem" -out "$tmp/c.pem" -days 2 \
	    -subj /CN=localhost 2>/dev/null
	test/dgpeer echo -R 16777216 udp >"$tmp/echo.out" &
	pids+=($!)
	sleep 0.3
	echo_port=$(awk '/^port/ {print $2; exit}' "$tmp/echo.out")
}

# start NAME ARGS...: a dgrelay ($D) in the background, stderr to
# $tmp/NAME.err, its PID in NAME_pid
start() {
	local name=$1
	shift
	"$D" -v "$@" 2>"$tmp/$name.err" &
	pids+=($!)
	eval "${name}_pid=$!"
}

# lport NAME: the port NAME listens on (its first listener)
lport() {
	local i
	for i in $(seq 100); do
		grep -q 'listening on' "$tmp/$1.err" && break
		sleep 0.05
	done
	sed -n 's/.*listening on [^ ]* \([0-9]*\)$/\1/p' "$tmp/$1.err" | head -n 1
}

# stop_all: every background process but the first (the echo) ended
stop_all() {
	local p
	for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null; done
	wait "${pids[@]:1}" 2>/dev/null
	pids=("${pids[0]}")
}
