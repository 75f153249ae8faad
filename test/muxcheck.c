/*
 * muxcheck: mux.c against a real yamux peer, over TCP, before mux is part
 * of dgrelay (WORK IN PROGRESS).  Blocking and simple: poll, read, write.
 *
 *   muxcheck accept N    listen on 127.0.0.1 (prints "port P"), take one
 *                        carrier, echo every stream's bytes until N
 *                        streams have ended; "ok N streams"
 *   muxcheck open PORT N dial 127.0.0.1 PORT, open N streams, send a
 *                        frame naming each, expect it back; "ok N streams"
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mux.h"

static struct mstream	*st[4096];
static uint8_t		 rb[4096][64];	/* open: each stream's echo */
static size_t		 nst, ended;

static void
on_accept(void *arg, struct mstream *s)
{
	(void)arg;
	if (nst < 4096)
		st[nst++] = s;
}

/* Send what is queued. */
static void
flush(struct mux *m, int fd)
{
	const uint8_t	*o;
	size_t		 n;
	ssize_t		 r;

	while ((o = mux_output(m, &n)) != NULL) {
		if ((r = write(fd, o, n)) <= 0)
			err(1, "write");
		mux_sent(m, (size_t)r);
	}
}

/* One round: send what is queued, take what came. */
static void
pump(struct mux *m, int fd)
{
	static uint8_t	 buf[65536];
	struct pollfd	 p = { fd, POLLIN, 0 };
	ssize_t		 r;

	flush(m, fd);
	if (poll(&p, 1, 20000) <= 0)
		errx(1, "FAIL no answer in 20 s");
	if ((r = read(fd, buf, sizeof(buf))) <= 0)
		errx(1, "FAIL carrier ended (%zd) after %zu of %zu streams ended", r, ended, nst);
	if (mux_input(m, buf, (size_t)r) == -1)
		errx(1, "FAIL carrier: %s", m->why);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	struct mux		 m;
	socklen_t		 len = sizeof(sin);
	uint8_t			 buf[4096], want[64];
	size_t			 i, n, got[4096];
	ssize_t			 r;
	int			 fd, lfd, one = 1;

	if (argc < 3)
		errx(2, "usage: muxcheck accept N | open PORT N");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (strcmp(argv[1], "accept") == 0) {
		n = strtoul(argv[2], NULL, 10);
		if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
		    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) == -1 ||
		    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    listen(lfd, 1) == -1 ||
		    getsockname(lfd, (struct sockaddr *)&sin, &len) == -1)
			err(1, "listen");
		printf("port %d\n", ntohs(sin.sin_port));
		fflush(stdout);
		if ((fd = accept(lfd, NULL, NULL)) == -1)
			err(1, "accept");
		if (mux_init(&m, 0, 4096, 7) == -1)
			err(1, "mux_init");
		m.on_accept = on_accept;
		while (ended < n) {
			pump(&m, fd);
			for (i = 0; i < nst; i++) {
				if (st[i] == NULL)
					continue;
				while ((r = ms_read(st[i], buf, sizeof(buf))) >
				    0)
					if (ms_write(st[i], buf, (size_t)r) != r)
						errx(1, "FAIL echo blocked");
				if (r == 0) {	/* its FIN: ours, and done */
					(void)ms_close(st[i]);
					ms_release(st[i], 0);
					st[i] = NULL;
					ended++;
				}
			}
		}
		/* the last FINs out */
		flush(&m, fd);
		printf("ok %zu streams\n", n);
		mux_free(&m);
		return 0;
	}
	if (argc < 4)
		errx(2, "usage: muxcheck open PORT N");
	n = strtoul(argv[3], NULL, 10);
	sin.sin_port = htons((uint16_t)atoi(argv[2]));
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(1, "connect");
	if (mux_init(&m, 1, 4096, 9) == -1)
		err(1, "mux_init");
	for (i = 0; i < n; i++) {
		if ((st[i] = mux_open(&m)) == NULL)
			err(1, "mux_open");
		r = snprintf((char *)buf + 2, sizeof(buf) - 2, "stream %zu",
		    i);
		buf[0] = 0;
		buf[1] = (uint8_t)r;
		if (ms_write(st[i], buf, (size_t)r + 2) != r + 2)
			errx(1, "FAIL write");
		got[i] = 0;
	}
	for (ended = 0; ended < n;) {
		pump(&m, fd);
		for (i = 0; i < n; i++) {
			if (st[i] == NULL)
				continue;
			r = ms_read(st[i], rb[i] + got[i], sizeof(rb[i]) - got[i]);
			if (r > 0)
				got[i] += (size_t)r;
			snprintf((char *)want + 2, sizeof(want) - 2,
			    "stream %zu", i);
			want[0] = 0;
			want[1] = (uint8_t)strlen((char *)want + 2);
			if (got[i] == (size_t)want[1] + 2) {
				if (memcmp(rb[i], want, got[i]) != 0)
					errx(1, "FAIL stream %zu: wrong echo",
					    i);
				(void)ms_close(st[i]);
				ms_release(st[i], 0);
				st[i] = NULL;
				ended++;
			}
		}
	}
	flush(&m, fd);
	printf("ok %zu streams\n", n);
	mux_free(&m);
	return 0;
}
