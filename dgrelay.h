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
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "base.h"

/* the one place the version is said; debian/changelog's first line must
 * agree (26-package.bats checks), and make deb reads it from here */
#define DGRELAY_VERSION	"0.2.0"

#define COUNT_DEF	64		/* -b */
#define COUNT_MAX	1024		/* sendmmsg/writev take at most 1024 */
#define SIZE_DEF	65535		/* -s */
#define SPEC_MAX	1024		/* longest ADDRESS argument */
#define UDP_BUF_DEF	(1 << 20)	/* SO_RCVBUF, SO_SNDBUF asked for UDP */
#define UDP_LISTEN_BUF	(16 << 20)	/* SO_RCVBUF(FORCE): udp-listen with
					 * fork or multi, a burst of peers */
#define NAME_MAX_	256		/* host names, "HOST PORT" strings */
#define FORK_MAX_DEF	256		/* max-children unless given */
#define MUXPING_DEF	30000		/* mux-ping= unless given, ms */
#define MULTI_MAX_DEF	16384		/* max-peers unless given */
#define QUARANTINE_MS	30000		/* multi: an ended session's UDP port
					 * kept from reuse, ms (multi.c) */
#define QUARANTINE_MAX	4096		/* ... at most this many at once */
#define ACCEPT_BATCH	64		/* connections accepted a turn: then
					 * the sessions ready meanwhile */
#define ACCEPT_PAUSE	1000		/* ms without accepting, out of
					 * descriptors or memory */
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
struct cmd;
struct loop;
struct iovec;
struct mmsghdr;

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
	const struct addr *a;
	enum redial_state state;
	long long	 due;		/* ms (loop_now): WAIT: next attempt;
					 * DIAL: its deadline */
	long long	 since;		/* UP: connected at; else down since */
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
	const char	*spec;		/* the argv text, for usage errors */
	char		 label[NAME_MAX_ + 32];	/* TYPE:PARAMETERS, without
					 * options: what messages call it */
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
	const struct runas *runas;	/* exec: -Z for the command, or NULL */
	int		 rfd, wfd;	/* fd: */
	char		 fdname[NAME_MAX_];	/* fd:NAME, from LISTEN_FDNAMES */
	/* options */
	int		 hasbind;
	char		 bindhost[NAME_MAX_];
	char		 bindport[8];
	int		 reuseport;
	int		 unlinkearly;	/* unix listen: remove the path first */
	int		 wideframe;	/* frame=u32be: 4-byte frame headers */
	int		 mux;		/* carriers of yamux streams */
	int		 muxping_ms;	/* mux-ping=: a Ping this often */
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
	/* made by the setup before serving, then only read */
	struct addrinfo	*names;		/* multi: the host's addresses, looked
					 * up once (sock_resolve_once) */
	char		 err[NAME_MAX_];	/* why parsing or setup failed */
};

/*
 * How a side moves datagrams, decided once when it is made: relay.c picks
 * its read and write functions by it.
 */
enum side_io {
	IO_DGRAM,		/* a datagram socket: recvmmsg, sendmmsg */
	IO_STREAM,		/* a byte stream: frames, read and writev */
	IO_PACKET,		/* not a socket (TUN): one read/write a datagram */
	IO_TLS,			/* frames inside TLS on a stream socket */
	IO_MUX			/* frames in a stream of a carrier (mux) */
};

struct relay;

/* An open endpoint. */
struct side {
	int		 rfd, wfd;
	enum side_io	 io;
	int		 seqpacket;	/* a 0-byte read is end of input */
	int		 fhdr;		/* a stream's frame header: FRAME_WIDE
					 * (frame=u32be), else FRAME_HDR */
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
	/* exec: the command, until exec_end is given it */
	struct cmd	*cmd;
	/* IO_MUX: its stream (carrier.c) */
	struct mstream	*ms;
	/* what opening it keeps (sock.c): a listener's socket (the side a
	 * pair or a child accepts into is the listener's), a path made to
	 * remove at close, a dial's addresses and the next to try, retry's
	 * state (rd points to it), and why the last step failed */
	int		 lfd;
	int		 unlink;
	struct addrinfo	*dialres, *dialnext;
	struct redial	 redial;
	char		 err[NAME_MAX_];
};

/*
 * addr_parse(spec, a): parse an ADDRESS argument into a; no system calls.
 * Returns 0, or -1 with the reason in a->err.
 */
int	addr_parse(const char *spec, struct addr *a);
/* addr_multi(a): a serves many sessions in this process: multi's
 * defaults (max-peers, stall-timeout, frame-timeout). */
void	addr_multi(struct addr *a);

/* addr_help(f): every address type's form, every option and where it
 * applies (from the parser's own tables). */
void	addr_help(FILE *f);

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
 * and listen (s->local then says where; s->lfd is the listening socket).
 * Returns 0, or -1 with s->err set.
 */
int	sock_open(const struct addr *a, struct side *s);

/*
 * sock_pending(a, s): s stands for address a, not opened yet (the relay
 * opens it later: relay_opener); closing it is harmless.
 */
void	sock_pending(const struct addr *a, struct side *s);

/*
 * sock_accept(a, ls, s): from the listening side ls (its lfd), take the
 * next peer and make s ready to relay (s->peer says who; s may be ls,
 * as a pair's is); nothing to do without a listening socket.  Returns 0,
 * or -1 with s->err set (errno as accept left it).
 */
int	sock_accept(const struct addr *a, struct side *ls, struct side *s);

/* sock_setopt(fd, level, name, val): an int option; 0 or -1. */
int	sock_setopt(int fd, int level, int name, int val);

/*
 * sock_options(a, s, fd): a's socket options (buffers, mark, dev,
 * reuseport) on fd; 0, or -1 with s->err.
 */
int	sock_options(const struct addr *a, struct side *s, int fd);

/* sock_side_init(a, s): s, empty, for address a: no descriptors yet. */
void	sock_side_init(const struct addr *a, struct side *s);

/*
 * What dial.c shares with the openers: sock_side_io(a, s, type) sets how
 * s relays on a socket of that type; sock_resolve looks host and port up
 * (a multi session's from a->names); sock_res_free lets go of what it
 * gave; sock_ip_socket makes a socket for ai (MPTCP with mptcp);
 * sock_bind_local applies bind=; sock_unix_addr fills a unix address
 * from a->path; sock_connect_failed says where a connect went.  Each
 * failure lands in s->err.
 */
void	sock_side_io(const struct addr *a, struct side *s, int type);
int	sock_resolve(const struct addr *a, struct side *s, const char *host,
	    const char *port, int family, int passive, struct addrinfo **res);
void	sock_res_free(const struct addr *a, struct addrinfo *res);
int	sock_ip_socket(const struct addr *a, struct side *s,
	    const struct addrinfo *ai);
int	sock_bind_local(const struct addr *a, struct side *s, int fd,
	    int family);
struct sockaddr_un;
socklen_t sock_unix_addr(const struct addr *a, struct sockaddr_un *sun);
int	sock_connect_failed(struct side *s, const struct sockaddr *sa,
	    socklen_t len);

/* ----------------------------------------------------------------- dial.c */

/* sock_dial_prepare(a, s): s opens down, to be dialled by the relay. */
int	sock_dial_prepare(const struct addr *a, struct side *s);

/*
 * sock_dial(a, s): one attempt to connect a (retry) without blocking, on
 * each of its addresses in turn: 0 connected (s relays on it), 1 under way
 * (wait until s->rfd is writable, then sock_dial_end), -1 failed, the
 * last reason in s->err.
 */
int	sock_dial(const struct addr *a, struct side *s);

/* sock_dial_end(a, s): the attempt under way has an answer: as sock_dial. */
int	sock_dial_end(const struct addr *a, struct side *s);

/*
 * sock_hangup(a, s): close s's connection (retry: it was lost, or an
 * attempt is abandoned); the address stays ready for sock_dial.
 */
void	sock_hangup(const struct addr *a, struct side *s);

/*
 * sock_resolve_once(a): look a's host name up now, for good: its
 * connections use those addresses, never asking the resolver again (a
 * multi server's loop must not wait on DNS).  0, or -1 with a->err.
 */
int	sock_resolve_once(struct addr *a);
void	sock_forget_names(struct addr *a);

/*
 * sock_accept_failed(a): the policy of a listener that keeps listening
 * (fork, multi) after sock_accept said -1: 1 when it must pause for
 * ACCEPT_PAUSE (out of descriptors or memory: said once, with the pause);
 * 0 when nothing was waiting or the peer gave up (quiet), or after saying
 * any other error.
 */
int	sock_accept_failed(const struct addr *a, const struct side *s);

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
 * sock_close(a, s): close s, restore inherited descriptors, unlink paths.
 * An exec: command (s->cmd) is the caller's to end (exec_end).
 */
void	sock_close(const struct addr *a, struct side *s);

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
 * sock_getname(s, fd, peer, buf, size): "HOST PORT" of fd's own end (peer
 * 0) or of its peer (peer 1) into buf.  0, or -1 with s->err set.
 */
int	sock_getname(struct side *s, int fd, int peer, char *buf,
	    size_t size);

/* sock_syserr(s, what): "what: strerror(errno)" into s->err; returns -1. */
int	sock_syserr(struct side *s, const char *what);

/* side_fail(s, fmt, ...): why opening s failed, one line, into s->err;
 * returns -1. */
int	side_fail(struct side *s, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * sock_side(a, s, fd, type): s relays on fd, a connected socket of this
 * type (SOCK_STREAM: framed); fd is made non-blocking.  0, or -1.
 */
int	sock_side(const struct addr *a, struct side *s, int fd, int type);

/* sock_family(fd): the address family of socket fd, -1 with errno. */
int	sock_family(int fd);

/* sock_nonblock(fd, saved): O_NONBLOCK on; the flags before in *saved. */
int	sock_nonblock(int fd, int *saved);

/* ------------------------------------------------------------------- fd.c */

/* fd_open(a, s): fd:N, fd:R:W, fd:NAME.  0, or -1 with s->err set. */
int	fd_open(const struct addr *a, struct side *s);

/* fd_stdio(a, s): stdio, frames on descriptors 0 and 1. */
int	fd_stdio(const struct addr *a, struct side *s);

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
int	exec_open(const struct addr *a, struct side *s);

/* exec_pid(c): its process. */
pid_t	exec_pid(const struct cmd *c);

/*
 * exec_end(l, c, keep, verbose): c's side is closed: the command is ended
 * on l (a moment to end by itself, SIGTERM, then SIGKILL, each on a
 * timer; never a wait in place).  keep: the caller reads it afterwards
 * (exec_report) and frees it (exec_free); else it reports and frees
 * itself once over.
 */
void	exec_end(struct loop *l, struct cmd *c, int keep, int verbose);

/* exec_wait(l): run l until every command being ended is over. */
void	exec_wait(struct loop *l);

/*
 * exec_report(c, verbose, status): say how c ended (always when it failed
 * by itself or could not be ended; with verbose, anyway); status, or 1
 * if status is 0 and the command failed.
 */
int	exec_report(struct cmd *c, int verbose, int status);
void	exec_free(struct cmd *c);

/* ---------------------------------------------------------------- runas.c */

/* runas_lookup(name, r): -Z name into r; NULL, or why not. */
const char *runas_lookup(const char *name, struct runas *r);

/*
 * runas_switch(r): become r's user with its groups, for good (checked:
 * root cannot be regained).  NULL, or the call that failed (errno set).
 */
const char *runas_switch(const struct runas *r);

/* runas_become(r): runas_switch, its failure said; 0 or -1. */
int	runas_become(const struct runas *r);

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
	long long	 stats_ms;	/* -i: the counters this often, 0: no */
	int		 json;		/* -J: the counters as JSON lines */
	int		 stats;		/* -S: ... as text lines */
};

/* relay_abort(rl, why): a failure of the loop itself: end now. */
void	relay_abort(struct relay *rl, const char *why);

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
 * relay_push(rl, i, dg, len, more): a datagram the owner read for side i
 * (a multi udp-listen's socket), queued as if side i had read it, and the
 * session's turn made at once (the session may end: over is called), or,
 * with more, when the owner calls relay_flush(rl) after the session's
 * next datagrams.  Any other result than PUSH_OK: the owner drops it and
 * counts it by cause.
 */
enum push_res relay_push(struct relay *rl, int i, const uint8_t *dg,
	    size_t len, int more);
void	relay_flush(struct relay *rl);

/* relay_group(rl, g): the session's source (multi), whose share it uses. */
void	relay_group(struct relay *rl, struct pool_group *g);

/* relay_unblock(rl): its shared socket may be written again. */
void	relay_unblock(struct relay *rl);

/* ----------------------------------------------------------------- redial.c */

/*
 * redial_init(a, s, verbose): s, of address a (retry), starts down; the
 * first attempt is made at once by redial_step.
 */
void	redial_init(const struct addr *a, struct side *s, int verbose);

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

/* redial_state(s): where s stands (RD_UP for a side without retry);
 * inline, as the relay asks it of every side on every turn. */
static inline enum redial_state
redial_state(const struct side *s)
{
	return s->rd == NULL ? RD_UP : s->rd->state;
}

/* redial_retries(s): its retry=N, RETRY_FOREVER, or 0 (none, or a multi
 * session's one attempt). */
int	redial_retries(const struct side *s);

/* redial_why(s, buf, size): why it gave up, with its attempts. */
void	redial_why(const struct side *s, char *buf, size_t size);

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
 * the device.  Returns 0, or -1 with s->err set.
 */
int	tun_open(const struct addr *a, struct side *s);

/* ---------------------------------------------------------------- multi.c */

/*
 * multi_run(l, a, s, li, o, stats): serve every peer of the listening address
 * a[li] (open, s[li] its side) with a session of its own in this process,
 * until a signal.  Returns the exit status.
 */
int	multi_run(struct loop *l, struct addr a[2], struct side s[2], int li,
	    const struct relay_opts *o, int stats);

/* ---------------------------------------------------------------- dgram.c */

/*
 * dg_recv_slot(m, iov, buf, len, from, ctl, ctllen): message m of a
 * recvmmsg into len bytes at buf, the sender's address into from and
 * control messages into ctl (each when not NULL).  A session's datagram
 * source and multi's listener lay out their receives with it.
 */
void	dg_recv_slot(struct mmsghdr *m, struct iovec *iov, void *buf,
	    size_t len, struct sockaddr_storage *from, void *ctl,
	    size_t ctllen);
/* dg_gro_on(fd, size): UDP_GRO on fd, read in slots of size bytes, when
 * they hold any coalesced run (1); dg_gro_size(h): a received message's
 * segment size (0: one datagram). */
int	dg_gro_on(int fd, size_t size);
size_t	dg_gro_size(struct msghdr *h);

/* ------------------------------------------------------------- counters.c */

/* Figures of the whole process, counted where they happen (counters.c). */
struct proc_figures {
	uint64_t	 tls_done;	/* TLS handshakes done */
	uint64_t	 tls_failed;	/* ... failed or timed out */
	uint64_t	 scrapes;	/* metrics requests answered */
};
extern struct proc_figures procfig;

/* counters_add(t, c): c's counts added to t's. */
void	counters_add(struct counters *t, const struct counters *c);

/*
 * counters_print(c, s): the counter lines, 1>2 and 2>1, on stderr; a
 * line more for each side that reconnects (s may be NULL).
 */
void	counters_print(const struct counters c[2], const struct side s[2]);

/*
 * counters_field(i, c, key, label): field i of c (0, 1, ... until it
 * returns -1): its value, its name for JSON and metrics (key), and for
 * the -S line (label).
 */
int	counters_field(size_t i, const struct counters *c, uint64_t *value,
	    const char **key, const char **label);

/* ------------------------------------------------------------- report.c */

/*
 * What a running dgrelay has done, whatever runs it (the pair, multi, the
 * fork parent): filled by its owner, said as JSON (-J) or as Prometheus
 * metrics (-M).  Zero where a mode has no such figure.
 */
struct report {
	const char	*mode;		/* "pair", "multi", "fork" */
	struct counters	 c[2];		/* 1>2, 2>1 (fork: its children's) */
	int		 listener;	/* multi or fork: the figures below */
	uint64_t	 served;	/* sessions, or children */
	uint64_t	 running;
	uint64_t	 newpeer;	/* datagrams from new peers dropped */
	uint64_t	 full[4];	/* multi: to full sessions dropped, by
					 * cause: queue, share, pool, ending */
	uint64_t	 kdrops;	/* by the kernel at the listener */
	uint64_t	 late;		/* multi: replies to ended sessions;
					 * fork: hand-overs come too late */
	uint64_t	 quarantined;	/* multi: ended sessions' ports held */
	int		 haspool;
	uint64_t	 lent, peak, cap;	/* the pool's bytes */
	int		 mux;		/* carriers: the figures below */
	uint64_t	 carriers;	/* up now */
	uint64_t	 carried;	/* accepted or dialled, in all */
	uint64_t	 muxdown;	/* sessions not opened: no carrier */
	uint64_t	 sopened, saccepted;	/* streams, in all */
	uint64_t	 streams;	/* ... running now */
	int		 redials[2];	/* side i reconnects (retry) */
	uint64_t	 reconnects[2];
	long long	 down_ms[2];
};

/* report_json(r, event): r as one JSON object, a line on stderr. */
void	report_json(const struct report *r, const char *event);

/* report_say(fill, arg, event): fill(arg, r) said as report_json does. */
void	report_say(void (*fill)(void *, struct report *), void *arg,
	    const char *event);

/*
 * report_metrics(r, buf, size): r and the process's own figures in the
 * Prometheus text format (0.0.4); the length, or -1 if it did not fit.
 */
int	report_metrics(const struct report *r, char *buf, size_t size);

/* redial_figures(s, r, i): side s's reconnects into r's side i. */
void	redial_figures(const struct side *s, struct report *r, int i);

/* ------------------------------------------------------------ carrier.c */

struct carrier;
struct mstream;

/*
 * carrier_new(l, s, dialer, max, ping_ms, verbose, owner, stream_in,
 * gone): a mux carrier on s's connected socket (s->rfd, its peer named in
 * s; IO_TLS: a TLS handshake first, s->tlsc's), a Ping every ping_ms
 * (lost when one is not answered by the next); stream_in(owner,
 * c, ms) for each stream the peer opens; gone(owner, c) once it is lost
 * (the owner frees it after the pass: carrier_free).
 */
struct carrier *carrier_new(struct loop *l, const struct side *s, int dialer,
	    size_t max_streams, long long ping_ms, int verbose, void *owner,
	    void (*stream_in)(void *, struct carrier *, struct mstream *),
	    void (*gone)(void *, struct carrier *));
void	carrier_free(struct carrier *c);
/* carrier_goaway(c): no new streams (Go Away), what is queued written. */
void	carrier_goaway(struct carrier *c);
/* carrier_open(c): a new stream on c (its SYN sent after this pass). */
struct mstream *carrier_open(struct carrier *c);
/* carrier_side(c, ms, ps): ps is stream ms of c, as a session's side. */
void	carrier_side(struct carrier *c, struct mstream *ms, struct side *ps);
/* carrier_flush(ms): the carrier writes what ms queued, after this pass. */
void	carrier_flush(struct mstream *ms);
const char *carrier_peer(const struct carrier *c);
size_t	carrier_streams(const struct carrier *c);
/* carrier_up(c): streams are carried (on TLS: its peer authenticated). */
int	carrier_up(const struct carrier *c);
/* carrier_takes(c): up, and new streams may be opened (no Go Away). */
int	carrier_takes(const struct carrier *c);
/* carrier_on_up(c, up): up(owner, c) once its TLS handshake is done. */
void	carrier_on_up(struct carrier *c, void (*up)(void *, struct carrier *));
/* carrier_figures(c, f): its streams opened, accepted, running. */
void	carrier_figures(const struct carrier *c, uint64_t f[3]);

/* relay_kick(rl): a turn of the session once this pass is over. */
void	relay_kick(struct relay *rl);

/* ------------------------------------------------------------ metrics.c */

struct loop;

/*
 * metrics_parse(spec): -M SPEC, a listening address (tcp-listen or
 * unix-listen): NULL, or why not.  metrics_open(verbose): open it (if
 * -M was given); -1 with the reason said.
 */
const char *metrics_parse(const char *spec);
int	metrics_open(int verbose);

/*
 * metrics_serve(l, fill, arg): from now on, answer scrapes on l with what
 * fill(arg, r) says (each mode sets it as it starts; NULL: stop).
 */
void	metrics_serve(struct loop *l, void (*fill)(void *, struct report *),
	    void *arg);

/*
 * metrics_close(owner): close the listener and every scrape; a fork child
 * (owner 0) leaves a unix socket's path to the parent.
 */
void	metrics_close(int owner);

/* ----------------------------------------------------------------- fork.c */

/*
 * fork_run(l, a, o, s, stats): serve peers on the listening, forking
 * address a, a child per peer, on loop l.  Returns -1 in a child, with s
 * the peer's side and l a fresh loop; in the parent, once a signal ends
 * serving (children are ended too), the exit status.
 */
/*
 * fork_child_counters(): in a child of a fork listener, where it counts
 * (shared with the parent, which sums its children); NULL elsewhere.
 */
struct counters *fork_child_counters(void);

int	fork_run(struct loop *l, struct addr *a, const struct relay_opts *o,
	    struct side *s, int stats);

#endif /* DGRELAY_H */
