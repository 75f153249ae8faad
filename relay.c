/*
 * relay.c: a relay session, run by the event loop (loop.c): one for a pair
 * of addresses, one per peer with multi, one per child with fork.  Two
 * directions, each a source side read into a queue of frames (a 2-byte
 * length, then the payload) and a sink side written from it.  Here are
 * the session's rules: when a side is read (backpressure, want_read),
 * when the session ends (relay_over: every condition in one place), its
 * bounds (-t, stall-timeout, frame-timeout), a connection that is lost
 * and dialled again (retry), a TLS handshake as a state of its side, and
 * what it asks of the loop.  The queue and its memory are ring.c's; the
 * reads and writes of each kind of side are dgram.c's, stream.c's and
 * tlsio.c's, picked once per direction (io_ops, ring.c).
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"
#include "relay.h"
#include "mux.h"


void __attribute__((format(printf, 3, 4)))
relay_fail(struct relay *rl, const struct side *s, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	rl->status = 1;
	if (rl->err[0] != '\0')
		return;			/* the first failure is the story */
	if (s != NULL)
		n = snprintf(rl->err, rl->errsize, "%s: ", s->name);
	else		/* both sides' */
		n = snprintf(rl->err, rl->errsize, "%s %s: ", rl->s[0].name,
		    rl->s[1].name);
	if (n < 0 || (size_t)n >= rl->errsize)
		return;
	va_start(ap, fmt);
	vsnprintf(rl->err + n, rl->errsize - n, fmt, ap);
	va_end(ap);
}

/*
 * The loop forgets s's descriptors: before they are closed, or replaced
 * by a connection attempt's (a number may come back as another socket).
 */
static void
side_unwatch(struct relay *rl, struct side *s)
{
	int	 i = s == &rl->s[0] ? 0 : 1;

	loop_unwatch(rl->loop, &rl->w[i][0]);
	loop_unwatch(rl->loop, &rl->w[i][1]);
}

/* s reconnects (retry) and has no connection now. */
static int
down(const struct side *s)
{
	return redial_state(s) != RD_UP;
}

/* s is connected, but its TLS handshake is not done: nothing moves. */
static int
hs_busy(const struct side *s)
{
	return s->io == IO_TLS && !down(s) && !tls_up(s);
}

static int
dst_ready(const struct dir *d)
{
	return (!d->dst->lockpeer || d->dst->locked) && !down(d->dst) &&
	    !hs_busy(d->dst) && !d->dst->pending;
}

/* The text of a side's end e (0: eof): TLS's own reason for EPROTO. */
const char *
side_why(const struct side *s, int e)
{
	if (s->io == IO_TLS && e == EPROTO)
		return tls_why(s);
	if (e == 0)
		return tls_unclean(s) ? "eof (closed without close_notify)" :
		    "eof";
	return strerror(e);
}

/*
 * Side s's connection ended (e: its errno, 0 for eof).  With retry it is
 * closed and dialled again, unless the other side has ended its input (the
 * tunnel is closing): what was queued for it is dropped (a frame written in
 * part is never finished on a new connection), what it sent whole is
 * still delivered.  Returns 1 then; 0: the end is the relay's.  A TLS
 * connection whose handshake failed (hs) is a failed attempt instead.
 */
int
lose(struct relay *rl, struct side *s, int e, int hs)
{
	struct dir	*in = rl->d[0].src == s ? &rl->d[0] : &rl->d[1];
	struct dir	*out = &rl->d[!in->id];
	char		 why[NAME_MAX_];

	if (redial_retries(s) == 0 || redial_state(s) != RD_UP ||
	    rl->ending || loop_quitting(rl->loop) || (out->on && out->eof))
		return 0;
	in->eof = 0;
	in->rerr = 0;
	in->lost = in->on;
	while (out->n > 0)
		pop(rl, out, &out->c->down);
	out->wblocked = 0;
	side_unwatch(rl, s);	/* before its descriptor is closed */
	strlcpy(why, hs ? tls_why(s) : side_why(s, e), sizeof(why));
	tls_end(s);
	if (hs)
		(void)redial_fail(s, why);	/* RD_GONE: redial_turn ends */
	else
		redial_lost(s, why);
	return 1;
}

/*
 * Write until the ring is empty or the sink is full.  A stream source may
 * hold more complete frames than the ring: they are cut in as room frees.
 */
static void
dir_write(struct relay *rl, struct dir *d)
{
	while (d->n > 0 && !d->wblocked && !rl->abort && dst_ready(d)) {
		d->write(rl, d);
		if (d->cut != NULL)
			d->cut(d);
	}
}

/* ---------------------------------------------------------- end of input */

static void
half_close(struct side *s)
{
	if (s->io == IO_MUX) {
		(void)ms_close(s->ms);	/* FIN */
		carrier_flush(s->ms);
		return;
	}
	if (s->io == IO_TLS && !tls_close_notify(s))
		return;		/* not said whole: no half-close under it */
	if (s->wsock)
		(void)shutdown(s->wfd, SHUT_WR);
	else if (s->wfd != s->rfd) {
		(void)close(s->wfd);
		s->wfd = -1;
	}
}

/*
 * The source of d ended: once its frames are delivered, pass the end on
 * to a sink that can carry it (a stream, a seqpacket); otherwise the whole
 * relay ends (see relay_over).
 */
static void
dir_finish(struct relay *rl, struct dir *d)
{
	int	 cut_short;

	if (!d->on || !d->eof || d->done)
		return;
	if (d->n > 0 || hs_busy(d->dst))
		return;			/* deliver first; a TLS end needs TLS */
	d->done = 1;
	if ((cut_short = d->cut != NULL && frame_buf_partial(&d->fb)))
		d->c->truncated++;
	if (d->rerr != 0) {		/* the cause, even inside a frame */
		relay_fail(rl, d->src, "read: %s", side_why(d->src, d->rerr));
		rl->ending = 1;
		return;
	}
	if (cut_short) {
		relay_fail(rl, d->src, "truncated frame at eof");
		rl->ending = 1;
		return;
	}
	if (rl->o->verbose)
		logx("eof on %s%s", d->src->name, tls_unclean(d->src) ?
		    " (closed without close_notify)" : "");
	if (down(d->dst) || d->dst->pending)
		rl->ending = 1;		/* no connection to pass the end to */
	else if (d->dst->io == IO_STREAM || d->dst->io == IO_TLS ||
	    d->dst->io == IO_MUX || d->dst->seqpacket)
		half_close(d->dst);
	else
		rl->ending = 1;
}

/* -------------------------------------------------------------- the loop */

/*
 * Whether to read d's source: backpressure is applied here.  One of many
 * sessions (compact) also reads no more over its share of the pool (its
 * own sink drains it), nor at the pool's cap (it waits for room).
 */
static int
want_read(struct dir *d, struct relay *rl)
{
	uint8_t	*at;

	if (!d->on || d->eof || rl->ending || d->lost || down(d->src) ||
	    hs_busy(d->src) || d->starved || d->src->pending ||
	    d->dst->pending)
		return 0;		/* (nothing is read for a side not open) */
	if (d->n == d->nq)
		return 0;		/* ring full: stop reading the source */
	if (rl->o->compact && dir_budget(rl, d) == 0)
		return 0;		/* its share: the sink drains it */
	if (rl->o->compact && d->mem == NULL && pool_full(rl->pool)) {
		d->starved = 1;		/* woken when room comes back */
		pool_wait(rl->pool, &d->pw);
		return 0;
	}
	if (d->src->preoff < d->src->prelen)
		return 0;		/* handed-over datagrams first */
	/* a stream buffer with no room waits for the ring to drain */
	return d->cut == NULL || d->mem == NULL || st_room(d, &at) > 0;
}

/* Milliseconds left before -t strikes; -1 for no limit. */
static int
idle_left(const struct relay *rl)
{
	long long	 ms;

	if (rl->o->idle_ms <= 0)
		return -1;
	ms = rl->o->idle_ms - (loop_now() - rl->last);
	return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

/*
 * A side that reconnects and is down: the attempt that is due, or the
 * answer to the one under way; retry=N used up ends the relay.
 */
static void
redial_turn(struct relay *rl, struct side *s, int writable)
{
	char	 why[NAME_MAX_ + 32];

	side_unwatch(rl, s);	/* an attempt may close and open sockets */
	if (redial_step(s, writable) != RD_GONE || rl->abort)
		return;
	redial_why(s, why, sizeof(why));
	relay_fail(rl, s, "%s", why);
	rl->abort = 1;
}

/* d's sink is down (retry): what its source sends is dropped, counted. */
static void
dir_drop(struct relay *rl, struct dir *d)
{
	do {
		while (d->n > 0)
			pop(rl, d, &d->c->down);
		if (d->cut != NULL)
			d->cut(d);
	} while (d->n > 0);
}

/*
 * d's source lost its connection: once its whole frames are in the ring,
 * an unfinished one is counted truncated and dropped, and the next
 * connection is read from a frame boundary.
 */
static void
dir_settle(struct dir *d)
{
	if (!d->lost)
		return;
	if (d->cut != NULL) {
		d->cut(d);
		if (d->n == d->nq || (d->mem == NULL && frame_buf_ready(&d->fb)))
			return;		/* more whole frames may follow */
		if (frame_buf_drop(&d->fb))
			d->c->truncated++;
	}
	d->lost = 0;
}

/* Read d's source; its end may be a lost connection (retry). */
static void
dir_read(struct relay *rl, struct dir *d)
{
	d->read(rl, d);
	if (d->eof && lose(rl, d->src, d->rerr, 0))
		d->eof = 0;
}

/* "ADDRESS" or "ADDRESS: PEER", for a line about side s. */
static const char *
side_label(const struct side *s, char *buf, size_t size)
{
	if (s->peer[0] == '\0')
		return s->name;
	snprintf(buf, size, "%s: %s", s->name, s->peer);
	return buf;
}

/* The session, for a line about it: the side with a peer, or both. */
static const char *
session_label(const struct relay *rl, char *buf, size_t size)
{
	int	 i;

	for (i = 0; i < 2; i++)
		if (rl->s[i].peer[0] != '\0')
			return side_label(&rl->s[i], buf, size);
	snprintf(buf, size, "%s %s", rl->s[0].name, rl->s[1].name);
	return buf;
}

/*
 * A session's bounds, on a stalled peer: d's sink has taken nothing for
 * stall-timeout while datagrams wait (a peer that does not read), or d's
 * source has left a frame unfinished for frame-timeout while d would read
 * (a peer that stops inside a frame).  Returns 1 when one is past: the
 * session ends, counted (and said with -v).
 */
static int
dir_bounds(struct relay *rl, struct dir *d, long long now)
{
	const struct relay_opts	*o = rl->o;
	char			 buf[NAME_MAX_ * 2];
	size_t			 whole;

	/* the clock runs while datagrams wait for a sink that is up */
	if (d->n == 0 || d->progress || d->since == 0 || !dst_ready(d))
		d->since = d->n > 0 ? now : 0;
	d->progress = 0;
	if (o->stall_ms > 0 && d->since > 0 && now - d->since >= o->stall_ms) {
		d->c->stalled++;
		if (o->verbose)
			logx("%s: took nothing for %lld ms: ending the session "
			    "(stall-timeout; %u datagrams held)",
			    side_label(d->dst, buf, sizeof(buf)),
			    now - d->since, d->n);
		return 1;
	}
	if (o->frame_ms > 0 && d->fstart > 0 && now - d->fstart >= o->frame_ms) {
		if (!frame_buf_left(&d->fb, &whole)) {
			d->fstart = 0;		/* whole frames, cut since */
			return 0;
		}
		if (!want_read(d, rl)) {	/* held back by us, not slow */
			d->fstart = now;
			return 0;
		}
		d->c->slowframe++;
		if (o->verbose)
			logx("%s: a frame unfinished for %lld ms: ending the "
			    "session (frame-timeout)",
			    side_label(d->src, buf, sizeof(buf)), now - d->fstart);
		return 1;
	}
	return 0;
}

/*
 * A side left pending (relay_opener) is opened once the other side is
 * up: a TLS server's handshake done, its peer authenticated.  Until then
 * an unauthenticated peer causes nothing beyond its handshake.
 */
static void
open_pending(struct relay *rl)
{
	char	 err[NAME_MAX_ * 2];
	int	 i;

	for (i = 0; i < 2 && !rl->abort; i++) {
		if (!rl->s[i].pending || hs_busy(&rl->s[!i]) ||
		    down(&rl->s[!i]) || rl->ending)
			continue;
		err[0] = '\0';
		if (rl->opener(rl->oarg, &rl->s[i], err, sizeof(err)) == -1) {
			relay_fail(rl, &rl->s[i], "%s", err);
			rl->abort = 1;
			return;
		}
		rl->s[i].pending = 0;
		dir_sides(rl, &rl->d[0]);
		dir_sides(rl, &rl->d[1]);
	}
}

/*
 * Write what is queued and notice ended sources: the work of a turn
 * before the wait.
 */
static void
relay_turn(struct relay *rl)
{
	struct dir	*d;
	int		 i, k;

	for (i = 0; i < 2; i++) {
		if (down(&rl->s[i])) {
			redial_turn(rl, &rl->s[i], rl->dialed[i]);
			rl->dialed[i] = 0;
		}
		/* a new connection's handshake starts; a late one ends */
		if (hs_busy(&rl->s[i]) && !rl->abort &&
		    (rl->s[i].tls == NULL || loop_now() >= tls_due(&rl->s[i])))
			hs_turn(rl, &rl->s[i]);
	}
	open_pending(rl);	/* a handshake may just have been done */
	for (i = 0; i < 2; i++) {
		d = &rl->d[i];
		if (!d->on)
			continue;
		if (d->src->preoff < d->src->prelen)
			dg_preload(rl, d);
		/* retry: what comes while it is down is dropped; a multi
		 * session's first connection is waited for */
		if (down(d->dst) && redial_retries(d->dst) != 0)
			dir_drop(rl, d);
		/* a stream of a carrier: room may have come with an event */
		if (d->dst->io == IO_MUX && d->wblocked &&
		    ms_room(d->dst->ms) > 0)
			d->wblocked = 0;
		dir_write(rl, d);
		/* ... and bytes, or its end: read them, as for TLS */
		for (k = 0; k < 4 && d->src->io == IO_MUX &&
		    ms_readable(d->src->ms) && want_read(d, rl); k++) {
			dir_read(rl, d);
			dir_write(rl, d);
		}
		if (k == 4)
			loop_defer(rl->loop, &rl->kick);	/* more */
		/* what TLS read ahead is no event: read it as room frees */
		if (d->src->io == IO_TLS && tls_pending(d->src) &&
		    want_read(d, rl)) {
			dir_read(rl, d);
			dir_write(rl, d);
		}
		dir_settle(d);
		dir_finish(rl, d);
		if (!rl->o->compact)
			dir_release(rl, d);
	}
	if (rl->o->stall_ms > 0 || rl->o->frame_ms > 0)
		for (i = 0; i < 2 && !rl->bound; i++)
			if (rl->d[i].on && dir_bounds(rl, &rl->d[i], loop_now()))
				rl->bound = 1;
}

/*
 * The end of the relay, every condition in one place:
 *  - SIGINT or SIGTERM: now; the kernel is handed what it takes at once,
 *    the rest is counted unsent (relay_end);
 *  - a failure that stops everything (rl->abort: a sink's fatal error, a
 *    peer that cannot be connected to or retry=N used up, epoll itself);
 *  - both directions done: each source ended and all it sent was
 *    delivered, its end passed on where the sink can carry one;
 *  - rl->ending (a source ended whose sink cannot carry an end, or a
 *    source failed) once what sinks can still take is delivered: a sink
 *    with no peer yet (an unlocked udp-listen) can take nothing;
 *  - -t: no datagram delivered for that long (bytes that trickle in
 *    without completing a frame are no activity);
 *  - rl->bound: a sink took nothing for stall-timeout, or a source left
 *    a frame unfinished for frame-timeout (dir_bounds).
 */
static int
relay_over(struct relay *rl)
{
	const struct dir	*d;
	char			 label[NAME_MAX_ * 2 + 4];
	int			 i, pending = 0, done = 1;

	for (i = 0; i < 2; i++) {
		d = &rl->d[i];
		if (!d->on)
			continue;
		pending += d->n > 0 && dst_ready(d);
		done &= d->done;
	}
	if (loop_quitting(rl->loop) || rl->abort || rl->bound || done ||
	    (rl->ending && !pending))
		return 1;
	if (rl->moved && rl->o->idle_ms > 0)
		rl->last = loop_now();
	rl->moved = 0;
	if (idle_left(rl) == 0) {
		if (rl->o->verbose)
			logx("%s: idle for %lld ms: ending", session_label(rl,
			    label, sizeof(label)), rl->o->idle_ms);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ the loop */

/*
 * What each descriptor of side i is wanted for now: reading for the
 * direction it feeds (backpressure is want_read's), writing only after
 * the sink said EAGAIN, and a connection attempt's answer.
 */
static void
side_want(struct relay *rl, int i, uint32_t *rev, uint32_t *wev)
{
	struct side	*s = &rl->s[i];
	struct dir	*in = &rl->d[i], *out = &rl->d[!i];

	*rev = *wev = 0;
	if (s->io == IO_MUX)
		return;		/* no descriptor: its carrier kicks it */
	if (redial_state(s) == RD_DIAL) {
		*rev = EPOLLOUT;
		return;
	}
	if (hs_busy(s)) {
		*rev = tls_want(s, 0);
		return;
	}
	if (want_read(in, rl))
		*rev = s->io == IO_TLS ? tls_want(s, 1) : EPOLLIN;
	/* a stream socket not read (-u, -U): its peer's end is still seen */
	if (!in->on && !rl->ending && s->wsock && !s->shared &&
	    (s->io == IO_STREAM || s->io == IO_TLS))
		*rev |= EPOLLRDHUP;
	if (out->on && out->n > 0 && out->wblocked && dst_ready(out))
		*wev = s->io == IO_TLS ? tls_want(s, 0) : EPOLLOUT;
}

/* The deadline of the session: -t, a retry's next step, a handshake's. */
static long long
relay_due(const struct relay *rl)
{
	long long	 due = 0, ms;
	int		 i;

	if (rl->o->idle_ms > 0)
		due = rl->last + rl->o->idle_ms;
	for (i = 0; i < 2; i++) {
		if ((ms = redial_ms(&rl->s[i])) >= 0 &&
		    (due == 0 || loop_now() + ms < due))
			due = loop_now() + ms;
		if (hs_busy(&rl->s[i]) && (ms = tls_due(&rl->s[i])) > 0 &&
		    (due == 0 || ms < due))
			due = ms;
		if (rl->o->stall_ms > 0 && rl->d[i].since > 0 &&
		    (ms = rl->d[i].since + rl->o->stall_ms) > 0 &&
		    (due == 0 || ms < due))
			due = ms;
		if (rl->o->frame_ms > 0 && rl->d[i].fstart > 0 &&
		    (ms = rl->d[i].fstart + rl->o->frame_ms) > 0 &&
		    (due == 0 || ms < due))
			due = ms;
	}
	return due;
}

/*
 * Tell the loop what the session waits for.  A side whose read and write
 * descriptors are one (a socket) is one watch; a shared descriptor (a
 * multi listener's) is its owner's to watch.
 */
static int
relay_arm(struct relay *rl)
{
	struct side	*s;
	uint32_t	 rev, wev;
	int		 i, r = 0;

	for (i = 0; i < 2; i++) {
		s = &rl->s[i];
		side_want(rl, i, &rev, &wev);
		if (s->wfd == s->rfd && !s->shared)
			r |= loop_watch(rl->loop, &rl->w[i][0], s->rfd,
			    rev | wev);
		else {
			r |= loop_watch(rl->loop, &rl->w[i][0], s->rfd, rev);
			r |= loop_watch(rl->loop, &rl->w[i][1],
			    s->shared ? -1 : s->wfd, wev);
			if (s->shared && wev != 0)	/* its owner watches */
				s->blocked(s->blocked_arg, rl);
		}
	}
	r |= loop_timer(rl->loop, &rl->tm, relay_due(rl));
	return r;
}

/* The loop lets go of the session: its descriptors, deadline, turn. */
static void
relay_detach(struct relay *rl)
{
	side_unwatch(rl, &rl->s[0]);
	side_unwatch(rl, &rl->s[1]);
	loop_untimer(rl->loop, &rl->tm);
	loop_undefer(rl->loop, &rl->kick);
}

/*
 * A turn of the session after an event; once it is over, the owner is
 * told (it ends the session after this pass of the loop: other events of
 * the pass may still name it).
 */
static void
relay_pass(struct relay *rl)
{
	int	 over;

	if (rl->finished)
		return;
	relay_turn(rl);
	over = relay_over(rl);
	if (rl->o->compact) {		/* between turns: only what it holds */
		dir_compact(rl, &rl->d[0]);
		dir_compact(rl, &rl->d[1]);
	}
	if (!over && relay_arm(rl) == 0)
		return;
	if (!over) {	/* a watch or a timer could not be had */
		relay_fail(rl, NULL, "epoll_ctl or timer: %s", strerror(errno));
		rl->abort = 1;
	}
	rl->finished = 1;
	relay_detach(rl);
	rl->over(rl, rl->arg);
}

/* A descriptor of side w->tag is ready. */
static void
side_ready(struct watch *w, uint32_t ev)
{
	struct relay	*rl = w->arg;
	int		 i = w->tag;
	struct dir	*in = &rl->d[i], *out = &rl->d[!i];

	if (rl->finished)
		return;
	if (redial_state(&rl->s[i]) == RD_DIAL)
		rl->dialed[i] = 1;
	else if (hs_busy(&rl->s[i]))
		hs_turn(rl, &rl->s[i]);
	else if (!in->on && (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
	    !rl->ending) {
		/* the peer of a side not read ended: as its eof would, this
		 * ends the relay once what it may still take is written */
		if (rl->o->verbose)
			logx("eof on %s", rl->s[i].name);
		rl->ending = 1;
	} else {
		/* as poll(2) would: a hang-up or error wakes what waits; a
		 * TLS read may wait for writing and a write for reading */
		if ((w->want & EPOLLOUT) || rl->s[i].io == IO_TLS)
			out->wblocked = 0;
		if (((w->want & EPOLLIN) || rl->s[i].io == IO_TLS) &&
		    want_read(in, rl))
			dir_read(rl, in);
	}
	relay_pass(rl);
}

void
relay_kick(struct relay *rl)
{
	if (!rl->finished)
		loop_defer(rl->loop, &rl->kick);
}

static void
relay_kicked(struct watch *w, uint32_t ev)
{
	(void)ev;
	relay_pass(w->arg);
}

static void
relay_timed(struct timer *t)
{
	relay_pass(t->arg);
}

/*
 * The relay ended with d's datagrams still inside dgrelay: queued ones and
 * whole frames not yet cut are unsent, an unfinished frame is truncated.
 */
static void
dir_leftover(struct dir *d)
{
	size_t	 whole = 0;

	d->c->unsent += queued(d);
	if (d->cut == NULL || d->done)
		return;
	if (frame_buf_left(&d->fb, &whole))
		d->c->truncated++;
	d->c->unsent += whole;
}

enum push_res
relay_push(struct relay *rl, int i, const uint8_t *dg, size_t len, int more)
{
	struct dir	*d = &rl->d[i];
	struct frm	*f;

	if (rl->finished || !d->on || rl->ending || len > rl->o->size)
		return PUSH_ENDING;
	if (d->n == d->nq)
		return PUSH_QUEUE;
	if (dir_budget(rl, d) < FRAME_HDR + len)
		return PUSH_SHARE;
	if (rl->o->compact && d->mem == NULL && pool_full(rl->pool))
		return PUSH_POOL;
	if (dir_hold(rl, d) == -1)
		return PUSH_POOL;
	f = qat(d, d->n++);
	d->nhot++;
	memcpy(f->p + FRAME_HDR, dg, len);
	frm_one(f, len);
	d->passbytes += FRAME_HDR + len;
	/* on its way now (or with the owner's next ones: relay_flush):
	 * what the sink cannot take at once is held (or its ring kept, for
	 * a pair) */
	if (!more)
		relay_pass(rl);
	return PUSH_OK;
}

void
relay_flush(struct relay *rl)
{
	relay_pass(rl);
}

void
relay_group(struct relay *rl, struct pool_group *g)
{
	rl->group = g;
}

void
relay_opener(struct relay *rl, int (*fn)(void *, struct side *, char *,
    size_t), void *arg)
{
	rl->opener = fn;
	rl->oarg = arg;
}

void
relay_unblock(struct relay *rl)
{
	int	 i;

	for (i = 0; i < 2; i++)
		if (rl->d[i].dst->shared)
			rl->d[i].wblocked = 0;
	loop_defer(rl->loop, &rl->kick);
}

/*
 * A session on its loop, or NULL with err set (an allocation).  It starts
 * at once; over(rl, arg) is called once it is over, from inside the loop.
 */
struct relay *
relay_open(struct loop *l, struct pool *pool, const struct relay_opts *o,
    struct side s[2], struct counters c[2], char *err, size_t errsize,
    void (*over)(struct relay *, void *), void *arg)
{
	struct relay	*rl;
	int		 i, j;

	err[0] = '\0';
	if (scratch_init() == -1 || (rl = calloc(1, sizeof(*rl))) == NULL) {
		snprintf(err, errsize, "%s %s: session: %s", s[0].name,
		    s[1].name, strerror(errno));
		return NULL;
	}
	rl->o = o;
	rl->err = err;
	rl->errsize = errsize;
	rl->s = s;
	rl->loop = l;
	rl->pool = pool;
	rl->over = over;
	rl->arg = arg;
	rl->last = loop_now();
	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++) {
			watch_init(&rl->w[i][j], side_ready, rl);
			rl->w[i][j].tag = i;
		}
	watch_init(&rl->kick, relay_kicked, rl);
	timer_init(&rl->tm, relay_timed, rl);
	dir_init(rl, &rl->d[0], 0, &s[0], &s[1], &c[0]);
	dir_init(rl, &rl->d[1], 1, &s[1], &s[0], &c[1]);
	loop_defer(l, &rl->kick);	/* the first turn */
	return rl;
}

/*
 * End the session: when a signal or -t ended it, hand the kernel what it
 * takes right now; count what is left; free it.  Returns its status (1:
 * a runtime failure, described in its err).
 */
int
relay_end(struct relay *rl)
{
	int	 i, status;

	relay_detach(rl);
	for (i = 0; i < 2 && !rl->abort; i++) {
		rl->d[i].wblocked = 0;
		if (rl->d[i].on && dst_ready(&rl->d[i]))
			dir_write(rl, &rl->d[i]);
	}
	for (i = 0; i < 2; i++)
		if (rl->d[i].on)
			dir_leftover(&rl->d[i]);
	for (i = 0; i < 2; i++)
		dir_free(rl, &rl->d[i]);
	/* a TLS connection is told of the end, then let go of */
	for (i = 0; i < 2; i++) {
		(void)tls_close_notify(&rl->s[i]);
		tls_end(&rl->s[i]);
	}
	status = rl->status;
	free(rl);
	return status;
}

void
relay_abort(struct relay *rl, const char *why)
{
	relay_fail(rl, NULL, "%s", why);
	rl->abort = 1;
}
