/*
 * metrics.c: -M ADDRESS, Prometheus metrics over HTTP/1.1 on the relay's
 * own loop.  GET /metrics answers what the running mode reports (its fill
 * function, report.c renders it); anything else is 404 or 405.  A scraper
 * cannot slow relaying or hold memory: at most SCRAPES_MAX connections
 * (a new one closes the oldest that has not sent its request yet, so
 * idle connections cannot keep a scraper out), a request of at most
 * REQ_MAX bytes, SCRAPE_MS from connection to the last byte of the answer,
 * then the connection is closed.  Bound: SCRAPES_MAX x (REQ_MAX + an
 * answer of at most BODY_MAX), about 1 MiB.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dgrelay.h"

#define SCRAPES_MAX	16
#define REQ_MAX		4096
#define SCRAPE_MS	5000
#define BODY_MAX	(64 << 10)

struct scrape {
	int		 fd;		/* -1: a free slot */
	long long	 since;		/* accepted at */
	struct watch	 w;
	struct timer	 t;
	char		 req[REQ_MAX];
	size_t		 rlen;
	char		*out;		/* the answer, once the request is in */
	size_t		 olen, ooff;
};

static struct {
	int		 parsed;	/* -M was given */
	int		 open;
	struct addr	 a;
	struct side	 s;		/* the listener */
	struct loop	*l;		/* serving on it */
	struct watch	 lw;
	int		 armed;		/* lw wants EPOLLIN */
	void		(*fill)(void *, struct report *);
	void		*arg;
	struct scrape	 sc[SCRAPES_MAX];
	int		 n;
	int		 closing;	/* metrics_close: listen no more */
} M;

const char *
metrics_parse(const char *spec)
{
	if (addr_parse(spec, &M.a) == -1)
		return M.a.err;
	if (!M.a.listen || (M.a.kind != ADDR_TCP && M.a.kind != ADDR_UNIX) ||
	    M.a.tls || M.a.many || M.a.wideframe)
		return "must be tcp-listen or unix-listen, with no fork, "
		    "multi, tls or frame";
	M.a.many = 1;		/* many scrapes: its socket never blocks */
	M.parsed = 1;
	return NULL;
}

int
metrics_open(int verbose)
{
	int	 i;

	if (!M.parsed)
		return 0;
	if (sock_open(&M.a, &M.s) == -1 || M.s.lfd == -1) {
		logx("-M %s: %s", M.a.spec, M.s.err);
		sock_close(&M.a, &M.s);
		return -1;
	}
	if (verbose)
		logx("-M %s: listening on %s", M.a.label, M.s.local);
	M.open = 1;
	for (i = 0; i < SCRAPES_MAX; i++)
		M.sc[i].fd = -1;
	return 0;
}

static void	listener_ready(struct watch *, uint32_t);

static void
arm(int on)
{
	if (M.armed == on || M.l == NULL || M.closing)
		return;
	M.armed = on;
	if (loop_watch(M.l, &M.lw, M.s.lfd, on ? EPOLLIN : 0) == -1)
		logerr("-M %s: epoll_ctl", M.a.label);
}

static void
scrape_close(struct scrape *c)
{
	loop_unwatch(M.l, &c->w);
	loop_untimer(M.l, &c->t);
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	M.n--;
	arm(1);			/* a slot is free: accept again */
}

/*
 * The answer to the request in c->req (its head is whole, or toolong):
 * the metrics for GET /metrics, the head alone for HEAD, else an error.
 */
static void
answer(struct scrape *c, int toolong)
{
	static char	 body[BODY_MAX];
	struct report	 r;
	const char	*status = "200 OK", *extra = "";
	const char	*type = "text/plain; version=0.0.4; charset=utf-8";
	char		 method[16], path[64], head[512];
	int		 blen, hlen, head_only;

	method[0] = path[0] = '\0';
	(void)sscanf(c->req, "%15s %63s", method, path);
	head_only = strcmp(method, "HEAD") == 0;
	if (toolong)
		status = "431 Request Header Fields Too Large";
	else if (strcmp(method, "GET") != 0 && !head_only) {
		status = "405 Method Not Allowed";
		extra = "Allow: GET, HEAD\r\n";
	} else if (strcmp(path, "/metrics") != 0 &&
	    strncmp(path, "/metrics?", 9) != 0)
		status = "404 Not Found";
	blen = -1;
	if (status[0] == '2') {
		memset(&r, 0, sizeof(r));
		r.mode = "pair";
		if (M.fill != NULL)
			M.fill(M.arg, &r);
		if ((blen = report_metrics(&r, body, sizeof(body))) == -1)
			status = "500 Internal Server Error";
		else
			procfig.scrapes++;
	}
	if (blen == -1) {
		type = "text/plain; charset=utf-8";
		blen = snprintf(body, sizeof(body), "%s\n", status);
	}
	hlen = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: "
	    "%s\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n",
	    status, type, blen, extra);
	if (head_only)
		blen = 0;
	if ((c->out = malloc((size_t)hlen + (size_t)blen)) == NULL)
		return;
	memcpy(c->out, head, (size_t)hlen);
	memcpy(c->out + hlen, body, (size_t)blen);
	c->olen = (size_t)hlen + (size_t)blen;
	c->ooff = 0;
}

static void
scrape_ready(struct watch *w, uint32_t ev)
{
	struct scrape	*c = w->arg;
	ssize_t		 r;

	(void)ev;
	if (c->out == NULL) {
		r = read(c->fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen);
		if (r == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			scrape_close(c);
			return;
		}
		c->rlen += (size_t)r;
		c->req[c->rlen] = '\0';
		if (strstr(c->req, "\r\n\r\n") == NULL &&
		    strstr(c->req, "\n\n") == NULL &&
		    c->rlen < sizeof(c->req) - 1)
			return;
		/* the head, or REQ_MAX of it: refused, not read on */
		answer(c, strstr(c->req, "\r\n\r\n") == NULL &&
		    strstr(c->req, "\n\n") == NULL);
		if (c->out == NULL) {
			scrape_close(c);	/* no memory */
			return;
		}
	}
	while (c->ooff < c->olen) {
		r = write(c->fd, c->out + c->ooff, c->olen - c->ooff);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN) {
			if (loop_watch(M.l, &c->w, c->fd, EPOLLOUT) == -1)
				scrape_close(c);
			return;
		}
		if (r <= 0) {
			scrape_close(c);
			return;
		}
		c->ooff += (size_t)r;
	}
	/* all written; the peer's further bytes are not read */
	(void)shutdown(c->fd, SHUT_WR);
	scrape_close(c);
}

static void
scrape_due(struct timer *t)
{
	scrape_close(t->arg);		/* too slow: SCRAPE_MS is all */
}

/* Make room: close the oldest connection still short of a request. */
static int
evict(void)
{
	struct scrape	*old = NULL;
	int		 i;

	for (i = 0; i < SCRAPES_MAX; i++)
		if (M.sc[i].fd != -1 && M.sc[i].out == NULL &&
		    (old == NULL || M.sc[i].since < old->since))
			old = &M.sc[i];
	if (old == NULL)
		return 0;
	scrape_close(old);
	return 1;
}

static void
listener_ready(struct watch *w, uint32_t ev)
{
	static time_t	 said;
	struct scrape	*c;
	int		 fd, i, k;

	(void)w;
	(void)ev;
	for (k = 0; k < SCRAPES_MAX; k++) {
		if (M.n == SCRAPES_MAX && !evict()) {
			arm(0);		/* all answering: the rest wait */
			return;
		}
		fd = accept4(M.s.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED && log_due(&said))
				logerr("-M %s: accept", M.a.label);
			return;
		}
		for (i = 0; M.sc[i].fd != -1; i++)
			;
		c = &M.sc[i];
		c->fd = fd;
		c->rlen = 0;
		c->since = loop_now();
		watch_init(&c->w, scrape_ready, c);
		timer_init(&c->t, scrape_due, c);
		if (loop_watch(M.l, &c->w, fd, EPOLLIN) == -1 ||
		    loop_timer(M.l, &c->t, loop_now() + SCRAPE_MS) == -1) {
			loop_unwatch(M.l, &c->w);
			close(fd);
			c->fd = -1;
			continue;
		}
		M.n++;
	}
}

void
metrics_serve(struct loop *l, void (*fill)(void *, struct report *),
    void *arg)
{
	int	 i;

	if (!M.open)
		return;
	M.fill = fill;
	M.arg = arg;
	if (M.l == l)
		return;
	/* a loop of its own now (a fork child's): leave the old one's */
	for (i = 0; i < SCRAPES_MAX && M.l != NULL; i++)
		if (M.sc[i].fd != -1)
			scrape_close(&M.sc[i]);
	if (M.l != NULL && M.armed)
		loop_unwatch(M.l, &M.lw);
	M.l = l;
	M.armed = 0;
	watch_init(&M.lw, listener_ready, NULL);
	arm(1);
}

void
metrics_close(int owner)
{
	int	 i;

	if (!M.open)
		return;
	if (!owner)
		M.s.unlink = 0;		/* the parent's socket path */
	M.closing = 1;
	for (i = 0; i < SCRAPES_MAX && M.l != NULL; i++)
		if (M.sc[i].fd != -1)
			scrape_close(&M.sc[i]);
	if (M.l != NULL && M.armed)
		loop_unwatch(M.l, &M.lw);
	M.armed = 0;
	M.l = NULL;
	M.fill = NULL;
	sock_close(&M.a, &M.s);
	M.open = 0;
}
