/*
 * ptabbench [K]: the peer table (ptab.c) against chosen collisions.
 *
 * An attacker who knows the hash picks K IPv6 (address, port) pairs from
 * one /64 that all fall into one bucket.  Against the old unkeyed hash
 * (FNV-1a over the sockaddr, as ptab.c had it) that is a brute-force
 * search done offline; here it is done for a table of the size ptab.c
 * grows to for K peers.  Timed: lookups of those K in a table with the
 * old hash (the same open addressing, linear probing), and in ptab.c's
 * own table (SipHash under a random key), beside K random pairs in each.
 * Prints ns a lookup; the keyed table stays flat.  (make bench-ptab)
 *
 * ptabbench -t: ptab_siphash against the reference vectors of SipHash-2-4
 * (key 00..0f, messages 00..len-1); exit 1 on a mismatch.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgrelay.h"

static size_t
fnv(const struct sockaddr_storage *ss, socklen_t len)
{
	const uint8_t	*p = (const uint8_t *)ss;
	size_t		 h = 14695981039346656037ULL, i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* The search's random numbers: xorshift64*, seeded once (cheap). */
static uint64_t
rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ULL;
}

/* A peer in 2001:db8::/64 with a random interface id and port. */
static void
peer(struct sockaddr_storage *ss, uint64_t *x)
{
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)ss;
	uint64_t		 id = rnd(x);

	memset(ss, 0, sizeof(*ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = (in_port_t)rnd(x);
	s6->sin6_addr.s6_addr[0] = 0x20;
	s6->sin6_addr.s6_addr[1] = 0x01;
	s6->sin6_addr.s6_addr[2] = 0x0d;
	s6->sin6_addr.s6_addr[3] = 0xb8;
	memcpy(&s6->sin6_addr.s6_addr[8], &id, 8);
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The old table: FNV-1a, linear probing, cap entries. */
struct old {
	struct sockaddr_storage	*e;
	size_t			 cap;
};

static size_t
old_slot(const struct old *t, const struct sockaddr_storage *ss, int add)
{
	size_t	 i;

	for (i = fnv(ss, sizeof(struct sockaddr_in6)) & (t->cap - 1);;
	    i = (i + 1) & (t->cap - 1))
		if (t->e[i].ss_family == 0 ? add :
		    memcmp(&t->e[i], ss, sizeof(struct sockaddr_in6)) == 0)
			return i;
}

/* ns a lookup of each of keys[0..k) in both tables, looked up 'rounds' times. */
static void
timed(const char *what, struct sockaddr_storage *keys, size_t k,
    size_t cap, int rounds)
{
	struct old	 o;
	struct ptab	 t;
	struct pent	*e;
	double		 t0, t1, t2;
	size_t		 i, hits = 0;
	int		 r;

	memset(&t, 0, sizeof(t));
	o.cap = cap;
	if ((o.e = calloc(cap, sizeof(*o.e))) == NULL)
		err(1, "calloc");
	for (i = 0; i < k; i++) {
		o.e[old_slot(&o, &keys[i], 1)] = keys[i];
		if ((e = ptab_add(&t, &keys[i], sizeof(struct sockaddr_in6))) ==
		    NULL)
			err(1, "ptab_add");
	}
	t0 = now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < k; i++)
			hits += old_slot(&o, &keys[i], 0) < cap;
	t1 = now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < k; i++)
			hits += ptab_find(&t, &keys[i],
			    sizeof(struct sockaddr_in6)) != NULL;
	t2 = now();
	printf("%-22s old (FNV-1a) %9.1f ns   ptab (SipHash, keyed) %7.1f ns"
	    "   (%zu found)\n", what, (t1 - t0) * 1e9 / (rounds * k),
	    (t2 - t1) * 1e9 / (rounds * k), hits);
	free(o.e);
	ptab_free(&t);
}

/* The reference outputs (the paper's vectors, as 64-bit numbers). */
static int
vectors(void)
{
	static const struct {
		size_t		 len;
		uint64_t	 out;
	} v[] = {
		{ 0, 0x726fdb47dd0e0e31ULL }, { 1, 0x74f839c593dc67fdULL },
		{ 7, 0xab0200f58b01d137ULL }, { 8, 0x93f5f5799a932462ULL },
		{ 15, 0xa129ca6149be45e5ULL }, { 63, 0x958a324ceb064572ULL },
	};
	uint8_t		 key[16], in[64];
	size_t		 i, bad = 0;
	uint64_t	 h;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if ((h = ptab_siphash(key, in, v[i].len)) != v[i].out) {
			printf("length %zu: %016llx, not %016llx\n", v[i].len,
			    (unsigned long long)h, (unsigned long long)v[i].out);
			bad++;
		}
	printf("%zu of %zu vectors right\n", i - bad, i);
	return bad > 0;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_storage	*keys, ss;
	struct ptab		 t;
	size_t			 k = argc > 1 ? strtoul(argv[1], NULL, 10) : 4096;
	size_t			 i, cap, mask, target, tries = 0;
	uint64_t		 x;

	if (argc > 1 && strcmp(argv[1], "-t") == 0)
		return vectors();
	if (k < 2 || k > 1000000)
		errx(2, "usage: ptabbench [K]");
	if ((keys = calloc(k, sizeof(*keys))) == NULL)
		err(1, "calloc");
	arc4random_buf(&x, sizeof(x));
	x |= 1;
	/* the size ptab.c grows to for k peers */
	memset(&t, 0, sizeof(t));
	for (i = 0; i < k; i++) {
		peer(&keys[i], &x);
		if (ptab_add(&t, &keys[i], sizeof(struct sockaddr_in6)) == NULL)
			err(1, "ptab_add");
	}
	cap = t.cap;
	ptab_free(&t);
	printf("%zu peers, a table of %zu slots\n", k, cap);
	timed("random peers", keys, k, cap, 10);
	/* the attacker's offline search: all k into one bucket */
	mask = cap - 1;
	peer(&ss, &x);
	target = fnv(&ss, sizeof(struct sockaddr_in6)) & mask;
	for (i = 0; i < k; tries++) {
		peer(&ss, &x);
		if ((fnv(&ss, sizeof(struct sockaddr_in6)) & mask) == target)
			keys[i++] = ss;
	}
	printf("(%zu tries to find them)\n", tries);
	timed("chosen to collide", keys, k, cap, 10);
	free(keys);
	return 0;
}
