/*
 * multi.c: the multi option.  Every peer of the listening address gets a
 * relay session in this one process, all on one loop (loop.c), each with
 * a connection or socket of its own to the other address and the relay
 * rules of a pair (framing, ends, -t, counters); backpressure is per
 * session, so a stalled peer stalls only its own.  Between its turns a
 * session holds only the bytes it queues, within its share of the pool
 * (pool.c); a peer that does not read, or stops inside a frame, is ended
 * after stall-timeout or frame-timeout.
 *
 * Stream listeners: a session per accepted connection; at max-peers the
 * listener is not watched, so further peers wait in its backlog.
 *
 * udp-listen: every peer's datagrams arrive on the one listening socket
 * (recvmmsg), are found their session by source address (ptab.c) and
 * queued there (relay_push); replies leave from the same socket, named to
 * the peer, from the address it wrote to (IP_PKTINFO) on a wildcard bind.
 * At max-peers, datagrams of new peers are dropped and counted.
 *
 * The other address is opened per session: connecting stream addresses
 * without blocking the loop (redial.c: one attempt, or retry's), others
 * (udp:, exec:) at once.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"
#include "mux.h"
#include "multi.h"


/* ------------------------------------------------------------ sessions */

static void
sess_over(struct relay *rl, void *arg)
{
	struct sess	*ss = arg;

	(void)rl;
	if (ss->dead)
		return;		/* ended by us first (no room for its peer) */
	ss->dead = 1;
	ss->dnext = ss->m->dead;
	ss->m->dead = ss;
}

/* The shared UDP socket said EAGAIN to ss: woken when it is writable. */
static void
sess_blocked(void *arg, struct relay *rl)
{
	struct sess	*ss = arg;
	struct multi	*m = ss->m;

	(void)rl;
	if (ss->blocked)
		return;
	ss->blocked = 1;
	ss->bnext = m->blocked;
	m->blocked = ss;
	listener_arm(m);
}

/*
 * The source of the peer on side ps: its address without the port (one
 * host's sessions together share as one, pool.c); peers not on IP are
 * one source.  NULL (no group, no limit of its own) without memory.
 */
static struct pool_group *
src_join(struct multi *m, const struct side *ps)
{
	struct sockaddr_storage	 k;
	socklen_t		 len = ps->peerlen;
	struct pool_group	*g;
	struct pent		*e;

	memset(&k, 0, sizeof(k));
	memcpy(&k, &ps->peeraddr, len);
	if (k.ss_family == AF_INET)
		((struct sockaddr_in *)&k)->sin_port = 0;
	else if (k.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&k)->sin6_port = 0;
		((struct sockaddr_in6 *)&k)->sin6_flowinfo = 0;
	} else
		len = sizeof(k.ss_family);
	if ((e = ptab_find(&m->sources, &k, len)) != NULL)
		g = e->ptr;
	else {
		if ((g = calloc(1, sizeof(*g))) == NULL)
			return NULL;
		g->key = k;
		g->keylen = len;
		if ((e = ptab_add(&m->sources, &k, len)) == NULL) {
			free(g);
			return NULL;
		}
		e->ptr = g;
	}
	g->refs++;
	return g;
}

/* A session of source g ended (after its relay: it holds nothing). */
static void
src_leave(struct multi *m, struct pool_group *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	ptab_del(&m->sources, &g->key, g->keylen);
	free(g);
}

/*
 * A session's failure line.  A flood of failing peers (garbage to a TLS
 * server, 3,900 a second) must not flood the log: each cause (the line's
 * reason, after its last ": ") is said at most once a second, with how
 * many more were not said since.
 */
static void
sess_say(struct multi *m, const char *line)
{
	const char	*why = strrchr(line, ':');
	struct cause	*c = NULL;
	time_t		 now = time(NULL);
	unsigned	 i;

	why = why != NULL ? why + 1 : line;
	for (i = 0; i < CAUSES && c == NULL; i++)
		if (strcmp(m->causes[i].why, why) == 0)
			c = &m->causes[i];
	if (c == NULL) {		/* new: in place of the oldest */
		c = &m->causes[m->ncause++ % CAUSES];
		if (c->more > 0)
			logx("%s: %llu more failures:%s", m->a->label,
			    (unsigned long long)c->more, c->why);
		strlcpy(c->why, why, sizeof(c->why));
		c->at = 0;
		c->more = 0;
	}
	if (c->at == now) {
		c->more++;
		return;
	}
	if (c->more > 0)
		logx("%s (and %llu more like it since)", line,
		    (unsigned long long)c->more);
	else
		logx("%s", line);
	c->at = now;
	c->more = 0;
}

/* The failures not said yet, at the end: their counts. */
static void
causes_flush(struct multi *m)
{
	unsigned	 i;

	for (i = 0; i < CAUSES; i++)
		if (m->causes[i].more > 0) {
			logx("%s: %llu more failures:%s", m->a->label,
			    (unsigned long long)m->causes[i].more,
			    m->causes[i].why);
			m->causes[i].more = 0;
		}
}

/* q's quarantine is over: its socket is closed, its port free again. */
static void
quar_release(struct multi *m)
{
	struct quar	*q = m->qhead;
	int		 fd = q->w.fd;

	m->qhead = q->next;
	if (m->qhead == NULL)
		m->qtail = NULL;
	m->nquar--;
	loop_unwatch(m->loop, &q->w);	/* (it forgets the descriptor) */
	(void)close(fd);
	free(q);
}

static void
quar_arm(struct multi *m)
{
	(void)loop_timer(m->loop, &m->qtimer, m->qhead != NULL ?
	    m->qhead->due : 0);
}

static void
quar_due(struct timer *t)
{
	struct multi	*m = t->arg;
	long long	 now = loop_now();

	while (m->qhead != NULL && m->qhead->due <= now)
		quar_release(m);
	quar_arm(m);
}

/* Late replies on a quarantined socket: read, dropped and counted. */
static void
quar_ready(struct watch *w, uint32_t ev)
{
	struct quar	*q = w->arg;
	uint8_t		 b;

	(void)ev;
	for (;;)
		if (recv(w->fd, &b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC) >= 0)
			q->m->late++;
		else if (errno != ECONNREFUSED && errno != EINTR)
			break;		/* EAGAIN: all read */
}

/*
 * Keep fd, an ended session's connected UDP socket, out of reuse for
 * QUARANTINE_MS; at most QUARANTINE_MAX at once (the oldest goes early).
 * Closed at once when it cannot be watched.
 */
static void
quarantine(struct multi *m, int fd)
{
	struct quar	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		(void)close(fd);
		return;
	}
	watch_init(&q->w, quar_ready, q);
	q->m = m;
	if (loop_watch(m->loop, &q->w, fd, EPOLLIN) == -1) {
		(void)close(fd);
		free(q);
		return;
	}
	q->due = loop_now() + QUARANTINE_MS;
	if (m->qtail != NULL)
		m->qtail->next = q;
	else
		m->qhead = q;
	m->qtail = q;
	if (++m->nquar > QUARANTINE_MAX)
		quar_release(m);
	quar_arm(m);
}

/* Close a session's other side; its command, if any, ends on the loop. */
static void
other_close(struct sess *ss, struct side *os)
{
	if (os->io == IO_MUX && os->ms != NULL) {
		carrier_flush(os->ms);
		(void)ms_close(os->ms);	/* FIN: its end, not a reset */
		ms_release(os->ms, 0);
		os->ms = NULL;
	}
	sock_close(ss->oa, os);
	if (os->cmd != NULL)
		exec_end(ss->m->loop, os->cmd, 0, ss->m->o->verbose);
	os->cmd = NULL;
}

/* End ss: its relay, its sides; its counters go to the totals. */
static void
sess_end(struct sess *ss)
{
	struct multi	*m = ss->m;
	struct side	*ps = &ss->s[m->li], *os;
	struct sess	**pp;
	int		 status, i, fd;

	status = relay_end(ss->rl);
	src_leave(m, ss->src);
	if (status != 0)
		sess_say(m, ss->err);
	if (m->o->verbose > MUXED(m))
		logx("%s: %s: session ended: 1>2 %llu datagrams, 2>1 %llu "
		    "datagrams", m->a->label, ps->peer,
		    (unsigned long long)ss->c[0].dgrams,
		    (unsigned long long)ss->c[1].dgrams);
	for (i = 0; i < 2; i++)
		counters_add(&m->total[i], &ss->c[i]);
	if (m->udp)
		ptab_del(&m->peers, &ps->peeraddr, ps->peerlen);
	else if (ps->io == IO_MUX) {
		carrier_flush(ps->ms);	/* its last frames, and ours */
		if (status == 0)
			(void)ms_close(ps->ms);	/* FIN, not RST */
		ms_release(ps->ms, status != 0);
		ps->ms = NULL;
	} else if (ps->rfd != -1)
		(void)close(ps->rfd);
	os = &ss->s[!m->li];
	if (ss->oa->kind == ADDR_UDP && !ss->oa->listen && os->rfd != -1 &&
	    !loop_quitting(m->loop)) {
		/* its port stays ours a while: a late reply is no one's */
		fd = os->rfd;
		os->rfd = os->wfd = -1;
		quarantine(m, fd);
	}
	other_close(ss, os);
	if (ss->blocked)
		for (pp = &m->blocked; *pp != NULL; pp = &(*pp)->bnext)
			if (*pp == ss) {
				*pp = ss->bnext;
				break;
			}
	if (ss->prev != NULL)
		ss->prev->next = ss->next;
	else
		m->all = ss->next;
	if (ss->next != NULL)
		ss->next->prev = ss->prev;
	m->n--;
	free(ss);
}

/*
 * Open the other address for session ss, as side os: at once, or (a TLS
 * listener) by the relay once the peer is authenticated.  A connecting
 * stream is dialled by the relay: the loop goes on.  0, or -1 with the
 * reason in err (and os->err).
 */
static int
sess_open(void *arg, struct side *os, char *err, size_t size)
{
	struct sess	*ss = arg;

	if (ss->oa->mux) {	/* a stream of a carrier */
		sock_side_init(ss->oa, os);
		if (mux_stream(ss->m, os) == -1) {
			if (err != NULL)
				strlcpy(err, os->err, size);
			return -1;
		}
		return 0;
	}
	if (sock_open(ss->oa, os) == -1) {
		if (err != NULL)
			strlcpy(err, os->err, size);
		return -1;
	}
	if (ss->oa->retry != 0 || ss->oa->dial)
		redial_init(ss->oa, os, ss->m->o->verbose);
	return 0;
}

/*
 * A session for the peer on side ps (made by the caller): the other
 * address opened for it, the relay started.  NULL when it cannot be had
 * (said on stderr; ps is then the caller's to close).
 */
struct sess *
sess_new(struct multi *m, const struct side *ps)
{
	struct sess	*ss;
	struct side	*os;
	int		 oi = !m->li;

	if ((ss = calloc(1, sizeof(*ss))) == NULL) {
		logerr("%s: session", m->a->label);
		return NULL;
	}
	ss->m = m;
	ss->s[m->li] = *ps;
	ss->oa = m->oa;	/* shared: never written */
	os = &ss->s[oi];
	if (m->a->tls && !m->a->mux)	/* once the TLS peer is
					 * authenticated (a stream's is) */
		sock_pending(ss->oa, os);
	else if (sess_open(ss, os, NULL, 0) == -1) {
		if (log_due(&m->errwarned))	/* a flood: once a second */
			logx("%s: %s", ss->oa->label, os->err);
		other_close(ss, os);
		free(ss);
		return NULL;
	}
	if ((ss->rl = relay_open(m->loop, &m->pool, m->o, ss->s, ss->c,
	    ss->err, sizeof(ss->err), sess_over, ss)) == NULL) {
		logx("%s", ss->err);
		other_close(ss, os);
		free(ss);
		return NULL;
	}
	if (os->pending)
		relay_opener(ss->rl, sess_open, ss);
	if (os->io == IO_MUX)
		os->ms->owner = ss->rl;
	if ((ss->src = src_join(m, ps)) != NULL)
		relay_group(ss->rl, ss->src);
	ss->next = m->all;
	if (m->all != NULL)
		m->all->prev = ss;
	m->all = ss;
	m->n++;
	m->served++;
	if (m->o->verbose > MUXED(m))
		logx("%s: %s from %s", m->a->label, m->udp ? "peer" :
		    "connection", ps->peer);
	return ss;
}

/* Free the sessions that ended in this pass. */
static void
reap(struct multi *m)
{
	struct sess	*ss;
	size_t		 before = m->n;

	while ((ss = m->dead) != NULL) {
		m->dead = ss->dnext;
		sess_end(ss);
	}
	mux_reap(m);
	if (m->n < before && !m->udp)
		listener_arm(m);	/* room again: accept */
}

/* ------------------------------------------------------ stream listeners */

/*
 * Accept a batch of new peers: at most ACCEPT_BATCH a turn, so that a
 * flood of connections cannot keep the loop from the sessions already
 * running (the listener is ready again at the next turn).
 */
static void
accept_peers(struct multi *m)
{
	struct side	 s;
	int		 batch = 0;

	while (m->n < (size_t)m->a->maxpeers && batch++ < ACCEPT_BATCH &&
	    (m->a->mux ? m->ncars < CARRIERS_MAX : mux_ready(m))) {
		sock_side_init(m->a, &s);
		if (sock_accept(m->a, m->ls, &s) == -1) {
			if (sock_accept_failed(m->a, &s)) {
				/* not a spin on a listener we cannot take
				 * from: a pause */
				m->paused = 1;
				(void)loop_timer(m->loop, &m->pause,
				    loop_now() + ACCEPT_PAUSE);
			}
			return;
		}
		if (m->a->mux)
			carrier_in(m, &s);
		else if (sess_new(m, &s) == NULL)
			(void)close(s.rfd);
	}
}

/* -------------------------------------------------------- udp listener */

static int
udp_batch_init(struct multi *m)
{
	size_t	 n = m->o->count, slot = m->o->size + FRAME_HDR;

	if ((m->buf = reallocarray(NULL, n, slot)) == NULL ||
	    (m->msg = calloc(n, sizeof(*m->msg))) == NULL ||
	    (m->iov = calloc(n, sizeof(*m->iov))) == NULL ||
	    (m->from = calloc(n, sizeof(*m->from))) == NULL ||
	    (m->ctl = calloc(n, CTL_BYTES)) == NULL)
		return -1;
	return 0;
}


/* A new peer at ss: a session whose side 0 is the shared socket. */
static struct sess *
udp_peer(struct multi *m, const struct sockaddr_storage *ss, socklen_t len,
    struct msghdr *h)
{
	struct side	 s;
	struct pent	*e;
	struct sess	*se;

	if (m->n >= (size_t)m->a->maxpeers) {
		m->dropped++;
		if (m->o->verbose && log_due(&m->warned))
			logx("%s: max-peers=%d reached: datagrams of new peers "
			    "dropped (%llu so far)", m->a->label,
			    m->a->maxpeers, (unsigned long long)m->dropped);
		return NULL;
	}
	sock_side_init(m->a, &s);
	s.wfd = m->ls->lfd;
	s.io = IO_DGRAM;
	s.wsock = 1;
	s.shared = 1;
	s.blocked = sess_blocked;
	s.name = m->a->label;
	memcpy(&s.peeraddr, ss, len);
	s.peerlen = len;
	sock_ntop((const struct sockaddr *)ss, len, s.peer, sizeof(s.peer));
	/* replies from the address the peer wrote to */
	if (m->ls->pktinfo && sock_pktinfo(h, m->family, &s.replyfrom) == 0)
		s.hasreplyfrom = 1;
	if ((se = sess_new(m, &s)) == NULL)
		return NULL;
	se->s[m->li].blocked_arg = se;
	if ((e = ptab_add(&m->peers, ss, len)) == NULL) {
		logerr("%s: peer table", m->a->label);
		sess_over(se->rl, se);	/* ended after this pass */
		return NULL;
	}
	e->ptr = se;
	return se;
}

/*
 * A datagram for session se, queued; its turn is made once the datagrams
 * of the batch that follow are another peer's (a flow's run of datagrams
 * leaves in one write).  held: the session whose turn is owed.
 */
static void
udp_push(struct multi *m, struct sess *se, struct sess **held,
    const uint8_t *dg, size_t len)
{
	enum push_res	 r;

	if (*held != NULL && *held != se) {
		relay_flush((*held)->rl);
		*held = NULL;
	}
	if ((r = relay_push(se->rl, m->li, dg, len, 1)) != PUSH_OK &&
	    r != PUSH_ENDING && *held == se) {
		relay_flush(se->rl);	/* room, as an immediate turn had */
		r = relay_push(se->rl, m->li, dg, len, 1);
	}
	*held = r == PUSH_OK ? se : NULL;
	m->full[r]++;
}

/* A message for se: one datagram, or a run that UDP_GRO coalesced. */
static void
udp_run(struct multi *m, struct sess *se, struct sess **held,
    struct msghdr *h, size_t len)
{
	const uint8_t	*p = h->msg_iov->iov_base;
	size_t		 seg = m->gro ? dg_gro_size(h) : 0, k;

	if (seg == 0 || seg >= len) {
		udp_push(m, se, held, p, len);
		return;
	}
	for (; len > 0; p += k, len -= k) {
		k = len < seg ? len : seg;
		udp_push(m, se, held, p, k);
	}
}

static void
udp_read(struct multi *m)
{
	struct msghdr	*h;
	struct pent	*e;
	struct sess	*se;
	unsigned	 i, k = (unsigned)m->o->count;
	struct sess	*held = NULL;
	int		 r, rounds;
	uint64_t	 full0 = m->full[PUSH_QUEUE] + m->full[PUSH_SHARE] +
			    m->full[PUSH_POOL];

	for (rounds = 0; rounds < 16; rounds++) {
		for (i = 0; i < k; i++)
			dg_recv_slot(&m->msg[i], &m->iov[i], m->buf + i *
			    (m->o->size + FRAME_HDR), m->o->size, &m->from[i],
			    m->ctl + i * CTL_BYTES, CTL_BYTES);
		if ((r = recvmmsg(m->ls->lfd, m->msg, k, MSG_DONTWAIT,
		    NULL)) <= 0)
			return;		/* EAGAIN; ICMP errors: no peer's */
		for (i = 0; i < (unsigned)r; i++) {
			h = &m->msg[i].msg_hdr;
			sock_drops(h, &m->kdrops);
			if ((e = ptab_find(&m->peers, &m->from[i],
			    h->msg_namelen)) != NULL)
				se = e->ptr;
			else if ((se = udp_peer(m, &m->from[i],
			    h->msg_namelen, h)) == NULL)
				continue;
			if (h->msg_flags & MSG_TRUNC)
				se->c[m->li].oversize++;
			else
				udp_run(m, se, &held, h, m->msg[i].msg_len);
		}
		if (held != NULL)
			relay_flush(held->rl);
		held = NULL;
		/* a session was full: the rest waits in the kernel's buffer
		 * for the next turn (the sinks go first), not read to be
		 * dropped here */
		if ((unsigned)r < k || m->full[PUSH_QUEUE] + m->full[PUSH_SHARE] +
		    m->full[PUSH_POOL] != full0)
			return;
	}
}

/* --------------------------------------------------------- the listener */

static void
listener_ready(struct watch *w, uint32_t ev)
{
	struct multi	*m = w->arg;
	struct sess	*ss;

	if ((ev & EPOLLOUT) && m->udp)
		while ((ss = m->blocked) != NULL) {
			m->blocked = ss->bnext;
			ss->blocked = 0;
			relay_unblock(ss->rl);
		}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (m->udp)
			udp_read(m);
		else
			accept_peers(m);
	}
	listener_arm(m);
}

void
listener_arm(struct multi *m)
{
	uint32_t	 want = 0;

	/* a stream peer waits in the backlog while its session could not
	 * have its stream (no carrier up) */
	if (m->udp || (m->n < (size_t)m->a->maxpeers && !m->paused &&
	    (m->a->mux ? m->ncars < CARRIERS_MAX : mux_ready(m))))
		want |= EPOLLIN;
	if (m->blocked != NULL)
		want |= EPOLLOUT;
	if (loop_watch(m->loop, &m->lw, m->ls->lfd, want) == -1 &&
	    m->status == 0) {
		logerr("%s: epoll_ctl", m->a->label);
		m->status = 1;
		loop_stop(m->loop);
	}
}

static void
unpause(struct timer *t)
{
	struct multi	*m = t->arg;

	m->paused = 0;
	listener_arm(m);
}

static void
multi_print(struct multi *m)
{
	struct counters	 t[2];
	struct sess	*ss;
	int		 i;

	memcpy(t, m->total, sizeof(t));
	for (ss = m->all; ss != NULL; ss = ss->next)
		for (i = 0; i < 2; i++)
			counters_add(&t[i], &ss->c[i]);
	logx("multi: %llu sessions served, %zu running, %llu datagrams from "
	    "new peers dropped (max-peers), %llu to full sessions dropped "
	    "(%llu queue full, %llu over the session's share, %llu pool at "
	    "its cap, %llu ending), %llu dropped by the kernel at the listening "
	    "socket", (unsigned long long)m->served, m->n,
	    (unsigned long long)m->dropped,
	    (unsigned long long)(m->full[PUSH_QUEUE] + m->full[PUSH_SHARE] +
	    m->full[PUSH_POOL] + m->full[PUSH_ENDING]),
	    (unsigned long long)m->full[PUSH_QUEUE],
	    (unsigned long long)m->full[PUSH_SHARE],
	    (unsigned long long)m->full[PUSH_POOL],
	    (unsigned long long)m->full[PUSH_ENDING],
	    (unsigned long long)m->kdrops);
	if (m->udp_other)
		logx("multi: %zu ended sessions' UDP ports in quarantine, %llu "
		    "late replies to them dropped", m->nquar,
		    (unsigned long long)m->late);
	if (m->a->mux || m->oa->mux)
		mux_print(m);
	logx("multi: pool: %zu bytes lent, %zu at most, cap %zu; %zu "
	    "directions and %zu sources hold bytes", m->pool.lent,
	    m->pool.peak, m->pool.max, m->pool.holders, m->pool.groups);
	counters_print(t, NULL);
}

/* Ready to listen: 0, or -1 with the failed call said. */
static int
multi_setup(struct multi *m)
{
	if (m->udp && udp_batch_init(m) == -1) {
		logerr("%s: receive batch (-b %zu, -s %zu)", m->a->label,
		    m->o->count, m->o->size);
		return -1;
	}
	if (m->udp && (m->family = sock_family(m->ls->lfd)) == -1) {
		logerr("%s: getsockname", m->a->label);
		return -1;
	}
	if (m->udp)		/* a flow's runs in one read */
		m->gro = dg_gro_on(m->ls->lfd, m->o->size);
	if (m->udp && sock_want_drops(m->ls->lfd) == -1) {
		logerr("%s: setsockopt SO_RXQ_OVFL", m->a->label);
		return -1;
	}
	if (m->ls->lfd != -1 && sock_nonblock(m->ls->lfd, NULL) == -1) {
		logerr("%s: fcntl O_NONBLOCK", m->a->label);
		return -1;
	}
	listener_arm(m);
	return m->status == 0 ? 0 : -1;
}

static void
multi_report(void *arg, struct report *r)
{
	struct multi	*m = arg;
	struct sess	*ss;
	int		 i;

	r->mode = "multi";
	memcpy(r->c, m->total, sizeof(r->c));
	for (ss = m->all; ss != NULL; ss = ss->next)
		for (i = 0; i < 2; i++)
			counters_add(&r->c[i], &ss->c[i]);
	r->listener = 1;
	r->served = m->served;
	r->running = m->n;
	r->newpeer = m->dropped;
	r->full[0] = m->full[PUSH_QUEUE];
	r->full[1] = m->full[PUSH_SHARE];
	r->full[2] = m->full[PUSH_POOL];
	r->full[3] = m->full[PUSH_ENDING];
	r->kdrops = m->kdrops;
	r->late = m->late;
	r->quarantined = m->nquar;
	r->haspool = 1;
	r->lent = m->pool.lent;
	r->peak = m->pool.peak;
	r->cap = m->pool.max;
	if (m->a->mux || m->oa->mux)
		mux_report(m, r);
}

static void
multi_stats(void *arg)
{
	struct multi	*m = arg;

	if (m->o->json)
		report_say(multi_report, m, "signal");
	if (!m->o->json || m->o->stats)
		multi_print(m);
}

static void
multi_turn(void *arg)
{
	reap(arg);
}

int
multi_run(struct loop *l, struct addr a[2], struct side s[2], int li,
    const struct relay_opts *o, int stats)
{
	struct multi	 m;

	memset(&m, 0, sizeof(m));
	m.a = &a[li];
	m.oa = &a[!li];
	m.li = li;
	m.so = *o;
	m.so.compact = 1;
	m.o = &m.so;
	m.ls = &s[li];
	m.udp = m.a->kind == ADDR_UDP;
	m.udp_other = m.oa->kind == ADDR_UDP;
	m.loop = l;
	pool_init(&m.pool, relay_slab(o), o->size + FRAME_HDR, POOL_MAX);
	watch_init(&m.lw, listener_ready, &m);
	timer_init(&m.pause, unpause, &m);
	timer_init(&m.qtimer, quar_due, &m);
	l->on_stats = multi_stats;
	l->on_turn = multi_turn;
	l->arg = &m;
	metrics_serve(l, multi_report, &m);
	if (multi_setup(&m) == -1)
		m.status = 1;
	else if (m.a->mux || m.oa->mux)
		mux_start(&m, &s[!li]);
	while (m.status == 0 && !loop_quitting(l))
		if (loop_run(l) == -1) {
			logerr("%s: epoll_pwait", m.a->label);
			m.status = 1;
		}
	l->on_turn = NULL;
	loop_unwatch(l, &m.lw);		/* no new peer from now on */
	loop_untimer(l, &m.pause);
	/* a signal: no new streams (Go Away); every session ends, what the
	 * kernel takes now sent (a stream's FIN); their commands end on the
	 * loop; what the carriers hold is written */
	mux_stop(&m);
	while (m.all != NULL)
		sess_end(m.all);
	mux_end(&m);
	exec_wait(l);
	l->on_stats = NULL;
	causes_flush(&m);
	if (o->json)
		report_say(multi_report, &m, "exit");
	if (stats || (o->verbose && !o->json))
		multi_print(&m);
	metrics_serve(l, NULL, NULL);
	while (m.qhead != NULL)
		quar_release(&m);
	loop_untimer(l, &m.qtimer);
	pool_free(&m.pool);
	ptab_free(&m.peers);
	ptab_free(&m.sources);
	free(m.buf);
	free(m.msg);
	free(m.iov);
	free(m.from);
	free(m.ctl);
	return m.status;
}
