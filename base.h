/*
 * base.h: the floor of the house: what knows nothing of addresses, sides
 * or sessions, and that everything above may use: messages (log.c),
 * framing (frame.c), the event loop, its clock and signals (loop.c), the
 * buffer pool (pool.c), the peer table (ptab.c).  Nothing here includes
 * dgrelay.h.
 */
#ifndef BASE_H
#define BASE_H

#include <sys/types.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FRAME_HDR	2		/* big-endian payload length */
#define FRAME_WIDE	4		/* frame=u32be's header */
#define FRAME_MAX	65535		/* largest payload a frame can carry */
#define FRAME_HOT	(256 << 10)	/* bytes a stream reads at once; see frame.c */

/* -------------------------------------------------------------------- log.c */

/* logx(fmt, ...): "dgrelay: message" on stderr, in one write. */
void	logx(const char *, ...) __attribute__((format(printf, 1, 2)));

/* logerr(fmt, ...): as logx, then ": strerror(errno)". */
void	logerr(const char *, ...) __attribute__((format(printf, 1, 2)));

/* logv(with_errno, fmt, ap): logx or logerr, from a va_list. */
void	logv(int, const char *, va_list) __attribute__((format(printf, 2, 0)));

/*
 * log_due(last): 1 at most once a second (last is the caller's: when it
 * last said yes), for messages a flood could repeat.
 */
int	log_due(time_t *last);

/* ---------------------------------------------------------------- frame.c */

/* Result of frame_buf_next(). */
enum frame_res {
	FRAME_MORE,		/* no complete frame buffered: read more */
	FRAME_OK,		/* a frame was cut out */
	FRAME_SKIP		/* a frame longer than max was found: skipped */
};

/*
 * A byte buffer a stream is read into and frames are cut out of, in place.
 * Bytes [rpos, wpos) are read but not yet cut; frames handed out earlier
 * lie before rpos and stay valid until the caller says it is idle.
 */
struct frame_buf {
	uint8_t		*buf;
	size_t		 cap;		/* bytes in buf */
	size_t		 max;		/* largest payload kept (-s) */
	size_t		 rpos;		/* first byte not yet cut */
	size_t		 wpos;		/* first byte not yet read */
	size_t		 skip;		/* payload bytes of an oversize frame left */
	size_t		 hdr;		/* FRAME_HDR, or FRAME_WIDE (u32be) */
};

/* frame_put(hdr, len): write len (<= FRAME_MAX) as a frame header at hdr. */
void	frame_put(uint8_t *hdr, size_t len);

/* frame_get(hdr): the payload length in the frame header at hdr. */
size_t	frame_get(const uint8_t *hdr);

/* frame_len(fb, at): the payload length in fb's header (2 or 4 bytes) at
 * at. */
size_t	frame_len(const struct frame_buf *fb, const uint8_t *at);

/*
 * frame_buf_init(fb, buf, cap, max, hdr): use buf (cap bytes, cap >= max +
 * hdr) for a stream whose frames have a hdr-byte header (FRAME_HDR, or
 * FRAME_WIDE: 4 bytes, u32be) and may carry at most max payload bytes
 * (max <= FRAME_MAX).
 */
void	frame_buf_init(struct frame_buf *fb, uint8_t *buf, size_t cap,
	    size_t max, size_t hdr);

/*
 * frame_buf_room(fb, idle, at): how many bytes may be read into *at now.
 * idle says no frame handed out is still in use, so the unfinished frame
 * may be moved to the front; it is moved only when it could not otherwise
 * grow to a full frame.  0 means wait until idle.
 */
size_t	frame_buf_room(struct frame_buf *fb, int idle, uint8_t **at);

/* frame_buf_fill(fb, n): n bytes were read into the room. */
void	frame_buf_fill(struct frame_buf *fb, size_t n);

/*
 * frame_buf_next(fb, frame, len): cut the next frame.  On FRAME_OK *frame
 * points at a 2-byte header (payload follows; of a u32be header, its low
 * half) and *len is the payload length.
 */
enum frame_res frame_buf_next(struct frame_buf *fb, uint8_t **frame,
	    size_t *len);

/* frame_buf_partial(fb): bytes of an unfinished frame are buffered. */
int	frame_buf_partial(const struct frame_buf *fb);

/*
 * frame_buf_ready(fb): frame_buf_next would cut (or skip) something now.
 */
int	frame_buf_ready(const struct frame_buf *fb);

/*
 * frame_buf_left(fb, whole): at the end, how many whole frames (that fit
 * max) are buffered but not cut, into *whole; returns whether an
 * unfinished frame follows them (or an oversize one is being skipped).
 */
int	frame_buf_left(const struct frame_buf *fb, size_t *whole);

/*
 * frame_buf_drop(fb): forget an unfinished frame (its stream was lost);
 * returns whether there was one.  Frames cut before stay valid.
 */
int	frame_buf_drop(struct frame_buf *fb);

/*
 * frame_buf_toskip(fb): bytes of an oversize frame still to come while
 * nothing else is buffered (they may be read anywhere, then reported with
 * frame_buf_skipped(fb, n)); 0 otherwise.
 */
size_t	frame_buf_toskip(const struct frame_buf *fb);
void	frame_buf_skipped(struct frame_buf *fb, size_t n);

/* ----------------------------------------------------------------- loop.c */

/* One descriptor of one owner, and what the owner wants of it. */
struct watch {
	int		 fd;
	uint32_t	 want;		/* EPOLLIN, EPOLLOUT: wanted now */
	uint32_t	 have;		/* ... as epoll has it (may be more) */
	int		 added;		/* fd is in the epoll set */
	int		 nopoll;	/* epoll refused it: always ready */
	unsigned	 always_at;	/* index + 1 in the always-ready list */
	int		 deferred;	/* on the list of loop_defer */
	struct watch	*dnext;
	int		 tag;		/* the owner's */
	void		(*fn)(struct watch *, uint32_t events);
	void		*arg;
};

/* One deadline of one owner (ms of CLOCK_MONOTONIC; 0: none). */
struct timer {
	long long	 due;		/* the deadline now */
	long long	 key;		/* ... as the heap has it (<= due) */
	unsigned	 at;		/* index + 1 in the heap, 0: not in it */
	void		(*fn)(struct timer *);
	void		*arg;
};

/* A child process of one owner, waited for by the loop (SIGCHLD). */
struct child {
	pid_t		 pid;
	void		(*fn)(struct child *, int status);
	void		*arg;
	struct child	*next;
};

struct loop {
	int		 epfd;
	sigset_t	 waitmask;	/* signals arrive only in the wait */
	struct timer	**heap;
	unsigned	 nheap, cheap;
	struct watch	**always;	/* descriptors epoll refused, wanted */
	unsigned	 nalways, calways;
	struct watch	*deferred;	/* to call once, after this pass */
	struct child	*children;	/* reaped when they end */
	int		 stopped;	/* loop_stop: loop_run returns */
	int		 quit;		/* a SIGINT or SIGTERM came */
	/* the driver's: SIGUSR1, SIGCHLD (after the children's owners), and
	 * the end of every pass; each may be NULL */
	void		(*on_stats)(void *);
	void		(*on_child)(void *);
	void		(*on_turn)(void *);
	void		*arg;
	long long	 stats_ms;	/* on_stats this often too (-i), 0: no */
	struct timer	 stats_t;
};

/*
 * loop_signals(): the process's handlers, once, before anything is
 * opened: SIGPIPE ignored; SIGINT, SIGTERM, SIGUSR1, SIGCHLD to flags
 * that only loop.c reads.
 */
void	loop_signals(void);

/* loop_signalled(): a SIGINT or SIGTERM came that no loop_run took. */
int	loop_signalled(void);

/* loop_init(l): an epoll set; -1 with errno. */
int	loop_init(struct loop *l);
void	loop_free(struct loop *l);

/*
 * loop_run(l): the one driver: pass after pass (loop_once) until
 * loop_stop, or a SIGINT or SIGTERM (taken: loop_quitting says so from
 * then on, and the owner may run the loop again to end what it runs);
 * SIGUSR1 calls on_stats.  Its signals are blocked but in the wait, so
 * none is missed between a look at the flags and the wait.  -1 with
 * errno when epoll fails.
 */
int	loop_run(struct loop *l);
void	loop_stop(struct loop *l);
int	loop_quitting(const struct loop *l);

/*
 * loop_child(l, c, pid, fn, arg): when pid ends, fn(c, its wait status)
 * from inside the loop (status 0 if it was reaped elsewhere).
 */
void	loop_child(struct loop *l, struct child *c, pid_t pid,
	    void (*fn)(struct child *, int), void *arg);
void	loop_unchild(struct loop *l, struct child *c);

/* watch_init(w, fn, arg): a watch on no descriptor yet. */
void	watch_init(struct watch *w, void (*fn)(struct watch *, uint32_t),
	    void *arg);

/*
 * loop_watch(l, w, fd, want): w is fd, wanting want (0: nothing).  epoll
 * is told at once only when more is wanted than it has; less is told
 * when an unwanted event comes (with nothing wanted, epoll then has it
 * not at all: a hang-up cannot wake a loop that would not act on it).
 * -1 with errno.
 */
int	loop_watch(struct loop *l, struct watch *w, int fd, uint32_t want);

/* loop_unwatch(l, w): forget w's descriptor; before it is closed. */
void	loop_unwatch(struct loop *l, struct watch *w);

/* loop_defer(l, w): call w's function (events 0) once this pass is over. */
void	loop_defer(struct loop *l, struct watch *w);

/* loop_undefer(l, w): not any more (w's owner is going away). */
void	loop_undefer(struct loop *l, struct watch *w);

void	timer_init(struct timer *t, void (*fn)(struct timer *), void *arg);

/* loop_timer(l, t, due): t fires at due (ms, loop_now's clock; 0: never). */
int	loop_timer(struct loop *l, struct timer *t, long long due);
void	loop_untimer(struct loop *l, struct timer *t);

/* loop_now(): ms of CLOCK_MONOTONIC. */
long long loop_now(void);

/*
 * loop_once(l): wait for what is wanted or due (or a signal, which the
 * caller then looks at), and hand it to its owners.  -1 with errno.
 */
int	loop_once(struct loop *l);

/* ----------------------------------------------------------------- pool.c */

/* One waiting for something (memory at the pool's cap, a TLS slot). */
struct pool_wait {
	struct pool_wait *next, *prev;
	int		 queued;
	void		(*fn)(struct pool_wait *);	/* its turn came */
	void		*arg;
};

/* Waiters, oldest first. */
struct waitq {
	struct pool_wait *head, *tail;
};

/* waitq_add(q, w): w waits at the back (once); waitq_del(q, w): not. */
void	waitq_add(struct waitq *q, struct pool_wait *w);
void	waitq_del(struct waitq *q, struct pool_wait *w);

/*
 * The sessions of one source address (multi): what they hold together is
 * bounded by the source's share, as a direction's by its own.
 */
struct pool_group {
	size_t		 held;		/* bytes its directions hold */
	unsigned	 refs;		/* its sessions */
	struct sockaddr_storage key;	/* the address, port 0 */
	socklen_t	 keylen;
};

struct pool {
	size_t		 slab;		/* bytes a ring */
	size_t		 floor;		/* a share is never below this */
	size_t		 max;		/* bytes lent at most (the cap) */
	size_t		 lent;		/* rings and held bytes, now */
	size_t		 peak;		/* ... at most so far */
	size_t		 holders;	/* directions holding bytes */
	size_t		 groups;	/* sources holding bytes */
	void		*free;		/* rings given back, kept */
	struct waitq	 waiting;
};

/*
 * pool_init(p, slab, floor, max): rings of slab bytes; a share of at
 * least floor bytes (one largest datagram); at most max bytes lent.
 */
void	pool_init(struct pool *p, size_t slab, size_t floor, size_t max);

/*
 * pool_get(p, force): a ring, or NULL: at the cap (errno ENOBUFS; then
 * pool_wait), or out of memory (ENOMEM).  force: lent even at the cap
 * (a ring lent only for one turn: at most two are out at once).
 */
void	*pool_get(struct pool *p, int force);

/* pool_put(p, buf): a ring comes back; waiters are woken (pool.c). */
void	pool_put(struct pool *p, void *buf);

/*
 * pool_take(p, n): n held bytes (allocated by the caller) are counted
 * against the cap; the caller looked at the share and the cap before it
 * read them (dir_budget, pool_full).
 */
void	pool_take(struct pool *p, size_t n);

/* pool_give(p, n): n held bytes came back; waiters are woken. */
void	pool_give(struct pool *p, size_t n);

/* pool_holder(p, delta): a direction starts (1) or stops (-1) holding. */
void	pool_holder(struct pool *p, int delta);

/* pool_share(p): the bytes a direction may hold now (pool.c says how). */
size_t	pool_share(const struct pool *p);

/*
 * pool_group_add(p, g, n): n bytes more (or fewer, n < 0) held by source
 * g; pool_group_left(p, g): what g may still take under its share (half
 * the cap over the sources holding, at least one largest datagram).
 */
void	pool_group_add(struct pool *p, struct pool_group *g, long long n);
size_t	pool_group_left(const struct pool *p, const struct pool_group *g);

/* pool_full(p): not even a largest datagram fits under the cap. */
int	pool_full(const struct pool *p);

void	pool_wait(struct pool *p, struct pool_wait *w);
void	pool_unwait(struct pool *p, struct pool_wait *w);
void	pool_free(struct pool *p);

/* ----------------------------------------------------------------- ptab.c */

/* A peer's place: a fork child, a pending new peer, or a multi session. */
struct pent {
	struct sockaddr_storage	 addr;
	socklen_t		 len;		/* 0: never used */
	int			 dead;		/* removed: probe on past it */
	pid_t			 pid;		/* fork: its child; 0: pending */
	size_t			 np;		/* fork, pending: index in np */
	void			*ptr;		/* multi: its session */
};

struct ptab {
	struct pent	*e;		/* mapped: a child unmaps it cleanly */
	size_t		 cap, used;	/* used counts dead slots too */
	uint8_t		 key[16];	/* the hash's, random (ptab.c) */
};

/* ptab_siphash(key, in, len): SipHash-2-4 of in under key. */
uint64_t ptab_siphash(const uint8_t key[16], const uint8_t *in, size_t len);

/* ptab_find(t, ss, len): the live entry of address ss, or NULL. */
struct pent *ptab_find(const struct ptab *t,
	    const struct sockaddr_storage *ss, socklen_t len);

/* ptab_add(t, ss, len): a new entry for ss (not in t), NULL: no memory. */
struct pent *ptab_add(struct ptab *t, const struct sockaddr_storage *ss,
	    socklen_t len);

/* ptab_del(t, ss, len): ss's entry goes (its slot is probed past). */
void	ptab_del(struct ptab *t, const struct sockaddr_storage *ss,
	    socklen_t len);

void	ptab_free(struct ptab *t);

#endif /* BASE_H */
