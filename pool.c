/*
 * pool.c: the buffers of every relay direction in the process, of one
 * size (a ring of -b slots of -s + 2 bytes, and its entries), lent while a
 * direction has datagrams in flight and given back when its ring is empty.
 * An idle session holds none, so memory follows the traffic, not the
 * number of peers.
 *
 * At most max bytes are lent at once.  At the cap, a direction that needs
 * a buffer waits (it stops reading: backpressure, as a full ring does) and
 * is woken, first come first served, when one comes back.  Given-back
 * buffers are kept for the next borrower, the last one first (it is the
 * one still in the CPU's cache).
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dgrelay.h"

struct slab {
	struct slab	*next;
};

void
pool_init(struct pool *p, size_t slab, size_t max)
{
	memset(p, 0, sizeof(*p));
	p->slab = slab < sizeof(struct slab) ? sizeof(struct slab) : slab;
	p->max = max < 2 * p->slab ? 2 * p->slab : max;
}

void *
pool_get(struct pool *p)
{
	struct slab	*s;

	if ((s = p->free) != NULL) {
		p->free = s->next;
		p->lent += p->slab;
		return s;
	}
	if (p->lent + p->slab > p->max) {
		errno = ENOBUFS;
		return NULL;
	}
	if ((s = malloc(p->slab)) == NULL)
		return NULL;		/* ENOMEM */
	p->lent += p->slab;
	return s;
}

void
pool_put(struct pool *p, void *buf)
{
	struct slab		*s = buf;
	struct pool_wait	*w;

	s->next = p->free;
	p->free = s;
	p->lent -= p->slab;
	if ((w = p->waiting) != NULL) {	/* the longest waiter, once */
		p->waiting = w->next;
		if (p->waiting == NULL)
			p->waiting_tail = NULL;
		w->queued = 0;
		w->fn(w);
	}
}

void
pool_wait(struct pool *p, struct pool_wait *w)
{
	if (w->queued)
		return;
	w->queued = 1;
	w->next = NULL;
	if (p->waiting_tail != NULL)
		p->waiting_tail->next = w;
	else
		p->waiting = w;
	p->waiting_tail = w;
}

void
pool_unwait(struct pool *p, struct pool_wait *w)
{
	struct pool_wait	**pp, *prev = NULL;

	if (!w->queued)
		return;
	for (pp = &p->waiting; *pp != NULL; prev = *pp, pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			if (p->waiting_tail == w)
				p->waiting_tail = prev;
			break;
		}
	w->queued = 0;
}

void
pool_free(struct pool *p)
{
	struct slab	*s;

	while ((s = p->free) != NULL) {
		p->free = s->next;
		free(s);
	}
}
