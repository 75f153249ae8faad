#!/usr/bin/env bats
# The Debian package: built from a copy of this tree, lintian clean,
# installed and removed; its unit checked by systemd-analyze (started
# only where systemd runs as PID 1); every example config parses.

load helpers

setup() {
	TMP=$BATS_TEST_TMPDIR
	: >"$TMP/pids"
	ROOT=$BATS_TEST_DIRNAME/..
	INSTALLED=
}

teardown() {
	kill_bg
	# what this test installed goes, whatever failed
	[ -z "$INSTALLED" ] || dpkg -r dgrelay >/dev/null 2>&1 || true
}

@test "package: every example config of the unit parses (dgrelay -n FLAGS FIRST SECOND)" {
	n=0
	for f in "$ROOT"/contrib/conf/*.conf; do
		# as systemd reads an EnvironmentFile: KEY="VALUE" lines
		# shellcheck disable=SC2016 # expanded by that sh
		run env -i sh -c '. "$1" && exec "$2" -n $FLAGS "$FIRST" "$SECOND"' \
		    sh "$f" "$DGRELAY"
		[ "$status" -eq 0 ] || { echo "$f: $output"; false; }
		n=$((n + 1))
	done
	[ "$n" -ge 10 ]
}

@test "package: debian/changelog's version is dgrelay -V's" {
	v=$(sed -n '1s/^dgrelay (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog")
	[ -n "$v" ]
	[ "$("$DGRELAY" -V)" = "dgrelay $v" ]
}

@test "package: the unit's sandbox rates OK or better (systemd-analyze security)" {
	need_cmd systemd-analyze systemd
	sed 's|/usr/bin/dgrelay|/bin/true|' "$ROOT/contrib/dgrelay@.service" \
	    >"$TMP/dgrelay@x.service"
	cd "$TMP"
	run systemd-analyze security --offline=true dgrelay@x.service
	echo "${lines[-1]}"
	[[ "${lines[-1]}" =~ exposure\ level\ for\ dgrelay@x.service:\ ([0-9.]+)\ (SAFE|OK) ]]
	score=${BASH_REMATCH[1]}
	[ "${score%.*}" -lt 5 ]
	# and with the tun: drop-in
	mkdir "$TMP/dgrelay@x.service.d"
	cp "$ROOT/contrib/dgrelay@tun.conf" "$TMP/dgrelay@x.service.d/"
	run systemd-analyze security --offline=true dgrelay@x.service
	echo "with tun: ${lines[-1]}"
	[[ "${lines[-1]}" =~ \ (SAFE|OK|MEDIUM) ]]
	# the home side of the reverse WireGuard tunnel
	sed 's|/usr/bin/dgrelay|/bin/true|' \
	    "$ROOT/contrib/dgrelay-wireguard-home.service" >"$TMP/wgh.service"
	run systemd-analyze security --offline=true wgh.service
	echo "home: ${lines[-1]}"
	[[ "${lines[-1]}" =~ exposure\ level\ for\ wgh.service:\ ([0-9.]+)\ (SAFE|OK) ]]
}

@test "package: dpkg-buildpackage builds it, lintian is clean, it installs, runs and goes" {
	need_root
	need_cmd dpkg-buildpackage dpkg-dev
	need_cmd dh debhelper
	need_cmd lintian lintian
	! dpkg -s dgrelay >/dev/null 2>&1 ||
	    skip "a dgrelay package is installed here already: not replaced"
	not_under_valgrind "a package build"
	[[ "$DGRELAY" != */san/* ]] ||
	    skip "the package is built once, by make test, not again under ASan"
	# a copy: dpkg-buildpackage cleans and builds in place
	mkdir "$TMP/src"
	(cd "$ROOT" && git ls-files -z 2>/dev/null || find . -type f -print0) |
	    (cd "$ROOT" && xargs -0 cp -P --parents -t "$TMP/src") 2>/dev/null
	[ -f "$TMP/src/debian/control" ]
	run timeout 600 make -C "$TMP/src" deb
	echo "$output" | tail -n 20
	[ "$status" -eq 0 ]
	v=$(sed -n '1s/^dgrelay (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog")
	deb=$TMP/dgrelay_${v}_$(dpkg --print-architecture).deb
	[ -f "$deb" ]
	run timeout 120 dpkg -i "$deb"
	echo "$output"
	[ "$status" -eq 0 ]
	INSTALLED=1
	[ "$(/usr/bin/dgrelay -V)" = "dgrelay $v" ]
	[ "$("$DGRELAY" -V)" = "dgrelay $v" ]
	[ -f /usr/share/man/man1/dgrelay.1.gz ]
	[ -f /usr/share/doc/dgrelay/examples/conf/wireguard-tcp-server.conf ]
	unit=$(dpkg -L dgrelay | grep '/dgrelay@.service$')
	[ -n "$unit" ]
	# the installed binary relays
	echo_peer e udp
	bg r /usr/bin/dgrelay -v udp-listen:127.0.0.1:0 udp:127.0.0.1:"$(port e)"
	wait_for "$TMP/r.err" 'listening on'
	run timeout 60 "$PEER" ping -n 50 udp 127.0.0.1 "$(port r)"
	[ "$status" -eq 0 ]
	if [ "$(cat /proc/1/comm)" = systemd ]; then
		mkdir -p /etc/dgrelay
		printf 'FLAGS="-v"\nFIRST="udp-listen:127.0.0.1:%s"\nSECOND="udp:127.0.0.1:%s"\n' \
		    "$(free_port udp)" "$(port e)" >/etc/dgrelay/bats-test.conf
		systemctl start dgrelay@bats-test
		systemctl is-active dgrelay@bats-test
		systemctl stop dgrelay@bats-test
		rm /etc/dgrelay/bats-test.conf
	else
		# no systemd to start it: the unit is checked as systemd reads it
		run systemd-analyze verify --man=no "$unit"
		echo "systemd is not PID 1 here: not started; systemd-analyze verify: $status $output"
		[ "$status" -eq 0 ]
	fi
	run timeout 120 dpkg -r dgrelay
	[ "$status" -eq 0 ]
	INSTALLED=
	[ ! -e /usr/bin/dgrelay ]
}
