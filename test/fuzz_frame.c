/*
 * libFuzzer target for frame.c.
 *
 * Input: 4 control bytes (max payload -s, ring size -b, chunk seed, mode;
 * the mode's bit 1 picks 4-byte u32be headers), then a byte stream.  Mode 0 feeds the stream to a frame_buf in random
 * chunk sizes, the way relay.c does (a ring of frames, compaction only when
 * no frame is in use), and checks every frame against an independent
 * decoder: same frames, same order, same bytes, each inside the buffer,
 * skips and the unfinished tail counted alike.  Mode 1 reads the stream as
 * payloads, encodes them with frame_put and decodes them back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgrelay.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", \
	__FILE__, __LINE__, #c); abort(); } } while (0)

struct ref {
	size_t	 nframes, skips;
	int	 partial;
	size_t	*off, *len;		/* payload offsets in the stream */
};

/* The reference: a plain walk over the whole stream. */
static void
ref_decode(const uint8_t *s, size_t n, size_t max, size_t hdr,
    struct ref *r)
{
	size_t	 pos = 0, len;

	memset(r, 0, sizeof(*r));
	r->off = calloc(n / 2 + 1, sizeof(size_t));
	r->len = calloc(n / 2 + 1, sizeof(size_t));
	CHECK(r->off != NULL && r->len != NULL);
	while (pos < n) {
		if (n - pos < hdr) {
			r->partial = 1;
			return;
		}
		len = (size_t)s[pos] << 8 | s[pos + 1];
		if (hdr == 4)
			len = len << 16 | (size_t)s[pos + 2] << 8 | s[pos + 3];
		if (len > max) {
			r->skips++;
			if (n - pos - hdr < len) {
				r->partial = 1;
				return;
			}
			pos += hdr + len;
			continue;
		}
		if (n - pos - hdr < len) {
			r->partial = 1;
			return;
		}
		r->off[r->nframes] = pos + hdr;
		r->len[r->nframes++] = len;
		pos += hdr + len;
	}
}

static uint32_t
next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

struct held {
	uint8_t	*p;
	size_t	 len, k;		/* frame k of the reference */
};

static void
check_held(const struct held *h, const uint8_t *s, const struct ref *r)
{
	CHECK(frame_get(h->p) == h->len);
	CHECK(h->len == r->len[h->k]);
	CHECK(memcmp(h->p + 2, s + r->off[h->k], h->len) == 0);
}

static void
chunked(const uint8_t *s, size_t n, size_t max, size_t count, size_t hdr,
    uint32_t seed)
{
	struct frame_buf fb;
	struct ref	 r;
	struct held	*q;
	/* relay_slab's: -b slots, and room for a wider header */
	size_t		 cap = count * (max + FRAME_HDR) + hdr - FRAME_HDR;
	size_t		 fed = 0, k = 0;
	size_t		 head = 0, nq = 0, skips = 0, room, len, i, c;
	size_t		 skip, whole;
	uint8_t		*buf, *at, *p;
	int		 res = FRAME_OK;

	ref_decode(s, n, max, hdr, &r);
	buf = malloc(cap);
	q = calloc(count, sizeof(*q));
	CHECK(buf != NULL && q != NULL);
	frame_buf_init(&fb, buf, cap, max, hdr);
	seed |= 1;
	for (;;) {
		/* an oversize frame's bytes, with nothing else buffered, may
		 * be read anywhere and dropped (relay.c's scratch buffer) */
		if ((skip = frame_buf_toskip(&fb)) > 0 && fed < n &&
		    next_rand(&seed) % 2) {
			c = 1 + next_rand(&seed) % skip;
			if (c > n - fed)
				c = n - fed;
			frame_buf_skipped(&fb, c);
			fed += c;
		}
		/* read a chunk, as far as there is room */
		room = frame_buf_room(&fb, nq == 0, &at);
		CHECK(at >= buf && at + room == buf + cap);
		if (room > 0 && fed < n) {
			c = 1 + next_rand(&seed) % (next_rand(&seed) % 4 ?
			    64 : 70000);
			if (c > room)
				c = room;
			if (c > n - fed)
				c = n - fed;
			memcpy(at, s + fed, c);
			frame_buf_fill(&fb, c);
			fed += c;
		}
		/* cut while the ring has room */
		res = FRAME_OK;
		while (nq < count &&
		    (res = frame_buf_next(&fb, &p, &len)) != FRAME_MORE) {
			if (res == FRAME_SKIP) {
				skips++;
				continue;
			}
			CHECK(k < r.nframes);
			CHECK(p >= buf && p + FRAME_HDR + len <= buf + cap);
			q[(head + nq) % count] = (struct held){ p, len, k++ };
			check_held(&q[(head + nq) % count], s, &r);
			nq++;
		}
		/* what is left if the relay ended now: the whole frames
		 * fed and not cut, no more, no fewer */
		(void)frame_buf_left(&fb, &whole);
		for (i = k, c = 0; i < r.nframes && r.off[i] + r.len[i] <= fed;
		    i++)
			c++;
		CHECK(whole == c);
		/* the sink takes some; all when nothing else can move */
		c = nq == 0 ? 0 : next_rand(&seed) % (nq + 1);
		if ((fed == n || frame_buf_room(&fb, 0, &at) == 0) && c == 0)
			c = nq;
		for (i = 0; i < c; i++) {
			check_held(&q[head], s, &r);	/* still intact */
			head = (head + 1) % count;
			nq--;
		}
		if (fed == n && nq == 0 && res == FRAME_MORE)
			break;		/* all fed, all taken, nothing to cut */
	}
	CHECK(k == r.nframes);
	CHECK(skips == r.skips);
	CHECK(frame_buf_partial(&fb) == r.partial);
	CHECK(frame_buf_left(&fb, &whole) == r.partial && whole == 0);
	free(buf);
	free(q);
	free(r.off);
	free(r.len);
}

/* Payload lengths from the input; frames encoded, decoded, compared. */
static void
roundtrip(const uint8_t *s, size_t n)
{
	static uint8_t	 enc[1 << 20];
	struct frame_buf fb;
	size_t		 e = 0, i = 0, len, got = 0, want[4096], nw = 0;
	uint8_t		*p;

	while (i + 2 <= n && nw < 4096) {
		len = ((size_t)s[i] << 8 | s[i + 1]) % 4096;
		if (s[i] == 0xff && s[i + 1] == 0xff)
			len = FRAME_MAX;
		i += 2;
		if (e + FRAME_HDR + len > sizeof(enc))
			break;
		frame_put(enc + e, len);
		memset(enc + e + FRAME_HDR, (int)(len & 0xff), len);
		e += FRAME_HDR + len;
		want[nw++] = len;
	}
	frame_buf_init(&fb, enc, sizeof(enc), FRAME_MAX, FRAME_HDR);
	frame_buf_fill(&fb, e);
	while (frame_buf_next(&fb, &p, &len) == FRAME_OK) {
		CHECK(got < nw && len == want[got]);
		CHECK(len == 0 || (p[2] == (len & 0xff) &&
		    p[1 + len] == (len & 0xff)));
		got++;
	}
	CHECK(got == nw);
	CHECK(!frame_buf_partial(&fb));
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Fixed cases: the extremes, and a 65535-byte frame in 1-byte reads. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static uint8_t	 big[FRAME_HDR + FRAME_MAX], buf[FRAME_HDR + FRAME_MAX];
	struct frame_buf fb;
	size_t		 lens[] = { 0, 1, 255, 256, 65534, 65535 }, i, len;
	uint8_t		 h[2], *at, *p;

	(void)argc;
	(void)argv;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		frame_put(h, lens[i]);
		CHECK(frame_get(h) == lens[i]);
	}
	frame_put(big, FRAME_MAX);
	for (i = 0; i < FRAME_MAX; i++)
		big[FRAME_HDR + i] = (uint8_t)(i * 7);
	frame_buf_init(&fb, buf, sizeof(buf), FRAME_MAX, FRAME_HDR);
	for (i = 0; i < sizeof(big); i++) {
		CHECK(frame_buf_next(&fb, &p, &len) == FRAME_MORE);
		CHECK(frame_buf_room(&fb, 1, &at) >= 1);
		*at = big[i];
		frame_buf_fill(&fb, 1);
	}
	CHECK(frame_buf_next(&fb, &p, &len) == FRAME_OK);
	CHECK(len == FRAME_MAX && memcmp(p, big, sizeof(big)) == 0);
	CHECK(!frame_buf_partial(&fb));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t	 max, count;

	if (size < 4)
		return 0;
	max = 1 + (((size_t)data[0] << 8 | data[1]) % FRAME_MAX);
	if (data[0] & 0x80)
		max = 1 + data[1] % 64;		/* small -s: many skips */
	count = 1 + data[2] % 8;
	if (data[3] & 1)
		roundtrip(data + 4, size - 4);
	else
		chunked(data + 4, size - 4, max, count,
		    data[3] & 2 ? FRAME_WIDE : FRAME_HDR,
		    (uint32_t)data[2] << 8 | data[3]);
	return 0;
}
