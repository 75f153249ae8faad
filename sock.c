/*
 * sock.c: from a parsed address to an open side.  sock_open() is the one
 * door: a table by address kind names the opener (the IP, unix and vsock
 * sockets are here; fd.c, exec.c and tun.c have theirs).  Also a dialled
 * side's non-blocking connect (retry and multi: redial.c drives it),
 * accepting, and closing.  Never prints,
 * never exits: failures come back as -1 with the reason in s->err.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <linux/filter.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

#define LISTEN_BACKLOG	SOMAXCONN	/* a burst waits, not its SYNs */

int
sock_syserr(struct side *s, const char *what)
{
	return side_fail(s, "%s: %s", what, strerror(errno));
}

int
side_fail(struct side *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* A connect to sa failed: the reason names where it went. */
int
sock_connect_failed(struct side *s, const struct sockaddr *sa, socklen_t len)
{
	char	 to[NAME_MAX_];
	int	 e = errno;

	sock_ntop(sa, len, to, sizeof(to));
	errno = e;
	return side_fail(s, "connect to %s: %s", to, strerror(e));
}

/* ------------------------------------------------------------- opening */

void
sock_ntop(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size)
{
	char			 host[NI_MAXHOST], serv[NI_MAXSERV];
	const struct sockaddr_un *sun;

	if (sa->sa_family == AF_UNIX) {
		sun = (const struct sockaddr_un *)sa;
		if (len <= offsetof(struct sockaddr_un, sun_path))
			snprintf(buf, size, "(unnamed)");
		else if (sun->sun_path[0] == '\0')
			snprintf(buf, size, "@%.*s",
			    (int)(len - offsetof(struct sockaddr_un,
			    sun_path) - 1), sun->sun_path + 1);
		else
			snprintf(buf, size, "%s", sun->sun_path);
		return;
	}
	if (sa->sa_family == AF_VSOCK) {
		const struct sockaddr_vm *vm = (const struct sockaddr_vm *)sa;

		if (vm->svm_cid == VMADDR_CID_ANY)
			snprintf(buf, size, "any %u", vm->svm_port);
		else
			snprintf(buf, size, "%u %u", vm->svm_cid, vm->svm_port);
		return;
	}
	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, size, "(unknown)");
	else
		snprintf(buf, size, "%s %s", host, serv);
}

int
sock_family(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return ss.ss_family;
}

int
sock_nonblock(int fd, int *saved)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	if (saved != NULL)
		*saved = fl;
	if (fl & O_NONBLOCK)
		return 0;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
sock_setopt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

/*
 * The options that apply to any socket of ours, before bind/connect.  A
 * UDP socket asks for UDP_BUF_DEF bytes of buffer each way unless told:
 * a burst waits in the kernel instead of being dropped.  The kernel grants
 * at most net.core.rmem_max / wmem_max (doubled); no privilege is used,
 * but for the listening socket of fork or multi (UDP_LISTEN_BUF).
 * Measured (make bench): 1 MiB cut a flat-out flood's loss as much as
 * 4 MiB did, and under a flood that never ends a deeper queue only goes
 * cold in the CPU's cache (65,000-byte datagrams: about 15% slower).
 */
int
sock_options(const struct addr *a, struct side *s, int fd)
{
	if (a->rcvbuf && sock_setopt(fd, SOL_SOCKET, SO_RCVBUF, a->rcvbuf) == -1)
		return sock_syserr(s, "setsockopt SO_RCVBUF");
	if (a->sndbuf && sock_setopt(fd, SOL_SOCKET, SO_SNDBUF, a->sndbuf) == -1)
		return sock_syserr(s, "setsockopt SO_SNDBUF");
	/* a listener of many peers takes their bursts on one socket: a
	 * deeper queue, forced past rmem_max where privileged */
	if (a->kind == ADDR_UDP && a->rcvbuf == 0 && a->listen && a->many) {
		if (sock_setopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, UDP_LISTEN_BUF) == -1)
			(void)sock_setopt(fd, SOL_SOCKET, SO_RCVBUF, UDP_LISTEN_BUF);
	} else if (a->kind == ADDR_UDP && a->rcvbuf == 0)
		(void)sock_setopt(fd, SOL_SOCKET, SO_RCVBUF, UDP_BUF_DEF);
	if (a->kind == ADDR_UDP && a->sndbuf == 0)
		(void)sock_setopt(fd, SOL_SOCKET, SO_SNDBUF, UDP_BUF_DEF);
	if (a->hasmark &&
	    sock_setopt(fd, SOL_SOCKET, SO_MARK, (int)a->mark) == -1)
		return sock_syserr(s, "setsockopt SO_MARK");
	if (a->dev[0] != '\0' && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE,
	    a->dev, (socklen_t)strlen(a->dev)) == -1)
		return sock_syserr(s, "setsockopt SO_BINDTODEVICE");
	if (a->reuseport && sock_setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1)
		return sock_syserr(s, "setsockopt SO_REUSEPORT");
	return 0;
}

/*
 * A connected TCP (or MPTCP) socket: Nagle off unless nodelay=0, and
 * keepalive and the user timeout as asked, so that a dead path is noticed.
 */
static int
tcp_options(const struct addr *a, struct side *s, int fd)
{
	static const struct {
		int		 name;
		size_t		 off;
		const char	*what;
	} opts[] = {
		{ TCP_KEEPIDLE, offsetof(struct addr, keepidle),
		    "setsockopt TCP_KEEPIDLE" },
		{ TCP_KEEPINTVL, offsetof(struct addr, keepintvl),
		    "setsockopt TCP_KEEPINTVL" },
		{ TCP_KEEPCNT, offsetof(struct addr, keepcnt),
		    "setsockopt TCP_KEEPCNT" },
		{ TCP_USER_TIMEOUT, offsetof(struct addr, usertimeout),
		    "setsockopt TCP_USER_TIMEOUT" },
	};
	size_t	 i;
	int	 v;

	if (sock_setopt(fd, IPPROTO_TCP, TCP_NODELAY, a->nodelay) == -1)
		return sock_syserr(s, "setsockopt TCP_NODELAY");
	if (a->keepalive && sock_setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1) == -1)
		return sock_syserr(s, "setsockopt SO_KEEPALIVE");
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		memcpy(&v, (char *)a + opts[i].off, sizeof(v));
		if (v > 0 && sock_setopt(fd, IPPROTO_TCP, opts[i].name, v) == -1)
			return sock_syserr(s, opts[i].what);
	}
	return 0;
}

/* How s relays on a socket of this type: framed, in TLS, datagrams. */
void
sock_side_io(const struct addr *a, struct side *s, int type)
{
	s->io = type != SOCK_STREAM ? IO_DGRAM : a->tls ? IO_TLS : IO_STREAM;
	s->seqpacket = type == SOCK_SEQPACKET;
	s->tlsc = a->tlsc;
}

/*
 * s relays on fd, a connected socket of this type: a stream is framed
 * (TCP without Nagle unless nodelay=0), a seqpacket's 0-byte read is its
 * end; non-blocking.
 */
int
sock_side(const struct addr *a, struct side *s, int fd, int type)
{
	s->rfd = s->wfd = fd;
	s->wsock = 1;
	sock_side_io(a, s, type);
	if (a->kind == ADDR_TCP && tcp_options(a, s, fd) == -1)
		return -1;
	if (sock_nonblock(fd, NULL) == -1)
		return sock_syserr(s, "fcntl O_NONBLOCK");
	return 0;
}

int
sock_resolve(const struct addr *a, struct side *s, const char *host,
    const char *port, int family, int passive, struct addrinfo **res)
{
	if (!passive && host == a->host && a->names != NULL) {
		*res = a->names;	/* looked up once (multi) */
		return 0;
	}
	struct addrinfo	 hints;
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = a->kind == ADDR_UDP ? SOCK_DGRAM : SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	if ((e = getaddrinfo(host[0] ? host : NULL, port, &hints, res)) != 0)
		return side_fail(s, "%s: %s", host[0] ? host : "(any)",
		    e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
	return 0;
}

int
sock_bind_local(const struct addr *a, struct side *s, int fd, int family)
{
	struct addrinfo	*res;
	int		 r;

	if (sock_resolve(a, s, a->bindhost, a->bindport, family, 1, &res) == -1)
		return -1;
	r = bind(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (r == -1)
		return side_fail(s, "bind=%s%s%s: %s", a->bindhost,
		    a->bindport[0] != '\0' ? ":" : "", a->bindport,
		    strerror(errno));
	return 0;
}

/*
 * A socket for ai: Multipath TCP with option mptcp (the kernel falls back
 * to TCP with a peer that does not speak it), never silently plain TCP.
 */
int
sock_ip_socket(const struct addr *a, struct side *s,
    const struct addrinfo *ai)
{
	int	 fd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    a->mptcp ? IPPROTO_MPTCP : 0);
	if (fd == -1 && a->mptcp)
		side_fail(s, "socket IPPROTO_MPTCP: %s (no MPTCP in this "
		    "kernel, or net.mptcp.enabled is 0)", strerror(errno));
	else if (fd == -1)
		sock_syserr(s, "socket");
	return fd;
}

/* A list sock_resolve() gave, let go of (not the one kept in a->names). */
void
sock_res_free(const struct addr *a, struct addrinfo *res)
{
	if (res != NULL && res != a->names)
		freeaddrinfo(res);
}

int
sock_resolve_once(struct addr *a)
{
	struct side	 s;		/* for the reason, should it fail */
	struct addrinfo	*res;

	a->err[0] = '\0';
	if (a->listen || (a->kind != ADDR_TCP && a->kind != ADDR_UDP))
		return 0;
	sock_side_init(a, &s);
	if (sock_resolve(a, &s, a->host, a->port, AF_UNSPEC, 0, &res) == -1) {
		strlcpy(a->err, s.err, sizeof(a->err));
		return -1;
	}
	a->names = res;
	return 0;
}

void
sock_forget_names(struct addr *a)
{
	if (a->names != NULL)
		freeaddrinfo(a->names);
	a->names = NULL;
}

/* udp:, tcp: connect to the first address of HOST that answers. */
static int
open_ip_connect(const struct addr *a, struct side *s)
{
	struct addrinfo	*res, *ai;
	int		 fd = -1;

	if (sock_resolve(a, s, a->host, a->port, AF_UNSPEC, 0, &res) == -1)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = sock_ip_socket(a, s, ai)) == -1)
			continue;
		if (sock_options(a, s, fd) == 0 &&
		    (!a->hasbind || sock_bind_local(a, s, fd, ai->ai_family) == 0)) {
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			sock_connect_failed(s, ai->ai_addr, ai->ai_addrlen);
		}
		close(fd);
		fd = -1;
	}
	sock_res_free(a, res);
	if (fd == -1)
		return -1;
	return sock_side(a, s, fd,
	    a->kind == ADDR_TCP ? SOCK_STREAM : SOCK_DGRAM);
}

int
sock_getname(struct side *s, int fd, int peer, char *buf, size_t size)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss,
	    &len) == -1)
		return sock_syserr(s, peer ? "getpeername" : "getsockname");
	sock_ntop((struct sockaddr *)&ss, len, buf, size);
	return 0;
}

/*
 * A forking udp-listen: a peer's socket joins the listener's SO_REUSEPORT
 * group at bind, before connect makes it the peer's.  In between the
 * kernel may hash other senders' datagrams to it.  This program makes the
 * group pick socket 0, the listener; a connected socket still gets its own
 * peer's datagrams, by the kernel's lookup score.  It narrows the window
 * but does not close it on every kernel: fork.c also drains each new
 * socket before its child starts and routes what it finds.
 */
static int
steer_to_listener(struct side *s, int fd)
{
	struct sock_filter	 ret0[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog	 prog;

	memset(&prog, 0, sizeof(prog));	/* padding too: it goes to the kernel */
	prog.len = 1;
	prog.filter = ret0;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog)) == -1)
		return sock_syserr(s, "setsockopt SO_ATTACH_REUSEPORT_CBPF");
	return 0;
}

/*
 * bind fd to sa and, for a stream or seqpacket socket, listen: each call
 * named when it fails.
 */
/*
 * Whether a socket of this network namespace is bound at path, and
 * listens (/proc/net/unix: a connect would be taken by a listener as its
 * peer, so none is tried).  0: none, 1: bound, 2: listening; -1 unknown.
 */
static int
unix_bound(const char *path)
{
	FILE		*f;
	char		 line[PATH_MAX + 128], *p;
	unsigned long	 flags;
	int		 r = 0;

	if ((f = fopen("/proc/net/unix", "re")) == NULL)
		return -1;
	while (r < 2 && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		/* Num RefCount Protocol Flags Type St Inode Path */
		if ((p = strchr(line, '/')) == NULL || strcmp(p, path) != 0 ||
		    sscanf(line, "%*s %*s %*s %lx", &flags) != 1)
			continue;
		r = flags & 0x10000 ? 2 : 1;	/* __SO_ACCEPTCON */
	}
	fclose(f);
	return r;
}

/*
 * A unix path is taken: by a live listener, or by a stale socket file that
 * nobody listens on (a dgrelay that was killed leaves one).  Say which.
 */
static int
path_taken(const struct addr *a, struct side *s)
{
	struct stat	 st;
	char		 full[PATH_MAX];

	if (stat(a->path, &st) == -1 || !S_ISSOCK(st.st_mode))
		return side_fail(s, "bind: %s: exists and is not a socket",
		    a->path);
	if (realpath(a->path, full) == NULL)
		strlcpy(full, a->path, sizeof(full));
	switch (unix_bound(full)) {
	case 2:
		return side_fail(s, "bind: %s: in use: a process listens on "
		    "it", a->path);
	case 1:
		return side_fail(s, "bind: %s: in use: a process has it bound",
		    a->path);
	case 0:
		return side_fail(s, "bind: %s: a stale socket file (nothing "
		    "listens on it): remove it, or give option unlink-early",
		    a->path);
	default:
		return side_fail(s, "bind: %s: Address already in use",
		    a->path);
	}
}

static int
bind_listen(const struct addr *a, struct side *s, int fd,
    const struct sockaddr *sa, socklen_t len, int stream)
{
	int	 abstract = sa->sa_family == AF_UNIX && a->path[0] == '@';

	if (sa->sa_family == AF_UNIX && !abstract && a->unlinkearly &&
	    unlink(a->path) == -1 && errno != ENOENT)
		return side_fail(s, "unlink-early: %s: %s", a->path,
		    strerror(errno));
	if (bind(fd, sa, len) == -1) {
		if (errno == EADDRINUSE && sa->sa_family == AF_UNIX &&
		    !abstract)
			return path_taken(a, s);
		return sock_syserr(s, "bind");
	}
	/* a unix path now exists: removed at close, even if listen fails */
	s->unlink = sa->sa_family == AF_UNIX && a->path[0] != '@';
	if (stream && listen(fd, LISTEN_BACKLOG) == -1)
		return sock_syserr(s, "listen");
	return 0;
}

/*
 * One listening socket at ai.  A forking udp-listen joins a reuseport
 * group (each peer's child socket binds here too, connected to it), and
 * stamps receive times to order what a child is handed.
 */
static int
ip_listen_at(const struct addr *a, struct side *s,
    const struct addrinfo *ai)
{
	int	 fd, tcp = a->kind == ADDR_TCP;

	if ((fd = sock_ip_socket(a, s, ai)) == -1)
		return -1;
	if (ai->ai_family == AF_INET6 && a->host[0] == '\0')
		(void)sock_setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	if (tcp)
		(void)sock_setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!tcp && a->fork &&
	    sock_setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1)
		sock_syserr(s, "setsockopt SO_REUSEPORT");
	else if (!tcp && a->fork &&
	    sock_setopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1) == -1)
		sock_syserr(s, "setsockopt SO_TIMESTAMPNS");
	else if (!tcp && a->fork && sock_want_drops(fd) == -1)
		sock_syserr(s, "setsockopt SO_RXQ_OVFL");
	else if (sock_options(a, s, fd) == 0 &&
	    bind_listen(a, s, fd, ai->ai_addr, ai->ai_addrlen, tcp) == 0)
		return fd;
	close(fd);
	return -1;
}

/*
 * Listening socket for udp-listen, tcp-listen.  With no HOST, one IPv6
 * socket takes both families; IPv4 alone where IPv6 is off.
 */
static int
open_ip_listen(const struct addr *a, struct side *s)
{
	struct addrinfo	*res, *ai;
	int		 fd = -1, family = AF_UNSPEC;

	if (a->host[0] == '\0') {
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		family = fd == -1 ? AF_INET : AF_INET6;
		if (fd != -1)
			close(fd);
	}
	if (sock_resolve(a, s, a->host, a->port, family, 1, &res) == -1)
		return -1;
	for (ai = res, fd = -1; ai != NULL && fd == -1; ai = ai->ai_next)
		fd = ip_listen_at(a, s, ai);
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
	if (sock_getname(s, fd, 0, s->local, sizeof(s->local)) == -1 ||
	    (a->kind == ADDR_UDP && a->fork && steer_to_listener(s, fd) == -1))
		goto bad;
	/* a single peer's accept may block; the rest never does */
	if ((a->many || a->kind == ADDR_UDP) && sock_nonblock(fd, NULL) == -1) {
		sock_syserr(s, "fcntl O_NONBLOCK");
		goto bad;
	}
	s->pktinfo = sock_want_pktinfo(fd);
	if (a->kind == ADDR_TCP || a->many) {
		s->lfd = fd;
		return 0;
	}
	/* udp-listen: the relay adopts the first sender as the peer */
	s->rfd = s->wfd = fd;
	s->wsock = 1;
	s->lockpeer = 1;
	return 0;
bad:
	close(fd);
	return -1;
}

socklen_t
sock_unix_addr(const struct addr *a, struct sockaddr_un *sun)
{
	size_t	 n = strlen(a->path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, a->path, n);
	if (a->path[0] == '@')
		sun->sun_path[0] = '\0';	/* abstract: no trailing NUL */
	else
		n++;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/*
 * A unix or vsock socket of this type at sa: listen there (s->lfd), or
 * connect to it.  s->local or s->peer says where, as the kernel has it.
 */
static int
open_at(const struct addr *a, struct side *s, int type, const struct sockaddr *sa,
    socklen_t len)
{
	int	 fd;

	if ((fd = socket(sa->sa_family, type | SOCK_CLOEXEC, 0)) == -1)
		return sock_syserr(s, sa->sa_family == AF_VSOCK ?
		    "socket AF_VSOCK" : "socket");
	if (sock_options(a, s, fd) == -1)
		goto bad;
	if (a->listen) {
		if (bind_listen(a, s, fd, sa, len, 1) == -1 ||
		    sock_getname(s, fd, 0, s->local, sizeof(s->local)) == -1)
			goto bad;
		if (a->many && sock_nonblock(fd, NULL) == -1) {
			sock_syserr(s, "fcntl O_NONBLOCK");
			goto bad;
		}
		s->lfd = fd;
		return 0;
	}
	if (connect(fd, sa, len) == -1) {
		sock_connect_failed(s, sa, len);
		goto bad;
	}
	if (sock_getname(s, fd, 1, s->peer, sizeof(s->peer)) == -1)
		goto bad;
	return sock_side(a, s, fd, type);
bad:
	close(fd);
	return -1;
}

/* unix:, unix-listen:, unix-seqpacket(-listen): a path or an @name. */
static int
open_unix(const struct addr *a, struct side *s)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = sock_unix_addr(a, &sun);

	return open_at(a, s, a->kind == ADDR_SEQPACKET ? SOCK_SEQPACKET :
	    SOCK_STREAM, (struct sockaddr *)&sun, len);
}

/* vsock:, vsock-listen: AF_VSOCK, SOCK_STREAM or (seqpacket) SOCK_SEQPACKET. */
static int
open_vsock(const struct addr *a, struct side *s)
{
	struct sockaddr_vm	 vm;

	memset(&vm, 0, sizeof(vm));
	vm.svm_family = AF_VSOCK;
	vm.svm_cid = a->cid;
	vm.svm_port = a->vport;
	return open_at(a, s, a->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM,
	    (struct sockaddr *)&vm, sizeof(vm));
}

/* udp:, tcp:, udp-listen:, tcp-listen: */
static int
open_ip(const struct addr *a, struct side *s)
{
	if (a->listen)
		return open_ip_listen(a, s);
	if (open_ip_connect(a, s) == -1 ||
	    sock_getname(s, s->rfd, 0, s->local, sizeof(s->local)) == -1)
		return -1;
	return sock_getname(s, s->rfd, 1, s->peer, sizeof(s->peer));
}

/* The opener of each address kind. */
static int (*const openers[])(const struct addr *, struct side *) = {
	[ADDR_UDP] = open_ip,
	[ADDR_TCP] = open_ip,
	[ADDR_UNIX] = open_unix,
	[ADDR_SEQPACKET] = open_unix,
	[ADDR_FD] = fd_open,
	[ADDR_STDIO] = fd_stdio,
	[ADDR_EXEC] = exec_open,
	[ADDR_VSOCK] = open_vsock,
	[ADDR_TUN] = tun_open,
};

void
sock_side_init(const struct addr *a, struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->rfd = s->wfd = -1;
	s->rflags = s->wflags = -1;
	s->lfd = -1;
	s->name = a->label;
	s->fhdr = a->wideframe ? FRAME_WIDE : FRAME_HDR;
}

void
sock_pending(const struct addr *a, struct side *s)
{
	sock_side_init(a, s);
	s->pending = 1;
}

int
sock_open(const struct addr *a, struct side *s)
{
	sock_side_init(a, s);
	if ((size_t)a->kind >= sizeof(openers) / sizeof(openers[0]) ||
	    openers[a->kind] == NULL)
		return side_fail(s, "no opener for this address kind");
	if (a->retry || a->dial)
		return sock_dial_prepare(a, s);
	return openers[a->kind](a, s);
}

int
sock_accept(const struct addr *a, struct side *ls, struct side *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 fd, type;

	s->err[0] = '\0';
	if (ls->lfd == -1)
		return 0;
	do
		fd = accept4(ls->lfd, (struct sockaddr *)&ss, &len,
		    SOCK_CLOEXEC);
	while (fd == -1 && errno == ECONNABORTED && !a->many);
	if (fd == -1)
		return sock_syserr(s, "accept");
	if (!a->many) {
		if (a->kind != ADDR_FD)
			close(ls->lfd);
		ls->lfd = -1;
	}
	sock_ntop((struct sockaddr *)&ss, len, s->peer, sizeof(s->peer));
	memcpy(&s->peeraddr, &ss, len);		/* who: multi's source */
	s->peerlen = len;

	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		type = SOCK_STREAM;
	return sock_side(a, s, fd, type);
}

int
sock_accept_failed(const struct addr *a, const struct side *s)
{
	int	 e = errno;

	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		logx("%s: %s; accepting again in %d s", a->label, s->err,
		    ACCEPT_PAUSE / 1000);
		return 1;
	}
	if (e != EAGAIN && e != EINTR && e != ECONNABORTED)
		logx("%s: %s", a->label, s->err);
	return 0;
}

void
sock_close(const struct addr *a, struct side *s)
{
	/* inherited descriptors go back as they came */
	if (s->rflags != -1)
		(void)fcntl(s->rfd, F_SETFL, s->rflags);
	if (s->wflags != -1 && s->wfd != s->rfd)
		(void)fcntl(s->wfd, F_SETFL, s->wflags);
	if (s->lfd != -1 && a->kind != ADDR_FD)
		close(s->lfd);
	if (a->kind != ADDR_FD && a->kind != ADDR_STDIO) {
		if (s->rfd != -1)
			close(s->rfd);
		if (s->wfd != -1 && s->wfd != s->rfd)
			close(s->wfd);
	}
	s->rfd = s->wfd = s->lfd = -1;
	if (s->dialres != NULL)
		sock_res_free(a, s->dialres);
	s->dialres = s->dialnext = NULL;
	if (s->unlink)
		(void)unlink(a->path);
	s->unlink = 0;
}
