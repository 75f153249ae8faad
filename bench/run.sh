#!/usr/bin/env bash
# shellcheck disable=SC2016 # awk programs, single-quoted on purpose
# make bench: a UDP->TCP->UDP tunnel of two relay processes, measured side
# by side for dgrelay, udptunnel and socat, with raw UDP loopback (no
# relay) as the baseline, all in the same run.
#
#   dgbench gen --> 127.0.0.1:IN [entry relay] --TCP:T--> [exit relay]
#       --> 127.0.0.2:OUT dgbench recv
#
# Figures per run: offered and delivered datagrams a second, Gbit/s, loss,
# corrupt/merged/truncated/reordered datagrams, and the two relays' CPU
# time (/proc/PID/schedstat), giving datagrams per relay CPU-second.
# Medians of BENCH_REPS runs; raw rows go to bench/results/COMMIT.tsv and
# the table to bench/results/COMMIT.txt.
#
# The tool dgrelay-tls (dg-tls in the table) is the same tunnel with TLS
# between the relays (tls-listen with a certificate made here by openssl,
# tls with cafile=): the CPU a datagram costs, beside plain dgrelay's.
# The tool dgrelay-mux (dg-mux) carries the flow as a yamux stream of a
# carrier: udp-listen,multi to tcp:...,mux, and tcp-listen,mux to udp:.
#
# Environment: BENCH_SECONDS (2), BENCH_REPS (3), BENCH_SIZES ("64 1200
# 8192 65000"), BENCH_TOOLS ("raw dgrelay dgrelay-tls dgrelay-mux
# udptunnel socat"),
# BENCH_RATE (50000, the fixed-rate run), DGRELAY (./dgrelay).  A tool
# "custom" runs BENCH_ENTRY and BENCH_EXIT, command templates in which
# @IN@, @TCP@ and @OUT@ stand for the ports above; the table calls it
# BENCH_NAME (custom), for instance an older dgrelay beside this one.
set -u
cd "$(dirname "$0")/.." || exit 1

B=bench/dgbench
D=${DGRELAY:-./dgrelay}
SECS=${BENCH_SECONDS:-2}
REPS=${BENCH_REPS:-3}
SIZES=${BENCH_SIZES:-64 1200 8192 65000}
TOOLS=${BENCH_TOOLS:-raw dgrelay dgrelay-tls dgrelay-mux udptunnel socat}
RATE=${BENCH_RATE:-50000}
rev=$(git rev-parse --short HEAD 2>/dev/null || echo tree)
git diff --quiet HEAD 2>/dev/null || rev="$rev+"
mkdir -p bench/results
TSV=bench/results/$rev.tsv
TXT=bench/results/$rev.txt
# shellcheck source=bench/common.sh
. bench/common.sh
port=$((20000 + ($$ % 2000) * 10))

have() {
	case $1 in
	raw|dgrelay|dgrelay-mux|custom) return 0 ;;
	dgrelay-tls) command -v openssl >/dev/null ;;
	*) command -v "$1" >/dev/null ;;
	esac
}

# The relay commands of a tool for ports $in $tcp $out.
exit_cmd() {
	case $1 in
	dgrelay) echo "$D tcp-listen:127.0.0.1:$tcp udp:127.0.0.2:$out" ;;
	dgrelay-tls) echo "$D tls-listen:127.0.0.1:$tcp,cert=$tmp/srv.pem,key=$tmp/srv.key udp:127.0.0.2:$out" ;;
	dgrelay-mux) echo "$D tcp-listen:127.0.0.1:$tcp,mux udp:127.0.0.2:$out" ;;
	udptunnel) echo "udptunnel -s $tcp 127.0.0.2/$out" ;;
	socat) echo "socat -b 65536 tcp-listen:$tcp,bind=127.0.0.1,reuseaddr udp:127.0.0.2:$out" ;;
	custom) subst "$BENCH_EXIT" ;;
	esac
}

entry_cmd() {
	case $1 in
	dgrelay) echo "$D udp-listen:127.0.0.1:$in tcp:127.0.0.1:$tcp" ;;
	dgrelay-tls) echo "$D udp-listen:127.0.0.1:$in tls:127.0.0.1:$tcp,cafile=$tmp/srv.pem" ;;
	dgrelay-mux) echo "$D udp-listen:127.0.0.1:$in,multi tcp:127.0.0.1:$tcp,mux" ;;
	udptunnel) echo "udptunnel -c 127.0.0.1/$tcp 127.0.0.1/$in" ;;
	socat) echo "socat -b 65536 udp-listen:$in,bind=127.0.0.1 tcp:127.0.0.1:$tcp" ;;
	custom) subst "$BENCH_ENTRY" ;;
	esac
}

subst() {
	local s=$1
	s=${s//@IN@/$in}
	s=${s//@TCP@/$tcp}
	echo "${s//@OUT@/$out}"
}

# wait_listen tcp|udp PORT: until something is bound there (5 s at most)
wait_listen() {
	local i
	for ((i = 0; i < 100; i++)); do
		if [ "$1" = tcp ]; then
			ss -Hltn "sport = :$2" | grep -q . && return 0
		else
			ss -Hlun "sport = :$2" | grep -q . && return 0
		fi
		sleep 0.05
	done
	echo "bench: nothing listens on $1 port $2" >&2
	return 1
}

# cpu PID...: on-CPU nanoseconds, user and system ticks of the relays
# under the given timeout(1) processes, summed: "NS UTICKS STICKS"
cpu() {
	local p c ns=0 u=0 k=0 t st kids
	for p in "$@"; do
		kids=()
		{ read -ra kids < "/proc/$p/task/$p/children"; } 2>/dev/null
		for c in "${kids[@]}"; do
			{ read -r t _ < "/proc/$c/schedstat" &&
			    read -ra st < "/proc/$c/stat"; } 2>/dev/null ||
			    continue
			ns=$((ns + t))
			u=$((u + st[13]))
			k=$((k + st[14]))
		done
	done
	echo "$ns $u $k"
}

# start_tunnel TOOL: the exit relay, then the entry; sets relays=(pids)
start_tunnel() {
	local cmd
	relays=()
	[ "$1" = raw ] && return 0
	read -ra cmd <<< "$(exit_cmd "$1")"
	timeout 600 "${cmd[@]}" 2>>"$tmp/relay.err" &
	relays+=($!)
	wait_listen tcp "$tcp" || return 1
	read -ra cmd <<< "$(entry_cmd "$1")"
	timeout 600 "${cmd[@]}" 2>>"$tmp/relay.err" &
	relays+=($!)
	wait_listen udp "$in" || return 1
	pids+=("${relays[@]}")
}

stop_tunnel() {
	local p
	for p in "${relays[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}

# one TOOL MODE SIZE REP [RATE]: a run; appends a row to $TSV
one() {
	local tool=$1 mode=$2 size=$3 rep=$4 rate=${5:-0} g="" dst c0 c1
	local u0 u1 k0 k1
	local sent rline
	in=$((port)) tcp=$((port + 1)) out=$((port + 2))
	port=$((port + 3))
	[ "$mode" = gso ] && g=-g
	timeout 120 $B recv $g -t 500 -T $((SECS + 5)) -s "$size" 127.0.0.2 "$out" \
	    > "$tmp/recv" &
	local rp=$!
	pids+=("$rp")
	wait_listen udp "$out" || return 1
	start_tunnel "$tool" || { stop_tunnel; return 1; }
	dst=$in
	[ "$tool" = raw ] && dst=$out
	local host=127.0.0.1
	[ "$tool" = raw ] && host=127.0.0.2
	read -r c0 u0 k0 <<< "$(cpu "${relays[@]}")"
	local r=()
	[ "$rate" = 0 ] || r=(-r "$rate")
	sent=$(timeout 60 $B gen $g -t "$SECS" "${r[@]}" -s "$size" \
	    "$host" "$dst" | awk '{print $2}')
	wait "$rp"
	read -r c1 u1 k1 <<< "$(cpu "${relays[@]}")"
	stop_tunnel
	rline=$(grep '^recv' "$tmp/recv")
	# tool mode size rate rep sent recv bytes corrupt merged truncated
	# reordered ns cpu_ns user_ticks sys_ticks (a relay that died
	# during the run: no CPU figure, 0)
	local cpu=$((c1 - c0)) ut=$((u1 - u0)) kt=$((k1 - k0))
	if [ "$cpu" -le 0 ] || [ "$ut" -lt 0 ] || [ "$kt" -lt 0 ]; then
		cpu=0 ut=0 kt=0
	fi
	echo "$rline" | awk -v t="$tool" -v m="$mode" -v s="$size" \
	    -v r="$rate" -v rep="$rep" -v sent="${sent:-0}" -v cpu="$cpu" \
	    -v ut="$ut" -v kt="$kt" 'BEGIN { OFS = "\t" }
	    { print t, m, s, r, rep, sent, $2, $4, $6, $8, $10, $12, $14, cpu,
	    ut, kt }' >> "$TSV"
}

ping_one() {
	local tool=$1 rep=$2 rp
	in=$((port)) tcp=$((port + 1)) out=$((port + 2))
	port=$((port + 3))
	local back=() from=()
	if [ "$tool" = udptunnel ]; then	# see dgbench.c
		back=(-d "127.0.0.1:$out")
		from=(-B "127.0.0.1:$in")
	fi
	timeout 120 $B echo "${back[@]}" 127.0.0.2 "$out" > /dev/null &
	rp=$!
	pids+=("$rp")
	wait_listen udp "$out" || return 1
	start_tunnel "$tool" || { stop_tunnel; return 1; }
	local host=127.0.0.1 dst=$in
	[ "$tool" = raw ] && host=127.0.0.2 dst=$out
	[ "$tool" = udptunnel ] && host=127.0.0.3
	timeout 60 $B ping "${from[@]}" -n 2000 -i 1000 -s 64 "$host" "$dst" |
	    awk -v t="$tool" -v rep="$rep" 'BEGIN { OFS = "\t" }
	    { print "ping", t, rep, $5, $7, $9 }' >> "$tmp/ping"
	stop_tunnel
	kill "$rp" 2>/dev/null
	wait "$rp" 2>/dev/null
	return 0
}

label() {
	case $1 in
	custom) echo "${BENCH_NAME:-custom}" ;;
	dgrelay-tls) echo dg-tls ;;
	dgrelay-mux) echo dg-mux ;;
	*) echo "$1" ;;
	esac
}

# A self-signed certificate for 127.0.0.1, for dgrelay-tls.
tls_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$tmp/srv.key" -out "$tmp/srv.pem" -days 2 \
	    -subj /CN=bench -addext subjectAltName=IP:127.0.0.1 2>/dev/null
}


# col TOOL MODE SIZE RATE EXPR: median over reps of an awk expression
col() {
	awk -F'\t' -v t="$1" -v m="$2" -v s="$3" -v r="$4" \
	    '$1 == t && $2 == m && $3 == s && $4 == r { print '"$5"' }' \
	    "$TSV" | median
}

: > "$TSV"
: > "$tmp/ping"
tools=()
for t in $TOOLS; do
	if have "$t"; then
		tools+=("$t")
	else
		echo "bench: $t is not installed: skipped" >&2
	fi
done
[ -x "$B" ] || { echo "bench: $B is not built" >&2; exit 1; }
case " ${tools[*]} " in
*" dgrelay-tls "*) tls_cert || { echo "bench: openssl req failed" >&2; exit 1; } ;;
esac

echo "bench: ${#tools[@]} tools, sizes $SIZES, $REPS runs of $SECS s each" >&2
for rep in $(seq "$REPS"); do
	for t in "${tools[@]}"; do
		for mode in plain gso; do
			for s in $SIZES; do
				one "$t" "$mode" "$s" "$rep" ||
				    echo "bench: $t $mode $s failed" >&2
			done
		done
		one "$t" plain 1200 "$rep" "$RATE" ||
		    echo "bench: $t at $RATE pps failed" >&2
		ping_one "$t" "$rep" || echo "bench: $t ping failed" >&2
	done
	echo "bench: round $rep of $REPS done" >&2
done

# dg/CPU-s: datagrams delivered per second of relay CPU (both relays)
DGCPU='($14 > 0 ? $7 / ($14 / 1e9) : 0)'
{
	echo "# dgrelay bench $rev, $(date -u +%Y-%m-%d), $(nproc) cores," \
	    "$(uname -r), medians of $REPS runs of $SECS s"
	echo
	echo "Flat out (sender as fast as it can):"
	printf '%-9s %-5s %6s %10s %10s %7s %7s %12s %9s %5s %4s\n' tool \
	    send size sent/s recv/s Gbit/s loss% dg/CPU-s vs-udpt sys% bad
	for mode in plain gso; do
		for s in $SIZES; do
			ref=$(col udptunnel "$mode" "$s" 0 "$DGCPU")
			for t in "${tools[@]}"; do
				dg=$(col "$t" "$mode" "$s" 0 "$DGCPU")
				printf '%-9s %-5s %6s %10.0f %10.0f %7.2f %7.2f %12s %9s %5s %4s\n' \
				    "$(label "$t")" "$mode" "$s" \
				    "$(col "$t" "$mode" "$s" 0 "\$6 / $SECS")" \
				    "$(col "$t" "$mode" "$s" 0 '($7 / ($13 / 1e9 > '"$SECS"' ? $13 / 1e9 : '"$SECS"'))')" \
				    "$(col "$t" "$mode" "$s" 0 '($8 * 8 / 1e9 / ($13 / 1e9 > '"$SECS"' ? $13 / 1e9 : '"$SECS"'))')" \
				    "$(col "$t" "$mode" "$s" 0 '($6 > 0 ? 100 * ($6 - $7) / $6 : 0)')" \
				    "$(if [ "$t" = raw ] || [ "$dg" = 0 ]; then echo -; else printf '%.0f' "$dg"; fi)" \
				    "$(if [ "$t" = raw ] || [ "$dg" = 0 ] || [ "$ref" = - ] || [ "$ref" = 0 ]; then echo -; else awk -v a="$dg" -v b="$ref" 'BEGIN { printf "%.2fx", a / b }'; fi)" \
				    "$(if [ "$t" = raw ] || [ "$dg" = 0 ]; then echo -; else printf '%.0f' "$(col "$t" "$mode" "$s" 0 '($15 + $16 > 0 ? 100 * $16 / ($15 + $16) : 0)')"; fi)" \
				    "$(awk -F'\t' -v t="$t" -v m="$mode" -v s="$s" '$1 == t && $2 == m && $3 == s && $4 == 0 { b += $9 + $10 + $11 + $12 } END { print b + 0 }' "$TSV")"
			done
		done
	done
	if have dgrelay-tls && [[ " ${tools[*]} " == *" dgrelay-tls "* ]]; then
		echo
		echo "TLS: CPU a datagram costs, dg-tls against plain dgrelay" \
		    "and udptunnel (plain sender):"
		for s in $SIZES; do
			awk -v s="$s" -v tls="$(col dgrelay-tls plain "$s" 0 "$DGCPU")" \
			    -v dg="$(col dgrelay plain "$s" 0 "$DGCPU")" \
			    -v ut="$(col udptunnel plain "$s" 0 "$DGCPU")" \
			    'function r(a, b) { if (a > 0 && b > 0)
			    return sprintf("%.2fx", a / b); return "-" }
			    BEGIN { printf "%6s B: %s the CPU of plain dgrelay;" \
			    " %s the datagrams per CPU-second of udptunnel\n",
			    s, r(dg, tls), r(tls, ut) }'
		done
	fi
	echo
	echo "Fixed rate, $RATE datagrams/s of 1200 bytes:"
	printf '%-9s %10s %7s %12s %4s\n' tool recv/s loss% CPU-us/dg bad
	for t in "${tools[@]}"; do
		printf '%-9s %10.0f %7.3f %12s %4s\n' "$(label "$t")" \
		    "$(col "$t" plain 1200 "$RATE" '($7 / ($13 / 1e9 > '"$SECS"' ? $13 / 1e9 : '"$SECS"'))')" \
		    "$(col "$t" plain 1200 "$RATE" '($6 > 0 ? 100 * ($6 - $7) / $6 : 0)')" \
		    "$(v=$(col "$t" plain 1200 "$RATE" '($7 > 0 ? $14 / $7 / 1e3 : 0)'); if [ "$t" = raw ] || [ "$v" = 0 ]; then echo -; else printf '%.2f' "$v"; fi)" \
		    "$(awk -F'\t' -v t="$t" -v r="$RATE" '$1 == t && $4 == r { b += $9 + $10 + $11 + $12 } END { print b + 0 }' "$TSV")"
	done
	echo
	echo "Round trip, 64-byte datagrams one at a time through an echo (us):"
	printf '%-9s %8s %8s %6s\n' tool p50 p99 lost
	for t in "${tools[@]}"; do
		printf '%-9s %8s %8s %6s\n' "$(label "$t")" \
		    "$(awk -v t="$t" '$2 == t { print $5 }' "$tmp/ping" | median)" \
		    "$(awk -v t="$t" '$2 == t { print $6 }' "$tmp/ping" | median)" \
		    "$(awk -v t="$t" '$2 == t { s += $4 } END { print s + 0 }' "$tmp/ping")"
	done
} | tee "$TXT"
cat "$tmp/ping" >> "$TSV"
echo "bench: rows in $TSV, table in $TXT" >&2
