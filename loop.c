/*
 * loop.c: the event loop every relay runs in, one pair or ten thousand:
 * epoll over the descriptors the sessions want, and their deadlines in a
 * heap.  Work is done per ready descriptor and per due timer; nothing is
 * scanned per wakeup.
 *
 * A watch is one descriptor of one owner: the owner says what it wants
 * (EPOLLIN, EPOLLOUT) after each piece of work, and epoll is told only
 * when it wants more than epoll has; what it no longer wants is taken
 * off when an event for it comes (then not even a hang-up of a socket it
 * does not read can wake the loop again).  A descriptor epoll refuses (a regular file, a
 * character device such as /dev/null) is always ready, as poll(2) would
 * say: it is handed to its owner on every pass, and the wait does not
 * block while one is wanted.
 *
 * A timer is one deadline of one owner.  The heap is lazy: a deadline that
 * moves later stays where it was and is looked at again when it comes up
 * (an idle timer moves on with every datagram, and must cost nothing
 * then); one that moves earlier is moved up at once.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

#define EVENTS_MAX	256	/* epoll events taken a wait */

/* Set by the handlers, read by loop_run and loop_once only. */
static volatile sig_atomic_t sig_quit;		/* SIGINT, SIGTERM */
static volatile sig_atomic_t sig_stats;	/* SIGUSR1 */
static volatile sig_atomic_t sig_child;	/* SIGCHLD */

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_stats = 1;
	else if (sig == SIGCHLD)
		sig_child = 1;
	else
		sig_quit = 1;
}

void
loop_signals(void)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);	/* a closed stream is an EPIPE */
	sa.sa_handler = on_signal;
	/* no SA_RESTART: a blocking accept or connect (a pair's, before its
	 * loop) must see SIGTERM */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_flags = SA_RESTART;	/* counters on demand never interrupt */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
}

int
loop_signalled(void)
{
	return sig_quit;
}

/* The signals loop_run takes: blocked but in its wait. */
static void
signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGCHLD);
}

long long
loop_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int
loop_init(struct loop *l)
{
	sigset_t	 ours;
	int		 i;

	memset(l, 0, sizeof(*l));
	sigprocmask(SIG_BLOCK, NULL, &l->waitmask);
	signal_set(&ours);
	for (i = 1; i < NSIG; i++)
		if (sigismember(&ours, i) == 1)
			sigdelset(&l->waitmask, i);
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	return 0;
}

void
loop_free(struct loop *l)
{
	if (l->epfd != -1)
		close(l->epfd);
	l->epfd = -1;
	free(l->heap);
	free(l->always);
	l->heap = NULL;
	l->always = NULL;
}

/* ------------------------------------------------------------- watches */

static int
always_add(struct loop *l, struct watch *w)
{
	struct watch	**p;
	unsigned	  n;

	if (w->always_at != 0)
		return 0;
	if (l->nalways == l->calways) {
		n = l->calways ? l->calways * 2 : 8;
		if ((p = reallocarray(l->always, n, sizeof(*p))) == NULL)
			return -1;
		l->always = p;
		l->calways = n;
	}
	l->always[l->nalways++] = w;
	w->always_at = l->nalways;
	return 0;
}

static void
always_del(struct loop *l, struct watch *w)
{
	struct watch	*last;

	if (w->always_at == 0)
		return;
	last = l->always[--l->nalways];
	l->always[w->always_at - 1] = last;
	last->always_at = w->always_at;
	w->always_at = 0;
}

void
watch_init(struct watch *w, void (*fn)(struct watch *, uint32_t), void *arg)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->fn = fn;
	w->arg = arg;
}

int
loop_watch(struct loop *l, struct watch *w, int fd, uint32_t want)
{
	struct epoll_event	 ev;

	if (fd != w->fd)
		loop_unwatch(l, w);
	w->fd = fd;
	w->want = want;
	if (fd == -1)
		return 0;
	if (w->nopoll)
		return want != 0 ? always_add(l, w) : (always_del(l, w), 0);
	/* narrowed lazily: only when an event comes that is not wanted (a
	 * ring that fills and drains costs no system call) */
	if (want == 0 || (w->added && (want & ~w->have) == 0))
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, w->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
	    &ev) == 0 || (w->added && errno == ENOENT &&
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)) {
		w->added = 1;
		w->have = want;
		return 0;
	}
	if (errno != EPERM)
		return -1;
	w->nopoll = 1;		/* a file: always ready */
	return want != 0 ? always_add(l, w) : 0;
}

/* Tell epoll what w wants now, no more (nothing: not even hang-ups). */
static void
narrow(struct loop *l, struct watch *w)
{
	struct epoll_event	 ev;

	if (w->want == 0) {
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		w->added = 0;
		w->have = 0;
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = w->want;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
		w->have = w->want;
}

void
loop_unwatch(struct loop *l, struct watch *w)
{
	if (w->added)
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	always_del(l, w);
	w->added = 0;
	w->nopoll = 0;
	w->have = 0;
	w->want = 0;
	w->fd = -1;
}

void
loop_defer(struct loop *l, struct watch *w)
{
	if (w->deferred)
		return;
	w->deferred = 1;
	w->dnext = l->deferred;
	l->deferred = w;
}

void
loop_undefer(struct loop *l, struct watch *w)
{
	struct watch	**pp;

	if (!w->deferred)
		return;
	for (pp = &l->deferred; *pp != NULL; pp = &(*pp)->dnext)
		if (*pp == w) {
			*pp = w->dnext;
			break;
		}
	w->deferred = 0;
}

/* -------------------------------------------------------------- timers */

static void
heap_swap(struct loop *l, unsigned i, unsigned j)
{
	struct timer	*t = l->heap[i];

	l->heap[i] = l->heap[j];
	l->heap[j] = t;
	l->heap[i]->at = i + 1;
	l->heap[j]->at = j + 1;
}

static void
heap_up(struct loop *l, unsigned i)
{
	while (i > 0 && l->heap[(i - 1) / 2]->key > l->heap[i]->key) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct loop *l, unsigned i)
{
	unsigned	 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= l->nheap)
			return;
		if (c + 1 < l->nheap && l->heap[c + 1]->key < l->heap[c]->key)
			c++;
		if (l->heap[i]->key <= l->heap[c]->key)
			return;
		heap_swap(l, i, c);
		i = c;
	}
}

static struct timer *
heap_pop(struct loop *l)
{
	struct timer	*t = l->heap[0];

	heap_swap(l, 0, --l->nheap);
	heap_down(l, 0);
	t->at = 0;
	return t;
}

void
timer_init(struct timer *t, void (*fn)(struct timer *), void *arg)
{
	memset(t, 0, sizeof(t[0]));
	t->fn = fn;
	t->arg = arg;
}

int
loop_timer(struct loop *l, struct timer *t, long long due)
{
	struct timer	**p;
	unsigned	  n;

	t->due = due;
	if (due == 0)
		return 0;		/* left in the heap, dropped there */
	if (t->at != 0) {
		if (due < t->key) {
			t->key = due;
			heap_up(l, t->at - 1);
		}
		return 0;
	}
	if (l->nheap == l->cheap) {
		n = l->cheap ? l->cheap * 2 : 16;
		if ((p = reallocarray(l->heap, n, sizeof(*p))) == NULL)
			return -1;
		l->heap = p;
		l->cheap = n;
	}
	t->key = due;
	l->heap[l->nheap] = t;
	t->at = ++l->nheap;
	heap_up(l, t->at - 1);
	return 0;
}

void
loop_untimer(struct loop *l, struct timer *t)
{
	unsigned	 i;

	t->due = 0;
	if (t->at == 0)
		return;
	i = t->at - 1;
	heap_swap(l, i, --l->nheap);
	t->at = 0;
	if (i < l->nheap) {
		heap_down(l, i);
		heap_up(l, i);
	}
}

/*
 * Fire what is due; ms until the next deadline, -1 for none, 0 when one
 * fired (its owner may have more to do before anything is waited for).
 */
static int
timers_run(struct loop *l)
{
	struct timer	*t;
	long long	 now = loop_now(), ms;
	int		 fired = 0;

	while (l->nheap > 0 && l->heap[0]->key <= now) {
		t = heap_pop(l);
		if (t->due == 0)
			continue;
		if (t->due > now) {	/* moved on since: look again then */
			(void)loop_timer(l, t, t->due);
			continue;
		}
		t->due = 0;
		t->fn(t);
		fired = 1;
	}
	if (fired)
		return 0;
	if (l->nheap == 0)
		return -1;
	ms = l->heap[0]->key - now;
	return ms > 3600000 ? 3600000 : (int)ms;
}

/* ------------------------------------------------------------ children */

void
loop_child(struct loop *l, struct child *c, pid_t pid,
    void (*fn)(struct child *, int), void *arg)
{
	c->pid = pid;
	c->fn = fn;
	c->arg = arg;
	c->next = l->children;
	l->children = c;
}

void
loop_unchild(struct loop *l, struct child *c)
{
	struct child	**pp;

	for (pp = &l->children; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

/* SIGCHLD: the children that ended, to their owners. */
static void
children_reap(struct loop *l)
{
	struct child	**pp, *c;
	pid_t		  r;
	int		  st;

	for (pp = &l->children; (c = *pp) != NULL;) {
		st = 0;
		if ((r = waitpid(c->pid, &st, WNOHANG)) == 0 ||
		    (r == -1 && errno == EINTR)) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;		/* ended (or reaped elsewhere: 0) */
		c->fn(c, r == -1 ? 0 : st);
	}
	if (l->on_child != NULL)
		l->on_child(l->arg);
}

/* ---------------------------------------------------------------- wait */

int
loop_once(struct loop *l)
{
	struct epoll_event	 ev[EVENTS_MAX];
	struct watch		*w;
	unsigned		 i;
	int			 n, ms;

	ms = timers_run(l);
	if (l->nalways > 0 || l->deferred != NULL)
		ms = 0;
	if ((n = epoll_pwait(l->epfd, ev, EVENTS_MAX, ms, &l->waitmask)) ==
	    -1) {
		if (errno != EINTR)
			return -1;
		n = 0;		/* a signal: looked at below, or by loop_run */
	}
	for (i = 0; i < (unsigned)n; i++) {
		w = ev[i].data.ptr;
		if (w->fd == -1 || !w->added)
			continue;	/* let go earlier in this pass */
		if ((ev[i].events & ~w->want & (EPOLLIN | EPOLLOUT)) ||
		    w->want == 0)
			narrow(l, w);
		if ((ev[i].events & w->want) ||
		    (w->want != 0 && (ev[i].events & (EPOLLERR | EPOLLHUP))))
			w->fn(w, ev[i].events);
	}
	/* files: always ready for what they want (walked backwards: a
	 * callback may drop its own) */
	for (i = l->nalways; i-- > 0;)
		if (i < l->nalways) {
			w = l->always[i];
			w->fn(w, w->want);
		}
	while ((w = l->deferred) != NULL) {
		l->deferred = w->dnext;
		w->deferred = 0;
		w->fn(w, 0);
	}
	if (sig_child) {
		sig_child = 0;
		children_reap(l);
	}
	return 0;
}

/* -i: the owner's counters every stats_ms. */
static void
stats_due(struct timer *t)
{
	struct loop	*l = t->arg;

	if (l->on_stats != NULL)
		l->on_stats(l->arg);
	(void)loop_timer(l, t, loop_now() + l->stats_ms);
}

int
loop_run(struct loop *l)
{
	sigset_t	 ours, old;
	int		 r = 0;

	signal_set(&ours);
	sigprocmask(SIG_BLOCK, &ours, &old);
	l->stopped = 0;
	if (l->stats_ms > 0 && l->on_stats != NULL) {
		timer_init(&l->stats_t, stats_due, l);
		(void)loop_timer(l, &l->stats_t, loop_now() + l->stats_ms);
	}
	while (!l->stopped) {
		if (sig_quit) {		/* taken: the owner ends, and may
					 * run the loop again to do so */
			sig_quit = 0;
			l->quit = 1;
			break;
		}
		if (sig_stats) {
			sig_stats = 0;
			if (l->on_stats != NULL)
				l->on_stats(l->arg);
		}
		if ((r = loop_once(l)) == -1)
			break;
		if (l->on_turn != NULL)
			l->on_turn(l->arg);
	}
	if (l->stats_ms > 0)
		loop_untimer(l, &l->stats_t);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

void
loop_stop(struct loop *l)
{
	l->stopped = 1;
}

int
loop_quitting(const struct loop *l)
{
	return l->quit;
}
