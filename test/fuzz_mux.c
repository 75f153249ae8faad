/*
 * libFuzzer target for mux.c, the yamux engine.
 *
 * Byte 0 bit 0: hostile: the rest is a carrier's input to an accepting
 * engine, in chunks; it must never crash, hold more streams than its
 * limit or more output than its bound, and once it has failed it takes
 * nothing more.  Otherwise: two engines joined in memory, the dialler
 * opening streams and writing the input's bytes to them, the acceptor
 * echoing every byte back, chunk sizes and turns from the input: each
 * stream's echo is exactly what was written to it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mux.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", \
	__FILE__, __LINE__, #c); abort(); } } while (0)

#define NS	4

/* The hostile peer's streams, as an owner holds them. */
static struct mstream	**held;
static size_t		  nheld;

static void
hold(void *arg, struct mstream *s)
{
	(void)arg;
	held = realloc(held, (nheld + 1) * sizeof(*held));
	CHECK(held != NULL);
	held[nheld++] = s;
}

static void
hostile(const uint8_t *d, size_t n)
{
	struct mux	 m;
	size_t		 at = 0, k, on, i;
	ssize_t		 r;

	CHECK(mux_init(&m, 0, 8, 42) == 0);
	m.on_accept = hold;
	while (at < n) {
		k = 1 + d[at] % 64;
		at++;
		if (k > n - at)
			k = n - at;
		r = mux_input(&m, d + at, k);
		CHECK(m.nstreams <= 8);
		(void)mux_output(&m, &on);
		CHECK(on <= MUX_OUT_MAX + MUX_HDR * 4);
		if (r == -1) {
			CHECK(m.failed);
			CHECK(mux_input(&m, d, 1) == -1);
			break;
		}
		CHECK((size_t)r == k);
		if (d[at - 1] & 0x80)
			mux_sent(&m, on);
		at += k;
	}
	for (i = 0; i < nheld; i++)
		ms_release(held[i], 1);
	nheld = 0;
	mux_free(&m);
}

/* A stream's bytes: a pattern of its index and offset, checked, not kept. */
static uint8_t
pat(size_t j, size_t off)
{
	return (uint8_t)(j * 131 + off * 7 + (off >> 9));
}

struct side {
	struct mstream	*s;
	size_t		 want;		/* bytes to write in all */
	size_t		 nsent, ngot;
};

static struct side	 ds[NS];		/* the dialler's streams */
static struct mstream	*echo[64];		/* the acceptor's */
static size_t		 necho;
static uint8_t		 pend[64][8192];	/* ... a chunk each, held */
static size_t		 plen[64];

static void
on_accept(void *arg, struct mstream *s)
{
	(void)arg;
	if (necho < 64)
		echo[necho++] = s;
}

/* Move up to k bytes of a's output into b. */
static void
carry(struct mux *a, struct mux *b, size_t k)
{
	const uint8_t	*p;
	size_t		 n;

	p = mux_output(a, &n);
	if (n > k)
		n = k;
	if (n == 0)
		return;
	CHECK(mux_input(b, p, n) == (ssize_t)n);
	mux_sent(a, n);
}

/*
 * Two engines: the dialler writes each stream's bytes (up to 1 MiB: past
 * the window, so updates must flow), the acceptor echoes them, in chunks
 * and turns the input says; the echo is the pattern, every byte.
 */
static void
pair(const uint8_t *d, size_t n)
{
	static uint8_t	 buf[70000];
	struct mux	 a, b;
	size_t		 at = 0, i, j, k, still = 0, left, on, was = 0, now;
	ssize_t		 r;

	memset(ds, 0, sizeof(ds));
	memset(plen, 0, sizeof(plen));
	necho = 0;
	CHECK(mux_init(&a, 1, 64, 1) == 0);
	CHECK(mux_init(&b, 0, 64, 2) == 0);
	b.on_accept = on_accept;
	for (i = 0; i < NS; i++) {
		CHECK((ds[i].s = mux_open(&a)) != NULL);
		ds[i].want = i < n ? (size_t)d[i] << 12 : 0;
	}
	for (;;) {
		uint8_t	 c = n > 0 ? d[at++ % n] : 0;

		/* progress: bytes sent and echoed; a stall aborts */
		for (now = 0, j = 0; j < NS; j++)
			now += ds[j].nsent + ds[j].ngot;
		still = now == was ? still + 1 : 0;
		was = now;
		CHECK(still < 20000);
		/* the stream the input picks, or the next with bytes to go */
		for (i = c % NS, j = 0; j < NS && ds[i].nsent == ds[i].want;
		    j++)
			i = (i + 1) % NS;
		k = ((size_t)c << 8) + 1;
		if (k > ds[i].want - ds[i].nsent)
			k = ds[i].want - ds[i].nsent;
		for (j = 0; j < k; j++)
			buf[j] = pat(i, ds[i].nsent + j);
		if (k > 0 && (r = ms_write(ds[i].s, buf, k)) > 0)
			ds[i].nsent += (size_t)r;
		carry(&a, &b, 1 + (size_t)c * 97);
		/* the acceptor echoes what it has, as its windows let it: a
		 * chunk read is held until it is written */
		for (j = 0; j < necho; j++)
			for (;;) {
				if (plen[j] == 0 && (r = ms_read(echo[j],
				    pend[j], 1 + (size_t)c * 31 % 8191)) > 0)
					plen[j] = (size_t)r;
				if (plen[j] == 0 ||
				    (r = ms_write(echo[j], pend[j], plen[j])) <=
				    0)
					break;
				memmove(pend[j], pend[j] + r,
				    plen[j] - (size_t)r);
				plen[j] -= (size_t)r;
			}
		carry(&b, &a, 1 + (size_t)c * 89);
		for (j = 0; j < NS; j++)
			while ((r = ms_read(ds[j].s, buf, sizeof(buf))) > 0) {
				CHECK(ds[j].ngot + (size_t)r <= ds[j].nsent);
				for (k = 0; k < (size_t)r; k++)
					CHECK(buf[k] == pat(j, ds[j].ngot + k));
				ds[j].ngot += (size_t)r;
			}
		for (left = 0, j = 0; j < NS; j++)
			left += ds[j].want - ds[j].ngot;
		(void)mux_output(&a, &on);
		left += on;
		(void)mux_output(&b, &on);
		if (left + on == 0)
			break;
	}
	CHECK(!a.failed && !b.failed);
	CHECK(necho == NS);
	for (j = 0; j < NS; j++)
		ms_release(ds[j].s, 0);
	for (j = 0; j < necho; j++)
		ms_release(echo[j], 0);
	mux_free(&a);
	mux_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 1)
		return 0;
	if (d[0] & 1)
		hostile(d + 1, n - 1);
	else
		pair(d + 1, n - 1);
	return 0;
}
