/*
 * stream.c: byte-stream I/O of a session: a source reads big chunks into
 * one buffer and frames are cut out of it in place (frame.c); a sink
 * gathers the queued frames, each a 2-byte length (4 with frame=u32be) and
 * its payload, into one writev.  TLS (tlsio.c) reads and writes through the same buffers.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"
#include "relay.h"

/* Cut the frames a stream source has buffered into the ring. */
void
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

size_t
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
int
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

void
st_read(struct relay *rl, struct dir *d)
{
	(void)st_fill(rl, d, fd_read);
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
 * Add one frame from its skip-th byte: with frame=u32be two zero bytes,
 * then the 2-byte header at hdr (a u32be length's low half: a datagram is
 * at most FRAME_MAX), then len bytes of payload at p.
 */
static void
iov_frame(struct dir *d, unsigned *n, uint8_t *hdr, uint8_t *p, size_t len,
    size_t skip)
{
	static uint8_t	 high[FRAME_WIDE - FRAME_HDR];	/* zeros */
	size_t		 wide = d->whdr - FRAME_HDR;

	if (skip < wide)
		iov_add(d->iov, n, high + skip, wide - skip);
	skip = skip > wide ? skip - wide : 0;
	if (skip < FRAME_HDR)
		iov_add(d->iov, n, hdr + skip, FRAME_HDR - skip);
	skip = skip > FRAME_HDR ? skip - FRAME_HDR : 0;
	iov_add(d->iov, n, p + skip, len - skip);
}

/*
 * Gather every queued frame into d->iov, from the first byte not yet
 * written; a coalesced run gets a header per datagram.  Returns the
 * number of iovecs; *total their bytes.
 */
unsigned
st_gather(struct dir *d, size_t *total)
{
	struct iovec	*iov = d->iov;
	struct frm	*f;
	size_t		 skip;
	unsigned	 i, j, niov = 0;

	for (i = 0; i < d->n && niov + 3 <= NVEC; i++) {
		f = qat(d, i);
		skip = i == 0 ? d->woff : 0;
		if (f->nseg == 1) {
			iov_frame(d, &niov, f->p, f->p + FRAME_HDR, f->len,
			    skip);
			continue;
		}
		for (j = i == 0 ? d->wseg : 0; j < f->nseg &&
		    niov + 3 <= NVEC; j++, skip = 0)
			iov_frame(d, &niov, j + 1 < f->nseg ? f->h : f->hl,
			    seg_at(f, j), seg_len(f, j), skip);
	}
	for (*total = 0, i = 0; i < niov; i++)
		*total += iov[i].iov_len;
	return niov;
}

/* A stream sink failed with e. */
void
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
void
st_written(struct relay *rl, struct dir *d, size_t r)
{
	size_t	 len;

	while (r > 0) {
		len = d->whdr + seg_len(qat(d, 0), d->wseg) - d->woff;
		if (r < len) {
			d->woff += r;	/* resume here, frame whole */
			break;
		}
		r -= len;
		pop(rl, d, NULL);
	}
}

void
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
