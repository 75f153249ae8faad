/*
 * carrier.c: a mux carrier on the loop: its socket read into the yamux
 * engine (mux.c), the engine's frames written out; and a stream as a
 * session's side (IO_MUX): frames read out of the stream's received
 * bytes, written into the carrier as one Data frame a gather.
 *
 * A carrier on tls: or tls-listen: makes its handshake on the loop first
 * (tls.c, as a session's: max-handshakes, handshake-timeout); nothing
 * it is sent is read before its peer is authenticated.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"
#include "relay.h"
#include "mux.h"

#define CARRIER_READS	8	/* reads of 64 KiB a turn, at most */
#define FLUSH_NOW	(128u << 10)	/* output written at once from here */

struct carrier {
	struct mux	 m;		/* first: a stream's m is its carrier */
	struct loop	*l;
	struct side	 s;		/* its connection (and TLS: tls:) */
	int		 fd;
	int		 hs;		/* its TLS handshake is under way */
	struct watch	 w;
	struct watch	 flushw;	/* a write, once this pass is over */
	struct watch	 again;		/* a turn of its own (TLS holds bytes,
					 * or a handshake slot came) */
	struct timer	 pt;		/* the next Ping, or its deadline (or
					 * the handshake's) */
	long long	 ping_ms;
	int		 lost;
	int		 full;		/* output was at its bound (a window
					 * update may wait on it too) */
	int		 verbose;
	void		*owner;
	void		(*stream_in)(void *, struct carrier *,
			    struct mstream *);
	void		(*gone)(void *, struct carrier *);
	void		(*up)(void *, struct carrier *);
};

/* ------------------------------------------------------ IO_MUX sides */

static ssize_t
mx_rd(struct side *s, void *buf, size_t n)
{
	return ms_read(s->ms, buf, n);
}

void
mx_read(struct relay *rl, struct dir *d)
{
	(void)st_fill(rl, d, mx_rd);
	/* what was read may have granted window back: the update goes
	 * now, not with the next bytes that come (none would: a sender
	 * whose window is used up waits for it) */
	carrier_flush(d->src->ms);
}

void
mx_write(struct relay *rl, struct dir *d)
{
	size_t		 total;
	unsigned	 niov = st_gather(d, &total);
	ssize_t		 r;

	if ((r = ms_writev(d->dst->ms, d->iov, (int)niov)) == -1) {
		st_write_error(rl, d, errno);
		return;
	}
	if ((size_t)r < total)
		d->wblocked = 1;	/* the window, or the carrier's bound */
	st_written(rl, d, (size_t)r);
	carrier_flush(d->dst->ms);
}

/* ---------------------------------------------------------- carriers */

static void	carrier_ready(struct watch *, uint32_t);
static void	arm(struct carrier *);

/* Kick every stream's relay (room came back, or the carrier is lost). */
static void
kick_all(struct carrier *c)
{
	struct mstream	*s;
	size_t		 i;

	for (i = 0; i < MUX_BUCKETS; i++)
		for (s = c->m.bucket[i]; s != NULL; s = s->hnext)
			if (s->owner != NULL)
				relay_kick(s->owner);
}

/*
 * A carrier that never came up (a TLS handshake that failed: garbage, a
 * scan, a wrong key) is said once a second, the others counted, so that
 * a flood of them cannot flood the log; a carrier that was up, always.
 */
static void
say_lost(struct carrier *c, const char *why)
{
	static time_t	 last;
	static uint64_t	 more;

	if (!c->hs) {
		logx("carrier %s: lost: %s", c->s.peer, why);
		return;
	}
	if (!log_due(&last)) {
		more++;
		return;
	}
	if (more > 0)
		logx("carrier %s: lost: %s (and %llu more handshakes failed "
		    "since)", c->s.peer, why, (unsigned long long)more);
	else
		logx("carrier %s: lost: %s", c->s.peer, why);
	more = 0;
}

static void
carrier_lose(struct carrier *c, const char *why)
{
	struct mstream	*s, *next;
	size_t		 i;

	if (c->lost)
		return;
	c->lost = 1;
	say_lost(c, why);
	loop_unwatch(c->l, &c->w);
	loop_undefer(c->l, &c->flushw);
	loop_undefer(c->l, &c->again);
	loop_untimer(c->l, &c->pt);
	/* every stream is over: its session reads a reset */
	for (i = 0; i < MUX_BUCKETS; i++) {
		for (s = c->m.bucket[i]; s != NULL; s = next) {
			next = s->hnext;
			s->gone = 1;
			s->hnext = NULL;
			if (s->owner != NULL)
				relay_kick(s->owner);
		}
		c->m.bucket[i] = NULL;
	}
	c->m.nstreams = 0;
	c->m.ngrown = 0;
	if (c->gone != NULL)
		c->gone(c->owner, c);
}

static ssize_t
c_read(struct carrier *c, void *buf, size_t n)
{
	return c->s.tls != NULL ? tls_read(&c->s, buf, n) :
	    read(c->fd, buf, n);
}

static ssize_t
c_write(struct carrier *c, const void *buf, size_t n)
{
	return c->s.tls != NULL ? tls_write(&c->s, buf, n) :
	    write(c->fd, buf, n);
}

/* Why a read or write of the carrier failed (errno set by it). */
static const char *
io_why(struct carrier *c)
{
	return c->s.tls != NULL && errno == EPROTO ? tls_why(&c->s) :
	    strerror(errno);
}

/* What the carrier waits for on its socket: input always, room when it
 * has output (TLS: what its layer waits for, either way). */
static void
arm(struct carrier *c)
{
	size_t		 n;
	uint32_t	 want;

	(void)mux_output(&c->m, &n);
	if (c->hs)
		want = tls_want(&c->s, 1);
	else if (c->s.tls != NULL)
		want = tls_want(&c->s, 1) | (n > 0 ? tls_want(&c->s, 0) : 0);
	else
		want = EPOLLIN | (n > 0 ? EPOLLOUT : 0);
	if (loop_watch(c->l, &c->w, c->fd, want) == -1)
		carrier_lose(c, "epoll_ctl");
}

/* Write what the engine has; watch for room when the kernel is full. */
static void
flush(struct carrier *c)
{
	const uint8_t	*o;
	size_t		 n;
	ssize_t		 r;
	int		 was_full = c->full || c->m.outwait;

	if (c->hs) {		/* written once the handshake is done */
		arm(c);
		return;
	}
	while ((o = mux_output(&c->m, &n)) != NULL) {
		if ((r = c_write(c, o, n)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			carrier_lose(c, io_why(c));
			return;
		}
		mux_sent(&c->m, (size_t)r);
	}
	(void)mux_output(&c->m, &n);
	c->full = n >= MUX_OUT_MAX;
	arm(c);
	if (c->lost)
		return;
	if (was_full && !c->full) {
		c->m.outwait = 0;
		kick_all(c);	/* streams waiting for room */
	}
	if (c->m.failed)
		carrier_lose(c, c->m.why);
}

static void
flush_deferred(struct watch *w, uint32_t ev)
{
	(void)ev;
	flush(w->arg);
}

/*
 * The frames queued go after this pass; a carrier already holding
 * FLUSH_NOW bytes writes what the kernel takes now too, so that a fast
 * flow's turns do not fill its output (and wait) before the pass ends.
 * A failure is left to the flush after the pass, which says it.
 */
void
carrier_flush(struct mstream *s)
{
	struct carrier	*c = (struct carrier *)(void *)s->m;
	const uint8_t	*o;
	size_t		 n;
	ssize_t		 r;

	if (s->gone || c->lost)
		return;
	loop_defer(c->l, &c->flushw);
	if (c->hs)
		return;
	while ((o = mux_output(&c->m, &n)) != NULL && n >= FLUSH_NOW &&
	    (r = c_write(c, o, n)) > 0)
		mux_sent(&c->m, (size_t)r);
}

static void
on_event(void *arg, struct mstream *s)
{
	(void)arg;
	if (s->owner != NULL)
		relay_kick(s->owner);
}

static void
on_accept(void *arg, struct mstream *s)
{
	struct carrier	*c = arg;

	if (c->stream_in != NULL)
		c->stream_in(c->owner, c, s);
	else
		ms_release(s, 1);	/* we open the streams here: RST */
}

static void	ping_due(struct timer *);

/* A step of the TLS handshake: 1 up, 0 under way, -1 lost. */
static int
hs_step(struct carrier *c)
{
	char	 buf[NAME_MAX_];
	int	 r;

	if ((r = tls_handshake(&c->s)) == 0) {
		arm(c);
		(void)loop_timer(c->l, &c->pt, tls_due(&c->s));
		return 0;
	}
	if (r == -1) {
		procfig.tls_failed++;
		carrier_lose(c, tls_why(&c->s));
		return -1;
	}
	procfig.tls_done++;
	c->hs = 0;
	if (c->verbose) {
		tls_describe(&c->s, buf, sizeof(buf));
		logx("carrier %s: %s", c->s.peer, buf);
	}
	loop_untimer(c->l, &c->pt);	/* the handshake's deadline */
	timer_init(&c->pt, ping_due, c);
	if (c->ping_ms > 0)
		(void)loop_timer(c->l, &c->pt, loop_now() + c->ping_ms);
	if (c->up != NULL)
		c->up(c->owner, c);
	return 1;
}

static void
carrier_ready(struct watch *w, uint32_t ev)
{
	static uint8_t	 buf[64 << 10];
	struct carrier	*c = w->arg;
	ssize_t		 r;
	int		 k;

	if (c->hs) {
		if (hs_step(c) != 1)
			return;
		ev |= EPOLLIN;	/* TLS may hold what came with it */
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP) || c->s.tls != NULL)
		for (k = 0; k < CARRIER_READS && !c->lost; k++) {
			if ((r = c_read(c, buf, sizeof(buf))) == -1) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					carrier_lose(c, io_why(c));
				break;
			}
			if (r == 0) {
				carrier_lose(c, c->s.tls != NULL &&
				    tls_unclean(&c->s) ? tls_why(&c->s) :
				    "eof");
				break;
			}
			if (mux_input(&c->m, buf, (size_t)r) == -1) {
				flush(c);	/* its Go Away */
				carrier_lose(c, c->m.why);
				break;
			}
			if (k == CARRIER_READS - 1 && tls_pending(&c->s))
				loop_defer(c->l, &c->again);	/* the rest
						 * next turn: no event comes */
		}
	if (!c->lost)
		flush(c);
}

static void
again_due(struct watch *w, uint32_t ev)
{
	(void)ev;
	carrier_ready(w, EPOLLIN);
}

/* A handshake slot came free: a step at once. */
static void
hs_wake(void *arg)
{
	struct carrier	*c = arg;

	loop_defer(c->l, &c->again);
}

/* The handshake's deadline (its step says it is past), or a Ping due. */
static void
hs_due(struct timer *t)
{
	struct carrier	*c = t->arg;

	if (c->hs)
		(void)hs_step(c);
}

/* A Ping every ping_ms; one unanswered by the next is a lost carrier. */
static void
ping_due(struct timer *t)
{
	struct carrier	*c = t->arg;
	char		 why[64];

	if (c->m.ping_out) {
		snprintf(why, sizeof(why), "no answer to a ping in %lld.%lld s",
		    c->ping_ms / 1000, c->ping_ms % 1000 / 100);
		carrier_lose(c, why);
		return;
	}
	if (mux_ping(&c->m) == -1) {
		carrier_lose(c, "output full");
		return;
	}
	loop_defer(c->l, &c->flushw);
	(void)loop_timer(c->l, &c->pt, loop_now() + c->ping_ms);
}

/*
 * A carrier on s's connection (its descriptor is the carrier's from now
 * on, closed by carrier_free; on TLS, the handshake is made first).
 */
struct carrier *
carrier_new(struct loop *l, const struct side *s, int dialer,
    size_t max_streams, long long ping_ms, int verbose, void *owner,
    void (*stream_in)(void *, struct carrier *, struct mstream *),
    void (*gone)(void *, struct carrier *))
{
	struct carrier	*c;
	uint64_t	 salt;
	char		 err[NAME_MAX_];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	arc4random_buf(&salt, sizeof(salt));
	if (mux_init(&c->m, dialer, max_streams, salt) == -1) {
		free(c);
		return NULL;
	}
	c->m.on_accept = on_accept;
	c->m.on_event = on_event;
	c->m.arg = c;
	c->l = l;
	c->s = *s;
	c->s.tls = NULL;
	c->fd = s->rfd;
	c->verbose = verbose;
	c->owner = owner;
	c->stream_in = stream_in;
	c->gone = gone;
	watch_init(&c->w, carrier_ready, c);
	watch_init(&c->flushw, flush_deferred, c);
	watch_init(&c->again, again_due, c);
	c->ping_ms = ping_ms;
	if (s->io == IO_TLS) {
		if (tls_start(&c->s, hs_wake, c, err, sizeof(err)) == -1) {
			logx("carrier %s: %s", c->s.peer, err);
			mux_free(&c->m);
			free(c);
			return NULL;
		}
		c->hs = 1;
		timer_init(&c->pt, hs_due, c);
		(void)loop_timer(l, &c->pt, tls_due(&c->s));
	} else {
		timer_init(&c->pt, ping_due, c);
		if (ping_ms > 0)
			(void)loop_timer(l, &c->pt, loop_now() + ping_ms);
	}
	if (loop_watch(l, &c->w, c->fd, c->hs ? tls_want(&c->s, 1) :
	    EPOLLIN) == -1) {
		loop_untimer(l, &c->pt);
		tls_end(&c->s);
		mux_free(&c->m);
		free(c);
		return NULL;
	}
	if (c->hs)
		loop_defer(l, &c->again);	/* a client speaks first */
	return c;
}

/* The carrier's side as a session's peer: stream s of it. */
void
carrier_side(struct carrier *c, struct mstream *s, struct side *ps)
{
	ps->io = IO_MUX;
	ps->ms = s;
	ps->rfd = ps->wfd = -1;
	if (snprintf(ps->peer, sizeof(ps->peer), "%.200s stream %u", c->s.peer,
	    s->id) < 0)
		ps->peer[0] = '\0';
	memcpy(&ps->peeraddr, &c->s.peeraddr, sizeof(ps->peeraddr));
	ps->peerlen = c->s.peerlen;
}

struct mstream *
carrier_open(struct carrier *c)
{
	struct mstream	*s;

	if (c->lost || (s = mux_open(&c->m)) == NULL)
		return NULL;
	loop_defer(c->l, &c->flushw);
	return s;
}

void
carrier_goaway(struct carrier *c)
{
	if (c->lost || c->hs)
		return;
	(void)mux_goaway(&c->m);
	flush(c);
}

void
carrier_free(struct carrier *c)
{
	loop_untimer(c->l, &c->pt);
	loop_unwatch(c->l, &c->w);
	loop_undefer(c->l, &c->flushw);
	loop_undefer(c->l, &c->again);
	if (!c->lost)
		(void)tls_close_notify(&c->s);	/* the end, said */
	tls_end(&c->s);
	(void)close(c->fd);
	mux_free(&c->m);
	free(c);
}

const char *
carrier_peer(const struct carrier *c)
{
	return c->s.peer;
}

size_t
carrier_streams(const struct carrier *c)
{
	return c->m.nstreams;
}

/* up(owner, c) when c's TLS handshake is done (a carrier without TLS is
 * up from the start). */
void
carrier_on_up(struct carrier *c, void (*up)(void *, struct carrier *))
{
	c->up = up;
}

/* Its streams: opened here, accepted from the peer, running now. */
void
carrier_figures(const struct carrier *c, uint64_t f[3])
{
	f[0] = c->m.opened;
	f[1] = c->m.accepted;
	f[2] = c->m.nstreams;
}

/* Takes new streams: up, and no Go Away either way. */
int
carrier_takes(const struct carrier *c)
{
	return carrier_up(c) && !c->m.goaway_recv && !c->m.goaway_sent &&
	    !c->m.failed;
}

/* Up: streams may be opened on it and are carried (TLS: authenticated). */
int
carrier_up(const struct carrier *c)
{
	return !c->lost && !c->hs;
}
