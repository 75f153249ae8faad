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
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

#define ROUND_PEERS	256	/* new UDP peers taken in one round */

struct serve {
	struct addr		*a;
	const struct relay_opts	*o;
	pid_t			*kids;
	size_t			 nkids, cap;
	uint64_t		 served, dropped, dropwarned;
	time_t			 warned;	/* last max-children warning */
	struct timespec		 pause;		/* out of descriptors: wait */
};

/* A new UDP peer of this round, before its child is forked. */
struct newpeer {
	struct side	 s;
	uint8_t		*buf;		/* hand-over frames */
	size_t		 len, cap;
};

static int
kid_add(struct serve *sv, pid_t pid)
{
	pid_t	*k;

	if (sv->nkids == sv->cap) {
		k = reallocarray(sv->kids, sv->cap ? sv->cap * 2 : 16,
		    sizeof(*k));
		if (k == NULL)
			return -1;
		sv->kids = k;
		sv->cap = sv->cap ? sv->cap * 2 : 16;
	}
	sv->kids[sv->nkids++] = pid;
	sv->served++;
	return 0;
}

/* Reap every child that ended; no zombies. */
static void
reap(struct serve *sv)
{
	pid_t	 pid;
	size_t	 i;
	int	 st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < sv->nkids; i++)
			if (sv->kids[i] == pid)
				sv->kids[i] = sv->kids[--sv->nkids];
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
		logx("max-children %d reached: %llu datagrams from new peers "
		    "dropped", sv->a->maxchildren,
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
		logerr("fork");
		return -1;
	}
	if (pid == 0) {
		(void)close(sv->a->lfd);
		sv->a->lfd = -1;
		free(sv->kids);
		return 1;
	}
	if (kid_add(sv, pid) == -1)
		logerr("child list");	/* it runs; SIGTERM will miss it */
	if (sv->o->verbose)
		logx("child %d: %s %s", (int)pid,
		    s->framed ? "connection from" : "peer", s->peer);
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

static int
serve_stream(struct serve *sv, struct side *s)
{
	int	 r;

	if (addr_accept(sv->a, s) == -1) {
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
	return 0;
}

/* The round's entry for the sender of ss, made when new; NULL: dropped. */
static struct newpeer *
peer_of(struct serve *sv, struct newpeer *np, size_t *nnp,
    const struct sockaddr_storage *ss, socklen_t len)
{
	size_t	 i;

	for (i = 0; i < *nnp; i++)
		if (np[i].s.peerlen == len &&
		    memcmp(&np[i].s.peeraddr, ss, len) == 0)
			return &np[i];
	if (*nnp == ROUND_PEERS || (sv->a->maxchildren > 0 &&
	    sv->nkids + *nnp >= (size_t)sv->a->maxchildren)) {
		drop_new(sv);
		return NULL;
	}
	memset(&np[*nnp], 0, sizeof(np[*nnp]));
	if (addr_udp_peer(sv->a, (const struct sockaddr *)ss, len,
	    &np[*nnp].s) == -1) {
		pause_accepting(sv, sv->a->err);
		sv->dropped++;
		return NULL;
	}
	return &np[(*nnp)++];
}

static int
hand_over(struct newpeer *p, const uint8_t *dg, size_t len)
{
	uint8_t	*b;
	size_t	 cap;

	if (p->len + FRAME_HDR + len > p->cap) {
		cap = p->cap ? p->cap * 2 : 4096;
		while (cap < p->len + FRAME_HDR + len)
			cap *= 2;
		if ((b = realloc(p->buf, cap)) == NULL)
			return -1;
		p->buf = b;
		p->cap = cap;
	}
	frame_put(p->buf + p->len, len);
	memcpy(p->buf + p->len + FRAME_HDR, dg, len);
	p->len += FRAME_HDR + len;
	return 0;
}

/*
 * One round on a forking udp-listen: drain the listener, making a
 * connected socket for each new sender as it shows up, until the listener
 * is empty; then fork a child per new peer.  Returns 1 in a child.
 */
static int
serve_udp(struct serve *sv, struct side *child)
{
	static uint8_t		 dg[65536];
	struct newpeer		*np, *p;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	size_t			 nnp = 0, i, j;
	ssize_t			 r;
	int			 in_child = 0;

	if ((np = reallocarray(NULL, ROUND_PEERS, sizeof(*np))) == NULL) {
		pause_accepting(sv, "out of memory");
		return 0;
	}
	for (;;) {
		len = sizeof(ss);
		r = recvfrom(sv->a->lfd, dg, sizeof(dg), MSG_DONTWAIT,
		    (struct sockaddr *)&ss, &len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			break;		/* EAGAIN: drained; anything else too */
		if ((p = peer_of(sv, np, &nnp, &ss, len)) != NULL &&
		    hand_over(p, dg, (size_t)r) == -1)
			sv->dropped++;
	}
	for (i = 0; i < nnp && !in_child; i++) {
		if (spawn(sv, &np[i].s) == 1) {
			in_child = 1;
			*child = np[i].s;
			child->pre = np[i].buf;
			child->prelen = np[i].len;
			np[i].buf = NULL;
			for (j = i + 1; j < nnp; j++)
				(void)close(np[j].s.rfd);
		}
		if (!in_child)
			(void)close(np[i].s.rfd);
	}
	for (i = 0; i < nnp; i++)
		free(np[i].buf);
	free(np);
	return in_child;
}

static void
stop_children(struct serve *sv)
{
	struct timespec	 ts = { 0, 20 * 1000000L };
	size_t		 i;
	int		 n;

	for (i = 0; i < sv->nkids; i++)
		(void)kill(sv->kids[i], SIGTERM);
	for (n = 0; n < 250 && sv->nkids > 0; n++) {	/* 5 s */
		nanosleep(&ts, NULL);
		reap(sv);
	}
	for (i = 0; i < sv->nkids; i++)
		(void)kill(sv->kids[i], SIGKILL);
	while (sv->nkids > 0 && waitpid(-1, NULL, 0) > 0)
		reap(sv);
}

static int
paused(const struct serve *sv, int *ms)
{
	struct timespec	 now;
	long long	 left;

	if (sv->pause.tv_sec == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (sv->pause.tv_sec - now.tv_sec) * 1000LL +
	    (sv->pause.tv_nsec - now.tv_nsec) / 1000000;
	if (left <= 0)
		return 0;
	*ms = (int)left;
	return 1;
}

static void
serve_print_counters(const struct serve *sv)
{
	logx("fork: %llu children served, %zu running, %llu datagrams from "
	    "new peers dropped", (unsigned long long)sv->served, sv->nkids,
	    (unsigned long long)sv->dropped);
}

int
serve_run(struct addr *a, const struct relay_opts *o, struct side *s,
    int stats)
{
	struct serve	 sv;
	struct pollfd	 pfd;
	struct timespec	 ts;
	sigset_t	 block, old, waitmask;
	int		 ms, udp = a->kind == ADDR_UDP, child = 0;

	memset(&sv, 0, sizeof(sv));
	sv.a = a;
	sv.o = o;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	waitmask = old;
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGUSR1);
	sigdelset(&waitmask, SIGCHLD);

	while (!sig_quit && !child) {
		if (sig_child) {
			sig_child = 0;
			reap(&sv);
		}
		if (sig_stats) {
			sig_stats = 0;
			serve_print_counters(&sv);
		}
		ms = -1;
		/* a full stream listener leaves peers waiting in the backlog */
		pfd.fd = paused(&sv, &ms) || (!udp && full(&sv)) ? -1 : a->lfd;
		pfd.events = POLLIN;
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		if (ppoll(&pfd, 1, ms >= 0 ? &ts : NULL, &waitmask) <= 0)
			continue;
		if (udp)
			child = serve_udp(&sv, s);
		else
			child = serve_stream(&sv, s);
	}
	if (child) {
		/* the child relays with the signal state it started with */
		signal(SIGCHLD, SIG_DFL);
		sig_stats = 0;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	stop_children(&sv);
	if (stats || o->verbose)
		serve_print_counters(&sv);
	free(sv.kids);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}
