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

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

#define EVENTS_MAX	256	/* epoll events taken a wait */

long long
loop_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int
loop_init(struct loop *l, const sigset_t *waitmask)
{
	memset(l, 0, sizeof(*l));
	l->waitmask = *waitmask;
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
		if (errno == EINTR)
			return 0;	/* a signal: the owner looks */
		return -1;
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
	return 0;
}
