# dgrelay -- see README.md.  `make test` is the test suite, `make check`
# runs it again on an ASan+UBSan build, `make fuzz` runs the fuzzers.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
CC	?= cc
BSD_CFLAGS != pkg-config --cflags libbsd-overlay
BSD_LIBS   != pkg-config --libs libbsd-overlay
SSL_CFLAGS != pkg-config --cflags openssl
SSL_LIBS   != pkg-config --libs openssl
CFLAGS	?= -O2 -g
# the version is said in one place, dgrelay.h (debian/changelog agrees)
VERSION != sed -n 's/^\#define DGRELAY_VERSION[^"]*"\([^"]*\)".*/\1/p' dgrelay.h
WARN	 = -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Winit-self
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE \
	     $(WARN) $(BSD_CFLAGS) $(SSL_CFLAGS) $(CPPFLAGS) $(CFLAGS)

SRCS	 = dgrelay.c log.c runas.c addr.c help.c sock.c dial.c reply.c fd.c \
	   exec.c tun.c relay.c ring.c dgram.c stream.c tlsio.c counters.c \
	   frame.c fork.c redial.c loop.c pool.c ptab.c multi.c tls.c \
	   report.c metrics.c mux.c carrier.c muxsess.c
HDRS	 = base.h dgrelay.h relay.h addr.h mux.h multi.h
SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer
FUZZ_SECONDS ?= 30

all: dgrelay test/dgpeer test/vsock_shim.so bench/dgbench bench/ptabbench

dgrelay: $(SRCS) $(HDRS)
	$(CC) $(ALL_CFLAGS) -o $@ $(SRCS) $(BSD_LIBS) $(SSL_LIBS) $(LDFLAGS)

test/dgpeer: test/dgpeer.c
	$(CC) $(ALL_CFLAGS) -o $@ test/dgpeer.c $(BSD_LIBS) $(SSL_LIBS) \
	    $(LDFLAGS)

bench/dgbench: bench/dgbench.c
	$(CC) $(ALL_CFLAGS) -o $@ bench/dgbench.c $(BSD_LIBS) $(LDFLAGS)

# A test shim (LD_PRELOAD): AF_VSOCK mapped to AF_UNIX, see the file.
test/vsock_shim.so: test/vsock_shim.c
	$(CC) $(ALL_CFLAGS) -shared -fPIC -o $@ test/vsock_shim.c -ldl

# The sanitized binary keeps the name dgrelay so messages read the same.
san/dgrelay: $(SRCS) $(HDRS)
	@mkdir -p san
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $(SRCS) $(BSD_LIBS) $(SSL_LIBS) \
	    $(LDFLAGS)

# A progress line a file on stderr; see test/run.sh.
test: all
	sh test/run.sh

# The quicker half of the suite (under 2 minutes on 2 cores): the parser,
# the flags, each address kind once; not the crowds, faults, TLS peers.
QUICK_TESTS = test/01-cli.bats test/02-udp.bats test/04-seqpacket.bats \
	      test/05-options.bats test/06-flags.bats test/07-peers.bats \
	      test/10-activation.bats test/11-vsock.bats test/13-gso.bats \
	      test/15-demo.bats test/17-reply-source.bats test/23-first-hour.bats
test-quick: all
	sh test/run.sh $(QUICK_TESTS)

# Leaks are not checked here: LeakSanitizer's stop-the-world at exit can
# spin forever on this kernel (google/sanitizers#777); memory errors and
# undefined behaviour are.
check: san/dgrelay test/dgpeer test/vsock_shim.so
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	DGRELAY=$(CURDIR)/san/dgrelay sh test/run.sh

fuzz/fuzz_frame: test/fuzz_frame.c frame.c $(HDRS)
	@mkdir -p fuzz
	clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. \
	    -fsanitize=fuzzer,address,undefined -o $@ test/fuzz_frame.c frame.c

fuzz/fuzz_addr: test/fuzz_addr.c addr.c help.c $(HDRS)
	@mkdir -p fuzz
	clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. $(BSD_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o $@ test/fuzz_addr.c addr.c \
	    help.c $(BSD_LIBS)

# relay.c's own loop, its system calls played by the fuzz input (see the
# file): each -D swaps one call in relay.c for the target's fake.
FAKES	 = -Dread=fz_read -Dwritev=fz_writev -Dsendmmsg=fz_sendmmsg \
	   -Depoll_create1=fz_epoll_create1 -Depoll_ctl=fz_epoll_ctl \
	   -Depoll_pwait=fz_epoll_pwait -Dgetsockopt=fz_getsockopt \
	   -Dsetsockopt=fz_setsockopt -Dshutdown=fz_shutdown \
	   -Dclock_gettime=fz_clock_gettime \
	   -Darc4random_uniform=fz_arc4random_uniform
FUZZ_RELAY_SRCS = relay.c ring.c dgram.c stream.c tlsio.c frame.c redial.c addr.c help.c \
		  loop.c pool.c tls.c mux.c carrier.c
fuzz/fuzz_relay: test/fuzz_relay.c $(FUZZ_RELAY_SRCS) $(HDRS)
	@mkdir -p fuzz
	clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. $(BSD_CFLAGS) $(FAKES) \
	    -fsanitize=fuzzer,address,undefined -o $@ test/fuzz_relay.c \
	    $(FUZZ_RELAY_SRCS) $(BSD_LIBS) $(SSL_LIBS)

fuzz/fuzz_mux: test/fuzz_mux.c mux.c mux.h
	@mkdir -p fuzz
	clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. \
	    -fsanitize=fuzzer,address,undefined -o $@ test/fuzz_mux.c mux.c

# Each target for FUZZ_SECONDS, from its seed corpus in test/corpus/.
fuzz: fuzz/fuzz_frame fuzz/fuzz_addr fuzz/fuzz_relay fuzz/fuzz_mux
	@mkdir -p fuzz/corpus fuzz/corpus-addr fuzz/corpus-relay fuzz/corpus-mux
	fuzz/fuzz_frame -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    fuzz/corpus test/corpus/frame
	fuzz/fuzz_addr -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -max_len=1100 fuzz/corpus-addr test/corpus/addr
	fuzz/fuzz_relay -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -max_len=140000 fuzz/corpus-relay test/corpus/relay
	fuzz/fuzz_mux -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -max_len=4096 fuzz/corpus-mux test/corpus/mux

demo: all
	sh test/demo.sh

# SOAK_COUNT datagrams (1,000,000) through UDP->TCP->UDP and TCP->UDP->TCP;
# see test/soak.sh.  Not part of `make test`.
soak: all
	bash test/soak.sh

# A representative part of the suite with dgrelay under valgrind memcheck:
# an invalid access, uninitialised memory or a leak fails the run (its
# log is printed).  Not 01-cli: its bad flags and addresses end before
# anything is opened, and fuzz_addr drives the parser under ASan.
VG_TESTS = test/02-udp.bats test/03-stream.bats \
	   test/04-seqpacket.bats test/05-options.bats test/06-flags.bats \
	   test/08-fork.bats test/09-exec.bats test/14-faults.bats \
	   test/16-hardening.bats test/18-tcp-options.bats test/19-retry.bats \
	   test/20-multi.bats test/21-tls.bats test/22-memory.bats \
	   test/24-frame.bats test/25-ops.bats test/27-mux.bats \
	   test/28-reverse.bats
valgrind: all
	@rm -rf vg && mkdir -p vg
	VG_LOGS=$(CURDIR)/vg DGRELAY=$(CURDIR)/test/valgrind.sh LIFE=300 \
	    bats $(VG_TESTS); rc=$$?; \
	for f in vg/*.log; do [ -s "$$f" ] || continue; echo "== $$f"; \
	    cat "$$f"; rc=1; done; \
	echo "valgrind: $$(ls vg | wc -l) dgrelay processes checked"; \
	exit $$rc

# dgrelay, udptunnel and socat side by side; see bench/run.sh.
bench: all
	bash bench/run.sh

# How long a retry tunnel takes to come back after its server; see the
# script.  Not part of `make bench` (it waits out real outages).
bench-reconnect: all
	bash bench/reconnect.sh

# Many peers at once through multi, fork and socat's fork; see the script.
bench-peers: all
	bash bench/peers.sh

# The peer table against chosen collisions: the old unkeyed hash beside
# ptab.c's keyed one; see the program.
bench/ptabbench: bench/ptabbench.c ptab.c $(HDRS)
	$(CC) $(ALL_CFLAGS) -I. -o $@ bench/ptabbench.c ptab.c $(BSD_LIBS) \
	    $(LDFLAGS)

bench-ptab: bench/ptabbench
	bench/ptabbench

# What a multi server meets in the wild, against the memory rules: bursts
# to a stream far end, peers that hold half a frame or never read, memory
# per session and per pending handshake; see the script.
bench-memory: all
	bash bench/memory.sh

# mux's targets: 10,000 peers over one TLS carrier, bursts of new
# sessions, the reverse tunnel's recovery; see the script.
bench-mux: all
	bash bench/mux.sh

lint:
	mandoc -Tlint -Wwarning dgrelay.1
	sh test/manlint.sh dgrelay.1
	shellcheck -s bash -e SC2034,SC2154,SC1090,SC1091 test/*.bash test/*.bats \
	    test/*.sh bench/*.sh .ci/run
	shellcheck test/deps

install: dgrelay
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 dgrelay $(DESTDIR)$(BINDIR)/dgrelay
	install -m 644 dgrelay.1 $(DESTDIR)$(MANDIR)/man1/dgrelay.1

# The Debian package, in the parent directory as dpkg-buildpackage puts
# it, then lintian on it.
deb:
	dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning ../dgrelay_$(VERSION)_*.changes

clean:
	rm -rf dgrelay test/dgpeer test/vsock_shim.so bench/dgbench bench/ptabbench \
	    san fuzz vg

.PHONY: all deb test test-quick check fuzz demo bench bench-reconnect bench-peers bench-memory bench-mux bench-ptab soak valgrind lint install clean
