#!/usr/bin/env bats
# Run as a service: -J (JSON counters), -M (Prometheus metrics on the
# loop), scraped by a real Prometheus.

load helpers

# scrape PORT [PATH [METHOD]]: the HTTP answer, head and body, to stdout.
scrape() {
	timeout 20 curl -sS -i -X "${3:-GET}" "http://127.0.0.1:$1${2:-/metrics}"
}

# metric FILE NAME: the value of the sample NAME (with its labels) in FILE.
metric() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }

@test "-J: one JSON object a line, the figures -S prints (pair)" {
	need_cmd jq
	echo_peer e udp
	relay r -S -J udp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	run timeout 60 "$PEER" ping -n 300 -M 1200 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	stop r
	[ "$status_of" -eq 0 ]
	grep '^{' "$TMP/r.err" >"$TMP/j"
	[ "$(wc -l <"$TMP/j")" -eq 1 ]
	[ "$(jq -r .event "$TMP/j")" = exit ]
	[ "$(jq -r .mode "$TMP/j")" = pair ]
	# every field as the text line has it, in its order
	for d in 1 2; do
		key=$([ "$d" = 1 ] && echo first_to_second || echo second_to_first)
		line=$(sed -n "s/^dgrelay: $([ "$d" = 1 ] && echo '1>2' || echo '2>1'): //p" "$TMP/r.err")
		text=$(tr ',' '\n' <<<"$line" | awk '{print $1}' | paste -sd' ')
		json=$(jq -r ".$key | [.[]] | map(tostring) | join(\" \")" "$TMP/j")
		echo "$key: text $text, json $json"
		[ "$text" = "$json" ]
	done
	[ "$(jq .first_to_second.datagrams "$TMP/j")" -eq 300 ]
	[ "$(jq '.pool.cap' "$TMP/j")" -gt 0 ]
}

@test "-J on SIGUSR1 and at the end, multi; no text lines without -S" {
	need_cmd jq
	echo_peer e udp
	relay r -J udp-listen:127.0.0.1:0,multi udp:127.0.0.1:"$(port e)"
	for i in 1 2 3; do
		run timeout 60 "$PEER" ping -n 20 udp 127.0.0.1 "$(port r)"
		[ "$status" -eq 0 ]
	done
	kill -USR1 "$(child_of r)"
	eventually 30 said r '^\{"event":"signal"' 1
	stop r
	grep '^{' "$TMP/r.err" >"$TMP/j"
	jq -e . "$TMP/j" >/dev/null
	[ "$(jq -r .event "$TMP/j" | paste -sd' ')" = "signal exit" ]
	[ "$(jq -s '.[1].first_to_second.datagrams' "$TMP/j")" -eq 60 ]
	[ "$(jq -s '.[1].sessions.served' "$TMP/j")" -eq 3 ]
	! grep -q '^dgrelay: 1>2:' "$TMP/r.err" || false
}

@test "-J with fork: the parent's figures sum its children's, ended and running" {
	need_cmd jq
	echo_peer e udp
	relay r -J udp-listen:127.0.0.1:0,fork udp:127.0.0.1:"$(port e)"
	for i in 1 2 3; do
		run timeout 60 "$PEER" ping -n 25 udp 127.0.0.1 "$(port r)"
		[ "$status" -eq 0 ]
	done
	kill -USR1 "$(child_of r)"
	eventually 30 said r '^\{"event":"signal","mode":"fork"' 1
	running=$(grep '^{"event":"signal","mode":"fork"' "$TMP/r.err" | head -n 1)
	[ "$(jq .first_to_second.datagrams <<<"$running")" -eq 75 ]
	[ "$(jq .sessions.running <<<"$running")" -eq 3 ]
	stop r
	parent=$(grep '^{"event":"exit","mode":"fork"' "$TMP/r.err")
	[ "$(jq .first_to_second.datagrams <<<"$parent")" -eq 75 ]
	[ "$(jq .second_to_first.datagrams <<<"$parent")" -eq 75 ]
	[ "$(jq .sessions.served <<<"$parent")" -eq 3 ]
	# and each child its own
	[ "$(grep -c '^{"event":"exit","mode":"pair"' "$TMP/r.err")" -eq 3 ]
}

@test "-M: GET /metrics in the text format; HEAD, 404, 405; promtool accepts it" {
	echo_peer e udp
	relay r -v -M tcp-listen:127.0.0.1:0 udp-listen:127.0.0.1:0,multi \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'udp-listen.*listening on'
	run timeout 60 "$PEER" ping -n 123 -m 10 -M 10 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	scrape "$(mport r)" >"$TMP/m"
	head -n 1 "$TMP/m" | grep -q '^HTTP/1.1 200 OK'
	grep -qi '^Content-Type: text/plain; version=0.0.4' "$TMP/m"
	sed '1,/^\r$/d' "$TMP/m" >"$TMP/body"
	[ "$(metric "$TMP/body" 'dgrelay_datagrams_total{direction="1>2"}')" = 123 ]
	[ "$(metric "$TMP/body" 'dgrelay_bytes_total{direction="2>1"}')" = 1230 ]
	[ "$(metric "$TMP/body" dgrelay_sessions_served_total)" = 1 ]
	[ "$(metric "$TMP/body" process_open_fds)" -gt 3 ]
	[ "$(metric "$TMP/body" process_resident_memory_bytes)" -gt 100000 ]
	grep -q '^# TYPE dgrelay_datagrams_total counter$' "$TMP/body"
	if command -v promtool >/dev/null; then
		promtool check metrics <"$TMP/body"
	fi
	scrape "$(mport r)" /metrics HEAD >"$TMP/h" || true
	head -n 1 "$TMP/h" | grep -q '^HTTP/1.1 200 OK'
	scrape "$(mport r)" /nothing >"$TMP/n"
	head -n 1 "$TMP/n" | grep -q '^HTTP/1.1 404 '
	scrape "$(mport r)" /metrics POST >"$TMP/p"
	head -n 1 "$TMP/p" | grep -q '^HTTP/1.1 405 '
	grep -qi '^Allow: GET, HEAD' "$TMP/p"
}

@test "-M on a unix socket, with fork: the children's datagrams in the parent's figures" {
	echo_peer e udp
	relay r -v -M unix-listen:"$TMP/m.sock" tcp-listen:127.0.0.1:0,fork \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'tcp-listen.*listening on'
	for i in 1 2; do
		run timeout 60 "$PEER" ping -n 40 tcp 127.0.0.1 "$(port r)"
		[ "$status" -eq 0 ]
	done
	timeout 20 curl -sS --unix-socket "$TMP/m.sock" http://x/metrics >"$TMP/body"
	[ "$(metric "$TMP/body" 'dgrelay_datagrams_total{direction="2>1"}')" = 80 ]
	[ "$(metric "$TMP/body" dgrelay_sessions_served_total)" = 2 ]
	grep -q '^dgrelay_build_info{version="[^"]*",mode="fork"} 1$' "$TMP/body"
	stop r
	[ "$status_of" -eq 0 ]
	[ ! -e "$TMP/m.sock" ]
}

@test "-M under abuse: 200 idle connections, a 1 MB request, a byte a second: relaying goes on, memory bounded, a scrape answered" {
	need_cmd python3
	not_under_valgrind "200 connections and a 1 MB request"
	echo_peer e udp
	relay r -v -M tcp-listen:127.0.0.1:0 udp-listen:127.0.0.1:0 \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'udp-listen.*listening on'
	m=$(mport r)
	rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$(child_of r)/status")
	bg abuse python3 -c '
import socket, sys, time
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
big = socket.create_connection(("127.0.0.1", port))
big.settimeout(20)
try:
    big.sendall(b"GET /" + b"a" * (1 << 20))
except OSError:
    pass
head = b""
try:
    head = big.recv(100)
except OSError:
    pass
# the answer, or a reset that overtook it (the rest was never read)
print("big:", head.split(b"\r\n")[0].decode(errors="replace") or "closed",
    flush=True)
slow = socket.create_connection(("127.0.0.1", port))
for c in b"GET /metrics HTTP/1.1\r\n":
    try:
        slow.send(bytes([c]))
    except OSError:
        break
    time.sleep(1)
' "$m"
	run timeout 120 "$PEER" ping -n 3000 -M 1200 udp 127.0.0.1 "$(port r)"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 3000 datagrams "* ]]
	eventually 60 grep -qE '^big: (HTTP/1.1 431|closed)' "$TMP/abuse.out"
	scrape "$m" >"$TMP/m"
	head -n 1 "$TMP/m" | grep -q '^HTTP/1.1 200 OK'
	rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$(child_of r)/status")
	echo "RSS ${rss0} kB before, ${rss1} kB after"
	# the bound is about 1 MiB of scrapes: 4 MiB catches a regression
	[ "$((rss1 - rss0))" -lt 4096 ]
}

@test "-M scraped by a real Prometheus: its query API has dgrelay's counter" {
	need_cmd prometheus prometheus
	need_cmd python3
	not_under_valgrind "Prometheus's scrape timeout"
	echo_peer e udp
	relay r -v -M tcp-listen:127.0.0.1:0 udp-listen:127.0.0.1:0,multi \
	    udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'udp-listen.*listening on'
	pp=$(free_port tcp)
	cat >"$TMP/prom.yml" <<-EOF
	global:
	  scrape_interval: 1s
	  scrape_timeout: 1s
	scrape_configs:
	  - job_name: dgrelay
	    static_configs:
	      - targets: ["127.0.0.1:$(mport r)"]
	EOF
	bg prom prometheus --config.file="$TMP/prom.yml" \
	    --storage.tsdb.path="$TMP/tsdb" \
	    --web.listen-address="127.0.0.1:$pp"
	run timeout 60 "$PEER" ping -n 777 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	q='dgrelay_datagrams_total{direction="1>2"}'
	eventually 90 prom_says "$pp" "$q" 777
}

# prom_says PORT QUERY VALUE: Prometheus's instant query gives VALUE.
prom_says() {
	local v
	v=$(timeout 10 python3 -c '
import json, sys, urllib.parse, urllib.request
u = "http://127.0.0.1:%s/api/v1/query?query=%s" % (sys.argv[1],
    urllib.parse.quote(sys.argv[2]))
r = json.load(urllib.request.urlopen(u, timeout=5))["data"]["result"]
print(r[0]["value"][1] if r else "none")
' "$1" "$2" 2>/dev/null)
	echo "prometheus: $2 = $v"
	[ "$v" = "$3" ]
}

@test "-M: bad uses exit 2; a port in use exits 1" {
	bad -M udp:127.0.0.1:5 stdio stdio "-M udp:127.0.0.1:5: must be tcp-listen or unix-listen"
	bad -M tcp-listen:0,fork stdio stdio "must be tcp-listen or unix-listen, with no fork"
	bad -M bogus:1 stdio stdio "-M bogus:1: unknown address type 'bogus'"
	bad stdio stdio -M "-M needs a value"
	relay busy -v -M tcp-listen:127.0.0.1:0 udp-listen:127.0.0.1:0 udp:127.0.0.1:9
	wait_for "$TMP/busy.err" 'udp-listen.*listening on'
	run --separate-stderr timeout 30 "$DGRELAY" \
	    -M tcp-listen:127.0.0.1:"$(mport busy)" stdio stdio </dev/null
	echo "$stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"-M tcp-listen:127.0.0.1:$(mport busy): bind: Address already in use"* ]]
}
