/*
 * fork.c: the fork option.  The parent keeps the listening socket and the
 * pids of its children, nothing else; every peer gets a child that runs one
 * relay.  fork_run() returns in a child with the peer's side ready, and in
 * the parent only when serving ends.  The parent runs on the loop (loop.c)
 * like every relay: the listener is a watch, the settle and pause
 * deadlines are timers, ended children come with SIGCHLD.
 *
 * Stream listeners: a child per accepted connection.
 * udp-listen: a child per new source address.  The parent makes a socket
 * bound where the listener is (SO_REUSEPORT) and connected to the new peer,
 * so the kernel sends that peer's later datagrams to it; what the peer had
 * already queued on the listener is drained into the child's hand-over
 * buffer, in order, before the child starts: nothing lost, nothing twice.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

#define SETTLE_MS	5	/* new UDP peers wait this long for stragglers */
#define HELD_MAX	(4 << 20)	/* hand-over bytes, all new peers */
#define DRAIN_MAX	1024	/* datagrams taken from a socket at a time */
#define DRAIN_PASSES	8	/* rounds over the listener and new sockets */

/* A child, and for udp-listen the peer it serves. */
struct kid {
	pid_t			 pid;
	size_t			 slot;		/* its counters, shared */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	char			 name[NAME_MAX_];	/* the peer's */
};

/* A handed-over datagram: where its frame is, when the kernel took it. */
struct held {
	size_t		 off;
	struct timespec	 ts;
	size_t		 seq;		/* arrival here: ties keep this order */
};

/* A new UDP peer, its socket made, its child not yet forked. */
struct newpeer {
	struct side	 s;
	uint8_t		*buf;		/* hand-over frames (mapped) */
	size_t		 len, cap;
	struct held	*held;		/* mapped, heldcap bytes */
	size_t		 nheld, heldcap;
	uint64_t	 kdrops;	/* its socket's, by the kernel */
};

struct serve {
	struct addr		*a;
	const struct relay_opts	*o;
	struct kid		*kids;
	size_t			 nkids, cap;
	struct ptab		 peers;		/* udp: every peer's place */
	struct newpeer		*np;		/* udp: pending new peers */
	size_t			 nnp, npcap;
	size_t			 held;		/* bytes in their hand-overs */
	uint64_t		 served, dropped, dropwarned, late;
	uint64_t		 kdrops;	/* by the kernel, at the
						 * listening socket */
	time_t			 warned;	/* last max-children warning */
	struct loop		*l;
	struct watch		 lw;		/* the listener */
	struct timer		 settle;	/* pending peers fork */
	struct timer		 pause;		/* out of descriptors: wait */
	int			 paused;
	int			 child;		/* this is a child now */
	int			 stopping;	/* children ended: wait */
	int			 killed;	/* ... past their grace */
	int			 status;
	/* the children's counters: a slot each in memory shared with them
	 * (they count into it), added to done when they end */
	struct counters		(*slots)[2];
	size_t			 nslots, top;	/* top: slots ever used */
	size_t			*freed;		/* ... and given back */
	size_t			 nfreed;
	struct counters		 done[2];
	struct side		*ls;		/* the listener's side: a stream
						 * peer is accepted into it, and
						 * it is the child's side then */
};

/* This process's counters, when it is a child of a fork listener. */
static struct counters	*child_slot;

struct counters *
fork_child_counters(void)
{
	return child_slot;
}

/* A slot for the next child's counters, zeroed; nslots: none free. */
static size_t
slot_take(struct serve *sv)
{
	size_t	 i;

	if (sv->slots == NULL)
		return sv->nslots;
	if (sv->nfreed > 0)
		i = sv->freed[--sv->nfreed];
	else if (sv->top < sv->nslots)
		i = sv->top++;
	else
		return sv->nslots;
	memset(sv->slots[i], 0, sizeof(sv->slots[i]));
	return i;
}

/* A child ended: what it counted is the parent's now; its slot free. */
static void
slot_give(struct serve *sv, size_t i)
{
	size_t	*f;

	if (i >= sv->nslots)
		return;
	counters_add(&sv->done[0], &sv->slots[i][0]);
	counters_add(&sv->done[1], &sv->slots[i][1]);
	if (sv->nfreed % 64 == 0) {
		if ((f = reallocarray(sv->freed, sv->nfreed + 64,
		    sizeof(*f))) == NULL)
			return;		/* the slot is lost, not its counts */
		sv->freed = f;
	}
	sv->freed[sv->nfreed++] = i;
}

static int
kid_add(struct serve *sv, pid_t pid, const struct side *s, size_t slot)
{
	struct pent	*e;
	struct kid	*k;

	if (sv->nkids == sv->cap) {
		k = reallocarray(sv->kids, sv->cap ? sv->cap * 2 : 16,
		    sizeof(*k));
		if (k == NULL)
			return -1;
		sv->kids = k;
		sv->cap = sv->cap ? sv->cap * 2 : 16;
	}
	k = &sv->kids[sv->nkids++];
	k->pid = pid;
	k->slot = slot;
	memcpy(&k->peer, &s->peeraddr, s->peerlen);
	k->peerlen = s->peerlen;
	strlcpy(k->name, s->peer, sizeof(k->name));
	sv->served++;
	if ((e = ptab_find(&sv->peers, &s->peeraddr, s->peerlen)) != NULL)
		e->pid = pid;		/* from now on, its child's */
	return 0;
}

/* Reap children that ended (block: wait for all); no zombies. */
static void
reap(struct serve *sv, int block)
{
	struct kid	 k;
	pid_t		 pid;
	size_t		 i;
	int		 st;

	while ((pid = waitpid(-1, &st, block ? 0 : WNOHANG)) > 0) {
		for (i = 0; i < sv->nkids && sv->kids[i].pid != pid; i++)
			;
		if (i == sv->nkids)
			continue;	/* not one of ours */
		k = sv->kids[i];
		ptab_del(&sv->peers, &k.peer, k.peerlen);
		sv->kids[i] = sv->kids[--sv->nkids];
		slot_give(sv, k.slot);
		if (!sv->o->verbose)
			continue;
		if (WIFSIGNALED(st))
			logx("%s: child %d for %s: killed by signal %d",
			    sv->a->label, (int)pid, k.name, WTERMSIG(st));
		else
			logx("%s: child %d for %s: exit %d", sv->a->label,
			    (int)pid, k.name, WEXITSTATUS(st));
	}
}

static int
full(const struct serve *sv)
{
	return sv->a->maxchildren > 0 &&
	    sv->nkids >= (size_t)sv->a->maxchildren;
}

/* Drop a datagram from a new peer: counted, warned at most once a second. */
static void
drop_new(struct serve *sv)
{
	sv->dropped++;
	if (sv->o->verbose && log_due(&sv->warned)) {
		logx("%s: max-children %d reached: %llu datagrams from new "
		    "peers dropped", sv->a->label, sv->a->maxchildren,
		    (unsigned long long)(sv->dropped - sv->dropwarned));
		sv->dropwarned = sv->dropped;
	}
}

static int
spawn(struct serve *sv, const struct side *s)
{
	size_t	 slot = slot_take(sv);
	pid_t	 pid;

	if ((pid = fork()) == -1) {
		logerr("%s: fork for %s", sv->a->label, s->peer);
		slot_give(sv, slot);
		return -1;
	}
	if (pid == 0) {
		(void)close(sv->ls->lfd);
		sv->ls->lfd = -1;
		free(sv->kids);
		free(sv->freed);
		if (slot < sv->nslots)
			child_slot = sv->slots[slot];
		return 1;
	}
	if (kid_add(sv, pid, s, slot) == -1)
		logerr("%s: child list (child %d runs; SIGTERM will miss "
		    "it)", sv->a->label, (int)pid);
	if (sv->o->verbose)
		logx("%s: child %d: %s %s", sv->a->label, (int)pid,
		    s->io != IO_DGRAM ? "connection from" : "peer", s->peer);
	return 0;
}

/* Out of descriptors or memory: stop taking peers for a second. */
static void
pause_accepting(struct serve *sv)
{
	sv->paused = 1;
	(void)loop_timer(sv->l, &sv->pause, loop_now() + ACCEPT_PAUSE);
}

/* One connection: 1 in its child, 2 in the parent, 0: none taken. */
static int
serve_stream(struct serve *sv, struct side *s)
{
	int	 r;

	if (sock_accept(sv->a, sv->ls, s) == -1) {
		if (sock_accept_failed(sv->a, s))
			pause_accepting(sv);
		return 0;
	}
	if ((r = spawn(sv, s)) != 0)
		return r == 1;
	(void)close(s->rfd);	/* the child has it */
	return 2;
}

/*
 * The pending entry for the sender of ss, made when new; NULL: dropped.
 * A sender whose child runs is a straggler: its datagram was on its way to
 * the listener while its socket was being connected, and came after the
 * hand-over.  It cannot reach the child now: dropped and counted.
 */
/* Room for one more pending peer. */
static int
np_room(struct serve *sv)
{
	struct newpeer	*np;
	size_t		 cap = sv->npcap ? sv->npcap * 2 : 64;

	if (sv->nnp < sv->npcap)
		return 0;
	if ((np = reallocarray(sv->np, cap, sizeof(*np))) == NULL)
		return -1;
	sv->np = np;
	sv->npcap = cap;
	return 0;
}

/* The steps of a per-peer UDP socket, each named when it fails. */
static int
udp_peer_socket(const struct addr *a, struct side *s, int fd,
    const struct sockaddr *local, socklen_t llen, const struct sockaddr *peer,
    socklen_t plen)
{
	if (local->sa_family == AF_INET6)
		(void)sock_setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	if (sock_setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1)
		return sock_syserr(s, "setsockopt SO_REUSEPORT");
	if (sock_setopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1) == -1)
		return sock_syserr(s, "setsockopt SO_TIMESTAMPNS");
	if (sock_options(a, s, fd) == -1)
		return -1;
	if (bind(fd, local, llen) == -1)
		return sock_syserr(s, "bind");
	if (connect(fd, peer, plen) == -1)
		return sock_syserr(s, "connect");
	if (sock_nonblock(fd, NULL) == -1)
		return sock_syserr(s, "fcntl O_NONBLOCK");
	return 0;
}

/*
 * For the udp-listen a: a socket bound where the listener is (SO_REUSEPORT),
 * replies leaving from dst (where the peer wrote), connected to the new
 * peer, so that the kernel hands it that peer's later datagrams.
 */
static int
peer_socket(const struct addr *a, int lfd, const struct sockaddr *peer,
    socklen_t plen, const struct sockaddr_storage *dst, struct side *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 fd;

	sock_side_init(a, s);
	if (getsockname(lfd, (struct sockaddr *)&ss, &len) == -1)
		return sock_syserr(s, "getsockname");
	/* the address the peer wrote to, on the listener's port: replies
	 * leave from it, not from whichever address the route prefers */
	if (dst != NULL && dst->ss_family == ss.ss_family) {
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_addr =
			    ((const struct sockaddr_in *)dst)->sin_addr;
		else
			((struct sockaddr_in6 *)&ss)->sin6_addr =
			    ((const struct sockaddr_in6 *)dst)->sin6_addr;
	}
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return sock_syserr(s, "socket");
	if (udp_peer_socket(a, s, fd, (struct sockaddr *)&ss, len, peer,
	    plen) == -1) {
		close(fd);
		return -1;
	}
	s->rfd = s->wfd = fd;
	s->wsock = 1;
	memcpy(&s->peeraddr, peer, plen);
	s->peerlen = plen;
	sock_ntop(peer, plen, s->peer, sizeof(s->peer));
	return 0;
}

/*
 * The index of the pending entry for the sender of ss, made when new;
 * -1: dropped.  A sender whose child runs is a straggler: its datagram was
 * on its way to the listener while its socket was being connected, and
 * came after the hand-over.  It cannot reach the child now: dropped and
 * counted.  New peers are bounded by max-children, not per round.
 */
static ssize_t
peer_of(struct serve *sv, const struct sockaddr_storage *ss, socklen_t len,
    const struct sockaddr_storage *dst)
{
	struct newpeer	*p;
	struct pent	*e;
	char		 name[NAME_MAX_];

	if ((e = ptab_find(&sv->peers, ss, len)) != NULL) {
		if (e->pid == 0)
			return (ssize_t)e->np;
		sv->late++;
		return -1;
	}
	if (sv->nkids + sv->nnp >= (size_t)sv->a->maxchildren) {
		drop_new(sv);
		return -1;
	}
	if (np_room(sv) == -1 || (e = ptab_add(&sv->peers, ss, len)) == NULL) {
		logx("%s: new peer table: out of memory; taking new peers "
		    "again in 1 s", sv->a->label);
		pause_accepting(sv);
		sv->dropped++;
		return -1;
	}
	p = &sv->np[sv->nnp];
	memset(p, 0, sizeof(*p));
	if (peer_socket(sv->a, sv->ls->lfd, (const struct sockaddr *)ss, len,
	    dst, &p->s) == -1) {
		e->dead = 1;
		sock_ntop((const struct sockaddr *)ss, len, name, sizeof(name));
		logx("%s: peer %s: %s; taking new peers again in 1 s",
		    sv->a->label, name, p->s.err);
		pause_accepting(sv);
		sv->dropped++;
		return -1;
	}
	e->np = sv->nnp;
	if (sv->nnp++ == 0)	/* the stragglers' moment */
		(void)loop_timer(sv->l, &sv->settle, loop_now() + SETTLE_MS);
	return (ssize_t)e->np;
}

/*
 * Hand-over memory is mapped, not malloc'd: a child unmaps the other
 * peers' without writing a byte of it, so none of it becomes the child's
 * private copy (free() would write heap metadata into shared pages).
 */
static int
map_grow(void *pp, size_t *cap, size_t need)
{
	void	**p = pp, *q;
	size_t	 n = *cap ? *cap : 4096;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return 0;
	q = *cap ? mremap(*p, *cap, n, MREMAP_MAYMOVE) : mmap(NULL, n,
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

static void
newpeer_free(struct newpeer *p)
{
	if (p->cap > 0)
		(void)munmap(p->buf, p->cap);
	if (p->heldcap > 0)
		(void)munmap(p->held, p->heldcap);
	p->buf = NULL;
	p->held = NULL;
	p->cap = p->heldcap = 0;
}

static int
hand_over(struct newpeer *p, const uint8_t *dg, size_t len,
    const struct timespec *ts)
{
	if (map_grow(&p->buf, &p->cap, p->len + FRAME_HDR + len) == -1 ||
	    map_grow(&p->held, &p->heldcap, (p->nheld + 1) *
	    sizeof(*p->held)) == -1)
		return -1;
	p->held[p->nheld] = (struct held){ p->len, *ts, p->nheld };
	p->nheld++;
	frame_put(p->buf + p->len, len);
	memcpy(p->buf + p->len + FRAME_HDR, dg, len);
	p->len += FRAME_HDR + len;
	return 0;
}

static int
held_cmp(const void *x, const void *y)
{
	const struct held	*a = x, *b = y;

	if (a->ts.tv_sec != b->ts.tv_sec)
		return a->ts.tv_sec < b->ts.tv_sec ? -1 : 1;
	if (a->ts.tv_nsec != b->ts.tv_nsec)
		return a->ts.tv_nsec < b->ts.tv_nsec ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/*
 * The hand-over in the order the kernel took the datagrams: a peer's first
 * datagrams may be split between the listener and its own socket.
 */
static uint8_t *
hand_over_sorted(struct newpeer *p)
{
	uint8_t	*out;
	size_t	 i, n, len = 0;

	if (p->nheld == 0 || (out = malloc(p->len)) == NULL)
		return NULL;
	qsort(p->held, p->nheld, sizeof(*p->held), held_cmp);
	for (i = 0; i < p->nheld; i++) {
		n = FRAME_HDR + frame_get(p->buf + p->held[i].off);
		memcpy(out + len, p->buf + p->held[i].off, n);
		len += n;
	}
	return out;
}

/*
 * One datagram, the kernel's receive time and, on a wildcard listener,
 * the address it was sent to (*hasdst); -1 when none is left.
 */
static ssize_t
recv_stamped(int fd, uint8_t *dg, size_t size, struct sockaddr_storage *ss,
    socklen_t *len, struct timespec *ts, struct sockaddr_storage *dst,
    int *hasdst, uint64_t *drops)
{
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(struct timespec)) +
			    CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			    CMSG_SPACE(sizeof(uint32_t))];
	}		 cbuf;
	struct iovec	 iov = { dg, size };
	struct msghdr	 m;
	struct cmsghdr	*c;
	ssize_t		 r;

	memset(&m, 0, sizeof(m));
	m.msg_name = ss;
	m.msg_namelen = sizeof(*ss);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf.buf;
	m.msg_controllen = sizeof(cbuf.buf);
	while ((r = recvmsg(fd, &m, MSG_DONTWAIT)) == -1 && errno == EINTR)
		;
	if (r == -1)
		return -1;
	*len = m.msg_namelen;
	clock_gettime(CLOCK_REALTIME, ts);	/* no stamp: now */
	for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_TIMESTAMPNS)
			memcpy(ts, CMSG_DATA(c), sizeof(*ts));
	*hasdst = sock_pktinfo(&m, ss->ss_family, dst) == 0;
	sock_drops(&m, drops);
	return r;
}

/* p's hand-over is as long as it may be: -b datagrams, HELD_MAX in all. */
static int
held_full(const struct serve *sv, const struct newpeer *p, size_t len)
{
	return p->nheld >= sv->o->count ||
	    sv->held + FRAME_HDR + len > HELD_MAX;
}

/*
 * Drain fd, the listener or the socket of pending peer own: each new
 * sender gets a socket connected to it at once (its later datagrams go
 * there), and what it had queued goes into its hand-over.  A pending
 * peer's socket can hold other senders' datagrams, taken between its bind
 * and its connect: they go to their own sender's hand-over.  Memory is
 * bounded: a full hand-over leaves the rest in the peer's own socket for
 * its child; from elsewhere, past the bound, datagrams are dropped and
 * counted.  Returns how many were taken.
 */
static size_t
udp_drain(struct serve *sv, int fd, ssize_t own)
{
	static uint8_t		 dg[65536];
	struct sockaddr_storage	 ss, dst;
	struct timespec		 ts;
	struct newpeer		*p;
	socklen_t		 len;
	ssize_t			 r, k;
	size_t			 n = 0;
	int			 hasdst;

	/* np may move as peers are added: indices, not pointers */
	while (n < DRAIN_MAX && (own < 0 || !held_full(sv, &sv->np[own], 0)) &&
	    (r = recv_stamped(fd, dg, sizeof(dg), &ss, &len, &ts, &dst,
	    &hasdst, own < 0 ? &sv->kdrops : &sv->np[own].kdrops)) != -1) {
		n++;
		if ((k = peer_of(sv, &ss, len, hasdst ? &dst : NULL)) < 0)
			continue;
		p = &sv->np[k];
		if (held_full(sv, p, (size_t)r) ||
		    hand_over(p, dg, (size_t)r, &ts) == -1)
			sv->dropped++;
		else
			sv->held += FRAME_HDR + (size_t)r;
	}
	return n;
}

/*
 * The listener and every pending socket, until all are empty, for a few
 * rounds at most: a flood cannot keep the loop from its timers.
 */
static void
udp_drain_all(struct serve *sv)
{
	size_t	 i, n;
	int	 pass = 0;

	do {
		n = udp_drain(sv, sv->ls->lfd, -1);
		for (i = 0; i < sv->nnp; i++)
			n += udp_drain(sv, sv->np[i].s.rfd, (ssize_t)i);
	} while (n > 0 && ++pass < DRAIN_PASSES);
}

/*
 * The pending peers have settled: a last drain takes what was on its way
 * when their sockets connected; then a child each, its side checking
 * that every datagram is its peer's.  Returns 1 in a child.
 */
static int
udp_fork(struct serve *sv, struct side *child)
{
	struct newpeer	*p;
	size_t		 i, j;
	int		 in_child = 0, r;

	udp_drain_all(sv);
	for (i = 0; i < sv->nnp && !in_child; i++) {
		p = &sv->np[i];
		p->s.lockpeer = p->s.locked = 1;	/* foreign: counted */
		if ((r = spawn(sv, &p->s)) == -1)	/* no child: forgotten */
			ptab_del(&sv->peers, &p->s.peeraddr, p->s.peerlen);
		if (r == 1) {
			in_child = 1;
			ptab_free(&sv->peers);
			*child = p->s;
			(void)setsockopt(child->rfd, SOL_SOCKET,
			    SO_TIMESTAMPNS, &(int){ 0 }, sizeof(int));
			if ((child->pre = hand_over_sorted(p)) != NULL)
				child->prelen = p->len;
			for (j = i + 1; j < sv->nnp; j++)
				(void)close(sv->np[j].s.rfd);
		}
		if (!in_child)
			(void)close(p->s.rfd);
	}
	for (i = 0; i < sv->nnp; i++)
		newpeer_free(&sv->np[i]);
	sv->nnp = 0;
	sv->held = 0;
	if (in_child) {
		free(sv->np);
		sv->np = NULL;
	}
	return in_child;
}

static void	listener_arm(struct serve *);

/* SIGCHLD: ended children reaped; room again, maybe. */
static void
children_ended(void *arg)
{
	struct serve	*sv = arg;

	reap(sv, 0);
	if (sv->stopping && sv->nkids == 0)
		loop_stop(sv->l);
	listener_arm(sv);
}

static void
fork_report(void *arg, struct report *r)
{
	struct serve	*sv = arg;
	size_t		 i;

	r->mode = "fork";
	memcpy(r->c, sv->done, sizeof(r->c));
	for (i = 0; i < sv->nkids; i++)
		if (sv->kids[i].slot < sv->nslots) {
			counters_add(&r->c[0], &sv->slots[sv->kids[i].slot][0]);
			counters_add(&r->c[1], &sv->slots[sv->kids[i].slot][1]);
		}
	r->listener = 1;
	r->served = sv->served;
	r->running = sv->nkids;
	r->newpeer = sv->dropped;
	r->late = sv->late;
	r->kdrops = sv->kdrops;
}

static void
print_counters(void *arg)
{
	struct serve	*sv = arg;

	if (sv->o->json)
		report_say(fork_report, sv, "signal");
	if (sv->o->json && !sv->o->stats)
		return;
	logx("fork: %llu children served, %zu running, %llu datagrams from "
	    "new peers dropped, %llu late, %llu dropped by the kernel at the "
	    "listening socket", (unsigned long long)sv->served,
	    sv->nkids, (unsigned long long)sv->dropped,
	    (unsigned long long)sv->late, (unsigned long long)sv->kdrops);
}

/*
 * This process is a child now: the parent's loop is not its own.  Its
 * epoll set is shared with the parent: the child lets go of it at once,
 * so that what is left of this pass cannot change the parent's (a call on
 * -1 fails harmlessly), and fork_run makes it a loop of its own.
 */
static void
became_child(struct serve *sv)
{
	sv->child = 1;
	(void)close(sv->l->epfd);
	sv->l->epfd = -1;
	metrics_close(0);
	loop_stop(sv->l);
}

/*
 * A burst: accept until the backlog is empty (or max-children, or a
 * pause), not one peer a wakeup, but at most ACCEPT_BATCH before the
 * loop's other work (ended children, SIGUSR1) is looked at again.
 */
static void
listener_ready(struct watch *w, uint32_t ev)
{
	struct serve	*sv = w->arg;
	int		 r, batch = 1;

	(void)ev;
	if (sv->child)
		return;
	if (sv->a->kind == ADDR_UDP)
		udp_drain_all(sv);
	else {
		while ((r = serve_stream(sv, sv->ls)) == 2 && !sv->paused &&
		    !full(sv) && batch++ < ACCEPT_BATCH)
			;
		if (r == 1) {
			became_child(sv);
			return;
		}
	}
	listener_arm(sv);
}

/* The listener, unless paused; a full stream listener leaves peers
 * waiting in the backlog. */
static void
listener_arm(struct serve *sv)
{
	uint32_t	 want = EPOLLIN;

	if (sv->child || sv->stopping)
		return;
	if (sv->paused || (sv->a->kind != ADDR_UDP && full(sv)))
		want = 0;
	if (loop_watch(sv->l, &sv->lw, sv->ls->lfd, want) == -1) {
		logerr("%s: epoll_ctl", sv->a->label);
		sv->status = 1;
		loop_stop(sv->l);
	}
}

static void
settled(struct timer *t)
{
	struct serve	*sv = t->arg;

	if (sv->child)
		return;
	if (udp_fork(sv, sv->ls))
		became_child(sv);
}

static void
unpause(struct timer *t)
{
	struct serve	*sv = t->arg;

	sv->paused = 0;
	listener_arm(sv);
}

static void
kill_children(struct timer *t)
{
	struct serve	*sv = t->arg;
	size_t		 i;

	for (i = 0; i < sv->nkids; i++)
		(void)kill(sv->kids[i].pid, SIGKILL);
	sv->killed = 1;
	loop_stop(sv->l);
}

/*
 * Serving ended by a signal: pending peers dropped; children told to end
 * (SIGTERM), waited for on the loop for 5 s, then killed.
 */
static void
serve_end(struct serve *sv, int stats)
{
	struct timer	 t;
	size_t		 i;

	loop_unwatch(sv->l, &sv->lw);
	loop_untimer(sv->l, &sv->settle);
	loop_untimer(sv->l, &sv->pause);
	for (i = 0; i < sv->nnp; i++) {	/* ended before they forked */
		(void)close(sv->np[i].s.rfd);
		newpeer_free(&sv->np[i]);
	}
	free(sv->np);
	ptab_free(&sv->peers);
	sv->stopping = 1;
	for (i = 0; i < sv->nkids; i++)
		(void)kill(sv->kids[i].pid, SIGTERM);
	/* the grace is kept whatever comes meanwhile: timeout(1) and
	 * shells signal the whole group, so a second SIGTERM is the rule */
	timer_init(&t, kill_children, sv);
	if (sv->nkids > 0 && loop_timer(sv->l, &t, loop_now() + 5000) == 0) {
		while (sv->nkids > 0 && !sv->killed)
			if (loop_run(sv->l) == -1)
				break;
		loop_untimer(sv->l, &t);
	}
	for (i = 0; i < sv->nkids; i++)	/* past the grace */
		(void)kill(sv->kids[i].pid, SIGKILL);
	reap(sv, 1);
	if (sv->o->json)
		report_say(fork_report, sv, "exit");
	if (stats || (sv->o->verbose && !sv->o->json))
		logx("fork: %llu children served, %zu running, %llu datagrams "
		    "from new peers dropped, %llu late, %llu dropped by the "
		    "kernel at the listening socket",
		    (unsigned long long)sv->served, sv->nkids,
		    (unsigned long long)sv->dropped,
		    (unsigned long long)sv->late,
		    (unsigned long long)sv->kdrops);
	metrics_serve(sv->l, NULL, NULL);
	free(sv->kids);
	free(sv->freed);
	if (sv->slots != NULL)
		(void)munmap(sv->slots, sv->nslots * sizeof(*sv->slots));
}

int
fork_run(struct loop *l, struct addr *a, const struct relay_opts *o,
    struct side *s, int stats)
{
	struct serve	 sv;

	memset(&sv, 0, sizeof(sv));
	sv.a = a;
	sv.o = o;
	sv.l = l;
	sv.ls = s;
	watch_init(&sv.lw, listener_ready, &sv);
	timer_init(&sv.settle, settled, &sv);
	timer_init(&sv.pause, unpause, &sv);
	l->on_child = children_ended;
	l->on_stats = print_counters;
	l->arg = &sv;
	/* a slot for each child there may be at once (pages are touched
	 * only as children use them) */
	sv.nslots = (size_t)a->maxchildren;
	sv.slots = mmap(NULL, sv.nslots * sizeof(*sv.slots), PROT_READ |
	    PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sv.slots == MAP_FAILED) {
		logerr("%s: children's counters (mmap): the parent's figures "
		    "will leave them out", a->label);
		sv.slots = NULL;
	}
	metrics_serve(l, fork_report, &sv);
	listener_arm(&sv);
	while (sv.status == 0 && !sv.child && !loop_quitting(l))
		if (loop_run(l) == -1 && !sv.child) {
			logerr("%s: epoll_pwait", a->label);
			sv.status = 1;
		}
	if (sv.child) {
		/* the child relays on a loop of its own */
		loop_free(l);
		if (loop_init(l) == -1) {
			logerr("epoll_create1");
			return 1;	/* this child's exit status */
		}
		l->stats_ms = o->stats_ms;
		return -1;
	}
	serve_end(&sv, stats);
	l->on_child = NULL;
	l->on_stats = NULL;
	return sv.status;
}
