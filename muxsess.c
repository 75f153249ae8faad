/*
 * muxsess.c: mux under multi.  Carriers come four ways:
 *
 *  - accepted on the multi address (tcp-listen:443,mux): each stream the
 *    far side opens is a session (stream_in), as an accepted peer is;
 *  - dialled by the multi address (tcp:relay:443,mux: the service side of
 *    a reverse tunnel): one carrier, its streams sessions, kept up by
 *    retry;
 *  - dialled for the other address (udp-listen,multi tls:...,mux): each
 *    session opens a stream on the one carrier, dialled again with retry;
 *  - accepted on the other address (udp-listen,multi tcp-listen:443,mux:
 *    the reverse tunnel): each session opens a stream on the carrier with
 *    the fewest streams; while none is up, stream peers wait in the
 *    backlog and UDP peers' datagrams are dropped and counted.
 *
 * The sessions are multi.c's.  At most CARRIERS_MAX carriers a listener.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
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

/* Take c off a list; 1 if it was there. */
static int
cars_del(struct carrier **v, size_t *n, struct carrier *c)
{
	size_t	 i;

	for (i = 0; i < *n; i++)
		if (v[i] == c) {
			v[i] = v[--*n];
			return 1;
		}
	return 0;
}

/* c was lost: freed after this pass (its streams' sessions end first). */
static void
cars_bury(struct multi *m, struct carrier *c)
{
	if (cars_add(&m->deadcars, &m->ndead, &m->capdead, c) == -1) {
		logerr("%s: carrier list", m->a->label);
		m->status = 1;		/* (never freed: a leak, not a crash) */
		loop_stop(m->loop);
	}
}

/* c goes: its streams counted into the totals. */
static void
car_free(struct multi *m, struct carrier *c)
{
	uint64_t	 f[3];

	carrier_figures(c, f);
	m->sopened += f[0];
	m->saccepted += f[1];
	carrier_free(c);
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

/* An accepted carrier was lost (either listener's). */
static void
carrier_gone(void *owner, struct carrier *c)
{
	struct multi	*m = owner;

	if (!cars_del(m->cars, &m->ncars, c))
		(void)cars_del(m->ocars, &m->nocars, c);
	cars_bury(m, c);
	if (m->stopping)
		return;
	listener_arm(m);	/* (the last one of the other's: a backlog) */
	mux_arm(m);
}

/* A carrier of the other address came up: sessions may be had again. */
static void
carrier_is_up(void *owner, struct carrier *c)
{
	(void)c;
	listener_arm(owner);
}

/* ------------------------------------------------------ dialled carriers */

static void	mdial_start(struct mdial *);

/* The dialled carrier is lost: dialled again (retry), or the end. */
static void
mdial_gone(void *owner, struct carrier *c)
{
	struct multi	*m = owner;
	struct mdial	*d = m->din.c == c ? &m->din : &m->dout;

	d->c = NULL;
	cars_bury(m, c);
	if (m->stopping)
		return;
	listener_arm(m);
	if (d->a->retry == 0) {
		logx("%s: carrier lost, and no retry", d->a->label);
		m->status = 1;
		loop_stop(m->loop);
		return;
	}
	(void)loop_timer(m->loop, &d->ct, loop_now() + d->a->interval_ms);
}

/* The carrier's connection is made: its streams can be had. */
static void
mdial_up(struct mdial *d)
{
	struct multi	*m = d->m;
	int		 fd = d->cs.rfd;

	loop_unwatch(m->loop, &d->cw);
	d->c = carrier_new(m->loop, &d->cs, 1, (size_t)m->a->maxpeers,
	    d->a->muxping_ms, m->o->verbose, m, d->in ? stream_in : NULL,
	    mdial_gone);
	d->cs.rfd = d->cs.wfd = -1;	/* the carrier's now, or closed */
	if (d->c == NULL) {
		logerr("%s: carrier", d->a->label);
		(void)close(fd);
		(void)loop_timer(m->loop, &d->ct, loop_now() + 1000);
		return;
	}
	if (!d->in)
		carrier_on_up(d->c, carrier_is_up);
	d->dials++;
	m->carried++;
	if (m->o->verbose)
		logx("%s: carrier up to %s", d->a->label, d->cs.peer);
	listener_arm(m);
}

/* An attempt failed: again after interval (retry), or the end. */
static void
mdial_failed(struct mdial *d)
{
	struct multi	*m = d->m;

	loop_unwatch(m->loop, &d->cw);
	logx("%s: %s", d->a->label, d->cs.err);
	sock_hangup(d->a, &d->cs);
	if (d->a->retry == 0) {
		m->status = 1;
		loop_stop(m->loop);
		return;
	}
	(void)loop_timer(m->loop, &d->ct, loop_now() + d->a->interval_ms);
}

static void
mdial_ready(struct watch *w, uint32_t ev)
{
	struct mdial	*d = w->arg;
	int		 r;

	(void)ev;
	if ((r = sock_dial_end(d->a, &d->cs)) == 0)
		mdial_up(d);
	else if (r == 1) {
		if (loop_watch(d->m->loop, &d->cw, d->cs.rfd, EPOLLOUT) == -1)
			mdial_failed(d);
	} else
		mdial_failed(d);
}

static void
mdial_start(struct mdial *d)
{
	int	 r;

	sock_side_init(d->a, &d->cs);
	if ((r = sock_dial(d->a, &d->cs)) == 0)
		mdial_up(d);
	else if (r == 1 &&
	    loop_watch(d->m->loop, &d->cw, d->cs.rfd, EPOLLOUT) == 0)
		return;
	else
		mdial_failed(d);
}

static void
mdial_due(struct timer *t)
{
	mdial_start(t->arg);
}

static void
mdial_init(struct multi *m, struct mdial *d, const struct addr *a, int in)
{
	d->m = m;
	d->a = a;
	d->in = in;
	sock_side_init(a, &d->cs);
	watch_init(&d->cw, mdial_ready, d);
	timer_init(&d->ct, mdial_due, d);
}

static void
mdial_end(struct multi *m, struct mdial *d)
{
	loop_untimer(m->loop, &d->ct);
	loop_unwatch(m->loop, &d->cw);
	if (d->c != NULL)
		car_free(m, d->c);
	d->c = NULL;
	sock_hangup(d->a, &d->cs);
}

/* ---------------------------------------------------- accepted carriers */

/* A connection to a mux listener: a carrier (on the list given). */
static void
carrier_accepted(struct multi *m, const struct addr *a, struct side *s,
    int other)
{
	struct carrier	*c;

	if ((c = carrier_new(m->loop, s, 0, (size_t)m->a->maxpeers,
	    a->muxping_ms, m->o->verbose, m, other ? NULL : stream_in,
	    carrier_gone)) == NULL ||
	    (other ? cars_add(&m->ocars, &m->nocars, &m->capocars, c) :
	    cars_add(&m->cars, &m->ncars, &m->capcars, c)) == -1) {
		logerr("%s: carrier from %s", a->label, s->peer);
		if (c != NULL)
			carrier_free(c);
		else
			(void)close(s->rfd);
		return;
	}
	if (other)
		carrier_on_up(c, carrier_is_up);
	m->carried++;
	if (m->o->verbose)
		logx("%s: carrier from %s", a->label, s->peer);
	if (other)
		listener_arm(m);
}

/* An accepted connection on the multi address is a carrier of sessions. */
void
carrier_in(struct multi *m, struct side *s)
{
	carrier_accepted(m, m->a, s, 0);
}

/* The other address's listener: carriers from the service side. */
static void
other_ready(struct watch *w, uint32_t ev)
{
	struct multi	*m = w->arg;
	struct side	 s;
	int		 batch = 0;

	(void)ev;
	while (m->nocars < CARRIERS_MAX && batch++ < ACCEPT_BATCH) {
		sock_side_init(m->oa, &s);
		if (sock_accept(m->oa, m->os, &s) == -1) {
			(void)sock_accept_failed(m->oa, &s);
			break;
		}
		carrier_accepted(m, m->oa, &s, 1);
	}
	mux_arm(m);
}

/* The other listener is watched while it has room for carriers. */
void
mux_arm(struct multi *m)
{
	if (m->os == NULL || m->os->lfd == -1)
		return;
	if (loop_watch(m->loop, &m->ow, m->os->lfd, m->nocars < CARRIERS_MAX ?
	    EPOLLIN : 0) == -1 && m->status == 0) {
		logerr("%s: epoll_ctl", m->oa->label);
		m->status = 1;
		loop_stop(m->loop);
	}
}

/* ---------------------------------------------------------- for multi.c */

/* The carrier a new session's stream goes on: NULL, none is up. */
static struct carrier *
carrier_pick(struct multi *m)
{
	struct carrier	*best = NULL;
	size_t		 i;

	if (m->dout.a != NULL)
		return m->dout.c;	/* (under way: the stream waits) */
	for (i = 0; i < m->nocars; i++)
		if (carrier_takes(m->ocars[i]) && (best == NULL ||
		    carrier_streams(m->ocars[i]) < carrier_streams(best)))
			best = m->ocars[i];
	return best;
}

/* Sessions can be had: stream peers wait in the backlog until then. */
int
mux_ready(struct multi *m)
{
	return !m->oa->mux || carrier_pick(m) != NULL;
}

/* os, session ss's other side: a new stream of a carrier.  0, or -1. */
int
mux_stream(struct multi *m, struct side *os)
{
	struct carrier	*c = carrier_pick(m);
	struct mstream	*ms;

	if (c == NULL || (ms = carrier_open(c)) == NULL) {
		m->downdrops++;
		if (m->udp)	/* the datagram that made it: dropped */
			m->total[m->li].down++;
		return side_fail(os, "mux: %s", c == NULL ? "no carrier up" :
		    "no stream to be had");
	}
	carrier_side(c, ms, os);
	os->name = m->oa->label;
	return 0;
}

/* Carriers lost in this pass, freed. */
void
mux_reap(struct multi *m)
{
	while (m->ndead > 0)
		car_free(m, m->deadcars[--m->ndead]);
}

void
mux_start(struct multi *m, struct side *os)
{
	watch_init(&m->ow, other_ready, m);
	if (m->a->mux && !m->a->listen) {
		mdial_init(m, &m->din, m->a, 1);
		mdial_start(&m->din);
	}
	if (m->oa->mux && !m->oa->listen) {
		mdial_init(m, &m->dout, m->oa, 0);
		mdial_start(&m->dout);
	}
	if (m->oa->mux && m->oa->listen) {
		m->os = os;
		mux_arm(m);
	}
}

/* Every carrier's, in fn(c) (which may lose it: off its list). */
static void
each(struct multi *m, void (*fn)(struct carrier *))
{
	size_t	 i;

	for (i = m->ncars; i-- > 0;)
		fn(m->cars[i]);
	for (i = m->nocars; i-- > 0;)
		fn(m->ocars[i]);
	if (m->din.c != NULL)
		fn(m->din.c);
	if (m->dout.c != NULL)
		fn(m->dout.c);
}

/* A signal: no new streams from now on (Go Away); no new carriers. */
void
mux_stop(struct multi *m)
{
	m->stopping = 1;	/* a carrier lost now is not dialled again */
	if (m->os != NULL)
		loop_unwatch(m->loop, &m->ow);
	each(m, carrier_goaway);
}

/* After the sessions' ends: their FINs written, every carrier freed. */
void
mux_end(struct multi *m)
{
	each(m, carrier_goaway);
	while (m->ncars > 0)
		car_free(m, m->cars[--m->ncars]);
	while (m->nocars > 0)
		car_free(m, m->ocars[--m->nocars]);
	if (m->din.a != NULL)
		mdial_end(m, &m->din);
	if (m->dout.a != NULL)
		mdial_end(m, &m->dout);
	mux_reap(m);
	free(m->cars);
	free(m->ocars);
	free(m->deadcars);
}

/* The carriers' figures: up, streams opened, accepted, running. */
static void
figures(struct multi *m, uint64_t *up, uint64_t f[3])
{
	uint64_t	 g[3];
	size_t		 i;

	*up = 0;
	f[0] = m->sopened;
	f[1] = m->saccepted;
	f[2] = 0;
	for (i = 0; i < m->ncars + m->nocars + 2; i++) {
		struct carrier *c = i < m->ncars ? m->cars[i] :
		    i < m->ncars + m->nocars ? m->ocars[i - m->ncars] :
		    i == m->ncars + m->nocars ? m->din.c : m->dout.c;

		if (c == NULL)
			continue;
		carrier_figures(c, g);
		*up += carrier_up(c);
		f[0] += g[0];
		f[1] += g[1];
		f[2] += g[2];
	}
}

void
mux_report(struct multi *m, struct report *r)
{
	uint64_t	 f[3];

	r->mux = 1;
	figures(m, &r->carriers, f);
	r->carried = m->carried;
	r->muxdown = m->downdrops;
	r->sopened = f[0];
	r->saccepted = f[1];
	r->streams = f[2];
	/* a dialled carrier's redials are its address's reconnects */
	if (m->din.dials > 1) {
		r->redials[m->li] = 1;
		r->reconnects[m->li] = m->din.dials - 1;
	}
	if (m->dout.dials > 1) {
		r->redials[!m->li] = 1;
		r->reconnects[!m->li] = m->dout.dials - 1;
	}
}

void
mux_print(struct multi *m)
{
	uint64_t	 up, f[3], redials = 0;

	figures(m, &up, f);
	if (m->din.dials > 1)
		redials += m->din.dials - 1;
	if (m->dout.dials > 1)
		redials += m->dout.dials - 1;
	logx("multi: mux: %llu carriers up, %llu accepted or dialled in all "
	    "(%llu redials); streams: %llu opened, %llu accepted, %llu "
	    "running; %llu sessions not opened while no carrier was up",
	    (unsigned long long)up, (unsigned long long)m->carried,
	    (unsigned long long)redials, (unsigned long long)f[0],
	    (unsigned long long)f[1], (unsigned long long)f[2],
	    (unsigned long long)m->downdrops);
}
