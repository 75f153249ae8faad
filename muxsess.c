/*
 * muxsess.c: mux under multi: each connection a listener accepts is a
 * carrier whose streams are sessions (stream_in), and the carrier a
 * multi listener dials for its sessions' other address (dial_start, and
 * again with retry when lost).  The sessions are multi.c's.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"
#include "mux.h"
#include "multi.h"

/* Append c to a list of carriers; -1: no memory. */
static int
cars_add(struct carrier ***v, size_t *n, size_t *cap, struct carrier *c)
{
	struct carrier	**nv;

	if (*n == *cap) {
		if ((nv = reallocarray(*v, *cap ? *cap * 2 : 16,
		    sizeof(*nv))) == NULL)
			return -1;
		*v = nv;
		*cap = *cap ? *cap * 2 : 16;
	}
	(*v)[(*n)++] = c;
	return 0;
}

/* A stream the far side opened: a session, as an accepted peer is. */
static void
stream_in(void *owner, struct carrier *c, struct mstream *ms)
{
	struct multi	*m = owner;
	struct sess	*ss;
	struct side	 ps;

	if (m->n >= (size_t)m->a->maxpeers) {
		m->dropped++;
		ms_release(ms, 1);	/* RST: no room */
		return;
	}
	sock_side_init(m->a, &ps);
	carrier_side(c, ms, &ps);
	if ((ss = sess_new(m, &ps)) == NULL) {
		ms_release(ms, 1);
		return;
	}
	ms->owner = ss->rl;
	relay_kick(ss->rl);	/* the bytes that came with its SYN */
}

/* A carrier was lost: its sessions read a reset; freed after the pass. */
static void
carrier_gone(void *owner, struct carrier *c)
{
	struct multi	*m = owner;
	size_t		 i;

	for (i = 0; i < m->ncars; i++)
		if (m->cars[i] == c) {
			m->cars[i] = m->cars[--m->ncars];
			break;
		}
	if (cars_add(&m->deadcars, &m->ndead, &m->capdead, c) == -1)
		logerr("%s: carrier list", m->a->label);
	listener_arm(m);
}


/* The dialled carrier is lost: dialled again (retry), or the end. */
static void
out_gone(void *owner, struct carrier *c)
{
	struct multi	*m = owner;

	m->out = NULL;
	if (cars_add(&m->deadcars, &m->ndead, &m->capdead, c) == -1)
		logerr("%s: carrier list", m->oa->label);
	if (m->oa->retry == 0) {
		logx("%s: carrier lost, and no retry", m->oa->label);
		m->status = 1;
		loop_stop(m->loop);
		return;
	}
	(void)loop_timer(m->loop, &m->ct, loop_now() + m->oa->interval_ms);
}

/* The carrier's connection is made: its streams can be had. */
static void
out_up(struct multi *m)
{
	int	 fd = m->cs.rfd;

	loop_unwatch(m->loop, &m->cw);
	m->cs.rfd = m->cs.wfd = -1;
	if ((m->out = carrier_new(m->loop, fd, 1, (size_t)m->a->maxpeers,
	    m->oa->muxping_ms, &m->cs, m, NULL, out_gone)) == NULL) {
		logerr("%s: carrier", m->oa->label);
		(void)close(fd);
		(void)loop_timer(m->loop, &m->ct, loop_now() + 1000);
		return;
	}
	if (m->carried++ > 0)
		m->redials++;
	if (m->o->verbose)
		logx("%s: carrier up to %s", m->oa->label, m->cs.peer);
}

/* An attempt failed: again after interval (retry), or the end. */
static void
out_failed(struct multi *m)
{
	loop_unwatch(m->loop, &m->cw);
	logx("%s: %s", m->oa->label, m->cs.err);
	if (m->oa->retry == 0) {
		m->status = 1;
		loop_stop(m->loop);
		return;
	}
	(void)loop_timer(m->loop, &m->ct, loop_now() + m->oa->interval_ms);
}

void
dial_ready(struct watch *w, uint32_t ev)
{
	struct multi	*m = w->arg;
	int		 r;

	(void)ev;
	if ((r = sock_dial_end(m->oa, &m->cs)) == 0)
		out_up(m);
	else if (r == 1) {
		if (loop_watch(m->loop, &m->cw, m->cs.rfd, EPOLLOUT) == -1)
			out_failed(m);
	} else
		out_failed(m);
}

void
dial_start(struct multi *m)
{
	int	 r;

	sock_side_init(m->oa, &m->cs);
	if ((r = sock_dial(m->oa, &m->cs)) == 0)
		out_up(m);
	else if (r == 1 &&
	    loop_watch(m->loop, &m->cw, m->cs.rfd, EPOLLOUT) == 0)
		return;
	else
		out_failed(m);
}

void
dial_due(struct timer *t)
{
	dial_start(t->arg);
}

/* An accepted connection is a carrier of streams. */
void
carrier_in(struct multi *m, struct side *s)
{
	struct carrier	*c;

	if ((c = carrier_new(m->loop, s->rfd, 0, (size_t)m->a->maxpeers,
	    m->a->muxping_ms, s, m, stream_in, carrier_gone)) == NULL ||
	    cars_add(&m->cars, &m->ncars, &m->capcars, c) == -1) {
		logerr("%s: carrier from %s", m->a->label, s->peer);
		if (c != NULL)
			carrier_free(c);
		else
			(void)close(s->rfd);
		return;
	}
	m->carried++;
	if (m->o->verbose)
		logx("%s: carrier from %s", m->a->label, s->peer);
}
