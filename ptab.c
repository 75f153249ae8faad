/*
 * ptab.c: peers by their address, a hash table with open addressing, kept
 * at most half full: fork.c's UDP children and multi.c's sessions are
 * found with one hash, never a scan.  Its memory is mapped, so that a
 * forked child can unmap it cleanly.
 *
 * The hash is SipHash-2-4 (Aumasson and Bernstein) under a random key of
 * each table's (arc4random_buf): a peer that chooses its addresses and
 * ports (an IPv6 /64 holds plenty) cannot know which collide, so it
 * cannot make every lookup walk one long run, as it could with an
 * unkeyed hash (FNV-1a: 16,384 chosen pairs made a lookup 15 times
 * dearer).
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

/* 8 bytes at p, little-endian, byte by byte. */
static uint64_t
le64(const uint8_t *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t
ptab_siphash(const uint8_t key[16], const uint8_t *in, size_t len)
{
	uint64_t	 k0 = le64(key), k1 = le64(key + 8), m;
	uint64_t	 v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t	 v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t	 v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t	 v3 = 0x7465646279746573ULL ^ k1;
	uint64_t	 b = (uint64_t)len << 56;
	size_t		 i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = le64(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (; tail > 0; tail--)	/* the last len % 8 bytes */
		b |= (uint64_t)in[i + tail - 1] << (8 * (tail - 1));
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static size_t
addr_hash(const struct ptab *t, const struct sockaddr_storage *ss,
    socklen_t len)
{
	return (size_t)ptab_siphash(t->key, (const uint8_t *)ss, len);
}

struct pent *
ptab_find(const struct ptab *t, const struct sockaddr_storage *ss,
    socklen_t len)
{
	struct pent	*e;
	size_t		 i;

	if (t->cap == 0)
		return NULL;
	for (i = addr_hash(t, ss, len) & (t->cap - 1);;
	    i = (i + 1) & (t->cap - 1)) {
		e = &t->e[i];
		if (e->len == 0)
			return NULL;
		if (!e->dead && e->len == len && memcmp(&e->addr, ss, len) == 0)
			return e;
	}
}

void
ptab_free(struct ptab *t)
{
	if (t->cap > 0)
		(void)munmap(t->e, t->cap * sizeof(*t->e));
	t->e = NULL;
	t->cap = t->used = 0;
}

/* Room for one more: at most half full, dead slots counted. */
static int
ptab_room(struct ptab *t)
{
	struct ptab	 n;
	struct pent	*e;
	size_t		 i, live = 0, j;

	if ((t->used + 1) * 2 <= t->cap)
		return 0;
	if (t->cap == 0)		/* a new table: its own key */
		arc4random_buf(t->key, sizeof(t->key));
	memcpy(n.key, t->key, sizeof(n.key));
	for (i = 0; i < t->cap; i++)
		live += t->e[i].len > 0 && !t->e[i].dead;
	for (n.cap = 64; n.cap < (live + 1) * 4; n.cap *= 2)
		;
	n.used = live;
	n.e = mmap(NULL, n.cap * sizeof(*n.e), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n.e == MAP_FAILED)
		return -1;
	for (i = 0; i < t->cap; i++) {
		if ((e = &t->e[i])->len == 0 || e->dead)
			continue;
		for (j = addr_hash(&n, &e->addr, e->len) & (n.cap - 1);
		    n.e[j].len != 0; j = (j + 1) & (n.cap - 1))
			;
		n.e[j] = *e;
	}
	ptab_free(t);
	*t = n;
	return 0;
}

/* A new entry for ss (not in the table); NULL when out of memory. */
struct pent *
ptab_add(struct ptab *t, const struct sockaddr_storage *ss, socklen_t len)
{
	struct pent	*e;
	size_t		 i;

	if (ptab_room(t) == -1)
		return NULL;
	for (i = addr_hash(t, ss, len) & (t->cap - 1); t->e[i].len != 0 &&
	    !t->e[i].dead; i = (i + 1) & (t->cap - 1))
		;
	e = &t->e[i];
	t->used += e->len == 0;
	memset(e, 0, sizeof(*e));
	memcpy(&e->addr, ss, len);
	e->len = len;
	return e;
}

void
ptab_del(struct ptab *t, const struct sockaddr_storage *ss, socklen_t len)
{
	struct pent	*e;

	if ((e = ptab_find(t, ss, len)) != NULL)
		e->dead = 1;
}

