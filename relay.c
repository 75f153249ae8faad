/*
 * relay.c: a relay session, run by the event loop (loop.c): one for a pair
 * of addresses, one per peer with multi.  Two directions, each with a ring
 * of -b frames; a frame is a 2-byte length followed by its payload, so a
 * stream sink writes it as it lies and a datagram sink sends from byte 2.
 * A direction borrows its ring from the pool (pool.c) while it has
 * datagrams in flight, and gives it back when it is empty.  One of many
 * sessions (multi: o->compact) gives it back at the end of every turn:
 * what is still queued is copied into a block of its own size (struct
 * blk, one a turn, shared by the frames it holds), an unfinished frame
 * into a buffer of its bytes, so that between turns a session holds what
 * it queues, not a ring.  The copy is made only of what could not be sent
 * at once: what flows straight through is never copied.
 *
 * A datagram source receives straight into fixed slots of -s + 2 bytes.
 * A stream source reads big chunks into one buffer and frames are cut out
 * of it in place (frame.c); its ring entries point into that buffer.
 *
 * A UDP source with UDP_GRO may receive a run of datagrams coalesced into
 * one slot; the ring entry then says so (seg, nseg) and the sinks cut it
 * where they write: a stream sink gathers a header for each datagram, a
 * UDP sink passes the run on as one UDP_SEGMENT send.  No copy either way.
 * A UDP sink also sends runs of equal-size queued datagrams that way.
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

#define NVEC		1024	/* UIO_MAXIOV: iovecs a call, messages a sendmmsg */
#define GSO_SEGS	64	/* UDP_SEGMENT: datagrams a send (older kernels) */
#define GSO_BYTES	65507	/* ... and their payload bytes (IPv4's limit) */
#define GRO_MIN		65527	/* -s that holds any coalesced run (IPv6) */
#define TLS_STAGE	(64 << 10)	/* bytes gathered for one TLS write */
/* control bytes a message: UDP_GRO or UDP_SEGMENT, a packet info, and
 * the kernel's drop count (SO_RXQ_OVFL) */
#define CTL_SIZE	(CMSG_SPACE(sizeof(int)) + \
			    CMSG_SPACE(sizeof(struct in6_pktinfo)) + \
			    CMSG_SPACE(sizeof(uint32_t)))

/* Frames kept between turns (compact): one block a turn, shared. */
struct blk {
	unsigned	 refs;		/* frames in it still queued */
	size_t		 size;		/* bytes counted in the pool */
	uint8_t		 data[];
};

struct frm {
	uint8_t		*p;		/* header; payload at p + FRAME_HDR */
	struct blk	*blk;		/* p lies in it; NULL: in the ring */
	size_t		 len;		/* payload bytes */
	/* nseg > 1: a coalesced run (GRO) of nseg datagrams of seg bytes, the
	 * last maybe shorter, back to back from p + FRAME_HDR; their frame
	 * headers are h (hl for the last), as p holds none */
	size_t		 seg;
	unsigned	 nseg;
	uint8_t		 h[FRAME_HDR], hl[FRAME_HDR];
};

struct relay;

struct dir {
	struct relay	*rl;
	int		 id;		/* 0: 1>2, 1: 2>1 */
	int		 on;		/* not turned off by -u/-U */
	struct side	*src, *dst;
	/* by the kind of each side (io_ops) */
	void		(*read)(struct relay *, struct dir *);
	void		(*write)(struct relay *, struct dir *);
	void		(*cut)(struct dir *);	/* stream source only */
	struct counters	*c;
	uint8_t		*mem;		/* count * (size + 2) bytes, borrowed
					 * from the pool while in flight */
	struct pool_wait pw;		/* waiting for it at the pool's cap */
	int		 starved;	/* ... so reading waits too */
	struct frame_buf fb;		/* stream source: mem as read buffer;
					 * between turns (compact), a buffer
					 * of the bytes not yet cut, or none */
	size_t		 fbheld;	/* ... its bytes, counted in held */
	struct frm	*q;		/* ring of queued frames */
	unsigned	 nq, head, n;	/* ring size, first, how many */
	unsigned	 nhot;		/* queued frames lying in mem */
	unsigned	 spare;		/* datagram source: the next slot of
					 * mem no entry has (compact) */
	size_t		 held;		/* bytes held between turns: blocks,
					 * fb, q (counted in the pool) */
	size_t		 passbytes;	/* read into mem in this turn */
	long long	 since;		/* ms: queued since, or delivered at */
	int		 progress;	/* a datagram was delivered this turn */
	long long	 fstart;	/* ms: the source's unfinished frame
					 * began (frame-timeout); 0: none */
	unsigned	 wseg;		/* datagrams of q[head] gone */
	size_t		 woff;		/* stream sink: bytes of the next written */
	int		 retried;	/* it was retried after ECONNREFUSED */
	int		 gro;		/* source: UDP_GRO is on */
	int		 ovfl;		/* source: says the kernel's drops */
	size_t		 avg;		/* source: bytes a datagram read, lately */
	size_t		 gsomax;	/* sink: largest UDP_SEGMENT size, 0: none */
	int		 eof;		/* source ended or failed */
	int		 lost;		/* source's connection was lost (retry):
					 * its whole frames go on, then the
					 * rest of the old stream is dropped */
	int		 rerr;		/* errno of a failed read, 0 for eof */
	int		 done;		/* eof and everything delivered */
	int		 wblocked;	/* sink said EAGAIN: wait for EPOLLOUT */
	int		 noempty;	/* sink is SOCK_SEQPACKET: 0 bytes is its end */
	/* the arrays of one call: the process's scratch (calls never
	 * interleave), not the session's */
	uint8_t		*scratch;	/* FRAME_HOT bytes to skip oversize frames */
	uint8_t		*stage;		/* TLS_STAGE bytes: a TLS sink's frames */
	struct mmsghdr	*msg;		/* NVEC of each, for a call */
	struct iovec	*iov;
	unsigned	*mseg;		/* datagrams in each message sent */
	uint8_t		*ctl;		/* CTL_SIZE bytes a message */
	struct sockaddr_storage *from;	/* senders, for a lockpeer source */
};

struct relay {
	const struct relay_opts *o;
	struct side	*s;		/* the two sides */
	struct dir	 d[2];
	int		 ending;	/* read no more; deliver what is queued */
	int		 abort;		/* stop now */
	int		 status;	/* 1: runtime failure, message in err */
	char		*err;
	size_t		 errsize;
	struct timespec	 last;		/* when a datagram was last delivered */
	int		 moved;		/* one was, this turn */
	int		 dialed[2];	/* side i's connection attempt answered */
	int		 bound;		/* a stall or frame bound ended it */
	/* opens a side left pending until its other side's TLS peer is
	 * authenticated (relay_opener) */
	int		(*opener)(void *, struct side *, char *, size_t);
	void		*oarg;
	struct pool_group *group;	/* its source's (multi), or NULL */
	/* in the loop */
	struct loop	*loop;
	struct pool	*pool;
	struct watch	 w[2][2];	/* side i's rfd, and its wfd if another */
	struct watch	 kick;		/* a turn, deferred (a buffer is back) */
	struct timer	 tm;		/* -t, and a retry's next step */
	int		 finished;	/* over: the owner ends it */
	void		(*over)(struct relay *, void *);
	void		*arg;
};

/* The arrays of one call, shared by every direction of the process. */
static struct scratch {
	struct mmsghdr	 msg[NVEC];
	struct iovec	 iov[NVEC];
	unsigned	 mseg[NVEC];
	uint8_t		 ctl[NVEC * CTL_SIZE];
	struct sockaddr_storage from[COUNT_MAX];
	uint8_t		 skip[FRAME_HOT];
	uint8_t		 stage[TLS_STAGE];	/* frames for one TLS write */
} *scratch;

static void __attribute__((format(printf, 3, 4)))
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

static struct frm *
qat(struct dir *d, unsigned i)
{
	return &d->q[(d->head + i) % d->nq];
}

/* Bytes of datagram j of f, and where they are. */
static size_t
seg_len(const struct frm *f, unsigned j)
{
	return j + 1 < f->nseg ? f->seg : f->len - (size_t)j * f->seg;
}

static uint8_t *
seg_at(const struct frm *f, unsigned j)
{
	return f->p + FRAME_HDR + (size_t)j * f->seg;
}

static void	hold_sub(struct relay *, struct dir *, size_t);

/*
 * f leaves the queue.  Held in a block: the block goes when its last
 * frame does, and a datagram source's entry is given a free slot of the
 * ring, if one is lent (see dir_hold).
 */
static void
frm_unhold(struct relay *rl, struct dir *d, struct frm *f)
{
	struct blk	*b = f->blk;

	if (b == NULL) {
		d->nhot--;
		return;
	}
	f->blk = NULL;
	if (--b->refs == 0) {
		hold_sub(rl, d, b->size);
		free(b);
	}
	if (d->mem != NULL && d->cut == NULL && d->spare < d->nq)
		f->p = d->mem + (size_t)d->spare++ * (rl->o->size + FRAME_HDR);
}

/* f is one datagram of len bytes; its header is written at f->p. */
static void
frm_one(struct frm *f, size_t len)
{
	f->len = len;
	f->seg = 0;
	f->nseg = 1;
	frame_put(f->p, len);
}

/*
 * The first queued datagram left dgrelay: delivered (dropped NULL), or
 * dropped and counted in *dropped.  Only a delivery counts as activity
 * for -t: bytes that trickle in without completing a datagram do not.
 */
static void
pop(struct relay *rl, struct dir *d, uint64_t *dropped)
{
	struct frm	*f = qat(d, 0);
	size_t		 len = seg_len(f, d->wseg);

	if (dropped == NULL) {
		d->c->dgrams++;
		d->c->bytes += len;
		rl->moved = 1;		/* -t reads its clock once a turn */
		d->progress = 1;
		if (rl->o->verbose >= 2)
			logx("%s: %zu bytes", d->id ? "2>1" : "1>2", len);
	} else
		(*dropped)++;
	d->woff = 0;
	d->retried = 0;
	if (++d->wseg < f->nseg)
		return;
	d->wseg = 0;
	frm_unhold(rl, d, f);
	d->head = (d->head + 1) % d->nq;
	if (--d->n == 0)
		d->head = 0;	/* the same few buffers again: cache-warm */
}

static void
pop_n(struct relay *rl, struct dir *d, unsigned k, uint64_t *dropped)
{
	while (k-- > 0)
		pop(rl, d, dropped);
}

/* Datagrams queued, not yet gone. */
static uint64_t
queued(struct dir *d)
{
	uint64_t	 k = 0;
	unsigned	 i;

	for (i = 0; i < d->n; i++)
		k += qat(d, i)->nseg;
	return k - d->wseg;
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
	return s->rd != NULL && s->rd->state != RD_UP;
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
static const char *
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
static int
lose(struct relay *rl, struct side *s, int e, int hs)
{
	struct dir	*in = rl->d[0].src == s ? &rl->d[0] : &rl->d[1];
	struct dir	*out = &rl->d[!in->id];
	char		 why[NAME_MAX_];

	if (s->rd == NULL || s->rd->a->retry == 0 || s->rd->state != RD_UP ||
	    rl->ending || sig_quit || (out->on && out->eof))
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

/* ------------------------------------------------------------- buffers */

static size_t
slot_size(const struct relay *rl)
{
	return rl->o->size + FRAME_HDR;
}

/* The pool's ring size: -b slots of -s + 2 bytes. */
size_t
relay_slab(const struct relay_opts *o)
{
	return o->count * (o->size + FRAME_HDR);
}

/* n more bytes held between turns (compact), counted in the pool. */
static void
hold_add(struct relay *rl, struct dir *d, size_t n)
{
	if (d->held == 0)
		pool_holder(rl->pool, 1);
	d->held += n;
	if (rl->group != NULL)
		pool_group_add(rl->pool, rl->group, (long long)n);
	pool_take(rl->pool, n);		/* checked before reading */
}

static void
hold_sub(struct relay *rl, struct dir *d, size_t n)
{
	d->held -= n;
	if (d->held == 0)
		pool_holder(rl->pool, -1);
	if (rl->group != NULL)
		pool_group_add(rl->pool, rl->group, -(long long)n);
	pool_give(rl->pool, n);
}

/* d's queue entries, made when it first queues (compact: held bytes). */
static int
dir_queue(struct relay *rl, struct dir *d)
{
	if (d->q != NULL)
		return 0;
	if ((d->q = calloc(d->nq, sizeof(*d->q))) == NULL)
		return -1;
	d->head = 0;
	if (rl->o->compact)
		hold_add(rl, d, d->nq * sizeof(*d->q));
	return 0;
}

/*
 * Bytes d may still read in this turn: under its share of the pool less
 * what it holds, and under its source's (compact; no limit for a pair).
 * With nothing queued it may always read a largest frame, so that a share
 * smaller than what it holds of an unfinished frame can never wedge it.
 */
static size_t
dir_budget(const struct relay *rl, const struct dir *d)
{
	size_t	 share, have = d->held + d->passbytes, slot = slot_size(rl);
	size_t	 left;

	if (!rl->o->compact)
		return SIZE_MAX;
	share = pool_share(rl->pool);
	share = have < share ? share - have : 0;
	if (rl->group != NULL) {
		left = pool_group_left(rl->pool, rl->group);
		left = left > d->passbytes ? left - d->passbytes : 0;
		if (left < share)
			share = left;
	}
	return d->n == 0 && share < slot ? slot : share;
}

/*
 * d has its ring, borrowed now if it had none: 0, or -1 at the pool's cap
 * (d then waits for one to come back, reading nothing meanwhile).  The
 * entries not queued get a slot each; held bytes of an unfinished frame
 * go back to the front of the stream buffer.
 */
static int
dir_hold(struct relay *rl, struct dir *d)
{
	size_t		 slot = slot_size(rl), k = 0;
	uint8_t		*cold = d->fb.buf;
	unsigned	 i;

	if (d->mem != NULL)
		return 0;
	if (dir_queue(rl, d) == -1 ||
	    (d->mem = pool_get(rl->pool, rl->o->compact)) == NULL) {
		if (errno == ENOMEM && rl->pool->lent == 0) {
			/* none will come back to wait for */
			relay_fail(rl, d->src, "buffers for -b %zu -s %zu: %s",
			    rl->o->count, rl->o->size, strerror(errno));
			rl->abort = 1;
			return -1;
		}
		d->starved = 1;
		pool_wait(rl->pool, &d->pw);
		return -1;
	}
	for (i = d->n; i < d->nq; i++)
		qat(d, i)->p = d->mem + (size_t)(i - d->n) * slot;
	d->spare = d->nq - d->n;
	if (cold != NULL) {
		k = d->fb.wpos - d->fb.rpos;
		memcpy(d->mem, cold + d->fb.rpos, k);
		free(cold);
		hold_sub(rl, d, d->fbheld);
		d->fbheld = 0;
	}
	d->fb.buf = d->mem;		/* an oversize frame's skip goes on */
	d->fb.cap = d->nq * slot;
	d->fb.rpos = 0;
	d->fb.wpos = k;
	return 0;
}

/* d's ring holds nothing queued, nor stream bytes: back to the pool. */
static void
dir_release(struct relay *rl, struct dir *d)
{
	if (d->mem == NULL || d->nhot > 0 || d->fb.rpos != d->fb.wpos)
		return;
	pool_put(rl->pool, d->mem);
	d->mem = NULL;
	d->fb.buf = NULL;
	d->fb.cap = d->fb.rpos = d->fb.wpos = 0;
}

/*
 * The end of a turn of one of many sessions (compact): what d still
 * queues in its ring is copied into one block of its own size, the bytes
 * not yet cut into a buffer of theirs, and the ring goes back.  Out of
 * memory, d keeps its ring until the next turn.
 */
static void
dir_compact(struct relay *rl, struct dir *d)
{
	struct blk	*b;
	struct frm	*f;
	size_t		 bytes = 0, k, n, off = 0;
	uint8_t		*cold = NULL;
	unsigned	 i;

	d->passbytes = 0;
	if (d->mem != NULL && d->nhot > 0) {
		for (i = 0; i < d->n; i++)
			if ((f = qat(d, i))->blk == NULL)
				bytes += (FRAME_HDR + f->len + 7) & ~(size_t)7;
		if ((b = malloc(sizeof(*b) + bytes)) == NULL)
			return;
		b->refs = 0;
		b->size = sizeof(*b) + bytes;
		for (i = 0; i < d->n; i++) {
			if ((f = qat(d, i))->blk != NULL)
				continue;
			n = FRAME_HDR + f->len;
			memcpy(b->data + off, f->p, n);
			f->p = b->data + off;
			f->blk = b;
			b->refs++;
			off += (n + 7) & ~(size_t)7;
		}
		d->nhot = 0;
		hold_add(rl, d, b->size);
	}
	if (d->mem != NULL && (k = d->fb.wpos - d->fb.rpos) > 0) {
		if ((cold = malloc(k)) == NULL)
			return;
		memcpy(cold, d->fb.buf + d->fb.rpos, k);
		d->fbheld = k;
		hold_add(rl, d, k);
	}
	if (d->mem != NULL) {
		pool_put(rl->pool, d->mem);
		d->mem = NULL;
		d->fb.buf = cold;
		d->fb.rpos = 0;
		d->fb.cap = d->fb.wpos = cold != NULL ? d->fbheld : 0;
	}
	if (d->n == 0 && d->q != NULL) {
		free(d->q);
		d->q = NULL;
		hold_sub(rl, d, d->nq * sizeof(*d->q));
	}
}

/* ------------------------------------------------------------- sources */

/*
 * The first peer of a wildcard-bound source: must replies name their
 * source (sock_reply_source)?  Then the socket stays unconnected.
 */
static int
reply_source(struct relay *rl, struct side *s, struct msghdr *h)
{
	char	 name[NAME_MAX_];

	if (!sock_reply_source(s, h))
		return 0;
	if (rl->o->verbose) {
		sock_ntop((struct sockaddr *)&s->replyfrom,
		    sizeof(s->replyfrom), name, sizeof(name));
		name[strcspn(name, " ")] = '\0';	/* no port */
		logx("%s: replies from %s, where the peer sent to", s->name,
		    name);
	}
	return 1;
}

/*
 * An unconnected datagram source adopts the sender of message h, its
 * first, as the peer and connects to it (unless replies must name their
 * source).  Returns whether the datagram is from the peer.
 */
static int
adopt(struct relay *rl, struct dir *d, struct msghdr *h)
{
	struct side		*s = d->src;
	const struct sockaddr	*from = h->msg_name;
	socklen_t		 len = h->msg_namelen;

	if (s->locked)
		return len == s->peerlen && memcmp(from, &s->peeraddr, len) == 0;
	memcpy(&s->peeraddr, from, len);
	s->peerlen = len;
	if (!(s->pktinfo && reply_source(rl, s, h)) &&
	    connect(s->rfd, from, len) == -1) {
		relay_fail(rl, s, "connect to first peer: %s", strerror(errno));
		rl->abort = 1;
		return 0;
	}
	s->locked = 1;
	sock_ntop(from, len, s->peer, sizeof(s->peer));
	if (rl->o->verbose)
		logx("%s: peer %s", s->name, s->peer);
	return 1;
}

/* Errors a datagram socket reports for earlier sends: the peer may return. */
static int
transient(int e)
{
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
	    e == EMSGSIZE || e == ENOBUFS || e == EHOSTDOWN || e == EPERM;
}

/*
 * Datagrams the listening socket had for this side before it existed
 * (fork): older than anything on the socket, so they go first.  A copy,
 * once per handed-over datagram, never on the steady path.
 */
static void
dg_preload(struct relay *rl, struct dir *d)
{
	struct side	*s = d->src;
	struct frm	*f;
	size_t		 len;

	if (dir_hold(rl, d) == -1)
		return;
	while (s->preoff < s->prelen && d->n < d->nq) {
		len = frame_get(s->pre + s->preoff);
		if (len > rl->o->size)
			d->c->oversize++;
		else {
			f = qat(d, d->n++);
			d->nhot++;
			memcpy(f->p + FRAME_HDR, s->pre + s->preoff + FRAME_HDR,
			    len);
			frm_one(f, len);
		}
		s->preoff += FRAME_HDR + len;
	}
}

/* The UDP_GRO segment size of a received message, 0 when it has none. */
static size_t
gro_size(struct msghdr *m)
{
	const void	*p;
	int		 v;

	if ((p = sock_cmsg(m, SOL_UDP, UDP_GRO, sizeof(v))) == NULL)
		return 0;
	memcpy(&v, p, sizeof(v));
	return v > 0 ? (size_t)v : 0;
}

/*
 * Lay out k receive slots from the ring's first free one: payload at byte
 * 2 of each, the sender's address for a source that locks onto a peer,
 * a control buffer for UDP_GRO's segment size.
 */
static void
dg_prepare(struct relay *rl, struct dir *d, unsigned k)
{
	struct msghdr	*h;
	unsigned	 i;

	for (i = 0; i < k; i++) {
		d->iov[i].iov_base = qat(d, d->n + i)->p + FRAME_HDR;
		d->iov[i].iov_len = rl->o->size;
		h = &d->msg[i].msg_hdr;
		memset(h, 0, sizeof(*h));
		h->msg_iov = &d->iov[i];
		h->msg_iovlen = 1;
		if (d->src->lockpeer) {
			h->msg_name = &d->from[i];
			h->msg_namelen = sizeof(d->from[i]);
		}
		if (d->gro || d->src->pktinfo || d->ovfl) {
			h->msg_control = d->ctl + i * CTL_SIZE;
			h->msg_controllen = CTL_SIZE;
		}
	}
}

/*
 * Message i of a receive into ring entry f: one datagram, or a coalesced
 * run when UDP_GRO says so.
 */
static void
dg_entry(struct dir *d, unsigned i, struct frm *f)
{
	size_t	 len = d->msg[i].msg_len;
	size_t	 gso = d->gro ? gro_size(&d->msg[i].msg_hdr) : 0;

	if (gso > 0 && len > gso) {
		f->len = len;
		f->seg = gso;
		f->nseg = (unsigned)((len + gso - 1) / gso);
		frame_put(f->h, gso);
		frame_put(f->hl, seg_len(f, f->nseg - 1));
	} else
		frm_one(f, len);
}

/*
 * Whether message i of a receive is kept: not a seqpacket's end (then
 * d->eof), not cut short (oversize, never forwarded cut), from the peer.
 */
static int
dg_keep(struct relay *rl, struct dir *d, unsigned i)
{
	struct mmsghdr	*m = &d->msg[i];
	int		 flags = m->msg_hdr.msg_flags;

	if (d->src->seqpacket && m->msg_len == 0 && !(flags & MSG_TRUNC)) {
		d->eof = 1;	/* 0 bytes on SOCK_SEQPACKET: the end */
		return 0;
	}
	if (flags & MSG_TRUNC) {
		d->c->oversize++;
		return 0;
	}
	if (d->src->lockpeer && !adopt(rl, d, &m->msg_hdr)) {
		d->c->otherpeer++;
		return 0;
	}
	return 1;
}

/* A failed receive: wait, count an ICMP error, or the source has ended. */
static void
dg_read_error(struct relay *rl, struct dir *d, int e)
{
	if (e == EAGAIN || e == EINTR)
		return;
	if (transient(e))	/* ICMP for a datagram we sent */
		rl->d[!d->id].c->senderr++;
	else {
		d->eof = 1;
		d->rerr = e;
	}
}

static void
dg_read(struct relay *rl, struct dir *d)
{
	unsigned	 i, k = d->nq - d->n, kept = 0;
	struct frm	*f, *g;
	uint8_t		*p;
	size_t		 total = 0, budget, est;
	int		 r;

	/* about FRAME_HOT bytes a call, by the sizes seen lately (avg is at
	 * most 65,536, so at least 4 datagrams): big datagrams in few
	 * buffers stay in the CPU's cache */
	if (d->avg > 0 && FRAME_HOT / d->avg < k)
		k = FRAME_HOT / d->avg;
	/* within its share (compact), by the sizes seen lately */
	if ((budget = dir_budget(rl, d)) == 0)
		return;
	est = d->avg > 0 ? d->avg + FRAME_HDR : slot_size(rl);
	if (budget / est < k)
		k = budget / est > 0 ? (unsigned)(budget / est) : 1;
	if (dir_hold(rl, d) == -1)
		return;
	dg_prepare(rl, d, k);
	if ((r = recvmmsg(d->src->rfd, d->msg, k, MSG_DONTWAIT, NULL)) == -1) {
		dg_read_error(rl, d, errno);
		return;
	}
	for (i = 0; i < (unsigned)r && !d->eof; i++) {
		total += d->msg[i].msg_len;
		if (d->ovfl)
			sock_drops(&d->msg[i].msg_hdr, &d->c->kdrops);
		if (!dg_keep(rl, d, i))
			continue;
		/* keep the ring dense: swap the slot over a dropped one */
		f = qat(d, d->n + kept);
		g = qat(d, d->n + i);
		if (f != g) {
			p = f->p;
			f->p = g->p;
			g->p = p;
		}
		dg_entry(d, i, f);
		d->passbytes += FRAME_HDR + f->len;
		kept++;
	}
	d->n += kept;
	d->nhot += kept;
	/* datagrams read after a seqpacket's end in the same call: counted
	 * (at the end the kernel repeats 0-byte reads; those are no data) */
	for (; d->eof && i < (unsigned)r; i++)
		d->c->unsent += d->msg[i].msg_len > 0;
	if (r > 0)
		d->avg = total / (unsigned)r + 1;
}

/*
 * A datagram side that is not a socket (a TUN device): one read a packet.
 * A spill byte after the slot tells a packet larger than -s, which is
 * dropped and counted, never cut.
 */
static void
pk_read(struct relay *rl, struct dir *d)
{
	uint8_t		 spill;
	struct iovec	 iov[2];
	struct frm	*f;
	ssize_t		 r;

	if (dir_hold(rl, d) == -1)
		return;
	while (d->n < d->nq) {
		f = qat(d, d->n);
		iov[0].iov_base = f->p + FRAME_HDR;
		iov[0].iov_len = rl->o->size;
		iov[1].iov_base = &spill;
		iov[1].iov_len = 1;
		if ((r = readv(d->src->rfd, iov, 2)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				d->eof = 1;
				d->rerr = errno;
			}
			return;
		}
		if ((size_t)r > rl->o->size) {
			d->c->oversize++;
			continue;
		}
		frm_one(f, (size_t)r);
		d->n++;
		d->nhot++;
	}
}

/* Cut the frames a stream source has buffered into the ring. */
static void
st_cut(struct dir *d)
{
	uint8_t	*p;
	size_t	 len;
	struct frm *f;

	/* held bytes (compact) with a frame to cut: the ring back for it */
	if (d->mem == NULL && d->n < d->nq && frame_buf_ready(&d->fb) &&
	    dir_hold(d->rl, d) == -1)
		return;
	while (d->mem != NULL && d->n < d->nq) {
		switch (frame_buf_next(&d->fb, &p, &len)) {
		case FRAME_OK:
			f = qat(d, d->n++);
			d->nhot++;
			f->p = p;
			f->len = len;
			f->seg = 0;
			f->nseg = 1;
			break;
		case FRAME_SKIP:
			d->c->oversize++;
			break;
		case FRAME_MORE:
			return;
		}
	}
}

static size_t
st_room(struct dir *d, uint8_t **at)
{
	return frame_buf_room(&d->fb, d->nhot == 0, at);
}

/*
 * Where a stream source's next read goes: its buffer, or while an oversize
 * frame is being skipped and nothing else is buffered, a scratch buffer
 * (a tiny -s and -b would otherwise skip it a few bytes a read).
 */
static size_t
st_room_or_skip(struct dir *d, uint8_t **at, int *skipping)
{
	size_t	 n = frame_buf_toskip(&d->fb);

	*skipping = 0;
	if (n > 0) {
		*skipping = 1;
		*at = d->scratch;
		return n < FRAME_HOT ? n : FRAME_HOT;
	}
	n = st_room(d, at);
	return n < FRAME_HOT ? n : FRAME_HOT;	/* see frame.c */
}

/*
 * One read of a stream source (by read(2) or TLS) into its buffer, and the
 * frames it completed cut into the ring.  Returns whether bytes came.
 */
static int
st_fill(struct relay *rl, struct dir *d,
    ssize_t (*rd)(struct side *, void *, size_t))
{
	uint8_t		*at;
	int		 skipping;
	size_t		 room, budget;
	uint64_t	 before;
	ssize_t		 r;

	if (frame_buf_toskip(&d->fb) == 0 && dir_hold(rl, d) == -1)
		return 0;
	if ((room = st_room_or_skip(d, &at, &skipping)) == 0)
		return 0;
	if (!skipping && room > (budget = dir_budget(rl, d)))
		room = budget;		/* its share (compact) */
	if (room == 0)
		return 0;
	if ((r = rd(d->src, at, room)) == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		d->rerr = errno;
		d->eof = 1;
		return 0;
	}
	if (r == 0) {
		d->eof = 1;
		return 0;
	}
	if (skipping)
		frame_buf_skipped(&d->fb, (size_t)r);
	else {
		frame_buf_fill(&d->fb, (size_t)r);
		d->passbytes += (size_t)r;
	}
	before = d->n + d->c->oversize;
	st_cut(d);
	/* frame-timeout runs from the first byte of an unfinished frame */
	if (rl->o->frame_ms == 0)
		return 1;
	if (!frame_buf_partial(&d->fb))
		d->fstart = 0;
	else if (d->fstart == 0 || d->n + d->c->oversize != before)
		d->fstart = loop_now();
	return 1;
}

static ssize_t
fd_read(struct side *s, void *buf, size_t len)
{
	return read(s->rfd, buf, len);
}

static void
st_read(struct relay *rl, struct dir *d)
{
	(void)st_fill(rl, d, fd_read);
}

/*
 * A TLS source: a read returns one record at most, and what OpenSSL has
 * read ahead is no event for the loop: read until it would block or the
 * ring is full (relay_turn comes back for what TLS still holds).
 */
static void
tl_read(struct relay *rl, struct dir *d)
{
	while (d->n < d->nq && st_fill(rl, d, tls_read))
		;
}

/* --------------------------------------------------------------- sinks */

static int
gso_fits(const struct dir *d, size_t seg, size_t len, unsigned nseg)
{
	return seg > 0 && seg <= d->gsomax && len <= GSO_BYTES &&
	    nseg <= GSO_SEGS;
}

/* Fill control message c of h with len bytes of data; the next one. */
static struct cmsghdr *
cmsg_put(struct msghdr *h, struct cmsghdr *c, int level, int type,
    const void *data, size_t len)
{
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return CMSG_NXTHDR(h, c);
}

/* The packet info that makes a reply leave from s->replyfrom. */
static struct cmsghdr *
cmsg_from(struct msghdr *h, struct cmsghdr *c, const struct side *s)
{
	struct in_pktinfo	 pi;
	struct in6_pktinfo	 pi6;

	if (s->replyfrom.ss_family == AF_INET) {
		memset(&pi, 0, sizeof(pi));
		pi.ipi_spec_dst =
		    ((const struct sockaddr_in *)&s->replyfrom)->sin_addr;
		return cmsg_put(h, c, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
	}
	memset(&pi6, 0, sizeof(pi6));
	pi6.ipi6_addr = ((const struct sockaddr_in6 *)&s->replyfrom)->sin6_addr;
	return cmsg_put(h, c, IPPROTO_IPV6, IPV6_PKTINFO, &pi6, sizeof(pi6));
}

/*
 * The control messages of message m of a send: the reply source, when
 * the sink has one, and UDP_SEGMENT for a run of seg-byte datagrams
 * (seg 0: a single datagram).
 */
static void
msg_ctl(struct dir *d, unsigned m, size_t seg)
{
	struct msghdr	*h = &d->msg[m].msg_hdr;
	struct cmsghdr	*c;
	uint16_t	 v = (uint16_t)seg;
	int		 from = d->dst->hasreplyfrom;

	if (seg == 0 && !from)
		return;
	h->msg_control = d->ctl + m * CTL_SIZE;
	h->msg_controllen = (seg ? CMSG_SPACE(sizeof(v)) : 0) +
	    (!from ? 0 : d->dst->replyfrom.ss_family == AF_INET ?
	    CMSG_SPACE(sizeof(struct in_pktinfo)) :
	    CMSG_SPACE(sizeof(struct in6_pktinfo)));
	c = CMSG_FIRSTHDR(h);
	if (from)
		c = cmsg_from(h, c, d->dst);
	if (seg > 0)
		(void)cmsg_put(h, c, SOL_UDP, UDP_SEGMENT, &v, sizeof(v));
}

/*
 * Lay the queued datagrams out as messages for one sendmmsg; d->mseg
 * says how many datagrams each carries.  A coalesced run goes whole as
 * one UDP_SEGMENT message when it may, else a message per datagram;
 * single datagrams of one size (the last of a run may be shorter) are
 * joined into one.  Returns the number of messages.
 */
/*
 * Single datagrams from queue entry i on, laid out from iovec *v: one
 * alone, or a run of one size (the last may be shorter) to send as one
 * UDP_SEGMENT message.  Returns how many.
 */
static unsigned
dg_join(struct dir *d, unsigned i, unsigned *v)
{
	struct frm	*f = qat(d, i), *g;
	size_t		 total = f->len;
	unsigned	 run = 1;

	d->iov[*v].iov_base = seg_at(f, 0);
	d->iov[(*v)++].iov_len = f->len;
	while (gso_fits(d, f->len, total, run) && i + run < d->n &&
	    run < GSO_SEGS && *v < NVEC) {
		g = qat(d, i + run);
		if (g->nseg != 1 || g->len == 0 || g->len > f->len ||
		    total + g->len > GSO_BYTES)
			break;
		d->iov[*v].iov_base = seg_at(g, 0);
		d->iov[(*v)++].iov_len = g->len;
		total += g->len;
		run++;
		if (g->len < f->len)
			break;		/* a shorter one ends a run */
	}
	return run;
}

static unsigned
dg_build(struct dir *d)
{
	struct msghdr	*h;
	struct frm	*f;
	unsigned	 i = 0, j = d->wseg, m = 0, v = 0, run;
	size_t		 seg;

	for (; i < d->n && m < NVEC && v < NVEC; m++) {
		f = qat(d, i);
		if (d->noempty && f->nseg == 1 && f->len == 0)
			break;		/* dg_write drops it, first */
		h = &d->msg[m].msg_hdr;
		memset(h, 0, sizeof(*h));
		h->msg_iov = &d->iov[v];
		h->msg_iovlen = 1;
		if (d->dst->hasreplyfrom || d->dst->shared) {
			/* an unconnected socket */
			h->msg_name = &d->dst->peeraddr;
			h->msg_namelen = d->dst->peerlen;
		}
		seg = 0;
		if (f->nseg > 1 && j == 0 &&
		    gso_fits(d, f->seg, f->len, f->nseg)) {
			/* a coalesced run, whole */
			d->iov[v].iov_base = seg_at(f, 0);
			d->iov[v++].iov_len = f->len;
			seg = f->seg;
			d->mseg[m] = f->nseg;
			i++;
		} else if (f->nseg > 1) {
			/* a coalesced run, a datagram at a time */
			d->iov[v].iov_base = seg_at(f, j);
			d->iov[v++].iov_len = seg_len(f, j);
			d->mseg[m] = 1;
			if (++j == f->nseg) {
				i++;
				j = 0;
			}
		} else {
			run = dg_join(d, i, &v);
			h->msg_iovlen = run;
			d->mseg[m] = run;
			if (run > 1)
				seg = f->len;
			i += run;
		}
		msg_ctl(d, m, seg);
	}
	return m;
}

/*
 * The kernel refused UDP_SEGMENT for a run of seg-byte datagrams: no
 * support (EIO: no checksum offload; ENOPROTOOPT, EOPNOTSUPP), or seg is
 * more than the route takes (EINVAL, EMSGSIZE).  From now on this sink
 * sends such datagrams one by one.  Returns whether to try again so.
 */
static int
gso_refused(struct dir *d, int e, struct msghdr *h)
{
	struct cmsghdr	*c;
	uint16_t	 seg;

	for (c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT)
			break;
	if (c == NULL)
		return 0;
	memcpy(&seg, CMSG_DATA(c), sizeof(seg));
	if (e == EIO || e == ENOPROTOOPT || e == EOPNOTSUPP)
		d->gsomax = 0;
	else if (e == EINVAL || e == EMSGSIZE)
		d->gsomax = seg - 1;	/* below seg: strictly less */
	else
		return 0;
	return 1;
}

static void
dg_write(struct relay *rl, struct dir *d)
{
	unsigned	 i, k;
	int		 r;

	while (d->n > 0) {
		if (d->noempty && qat(d, 0)->nseg == 1 && qat(d, 0)->len == 0) {
			/* the far end would read it as end of input */
			pop(rl, d, &d->c->empty);
			continue;
		}
		k = dg_build(d);
		if ((r = sendmmsg(d->dst->wfd, d->msg, k, MSG_DONTWAIT)) >= 0) {
			for (i = 0; i < (unsigned)r; i++)
				pop_n(rl, d, d->mseg[i], NULL);
			continue;
		}
		if (errno == EAGAIN) {
			d->wblocked = 1;
			return;
		}
		if (errno == EINTR || gso_refused(d, errno, &d->msg[0].msg_hdr))
			continue;
		if (errno == ECONNREFUSED && !d->retried) {
			/* refused: an earlier datagram; this one was not sent */
			d->c->senderr++;
			d->retried = 1;
			continue;
		}
		if (!transient(errno)) {
			if (lose(rl, d->dst, errno, 0))
				return;
			relay_fail(rl, d->dst, "send: %s", strerror(errno));
			rl->abort = 1;
			return;
		}
		pop_n(rl, d, d->mseg[0], &d->c->senderr);
	}
}

/* One write a packet; a packet the device refuses is dropped, counted. */
static void
pk_write(struct relay *rl, struct dir *d)
{
	struct frm	*f;

	while (d->n > 0) {
		f = qat(d, 0);
		if (write(d->dst->wfd, seg_at(f, d->wseg),
		    seg_len(f, d->wseg)) != -1) {
			pop(rl, d, NULL);
		} else if (errno == EAGAIN) {
			d->wblocked = 1;
			return;
		} else if (errno == EINVAL || errno == EIO ||
		    errno == EMSGSIZE || errno == ENOBUFS || errno == EFAULT)
			/* not a packet, or the device is down */
			pop(rl, d, &d->c->senderr);
		else if (errno != EINTR) {
			relay_fail(rl, d->dst, "write: %s", strerror(errno));
			rl->abort = 1;
			return;
		}
	}
}

/* Add len bytes at p to an iovec list; neighbours in memory share one. */
static void
iov_add(struct iovec *iov, unsigned *n, uint8_t *p, size_t len)
{
	if (len == 0)
		return;
	if (*n > 0 && (uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len ==
	    p)
		iov[*n - 1].iov_len += len;
	else {
		iov[*n].iov_base = p;
		iov[(*n)++].iov_len = len;
	}
}

/*
 * Gather every queued frame into d->iov, from the first byte not yet
 * written; a coalesced run gets a header per datagram.  Returns the
 * number of iovecs; *total their bytes.
 */
static unsigned
st_gather(struct dir *d, size_t *total)
{
	struct iovec	*iov = d->iov;
	struct frm	*f;
	uint8_t		*hdr;
	size_t		 len, skip, off;
	unsigned	 i, j, niov = 0;

	for (i = 0; i < d->n && niov + 2 <= NVEC; i++) {
		f = qat(d, i);
		skip = i == 0 ? d->woff : 0;
		if (f->nseg == 1) {
			iov_add(iov, &niov, f->p + skip,
			    FRAME_HDR + f->len - skip);
			continue;
		}
		for (j = i == 0 ? d->wseg : 0; j < f->nseg &&
		    niov + 2 <= NVEC; j++, skip = 0) {
			len = seg_len(f, j);
			hdr = j + 1 < f->nseg ? f->h : f->hl;
			if (skip < FRAME_HDR)
				iov_add(iov, &niov, hdr + skip,
				    FRAME_HDR - skip);
			off = skip > FRAME_HDR ? skip - FRAME_HDR : 0;
			iov_add(iov, &niov, seg_at(f, j) + off, len - off);
		}
	}
	for (*total = 0, i = 0; i < niov; i++)
		*total += iov[i].iov_len;
	return niov;
}

/* A stream sink failed with e. */
static void
st_write_error(struct relay *rl, struct dir *d, int e)
{
	if (e == EAGAIN) {
		d->wblocked = 1;
		return;
	}
	rl->abort = 1;
	if (lose(rl, d->dst, e, 0))
		return;
	if (rl->ending && rl->status == 0 && (e == EPIPE || e == ECONNRESET)) {
		/* the peer ended and left: what it missed is unsent */
		if (rl->o->verbose)
			logx("%s: write: %s", d->dst->name, strerror(e));
	} else
		relay_fail(rl, d->dst, "write: %s", side_why(d->dst, e));
}

/* r bytes of the gathered frames went: the whole ones leave the ring. */
static void
st_written(struct relay *rl, struct dir *d, size_t r)
{
	size_t	 len;

	while (r > 0) {
		len = FRAME_HDR + seg_len(qat(d, 0), d->wseg) - d->woff;
		if (r < len) {
			d->woff += r;	/* resume here, frame whole */
			break;
		}
		r -= len;
		pop(rl, d, NULL);
	}
}

static void
st_write(struct relay *rl, struct dir *d)
{
	size_t		 total;
	ssize_t		 r;
	unsigned	 niov = st_gather(d, &total);

	while ((r = writev(d->dst->wfd, d->iov, (int)niov)) == -1 &&
	    errno == EINTR)
		;
	if (r == -1) {
		st_write_error(rl, d, errno);
		return;
	}
	if ((size_t)r < total)
		d->wblocked = 1;	/* short write: the kernel is full */
	st_written(rl, d, (size_t)r);
}

/*
 * A TLS sink: the frames gathered as for writev, copied into one buffer
 * (one that lies whole in the ring goes as it is) and written in as few
 * records as TLS allows.  A write that said EAGAIN is given the same bytes
 * again: they are gathered again from the same first byte.
 */
static void
tl_write(struct relay *rl, struct dir *d)
{
	size_t		 total, len = 0, n, done;
	ssize_t		 r;
	uint8_t		*p;
	unsigned	 i, niov = st_gather(d, &total);

	if (niov == 1) {
		p = d->iov[0].iov_base;
		len = total;
	} else {
		p = d->stage;
		for (i = 0; i < niov && len < TLS_STAGE; i++) {
			n = d->iov[i].iov_len < TLS_STAGE - len ?
			    d->iov[i].iov_len : TLS_STAGE - len;
			memcpy(p + len, d->iov[i].iov_base, n);
			len += n;
		}
	}
	for (done = 0; done < len; done += (size_t)r)
		if ((r = tls_write(d->dst, p + done, len - done)) == -1) {
			if (errno != EAGAIN && done == 0) {
				st_write_error(rl, d, errno);
				return;
			}
			d->wblocked = 1;	/* the rest later */
			break;
		}
	st_written(rl, d, done);
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
	    d->dst->seqpacket)
		half_close(d->dst);
	else
		rl->ending = 1;
}

/* ---------------------------------------------------------- directions */

/* How each kind of side reads and writes: chosen once, in dir_init. */
static const struct io_ops {
	void	(*read)(struct relay *, struct dir *);
	void	(*write)(struct relay *, struct dir *);
	void	(*cut)(struct dir *);	/* source: more frames into the ring */
} io_ops[] = {
	[IO_DGRAM] = { dg_read, dg_write, NULL },
	[IO_STREAM] = { st_read, st_write, st_cut },
	[IO_PACKET] = { pk_read, pk_write, NULL },
	[IO_TLS] = { tl_read, tl_write, st_cut },
};

static int
set_gro(int fd, int on)
{
	return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on));
}

/* fd is a UDP socket (and the kernel knows UDP_SEGMENT). */
static int
udp_socket(int fd)
{
	int		 v;
	socklen_t	 len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == -1 ||
	    v != IPPROTO_UDP)
		return 0;
	len = sizeof(v);
	return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
}

/* The arrays of a call: made once for the process (control padding 0). */
static int
scratch_init(void)
{
	if (scratch == NULL && (scratch = calloc(1, sizeof(*scratch))) == NULL)
		return -1;
	return 0;
}

/* A buffer came back to the pool for d: a turn, once this pass is over. */
static void
dir_unstarve(struct pool_wait *pw)
{
	struct dir	*d = pw->arg;
	struct relay	*rl = d->rl;

	d->starved = 0;
	loop_defer(rl->loop, &rl->kick);
}

/*
 * What d does by the kind of its sides: its read and write functions,
 * GRO, GSO, the kernel's drop count.  Once both sides are open.
 */
static void
dir_sides(struct relay *rl, struct dir *d)
{
	struct side	*src = d->src, *dst = d->dst;

	d->read = io_ops[src->io].read;
	d->write = io_ops[dst->io].write;
	d->cut = io_ops[src->io].cut;
	if (!d->on)
		return;
	/* GRO only where a slot holds any run the kernel may coalesce */
	if (src->io == IO_DGRAM && rl->o->size >= GRO_MIN &&
	    udp_socket(src->rfd) && set_gro(src->rfd, 1) == 0)
		d->gro = 1;
	if (dst->io == IO_DGRAM && udp_socket(dst->wfd))
		d->gsomax = GSO_BYTES;
	/* what the kernel drops at a full socket is counted too */
	if (src->io == IO_DGRAM && udp_socket(src->rfd) &&
	    sock_want_drops(src->rfd) == 0)
		d->ovfl = 1;
	d->noempty = dst->io == IO_DGRAM && dst->seqpacket;
}

static void
dir_init(struct relay *rl, struct dir *d, int id, struct side *src,
    struct side *dst, struct counters *c)
{
	const struct relay_opts	*o = rl->o;

	memset(d, 0, sizeof(*d));
	d->rl = rl;
	d->pw.fn = dir_unstarve;
	d->pw.arg = d;
	d->id = id;
	d->on = o->dir[id];
	d->src = src;
	d->dst = dst;
	d->c = c;
	d->nq = (unsigned)o->count;
	if (!d->on)
		return;
	d->msg = scratch->msg;
	d->iov = scratch->iov;
	d->mseg = scratch->mseg;
	d->ctl = scratch->ctl;
	d->from = scratch->from;
	d->scratch = scratch->skip;
	d->stage = scratch->stage;
	frame_buf_init(&d->fb, NULL, 0, o->size);
	if (!src->pending && !dst->pending)
		dir_sides(rl, d);
}

static void
dir_free(struct relay *rl, struct dir *d)
{
	/* an inherited socket goes back as it came */
	if (d->gro && d->src->rflags != -1)
		(void)set_gro(d->src->rfd, 0);
	pool_unwait(rl->pool, &d->pw);
	while (d->n > 0) {		/* counted unsent by dir_leftover */
		frm_unhold(rl, d, qat(d, 0));
		d->head = (d->head + 1) % d->nq;
		d->n--;
	}
	if (d->mem != NULL)
		pool_put(rl->pool, d->mem);
	else if (d->fb.buf != NULL) {
		free(d->fb.buf);
		hold_sub(rl, d, d->fbheld);
	}
	d->mem = d->fb.buf = NULL;
	if (d->q != NULL && rl->o->compact)
		hold_sub(rl, d, d->nq * sizeof(*d->q));
	free(d->q);
	d->q = NULL;
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
	struct timespec	 now;
	long long	 ms;

	if (rl->o->idle_ms <= 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - rl->last.tv_sec) * 1000LL +
	    (now.tv_nsec - rl->last.tv_nsec) / 1000000;
	ms = rl->o->idle_ms - ms;
	return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

/*
 * A side that reconnects and is down: the attempt that is due, or the
 * answer to the one under way; retry=N used up ends the relay.
 */
static void
redial_turn(struct relay *rl, struct side *s, int writable)
{
	side_unwatch(rl, s);	/* an attempt may close and open sockets */
	if (redial_step(s, writable) != RD_GONE || rl->abort)
		return;
	if (s->rd->a->retry > 0)
		relay_fail(rl, s, "%s (%d attempt%s)", s->rd->a->err,
		    s->rd->a->retry, s->rd->a->retry == 1 ? "" : "s");
	else		/* a multi session's one attempt */
		relay_fail(rl, s, "%s", s->rd->a->err);
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

/* A handshake slot came free for the session: a turn, to arm for it. */
static void
hs_wake(void *arg)
{
	struct relay	*rl = arg;

	loop_defer(rl->loop, &rl->kick);
}

/*
 * A step of s's TLS handshake (started on its first turn, once it is
 * connected).  Done: it relays from now on.  Failed or timed out: a
 * failed attempt with retry, else the end of the session, one line.
 */
static void
hs_turn(struct relay *rl, struct side *s)
{
	char	 buf[NAME_MAX_];
	int	 r;

	if (s->tls == NULL && tls_start(s, hs_wake, rl, buf, sizeof(buf)) ==
	    -1) {
		relay_fail(rl, s, "%s", buf);
		rl->abort = 1;
		return;
	}
	if ((r = tls_handshake(s)) == 0)
		return;
	if (r == 1) {
		if (s->rd != NULL)
			redial_up(s);
		if (rl->o->verbose) {
			tls_describe(s, buf, sizeof(buf));
			logx("%s: %s", s->name, buf);
		}
		return;
	}
	if (lose(rl, s, 0, 1))
		return;
	relay_fail(rl, s, "%s", tls_why(s));
	rl->abort = 1;
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
	int		 i;

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
		if (down(d->dst) && d->dst->rd->a->retry != 0)
			dir_drop(rl, d);
		dir_write(rl, d);
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
	int			 i, pending = 0, done = 1;

	for (i = 0; i < 2; i++) {
		d = &rl->d[i];
		if (!d->on)
			continue;
		pending += d->n > 0 && dst_ready(d);
		done &= d->done;
	}
	if (sig_quit || rl->abort || rl->bound || done ||
	    (rl->ending && !pending))
		return 1;
	if (rl->moved && rl->o->idle_ms > 0)
		clock_gettime(CLOCK_MONOTONIC, &rl->last);
	rl->moved = 0;
	if (idle_left(rl) == 0) {
		if (rl->o->verbose)
			logx("idle for %lld ms: ending", rl->o->idle_ms);
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
	if (s->rd != NULL && s->rd->state == RD_DIAL) {
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
		due = rl->last.tv_sec * 1000LL + rl->last.tv_nsec / 1000000 +
		    rl->o->idle_ms;
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
	if (!over) {
		relay_fail(rl, NULL, "epoll: %s", strerror(errno));
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
	if (rl->s[i].rd != NULL && rl->s[i].rd->state == RD_DIAL)
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
relay_push(struct relay *rl, int i, const uint8_t *dg, size_t len)
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
	/* on its way now: what the sink cannot take at once is held (or
	 * its ring kept, for a pair) */
	relay_pass(rl);
	return PUSH_OK;
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
	clock_gettime(CLOCK_MONOTONIC, &rl->last);
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

static void
pair_over(struct relay *rl, void *arg)
{
	(void)rl;
	*(int *)arg = 1;
}

int
relay_run(const struct relay_opts *o, struct side s[2], struct counters c[2],
    char *err, size_t errsize, int (*opener)(void *, struct side *, char *,
    size_t), void *oarg)
{
	struct loop	 l;
	struct pool	 pool;
	struct relay	*rl;
	sigset_t	 old, waitmask;
	int		 over = 0, status = 1;

	err[0] = '\0';
	signals_hold(&old, &waitmask, 0);
	pool_init(&pool, relay_slab(o), o->size + FRAME_HDR, POOL_MAX);
	if (loop_init(&l, &waitmask) == -1)
		snprintf(err, errsize, "epoll: %s", strerror(errno));
	else if ((rl = relay_open(&l, &pool, o, s, c, err, errsize,
	    pair_over, &over)) != NULL) {
		relay_opener(rl, opener, oarg);
		while (!over && !sig_quit) {
			if (sig_stats) {
				sig_stats = 0;
				relay_print_counters(c, s);
			}
			if (loop_once(&l) == -1) {
				relay_fail(rl, NULL, "epoll: %s",
				    strerror(errno));
				rl->abort = 1;
				break;
			}
		}
		status = relay_end(rl);
	}
	loop_free(&l);
	pool_free(&pool);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return status;
}

void
relay_print_counters(const struct counters c[2], const struct side s[2])
{
	int	 i;

	for (i = 0; i < 2; i++)
		logx("%s: %llu datagrams, %llu bytes, %llu oversize, "
		    "%llu send errors, %llu truncated, %llu other peer, "
		    "%llu unsent, %llu empty dropped, %llu dropped while down, "
		    "%llu stalled, %llu slow frames, %llu dropped by the kernel",
		    i ? "2>1" : "1>2",
		    (unsigned long long)c[i].dgrams,
		    (unsigned long long)c[i].bytes,
		    (unsigned long long)c[i].oversize,
		    (unsigned long long)c[i].senderr,
		    (unsigned long long)c[i].truncated,
		    (unsigned long long)c[i].otherpeer,
		    (unsigned long long)c[i].unsent,
		    (unsigned long long)c[i].empty,
		    (unsigned long long)c[i].down,
		    (unsigned long long)c[i].stalled,
		    (unsigned long long)c[i].slowframe,
		    (unsigned long long)c[i].kdrops);
	for (i = 0; s != NULL && i < 2; i++)
		if (s[i].rd != NULL)
			redial_print(&s[i]);
}
