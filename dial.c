/*
 * dial.c: a dialled side's connection, made without blocking: retry's
 * attempts (redial.c says when) and a multi session's other address.
 * One attempt tries the addresses of a host in turn, each a
 * non-blocking connect whose end the loop reports (the side's socket
 * writable); a TCP attempt that connects to itself is a failed one.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"


/* The socket type of a connecting address that may retry. */
static int
dial_type(const struct addr *a)
{
	if (a->kind == ADDR_SEQPACKET || (a->kind == ADDR_VSOCK && a->seqpacket))
		return SOCK_SEQPACKET;
	return SOCK_STREAM;
}

/*
 * A retrying address opens down: the side knows how it will relay, and
 * the relay makes the connection (redial.c), the first one too.
 */
int
sock_dial_prepare(const struct addr *a, struct side *s)
{
	sock_side_io(a, s, dial_type(a));
	s->wsock = 1;
	return 0;
}

/* The connection is made: s relays on it. */
static int
dial_done(const struct addr *a, struct side *s, int fd)
{
	s->rfd = s->wfd = -1;
	if (sock_side(a, s, fd, dial_type(a)) == -1 ||
	    sock_getname(s, fd, 1, s->peer, sizeof(s->peer)) == -1 ||
	    sock_getname(s, fd, 0, s->local, sizeof(s->local)) == -1 ||
	    (a->kind == ADDR_TCP && strcmp(s->local, s->peer) == 0 &&
	    side_fail(s, "connect: connected to itself (nothing listens "
	    "there, a port of the local range)") == -1)) {
		/* TCP's simultaneous open: a port of the ephemeral range that
		 * nothing listens on can be given to the attempt itself */
		close(fd);
		s->rfd = s->wfd = -1;
		return -1;
	}
	return 0;
}

/*
 * Start connecting a new non-blocking socket to sa: 0 connected, 1 under
 * way (s->rfd is the socket), -1 failed (s->err).
 */
static int
dial_one(const struct addr *a, struct side *s, const struct addrinfo *ai)
{
	int	 fd;

	if (a->kind == ADDR_TCP)
		fd = sock_ip_socket(a, s, ai);
	else if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    0)) == -1)
		sock_syserr(s, "socket");
	if (fd == -1)
		return -1;
	if (sock_nonblock(fd, NULL) == -1) {
		sock_syserr(s, "fcntl O_NONBLOCK");
		goto bad;
	}
	if (sock_options(a, s, fd) == -1 || (a->kind == ADDR_TCP && a->hasbind &&
	    sock_bind_local(a, s, fd, ai->ai_family) == -1))
		goto bad;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return dial_done(a, s, fd);
	if (errno == EINPROGRESS || errno == EINTR) {
		s->rfd = s->wfd = fd;
		/* where this attempt goes, for its failure's message */
		sock_ntop(ai->ai_addr, ai->ai_addrlen, s->peer,
		    sizeof(s->peer));
		return 1;
	}
	sock_connect_failed(s, ai->ai_addr, ai->ai_addrlen);
bad:
	close(fd);
	return -1;
}

/* Try the addresses left of this attempt in turn. */
static int
dial_next(const struct addr *a, struct side *s)
{
	struct addrinfo	*ai;
	int		 r = -1;

	while ((ai = s->dialnext) != NULL) {
		s->dialnext = ai->ai_next;
		if ((r = dial_one(a, s, ai)) >= 0)
			break;
	}
	if (r != 1 && s->dialres != NULL) {
		sock_res_free(a, s->dialres);
		s->dialres = s->dialnext = NULL;
	}
	return r;
}

int
sock_dial(const struct addr *a, struct side *s)
{
	struct sockaddr_un	 sun;
	struct sockaddr_vm	 vm;
	struct addrinfo		 one;

	s->err[0] = '\0';
	s->peer[0] = s->local[0] = '\0';
	if (a->kind == ADDR_TCP) {
		/* looked up again each attempt: the name may move */
		if (sock_resolve(a, s, a->host, a->port, AF_UNSPEC, 0,
		    &s->dialres) == -1)
			return -1;
		s->dialnext = s->dialres;
		return dial_next(a, s);
	}
	memset(&one, 0, sizeof(one));
	one.ai_socktype = dial_type(a);
	if (a->kind == ADDR_VSOCK) {
		memset(&vm, 0, sizeof(vm));
		vm.svm_family = AF_VSOCK;
		vm.svm_cid = a->cid;
		vm.svm_port = a->vport;
		one.ai_addr = (struct sockaddr *)&vm;
		one.ai_addrlen = sizeof(vm);
	} else {
		one.ai_addrlen = sock_unix_addr(a, &sun);
		one.ai_addr = (struct sockaddr *)&sun;
	}
	one.ai_family = one.ai_addr->sa_family;
	return dial_one(a, s, &one);
}

int
sock_dial_end(const struct addr *a, struct side *s)
{
	int		 e = 0, fd = s->rfd;
	socklen_t	 len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e == 0)
		return dial_done(a, s, fd);
	close(fd);
	s->rfd = s->wfd = -1;
	side_fail(s, "connect to %s: %s", s->peer, strerror(e));
	s->peer[0] = '\0';
	return dial_next(a, s);
}

void
sock_hangup(const struct addr *a, struct side *s)
{
	if (s->rfd != -1)
		close(s->rfd);
	if (s->wfd != -1 && s->wfd != s->rfd)
		close(s->wfd);
	s->rfd = s->wfd = -1;
	if (s->dialres != NULL)
		sock_res_free(a, s->dialres);
	s->dialres = s->dialnext = NULL;
}
