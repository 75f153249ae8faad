/*
 * ptab.c: peers by their address, a hash table with open addressing, kept
 * at most half full: serve.c's UDP children and multi.c's sessions are
 * found with one hash, never a scan.  Its memory is mapped, so that a
 * forked child can unmap it cleanly.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <stdint.h>
#include <string.h>

#include "dgrelay.h"

static size_t
addr_hash(const struct sockaddr_storage *ss, socklen_t len)
{
	const uint8_t	*p = (const uint8_t *)ss;
	size_t		 h = 14695981039346656037ULL, i;	/* FNV-1a */

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

struct pent *
ptab_find(const struct ptab *t, const struct sockaddr_storage *ss,
    socklen_t len)
{
	struct pent	*e;
	size_t		 i;

	if (t->cap == 0)
		return NULL;
	for (i = addr_hash(ss, len) & (t->cap - 1);;
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
		for (j = addr_hash(&e->addr, e->len) & (n.cap - 1);
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
	for (i = addr_hash(ss, len) & (t->cap - 1); t->e[i].len != 0 &&
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

