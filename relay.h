/*
 * relay.h: what a session (relay.c) shares with its I/O kinds, private to
 * them: datagram sockets and packets (dgram.c), byte streams (stream.c),
 * TLS (tlsio.c).  relay.c picks each direction's read and write functions
 * by its sides' kinds (io_ops); the I/O code reads into the direction's
 * ring and writes from its queue, and tells the session what happened
 * through the functions below, never by walking other modules' state.
 */
#ifndef RELAY_H
#define RELAY_H

#include <netinet/in.h>

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
	size_t		 whdr;		/* a stream sink's frame header:
					 * FRAME_HDR, or FRAME_WIDE (u32be) */
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
	long long	 last;		/* ms (loop_now): a datagram was last
					 * delivered */
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

/* The queue's hot little helpers, inline: called per datagram from every
 * I/O file. */

/* Entry i of d's queue, from its head. */
static inline struct frm *
qat(struct dir *d, unsigned i)
{
	return &d->q[(d->head + i) % d->nq];
}

/* Bytes of datagram j of f, and where they are. */
static inline size_t
seg_len(const struct frm *f, unsigned j)
{
	return j + 1 < f->nseg ? f->seg : f->len - (size_t)j * f->seg;
}

static inline uint8_t *
seg_at(const struct frm *f, unsigned j)
{
	return f->p + FRAME_HDR + (size_t)j * f->seg;
}

/* f is one datagram of len bytes; its header is written at f->p. */
static inline void
frm_one(struct frm *f, size_t len)
{
	f->len = len;
	f->seg = 0;
	f->nseg = 1;
	frame_put(f->p, len);
}

/* relay.c */
void	relay_fail(struct relay *rl, const struct side *s, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
const char *side_why(const struct side *s, int e);
int	lose(struct relay *rl, struct side *s, int e, int hs);

/* ring.c */
int	scratch_init(void);
void	dir_sides(struct relay *rl, struct dir *d);
void	dir_init(struct relay *rl, struct dir *d, int id, struct side *src,
	    struct side *dst, struct counters *c);
void	dir_free(struct relay *rl, struct dir *d);
void	pop(struct relay *rl, struct dir *d, uint64_t *dropped);
void	pop_n(struct relay *rl, struct dir *d, unsigned k, uint64_t *dropped);
size_t	slot_size(const struct relay *rl);
size_t	dir_budget(const struct relay *rl, const struct dir *d);
int	dir_hold(struct relay *rl, struct dir *d);
void	frm_unhold(struct relay *rl, struct dir *d, struct frm *f);
uint64_t queued(struct dir *d);
void	hold_sub(struct relay *rl, struct dir *d, size_t n);
void	dir_release(struct relay *rl, struct dir *d);
void	dir_compact(struct relay *rl, struct dir *d);

/* dgram.c */
void	dg_preload(struct relay *rl, struct dir *d);
void	dg_read(struct relay *rl, struct dir *d);
void	pk_read(struct relay *rl, struct dir *d);
void	dg_write(struct relay *rl, struct dir *d);
void	pk_write(struct relay *rl, struct dir *d);
int	set_gro(int fd, int on);
int	udp_socket(int fd);

/* stream.c */
void	st_cut(struct dir *d);
size_t	st_room(struct dir *d, uint8_t **at);
int	st_fill(struct relay *rl, struct dir *d, ssize_t (*rd)(struct side *,
	    void *, size_t));
void	st_read(struct relay *rl, struct dir *d);
unsigned st_gather(struct dir *d, size_t *total);
void	st_write_error(struct relay *rl, struct dir *d, int e);
void	st_written(struct relay *rl, struct dir *d, size_t r);
void	st_write(struct relay *rl, struct dir *d);

/* tlsio.c */
void	hs_turn(struct relay *rl, struct side *s);
void	tl_read(struct relay *rl, struct dir *d);
void	tl_write(struct relay *rl, struct dir *d);

/* carrier.c: a stream of a mux carrier */
void	mx_read(struct relay *rl, struct dir *d);
void	mx_write(struct relay *rl, struct dir *d);

#endif /* RELAY_H */
