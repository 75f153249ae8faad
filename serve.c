/*
 * serve.c: the fork option.  The parent keeps the listening socket and the
 * pids of its children, nothing else; every peer gets a child that runs one
 * relay.  serve_run() returns in a child with the peer's side ready, and in
 * the parent only when serving ends.
 *
 * Stream listeners: a child per accepted connection.
 * udp-listen: a child per new source address.  The parent makes a socket
 * bound where the listener is (SO_REUSEPORT) and connected to the new peer,
 * so the kernel sends that peer's later datagrams to it; what the peer had
 * already queued on the listener is drained into the child's hand-over
 * buffer, in order, before the child starts: nothing lost, nothing twice.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
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
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
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
	struct timespec		 settle;	/* when pending peers fork */
	uint64_t		 served, dropped, dropwarned, late;
	uint64_t		 kdrops;	/* by the kernel, at the
						 * listening socket */
	time_t			 warned;	/* last max-children warning */
	struct timespec		 pause;		/* out of descriptors: wait */
};

static int
kid_add(struct serve *sv, pid_t pid, const struct side *s)
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
	memcpy(&k->peer, &s->peeraddr, s->peerlen);
	k->peerlen = s->peerlen;
	sv->served++;
	if ((e = ptab_find(&sv->peers, &s->peeraddr, s->peerlen)) != NULL)
		e->pid = pid;		/* from now on, its child's */
	return 0;
}

/* Reap children that ended (block: wait for all); no zombies. */
static void
reap(struct serve *sv, int block)
{
	pid_t	 pid;
	size_t	 i;
	int	 st;

	while ((pid = waitpid(-1, &st, block ? 0 : WNOHANG)) > 0) {
		for (i = 0; i < sv->nkids; i++)
			if (sv->kids[i].pid == pid) {
				ptab_del(&sv->peers, &sv->kids[i].peer,
				    sv->kids[i].peerlen);
				sv->kids[i] = sv->kids[--sv->nkids];
				break;
			}
		if (!sv->o->verbose)
			continue;
		if (WIFSIGNALED(st))
			logx("child %d: killed by signal %d", (int)pid,
			    WTERMSIG(st));
		else
			logx("child %d: exit %d", (int)pid, WEXITSTATUS(st));
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
	time_t	 now = time(NULL);

	sv->dropped++;
	if (sv->o->verbose && now != sv->warned) {
		logx("%s: max-children %d reached: %llu datagrams from new "
		    "peers dropped", sv->a->spec, sv->a->maxchildren,
		    (unsigned long long)(sv->dropped - sv->dropwarned + 1));
		sv->warned = now;
		sv->dropwarned = sv->dropped;
	}
}

static int
spawn(struct serve *sv, const struct side *s)
{
	pid_t	 pid;

	if ((pid = fork()) == -1) {
		logerr("%s: fork for %s", sv->a->spec, s->peer);
		return -1;
	}
	if (pid == 0) {
		(void)close(sv->a->lfd);
		sv->a->lfd = -1;
		free(sv->kids);
		return 1;
	}
	if (kid_add(sv, pid, s) == -1)
		logerr("%s: child list (child %d runs; SIGTERM will miss "
		    "it)", sv->a->spec, (int)pid);
	if (sv->o->verbose)
		logx("child %d: %s %s", (int)pid,
		    s->io != IO_DGRAM ? "connection from" : "peer", s->peer);
	return 0;
}

/* Out of descriptors or memory: stop taking peers for a moment. */
static void
pause_accepting(struct serve *sv, const char *what)
{
	logx("%s: %s", sv->a->spec, what);
	clock_gettime(CLOCK_MONOTONIC, &sv->pause);
	sv->pause.tv_sec += 1;
}

/* One connection: 1 in its child, 2 in the parent, 0: none taken. */
static int
serve_stream(struct serve *sv, struct side *s)
{
	int	 r;

	if (sock_accept(sv->a, s) == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			pause_accepting(sv, sv->a->err);
		else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			logx("%s: %s", sv->a->spec, sv->a->err);
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

static void
settle_from_now(struct serve *sv)
{
	clock_gettime(CLOCK_MONOTONIC, &sv->settle);
	sv->settle.tv_nsec += SETTLE_MS * 1000000L;
	if (sv->settle.tv_nsec >= 1000000000L) {
		sv->settle.tv_sec++;
		sv->settle.tv_nsec -= 1000000000L;
	}
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
		pause_accepting(sv, "new peer table: out of memory");
		sv->dropped++;
		return -1;
	}
	p = &sv->np[sv->nnp];
	memset(p, 0, sizeof(*p));
	if (sock_udp_peer(sv->a, (const struct sockaddr *)ss, len, dst,
	    &p->s) == -1) {
		e->dead = 1;
		pause_accepting(sv, sv->a->err);
		sv->dropped++;
		return -1;
	}
	e->np = sv->nnp;
	if (sv->nnp++ == 0)
		settle_from_now(sv);
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
		n = udp_drain(sv, sv->a->lfd, -1);
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

/* Milliseconds until a deadline, 0 when past. */
static int
until(const struct timespec *t)
{
	struct timespec	 now;
	long long	 left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (t->tv_sec - now.tv_sec) * 1000LL +
	    (t->tv_nsec - now.tv_nsec + 999999) / 1000000;
	return left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

static void
stop_children(struct serve *sv)
{
	struct timespec	 ts = { 0, 20 * 1000000L };
	size_t		 i;
	int		 n;

	for (i = 0; i < sv->nkids; i++)
		(void)kill(sv->kids[i].pid, SIGTERM);
	for (n = 0; n < 250 && sv->nkids > 0; n++) {	/* 5 s */
		nanosleep(&ts, NULL);
		reap(sv, 0);
	}
	for (i = 0; i < sv->nkids; i++)
		(void)kill(sv->kids[i].pid, SIGKILL);
	reap(sv, 1);
}

static int
paused(const struct serve *sv, int *ms)
{
	if (sv->pause.tv_sec == 0 || (*ms = until(&sv->pause)) == 0)
		return 0;
	return 1;
}

static void
serve_print_counters(const struct serve *sv)
{
	logx("fork: %llu children served, %zu running, %llu datagrams from "
	    "new peers dropped, %llu late, %llu dropped by the kernel at the "
	    "listening socket", (unsigned long long)sv->served,
	    sv->nkids, (unsigned long long)sv->dropped,
	    (unsigned long long)sv->late, (unsigned long long)sv->kdrops);
}

/*
 * A burst: accept until the backlog is empty (or max-children, or a
 * pause), not one peer a wakeup, but at most ACCEPT_BATCH before the
 * signals (ended children, SIGUSR1) are looked at again.  Returns 1 in
 * a child.
 */
static int
serve_streams(struct serve *sv, struct side *s)
{
	int	 r, ms, batch = 1;

	while ((r = serve_stream(sv, s)) == 2 && !full(sv) && !sig_quit &&
	    !paused(sv, &ms) && batch++ < ACCEPT_BATCH)
		;
	return r == 1;
}

/* Wait for the listener, a settle deadline, a pause's end or a signal. */
static int
serve_wait(struct serve *sv, const sigset_t *waitmask)
{
	struct pollfd	 pfd;
	struct timespec	 ts;
	int		 ms = -1, udp = sv->a->kind == ADDR_UDP;

	/* a full stream listener leaves peers waiting in the backlog */
	pfd.fd = paused(sv, &ms) || (!udp && full(sv)) ? -1 : sv->a->lfd;
	pfd.events = POLLIN;
	if (sv->nnp > 0 && (ms == -1 || until(&sv->settle) < ms))
		ms = until(&sv->settle);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	return ppoll(&pfd, 1, ms >= 0 ? &ts : NULL, waitmask) > 0;
}

/* Serving ended by a signal: pending peers dropped, children ended. */
static void
serve_end(struct serve *sv, int stats)
{
	size_t	 i;

	for (i = 0; i < sv->nnp; i++) {	/* ended before they forked */
		(void)close(sv->np[i].s.rfd);
		newpeer_free(&sv->np[i]);
	}
	free(sv->np);
	ptab_free(&sv->peers);
	stop_children(sv);
	if (stats || sv->o->verbose)
		serve_print_counters(sv);
	free(sv->kids);
}

int
serve_run(struct addr *a, const struct relay_opts *o, struct side *s,
    int stats)
{
	struct serve	 sv;
	sigset_t	 old, waitmask;
	int		 udp = a->kind == ADDR_UDP, child = 0;

	memset(&sv, 0, sizeof(sv));
	sv.a = a;
	sv.o = o;
	signals_hold(&old, &waitmask, 1);
	while (!sig_quit && !child) {
		if (sig_child) {
			sig_child = 0;
			reap(&sv, 0);
		}
		if (sig_stats) {
			sig_stats = 0;
			serve_print_counters(&sv);
		}
		if (sv.nnp > 0 && until(&sv.settle) == 0)
			child = udp_fork(&sv, s);
		else if (serve_wait(&sv, &waitmask)) {
			if (udp)
				udp_drain_all(&sv);
			else
				child = serve_streams(&sv, s);
		}
	}
	if (child) {
		/* the child relays with the signal state it started with */
		signal(SIGCHLD, SIG_DFL);
		sig_stats = 0;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	serve_end(&sv, stats);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}
