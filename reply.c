/*
 * reply.c: what a received datagram says beside its bytes, and the source
 * address a reply leaves from.  A wildcard-bound UDP socket (udp-listen
 * on 0.0.0.0 or ::) learns, with IP_PKTINFO, which of the host's
 * addresses each datagram was sent to; when that is not the address the
 * kernel's route would pick, replies carry it as a control message, so
 * the peer sees them come from where it wrote.  Also the kernel's drop
 * count (SO_RXQ_OVFL) and the search of a message's control data.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

/* ss is a wildcard address: 0.0.0.0 or :: */
static int
is_any(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return sin->sin_addr.s_addr == htonl(INADDR_ANY);
	return ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

int
sock_want_pktinfo(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 proto;

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == -1 ||
	    proto != IPPROTO_UDP)
		return 0;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    !is_any(&ss))
		return 0;
	if (ss.ss_family == AF_INET6 &&
	    sock_setopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) == -1)
		return 0;
	return sock_setopt(fd, IPPROTO_IP, IP_PKTINFO, 1) == 0 ||
	    ss.ss_family == AF_INET6;
}

/* The addresses (not ports) of a and b are the same. */
static int
same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

/*
 * The first peer of a wildcard-bound side s wrote to the address h names.
 * If the kernel would answer it from another (the route's preferred
 * source: a probe socket connected to the peer says which), connecting
 * would also stop the socket hearing that address: it stays unconnected,
 * and every reply names the peer and its source (IP_PKTINFO).  A peer
 * with a connected socket accepts answers only from where it wrote.
 */
int
sock_reply_source(struct side *s, struct msghdr *h)
{
	struct sockaddr_storage	 dst, own;
	socklen_t		 len = sizeof(own);
	int			 fd, r;

	s->pktinfo = 0;		/* no longer needed: the peer is known */
	(void)sock_setopt(s->rfd, IPPROTO_IP, IP_PKTINFO, 0);
	(void)sock_setopt(s->rfd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 0);
	if (sock_pktinfo(h, s->peeraddr.ss_family, &dst) == -1 ||
	    (fd = socket(s->peeraddr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC,
	    0)) == -1)
		return 0;
	r = connect(fd, h->msg_name, h->msg_namelen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&own, &len) == 0 &&
	    !same_host(&own, &dst);
	close(fd);
	if (r) {
		s->replyfrom = dst;
		s->hasreplyfrom = 1;
	}
	return r;
}

int
sock_want_drops(int fd)
{
	int	 on = 1;

	return setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on));
}

const void *
sock_cmsg(struct msghdr *m, int level, int type, size_t len)
{
	struct cmsghdr	*c;

	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == level && c->cmsg_type == type &&
		    c->cmsg_len >= CMSG_LEN(len))
			return CMSG_DATA(c);
	return NULL;
}

void
sock_drops(struct msghdr *m, uint64_t *drops)
{
	const void	*p;
	uint32_t	 v;

	if ((p = sock_cmsg(m, SOL_SOCKET, SO_RXQ_OVFL, sizeof(v))) == NULL)
		return;
	memcpy(&v, p, sizeof(v));
	if (v > *drops)		/* the socket's count so far */
		*drops = v;
}

int
sock_pktinfo(struct msghdr *m, int family, struct sockaddr_storage *ss)
{
	struct cmsghdr		*c;
	struct in_pktinfo	 pi;
	struct in6_pktinfo	 pi6;
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(pi6))) {
			memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = pi6.ipi6_addr;
			return 0;
		}
		if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_PKTINFO ||
		    c->cmsg_len < CMSG_LEN(sizeof(pi)))
			continue;
		memcpy(&pi, CMSG_DATA(c), sizeof(pi));
		if (family == AF_INET) {
			sin->sin_family = AF_INET;
			sin->sin_addr = pi.ipi_addr;
		} else {	/* an IPv4 datagram on an IPv6 socket */
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr.s6_addr[10] = 0xff;
			sin6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&sin6->sin6_addr.s6_addr[12], &pi.ipi_addr, 4);
		}
		return 0;
	}
	return -1;
}
