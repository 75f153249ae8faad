#!/usr/bin/env bash
# make bench-mux: mux's targets (dgrelay.1, MULTIPLEXING), default flags.
#
#  1. N UDP peers at once (one 8-byte datagram each, its own port) through
#     udp-listen,multi tls:...,mux to tls-listen,mux udp:ECHO: how many
#     answered, in how long, over how many TLS connections; then, the
#     peers holding their sessions, PSS per stream of each relay (its PSS
#     less its PSS with the carrier up and no stream, over N).
#  2. A burst of 1,000 new sessions over a carrier already up: first
#     datagram sent to last answer, median of BURSTS bursts (new peers
#     each time).
#  3. The reverse tunnel (udp-listen,multi tcp-listen:...,mux; the service
#     side tcp:...,mux,retry,interval=1 udp:ECHO): the service side's
#     carrier killed (ss -K), then a new peer every 20 ms until one is
#     answered: from the kill to that answer, median of RUNS.
#
# One flow's CPU through a carrier is make bench's dg-mux row.
# Environment: MUX_N (10000), MUX_BURSTS (5), MUX_RUNS (5), DGRELAY.
set -u
cd "$(dirname "$0")/.." || exit 1

D=${DGRELAY:-./dgrelay}
P=test/dgpeer
N=${MUX_N:-10000}
BURSTS=${MUX_BURSTS:-5}
RUNS=${MUX_RUNS:-5}
# shellcheck source=bench/common.sh
. bench/common.sh
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# a certificate (c.pem, k.pem in $tmp) and a UDP echo ($echo_port)
bench_certs_echo

# PSS of the two relays, kB: "near far"
both_pss() { echo "$(pss "$near_pid") $(pss "$far_pid")"; }

echo "== 1. $N UDP peers at once over one TLS carrier"
start far "tls-listen:127.0.0.1:0,mux,cert=$tmp/c.pem,key=$tmp/k.pem" \
    "udp:127.0.0.1:$echo_port"
fp=$(lport far)
start near -S udp-listen:127.0.0.1:0,multi "tls:localhost:$fp,mux,verify=0"
until_in "$tmp/near.err" 'TLSv1' 600
np=$(lport near)
timeout 30 "$P" ping -n 10 udp 127.0.0.1 "$np" >/dev/null	# warm
sleep 1
read -r n0 f0 <<<"$(both_pss)"
timeout 600 "$P" burst -H 20 -t 120 udp "$N" 127.0.0.1 "$np" \
    >"$tmp/burst.out" 2>&1 &
pids+=($!)
until_in "$tmp/burst.out" '^holding\|FAIL' 3000
sleep 2
read -r n1 f1 <<<"$(both_pss)"
conns=$(ss -Htn state established "sport = :$fp" | grep -c .)
ok=$(awk '/^ok / {print $2}' "$tmp/burst.out")
printf '%s of %s answered in %s ms over %s TLS connection(s)\n' \
    "${ok:-0}" "$N" "$(awk '/^ms / {print $2}' "$tmp/burst.out")" "$conns"
awk -v n="$N" -v a="$n0" -v b="$n1" -v c="$f0" -v d="$f1" 'BEGIN {
    printf "PSS per idle stream: near %.1f KiB, far %.1f KiB\n",
	(b - a) / n, (d - c) / n }'
stop_all

echo "== 2. bursts of 1,000 new sessions over a carrier that is up"
start far tcp-listen:127.0.0.1:0,mux "udp:127.0.0.1:$echo_port"
fp=$(lport far)
start near -t 5 udp-listen:127.0.0.1:0,multi "tcp:127.0.0.1:$fp,mux"
until_in "$tmp/near.err" 'carrier up' 600
np=$(lport near)
: >"$tmp/bursts"
for i in $(seq "$BURSTS"); do
	timeout 120 "$P" burst -t 60 udp 1000 127.0.0.1 "$np" >"$tmp/b.out" 2>&1
	grep -q '^ok 1000 answered' "$tmp/b.out" || { cat "$tmp/b.out"; continue; }
	awk '/^ms / {print $2}' "$tmp/b.out" >>"$tmp/bursts"
	sleep 6			# the last burst's sessions idle out (-t 5)
done
echo "1,000 sessions served in (ms): $(tr '\n' ' ' <"$tmp/bursts")" \
    "median $(median <"$tmp/bursts") ms"
stop_all

echo "== 3. the reverse tunnel: its carrier killed, until a new peer is served"
rp=$("$P" free tcp | awk '{print $2}')
start pub udp-listen:127.0.0.1:0,multi "tcp-listen:127.0.0.1:$rp,mux"
pp=$(lport pub)
start svc "tcp:127.0.0.1:$rp,mux,retry,interval=1" "udp:127.0.0.1:$echo_port"
until_in "$tmp/pub.err" 'carrier from' 600
: >"$tmp/rec"
for i in $(seq "$RUNS"); do
	timeout 30 "$P" ping -n 1 udp 127.0.0.1 "$pp" >/dev/null ||
	    { echo "not up before run $i"; continue; }
	# a new peer (its own port) every 20 ms until one is answered: the
	# ms from the kill to that answer
	python3 -c '
import select, socket, subprocess, sys, time
port, rp = int(sys.argv[1]), sys.argv[2]
t0 = time.monotonic()
subprocess.run(["ss", "-Kn", "state", "established", "sport = :" + rp],
    capture_output=True)
socks = []
while time.monotonic() - t0 < 30:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("127.0.0.1", port))
    socks.append(s)
    r, _, _ = select.select(socks, [], [], 0.02)
    if r:
        print(int((time.monotonic() - t0) * 1000))
        sys.exit(0)
sys.exit(1)
' "$pp" "$rp" >>"$tmp/rec" || echo "run $i: not served in 30 s"
done
echo "served again after (ms, interval 1 s): $(tr '\n' ' ' <"$tmp/rec")" \
    "median $(median <"$tmp/rec") ms"
stop_all
