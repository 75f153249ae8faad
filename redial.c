/*
 * redial.c: a connection that comes back (retry).  A side with option
 * retry starts down and is connected by the relay, the first time too;
 * when its connection ends, the relay hands it here instead of ending.
 *
 * The wait between attempts starts at interval=, doubles on each failure
 * up to BACKOFF_MAX (or interval, if longer), and is shortened by up to a
 * fifth at random, so that clients cut off together do not come back in
 * step.  A connection that lasted (at least interval, and a second) starts
 * the next round afresh: at once, then interval.  An attempt is
 * non-blocking (the relay goes on dropping and counting what the other
 * side sends meanwhile) and given DIAL_WAIT ms.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgrelay.h"

static long long
backoff_cap(const struct redial *rd)
{
	return rd->a->interval_ms > BACKOFF_MAX ? rd->a->interval_ms :
	    BACKOFF_MAX;
}

/* Wait before the next attempt: the current wait less up to a fifth. */
static void
schedule(struct side *s, long long now, const char *why)
{
	struct redial	*rd = s->rd;
	long long	 ms = rd->wait_ms;

	ms -= (long long)arc4random_uniform((uint32_t)(ms / 5 + 1));
	rd->due = now + ms;
	rd->state = RD_WAIT;
	rd->wait_ms = rd->wait_ms * 2 > backoff_cap(rd) ? backoff_cap(rd) :
	    rd->wait_ms * 2;
	if (rd->verbose)
		logx("%s: %s; retrying in %lld.%lld s", s->name, why, ms / 1000,
		    ms % 1000 / 100);
}

void
redial_init(const struct addr *a, struct side *s, int verbose)
{
	struct redial	*rd = &s->redial;

	memset(rd, 0, sizeof(*rd));
	rd->a = a;
	rd->verbose = verbose;
	rd->wait_ms = a->interval_ms;
	rd->state = RD_WAIT;		/* due now: the first attempt */
	rd->due = loop_now();
	rd->since = rd->due;
	s->rd = rd;
}

void
redial_lost(struct side *s, const char *why)
{
	struct redial	*rd = s->rd;
	long long	 now = loop_now(), lasted;

	sock_hangup(rd->a, s);
	lasted = now - rd->since;
	rd->since = now;
	rd->failed = 0;
	if (rd->verbose)
		logx("%s: lost: %s", s->name, why);
	if (lasted >= rd->a->interval_ms && lasted >= 1000) {
		rd->wait_ms = rd->a->interval_ms;
		rd->state = RD_WAIT;
		rd->due = rd->since;	/* at once */
	} else
		schedule(s, now, "it did not last");
}

/* The attempt is over: up, or failed (s->err says why). */
static enum redial_state
settle(struct side *s, int r, long long now)
{
	struct redial	*rd = s->rd;

	if (r == 1) {
		if (rd->state != RD_DIAL)
			rd->due = now + DIAL_WAIT;
		rd->state = RD_DIAL;
		return RD_DIAL;
	}
	if (r == 0) {
		rd->state = RD_UP;
		if (!rd->a->tls)	/* else once its handshake is done */
			redial_up(s);
		return RD_UP;
	}
	if (rd->a->retry != RETRY_FOREVER && ++rd->failed >= rd->a->retry) {
		rd->state = RD_GONE;
		return RD_GONE;
	}
	schedule(s, now, s->err);
	return RD_WAIT;
}

void
redial_up(struct side *s)
{
	struct redial	*rd = s->rd;
	long long	 now = loop_now();

	if (rd == NULL)
		return;			/* no retry: nothing to note */
	rd->failed = 0;
	rd->connects++;
	rd->down_ms += now - rd->since;
	rd->since = now;
	if (rd->verbose)
		logx("%s: connected to %s", s->name, s->peer);
}

enum redial_state
redial_fail(struct side *s, const char *why)
{
	sock_hangup(s->rd->a, s);
	side_fail(s, "%s", why);
	return settle(s, -1, loop_now());
}

enum redial_state
redial_step(struct side *s, int writable)
{
	struct redial	*rd = s->rd;
	long long	 now = loop_now();

	switch (rd->state) {
	case RD_WAIT:
		if (now < rd->due)
			return RD_WAIT;
		if (rd->verbose)
			logx("%s: connecting", s->name);
		return settle(s, sock_dial(rd->a, s), now);
	case RD_DIAL:
		if (writable)
			return settle(s, sock_dial_end(rd->a, s), now);
		if (now < rd->due)
			return RD_DIAL;
		sock_hangup(rd->a, s);
		side_fail(s, "connect: no answer in %d s", DIAL_WAIT / 1000);
		return settle(s, -1, now);
	default:
		return rd->state;
	}
}

int
redial_ms(const struct side *s)
{
	long long	 ms;

	if (s->rd == NULL || (s->rd->state != RD_WAIT &&
	    s->rd->state != RD_DIAL))
		return -1;
	ms = s->rd->due - loop_now();
	return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

void
redial_figures(const struct side *s, struct report *r, int i)
{
	const struct redial	*rd = s->rd;

	if (rd == NULL)
		return;
	r->redials[i] = 1;
	r->reconnects[i] = rd->connects > 0 ? rd->connects - 1 : 0;
	r->down_ms[i] = rd->down_ms;
	if (rd->state != RD_UP)
		r->down_ms[i] += loop_now() - rd->since;
}

void
redial_print(const struct side *s)
{
	const struct redial	*rd = s->rd;
	long long		 down;

	if (rd == NULL)
		return;			/* it does not reconnect */
	down = rd->down_ms;

	if (rd->state != RD_UP)
		down += loop_now() - rd->since;
	logx("%s: %llu reconnects, %lld.%lld s down", s->name,
	    (unsigned long long)(rd->connects > 0 ? rd->connects - 1 : 0),
	    down / 1000, down % 1000 / 100);
}

int
redial_retries(const struct side *s)
{
	return s->rd == NULL ? 0 : s->rd->a->retry;
}

void
redial_why(const struct side *s, char *buf, size_t size)
{
	int	 n = redial_retries(s);

	if (n > 0)
		snprintf(buf, size, "%s (%d attempt%s)", s->err, n,
		    n == 1 ? "" : "s");
	else		/* a multi session's one attempt */
		snprintf(buf, size, "%s", s->err);
}
