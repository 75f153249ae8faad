/*
 * libFuzzer target for relay.c itself: the real loop (loop.c), a stream
 * source, and a datagram or stream sink, with the system calls the loop
 * makes replaced (at compile time, -Dread=fz_read and so on: see the
 * Makefile) by fakes that play out the fuzz input:
 *
 *   bytes 0-1	-s (1..65535)		byte 2	-b (1..64); its top bit: two
 *		sessions on one loop and pool, each playing the same script
 *		with a sink of its own behaviour, as multi runs them (held
 *		bytes between turns, a ring only for a turn) in a pool so
 *		small that each gets less than its ring as its share
 *   byte 3	bit 0: stream sink (else datagram); bit 1: the sink is UDP
 *		(UDP_SEGMENT allowed), or a stream sink's frames are u32be
 *		(frame=u32be: two zero bytes before each 2-byte length); bit 2: UDP_SEGMENT refused above the
 *		segment size in bytes 4-5 (EMSGSIZE); bit 3: the datagram
 *		sink now and then says ENOBUFS (the datagrams of that message
 *		are dropped, and must be counted as send errors); bits 4-6:
 *		seed of the sink's behaviour (short writes, EAGAIN, partial
 *		sendmmsg); bit 7: the source reconnects (retry=1, redial.c):
 *		a chunk byte 0xff is its connection lost (a reset or an eof),
 *		then connected again (at once, or after an attempt under
 *		way), and the end of the input is its last loss, after which
 *		the attempt fails and the relay ends
 *   bytes 4-5	that segment size
 *   then	chunks: a length byte L (L < 0xf0: L + 1 bytes; else
 *		(L - 0xef) * 4096), then that many bytes of the stream; each
 *		chunk is handed out by reads of at most its length.
 *
 * What the sink got (and what it dropped) must be exactly the frames of
 * the stream that fit -s, in order, byte for byte (a UDP_SEGMENT message
 * split as the kernel would); the counters must add up (relayed, bytes,
 * oversize, truncated, nothing unsent), and the exit status must say
 * whether the stream ended inside a frame.  With reconnects, each
 * connection's bytes are framed afresh: a frame cut by a loss is counted
 * truncated and never joined to the next connection's bytes; the sink has
 * a prefix of the frames, the rest counted unsent at the end.  Time is
 * the fake clock's (a wait with nothing ready moves it on).  A loop that
 * would wait forever, or spin, aborts.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", \
	__FILE__, __LINE__, #c); abort(); } } while (0)

#define SRC_FD	1000001		/* never a real descriptor; a second */
#define DST_FD	1000002		/* session's are 10 more */
#define PLAYS	2

static struct timespec P_now;

struct proc_figures procfig;		/* counters.c's, which is not here */

void
logx(const char *fmt, ...)
{
	(void)fmt;
}

void
logerr(const char *fmt, ...)
{
	(void)fmt;
}

int
log_due(time_t *last)
{
	(void)last;
	return 1;
}

/* The fake clock: a wait moves it on by its timeout when nothing is ready. */
int
fz_clock_gettime(clockid_t id, struct timespec *ts)
{
	(void)id;
	*ts = P_now;
	return 0;
}

/* redial.c's jitter, from the play's own generator */
static unsigned	 rnd(unsigned);

uint32_t
fz_arc4random_uniform(uint32_t n)
{
	return n > 1 ? rnd(n) : 0;
}

/* adopt() needs it; a stream source never adopts a peer */
void
sock_ntop(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size)
{
	(void)sa; (void)len; (void)buf; (void)size;
	abort();
}

/* likewise: only a udp-listen source that adopts a peer asks */
int
sock_reply_source(struct side *s, struct msghdr *h)
{
	(void)s; (void)h;
	abort();
}

/* likewise: only a datagram source reads control messages */
const void *
sock_cmsg(struct msghdr *m, int level, int type, size_t len)
{
	(void)m; (void)level; (void)type; (void)len;
	abort();
}

/* likewise: only a datagram source counts the kernel's drops */
int
sock_want_drops(int fd)
{
	(void)fd;
	abort();
}

void
sock_drops(struct msghdr *m, uint64_t *drops)
{
	(void)m; (void)drops;
	abort();
}

/* ------------------------------------------------------------ the play */

/* One session's play: its source's script, its sink's behaviour. */
struct play {
	int		 src, dst;	/* its descriptors */
	struct side	 s[2];
	struct counters	 c[2];
	struct addr	 a;		/* retry: the source's address */
	char		 err[256];
	int		 over;
	int		 wide;		/* a stream sink with frame=u32be */
	const uint8_t	*in;		/* the chunk script */
	size_t		 inlen, inpos;
	size_t		 chunk_left;	/* bytes of the current chunk */
	uint8_t		*stream;	/* every byte handed out, in order */
	size_t		 slen;
	int		 eof_given;
	int		 udp, refuse, nobufs;
	size_t		 refuse_above;
	uint64_t	 rng;
	int		 last_eagain;
	/* retry: the source's connections */
	int		 retry, up, lost, dialing;
	size_t		 cuts[4096];	/* stream offsets where one ended */
	size_t		 ncuts;
	/* what the sink got */
	uint8_t		*out;		/* stream sink: bytes; datagram sink: */
	size_t		 olen, ocap;	/* datagrams as frames, the same */
};

static struct play	 plays[PLAYS], *cur = &plays[0];
static int		 nplays;
static unsigned long	 polls, limit;

#define P	(*cur)

/* The play of descriptor fd, made the current one. */
static struct play *
play_fd(int fd)
{
	int	 i;

	for (i = 0; i < nplays; i++)
		if (fd == plays[i].src || fd == plays[i].dst)
			return cur = &plays[i];
	CHECK(!"a descriptor of no play");
	return NULL;
}

/* The play of side s. */
static struct play *
play_side(const struct side *s)
{
	int	 i;

	for (i = 0; i < nplays; i++)
		if (s == &plays[i].s[0] || s == &plays[i].s[1])
			return cur = &plays[i];
	CHECK(!"a side of no play");
	return NULL;
}

static unsigned
rnd(unsigned n)
{
	P.rng = P.rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(P.rng >> 33) % n;
}

static void
out_add(const void *p, size_t n)
{
	if (P.olen + n > P.ocap) {
		P.ocap = (P.olen + n) * 2 + 1024;
		P.out = realloc(P.out, P.ocap);
		CHECK(P.out != NULL);
	}
	memcpy(P.out + P.olen, p, n);
	P.olen += n;
}

/*
 * A datagram reached the sink, or was dropped there: kept as a frame after
 * a tag byte (1: delivered, 0: dropped), to compare with the stream.
 */
static void
out_dgram(const uint8_t *p, size_t n, int delivered)
{
	uint8_t	 h[3] = { (uint8_t)delivered, (uint8_t)(n >> 8), (uint8_t)n };

	CHECK(n <= FRAME_MAX);
	out_add(h, 3);
	out_add(p, n);
}

/* The source's connection ends here: an eof or a reset. */
static ssize_t
lose_source(void)
{
	P.up = 0;
	P.cuts[P.ncuts++] = P.slen;
	if (rnd(2) == 0)
		return 0;
	errno = ECONNRESET;
	return -1;
}

/* redial.c's reasons, as sock.c writes them */
int
side_fail(struct side *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* redial.c connects the source: at once, or after an attempt under way;
 * once the input is used up, the attempt fails. */
int
sock_dial(const struct addr *a, struct side *s)
{
	(void)a;
	play_side(s);
	CHECK(P.retry && !P.up && !P.dialing && s->rfd == -1);
	if (P.eof_given) {
		snprintf(s->err, sizeof(s->err), "connect: no more input");
		return -1;
	}
	s->rfd = s->wfd = P.src;
	if (rnd(2) == 0) {
		P.dialing = 1;
		return 1;
	}
	P.up = 1;
	return 0;
}

int
sock_dial_end(const struct addr *a, struct side *s)
{
	(void)a;
	play_side(s);
	CHECK(P.dialing && s->rfd == P.src);
	P.dialing = 0;
	P.up = 1;
	return 0;
}

void
sock_hangup(const struct addr *a, struct side *s)
{
	(void)a;
	play_side(s);
	CHECK(!P.up);
	s->rfd = s->wfd = -1;
}

ssize_t
fz_read(int fd, void *buf, size_t n)
{
	size_t	 len;
	uint8_t	 l;

	CHECK(play_fd(fd) != NULL && fd == P.src);
	CHECK(n > 0);
	CHECK(!P.retry || P.up);		/* never read a lost one */
	while (P.chunk_left == 0) {
		if (P.inpos >= P.inlen) {
			P.eof_given++;
			CHECK(P.eof_given == 1);	/* read again after eof */
			if (P.retry)
				return lose_source();
			return 0;
		}
		l = P.in[P.inpos++];
		if (P.retry && l == 0xff && P.ncuts + 1 < 4096)
			return lose_source();
		P.chunk_left = l < 0xf0 ? (size_t)l + 1 :
		    (size_t)(l - 0xef) * 4096;
		if (P.chunk_left > P.inlen - P.inpos)
			P.chunk_left = P.inlen - P.inpos;
	}
	len = n < P.chunk_left ? n : P.chunk_left;
	memcpy(buf, P.in + P.inpos, len);
	memcpy(P.stream + P.slen, P.in + P.inpos, len);
	P.slen += len;
	P.inpos += len;
	P.chunk_left -= len;
	return (ssize_t)len;
}

static int
eagain(void)
{
	if (!P.last_eagain && rnd(4) == 0) {
		P.last_eagain = 1;
		errno = EAGAIN;
		return 1;
	}
	P.last_eagain = 0;
	return 0;
}

ssize_t
fz_writev(int fd, const struct iovec *iov, int n)
{
	size_t	 total = 0, take, k;
	int	 i;

	CHECK(play_fd(fd) != NULL && fd == P.dst);
	CHECK(n > 0 && n <= 1024);
	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	CHECK(total > 0);
	if (eagain())
		return -1;
	take = rnd(3) == 0 ? 1 + rnd((unsigned)total) : total;
	for (i = 0, k = take; k > 0; i++) {
		size_t	 m = iov[i].iov_len < k ? iov[i].iov_len : k;

		out_add(iov[i].iov_base, m);
		k -= m;
	}
	return (ssize_t)take;
}

/* The UDP_SEGMENT size of a message, 0 for none. */
static size_t
gso_of(const struct msghdr *h)
{
	struct cmsghdr	*c;
	uint16_t	 v;

	if (h->msg_controllen == 0)
		return 0;
	CHECK(P.udp);
	c = CMSG_FIRSTHDR((struct msghdr *)h);
	CHECK(c != NULL && c->cmsg_level == SOL_UDP &&
	    c->cmsg_type == UDP_SEGMENT);
	memcpy(&v, CMSG_DATA(c), sizeof(v));
	CHECK(v > 0);
	return v;
}

int
fz_sendmmsg(int fd, struct mmsghdr *m, unsigned n, int flags)
{
	static uint8_t	 buf[65536];
	unsigned	 i, take, j;
	size_t		 len, seg, off;
	const struct msghdr *h;
	int		 nobufs = 0;

	(void)flags;
	CHECK(play_fd(fd) != NULL && fd == P.dst);
	CHECK(n > 0 && n <= 1024);
	if (eagain())
		return -1;
	take = rnd(3) == 0 ? 1 + rnd(n) : n;
	for (i = 0; i < take; i++) {
		h = &m[i].msg_hdr;
		seg = gso_of(h);
		if (seg > 0 && P.refuse && seg > P.refuse_above) {
			if (i == 0) {
				errno = EMSGSIZE;
				return -1;
			}
			return (int)i;
		}
		if (P.nobufs && rnd(8) == 0) {
			if (i > 0)
				return (int)i;
			nobufs = 1;	/* this one is dropped: the relay must
					 * count it and go on */
		}
		for (len = 0, j = 0; j < h->msg_iovlen; j++) {
			CHECK(len + h->msg_iov[j].iov_len <= sizeof(buf));
			memcpy(buf + len, h->msg_iov[j].iov_base,
			    h->msg_iov[j].iov_len);
			len += h->msg_iov[j].iov_len;
		}
		if (seg == 0)
			out_dgram(buf, len, !nobufs);
		else {
			/* the kernel's rules: at most 64 segments, 65507
			 * bytes */
			CHECK(len > 0 && len <= 65507 &&
			    (len + seg - 1) / seg <= 64);
			for (off = 0; off < len; off += seg)
				out_dgram(buf + off, len - off < seg ?
				    len - off : seg, !nobufs);
		}
		if (nobufs) {
			errno = ENOBUFS;
			return -1;
		}
		m[i].msg_len = (unsigned)len;
	}
	return (int)take;
}

/*
 * The loop's epoll, played: every descriptor registered is ready for what
 * it is registered for (the sink's behaviour comes from its own fakes);
 * with nothing ready, the wait times out at once and moves the clock on.
 */
#define EP_FD	1000003

#define EP_MAX	(4 * PLAYS)

static struct {
	int		 fd;
	uint32_t	 events;
	uint64_t	 data;
} ep[EP_MAX];

int
fz_epoll_create1(int flags)
{
	(void)flags;
	memset(ep, 0, sizeof(ep));
	return EP_FD;
}

int
fz_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	unsigned	 i, free_i = EP_MAX;

	CHECK(epfd == EP_FD && play_fd(fd) != NULL);
	for (i = 0; i < EP_MAX; i++) {
		if (ep[i].fd == fd)
			break;
		if (ep[i].fd == 0 && free_i == EP_MAX)
			free_i = i;
	}
	if (op == EPOLL_CTL_ADD) {
		CHECK(i == EP_MAX && free_i < EP_MAX);	/* not there yet */
		ep[free_i].fd = fd;
		ep[free_i].events = ev->events;
		ep[free_i].data = ev->data.u64;
		return 0;
	}
	if (i == EP_MAX) {
		errno = ENOENT;
		return -1;
	}
	if (op == EPOLL_CTL_DEL)
		ep[i].fd = 0;
	else {
		ep[i].events = ev->events;
		ep[i].data = ev->data.u64;
	}
	return 0;
}

int
fz_epoll_pwait(int epfd, struct epoll_event *ev, int max, int ms,
    const sigset_t *mask)
{
	int	 i, n = 0;

	(void)mask;
	CHECK(epfd == EP_FD);
	CHECK(++polls < limit);		/* spinning */
	for (i = 0; i < EP_MAX && n < max; i++) {
		if (ep[i].fd == 0 || !(ep[i].events & (EPOLLIN | EPOLLOUT)))
			continue;
		ev[n].events = ep[i].events & (EPOLLIN | EPOLLOUT);
		ev[n++].data.u64 = ep[i].data;
	}
	CHECK(n > 0 || ms >= 0);	/* would wait forever */
	if (n == 0) {
		P_now.tv_sec += ms / 1000;
		P_now.tv_nsec += (ms % 1000) * 1000000L;
		if (P_now.tv_nsec >= 1000000000L) {
			P_now.tv_sec++;
			P_now.tv_nsec -= 1000000000L;
		}
	}
	return n;
}

int
fz_getsockopt(int fd, int level, int name, void *v, socklen_t *len)
{
	(void)len;
	play_fd(fd);
	if (fd == P.dst && P.udp && level == SOL_SOCKET &&
	    name == SO_PROTOCOL) {
		*(int *)v = IPPROTO_UDP;
		return 0;
	}
	if (fd == P.dst && P.udp && level == SOL_UDP && name == UDP_SEGMENT) {
		*(int *)v = 0;
		return 0;
	}
	errno = ENOPROTOOPT;
	return -1;
}

int
fz_setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
	(void)fd; (void)level; (void)name; (void)v; (void)len;
	errno = ENOPROTOOPT;
	return -1;
}

int
fz_shutdown(int fd, int how)
{
	CHECK(play_fd(fd) != NULL && fd == P.dst && how == SHUT_WR);
	return 0;
}

/* ------------------------------------------------------- the reference */

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
play_over(struct relay *rl, void *arg)
{
	(void)rl;
	((struct play *)arg)->over = 1;
}

/* Play k's session on loop l: the stream source, the sink, retry. */
static void
play_setup(int k, const uint8_t *data, size_t size, int stream_sink)
{
	struct play	*p = &plays[k];

	memset(p, 0, sizeof(*p));
	p->src = SRC_FD + 10 * k;
	p->dst = DST_FD + 10 * k;
	p->udp = !stream_sink && (data[3] & 2);
	p->wide = stream_sink && (data[3] & 2);
	p->refuse = (data[3] & 4) != 0;
	p->nobufs = !stream_sink && (data[3] & 8);
	p->refuse_above = (size_t)data[4] << 8 | data[5];
	p->rng = ((data[3] >> 4) & 7) ^ (uint64_t)(5 * k);
	p->retry = (data[3] & 0x80) != 0;
	p->in = data + 6;
	p->inlen = size - 6;
	p->stream = malloc(p->inlen + 1);
	CHECK(p->stream != NULL);
	/* a reconnect takes a few turns, a wait for its attempt included */
	limit += 64 + 16 * (unsigned long)p->inlen;
	p->s[0].rfd = p->s[0].wfd = p->src;
	p->s[0].io = IO_STREAM;
	p->s[0].rflags = p->s[0].wflags = -1;
	p->s[0].name = "src";
	p->s[1].rfd = p->s[1].wfd = p->dst;
	p->s[1].io = stream_sink ? IO_STREAM : IO_DGRAM;
	p->s[1].fhdr = p->wide ? FRAME_WIDE : FRAME_HDR;
	p->s[1].wsock = 1;
	p->s[1].rflags = p->s[1].wflags = -1;
	p->s[1].name = "dst";
	if (p->retry) {
		p->a.retry = 1;
		p->a.interval_ms = 1 + data[2] % 3;
		p->a.spec = "src";
		p->s[0].rfd = p->s[0].wfd = -1;
		redial_init(&p->a, &p->s[0], 0);
	}
}

/* What play p's sink got, against a plain walk over what it read. */
static void
play_check(struct play *p, size_t max, int stream_sink, int status)
{
	size_t	 pos, len, nf = 0, skips = 0, bytes = 0, outpos = 0;
	size_t	 dropped = 0, hl, end, cut = 0, frames = 0, unsent = 0;
	int	 partial = 0;

	cur = p;
	/* every byte of the input was read, then one end of file */
	CHECK(P.eof_given == 1 && P.inpos == P.inlen);
	if (!P.retry)
		P.cuts[P.ncuts++] = P.slen;
	CHECK(P.ncuts > 0 && P.cuts[P.ncuts - 1] == P.slen);
	/* connection by connection (a frame is never joined across two) */
	for (pos = 0; pos < P.slen || cut < P.ncuts;) {
		end = P.cuts[cut];
		if (pos == end) {
			cut++;
			continue;
		}
		if (end - pos < 2) {
			partial++;
			pos = end;
			continue;
		}
		len = (size_t)P.stream[pos] << 8 | P.stream[pos + 1];
		if (len > max)
			skips++;
		if (end - pos - 2 < len) {
			partial++;
			pos = end;
			continue;
		}
		if (len <= max)
			frames++;
		if (len <= max && outpos < P.olen) {
			/* the sink has this frame next, byte for byte (a
			 * datagram sink: after its tag, delivered or not) */
			hl = stream_sink ? 0 : 1;
			if (P.wide) {
				CHECK(outpos + 2 <= P.olen &&
				    P.out[outpos] == 0 && P.out[outpos + 1] == 0);
				hl = 2;
			}
			CHECK(outpos + hl + 2 + len <= P.olen);
			CHECK(memcmp(P.out + outpos + hl, P.stream + pos,
			    2 + len) == 0);
			if (hl == 1 && P.out[outpos] == 0)
				dropped++;
			else {
				nf++;
				bytes += len;
			}
			outpos += hl + 2 + len;
		}
		else if (len <= max)
			unsent++;	/* retry: still queued at the end */
		pos += 2 + len;
	}
	CHECK(outpos == P.olen);		/* and nothing else */
	CHECK(P.c[0].dgrams == nf);
	CHECK(P.c[0].bytes == bytes);
	CHECK(P.c[0].truncated == (uint64_t)partial);
	CHECK(P.c[0].senderr == dropped);
	CHECK(P.c[0].otherpeer == 0 && P.c[0].down == 0);
	CHECK(nf + dropped + P.c[0].unsent == frames);
	if (P.retry) {
		/* the last loss is not dialled back: the relay ends at once,
		 * what it held counted unsent (an oversize frame it had not
		 * cut yet is not counted at all) */
		CHECK(P.c[0].unsent == unsent);
		CHECK(P.c[0].oversize <= skips);
		CHECK(status == 1 && strstr(P.err,
		    "src: connect: no more input (1 attempt)") != NULL);
	} else {
		CHECK(unsent == 0 && P.c[0].unsent == 0);
		CHECK(P.c[0].oversize == skips);
		CHECK(status == (partial > 0));
		CHECK(partial ? strstr(P.err, "truncated frame at eof") !=
		    NULL : P.err[0] == '\0');
	}
	CHECK(P.c[1].dgrams == 0);
	free(P.stream);
	free(P.out);
}

/*
 * One session as a pair runs, or (byte 2's top bit) two sessions on
 * one loop, sharing its pool, each playing the same script with a sink
 * of its own behaviour.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_opts	 o;
	struct relay		*rl[PLAYS];
	struct loop		 l;
	struct pool		 pool;
	size_t			 max, slot;
	int			 status[PLAYS], stream_sink, k, over;

	if (size < 6)
		return 0;
	max = 1 + (((size_t)data[0] << 8 | data[1]) % 65535);
	stream_sink = data[3] & 1;
	nplays = data[2] & 0x80 ? 2 : 1;
	polls = limit = 0;
	P_now.tv_sec = 1000;
	P_now.tv_nsec = 0;
	memset(&o, 0, sizeof(o));
	o.count = 1 + data[2] % 64;
	o.size = max;
	o.dir[0] = 1;			/* -u: the stream to the sink */
	for (k = 0; k < nplays; k++)
		play_setup(k, data, size, stream_sink);
	CHECK(loop_init(&l) == 0);
	slot = o.size + FRAME_HDR;
	if (nplays == 1) {	/* a pair, as dgrelay.c runs it */
		cur = &plays[0];
		pool_init(&pool, relay_slab(&o), slot, POOL_MAX);
	} else {
		/* room for both sessions' queues, an unfinished frame
		 * each and a ring for a turn: never at the cap (each
		 * ending inside a frame would wait on the other forever
		 * without frame-timeout), but shares below a ring */
		o.compact = 1;
		pool_init(&pool, relay_slab(&o), slot, 3 * relay_slab(&o) +
		    3 * slot + 2 * o.count * 64);
	}
	for (k = 0; k < nplays; k++) {
		rl[k] = relay_open(&l, &pool, &o, plays[k].s, plays[k].c,
		    plays[k].err, sizeof(plays[k].err), play_over, &plays[k]);
		CHECK(rl[k] != NULL);
	}
	do {
		CHECK(loop_once(&l) == 0);
		for (over = 1, k = 0; k < nplays; k++)
			over &= plays[k].over;
	} while (!over);
	for (k = 0; k < nplays; k++)
		status[k] = relay_end(rl[k]);
	CHECK(pool.lent == 0);		/* every byte came back */
	CHECK(pool.holders == 0);
	pool_free(&pool);
	loop_free(&l);
	for (k = 0; k < nplays; k++)
		play_check(&plays[k], max, stream_sink, status[k]);
	return 0;
}
