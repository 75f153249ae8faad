/*
 * fd.c: descriptors we are given rather than make: fd:N, fd:R:W, fd:NAME
 * (systemd socket activation, LISTEN_FDS) and stdio.  What kind of side a
 * descriptor is follows from what it is.  Never prints, never exits.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

int
fd_activation(void)
{
	const char	*e, *errstr;
	long long	 pid, n, i;

	if ((e = getenv("LISTEN_PID")) == NULL)
		return 0;
	pid = strtonum(e, 1, INT32_MAX, &errstr);
	if (errstr != NULL || pid != getpid())
		return 0;		/* meant for another process */
	if ((e = getenv("LISTEN_FDS")) == NULL)
		return 0;
	n = strtonum(e, 0, 1024, &errstr);
	if (errstr != NULL)
		return 0;
	for (i = 0; i < n; i++)		/* not for exec: commands */
		(void)fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC);
	return (int)n;
}

/* fd:NAME: its place in LISTEN_FDNAMES, from descriptor 3 on. */
static int
activated_fd(const struct addr *a, struct side *s, int *fd)
{
	const char	*names;
	size_t		 len = strlen(a->fdname);
	int		 n, i;

	if ((n = fd_activation()) == 0)
		return side_fail(s,
		    "not socket-activated (no LISTEN_FDS for us)");
	if ((names = getenv("LISTEN_FDNAMES")) == NULL)
		return side_fail(s, "no LISTEN_FDNAMES to find %s in",
		    a->fdname);
	for (i = 0; i < n && names != NULL; i++) {
		if (strncmp(names, a->fdname, len) == 0 &&
		    (names[len] == ':' || names[len] == '\0')) {
			*fd = 3 + i;
			return 0;
		}
		if ((names = strchr(names, ':')) != NULL)
			names++;
	}
	return side_fail(s, "no descriptor named %s in LISTEN_FDNAMES",
	    a->fdname);
}

/*
 * fd:N, fd:R:W: the kind of side follows from what the descriptor is.
 * A listening stream socket is kept in s->lfd to accept from.
 */
int
fd_open(const struct addr *a, struct side *s)
{
	int		 type, acc, rfd = a->rfd, wfd = a->wfd;
	socklen_t	 len = sizeof(type);
	struct stat	 st;

	if (a->fdname[0] != '\0') {
		if (activated_fd(a, s, &rfd) == -1)
			return -1;
		wfd = rfd;
	}
	if (fstat(rfd, &st) == -1 || fstat(wfd, &st) == -1)
		return sock_syserr(s, "fstat");
	if (getsockopt(rfd, SOL_SOCKET, SO_TYPE, &type, &len) == -1) {
		if (errno != ENOTSOCK)
			return sock_syserr(s, "getsockopt SO_TYPE");
		type = 0;		/* pipe, tty, file: a stream */
	}
	len = sizeof(acc);
	if (type == SOCK_STREAM && getsockopt(rfd, SOL_SOCKET,
	    SO_ACCEPTCONN, &acc, &len) == 0 && acc) {
		if (rfd != wfd)
			return side_fail(s, "listening socket %d in fd:R:W",
			    rfd);
		s->lfd = rfd;
		return sock_getname(s, s->lfd, 0, s->local, sizeof(s->local));
	}
	if (a->many)
		return side_fail(s, "option %s needs a listening stream socket",
		    a->fork ? "fork" : "multi");
	s->io = type == SOCK_DGRAM || type == SOCK_SEQPACKET ? IO_DGRAM :
	    IO_STREAM;
	s->seqpacket = type == SOCK_SEQPACKET;
	if (s->io == IO_DGRAM && a->wideframe)
		return side_fail(s, "option frame applies to a stream; "
		    "descriptor %d is a datagram socket", rfd);
	if (s->io == IO_DGRAM && rfd != wfd)
		return side_fail(s, "a datagram socket needs fd:N, not fd:R:W");
	if (type == SOCK_DGRAM) {
		struct sockaddr_storage	 ss;

		len = sizeof(ss);
		if (getpeername(rfd, (struct sockaddr *)&ss, &len) == -1) {
			if (errno != ENOTCONN)
				return sock_syserr(s, "getpeername");
			s->lockpeer = 1;	/* e.g. systemd --datagram */
			s->pktinfo = sock_want_pktinfo(rfd);
		}
	}
	if (wfd != rfd) {
		len = sizeof(type);
		s->wsock = getsockopt(wfd, SOL_SOCKET, SO_TYPE, &type,
		    &len) == 0;
	} else
		s->wsock = type != 0;
	s->rfd = rfd;
	s->wfd = wfd;
	if (sock_nonblock(s->rfd, &s->rflags) == -1 ||
	    sock_nonblock(s->wfd, &s->wflags) == -1)
		return sock_syserr(s, "fcntl O_NONBLOCK");
	return 0;
}

/* stdio: a stream on fd 0 and fd 1, whatever they are. */
int
fd_stdio(const struct addr *a, struct side *s)
{
	int		 type;
	socklen_t	 len = sizeof(type);

	(void)a;		/* its options are none */
	s->rfd = 0;
	s->wfd = 1;
	s->io = IO_STREAM;
	s->wsock = getsockopt(1, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	if (sock_nonblock(0, &s->rflags) == -1 ||
	    sock_nonblock(1, &s->wflags) == -1)
		return sock_syserr(s, "fcntl O_NONBLOCK");
	return 0;
}
