/*
 * carrier.c: a mux carrier on the loop: its socket read into the yamux
 * engine (mux.c), the engine's frames written out; and a stream as a
 * session's side (IO_MUX): frames read out of the stream's received
 * bytes, written into the carrier as one Data frame a gather.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"
#include "relay.h"
#include "mux.h"

#define CARRIER_READS	8	/* reads of 64 KiB a turn, at most */

struct carrier {
	struct mux	 m;		/* first: a stream's m is its carrier */
	struct loop	*l;
	int		 fd;
	struct watch	 w;
	struct watch	 flushw;	/* a write, once this pass is over */
	struct timer	 pt;		/* the next Ping, or its deadline */
	long long	 ping_ms;
	int		 lost;
	int		 full;		/* output was at its bound */
	char		 peer[NAME_MAX_];
	struct sockaddr_storage peeraddr;
	socklen_t	 peerlen;
	void		*owner;
	void		(*stream_in)(void *, struct carrier *,
			    struct mstream *);
	void		(*gone)(void *, struct carrier *);
	struct carrier	*next;
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

static void
carrier_lose(struct carrier *c, const char *why)
{
	struct mstream	*s, *next;
	size_t		 i;

	if (c->lost)
		return;
	c->lost = 1;
	logx("carrier %s: lost: %s", c->peer, why);
	loop_unwatch(c->l, &c->w);
	loop_undefer(c->l, &c->flushw);
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
	if (c->gone != NULL)
		c->gone(c->owner, c);
}

/* Write what the engine has; watch for room when the kernel is full. */
static void
flush(struct carrier *c)
{
	const uint8_t	*o;
	size_t		 n;
	ssize_t		 r;
	int		 was_full = c->full;

	while ((o = mux_output(&c->m, &n)) != NULL) {
		if ((r = write(c->fd, o, n)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			carrier_lose(c, strerror(errno));
			return;
		}
		mux_sent(&c->m, (size_t)r);
	}
	(void)mux_output(&c->m, &n);
	c->full = n >= MUX_OUT_MAX;
	if (loop_watch(c->l, &c->w, c->fd, EPOLLIN | (n > 0 ? EPOLLOUT : 0)) ==
	    -1)
		carrier_lose(c, "epoll_ctl");
	else if (was_full && !c->full)
		kick_all(c);	/* streams waiting for room */
	if (c->m.failed)
		carrier_lose(c, c->m.why);
}

static void
flush_deferred(struct watch *w, uint32_t ev)
{
	(void)ev;
	flush(w->arg);
}

void
carrier_flush(struct mstream *s)
{
	struct carrier	*c = (struct carrier *)(void *)s->m;

	if (!s->gone && !c->lost)
		loop_defer(c->l, &c->flushw);
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

static void
carrier_ready(struct watch *w, uint32_t ev)
{
	static uint8_t	 buf[64 << 10];
	struct carrier	*c = w->arg;
	ssize_t		 r;
	int		 k;

	if (ev & EPOLLIN)
		for (k = 0; k < CARRIER_READS && !c->lost; k++) {
			if ((r = read(c->fd, buf, sizeof(buf))) == -1) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					carrier_lose(c, strerror(errno));
				break;
			}
			if (r == 0) {
				carrier_lose(c, "eof");
				break;
			}
			if (mux_input(&c->m, buf, (size_t)r) == -1) {
				flush(c);	/* its Go Away */
				carrier_lose(c, c->m.why);
				break;
			}
		}
	if (!c->lost)
		flush(c);
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

struct carrier *
carrier_new(struct loop *l, int fd, int dialer, size_t max_streams,
    long long ping_ms, const struct side *s, void *owner,
    void (*stream_in)(void *, struct carrier *, struct mstream *),
    void (*gone)(void *, struct carrier *))
{
	struct carrier	*c;
	uint64_t	 salt;

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
	c->fd = fd;
	c->owner = owner;
	c->stream_in = stream_in;
	c->gone = gone;
	strlcpy(c->peer, s->peer, sizeof(c->peer));
	memcpy(&c->peeraddr, &s->peeraddr, sizeof(c->peeraddr));
	c->peerlen = s->peerlen;
	watch_init(&c->w, carrier_ready, c);
	watch_init(&c->flushw, flush_deferred, c);
	timer_init(&c->pt, ping_due, c);
	c->ping_ms = ping_ms;
	if (ping_ms > 0)
		(void)loop_timer(l, &c->pt, loop_now() + ping_ms);
	if (loop_watch(l, &c->w, fd, EPOLLIN) == -1) {
		mux_free(&c->m);
		free(c);
		return NULL;
	}
	return c;
}

/* The carrier's side as a session's peer: stream s of it. */
void
carrier_side(struct carrier *c, struct mstream *s, struct side *ps)
{
	ps->io = IO_MUX;
	ps->ms = s;
	ps->rfd = ps->wfd = -1;
	if (snprintf(ps->peer, sizeof(ps->peer), "%.200s stream %u", c->peer,
	    s->id) < 0)
		ps->peer[0] = '\0';
	memcpy(&ps->peeraddr, &c->peeraddr, sizeof(ps->peeraddr));
	ps->peerlen = c->peerlen;
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
	if (c->lost)
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
	(void)close(c->fd);
	mux_free(&c->m);
	free(c);
}

const char *
carrier_peer(const struct carrier *c)
{
	return c->peer;
}

size_t
carrier_streams(const struct carrier *c)
{
	return c->m.nstreams;
}
