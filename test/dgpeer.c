/*
 * dgpeer: the test peer for dgrelay's suite.  It knows nothing of dgrelay's
 * code; it has its own framing so that it checks dgrelay, not itself.
 *
 *   dgpeer echo [-6] [-b HOST] [-d HOST:PORT] [-p PORT] [-r] [-R RCVBUF]
 *	    [-w MS] TYPE [PATH]
 *	serve an echo (TYPE udp, tcp, unix, seqpacket; -R: UDP receive buffer,
 *	4 MiB by default, as it may serve many): datagrams back to
 *	their sender (-d: to HOST:PORT; -w: each MS late, a slow backend),
 *	stream bytes back as they came
 *	(which echoes frames).  Prints "port N" once bound.
 *   dgpeer dump [-6] [-b HOST] [-p PORT] [-n N]
 *	bind UDP, print "port N", then one line "LEN HEX" per datagram.
 *   dgpeer send [-B N] [-i MS] [-s SPORT] HOST PORT HEX...
 *	send each HEX argument as one UDP datagram ("-" is empty), MS apart
 *	(-B: the first N back to back; -s: from 127.0.0.1 SPORT).
 *   dgpeer burst [-H SEC] [-t SEC] udp|tcp N HOST PORT
 *	N peers at once, each its own socket (UDP: its own source port; TCP:
 *	its own connection, framed): each sends one datagram naming itself
 *	(8 bytes: its index, then ~index), all before any answer is read,
 *	and expects it back through an echo, byte for byte.  Prints
 *	"sent N", then "ok N answered" and "ms MS" (first send to last
 *	answer), or "FAIL ..." and exits 1 after SEC seconds (20) without
 *	progress.  -H: then hold every socket open SEC seconds ("holding").
 *   dgpeer siege [-T [-h]] [-q] [-b FROM] [-n N] [-t SEC] HALF NOREAD
 *	    HOST PORT
 *	HALF connections that send half a 65,535-byte frame (-h: a TLS
 *	ClientHello; -q: nothing) and stop, NOREAD
 *	that send N frames of 1,000 bytes (2048) and never read (a 4 KiB
 *	window);
 *	"holding N", then all kept open SEC seconds.  -T: over TLS.
 *   dgpeer sendseq PATH HEX...
 *	connect to the unix SOCK_SEQPACKET socket PATH, send each HEX as one
 *	message ("-" is empty, which the reader takes for end of input),
 *	back to back; then wait for the reader to close.
 *   dgpeer free udp|tcp
 *	print a port that is free now.
 *   dgpeer ping [-LP] [-n N] [-m MIN] [-M MAX] [-w WIN] [-W BYTES]
 *	    [-S SEED] [-t SEC] [-i MS] TRANSPORT...
 *	send N datagrams of sizes MIN..MAX made from SEED, expect each back,
 *	intact and in order, through an echo; at most WIN datagrams and
 *	BYTES bytes in flight (-i: one at a time, MS apart; -L: sizes
 *	log-uniform, small as likely as large; -P: random pauses).  TRANSPORT is
 *	one of udp HOST PORT | udpfrom LHOST LPORT HOST PORT | tcp HOST PORT | unix PATH | seqpacket PATH |
 *	    exec COMMAND | fdexec stream|dgram|seqpacket|pipes COMMAND
 *	(exec: COMMAND's stdin/stdout are pipes, framed; fdexec: a
 *	socketpair as its fd 3, or pipes as fd 3 (its input) and 4).
 *	Prints "ok N datagrams B bytes", or "FAIL ..." and exits 1.
 *   dgpeer flood-close COMMAND
 *	flood COMMAND's fd 3 (a stream socketpair) with frames, unread
 *	answers piling up, then end our half and close; "child exit N".
 *   dgpeer gen|check [-n N] [-m MIN] [-M MAX] [-S SEED]
 *	write the same datagrams as frames to stdout / check them on stdin.
 *   dgpeer rst [-l] [-w MS] HOST PORT
 *	copy stdin to a TCP connection, wait MS, close with RST (-l: listen
 *	on HOST PORT, printing "port N", and take one connection instead).
 *   dgpeer hold [-p PORT] [-r RCVBUF] [-t MS]
 *	listen on TCP ("port N"), take one connection, read nothing for
 *	MS, close it with the data unread ("accepted", "closed").
 *   dgpeer trickle [-d US]
 *	stdin to stdout one byte a write, US apart.
 *   dgpeer slowsink [-d US] FILE
 *	read records from fd 0 (seqpacket), US apart, into FILE as frames.
 *   dgpeer frames [-o OUT] [-s MAX] FILE
 *	the reference decoder: "frames N bytes B over O partial P"; -o:
 *	the frames that fit MAX, as frames, into OUT.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <openssl/ssl.h>

#include <err.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUFMAX	(65535 + 2)

static int	 opt_pace;	/* ping -P */

struct gen {
	uint64_t	 seed;
	long		 min, max;
	int		 logsize;	/* -L: small sizes as likely as large */
};

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Datagram i of the sequence: its size, and its bytes in buf. */
static size_t
gen_dgram(const struct gen *g, uint64_t i, uint8_t *buf)
{
	uint64_t	 x = mix(g->seed * 0x9e3779b97f4a7c15ULL + i + 1);
	size_t		 n, j;

	if (g->logsize) {
		/* a power of two picked first, then a size below it */
		uint64_t span = (uint64_t)(g->max - g->min) + 1,
		    m = (uint64_t)1 << ((x >> 40) % 17);

		n = (size_t)g->min + (size_t)((x >> 8) % (m < span ? m : span));
	} else
		n = (size_t)g->min +
		    (size_t)(x % (uint64_t)(g->max - g->min + 1));
	for (j = 0; j < n; j++) {
		if (j % 8 == 0)
			x = mix(x + j + 1);
		buf[j] = (uint8_t)(x >> (8 * (j % 8)));
	}
	return n;
}

static long long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static long
num(const char *s, long min, long max)
{
	const char	*errstr;
	long long	 n = strtonum(s, min, max, &errstr);

	if (errstr != NULL)
		errx(2, "number %s: %s", s, errstr);
	return (long)n;
}

/* ------------------------------------------------------------- sockets */

static int
ip_socket(int type, int v6, const char *host, long port, int reuse)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host ? host : "::1",
		    &sin6->sin6_addr) != 1)
			errx(2, "bad address %s", host);
		len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host ? host : "127.0.0.1",
		    &sin->sin_addr) != 1)
			errx(2, "bad address %s", host);
		len = sizeof(*sin);
	}
	if ((fd = socket(ss.ss_family, type, 0)) == -1)
		err(1, "socket");
	if (reuse) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		err(1, "bind");
	if (type == SOCK_STREAM && listen(fd, 64) == -1)
		err(1, "listen");
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	printf("port %d\n", ntohs(v6 ? sin6->sin6_port : sin->sin_port));
	fflush(stdout);
	return fd;
}

static int
connect_buf(int type, const char *host, const char *port, int rcvbuf,
    const char *from)
{
	struct sockaddr_in	 sin;
	struct addrinfo	 hints, *res, *ai;
	int		 fd = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = type;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s: %s", host, gai_strerror(e));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, type, 0)) == -1)
			continue;
		/* a small window, set before the handshake: a peer that
		 * does not read shows at once */
		if (rcvbuf > 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			    sizeof(rcvbuf));
		if (from != NULL && ai->ai_family == AF_INET) {
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			if (inet_pton(AF_INET, from, &sin.sin_addr) != 1 ||
			    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
				err(1, "bind %s", from);
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		err(1, "connect %s %s", host, port);
	return fd;
}

static int
connect_to(int type, const char *host, const char *port)
{
	return connect_buf(type, host, port, 0, NULL);
}

static int
unix_socket(int type, const char *path, int listening)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(2, "path too long");
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, type, 0)) == -1)
		err(1, "socket");
	if (listening) {
		if (bind(fd, (struct sockaddr *)&sun, (socklen_t)(
		    offsetof(struct sockaddr_un, sun_path) + strlen(path) +
		    (path[0] != '@'))) == -1 || listen(fd, 64) == -1)
			err(1, "bind %s", path);
		printf("listening\n");
		fflush(stdout);
	} else if (connect(fd, (struct sockaddr *)&sun, (socklen_t)(
	    offsetof(struct sockaddr_un, sun_path) + strlen(path) +
	    (path[0] != '@'))) == -1)
		err(1, "connect %s", path);
	return fd;
}

static void
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t	 r;

	while (n > 0) {
		if ((r = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "write");
		}
		p += r;
		n -= (size_t)r;
	}
}

/* ---------------------------------------------------------------- echo */

static void
echo_stream_conn(int fd)
{
	static uint8_t	 buf[1 << 16];
	ssize_t		 r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		write_all(fd, buf, (size_t)r);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* A datagram the slow echo holds until its time. */
struct late {
	struct sockaddr_storage	 to;
	socklen_t		 len;
	uint8_t			*p;
	size_t			 n;
	long long		 due;
};

/*
 * The UDP echo with each answer MS late (a slow backend): what comes is
 * held, up to 4,096 at a time, and sent back when its time comes.
 */
static void
echo_late(int fd, long ms)
{
	static uint8_t		 buf[BUFMAX];
	static struct late	 q[4096];
	struct pollfd		 pfd = { fd, POLLIN, 0 };
	size_t			 head = 0, n = 0;
	long long		 wait;
	ssize_t			 r;
	struct late		*l;

	for (;;) {
		wait = n > 0 ? q[head].due - now_ms() : -1;
		if (n == 0 || wait > 0)
			(void)poll(&pfd, 1, n > 0 ? (int)wait : -1);
		while (n > 0 && q[head].due <= now_ms()) {
			l = &q[head];
			(void)sendto(fd, l->p, l->n, 0,
			    (struct sockaddr *)&l->to, l->len);
			free(l->p);
			head = (head + 1) % 4096;
			n--;
		}
		while (n < 4096) {
			l = &q[(head + n) % 4096];
			l->len = sizeof(l->to);
			if ((r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
			    (struct sockaddr *)&l->to, &l->len)) == -1)
				break;
			if ((l->p = malloc((size_t)r + 1)) == NULL)
				err(1, "malloc");
			memcpy(l->p, buf, (size_t)r);
			l->n = (size_t)r;
			l->due = now_ms() + ms;
			n++;
		}
	}
}

static int
cmd_echo(int argc, char **argv)
{
	static uint8_t		 buf[BUFMAX];
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct sockaddr_in	 to;
	const char		*host = NULL, *type;
	long			 port = 0, late = 0;
	int			 ch, v6 = 0, reuse = 0, fd, c, fixed = 0;
	int			 rcvbuf = 4 << 20;	/* shared by many */
	ssize_t			 r;
	char			*colon;

	while ((ch = getopt(argc, argv, "+6b:d:p:rR:w:")) != -1) {
		switch (ch) {
		case '6': v6 = 1; break;
		case 'w': late = num(optarg, 1, 600000); break;
		case 'R': rcvbuf = (int)num(optarg, 1024, 1 << 28); break;
		case 'd':
			/* reply to HOST:PORT (IPv4), not to the sender */
			memset(&to, 0, sizeof(to));
			to.sin_family = AF_INET;
			if ((colon = strrchr(optarg, ':')) == NULL)
				errx(2, "-d HOST:PORT");
			*colon = '\0';
			if (inet_pton(AF_INET, optarg, &to.sin_addr) != 1)
				errx(2, "-d: bad address %s", optarg);
			to.sin_port = htons((uint16_t)num(colon + 1, 1, 65535));
			fixed = 1;
			break;
		case 'b': host = optarg; break;
		case 'p': port = num(optarg, 0, 65535); break;
		case 'r': reuse = 1; break;
		default: exit(2);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc < 1)
		errx(2, "echo: type?");
	type = argv[0];
	if (strcmp(type, "udp") == 0 || strcmp(type, "seqpacket") == 0) {
		int seq = type[0] == 's';

		if (seq) {
			if (argc < 2)
				errx(2, "echo seqpacket: path?");
			fd = unix_socket(SOCK_SEQPACKET, argv[1], 1);
			if ((c = accept(fd, NULL, NULL)) == -1)
				err(1, "accept");
			fd = c;
		} else
			fd = ip_socket(SOCK_DGRAM, v6, host, port, reuse);
		if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE,
		    &rcvbuf, sizeof(rcvbuf)) == -1 && setsockopt(fd,
		    SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == -1)
			err(1, "SO_RCVBUF");
		if (late > 0 && !seq)
			echo_late(fd, late);
		for (;;) {
			len = sizeof(ss);
			r = recvfrom(fd, buf, sizeof(buf), 0,
			    (struct sockaddr *)&ss, &len);
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1 && errno == ECONNREFUSED)
				continue;
			if (r == -1)
				err(1, "recv");
			if (seq && r == 0)
				return 0;
			if (fixed) {
				memcpy(&ss, &to, sizeof(to));
				len = sizeof(to);
			}
			if (sendto(fd, buf, (size_t)r, 0, seq ? NULL :
			    (struct sockaddr *)&ss, seq ? 0 : len) == -1 &&
			    errno != ECONNREFUSED)
				warn("send");
		}
	}
	if (strcmp(type, "tcp") == 0)
		fd = ip_socket(SOCK_STREAM, v6, host, port, reuse);
	else if (strcmp(type, "unix") == 0 && argc >= 2)
		fd = unix_socket(SOCK_STREAM, argv[1], 1);
	else
		errx(2, "echo: unknown type %s", type);
	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	for (;;) {
		if ((c = accept(fd, NULL, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "accept");
		}
		/* a process per connection: many clients at once */
		switch (fork()) {
		case -1:
			err(1, "fork");
		case 0:
			close(fd);
			echo_stream_conn(c);
			_exit(0);
		default:
			close(c);
		}
	}
}

/* ---------------------------------------------------- dump, send, free */

static int
cmd_dump(int argc, char **argv)
{
	static uint8_t	 buf[BUFMAX];
	const char	*host = NULL;
	long		 port = 0, n = -1, i;
	int		 ch, v6 = 0, fd;
	ssize_t		 r, j;

	while ((ch = getopt(argc, argv, "+6b:p:n:")) != -1) {
		switch (ch) {
		case '6': v6 = 1; break;
		case 'b': host = optarg; break;
		case 'p': port = num(optarg, 0, 65535); break;
		case 'n': n = num(optarg, 0, 100000000); break;
		default: exit(2);
		}
	}
	fd = ip_socket(SOCK_DGRAM, v6, host, port, 0);
	for (i = 0; n < 0 || i < n; i++) {
		if ((r = recv(fd, buf, sizeof(buf), 0)) == -1) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			err(1, "recv");
		}
		printf("%zd ", r);
		for (j = 0; j < r; j++)
			printf("%02x", buf[j]);
		printf("\n");
		fflush(stdout);
	}
	return 0;
}

static size_t
unhex(const char *s, uint8_t *out)
{
	size_t	 n = 0;
	unsigned v;

	if (strcmp(s, "-") == 0)
		return 0;
	if (strlen(s) % 2 != 0 || strlen(s) / 2 > BUFMAX)
		errx(2, "bad hex %s", s);
	for (; *s; s += 2) {
		if (sscanf(s, "%2x", &v) != 1)
			errx(2, "bad hex");
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* The datagram of burst peer i: its index, then the index inverted. */
static void
burst_dg(uint32_t i, uint8_t *b)
{
	uint32_t	 v[2] = { htonl(i), htonl(~i) };

	memcpy(b, v, 8);
}

/* Peer i's answer, read from fd: whether it came back whole. */
static int
burst_answer(int fd, int tcp, uint32_t i)
{
	uint8_t	 want[10], got[10];
	ssize_t	 r;

	burst_dg(i, want + 2);
	want[0] = 0;
	want[1] = 8;
	if (!tcp)
		r = recv(fd, got + 2, 8, MSG_DONTWAIT | MSG_TRUNC) + 2;
	else	/* one frame; a framed echo sends it back whole */
		r = recv(fd, got, 10, MSG_WAITALL);
	if (r != 10)
		errx(1, "FAIL peer %u: answer of %zd bytes", i, r - (tcp ? 0 : 2));
	if (memcmp(got + (tcp ? 0 : 2), want + (tcp ? 0 : 2), tcp ? 10 : 8) != 0)
		errx(1, "FAIL peer %u: someone else's answer", i);
	return 1;
}

static int
cmd_burst(int argc, char **argv)
{
	struct pollfd	*pfd;
	uint8_t		 b[10];
	long		 n, tmo = 20, left, hold = 0;
	long long	 last, start;
	int		 ch, tcp, *keep;
	long		 i;

	while ((ch = getopt(argc, argv, "+H:t:")) != -1)
		switch (ch) {
		case 'H': hold = num(optarg, 1, 3600); break;
		case 't': tmo = num(optarg, 1, 3600); break;
		default: exit(2);
		}
	argv += optind;
	argc -= optind;
	if (argc != 4 || (strcmp(argv[0], "udp") && strcmp(argv[0], "tcp")))
		errx(2, "burst: udp|tcp N HOST PORT");
	tcp = strcmp(argv[0], "tcp") == 0;
	n = num(argv[1], 1, 100000);
	if ((pfd = calloc((size_t)n, sizeof(*pfd))) == NULL ||
	    (keep = calloc((size_t)n, sizeof(*keep))) == NULL)
		err(1, "calloc");
	start = now_ms();
	for (i = 0; i < n; i++) {
		pfd[i].fd = connect_to(tcp ? SOCK_STREAM : SOCK_DGRAM, argv[2],
		    argv[3]);
		pfd[i].events = POLLIN;
		b[0] = 0;
		b[1] = 8;
		burst_dg((uint32_t)i, b + 2);
		if (send(pfd[i].fd, tcp ? b : b + 2, tcp ? 10 : 8, 0) == -1)
			err(1, "send %ld", i);
	}
	printf("sent %ld\n", n);
	fflush(stdout);
	last = now_ms();
	for (left = n; left > 0;) {
		if (poll(pfd, (nfds_t)n, 100) == -1 && errno != EINTR)
			err(1, "poll");
		for (i = 0; i < n; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			burst_answer(pfd[i].fd, tcp, (uint32_t)i);
			keep[i] = pfd[i].fd;
			if (!hold)
				close(pfd[i].fd);
			pfd[i].fd = -1;
			left--;
			last = now_ms();
		}
		if (left > 0 && now_ms() - last > tmo * 1000)
			errx(1, "FAIL %ld of %ld answered", n - left, n);
	}
	printf("ok %ld answered\n", n);
	printf("ms %lld\n", last - start);
	if (hold) {
		printf("holding\n");
		fflush(stdout);
		sleep((unsigned)hold);
		for (i = 0; i < n; i++)
			close(keep[i]);
	}
	return 0;
}

/*
 * One siege connection: plain TCP, or TLS (unverified) when ctx is set;
 * what is written goes through siege_write.
 */
struct siege {
	int		 fd;
	SSL		*ssl;
};

static void
siege_open(struct siege *c, SSL_CTX *ctx, const char *host,
    const char *port, int hello, const char *from)
{
	BIO	*rb, *wb;
	char	*p;
	long	 n;

	c->fd = connect_buf(SOCK_STREAM, host, port, 4096, from);
	c->ssl = NULL;
	if (ctx == NULL)
		return;
	if ((c->ssl = SSL_new(ctx)) == NULL)
		errx(1, "FAIL TLS");
	if (hello) {
		/* the ClientHello, then nothing (a pending handshake): made
		 * into memory and written by hand, the answer never read */
		if ((rb = BIO_new(BIO_s_mem())) == NULL ||
		    (wb = BIO_new(BIO_s_mem())) == NULL)
			errx(1, "FAIL BIO");
		SSL_set_bio(c->ssl, rb, wb);
		if (SSL_connect(c->ssl) == 1 ||
		    (n = BIO_get_mem_data(wb, &p)) <= 0)
			errx(1, "FAIL no ClientHello");
		write_all(c->fd, (const uint8_t *)p, (size_t)n);
		return;
	}
	if (SSL_set_fd(c->ssl, c->fd) != 1)
		errx(1, "FAIL TLS");
	if (SSL_connect(c->ssl) != 1)
		errx(1, "FAIL TLS handshake");
}

/*
 * Write n bytes, blocking (the relay reads on: the way out of a siege
 * connection is to a datagram side); whether they went.
 */
static int
siege_write(struct siege *c, const uint8_t *p, size_t n)
{
	if (c->ssl != NULL)
		return SSL_write(c->ssl, p, (int)n) == (int)n;
	write_all(c->fd, p, n);
	return 1;
}

/*
 * dgpeer siege [-T [-h]] [-q] [-b FROM] [-n N] [-t SEC] HALF NOREAD HOST
 * PORT (-b: from the IPv4 address FROM): HALF
 * connections that each send the first half of a 65,535-byte frame and
 * stop (-h: a TLS ClientHello, and stop; -q: nothing at all); NOREAD connections that each
 * send N frames of 1,000 bytes (2048) and never read (a 4 KiB receive
 * window).  Prints "holding" and keeps them all open SEC seconds (60).
 * -T: over TLS.
 */
static int
cmd_siege(int argc, char **argv)
{
	static uint8_t	 buf[2 + 65535];
	struct siege	*c;
	SSL_CTX		*ctx = NULL;
	long		 half, noread, i, j, sec = 60, nf = 2048;
	int		 ch, tls = 0, hello = 0, quiet = 0;
	const char	*from = NULL;

	while ((ch = getopt(argc, argv, "+b:hqTn:t:")) != -1)
		switch (ch) {
		case 'b': from = optarg; break;
		case 'h': hello = 1; break;
		case 'q': quiet = 1; break;
		case 'T': tls = 1; break;
		case 'n': nf = num(optarg, 1, 1000000); break;
		case 't': sec = num(optarg, 1, 3600); break;
		default: exit(2);
		}
	argv += optind;
	argc -= optind;
	if (argc != 4)
		errx(2, "siege: [-T] [-t SEC] HALF NOREAD HOST PORT");
	half = num(argv[0], 0, 100000);
	noread = num(argv[1], 0, 100000);
	if ((c = calloc((size_t)(half + noread + 1), sizeof(*c))) == NULL)
		err(1, "calloc");
	if (tls && ((ctx = SSL_CTX_new(TLS_client_method())) == NULL))
		errx(1, "SSL_CTX_new");
	memset(buf, 0x5a, sizeof(buf));
	buf[0] = buf[1] = 0xff;
	for (i = 0; i < half + noread; i++) {
		if (i < half && quiet) {
			c[i].fd = connect_buf(SOCK_STREAM, argv[2], argv[3], 0,
			    from);
			continue;
		}
		siege_open(&c[i], ctx, argv[2], argv[3], i < half && hello,
		    from);
		if (i < half && hello)
			continue;
		if (i < half) {
			if (!siege_write(&c[i], buf, 2 + 65535 / 2))
				errx(1, "FAIL half frame %ld not sent", i);
			continue;
		}
		buf[0] = 1000 >> 8;
		buf[1] = 1000 & 0xff;
		for (j = 0; j < nf && siege_write(&c[i], buf, 1002); j++)
			;
		buf[0] = buf[1] = 0xff;
	}
	printf("holding %ld\n", half + noread);
	fflush(stdout);
	sleep((unsigned)sec);
	return 0;
}

static int
cmd_sendseq(int argc, char **argv)
{
	static uint8_t		 buf[BUFMAX];
	struct sockaddr_un	 sun;
	int			 fd, i;
	size_t			 n;

	if (argc < 3)
		errx(2, "sendseq: PATH HEX...");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, argv[1], sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(2, "sendseq: path too long");
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		err(1, "connect %s", argv[1]);
	for (i = 2; i < argc; i++) {
		n = unhex(argv[i], buf);
		if (send(fd, buf, n, 0) == -1)
			err(1, "send");
	}
	printf("sent %d\n", argc - 2);
	fflush(stdout);
	while (read(fd, buf, sizeof(buf)) > 0)	/* until the reader closes */
		;
	return 0;
}

static int
cmd_send(int argc, char **argv)
{
	static uint8_t		 buf[BUFMAX];
	struct sockaddr_in	 sin;
	long			 ms = 0, burst = 0, sport = 0;
	int			 ch, fd, i, one = 1;
	size_t			 n;

	while ((ch = getopt(argc, argv, "+B:i:s:")) != -1)
		switch (ch) {
		case 'B': burst = num(optarg, 0, 1000000); break;
		case 'i': ms = num(optarg, 0, 10000); break;
		case 's': sport = num(optarg, 1, 65535); break;
		default: exit(2);
		}
	argv += optind;
	argc -= optind;
	if (argc < 2)
		errx(2, "send: HOST PORT HEX...");
	if (sport == 0)
		fd = connect_to(SOCK_DGRAM, argv[0], argv[1]);
	else {	/* from 127.0.0.1:SPORT, to an IPv4 HOST */
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)sport);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) == -1 ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			err(1, "bind 127.0.0.1 %ld", sport);
		sin.sin_port = htons((uint16_t)num(argv[1], 1, 65535));
		if (inet_pton(AF_INET, argv[0], &sin.sin_addr) != 1 ||
		    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			err(1, "connect %s %s", argv[0], argv[1]);
	}
	for (i = 2; i < argc; i++) {
		n = unhex(argv[i], buf);
		if (send(fd, buf, n, 0) == -1)
			warn("send");
		if (ms > 0 && i - 2 >= burst)
			usleep((useconds_t)ms * 1000);
	}
	return 0;
}

static int
cmd_free(int argc, char **argv)
{
	int	 fd;

	if (argc < 2)
		errx(2, "free udp|tcp");
	fd = ip_socket(strcmp(argv[1], "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM,
	    0, NULL, 0, 0);
	close(fd);
	return 0;
}

/* ---------------------------------------------------------------- ping */

struct conn {
	int		 rfd, wfd;
	int		 framed;
	int		 unconnected;	/* udpfrom: sendto this address */
	struct sockaddr_in to;
	pid_t		 child;
};

static void
spawn(struct conn *c, const char *kind, const char *cmd)
{
	int	 a[2], b[2], type = 0;

	if (strcmp(kind, "exec") == 0 || strcmp(kind, "pipes") == 0) {
		if (pipe(a) == -1 || pipe(b) == -1)
			err(1, "pipe");
	} else {
		if (strcmp(kind, "stream") == 0)
			type = SOCK_STREAM;
		else if (strcmp(kind, "dgram") == 0)
			type = SOCK_DGRAM;
		else if (strcmp(kind, "seqpacket") == 0)
			type = SOCK_SEQPACKET;
		else
			errx(2, "fdexec: unknown kind %s", kind);
		if (socketpair(AF_UNIX, type, 0, a) == -1)
			err(1, "socketpair");
	}
	if ((c->child = fork()) == -1)
		err(1, "fork");
	if (c->child == 0) {
		int	 keep, fd;

		/* move the ends above everything, then down into place */
		a[0] = fcntl(a[0], F_DUPFD, 1000);
		a[1] = fcntl(a[1], F_DUPFD, 1000);
		if (type == 0) {
			b[0] = fcntl(b[0], F_DUPFD, 1000);
			b[1] = fcntl(b[1], F_DUPFD, 1000);
		}
		if (strcmp(kind, "exec") == 0) {
			dup2(a[0], 0);
			dup2(b[1], 1);
			keep = 3;
		} else if (strcmp(kind, "pipes") == 0) {
			dup2(a[0], 3);
			dup2(b[1], 4);
			keep = 5;
		} else {
			dup2(a[1], 3);
			keep = 4;
		}
		/* nothing else: no stray pipe end, no test harness fd */
		for (fd = keep; fd < 1024 + 8; fd++)
			close(fd);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (type == 0) {
		close(a[0]);
		close(b[1]);
		c->wfd = a[1];
		c->rfd = b[0];
		c->framed = 1;
	} else {
		close(a[1]);
		c->rfd = c->wfd = a[0];
		c->framed = type == SOCK_STREAM;
	}
}

/*
 * A pinger's UDP socket takes a window of answers at once: with large
 * datagrams their kernel size (truesize) overflows the default 208 KiB
 * before the window does (the soak lost one so, at the pinger, not in
 * dgrelay).  4 MiB, as the echo has.
 */
static void
ping_rcvbuf(int fd)
{
	int	 v = 4 << 20;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

static int
transport(struct conn *c, int argc, char **argv)
{
	memset(c, 0, sizeof(*c));
	if (argc >= 3 && strcmp(argv[0], "udp") == 0) {
		c->rfd = connect_to(SOCK_DGRAM, argv[1], argv[2]);
		ping_rcvbuf(c->rfd);
	} else if (argc >= 5 && strcmp(argv[0], "udpfrom") == 0) {
		/* bound to LHOST:LPORT, unconnected: answers may come from
		 * any address (udptunnel answers from another socket) */
		c->rfd = ip_socket(SOCK_DGRAM, 0, argv[1], num(argv[2], 0,
		    65535), 1);
		memset(&c->to, 0, sizeof(c->to));
		c->to.sin_family = AF_INET;
		c->to.sin_port = htons((uint16_t)num(argv[4], 1, 65535));
		if (inet_pton(AF_INET, argv[3], &c->to.sin_addr) != 1)
			errx(2, "udpfrom: bad address %s", argv[3]);
		c->unconnected = 1;
		ping_rcvbuf(c->rfd);
	}
	else if (argc >= 3 && strcmp(argv[0], "tcp") == 0) {
		c->rfd = connect_to(SOCK_STREAM, argv[1], argv[2]);
		c->framed = 1;
	} else if (argc >= 2 && strcmp(argv[0], "unix") == 0) {
		c->rfd = unix_socket(SOCK_STREAM, argv[1], 0);
		c->framed = 1;
	} else if (argc >= 2 && strcmp(argv[0], "seqpacket") == 0)
		c->rfd = unix_socket(SOCK_SEQPACKET, argv[1], 0);
	else if (argc >= 2 && strcmp(argv[0], "exec") == 0)
		spawn(c, "exec", argv[1]);
	else if (argc >= 3 && strcmp(argv[0], "fdexec") == 0)
		spawn(c, argv[1], argv[2]);
	else
		errx(2, "ping: unknown transport");
	if (c->child == 0)
		c->wfd = c->rfd;
	fcntl(c->rfd, F_SETFL, O_NONBLOCK);
	fcntl(c->wfd, F_SETFL, O_NONBLOCK);
	return 0;
}

struct ping {
	struct gen	 g;
	long		 n, win, winbytes, sent, recvd;
	long		 interval;	/* ms between sends, window 1 */
	long long	 next_at;	/* no send before this time */
	long long	 inflight, bytes;
	uint8_t		 out[BUFMAX], want[BUFMAX], in[2 * BUFMAX];
	size_t		 outlen, outoff, inlen;
};

static pid_t	 ping_child;	/* killed when a ping fails */

static void __attribute__((noreturn))
ping_fail(struct ping *p, const char *why)
{
	if (ping_child > 0)
		kill(ping_child, SIGTERM);
	printf("FAIL after %ld sent, %ld received: %s\n", p->sent, p->recvd,
	    why);
	exit(1);
}

/* One datagram came back: it must be the next one, whole. */
static void
ping_got(struct ping *p, const uint8_t *d, size_t len)
{
	size_t	 want = gen_dgram(&p->g, (uint64_t)p->recvd, p->want);
	char	 msg[128];

	if (p->recvd >= p->sent)
		ping_fail(p, "a datagram nobody sent");
	if (len != want) {
		snprintf(msg, sizeof(msg), "datagram %ld is %zu bytes, not %zu",
		    p->recvd, len, want);
		ping_fail(p, msg);
	}
	if (memcmp(d, p->want, len) != 0) {
		snprintf(msg, sizeof(msg), "datagram %ld: content differs",
		    p->recvd);
		ping_fail(p, msg);
	}
	p->inflight -= (long long)len;
	p->bytes += (long long)len;
	p->recvd++;
}

static int
ping_can_send(const struct ping *p)
{
	if (p->sent >= p->n || p->outlen > 0)
		return 0;
	if (p->sent - p->recvd >= p->win)
		return 0;
	if ((p->interval > 0 || opt_pace) && now_ms() < p->next_at)
		return 0;
	return p->sent == p->recvd || p->inflight < p->winbytes;
}

static void
ping_send(struct ping *p, struct conn *c)
{
	size_t	 n;
	ssize_t	 r;

	if (p->outlen == 0) {
		n = gen_dgram(&p->g, (uint64_t)p->sent, p->out + 2);
		p->out[0] = (uint8_t)(n >> 8);
		p->out[1] = (uint8_t)n;
		p->outoff = c->framed ? 0 : 2;
		p->outlen = n + 2;
		p->sent++;
		p->inflight += (long long)n;
		p->next_at = now_ms() + p->interval;
		/* -P: now and then a pause of up to 3 ms, a burst otherwise */
		if (opt_pace && mix(p->g.seed + (uint64_t)p->sent) % 16 == 0)
			p->next_at += (long long)(mix((uint64_t)p->sent) % 4);
	}
	if (c->framed) {
		r = write(c->wfd, p->out + p->outoff, p->outlen - p->outoff);
		if (r == -1 && errno != EAGAIN)
			err(1, "write");
		if (r > 0)
			p->outoff += (size_t)r;
	} else {
		r = sendto(c->wfd, p->out + 2, p->outlen - 2, 0,
		    c->unconnected ? (struct sockaddr *)&c->to : NULL,
		    c->unconnected ? sizeof(c->to) : 0);
		if (r == -1 && errno != EAGAIN && errno != ECONNREFUSED)
			err(1, "send");
		if (r >= 0)
			p->outoff = p->outlen;
	}
	if (p->outoff == p->outlen)
		p->outlen = 0;
}

/* Read what there is; returns 0 at end of input. */
static int
ping_recv(struct ping *p, struct conn *c)
{
	ssize_t	 r;
	size_t	 off = 0, n;

	if (!c->framed) {
		r = recv(c->rfd, p->in, sizeof(p->in), MSG_TRUNC);
		if (r == -1)
			return errno == EAGAIN || errno == ECONNREFUSED ||
			    errno == EINTR ? 1 : (err(1, "recv"), 0);
		if ((size_t)r > sizeof(p->in))
			ping_fail(p, "oversize datagram");
		ping_got(p, p->in, (size_t)r);
		return 1;
	}
	r = read(c->rfd, p->in + p->inlen, sizeof(p->in) - p->inlen);
	if (r == -1)
		return errno == EAGAIN || errno == EINTR ? 1 :
		    (err(1, "read"), 0);
	if (r == 0)
		return 0;
	p->inlen += (size_t)r;
	while (p->inlen - off >= 2) {
		n = (size_t)p->in[off] << 8 | p->in[off + 1];
		if (p->inlen - off - 2 < n)
			break;
		ping_got(p, p->in + off + 2, n);
		off += 2 + n;
	}
	memmove(p->in, p->in + off, p->inlen - off);
	p->inlen -= off;
	return 1;
}

static int
child_status(pid_t pid, long long deadline)
{
	int	 st;
	pid_t	 r;

	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ms() < deadline)
		usleep(10000);
	if (r != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		printf("FAIL: child did not exit after end of input\n");
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static long	 opt_interval;	/* ping -i */

static void
gen_opts(int argc, char **argv, struct gen *g, long *n, long *win,
    long *winbytes, long *tmo)
{
	int	 ch;

	g->seed = 1;
	g->logsize = 0;
	g->min = 0;
	g->max = 1200;
	*n = 100;
	while ((ch = getopt(argc, argv, "+n:m:M:w:W:S:t:i:LP")) != -1) {
		switch (ch) {
		case 'L': g->logsize = 1; break;
		case 'P': opt_pace = 1; break;
		case 'n': *n = num(optarg, 0, 100000000); break;
		case 'm': g->min = num(optarg, 0, 65535); break;
		case 'M': g->max = num(optarg, 0, 65535); break;
		case 'w': *win = num(optarg, 1, 4096); break;
		case 'W': *winbytes = num(optarg, 1, 1 << 30); break;
		case 'S': g->seed = (uint64_t)num(optarg, 0, LONG_MAX); break;
		case 't': *tmo = num(optarg, 1, 3600); break;
		case 'i': opt_interval = num(optarg, 1, 60000); break;
		default: exit(2);
		}
	}
	if (g->min > g->max)
		errx(2, "-m above -M");
}

static int
cmd_ping(int argc, char **argv)
{
	static struct ping	 p;
	struct conn		 c;
	struct pollfd		 pfd[2];
	long			 tmo = 20;
	long long		 last;
	int			 st;

	p.win = 32;
	/* in flight stays under the kernel's default UDP receive buffer
	 * (212992 bytes of truesize: a 9000-byte datagram costs 16 KiB) */
	p.winbytes = 60000;
	gen_opts(argc, argv, &p.g, &p.n, &p.win, &p.winbytes, &tmo);
	if ((p.interval = opt_interval) > 0)
		p.win = 1;
	transport(&c, argc - optind, argv + optind);
	ping_child = c.child;
	last = now_ms();
	while (p.recvd < p.n) {
		while (ping_can_send(&p) || p.outlen > 0) {
			long	 before = p.sent;
			size_t	 off = p.outoff;

			ping_send(&p, &c);
			if (p.outlen > 0 && p.sent == before &&
			    p.outoff == off)
				break;		/* the kernel is full */
		}
		pfd[0].fd = c.rfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = p.outlen > 0 ? c.wfd : -1;
		pfd[1].events = POLLOUT;
		if (poll(pfd, 2, p.interval > 0 ? 10 : opt_pace ? 1 : 200) == -1 &&
		    errno != EINTR)
			err(1, "poll");
		if (pfd[0].revents) {
			long before = p.recvd;

			if (!ping_recv(&p, &c))
				ping_fail(&p, "end of input");
			if (p.recvd != before)
				last = now_ms();
		}
		if (now_ms() - last > tmo * 1000)
			ping_fail(&p, "no answer: lost");
	}
	printf("ok %ld datagrams %lld bytes\n", p.recvd, p.bytes);
	if (c.child == 0)
		return 0;
	close(c.wfd);
	if (c.rfd != c.wfd)
		close(c.rfd);
	st = child_status(c.child, now_ms() + tmo * 1000);
	printf("child exit %d\n", st);
	return st == 0 ? 0 : 1;
}

/*
 * flood-close COMMAND: COMMAND gets a stream socketpair as fd 3.  Write
 * frames without reading until the kernel is full both ways, end our
 * half, then close with its answers unread.  Prints "child exit N".
 */
static int
cmd_flood_close(int argc, char **argv)
{
	static uint8_t	 buf[1002];
	struct conn	 c;
	long long	 until;
	size_t		 off = 0;
	ssize_t		 r;
	int		 st;

	if (argc < 2)
		errx(2, "flood-close COMMAND");
	spawn(&c, "stream", argv[1]);
	fcntl(c.wfd, F_SETFL, O_NONBLOCK);
	buf[0] = 1000 >> 8;
	buf[1] = 1000 & 0xff;
	until = now_ms() + 5000;
	/*
	 * Until our writes have stood still for a while, both ways full, and
	 * enough went through for answers to pile up, even on a slow
	 * machine; at most 5 s.
	 */
	for (long long still = now_ms(), sent = 0; now_ms() < until &&
	    (now_ms() - still < 500 || sent < 2000); ) {
		if ((r = write(c.wfd, buf + off, sizeof(buf) - off)) > 0) {
			off += (size_t)r;	/* frames stay whole */
			if (off == sizeof(buf)) {
				off = 0;
				sent++;
			}
			still = now_ms();
		} else
			usleep(10000);
	}
	while (off > 0 && off < sizeof(buf) && now_ms() < until + 5000) {
		if ((r = write(c.wfd, buf + off, sizeof(buf) - off)) > 0)
			off += (size_t)r;
		else
			usleep(10000);
	}
	shutdown(c.wfd, SHUT_WR);
	usleep(300000);
	close(c.wfd);
	st = child_status(c.child, now_ms() + 10000);
	printf("child exit %d\n", st);
	return st == 0 ? 0 : 1;
}

/* --------------------------------------------------------- gen, check */

static int
cmd_gen(int argc, char **argv)
{
	static uint8_t	 buf[BUFMAX];
	struct gen	 g;
	long		 n, i, w = 0, wb = 0, t = 0;
	size_t		 len;

	gen_opts(argc, argv, &g, &n, &w, &wb, &t);
	for (i = 0; i < n; i++) {
		len = gen_dgram(&g, (uint64_t)i, buf + 2);
		buf[0] = (uint8_t)(len >> 8);
		buf[1] = (uint8_t)len;
		write_all(1, buf, len + 2);
	}
	return 0;
}

static int
read_full(int fd, uint8_t *p, size_t n)
{
	ssize_t	 r;
	size_t	 got = 0;

	while (got < n) {
		if ((r = read(fd, p + got, n - got)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "read");
		}
		if (r == 0)
			return got == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}

static int
cmd_check(int argc, char **argv)
{
	static uint8_t	 buf[BUFMAX], want[BUFMAX];
	struct gen	 g;
	long		 n, i, w = 0, wb = 0, t = 0;
	size_t		 len, wlen;
	int		 r;

	gen_opts(argc, argv, &g, &n, &w, &wb, &t);
	for (i = 0; i < n; i++) {
		if ((r = read_full(0, buf, 2)) <= 0) {
			printf("FAIL: %s after %ld frames\n",
			    r == 0 ? "end of input" : "cut header", i);
			return 1;
		}
		len = (size_t)buf[0] << 8 | buf[1];
		if (read_full(0, buf, len) != 1) {
			printf("FAIL: frame %ld cut short\n", i);
			return 1;
		}
		wlen = gen_dgram(&g, (uint64_t)i, want);
		if (len != wlen || memcmp(buf, want, len) != 0) {
			printf("FAIL: frame %ld: %zu bytes, want %zu%s\n", i,
			    len, wlen, len == wlen ? " (content differs)" : "");
			return 1;
		}
	}
	if (read_full(0, buf, 1) != 0) {
		printf("FAIL: more than %ld frames\n", n);
		return 1;
	}
	printf("ok %ld frames\n", n);
	return 0;
}

/* -------------------------------------------------------------- faults */

static void
sleep_us(long us)
{
	struct timespec	 ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * dgpeer rst [-w MS] HOST PORT: stdin to a TCP connection, wait, reset.
 * -l: listen on HOST:PORT instead (prints "port N"), take one connection.
 */
static int
cmd_rst(int argc, char **argv)
{
	static uint8_t	 buf[1 << 16];
	struct linger	 lg = { 1, 0 };
	long		 ms = 500;
	ssize_t		 r;
	int		 ch, fd, lfd, listening = 0;

	while ((ch = getopt(argc, argv, "+lw:")) != -1)
		switch (ch) {
		case 'l': listening = 1; break;
		case 'w': ms = num(optarg, 0, 60000); break;
		default: exit(2);
		}
	if (argc - optind != 2)
		errx(2, "usage: dgpeer rst [-l] [-w MS] HOST PORT");
	if (listening) {
		lfd = ip_socket(SOCK_STREAM, 0, argv[optind],
		    num(argv[optind + 1], 0, 65535), 1);
		if ((fd = accept(lfd, NULL, NULL)) == -1)
			err(1, "accept");
		close(lfd);
	} else
		fd = connect_to(SOCK_STREAM, argv[optind], argv[optind + 1]);
	while ((r = read(0, buf, sizeof(buf))) > 0)
		write_all(fd, buf, (size_t)r);
	sleep_us(ms * 1000);
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == -1)
		err(1, "SO_LINGER");
	close(fd);			/* linger 0: RST, not FIN */
	printf("reset\n");
	return 0;
}

/*
 * dgpeer hold [-r RCVBUF] [-t MS]: listen on TCP (prints "port N"), take
 * one connection, read nothing for MS, then close with the data unread
 * (the kernel answers RST).
 */
static int
cmd_hold(int argc, char **argv)
{
	long	 ms = 1000, rcv = 0, port = 0;
	int	 ch, lfd, fd, v;

	while ((ch = getopt(argc, argv, "+p:r:t:")) != -1)
		switch (ch) {
		case 'p': port = num(optarg, 0, 65535); break;
		case 'r': rcv = num(optarg, 1, 1 << 30); break;
		case 't': ms = num(optarg, 0, 60000); break;
		default: exit(2);
		}
	lfd = ip_socket(SOCK_STREAM, 0, NULL, port, 1);
	if (rcv > 0) {
		v = (int)rcv;
		setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	}
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		err(1, "accept");
	printf("accepted\n");
	fflush(stdout);
	sleep_us(ms * 1000);
	close(fd);
	printf("closed\n");
	return 0;
}

/* dgpeer trickle [-d US]: stdin to stdout one byte a write, US apart. */
static int
cmd_trickle(int argc, char **argv)
{
	uint8_t	 c;
	long	 us = 0;
	ssize_t	 r;
	int	 ch;

	while ((ch = getopt(argc, argv, "+d:")) != -1)
		switch (ch) {
		case 'd': us = num(optarg, 0, 1000000); break;
		default: exit(2);
		}
	while ((r = read(0, &c, 1)) == 1) {
		write_all(1, &c, 1);
		if (us > 0)
			sleep_us(us);
	}
	if (r == -1)
		err(1, "read");
	return 0;
}

/*
 * dgpeer slowsink [-d US] FILE: read records from fd 0 (a seqpacket
 * socket) one at a time, US apart, until a 0-byte read (empty records
 * not allowed); write each to FILE as a frame.
 */
static int
cmd_slowsink(int argc, char **argv)
{
	static uint8_t	 buf[BUFMAX];
	long		 us = 0;
	ssize_t		 r;
	int		 ch, out;

	while ((ch = getopt(argc, argv, "+d:")) != -1)
		switch (ch) {
		case 'd': us = num(optarg, 0, 1000000); break;
		default: exit(2);
		}
	if (argc - optind != 1)
		errx(2, "usage: dgpeer slowsink [-d US] FILE");
	if ((out = open(argv[optind], O_WRONLY | O_CREAT | O_TRUNC, 0644)) ==
	    -1)
		err(1, "%s", argv[optind]);
	for (;;) {
		if ((r = recv(0, buf + 2, sizeof(buf) - 2, 0)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "recv");
		}
		if (r == 0)
			break;
		buf[0] = (uint8_t)(r >> 8);
		buf[1] = (uint8_t)r;
		write_all(out, buf, (size_t)r + 2);
		if (us > 0)
			sleep_us(us);
	}
	return 0;
}

/*
 * dgpeer frames [-s MAX] FILE: decode FILE as frames, the reference for
 * dgrelay's counters: "frames N bytes B over O partial P" (over: longer
 * than MAX, skipped; partial: the file ends inside a frame).
 */
static int
cmd_frames(int argc, char **argv)
{
	static uint8_t	 buf[BUFMAX];
	long		 max = 65535;
	unsigned long	 n = 0, over = 0, partial = 0;
	unsigned long long bytes = 0;
	size_t		 len, got;
	FILE		*f, *out = NULL;
	int		 ch;

	while ((ch = getopt(argc, argv, "+o:s:")) != -1)
		switch (ch) {
		case 'o':
			if ((out = fopen(optarg, "wb")) == NULL)
				err(1, "%s", optarg);
			break;
		case 's': max = num(optarg, 0, 65535); break;
		default: exit(2);
		}
	if (argc - optind != 1)
		errx(2, "usage: dgpeer frames [-o OUT] [-s MAX] FILE");
	if ((f = fopen(argv[optind], "rb")) == NULL)
		err(1, "%s", argv[optind]);
	for (;;) {
		got = fread(buf, 1, 2, f);
		if (got == 0)
			break;
		if (got == 1) {
			partial = 1;
			break;
		}
		len = (size_t)buf[0] << 8 | buf[1];
		if ((long)len > max)
			over++;
		if (fread(buf + 2, 1, len, f) != len) {
			partial = 1;
			break;
		}
		if ((long)len <= max) {
			n++;
			bytes += len;
			if (out != NULL && fwrite(buf, 1, len + 2, out) !=
			    len + 2)
				err(1, "write");
		}
	}
	if (out != NULL && fclose(out) == EOF)
		err(1, "close");
	printf("frames %lu bytes %llu over %lu partial %lu\n", n, bytes, over,
	    partial);
	return 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		errx(2, "usage: dgpeer echo|dump|send|free|ping|gen|check|"
		    "flood-close|rst|hold|trickle|slowsink|frames ...");
	argc--;
	argv++;
	if (strcmp(argv[0], "echo") == 0)
		return cmd_echo(argc, argv);
	if (strcmp(argv[0], "dump") == 0)
		return cmd_dump(argc, argv);
	if (strcmp(argv[0], "send") == 0)
		return cmd_send(argc, argv);
	if (strcmp(argv[0], "sendseq") == 0)
		return cmd_sendseq(argc, argv);
	if (strcmp(argv[0], "burst") == 0)
		return cmd_burst(argc, argv);
	if (strcmp(argv[0], "siege") == 0)
		return cmd_siege(argc, argv);
	if (strcmp(argv[0], "free") == 0)
		return cmd_free(argc, argv);
	if (strcmp(argv[0], "ping") == 0)
		return cmd_ping(argc, argv);
	if (strcmp(argv[0], "flood-close") == 0)
		return cmd_flood_close(argc, argv);
	if (strcmp(argv[0], "gen") == 0)
		return cmd_gen(argc, argv);
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(argv[0], "rst") == 0)
		return cmd_rst(argc, argv);
	if (strcmp(argv[0], "hold") == 0)
		return cmd_hold(argc, argv);
	if (strcmp(argv[0], "trickle") == 0)
		return cmd_trickle(argc, argv);
	if (strcmp(argv[0], "slowsink") == 0)
		return cmd_slowsink(argc, argv);
	if (strcmp(argv[0], "frames") == 0)
		return cmd_frames(argc, argv);
	errx(2, "unknown command %s", argv[0]);
}
