#!/bin/sh
# run.sh [FILE.bats...]: the suite (every file in test/ unless named), a
# file at a time: TAP on stdout as bats prints it, and a progress line a
# file on stderr ("== 03-stream.bats: 14 ok, 0 failed, 1 skipped, 21 s").
# Exit 1 if any test failed.
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || set -- test/*.bats
log=$(mktemp)
st=$(mktemp)
trap 'rm -f "$log" "$st"' EXIT
rc=0 ok=0 failed=0 skipped=0 t0=$(date +%s)
for f in "$@"; do
	t=$(date +%s)
	# bats' own status, not tee's: a file that fails to load has no
	# "not ok" line to count
	{ bats --tap "$f"; echo $? >"$st"; } | tee "$log"
	[ "$(cat "$st")" -eq 0 ] || rc=1
	o=$(grep -c '^ok ' "$log")
	s=$(grep -c '^ok .* # skip' "$log")
	n=$(grep -c '^not ok ' "$log")
	echo "== ${f##*/}: $((o - s)) ok, $n failed, $s skipped," \
	    "$(($(date +%s) - t)) s" >&2
	ok=$((ok + o - s)) failed=$((failed + n)) skipped=$((skipped + s))
done
echo "== all: $ok ok, $failed failed, $skipped skipped," \
    "$(($(date +%s) - t0)) s" >&2
exit $rc
