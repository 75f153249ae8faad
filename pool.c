/*
 * pool.c: the process's buffer memory, counted in bytes against one cap,
 * with a fair share per direction.
 *
 * Two kinds of memory are lent.  A ring (-b slots of -s + 2 bytes) is what
 * a direction reads into and writes from without a copy; a pair keeps its
 * rings while datagrams are in flight, a multi session only for the turn
 * it is in (relay.c copies what is still queued at the end of the turn into
 * held bytes and gives the ring back), so a process with many sessions
 * lends a ring or two at a time, not one per session.  Held bytes are what
 * a direction keeps between turns: its queued datagrams (each about its
 * own size), an unfinished frame's bytes, its queue's entries.
 *
 * The cap bounds rings and held bytes together.  A direction may hold at
 * most its share, pool_share(): half the cap split evenly between the
 * directions that hold bytes, never less than one largest datagram (so
 * every session can move one), never more than its ring; over it, it
 * reads no more (backpressure on that peer alone) until its sink drains
 * it.  The sessions of one source address (multi) share likewise: half
 * the cap over the sources holding bytes, so that a crowd from one address
 * takes no more than one peer elsewhere would.
 * At the cap, a direction that needs memory waits and reads nothing;
 * when bytes come back, waiters are woken in the order they came, as many
 * as the room can serve, and one that still finds no room goes to the back.
 * Given-back rings are kept for the next borrower, the last one first (it
 * is the one still in the CPU's cache).
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

struct slab {
	struct slab	*next;
};

void
pool_init(struct pool *p, size_t slab, size_t floor, size_t max)
{
	memset(p, 0, sizeof(*p));
	p->slab = slab < sizeof(struct slab) ? sizeof(struct slab) : slab;
	p->floor = floor;
	p->max = max < 2 * p->slab ? 2 * p->slab : max;
}

static int
pool_room(const struct pool *p, size_t n)
{
	return p->lent + n <= p->max;
}

void *
pool_get(struct pool *p, int force)
{
	struct slab	*s;

	if (!force && !pool_room(p, p->slab)) {
		errno = ENOBUFS;
		return NULL;
	}
	if ((s = p->free) != NULL)
		p->free = s->next;
	else if ((s = malloc(p->slab)) == NULL)
		return NULL;		/* ENOMEM */
	p->lent += p->slab;
	if (p->lent > p->peak)
		p->peak = p->lent;
	return s;
}

/*
 * Wake waiters, oldest first, while the room left could serve each with a
 * largest datagram (the first one always: it tries, and waits again at the
 * back if it still cannot).
 */
static void
pool_wake(struct pool *p)
{
	struct pool_wait	*w;
	size_t			 room, woken = 0;

	room = p->max > p->lent ? p->max - p->lent : 0;
	while ((w = p->waiting.head) != NULL &&
	    (woken == 0 || room >= (woken + 1) * p->floor)) {
		pool_unwait(p, w);
		woken++;
		w->fn(w);
	}
}

void
pool_put(struct pool *p, void *buf)
{
	struct slab	*s = buf;

	s->next = p->free;
	p->free = s;
	p->lent -= p->slab;
	pool_wake(p);
}

void
pool_take(struct pool *p, size_t n)
{
	p->lent += n;
	if (p->lent > p->peak)
		p->peak = p->lent;
}

void
pool_give(struct pool *p, size_t n)
{
	p->lent -= n;
	pool_wake(p);
}

void
pool_holder(struct pool *p, int delta)
{
	p->holders += delta;
}

size_t
pool_share(const struct pool *p)
{
	size_t	 share = p->max / 2 / (p->holders > 0 ? p->holders : 1);

	if (share > p->slab)
		share = p->slab;
	return share < p->floor ? p->floor : share;
}

void
pool_group_add(struct pool *p, struct pool_group *g, long long n)
{
	if (g->held == 0 && n > 0)
		p->groups++;
	g->held += n;
	if (g->held == 0)
		p->groups--;
}

size_t
pool_group_left(const struct pool *p, const struct pool_group *g)
{
	size_t	 share = p->max / 2 / (p->groups > 0 ? p->groups : 1);

	if (share < p->floor)
		share = p->floor;
	return g->held < share ? share - g->held : 0;
}

int
pool_full(const struct pool *p)
{
	return !pool_room(p, p->floor);
}

void
waitq_add(struct waitq *q, struct pool_wait *w)
{
	if (w->queued)
		return;
	w->queued = 1;
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

void
waitq_del(struct waitq *q, struct pool_wait *w)
{
	if (!w->queued)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->queued = 0;
}

void
pool_wait(struct pool *p, struct pool_wait *w)
{
	waitq_add(&p->waiting, w);
}

void
pool_unwait(struct pool *p, struct pool_wait *w)
{
	waitq_del(&p->waiting, w);
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
