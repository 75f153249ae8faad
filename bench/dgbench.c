/*
 * dgbench: the load and the judge for `make bench` (and for the GSO/GRO
 * tests).  It knows nothing of dgrelay's code.
 *
 *   dgbench gen [-g] [-b BATCH] [-r PPS] [-t SEC] [-n N] -s SIZE HOST PORT
 *	send datagrams of SIZE bytes from a connected UDP socket with
 *	sendmmsg, BATCH a call, flat out or at PPS, for SEC seconds or N
 *	datagrams; -g: as UDP_SEGMENT runs (as QUIC stacks and wireguard-go
 *	send).  Prints "sent N".
 *   dgbench recv [-g] [-t IDLE_MS] [-T SEC] -s SIZE HOST PORT
 *	bind HOST PORT (SO_REUSEADDR), print "port N", take datagrams with
 *	recvmmsg (-g: UDP_GRO, runs split by their segment size) until IDLE_MS
 *	pass without one (after the first) or SEC in all; check each; print
 *	"recv N bytes B corrupt C merged M truncated T reordered R ns NS"
 *	(NS: first to last datagram).
 *   dgbench echo [-d HOST:PORT] HOST PORT
 *	bind, print "port N", send every datagram back to its sender (-d:
 *	to HOST:PORT).
 *   dgbench ping [-B HOST:PORT] [-n N] [-i US] -s SIZE HOST PORT
 *	one datagram at a time, each waited for (1 s at most) through an
 *	echo; prints "rtt n N lost L p50 US p99 US".  -B: from a socket
 *	bound there, taking answers from anyone (udptunnel answers from a
 *	socket of its own, to its own port).
 *
 * A datagram: bytes 0-7 its number (little-endian), 8-11 its size, then
 * bytes (number + offset) mod 256.  Anything else is corrupt; longer than
 * SIZE is merged, shorter truncated; a number below the highest seen is
 * reordered (or a duplicate).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR		12
#define MAXDG		65535
#define BATCH_MAX	1024
#define GSO_SEGS	64
#define GSO_BYTES	65507

static uint8_t	 ramp[MAXDG + 512];

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long
num(const char *s, long min, long max)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max)
		errx(2, "bad number: %s", s);
	return v;
}

/* A UDP socket bound (listen) or connected to host port. */
static int
udp_socket(const char *host, const char *port, int listen)
{
	struct addrinfo	 hints, *res;
	int		 fd, e, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s %s: %s", host, port, gai_strerror(e));
	if ((fd = socket(res->ai_family, SOCK_DGRAM, 0)) == -1)
		err(1, "socket");
	if (listen) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
			err(1, "bind %s %s", host, port);
	} else if (connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		err(1, "connect %s %s", host, port);
	freeaddrinfo(res);
	return fd;
}

/* "HOST:PORT" (numeric) as a socket address. */
static socklen_t
sockaddr_of(const char *hp, struct sockaddr_storage *ss)
{
	struct addrinfo	 hints, *res;
	char		 host[256], *colon;
	socklen_t	 len;
	int		 e;

	if (strlen(hp) >= sizeof(host) || (colon = strrchr(hp, ':')) == NULL)
		errx(2, "not HOST:PORT: %s", hp);
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((e = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
		errx(1, "%s: %s", hp, gai_strerror(e));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	len = res->ai_addrlen;
	freeaddrinfo(res);
	return len;
}

static void
bufsize(int fd, int opt, int force, int size)
{
	if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof(size)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
}

static void
print_port(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		err(1, "getsockname");
	printf("port %u\n", ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
}

static void
fill(uint8_t *p, uint64_t seq, uint32_t size)
{
	memcpy(p, &seq, 8);
	memcpy(p + 8, &size, 4);
	memcpy(p + HDR, ramp + ((seq + HDR) & 0xff), size - HDR);
}

/* --------------------------------------------------------------- gen */

static int
cmd_gen(int argc, char **argv)
{
	static uint8_t	 buf[BATCH_MAX][GSO_BYTES];
	struct mmsghdr	 msg[BATCH_MAX];
	struct iovec	 iov[BATCH_MAX];
	union {
		char		 b[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr	 align;
	}		 ctl[BATCH_MAX];
	struct cmsghdr	*c;
	uint64_t	 seq = 0, limit = UINT64_MAX, start, end, due, t;
	long		 size = 0, batch = 64, rate = 0, secs = 2;
	int		 ch, fd, gso = 0, r, i, k, per = 1, j;
	uint16_t	 g;

	while ((ch = getopt(argc, argv, "b:gn:r:s:t:")) != -1)
		switch (ch) {
		case 'b': batch = num(optarg, 1, BATCH_MAX); break;
		case 'g': gso = 1; break;
		case 'n': limit = (uint64_t)num(optarg, 1, 1L << 40); break;
		case 'r': rate = num(optarg, 1, 100000000); break;
		case 's': size = num(optarg, HDR, GSO_BYTES); break;
		case 't': secs = num(optarg, 1, 3600); break;
		default: return 2;
		}
	argc -= optind;
	argv += optind;
	if (argc != 2 || size == 0)
		errx(2, "usage: dgbench gen [-g] [-b N] [-r PPS] [-t SEC] "
		    "[-n N] -s SIZE HOST PORT");
	fd = udp_socket(argv[0], argv[1], 0);
	bufsize(fd, SO_SNDBUF, SO_SNDBUFFORCE, 4 << 20);
	if (gso) {
		per = (int)(GSO_BYTES / size);
		per = per > GSO_SEGS ? GSO_SEGS : per;
		if (batch > 16)
			batch = 16;	/* up to 1024 datagrams a call */
	}
	memset(msg, 0, sizeof(msg));
	for (i = 0; i < batch; i++) {
		iov[i].iov_base = buf[i];
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
		if (gso && per > 1) {
			msg[i].msg_hdr.msg_control = ctl[i].b;
			msg[i].msg_hdr.msg_controllen = sizeof(ctl[i].b);
			c = CMSG_FIRSTHDR(&msg[i].msg_hdr);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(g));
			g = (uint16_t)size;
			memcpy(CMSG_DATA(c), &g, sizeof(g));
		}
	}
	start = now_ns();
	end = start + (uint64_t)secs * 1000000000ULL;
	while (seq < limit && (t = now_ns()) < end) {
		k = (int)batch;
		if (rate > 0) {
			due = (t - start) * (uint64_t)rate / 1000000000ULL;
			if (due <= seq) {
				struct timespec ts = { 0, 20000 };
				nanosleep(&ts, NULL);
				continue;
			}
			if (due - seq < (uint64_t)k * per)
				k = (int)((due - seq + per - 1) / per);
		}
		if (limit - seq < (uint64_t)k * per)
			k = (int)((limit - seq + per - 1) / per);
		for (i = 0; i < k; i++) {
			for (j = 0; j < per &&
			    seq + (uint64_t)i * per + j < limit; j++)
				fill(buf[i] + (size_t)j * size, seq + i * per + j,
				    (uint32_t)size);
			iov[i].iov_len = (size_t)size * j;
		}
		if ((r = sendmmsg(fd, msg, k, 0)) == -1) {
			if (errno == ECONNREFUSED || errno == ENOBUFS ||
			    errno == EAGAIN || errno == EINTR)
				continue;
			err(1, "sendmmsg");
		}
		for (i = 0; i < r; i++)
			seq += iov[i].iov_len / (size_t)size;
	}
	printf("sent %llu\n", (unsigned long long)seq);
	return 0;
}

/* -------------------------------------------------------------- recv */

struct tally {
	uint64_t	 n, bytes, corrupt, merged, truncated, reordered, next;
	uint64_t	 first, last;
};

static void
judge(struct tally *t, const uint8_t *p, size_t len, size_t size)
{
	uint64_t	 seq;
	uint32_t	 sz;

	if (t->n == 0)
		t->first = now_ns();
	t->n++;
	t->bytes += len;
	if (len > size) {
		t->merged++;
		return;
	}
	if (len < size) {
		t->truncated++;
		return;
	}
	memcpy(&seq, p, 8);
	memcpy(&sz, p + 8, 4);
	if (sz != size || memcmp(p + HDR, ramp + ((seq + HDR) & 0xff),
	    size - HDR) != 0) {
		t->corrupt++;
		return;
	}
	if (seq < t->next)
		t->reordered++;
	else
		t->next = seq + 1;
}

static size_t
gro_size(struct msghdr *m)
{
	struct cmsghdr	*c;
	int		 v;

	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			return v > 0 ? (size_t)v : 0;
		}
	return 0;
}

static int
cmd_recv(int argc, char **argv)
{
	enum { N = 64 };
	static uint8_t	 buf[N][MAXDG];
	struct mmsghdr	 msg[N];
	struct iovec	 iov[N];
	union {
		char		 b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	 align;
	}		 ctl[N];
	struct tally	 t;
	struct pollfd	 pfd;
	uint64_t	 deadline;
	long		 size = 0, idle = 500, secs = 60;
	int		 ch, fd, gro = 0, one = 1, r, i, ms;
	size_t		 g, off, len;

	while ((ch = getopt(argc, argv, "gs:t:T:")) != -1)
		switch (ch) {
		case 'g': gro = 1; break;
		case 's': size = num(optarg, HDR, MAXDG); break;
		case 't': idle = num(optarg, 1, 600000); break;
		case 'T': secs = num(optarg, 1, 3600); break;
		default: return 2;
		}
	argc -= optind;
	argv += optind;
	if (argc != 2 || size == 0)
		errx(2, "usage: dgbench recv [-g] [-t IDLE_MS] [-T SEC] "
		    "-s SIZE HOST PORT");
	fd = udp_socket(argv[0], argv[1], 1);
	bufsize(fd, SO_RCVBUF, SO_RCVBUFFORCE, 16 << 20);
	if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == -1)
		err(1, "setsockopt UDP_GRO");
	print_port(fd);
	memset(&t, 0, sizeof(t));
	deadline = now_ns() + (uint64_t)secs * 1000000000ULL;
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		ms = t.n == 0 ? 100 : (int)idle;
		if (now_ns() > deadline)
			break;
		if ((r = poll(&pfd, 1, ms)) == -1 && errno != EINTR)
			err(1, "poll");
		if (r == 0 && t.n > 0)
			break;
		if (r <= 0)
			continue;
		for (i = 0; i < N; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = MAXDG;
			memset(&msg[i].msg_hdr, 0, sizeof(msg[i].msg_hdr));
			msg[i].msg_hdr.msg_iov = &iov[i];
			msg[i].msg_hdr.msg_iovlen = 1;
			msg[i].msg_hdr.msg_control = ctl[i].b;
			msg[i].msg_hdr.msg_controllen = sizeof(ctl[i].b);
		}
		if ((r = recvmmsg(fd, msg, N, MSG_DONTWAIT, NULL)) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			err(1, "recvmmsg");
		}
		for (i = 0; i < r; i++) {
			len = msg[i].msg_len;
			g = gro ? gro_size(&msg[i].msg_hdr) : 0;
			if (g == 0 || g >= len) {
				judge(&t, buf[i], len, (size_t)size);
				continue;
			}
			for (off = 0; off < len; off += g)
				judge(&t, buf[i] + off,
				    len - off < g ? len - off : g, (size_t)size);
		}
		if (r > 0)
			t.last = now_ns();
	}
	printf("recv %llu bytes %llu corrupt %llu merged %llu truncated %llu "
	    "reordered %llu ns %llu\n", (unsigned long long)t.n,
	    (unsigned long long)t.bytes, (unsigned long long)t.corrupt,
	    (unsigned long long)t.merged, (unsigned long long)t.truncated,
	    (unsigned long long)t.reordered,
	    (unsigned long long)(t.n > 0 ? t.last - t.first : 0));
	return 0;
}

/* -------------------------------------------------------- echo, ping */

static int
cmd_echo(int argc, char **argv)
{
	static uint8_t		 buf[MAXDG];
	struct sockaddr_storage	 from, to;
	socklen_t		 len, tolen = 0;
	ssize_t			 r;
	int			 ch, fd;

	while ((ch = getopt(argc, argv, "d:")) != -1)
		switch (ch) {
		case 'd': tolen = sockaddr_of(optarg, &to); break;
		default: return 2;
		}
	argc -= optind;
	argv += optind;
	if (argc != 2)
		errx(2, "usage: dgbench echo [-d HOST:PORT] HOST PORT");
	fd = udp_socket(argv[0], argv[1], 1);
	print_port(fd);
	for (;;) {
		len = sizeof(from);
		if ((r = recvfrom(fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &len)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "recvfrom");
		}
		if (tolen > 0)
			(void)sendto(fd, buf, (size_t)r, 0,
			    (struct sockaddr *)&to, tolen);
		else
			(void)sendto(fd, buf, (size_t)r, 0,
			    (struct sockaddr *)&from, len);
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmd_ping(int argc, char **argv)
{
	static uint8_t	 out[MAXDG], in[MAXDG];
	struct pollfd	 pfd;
	struct timespec	 ts;
	struct sockaddr_storage to;
	socklen_t	 tolen = 0;
	uint64_t	*rtt, t0, seq;
	long		 n = 2000, gap = 1000, size = 0, got = 0, i;
	int		 ch, fd, r;
	ssize_t		 len;
	const char	*bindto = NULL;

	while ((ch = getopt(argc, argv, "B:i:n:s:")) != -1)
		switch (ch) {
		case 'B': bindto = optarg; break;
		case 'i': gap = num(optarg, 0, 10000000); break;
		case 'n': n = num(optarg, 1, 10000000); break;
		case 's': size = num(optarg, HDR, MAXDG); break;
		default: return 2;
		}
	argc -= optind;
	argv += optind;
	if (argc != 2 || size == 0)
		errx(2, "usage: dgbench ping [-B HOST:PORT] [-n N] [-i US] "
		    "-s SIZE HOST PORT");
	if ((rtt = calloc((size_t)n, sizeof(*rtt))) == NULL)
		err(1, "calloc");
	if (bindto != NULL) {
		char	 h[256], *colon;

		snprintf(h, sizeof(h), "%s", bindto);
		if ((colon = strrchr(h, ':')) == NULL)
			errx(2, "not HOST:PORT: %s", bindto);
		*colon = '\0';
		fd = udp_socket(h, colon + 1, 1);
		snprintf(h, sizeof(h), "%s:%s", argv[0], argv[1]);
		tolen = sockaddr_of(h, &to);
	} else
		fd = udp_socket(argv[0], argv[1], 0);
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (i = 0; i < n; i++) {
		fill(out, (uint64_t)i, (uint32_t)size);
		t0 = now_ns();
		if (sendto(fd, out, (size_t)size, 0, tolen ?
		    (struct sockaddr *)&to : NULL, tolen) == -1 &&
		    errno != ECONNREFUSED)
			err(1, "send");
		for (;;) {
			r = poll(&pfd, 1, 1000);
			if (r <= 0)
				break;		/* lost */
			if ((len = recv(fd, in, sizeof(in), 0)) == -1)
				break;
			memcpy(&seq, in, 8);
			if (len == size && seq == (uint64_t)i &&
			    memcmp(in, out, (size_t)size) == 0) {
				rtt[got++] = now_ns() - t0;
				break;
			}
		}
		ts.tv_sec = gap / 1000000;
		ts.tv_nsec = (gap % 1000000) * 1000;
		nanosleep(&ts, NULL);
	}
	qsort(rtt, (size_t)got, sizeof(*rtt), cmp_u64);
	printf("rtt n %ld lost %ld p50 %.1f p99 %.1f\n", n, n - got,
	    got ? rtt[got / 2] / 1e3 : 0.0,
	    got ? rtt[(got * 99) / 100 < got ? (got * 99) / 100 : got - 1] /
	    1e3 : 0.0);
	return got == n ? 0 : 1;
}

int
main(int argc, char **argv)
{
	size_t	 i;

	for (i = 0; i < sizeof(ramp); i++)
		ramp[i] = (uint8_t)i;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		errx(2, "usage: dgbench gen|recv|echo|ping ...");
	argv++;
	argc--;
	optind = 1;
	if (strcmp(argv[0], "gen") == 0)
		return cmd_gen(argc, argv);
	if (strcmp(argv[0], "recv") == 0)
		return cmd_recv(argc, argv);
	if (strcmp(argv[0], "echo") == 0)
		return cmd_echo(argc, argv);
	if (strcmp(argv[0], "ping") == 0)
		return cmd_ping(argc, argv);
	errx(2, "unknown command: %s", argv[0]);
}
