/*
 * dgram.c: datagram I/O of a session: sockets by recvmmsg and sendmmsg,
 * with UDP_GRO (a coalesced run lies in one ring slot, cut where it is
 * written) and UDP_SEGMENT (runs of one size go as one send), control
 * messages (the reply source, the kernel's drop count), a peer adopted
 * by an unconnected source; and packets (a TUN device), one read or
 * write each.  multi.c receives for its sessions with its own recvmmsg.
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
void
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
size_t
dg_gro_size(struct msghdr *m)
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
void
dg_recv_slot(struct mmsghdr *m, struct iovec *iov, void *buf, size_t len,
    struct sockaddr_storage *from, void *ctl, size_t ctllen)
{
	struct msghdr	*h = &m->msg_hdr;

	iov->iov_base = buf;
	iov->iov_len = len;
	memset(h, 0, sizeof(*h));
	h->msg_iov = iov;
	h->msg_iovlen = 1;
	if (from != NULL) {
		h->msg_name = from;
		h->msg_namelen = sizeof(*from);
	}
	if (ctl != NULL) {
		h->msg_control = ctl;
		h->msg_controllen = ctllen;
	}
}

static void
dg_prepare(struct relay *rl, struct dir *d, unsigned k)
{
	unsigned	 i;
	int		 ctl = d->gro || d->src->pktinfo || d->ovfl;

	for (i = 0; i < k; i++)
		dg_recv_slot(&d->msg[i], &d->iov[i], qat(d, d->n + i)->p +
		    FRAME_HDR, rl->o->size, d->src->lockpeer ? &d->from[i] :
		    NULL, ctl ? d->ctl + i * CTL_SIZE : NULL, CTL_SIZE);
}

/*
 * Message i of a receive into ring entry f: one datagram, or a coalesced
 * run when UDP_GRO says so.
 */
static void
dg_entry(struct dir *d, unsigned i, struct frm *f)
{
	size_t	 len = d->msg[i].msg_len;
	size_t	 gso = d->gro ? dg_gro_size(&d->msg[i].msg_hdr) : 0;

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

void
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
void
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

/*
 * Lay the queued datagrams out as messages for one sendmmsg; d->mseg
 * says how many datagrams each carries.  A coalesced run goes whole as
 * one UDP_SEGMENT message when it may, else a message per datagram;
 * single datagrams of one size (the last of a run may be shorter) are
 * joined into one.  Returns the number of messages.
 */
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

void
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
void
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

int
set_gro(int fd, int on)
{
	return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on));
}

/* UDP_GRO on a UDP socket read in slots of size bytes, if they hold any
 * coalesced run: 1 on, 0 not. */
int
dg_gro_on(int fd, size_t size)
{
	return size >= GRO_MIN && udp_socket(fd) && set_gro(fd, 1) == 0;
}

/* fd is a UDP socket (and the kernel knows UDP_SEGMENT). */
int
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
