/*
 * dgrelay: relay datagrams between two endpoints, framing them on streams.
 * Shared structures, constants and prototypes; no code.
 */
#ifndef DGRELAY_H
#define DGRELAY_H

#include <sys/types.h>
#include <sys/socket.h>

#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DGRELAY_VERSION	"0.1.0"

#define FRAME_HDR	2		/* big-endian payload length */
#define FRAME_MAX	65535		/* largest payload a frame can carry */
#define FRAME_HOT	(256 << 10)	/* bytes a stream reads at once; see frame.c */
#define COUNT_DEF	64		/* -b */
#define COUNT_MAX	1024		/* sendmmsg/writev take at most 1024 */
#define SIZE_DEF	65535		/* -s */
#define SPEC_MAX	1024		/* longest ADDRESS argument */
#define UDP_BUF_DEF	(1 << 20)	/* SO_RCVBUF, SO_SNDBUF asked for UDP */
#define UDP_LISTEN_BUF	(16 << 20)	/* SO_RCVBUF(FORCE): udp-listen with
					 * fork or multi, a burst of peers */
#define NAME_MAX_	256		/* host names, "HOST PORT" strings */
#define FORK_MAX_DEF	256		/* max-children unless given */
#define MULTI_MAX_DEF	16384		/* max-peers unless given */
#define QUARANTINE_MS	30000		/* multi: an ended session's UDP port
					 * kept from reuse, ms (multi.c) */
#define QUARANTINE_MAX	4096		/* ... at most this many at once */
#define ACCEPT_BATCH	64		/* connections accepted a turn: then
					 * the sessions ready meanwhile */
#define IDLE_MAX	31536000000LL	/* -t: a year, in ms */
#define RETRY_FOREVER	-1		/* retry without =N */
#define INTERVAL_DEF	1000		/* retry: first wait, ms */
#define INTERVAL_MAX	3600000		/* interval=: an hour, in ms */
#define BACKOFF_MAX	30000		/* retry: waits double up to this */
#define DIAL_WAIT	10000		/* retry: an attempt's deadline, ms */
#define POOL_MAX	(256UL << 20)	/* bytes of ring buffers lent at once */
#define HANDSHAKE_DEF	10000		/* tls: handshake-timeout, ms */
#define HANDSHAKE_MAX	3600000		/* ... at most an hour */
#define HANDSHAKES_DEF	256		/* tls: max-handshakes unless given */
#define STALL_DEF	30000		/* multi: stall-timeout, ms */
#define FRAMEWAIT_DEF	10000		/* multi: frame-timeout, ms */

/* Signal flags: the only mutable globals (set in dgrelay.c). */
extern volatile sig_atomic_t sig_quit;	/* SIGINT, SIGTERM */
extern volatile sig_atomic_t sig_stats;	/* SIGUSR1 */
extern volatile sig_atomic_t sig_child;	/* SIGCHLD */

/* -------------------------------------------------------------- dgrelay.c */

/* logx(fmt, ...): "dgrelay: message" on stderr, in one write. */
void	logx(const char *, ...) __attribute__((format(printf, 1, 2)));

/* logerr(fmt, ...): as logx, then ": strerror(errno)". */
void	logerr(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * signals_hold(old, waitmask, child): block SIGINT, SIGTERM, SIGUSR1 (and
 * SIGCHLD if child) so that they arrive only inside ppoll(waitmask): no
 * wakeup is lost between a flag test and the wait.  old is the mask before.
 */
void	signals_hold(sigset_t *old, sigset_t *waitmask, int child);

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
};

/* frame_put(hdr, len): write len (<= FRAME_MAX) as a frame header at hdr. */
void	frame_put(uint8_t *hdr, size_t len);

/* frame_get(hdr): the payload length in the frame header at hdr. */
size_t	frame_get(const uint8_t *hdr);

/*
 * frame_buf_init(fb, buf, cap, max): use buf (cap bytes, cap >= max + 2) for
 * a stream whose frames may carry at most max payload bytes.
 */
void	frame_buf_init(struct frame_buf *fb, uint8_t *buf, size_t cap,
	    size_t max);

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
 * points at its header (payload follows) and *len is the payload length.
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

/* ----------------------------------------------------------------- addr.c */

enum addr_kind {
	ADDR_UDP,
	ADDR_TCP,
	ADDR_UNIX,		/* AF_UNIX SOCK_STREAM */
	ADDR_SEQPACKET,		/* AF_UNIX SOCK_SEQPACKET */
	ADDR_FD,
	ADDR_STDIO,
	ADDR_EXEC,		/* /bin/sh -c COMMAND on a socketpair */
	ADDR_VSOCK,		/* AF_VSOCK, stream or seqpacket */
	ADDR_TUN		/* a TUN (or TAP) device */
};

/* -Z: the user dgrelay, and any command it starts, runs as. */
struct runas {
	char		 name[64];
	uid_t		 uid;
	gid_t		 gid;
};

struct addrinfo;
struct addr;
struct tls_conf;
struct tls;

/* A string option's value: where it lies in the spec (addr.c). */
struct optstr {
	uint16_t	 off, len;	/* len 0: not given */
};

/* Where a side that reconnects (retry) stands. */
enum redial_state {
	RD_UP,			/* connected */
	RD_WAIT,		/* waiting before the next attempt */
	RD_DIAL,		/* an attempt under way: s->rfd writable ends it */
	RD_GONE			/* retry=N attempts failed: the relay ends */
};

struct redial {
	struct addr	*a;
	enum redial_state state;
	struct timespec	 due;		/* WAIT: next attempt; DIAL: deadline */
	struct timespec	 since;		/* UP: connected at; else down since */
	long long	 wait_ms;	/* the next wait (backoff) */
	int		 failed;	/* attempts failed in a row */
	uint64_t	 connects;	/* connections made */
	long long	 down_ms;	/* time spent down before now */
	int		 verbose;
};

/* One parsed ADDRESS argument. */
struct addr {
	enum addr_kind	 kind;
	int		 listen;
	const char	*spec;		/* the argv text, for messages */
	char		 host[NAME_MAX_];	/* "" for any (listen) */
	char		 port[8];
	char		 path[108];	/* unix: '@' starts an abstract name */
	char		 cmd[SPEC_MAX];	/* exec: the command */
	int		 seqpacket;	/* exec, vsock: SOCK_SEQPACKET */
	uint32_t	 cid, vport;	/* vsock */
	char		 ifname[IFNAMSIZ];	/* tun: "" lets the kernel pick */
	int		 tap, up, mtu;	/* tun: options */
	int		 hasaddr, prefix;
	uint32_t	 ifaddr;	/* tun: addr=, network byte order */
	pid_t		 pid;		/* exec: the command's process, 0: none */
	const struct runas *runas;	/* exec: -Z for the command, or NULL */
	int		 status;	/* exec: its wait status, once reaped */
	int		 reaped;
	int		 ended;		/* exec: dgrelay had to end it */
	int		 rfd, wfd;	/* fd: */
	char		 fdname[NAME_MAX_];	/* fd:NAME, from LISTEN_FDNAMES */
	/* options */
	int		 hasbind;
	char		 bindhost[NAME_MAX_];
	char		 bindport[8];
	int		 reuseport;
	int		 rcvbuf, sndbuf;	/* 0: kernel default */
	int		 hasmark;
	uint32_t	 mark;
	char		 dev[IFNAMSIZ];
	int		 nodelay;	/* TCP_NODELAY, on unless nodelay=0 */
	int		 keepalive;	/* SO_KEEPALIVE; keepidle= and the rest
					 * imply it */
	int		 keepidle, keepintvl, keepcnt;	/* s, s, probes; 0:
					 * the kernel's */
	int		 usertimeout;	/* TCP_USER_TIMEOUT, ms; 0: none */
	int		 mptcp;		/* IPPROTO_MPTCP instead of TCP */
	int		 retry;		/* attempts in a row, RETRY_FOREVER;
					 * 0: connect once, end with the stream */
	int		 interval_ms;	/* retry: the first wait */
	/* tls: and tls-listen: (kind ADDR_TCP) */
	int		 tls;
	int		 verify;	/* client: check the server (verify=0) */
	int		 handshake_ms;	/* handshake-timeout= */
	int		 maxhs;		/* max-handshakes=, 0: the default */
	struct optstr	 cert, key, cafile, psk, sni, alpn;
	struct tls_conf	*tlsc;		/* made by tls_setup, shared by copies */
	long long	 stall_ms;	/* stall-timeout=, -1: not given */
	long long	 frame_ms;	/* frame-timeout=, -1: not given */
	int		 fork;		/* a child relay per peer */
	int		 maxchildren;	/* with fork: FORK_MAX_DEF unless given */
	int		 multi;		/* a session per peer, this process */
	int		 maxpeers;	/* with multi: MULTI_MAX_DEF unless given */
	int		 many;		/* fork or multi: keeps listening */
	int		 dial;		/* connected by the relay, without
					 * blocking (a multi session's other
					 * address; retry implies it) */
	/* state of addr_open() */
	int		 lfd;		/* listening socket, -1 when none */
	int		 pktinfo;	/* udp, wildcard: datagrams say their
					 * destination (IP_PKTINFO) */
	int		 unlink;	/* path was created: remove at close */
	struct addrinfo	*dialres, *dialnext;	/* retry: tcp addresses of this
					 * attempt, and the next to try */
	struct redial	 rd;		/* retry: the connection's state */
	char		 err[NAME_MAX_];	/* what failed, for the message */
};

/*
 * How a side moves datagrams, decided once when it is made: relay.c picks
 * its read and write functions by it.
 */
enum side_io {
	IO_DGRAM,		/* a datagram socket: recvmmsg, sendmmsg */
	IO_STREAM,		/* a byte stream: frames, read and writev */
	IO_PACKET,		/* not a socket (TUN): one read/write a datagram */
	IO_TLS			/* frames inside TLS on a stream socket */
};

struct relay;

/* An open endpoint. */
struct side {
	int		 rfd, wfd;
	enum side_io	 io;
	int		 seqpacket;	/* a 0-byte read is end of input */
	int		 wsock;		/* wfd is a socket: half-close by shutdown */
	int		 shared;	/* wfd is a multi listener's socket,
					 * unconnected (sends name peeraddr):
					 * its owner watches and closes it,
					 * and reads it (relay_push) */
	void		(*blocked)(void *, struct relay *);	/* shared: a
					 * send said EAGAIN; relay_unblock
					 * once it may go on */
	void		*blocked_arg;
	int		 lockpeer;	/* unconnected: adopt the first sender */
	int		 locked;	/* lockpeer side has adopted its peer */
	int		 rflags, wflags;	/* O_ flags to restore, -1: ours */
	int		 pending;	/* not opened yet: the relay's opener
					 * opens it once the other side's TLS
					 * peer is authenticated */
	const char	*name;		/* the address spec */
	char		 local[NAME_MAX_];	/* "HOST PORT" we listen on */
	char		 peer[NAME_MAX_];	/* "HOST PORT" of the peer */
	struct sockaddr_storage peeraddr;	/* lockpeer: the adopted peer */
	socklen_t	 peerlen;
	int		 pktinfo;	/* lockpeer: datagrams say their dst */
	/* replies leave from this address (a cmsg on each send, to peeraddr:
	 * the socket stays unconnected), when the peer wrote to another than
	 * the kernel's route would pick */
	struct sockaddr_storage replyfrom;
	int		 hasreplyfrom;
	/* datagrams that reached the listening socket before this side was
	 * made (fork): frames, delivered before anything read */
	uint8_t		*pre;
	size_t		 prelen, preoff;
	/* retry: the connection comes and goes (redial.c); NULL: it ends
	 * the relay when it ends */
	struct redial	*rd;
	/* IO_TLS: the address's settings, and the connection's TLS (made
	 * and freed by the relay, once per connection) */
	struct tls_conf	*tlsc;
	struct tls	*tls;
};

/*
 * addr_parse(spec, a): parse an ADDRESS argument into a; no system calls.
 * Returns 0, or -1 with the reason in a->err.
 */
int	addr_parse(const char *spec, struct addr *a);

/*
 * addr_num(s, min, max, errstr): s as a number in min..max, written in
 * decimal digits only (no sign, no space); strtonum's errstr otherwise.
 */
long long addr_num(const char *s, long long min, long long max,
	    const char **errstr);

/*
 * addr_ms(s, max, errstr): seconds with up to three decimals ("1.5"), as
 * milliseconds in 1..max; errstr says why not.
 */
long long addr_ms(const char *s, long long max, const char **errstr);

/*
 * addr_str(a, o, buf, size): the value of string option o ("" when not
 * given) into buf; returns buf.
 */
char	*addr_str(const struct addr *a, struct optstr o, char *buf,
	    size_t size);

/*
 * addr_fail(a, fmt, ...): the reason a failed, one line, into a->err.
 * Returns -1.
 */
int	addr_fail(struct addr *a, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* ----------------------------------------------------------------- sock.c */

/*
 * sock_open(a, s): make the side of a, by its kind: connect it, or bind
 * and listen (s->local then says where; a->lfd is the listening socket).
 * Returns 0, or -1 with a->err set.
 */
int	sock_open(struct addr *a, struct side *s);

/*
 * sock_pending(a, s): s stands for address a, not opened yet (the relay
 * opens it later: relay_opener); closing it is harmless.
 */
void	sock_pending(struct addr *a, struct side *s);

/*
 * sock_accept(a, s): for a listening address, take the next peer and make
 * s ready to relay (s->peer says who); nothing to do for other addresses.
 * Returns 0, or -1 with a->err set (errno as accept left it).
 */
int	sock_accept(struct addr *a, struct side *s);

/*
 * sock_udp_peer(a, peer, len, dst, s): for a forking udp-listen a, a
 * socket bound to a->lfd's port (SO_REUSEPORT) and connected to peer, so
 * that the kernel gives peer's datagrams to it from now on.  It is bound
 * to dst, the address peer wrote to, when known (NULL: a->lfd's address).
 * Returns 0, or -1 with a->err set.
 */
int	sock_udp_peer(struct addr *a, const struct sockaddr *peer,
	    socklen_t len, const struct sockaddr_storage *dst, struct side *s);

/*
 * sock_want_pktinfo(fd): a UDP socket bound to a wildcard address is made
 * to learn each datagram's destination, so that a reply leaves from the
 * address its peer wrote to (a host with several addresses); an IPv6
 * socket is told for IPv4 datagrams too (IP_PKTINFO, as v4-mapped).
 * Returns whether it is on.
 */
int	sock_want_pktinfo(int fd);

/*
 * sock_reply_source(s, h): s, a wildcard-bound lockpeer side, has the
 * first datagram of its peer (s->peeraddr) in h.  Stops IP_PKTINFO, and
 * when the route would answer from another address than the one the
 * peer wrote to, sets s->replyfrom and returns 1: s must stay unconnected
 * and name the source of every reply.  0 otherwise: connect as usual.
 */
int	sock_reply_source(struct side *s, struct msghdr *h);

/*
 * sock_pktinfo(m, family, ss): the destination address of a datagram
 * received on a socket of family with IP_PKTINFO/IPV6_RECVPKTINFO on
 * (port 0), from m's control messages.  0, or -1 when m has none.
 */
int	sock_pktinfo(struct msghdr *m, int family,
	    struct sockaddr_storage *ss);

/*
 * sock_close(a, s): close s, restore inherited descriptors, unlink paths;
 * for exec:, end the command if it still runs and reap it into a->status.
 */
void	sock_close(struct addr *a, struct side *s);

/*
 * sock_want_drops(fd): a UDP socket says, on datagrams it receives, how
 * many the kernel dropped before them (SO_RXQ_OVFL).  0, or -1.
 */
int	sock_want_drops(int fd);

/*
 * sock_cmsg(m, level, type, len): the data of m's first control message
 * of that level and type holding at least len bytes, or NULL.
 */
const void *sock_cmsg(struct msghdr *m, int level, int type, size_t len);

/*
 * sock_drops(m, drops): the kernel's drop count that message m carries
 * (SO_RXQ_OVFL), into *drops when it is more.
 */
void	sock_drops(struct msghdr *m, uint64_t *drops);

/* sock_ntop(sa, len, buf, size): "HOST PORT" (or a path) for sa. */
void	sock_ntop(const struct sockaddr *sa, socklen_t len, char *buf,
	    size_t size);

/*
 * sock_getname(a, fd, peer, buf, size): "HOST PORT" of fd's own end (peer
 * 0) or of its peer (peer 1) into buf.  0, or -1 with a->err set.
 */
int	sock_getname(struct addr *a, int fd, int peer, char *buf,
	    size_t size);

/*
 * sock_dial(a, s): one attempt to connect a (retry) without blocking, on
 * each of its addresses in turn: 0 connected (s relays on it), 1 under way
 * (wait until s->rfd is writable, then sock_dial_end), -1 failed, the
 * last reason in a->err.
 */
int	sock_dial(struct addr *a, struct side *s);

/* sock_dial_end(a, s): the attempt under way has an answer: as sock_dial. */
int	sock_dial_end(struct addr *a, struct side *s);

/*
 * sock_hangup(a, s): close s's connection (retry: it was lost, or an
 * attempt is abandoned); the address stays ready for sock_dial.
 */
void	sock_hangup(struct addr *a, struct side *s);

/* sock_syserr(a, what): "what: strerror(errno)" into a->err; returns -1. */
int	sock_syserr(struct addr *a, const char *what);

/*
 * sock_side(a, s, fd, type): s relays on fd, a connected socket of this
 * type (SOCK_STREAM: framed); fd is made non-blocking.  0, or -1.
 */
int	sock_side(struct addr *a, struct side *s, int fd, int type);

/* sock_family(fd): the address family of socket fd, -1 with errno. */
int	sock_family(int fd);

/* sock_nonblock(fd, saved): O_NONBLOCK on; the flags before in *saved. */
int	sock_nonblock(int fd, int *saved);

/* ------------------------------------------------------------------- fd.c */

/* fd_open(a, s): fd:N, fd:R:W, fd:NAME.  0, or -1 with a->err set. */
int	fd_open(struct addr *a, struct side *s);

/* fd_stdio(a, s): stdio, frames on descriptors 0 and 1. */
int	fd_stdio(struct addr *a, struct side *s);

/*
 * fd_activation(): how many descriptors systemd passed us (LISTEN_FDS,
 * checked against LISTEN_PID), 0 when none; they are made close-on-exec.
 */
int	fd_activation(void);

/* ----------------------------------------------------------------- exec.c */

/*
 * exec_open(a, s): start a's command on a socketpair (as a->runas, when
 * set); s is our end.
 */
int	exec_open(struct addr *a, struct side *s);

/*
 * exec_runas(r): become r's user with its groups, for good (checked: root
 * cannot be regained).  0, or -1 with errno set.
 */
int	exec_runas(const struct runas *r);

/*
 * exec_reap(a): wait for a's command to end by itself for a moment, then
 * end it (TERM, then KILL); its wait status lands in a->status and
 * a->reaped is set.  Bounded: what it could not end is said in a->err.
 */
void	exec_reap(struct addr *a);

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

struct loop {
	int		 epfd;
	sigset_t	 waitmask;	/* signals arrive only in the wait */
	struct timer	**heap;
	unsigned	 nheap, cheap;
	struct watch	**always;	/* descriptors epoll refused, wanted */
	unsigned	 nalways, calways;
	struct watch	*deferred;	/* to call once, after this pass */
};

/* loop_init(l, waitmask): an epoll set; -1 with errno. */
int	loop_init(struct loop *l, const sigset_t *waitmask);
void	loop_free(struct loop *l);

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

/* ---------------------------------------------------------------- relay.c */

/* Counters of one direction. */
struct counters {
	uint64_t	 dgrams;	/* relayed */
	uint64_t	 bytes;		/* payload bytes relayed */
	uint64_t	 oversize;	/* larger than -s: dropped or skipped */
	uint64_t	 senderr;	/* dropped by send errors */
	uint64_t	 truncated;	/* frames cut short by end of input */
	uint64_t	 otherpeer;	/* from a sender other than the peer */
	uint64_t	 unsent;	/* still queued when the relay ended */
	uint64_t	 empty;		/* empty, to a SOCK_SEQPACKET sink: dropped */
	uint64_t	 down;		/* read while the sink's connection was
					 * down (retry), or queued for it when
					 * it was lost: dropped */
	uint64_t	 stalled;	/* sessions ended: the sink took nothing
					 * for stall-timeout */
	uint64_t	 slowframe;	/* sessions ended: a frame of the source
					 * unfinished after frame-timeout */
	uint64_t	 kdrops;	/* dropped by the kernel at the source's
					 * full UDP socket (SO_RXQ_OVFL) */
};

struct relay_opts {
	size_t		 count;		/* -b */
	size_t		 size;		/* -s */
	long long	 idle_ms;	/* -t, 0: none */
	int		 dir[2];	/* 1>2 and 2>1 enabled (-u, -U) */
	int		 verbose;	/* -v count */
	int		 compact;	/* one of many sessions: between turns
					 * hold only what is queued (pool.c) */
	long long	 stall_ms;	/* stall-timeout, 0: none */
	long long	 frame_ms;	/* frame-timeout, 0: none */
};

/*
 * relay_run(o, s, c, err, errsize, opener, oarg): relay between s[0] and
 * s[1] until an end condition; counters land in c[0] (1>2) and c[1] (2>1).
 * A side marked pending is opened by opener(oarg, side, err, errsize) (0,
 * or -1 with err set) once the other side is up (relay_opener).  Returns 0
 * for a clean end, 1 for a runtime failure described in err.
 */
int	relay_run(const struct relay_opts *o, struct side s[2],
	    struct counters c[2], char *err, size_t errsize,
	    int (*opener)(void *, struct side *, char *, size_t), void *oarg);

/*
 * relay_opener(rl, fn, arg): the session's side marked pending is opened
 * by fn(arg, side, err, errsize) once its other side is up (a TLS
 * server's handshake done): an unauthenticated peer opens nothing.
 */
void	relay_opener(struct relay *rl, int (*fn)(void *, struct side *,
	    char *, size_t), void *arg);

struct relay;

/*
 * relay_open(l, pool, o, s, c, err, errsize, over, arg): a relay session
 * between s[0] and s[1] on loop l, its buffers from pool (of relay_slab(o)
 * bytes); it starts at once.  over(rl, arg) is called from inside the
 * loop once it is over; the owner then calls relay_end after that pass.
 * NULL with err set when it cannot be made.
 */
struct relay *relay_open(struct loop *l, struct pool *pool,
	    const struct relay_opts *o, struct side s[2], struct counters c[2],
	    char *err, size_t errsize, void (*over)(struct relay *, void *),
	    void *arg);

/*
 * relay_end(rl): free the session; if a signal or -t ends it, hand the
 * kernel what it takes now, and count the rest unsent.  Returns 0, or 1
 * for a runtime failure described in its err.
 */
int	relay_end(struct relay *rl);

/* relay_slab(o): bytes of one direction's buffers (the pool's size). */
size_t	relay_slab(const struct relay_opts *o);

/* Why relay_push did not take a datagram. */
enum push_res {
	PUSH_OK,
	PUSH_ENDING,		/* the session is over or ending */
	PUSH_QUEUE,		/* -b datagrams are already queued */
	PUSH_SHARE,		/* the session holds its share (pool.c) */
	PUSH_POOL		/* the pool is at its cap */
};

/*
 * relay_push(rl, i, dg, len): a datagram the owner read for side i (a
 * multi udp-listen's socket), queued as if side i had read it, and the
 * session's turn made at once (the session may end: over is called).  Any
 * other result than PUSH_OK: the owner drops it and counts it by cause.
 */
enum push_res relay_push(struct relay *rl, int i, const uint8_t *dg,
	    size_t len);

/* relay_group(rl, g): the session's source (multi), whose share it uses. */
void	relay_group(struct relay *rl, struct pool_group *g);

/* relay_unblock(rl): its shared socket may be written again. */
void	relay_unblock(struct relay *rl);

/*
 * relay_print_counters(c, s): the counter lines, on stderr; a line more
 * for each side that reconnects (s may be NULL: sums of many sessions).
 */
void	relay_print_counters(const struct counters c[2],
	    const struct side s[2]);

/* ----------------------------------------------------------------- redial.c */

/*
 * redial_init(a, s, verbose): s, of address a (retry), starts down; the
 * first attempt is made at once by redial_step.
 */
void	redial_init(struct addr *a, struct side *s, int verbose);

/*
 * redial_lost(s, why): s's connection ended (why: "eof", or an errno's
 * text); it is closed and the next attempt scheduled.
 */
void	redial_lost(struct side *s, const char *why);

/*
 * redial_step(s, writable): a down side's turn: make the attempt that is
 * due, or finish the one under way (writable: its socket said so, or its
 * deadline passed).  Returns the state after: RD_UP once connected.
 */
enum redial_state redial_step(struct side *s, int writable);

/*
 * redial_up(s): s's connection is ready for datagrams (for tls:, once its
 * handshake is done): the attempt counts as a success.
 */
void	redial_up(struct side *s);

/*
 * redial_fail(s, why): s's connection was made, but it failed before it
 * was ready (its TLS handshake): it is closed, and counted as a failed
 * attempt.  Returns the state after (RD_GONE: retry=N used up).
 */
enum redial_state redial_fail(struct side *s, const char *why);

/* redial_ms(s): ms until s needs redial_step again, -1: only when writable */
int	redial_ms(const struct side *s);

/* redial_print(s): "ADDRESS: N reconnects, S s down" on stderr. */
void	redial_print(const struct side *s);

/* ------------------------------------------------------------------ tls.c */

/*
 * tls_setup(a): the TLS settings of a tls: or tls-listen: address, its
 * files read now (before -Z).  0, or -1 with a->err set.
 */
int	tls_setup(struct addr *a);
void	tls_cleanup(struct addr *a);

/*
 * tls_start(s, wake, arg, err, size): TLS on s's connected socket, its
 * handshake to be made by tls_handshake: once a server has the first
 * bytes of its peer, and a slot of max-handshakes is free (wake(arg) is
 * called when one comes free for it).  0, or -1 with err set.
 */
int	tls_start(struct side *s, void (*wake)(void *), void *arg, char *err,
	    size_t size);

/* tls_end(s): free s's TLS (its socket stays); nothing is sent. */
void	tls_end(struct side *s);

/*
 * tls_handshake(s): a step of the handshake: 1 done, 0 under way (wait
 * for tls_want(s)), -1 failed or timed out (tls_why(s) says why).
 */
int	tls_handshake(struct side *s);

/* tls_up(s): the handshake is done. */
int	tls_up(const struct side *s);

/* tls_due(s): the handshake's deadline (loop_now's ms); 0 when done. */
long long tls_due(const struct side *s);

/*
 * tls_want(s, reading): what the TLS layer waits for on the socket
 * (EPOLLIN or EPOLLOUT) before the handshake, or a read (reading) or a
 * write that said EAGAIN, may go on.
 */
uint32_t tls_want(const struct side *s, int reading);

/*
 * tls_read(s, buf, len), tls_write(s, buf, len): as read(2) and write(2)
 * on a non-blocking socket: EAGAIN, a reset's errno, or EPROTO for a TLS
 * failure (tls_why).  tls_read's 0 is the end: close_notify, or the
 * connection closed without one (tls_why then says so).  tls_write may
 * take less than len; after EAGAIN it must be given the same bytes again
 * (maybe more after them, maybe elsewhere in memory).
 */
ssize_t	tls_read(struct side *s, void *buf, size_t len);
ssize_t	tls_write(struct side *s, const void *buf, size_t len);

/* tls_pending(s): bytes already read from the socket wait in TLS. */
int	tls_pending(const struct side *s);

/*
 * tls_close_notify(s): say the end (close_notify), once, without
 * blocking.  Returns whether it went out whole.
 */
int	tls_close_notify(struct side *s);

/* tls_unclean(s): the peer closed without close_notify. */
int	tls_unclean(const struct side *s);

/* tls_why(s): the last failure, one line. */
const char *tls_why(const struct side *s);

/* tls_describe(s, buf, size): the connection, for -v. */
void	tls_describe(const struct side *s, char *buf, size_t size);

/* ------------------------------------------------------------------ tun.c */

/*
 * tun_open(a, s): open /dev/net/tun as a's device (IFF_TUN or IFF_TAP, no
 * packet info), set its MTU, address and state as asked; s->local names
 * the device.  Returns 0, or -1 with a->err set.
 */
int	tun_open(struct addr *a, struct side *s);

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

/* ---------------------------------------------------------------- multi.c */

/*
 * multi_run(a, s, li, o, stats): serve every peer of the listening address
 * a[li] (open, s[li] its side) with a session of its own in this process,
 * until a signal.  Returns the exit status.
 */
int	multi_run(struct addr a[2], struct side s[2], int li,
	    const struct relay_opts *o, int stats);

/* ---------------------------------------------------------------- serve.c */

/*
 * serve_run(a, o, s, stats): serve peers on the listening, forking address
 * a, a child per peer.  Returns -1 in a child, with s the peer's side;
 * in the parent, once a signal ends serving (children are ended too), the
 * exit status.
 */
int	serve_run(struct addr *a, const struct relay_opts *o, struct side *s,
	    int stats);

#endif /* DGRELAY_H */
