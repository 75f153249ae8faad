#!/usr/bin/env bats
# The README's first command ends in `make demo` (sh test/demo.sh): under
# dash, Debian's /bin/sh, it must exit 0 when the tunnel works and
# non-zero when it does not.

load helpers

@test "make demo's script under dash: every datagram back, both relays clean, exit 0" {
	need_cmd dash
	not_under_valgrind "the demo sends 160 MB through two relays"
	run timeout 120 dash "$BATS_TEST_DIRNAME/demo.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 5000 datagrams "* ]]
	[[ "$output" == *"entry relay (udp-listen -> tcp), exit 0:"* ]]
	[[ "$output" == *"exit relay (tcp-listen -> udp), exit 0:"* ]]
	[ "$(grep -c '1>2: 5000 datagrams' <<<"$output")" -eq 2 ]
	[ "${lines[-1]}" = "demo: ok" ]
}

@test "make demo's script fails when datagrams are lost: a relay that drops large ones (-s 30000)" {
	need_cmd dash
	printf '#!/bin/sh\nexec %s -s 30000 "$@"\n' "$DGRELAY" >"$TMP/lossy"
	chmod +x "$TMP/lossy"
	DGRELAY="$TMP/lossy" run timeout 120 dash "$BATS_TEST_DIRNAME/demo.sh"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *FAIL* ]]
	[ "${lines[-1]}" = "demo: FAILED (a datagram was lost or differs, or a relay failed)" ]
}
