/*
 * ring.c: a direction's queue and the memory under it.  The ring of -b
 * slots is borrowed from the pool (pool.c) while datagrams are in flight;
 * a datagram source receives straight into its slots, a stream source's
 * frames are cut in place from one buffer.  One of many sessions
 * (compact, multi) gives the ring back at the end of every turn: what is
 * still queued is copied into one block of its size (struct blk, shared
 * by its frames), an unfinished frame into a buffer of its bytes, and
 * every byte held between turns counts against the session's share.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgrelay.h"
#include "relay.h"

/*
 * f leaves the queue.  Held in a block: the block goes when its last
 * frame does, and a datagram source's entry is given a free slot of the
 * ring, if one is lent (see dir_hold).
 */
void
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

/*
 * The first queued datagram left dgrelay: delivered (dropped NULL), or
 * dropped and counted in *dropped.  Only a delivery counts as activity
 * for -t: bytes that trickle in without completing a datagram do not.
 */
void
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

void
pop_n(struct relay *rl, struct dir *d, unsigned k, uint64_t *dropped)
{
	while (k-- > 0)
		pop(rl, d, dropped);
}

/* Datagrams queued, not yet gone. */
uint64_t
queued(struct dir *d)
{
	uint64_t	 k = 0;
	unsigned	 i;

	for (i = 0; i < d->n; i++)
		k += qat(d, i)->nseg;
	return k - d->wseg;
}

/* ------------------------------------------------------------- buffers */

size_t
slot_size(const struct relay *rl)
{
	return rl->o->size + FRAME_HDR;
}

/* The pool's ring size: -b slots of -s + 2 bytes, and room for a frame's
 * wider header (frame=u32be) when a stream is read into it. */
size_t
relay_slab(const struct relay_opts *o)
{
	return o->count * (o->size + FRAME_HDR) + FRAME_WIDE - FRAME_HDR;
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

void
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
size_t
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
int
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
	d->fb.cap = relay_slab(rl->o);
	d->fb.rpos = 0;
	d->fb.wpos = k;
	return 0;
}

/* d's ring holds nothing queued, nor stream bytes: back to the pool. */
void
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
void
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
	[IO_MUX] = { mx_read, mx_write, st_cut },
};

/* The arrays of a call: made once for the process (control padding 0). */
int
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
void
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

void
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
	frame_buf_init(&d->fb, NULL, 0, o->size,
	    src->fhdr == FRAME_WIDE ? FRAME_WIDE : FRAME_HDR);
	d->whdr = dst->fhdr == FRAME_WIDE ? FRAME_WIDE : FRAME_HDR;
	if (!src->pending && !dst->pending)
		dir_sides(rl, d);
}

void
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
