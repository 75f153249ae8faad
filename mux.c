/*
 * mux.c: yamux (hashicorp/yamux spec.md) carriers: many streams over one
 * connection.  A frame is a 12-byte big-endian header (version 0, type,
 * flags, stream ID, length) and, for Data, length bytes.  Types: Data,
 * Window Update, Ping, Go Away; flags SYN, ACK, FIN, RST.  Each stream
 * starts with a 256 KiB window each way; the side that dialled the
 * carrier opens odd stream IDs, the side that accepted it even ones.
 *
 * The protocol engine alone, driven by mux_input() and drained by
 * mux_output(), so that it can be fuzzed without sockets (carrier.c puts
 * it on a socket and the loop).  What a stream carries is the owner's (a
 * session's frames); the owner reads a stream's bytes with ms_read and
 * writes with ms_write or ms_writev, within the windows.
 *
 * Bounds: a carrier's received bytes for a stream are at most its
 * window (MUX_WINDOW; MUX_WINDOW_MAX once it is read, for at most
 * MUX_GROWN_MAX streams); a frame's payload at most MUX_WINDOW_MAX; its
 * queued output at most MUX_OUT_MAX (then the owner's writes wait,
 * ms_write returns 0); streams at most max_streams.
 */
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mux.h"

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------ output */

/* Room for n more bytes of output; -1 over the bound (or no memory). */
static int
out_room(struct mux *m, size_t n)
{
	uint8_t	*p;
	size_t	 cap;

	if (m->ooff > 0 && m->olen + n > m->ocap) {
		memmove(m->out, m->out + m->ooff, m->olen - m->ooff);
		m->olen -= m->ooff;
		m->ooff = 0;
	}
	if (m->olen + n <= m->ocap)
		return 0;
	if (m->olen + n > MUX_OUT_MAX + MUX_HDR * 4)
		return -1;
	cap = m->ocap ? m->ocap : 4096;
	while (cap < m->olen + n)
		cap *= 2;
	if ((p = realloc(m->out, cap)) == NULL)
		return -1;
	m->out = p;
	m->ocap = cap;
	return 0;
}

/* A header (and n bytes of payload at data) to send; -1: no room. */
static int
send_frame(struct mux *m, uint8_t type, uint16_t flags, uint32_t id,
    uint32_t len, const void *data, size_t n)
{
	uint8_t	*h;

	if (out_room(m, MUX_HDR + n) == -1)
		return -1;
	h = m->out + m->olen;
	h[0] = MUX_VERSION;
	h[1] = type;
	h[2] = (uint8_t)(flags >> 8);
	h[3] = (uint8_t)flags;
	put32(h + 4, id);
	put32(h + 8, len);
	if (n > 0)
		memcpy(h + MUX_HDR, data, n);
	m->olen += MUX_HDR + n;
	return 0;
}

const uint8_t *
mux_output(struct mux *m, size_t *n)
{
	*n = m->olen - m->ooff;
	return *n > 0 ? m->out + m->ooff : NULL;
}

void
mux_sent(struct mux *m, size_t n)
{
	m->ooff += n;
	if (m->ooff == m->olen)
		m->ooff = m->olen = 0;
}

/* ----------------------------------------------------------- streams */

/* Stream IDs come from the peer: a keyed hash, chained. */
static size_t
slot_of(const struct mux *m, uint32_t id)
{
	uint64_t	 h = (uint64_t)id * 0x9e3779b97f4a7c15ULL ^ m->salt;

	h ^= h >> 29;
	return (size_t)(h & (MUX_BUCKETS - 1));
}

static struct mstream *
find(const struct mux *m, uint32_t id)
{
	struct mstream	*s;

	for (s = m->bucket[slot_of(m, id)]; s != NULL; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

static struct mstream *
stream_new(struct mux *m, uint32_t id)
{
	struct mstream	*s;
	size_t		 b = slot_of(m, id);

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->m = m;
	s->id = id;
	s->sendwin = MUX_WINDOW;
	s->recvwin = MUX_WINDOW;
	s->hnext = m->bucket[b];
	m->bucket[b] = s;
	m->nstreams++;
	return s;
}

static void
stream_unlink(struct mstream *s)
{
	struct mux	 *m = s->m;
	struct mstream	**pp;

	for (pp = &m->bucket[slot_of(m, s->id)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			m->nstreams--;
			if (s->grown)
				m->ngrown--;
			break;
		}
}

static void
stream_free(struct mstream *s)
{
	free(s->rbuf);
	free(s);
}

/* Both halves closed, or reset: the stream is gone once its owner let go. */
static void
stream_done(struct mstream *s)
{
	if (s->gone)
		return;
	s->gone = 1;
	stream_unlink(s);
	if (s->released)
		stream_free(s);
}

/* ------------------------------------------------------------- input */

/* A protocol fault: Go Away (protocol error), said once; the carrier
 * is over. */
static int
fault(struct mux *m, const char *why)
{
	if (m->failed)
		return -1;
	m->failed = 1;
	strncpy(m->why, why, sizeof(m->why) - 1);
	(void)send_frame(m, MUX_GOAWAY, 0, 0, MUX_GOAWAY_PROTO, NULL, 0);
	return -1;
}

/* SYN for id from the peer: a new stream, if its parity and state allow. */
static struct mstream *
incoming(struct mux *m, uint32_t id)
{
	struct mstream	*s;

	if (id == 0 || (id & 1) != (m->dialer ? 0u : 1u)) {
		fault(m, "a stream ID of the wrong parity");
		return NULL;
	}
	if (find(m, id) != NULL) {
		fault(m, "a stream ID opened twice");
		return NULL;
	}
	if (m->goaway_sent || m->nstreams >= m->max_streams ||
	    (s = stream_new(m, id)) == NULL) {
		/* refused: RST, the carrier goes on */
		m->refused++;
		(void)send_frame(m, MUX_WINDOW_UPDATE, MUX_RST, id, 0, NULL,
		    0);
		return NULL;
	}
	s->acked = 1;		/* our ACK goes with the first update */
	s->needack = 1;
	m->accepted++;
	if (m->on_accept != NULL)
		m->on_accept(m->arg, s);
	return s;
}

static void
flags_in(struct mstream *s, uint16_t flags)
{
	if (flags & MUX_ACK)
		s->acked = 1;
	if (flags & MUX_FIN)
		s->rfin = 1;
	if (flags & MUX_RST)
		s->rst = 1;
	if (s->rst || (s->rfin && s->lfin)) {
		if (s->m->on_event != NULL && !s->released)
			s->m->on_event(s->m->arg, s);
		stream_done(s);
	} else if ((flags & (MUX_FIN | MUX_ACK)) && s->m->on_event != NULL)
		s->m->on_event(s->m->arg, s);
}

/* One whole frame: header h, payload p (Data). 0, or -1: a fault. */
static int
frame_in(struct mux *m, const uint8_t *h, const uint8_t *p)
{
	uint16_t	 flags = (uint16_t)(h[2] << 8 | h[3]);
	uint32_t	 id = get32(h + 4), len = get32(h + 8);
	struct mstream	*s = NULL;
	uint8_t		*nb;

	switch (h[1]) {
	case MUX_PING:
		if (id != 0)
			return fault(m, "a ping on a stream");
		if (flags & MUX_SYN)
			return send_frame(m, MUX_PING, MUX_ACK, 0, len, NULL,
			    0) == -1 ? fault(m, "output full") : 0;
		if ((flags & MUX_ACK) && m->ping_out && len == m->ping_id)
			m->ping_out = 0;
		return 0;
	case MUX_GOAWAY:
		if (id != 0)
			return fault(m, "a go away on a stream");
		m->goaway_recv = 1;
		m->goaway_code = len;
		return 0;
	case MUX_DATA:
	case MUX_WINDOW_UPDATE:
		break;
	default:
		return fault(m, "an unknown frame type");
	}
	if (id == 0)
		return fault(m, "a stream frame on stream 0");
	if ((flags & MUX_SYN) && (s = incoming(m, id)) == NULL)
		return m->failed ? -1 : 0;
	if (s == NULL && (s = find(m, id)) == NULL)
		return 0;	/* a stream already closed: late, dropped */
	if (h[1] == MUX_WINDOW_UPDATE) {
		if ((uint64_t)s->sendwin + len > UINT32_MAX)
			return fault(m, "a window over 4 GiB");
		s->sendwin += len;
		if (len > 0 && m->on_event != NULL)
			m->on_event(m->arg, s);
	} else if (len > 0) {
		if (len > s->recvwin)
			return fault(m, "data beyond the window");
		if (s->rfin)
			return fault(m, "data after FIN");
		s->recvwin -= len;
		if (s->released || s->rst) {
			s->unread += len;	/* nobody reads: dropped, and
						 * the window given back */
		} else {
			if (s->rlen + len > s->rcap) {
				if ((nb = realloc(s->rbuf, s->rlen + len)) ==
				    NULL)
					return fault(m, "out of memory");
				s->rbuf = nb;
				s->rcap = s->rlen + len;
			}
			memcpy(s->rbuf + s->rlen, p, len);
			s->rlen += len;
			if (m->on_event != NULL)
				m->on_event(m->arg, s);
		}
	}
	if (flags & ~(MUX_SYN | MUX_ACK | MUX_FIN | MUX_RST))
		return fault(m, "an unknown flag");
	flags_in(s, flags & ~MUX_SYN);
	return 0;
}

/*
 * n bytes of the carrier's input: whole frames handled, a partial one
 * kept (its header in m->hdr, its payload in m->pay).  Returns how many
 * were taken (all, unless the carrier failed: then -1).
 */
ssize_t
mux_input(struct mux *m, const uint8_t *in, size_t n)
{
	size_t	 k, used = 0;
	uint32_t len;
	uint8_t	*p;

	while (used < n && !m->failed) {
		if (m->hlen < MUX_HDR) {
			k = MUX_HDR - m->hlen;
			if (k > n - used)
				k = n - used;
			memcpy(m->hdr + m->hlen, in + used, k);
			m->hlen += k;
			used += k;
			if (m->hlen < MUX_HDR)
				break;
			if (m->hdr[0] != MUX_VERSION)
				return fault(m, "a bad version");
			len = get32(m->hdr + 8);
			m->plen = 0;
			if (m->hdr[1] == MUX_DATA) {
				if (len > MUX_WINDOW_MAX)
					return fault(m, "a frame longer than "
					    "any window");
				m->pneed = len;
			} else
				m->pneed = 0;
		}
		if (m->plen == 0 && m->pneed > 0 && n - used >= m->pneed) {
			/* the whole payload is here: no copy */
			m->hlen = 0;
			used += m->pneed;
			if (frame_in(m, m->hdr, in + used - m->pneed) == -1)
				return -1;
			continue;
		}
		if (m->pcap < m->pneed) {	/* (bounded by the check
						 * above) */
			if ((p = realloc(m->pay, m->pneed)) == NULL)
				return fault(m, "no memory for a frame");
			m->pay = p;
			m->pcap = m->pneed;
		}
		if (m->plen < m->pneed) {
			k = m->pneed - m->plen;
			if (k > n - used)
				k = n - used;
			memcpy(m->pay + m->plen, in + used, k);
			m->plen += k;
			used += k;
			if (m->plen < m->pneed)
				break;
		}
		m->hlen = 0;
		if (frame_in(m, m->hdr, m->pay) == -1)
			return -1;
	}
	return m->failed ? -1 : (ssize_t)used;
}

/* ------------------------------------------------------ the owner's */

int
mux_init(struct mux *m, int dialer, size_t max_streams, uint64_t salt)
{
	memset(m, 0, sizeof(*m));
	m->dialer = dialer;
	m->next_id = dialer ? 1 : 2;
	m->max_streams = max_streams;
	m->salt = salt;
	return 0;
}

void
mux_free(struct mux *m)
{
	struct mstream	*s, *next;
	size_t		 i;

	/* what is still in the table goes: an owner lets go of its
	 * streams first (ms_release), or never looks at them again */
	for (i = 0; i < MUX_BUCKETS; i++)
		for (s = m->bucket[i]; s != NULL; s = next) {
			next = s->hnext;
			stream_free(s);
		}
	free(m->out);
	free(m->pay);
	memset(m->bucket, 0, sizeof(m->bucket));
}

struct mstream *
mux_open(struct mux *m)
{
	struct mstream	*s;

	if (m->failed || m->goaway_recv || m->goaway_sent ||
	    m->nstreams >= m->max_streams || m->next_id > UINT32_MAX - 2) {
		errno = EAGAIN;
		return NULL;
	}
	if ((s = stream_new(m, m->next_id)) == NULL)
		return NULL;
	if (send_frame(m, MUX_WINDOW_UPDATE, MUX_SYN, s->id, 0, NULL, 0) ==
	    -1) {
		stream_unlink(s);
		stream_free(s);
		errno = ENOBUFS;
		return NULL;
	}
	m->next_id += 2;
	m->opened++;
	return s;
}

int
mux_ping(struct mux *m)
{
	if (m->ping_out)
		return 1;		/* the last one is unanswered */
	m->ping_id++;
	m->ping_out = 1;
	return send_frame(m, MUX_PING, MUX_SYN, 0, m->ping_id, NULL, 0);
}

int
mux_goaway(struct mux *m)
{
	if (m->goaway_sent)
		return 0;
	m->goaway_sent = 1;
	return send_frame(m, MUX_GOAWAY, 0, 0, MUX_GOAWAY_NORMAL, NULL, 0);
}

/* The ACK a stream we accepted owes, on whatever goes first. */
static uint16_t
owed(struct mstream *s)
{
	if (!s->needack)
		return 0;
	s->needack = 0;
	return MUX_ACK;
}

size_t
ms_room(const struct mstream *s)
{
	const struct mux *m = s->m;
	size_t		 queued, room = s->sendwin;

	if (s->gone || s->rst || s->lfin || m->failed)
		return 0;		/* (a gone stream's carrier may be too) */
	if ((queued = m->olen - m->ooff) >= MUX_OUT_MAX)
		return 0;
	return room < MUX_OUT_MAX - queued ? room : MUX_OUT_MAX - queued;
}

int
ms_readable(const struct mstream *s)
{
	return s->rlen > 0 || s->rfin || s->rst || s->gone;
}

/*
 * The window back, in steps of an eighth of it (Go's yamux waits for
 * half: then only half a window may be in flight).  A stream that is read
 * (a flow, not one query) gets a window of MUX_WINDOW_MAX, as TCP's
 * receive buffer grows: a relay that is not scheduled for a few ms does
 * not stop a fast flow.  At most MUX_GROWN_MAX streams of a carrier have
 * it.  An update the full output could not take goes at the next read,
 * even one that finds nothing (the peer may be waiting for it).
 */
static void
grant_back(struct mstream *s)
{
	struct mux	*m = s->m;
	uint32_t	 grant = (uint32_t)s->unread, extra;

	extra = !s->grown && m->ngrown < MUX_GROWN_MAX ?
	    MUX_WINDOW_MAX - MUX_WINDOW : 0;
	if (grant < MUX_WINDOW / 8 || s->gone ||
	    send_frame(m, MUX_WINDOW_UPDATE, owed(s), s->id, grant + extra,
	    NULL, 0) == -1)
		return;
	s->recvwin += grant + extra;
	s->unread = 0;
	if (extra > 0) {
		s->grown = 1;
		m->ngrown++;
	}
}

ssize_t
ms_read(struct mstream *s, void *buf, size_t n)
{
	if (s->rlen == 0) {
		if (s->rst || (s->gone && !s->rfin)) {
			errno = ECONNRESET;	/* reset, or its carrier lost */
			return -1;
		}
		if (s->rfin)
			return 0;
		grant_back(s);
		errno = EAGAIN;
		return -1;
	}
	if (n > s->rlen)
		n = s->rlen;
	memcpy(buf, s->rbuf, n);
	memmove(s->rbuf, s->rbuf + n, s->rlen - n);
	s->rlen -= n;
	s->unread += n;
	if (s->rlen == 0) {	/* an idle stream holds no buffer */
		free(s->rbuf);
		s->rbuf = NULL;
		s->rcap = 0;
	}
	grant_back(s);
	return (ssize_t)n;
}

ssize_t
ms_write(struct mstream *s, const void *buf, size_t n)
{
	struct mux	*m = s->m;
	size_t		 room;

	if (s->gone || s->rst || s->lfin || m->failed) {
		errno = EPIPE;
		return -1;
	}
	room = s->sendwin;
	if (m->olen - m->ooff >= MUX_OUT_MAX)
		room = 0;
	else if (room > MUX_OUT_MAX - (m->olen - m->ooff))
		room = MUX_OUT_MAX - (m->olen - m->ooff);
	if (n > room)
		n = room;
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (send_frame(m, MUX_DATA, owed(s), s->id, (uint32_t)n, buf, n) ==
	    -1) {
		errno = EAGAIN;
		return -1;
	}
	s->sendwin -= (uint32_t)n;
	return (ssize_t)n;
}

ssize_t
ms_writev(struct mstream *s, const struct iovec *iov, int niov)
{
	struct mux	*m = s->m;
	size_t		 room, n = 0, k;
	uint8_t		*p;
	int		 i;

	if (s->gone || s->rst || s->lfin || m->failed) {
		errno = EPIPE;
		return -1;
	}
	room = ms_room(s);
	for (i = 0; i < niov && n < room; i++)
		n += iov[i].iov_len < room - n ? iov[i].iov_len : room - n;
	if (room < s->sendwin && (i < niov || n < room ||
	    (niov > 0 && n == 0)))
		m->outwait = 1;	/* short for the output's bound: the owner
				 * is told when there is room again */
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	/* one Data frame of the gathered bytes: room for all first */
	if (out_room(m, MUX_HDR + n) == -1 ||
	    send_frame(m, MUX_DATA, owed(s), s->id, (uint32_t)n, NULL, 0) ==
	    -1) {
		errno = EAGAIN;
		return -1;
	}
	p = m->out + m->olen;
	for (i = 0, k = 0; i < niov && k < n; i++) {
		size_t	 c = iov[i].iov_len < n - k ? iov[i].iov_len : n - k;

		memcpy(p + k, iov[i].iov_base, c);
		k += c;
	}
	m->olen += n;
	s->sendwin -= (uint32_t)n;
	return (ssize_t)n;
}

int
ms_close(struct mstream *s)
{
	if (s->gone || s->lfin || s->rst)
		return 0;
	s->lfin = 1;
	if (send_frame(s->m, MUX_WINDOW_UPDATE, owed(s) | MUX_FIN, s->id, 0,
	    NULL, 0) == -1)
		return -1;
	if (s->rfin)
		stream_done(s);
	return 0;
}

void
ms_release(struct mstream *s, int reset)
{
	if (s->released)
		return;
	if (!s->gone && (reset || !s->lfin) && !s->rst)
		(void)send_frame(s->m, MUX_WINDOW_UPDATE, MUX_RST, s->id, 0,
		    NULL, 0);
	s->released = 1;
	free(s->rbuf);
	s->rbuf = NULL;
	s->rlen = s->rcap = 0;
	if (!s->gone) {
		s->gone = 1;
		stream_unlink(s);
	}
	stream_free(s);
}
