/*
 * tlsio.c: TLS I/O of a session: frames inside TLS on a stream socket,
 * read and gathered as a stream's (stream.c), through tls.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"
#include "relay.h"

/*
 * A TLS source: a read returns one record at most, and what OpenSSL has
 * read ahead is no event for the loop: read until it would block or the
 * ring is full (relay_turn comes back for what TLS still holds).
 */
void
tl_read(struct relay *rl, struct dir *d)
{
	while (d->n < d->nq && st_fill(rl, d, tls_read))
		;
}

/*
 * A TLS sink: the frames gathered as for writev, copied into one buffer
 * (one that lies whole in the ring goes as it is) and written in as few
 * records as TLS allows.  A write that said EAGAIN is given the same bytes
 * again: they are gathered again from the same first byte.
 */
void
tl_write(struct relay *rl, struct dir *d)
{
	size_t		 total, len = 0, n, done;
	ssize_t		 r;
	uint8_t		*p;
	unsigned	 i, niov = st_gather(d, &total);

	if (niov == 1) {
		p = d->iov[0].iov_base;
		len = total;
	} else {
		p = d->stage;
		for (i = 0; i < niov && len < TLS_STAGE; i++) {
			n = d->iov[i].iov_len < TLS_STAGE - len ?
			    d->iov[i].iov_len : TLS_STAGE - len;
			memcpy(p + len, d->iov[i].iov_base, n);
			len += n;
		}
	}
	for (done = 0; done < len; done += (size_t)r)
		if ((r = tls_write(d->dst, p + done, len - done)) == -1) {
			if (errno != EAGAIN && done == 0) {
				st_write_error(rl, d, errno);
				return;
			}
			d->wblocked = 1;	/* the rest later */
			break;
		}
	st_written(rl, d, done);
}

/* A handshake slot came free for the session: a turn, to arm for it. */
static void
hs_wake(void *arg)
{
	struct relay	*rl = arg;

	loop_defer(rl->loop, &rl->kick);
}

/*
 * A step of s's TLS handshake (started on its first turn, once it is
 * connected).  Done: it relays from now on.  Failed or timed out: a
 * failed attempt with retry, else the end of the session, one line.
 */
void
hs_turn(struct relay *rl, struct side *s)
{
	char	 buf[NAME_MAX_];
	int	 r;

	if (s->tls == NULL && tls_start(s, hs_wake, rl, buf, sizeof(buf)) ==
	    -1) {
		relay_fail(rl, s, "%s", buf);
		rl->abort = 1;
		return;
	}
	if ((r = tls_handshake(s)) == 0)
		return;
	if (r == 1) {
		procfig.tls_done++;
		redial_up(s);
		if (rl->o->verbose) {
			tls_describe(s, buf, sizeof(buf));
			logx("%s: %s", s->name, buf);
		}
		return;
	}
	procfig.tls_failed++;
	if (lose(rl, s, 0, 1))
		return;
	relay_fail(rl, s, "%s", tls_why(s));
	rl->abort = 1;
}
