/*
 * addr.c: ADDRESS arguments, from text (addr_parse, no system calls) to a
 * ready descriptor (addr_open, addr_accept).  Never prints, never exits:
 * failures come back as -1 with the reason in a->err.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <linux/filter.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

/* What an address type takes after its colon. */
enum params {
	P_HOSTPORT,		/* HOST:PORT */
	P_LISTENPORT,		/* [HOST:]PORT */
	P_PATH,
	P_FD,			/* N or R:W */
	P_CMD,			/* everything, commas too */
	P_VSOCK,		/* CID:PORT */
	P_VSOCKLISTEN,		/* [CID:]PORT */
	P_IFNAME,		/* [NAME] */
	P_NONE
};

static const struct addr_type {
	const char	*name;
	enum addr_kind	 kind;
	int		 listen;
	enum params	 params;
} addr_types[] = {
	{ "udp",			ADDR_UDP,	0, P_HOSTPORT },
	{ "udp-listen",			ADDR_UDP,	1, P_LISTENPORT },
	{ "tcp",			ADDR_TCP,	0, P_HOSTPORT },
	{ "tcp-listen",			ADDR_TCP,	1, P_LISTENPORT },
	{ "unix",			ADDR_UNIX,	0, P_PATH },
	{ "unix-listen",		ADDR_UNIX,	1, P_PATH },
	{ "unix-seqpacket",		ADDR_SEQPACKET,	0, P_PATH },
	{ "unix-seqpacket-listen",	ADDR_SEQPACKET,	1, P_PATH },
	{ "fd",				ADDR_FD,	0, P_FD },
	{ "stdio",			ADDR_STDIO,	0, P_NONE },
	{ "exec",			ADDR_EXEC,	0, P_CMD },
	{ "vsock",			ADDR_VSOCK,	0, P_VSOCK },
	{ "vsock-listen",		ADDR_VSOCK,	1, P_VSOCKLISTEN },
	{ "tun",			ADDR_TUN,	0, P_IFNAME },
};

/* Which addresses an option applies to. */
#define ON_IP		0x01	/* udp, tcp: both modes */
#define ON_CONNECT	0x02	/* udp, tcp: connecting */
#define ON_LISTEN	0x04	/* udp, tcp: listening */
#define ON_SOCKET	0x08	/* any socket we make, and fd: */
#define ON_TCP		0x10
#define ON_FORK		0x20	/* listen addresses, fd: */
#define ON_EXEC		0x40
#define ON_TUN		0x80

enum opt_id { O_BIND, O_REUSEPORT, O_RCVBUF, O_SNDBUF, O_MARK, O_DEV,
	O_NODELAY, O_FORK, O_MAXCHILDREN, O_SEQPACKET, O_TAP, O_MTU, O_UP,
	O_ADDR };

#define SPECIAL	((size_t)-1)	/* an option with its own syntax */
#define INT(f)	offsetof(struct addr, f)

/*
 * A flag sets its int field to 1; a number is checked against min..max
 * into its int field; SPECIAL options are parsed by name below.
 */
static const struct addr_opt {
	const char	*name;
	enum opt_id	 id;
	int		 on;
	int		 value;		/* 1: takes =VALUE, 0: takes none */
	size_t		 off;
	long long	 min, max;
} addr_opts[] = {
	{ "bind",	O_BIND,		ON_CONNECT,	1, SPECIAL, 0, 0 },
	{ "reuseport",	O_REUSEPORT,	ON_LISTEN,	0, INT(reuseport), 0, 0 },
	{ "rcvbuf",	O_RCVBUF,	ON_SOCKET,	1, INT(rcvbuf), 1,
	    INT32_MAX / 2 },
	{ "sndbuf",	O_SNDBUF,	ON_SOCKET,	1, INT(sndbuf), 1,
	    INT32_MAX / 2 },
	{ "mark",	O_MARK,		ON_IP,		1, SPECIAL, 0, 0 },
	{ "dev",	O_DEV,		ON_IP,		1, SPECIAL, 0, 0 },
	{ "nodelay",	O_NODELAY,	ON_TCP,		1, INT(nodelay), 0, 1 },
	{ "fork",	O_FORK,		ON_FORK,	0, INT(fork), 0, 0 },
	{ "max-children", O_MAXCHILDREN, ON_FORK,	1, INT(maxchildren), 1,
	    100000 },
	{ "seqpacket",	O_SEQPACKET,	ON_EXEC,	0, INT(seqpacket), 0, 0 },
	{ "tap",	O_TAP,		ON_TUN,		0, INT(tap), 0, 0 },
	{ "mtu",	O_MTU,		ON_TUN,		1, INT(mtu), 68, 65535 },
	{ "up",		O_UP,		ON_TUN,		0, INT(up), 0, 0 },
	{ "addr",	O_ADDR,		ON_TUN,		1, SPECIAL, 0, 0 },
};

static int __attribute__((format(printf, 2, 3)))
fail(struct addr *a, const char *fmt, ...)
{
	va_list	 ap;

	char	*c;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	for (c = a->err; *c != '\0'; c++)	/* the reason is one line */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return -1;
}

/* A system call failed: "what: strerror". */
static int
syserr(struct addr *a, const char *what)
{
	return fail(a, "%s: %s", what, strerror(errno));
}

static int
copy(char *dst, size_t size, const char *src)
{
	return strlcpy(dst, src, size) < size ? 0 : -1;
}

/* A host is printable and has no spaces; names go to the resolver. */
static int
check_host(struct addr *a, const char *h)
{
	for (; *h != '\0'; h++)
		if (!isgraph((unsigned char)*h))
			return fail(a, "host: invalid character");
	return 0;
}

static int
parse_port(struct addr *a, const char *s, char *port, int zero_ok)
{
	const char	*errstr;
	long long	 n;

	n = strtonum(s, 0, 65535, &errstr);
	if (errstr != NULL)
		return fail(a, "port %s: %s", *s ? s : "(empty)", errstr);
	if (n == 0 && !zero_ok)
		return fail(a, "port 0 needs a listen address");
	snprintf(port, 8, "%lld", n);
	return 0;
}

/*
 * [HOST:]PORT or HOST:PORT; HOST may be a bracketed IPv6 address.
 * need_host: the host part is required.
 */
static int
parse_hostport(struct addr *a, char *s, char *host, char *port,
    int need_host, int zero_ok)
{
	char	*p;

	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL)
			return fail(a, "missing ']' in %s", s);
		*p++ = '\0';
		if (*p != ':')
			return fail(a, "missing port after [%s]", s + 1);
		if (s[1] == '\0')
			return fail(a, "empty host in brackets");
		if (copy(host, NAME_MAX_, s + 1) == -1)
			return fail(a, "host name too long");
		if (check_host(a, host) == -1)
			return -1;
		return parse_port(a, p + 1, port, zero_ok);
	}
	if ((p = strrchr(s, ':')) == NULL) {
		if (need_host)
			return fail(a, "expected HOST:PORT, got '%s'", s);
		host[0] = '\0';
		return parse_port(a, s, port, zero_ok);
	}
	*p = '\0';
	if (strchr(s, ':') != NULL)
		return fail(a, "IPv6 address must be in brackets: [%s]", s);
	if (*s == '\0')
		return fail(a, "empty host");
	if (copy(host, NAME_MAX_, s) == -1)
		return fail(a, "host name too long");
	if (check_host(a, host) == -1)
		return -1;
	return parse_port(a, p + 1, port, zero_ok);
}

/* A CID: a number or host (2), local (1), hypervisor (0), any. */
static int
parse_cid(struct addr *a, const char *s, int listen)
{
	const char	*errstr;

	if (strcasecmp(s, "host") == 0)
		a->cid = VMADDR_CID_HOST;
	else if (strcasecmp(s, "local") == 0)
		a->cid = VMADDR_CID_LOCAL;
	else if (strcasecmp(s, "hypervisor") == 0)
		a->cid = VMADDR_CID_HYPERVISOR;
	else if (strcasecmp(s, "any") == 0) {
		if (!listen)
			return fail(a, "CID any only makes sense to listen on");
		a->cid = VMADDR_CID_ANY;
	} else {
		a->cid = (uint32_t)strtonum(s, 0, UINT32_MAX - 1, &errstr);
		if (errstr != NULL)
			return fail(a, "CID %s: %s", *s ? s : "(empty)", errstr);
	}
	return 0;
}

/* vsock:CID:PORT, vsock-listen:[CID:]PORT (PORT 0: the kernel picks). */
static int
parse_vsock(struct addr *a, char *s, int listen)
{
	const char	*errstr;
	char		*p;

	a->cid = VMADDR_CID_ANY;
	if ((p = strchr(s, ':')) != NULL) {
		*p++ = '\0';
		if (parse_cid(a, s, listen) == -1)
			return -1;
		s = p;
	} else if (!listen)
		return fail(a, "expected CID:PORT, got '%s'", s);
	a->vport = (uint32_t)strtonum(s, 0, UINT32_MAX - 1, &errstr);
	if (errstr != NULL)
		return fail(a, "port %s: %s", *s ? s : "(empty)", errstr);
	if (a->vport == 0 && !listen)
		return fail(a, "port 0 needs a listen address");
	if (a->vport == 0)
		a->vport = VMADDR_PORT_ANY;
	return 0;
}

static int
parse_fdnum(struct addr *a, const char *s, int *fd)
{
	const char	*errstr;

	*fd = (int)strtonum(s, 0, 65535, &errstr);
	if (errstr != NULL)
		return fail(a, "descriptor %s: %s", *s ? s : "(empty)",
		    errstr);
	return 0;
}

static int
parse_params(struct addr *a, const struct addr_type *t, char *s)
{
	char	*p;

	switch (t->params) {
	case P_NONE:
		if (s != NULL)
			return fail(a, "%s takes no parameters", t->name);
		return 0;
	case P_IFNAME:
		/* tun: or tun:NAME; the kernel picks a name for "" */
		if (s != NULL && copy(a->ifname, sizeof(a->ifname), s) == -1)
			return fail(a, "device name longer than %d bytes",
			    IFNAMSIZ - 1);
		if (strchr(a->ifname, '/') != NULL)
			return fail(a, "device name %s: invalid", a->ifname);
		return 0;
	default:
		if (s == NULL || *s == '\0')
			return fail(a, "%s needs parameters after ':'", t->name);
		break;
	}
	switch (t->params) {
	case P_HOSTPORT:
		return parse_hostport(a, s, a->host, a->port, 1, 0);
	case P_LISTENPORT:
		return parse_hostport(a, s, a->host, a->port, 0, 1);
	case P_PATH:
		if (copy(a->path, sizeof(a->path), s) == -1)
			return fail(a, "path longer than %zu bytes",
			    sizeof(a->path) - 1);
		if (strcmp(s, "@") == 0)
			return fail(a, "empty abstract socket name");
		return 0;
	case P_VSOCK:
		return parse_vsock(a, s, 0);
	case P_VSOCKLISTEN:
		return parse_vsock(a, s, 1);
	case P_CMD:
		/* options only at the end, so commands may hold commas */
		while ((p = strrchr(s, ',')) != NULL &&
		    strcasecmp(p + 1, "seqpacket") == 0) {
			a->seqpacket = 1;
			*p = '\0';
		}
		if (*s == '\0')
			return fail(a, "exec needs a command");
		return copy(a->cmd, sizeof(a->cmd), s);
	case P_FD:
		if (!isdigit((unsigned char)*s)) {
			/* a name systemd gave (FileDescriptorName=) */
			if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
			    "OPQRSTUVWXYZ0123456789._-") != strlen(s))
				return fail(a, "descriptor %s: invalid", s);
			return copy(a->fdname, sizeof(a->fdname), s) == -1 ?
			    fail(a, "descriptor name too long") : 0;
		}
		if ((p = strchr(s, ':')) != NULL)
			*p++ = '\0';
		if (parse_fdnum(a, s, &a->rfd) == -1)
			return -1;
		a->wfd = a->rfd;
		if (p != NULL && parse_fdnum(a, p, &a->wfd) == -1)
			return -1;
		return 0;
	default:
		return 0;
	}
}

static int
opt_applies(const struct addr *a, int on)
{
	int	 ip = a->kind == ADDR_UDP || a->kind == ADDR_TCP;

	switch (on) {
	case ON_IP:
		return ip;
	case ON_CONNECT:
		return ip && !a->listen;
	case ON_LISTEN:
		return ip && a->listen;
	case ON_SOCKET:
		return a->kind != ADDR_STDIO && a->kind != ADDR_TUN;
	case ON_TCP:
		return a->kind == ADDR_TCP;
	case ON_FORK:
		return a->listen || a->kind == ADDR_FD;
	case ON_EXEC:
		return a->kind == ADDR_EXEC || a->kind == ADDR_VSOCK;
	case ON_TUN:
		return a->kind == ADDR_TUN;
	}
	return 0;
}

static int
parse_int(struct addr *a, const char *name, const char *v, long long min,
    long long max, long long *n)
{
	const char	*errstr;

	*n = strtonum(v, min, max, &errstr);
	if (errstr != NULL)
		return fail(a, "option %s=%s: %s", name, v, errstr);
	return 0;
}

/* addr=A.B.C.D/LEN */
static int
parse_ifaddr(struct addr *a, char *v)
{
	struct in_addr	 in;
	const char	*errstr;
	char		*slash;

	if ((slash = strchr(v, '/')) == NULL)
		return fail(a, "option addr=%s: expected A.B.C.D/LEN", v);
	*slash++ = '\0';
	if (inet_pton(AF_INET, v, &in) != 1)
		return fail(a, "option addr=%s: not an IPv4 address", v);
	a->prefix = (int)strtonum(slash, 0, 32, &errstr);
	if (errstr != NULL)
		return fail(a, "option addr: prefix /%s: %s", slash, errstr);
	a->ifaddr = in.s_addr;
	a->hasaddr = 1;
	return 0;
}

static int
parse_option(struct addr *a, char *s)
{
	const struct addr_opt	*o = NULL;
	char			*v;
	long long		 n;
	size_t			 i;

	if ((v = strchr(s, '=')) != NULL)
		*v++ = '\0';
	for (i = 0; s[i] != '\0'; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	for (i = 0; i < sizeof(addr_opts) / sizeof(addr_opts[0]); i++)
		if (strcmp(s, addr_opts[i].name) == 0)
			o = &addr_opts[i];
	if (o == NULL)
		return fail(a, "unknown option '%s'", s);
	if (!opt_applies(a, o->on))
		return fail(a, "option %s does not apply to this address", s);
	if (o->value && v == NULL)
		return fail(a, "option %s needs a value (%s=...)", s, s);
	if (!o->value && v != NULL)
		return fail(a, "option %s takes no value", s);

	if (o->off != SPECIAL) {
		int	*field = (int *)(void *)((char *)a + o->off);

		if (!o->value) {
			*field = 1;
			return 0;
		}
		if (parse_int(a, s, v, o->min, o->max, &n) == -1)
			return -1;
		*field = (int)n;
		return 0;
	}
	switch (o->id) {
	case O_BIND:
		a->hasbind = 1;
		return parse_hostport(a, v, a->bindhost, a->bindport, 0, 1);
	case O_MARK:
		if (parse_int(a, s, v, 0, UINT32_MAX, &n) == -1)
			return -1;
		a->hasmark = 1;
		a->mark = (uint32_t)n;
		return 0;
	case O_DEV:
		if (*v == '\0' || copy(a->dev, sizeof(a->dev), v) == -1)
			return fail(a, "option dev=%s: bad interface name", v);
		return 0;
	case O_ADDR:
		return parse_ifaddr(a, v);
	default:
		return 0;
	}
}

int
addr_parse(const char *spec, struct addr *a)
{
	const struct addr_type	*t = NULL;
	char			 buf[SPEC_MAX], *params, *opts, *o;
	size_t			 i, n;

	memset(a, 0, sizeof(*a));
	a->spec = spec;
	a->nodelay = 1;
	a->lfd = a->rfd = a->wfd = -1;
	if (copy(buf, sizeof(buf), spec) == -1)
		return fail(a, "address longer than %d bytes", SPEC_MAX - 1);

	n = strcspn(buf, ":,");
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	params = buf[n] == ':' ? buf + n + 1 : NULL;
	opts = buf[n] == ',' ? buf + n + 1 : NULL;
	buf[n] = '\0';
	for (i = 0; i < sizeof(addr_types) / sizeof(addr_types[0]); i++)
		if (strcmp(buf, addr_types[i].name) == 0)
			t = &addr_types[i];
	if (t == NULL)
		return fail(a, "unknown address type '%s'", buf);
	a->kind = t->kind;
	a->listen = t->listen;

	if (params != NULL && t->params != P_CMD &&
	    (o = strchr(params, ',')) != NULL) {
		*o = '\0';
		opts = o + 1;
	}
	if (parse_params(a, t, params) == -1)
		return -1;
	while (opts != NULL) {
		o = strsep(&opts, ",");
		if (*o == '\0')
			return fail(a, "empty option");
		if (parse_option(a, o) == -1)
			return -1;
	}
	if (a->maxchildren && !a->fork)
		return fail(a, "option max-children needs fork");
	if (a->fork && a->kind == ADDR_FD && a->rfd != a->wfd)
		return fail(a, "option fork needs fd:N, not fd:R:W");
	return 0;
}

/* ------------------------------------------------------------- opening */

static int	sock_name(struct addr *, int, int, char *, size_t);

void
addr_sockname(const struct sockaddr *sa, socklen_t len, char *buf,
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

static int
set_nonblock(int fd, int *saved)
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

static int
setopt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

/*
 * The options that apply to any socket of ours, before bind/connect.  A
 * UDP socket asks for UDP_BUF_DEF bytes of buffer each way unless told:
 * a burst waits in the kernel instead of being dropped.  The kernel grants
 * at most net.core.rmem_max / wmem_max (doubled); no privilege is used.
 * Measured (make bench): 1 MiB cut a flat-out flood's loss as much as
 * 4 MiB did, and under a flood that never ends a deeper queue only goes
 * cold in the CPU's cache (65,000-byte datagrams: about 15% slower).
 */
static int
sock_options(struct addr *a, int fd)
{
	if (a->rcvbuf && setopt(fd, SOL_SOCKET, SO_RCVBUF, a->rcvbuf) == -1)
		return syserr(a, "setsockopt SO_RCVBUF");
	if (a->sndbuf && setopt(fd, SOL_SOCKET, SO_SNDBUF, a->sndbuf) == -1)
		return syserr(a, "setsockopt SO_SNDBUF");
	if (a->kind == ADDR_UDP && a->rcvbuf == 0)
		(void)setopt(fd, SOL_SOCKET, SO_RCVBUF, UDP_BUF_DEF);
	if (a->kind == ADDR_UDP && a->sndbuf == 0)
		(void)setopt(fd, SOL_SOCKET, SO_SNDBUF, UDP_BUF_DEF);
	if (a->hasmark &&
	    setopt(fd, SOL_SOCKET, SO_MARK, (int)a->mark) == -1)
		return syserr(a, "setsockopt SO_MARK");
	if (a->dev[0] != '\0' && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE,
	    a->dev, (socklen_t)strlen(a->dev)) == -1)
		return syserr(a, "setsockopt SO_BINDTODEVICE");
	if (a->reuseport && setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1)
		return syserr(a, "setsockopt SO_REUSEPORT");
	return 0;
}

/*
 * s relays on fd, a connected socket of this type: a stream is framed
 * (TCP without Nagle unless nodelay=0), a seqpacket's 0-byte read is its
 * end; non-blocking.
 */
static int
sock_side(struct addr *a, struct side *s, int fd, int type)
{
	s->rfd = s->wfd = fd;
	s->wsock = 1;
	s->framed = type == SOCK_STREAM;
	s->seqpacket = type == SOCK_SEQPACKET;
	if (a->kind == ADDR_TCP &&
	    setopt(fd, IPPROTO_TCP, TCP_NODELAY, a->nodelay) == -1)
		return syserr(a, "setsockopt TCP_NODELAY");
	if (set_nonblock(fd, NULL) == -1)
		return syserr(a, "fcntl");
	return 0;
}

static int
resolve(struct addr *a, const char *host, const char *port, int family,
    int passive, struct addrinfo **res)
{
	struct addrinfo	 hints;
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = a->kind == ADDR_UDP ? SOCK_DGRAM : SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	if ((e = getaddrinfo(host[0] ? host : NULL, port, &hints, res)) != 0)
		return fail(a, "%s: %s", host[0] ? host : "(any)",
		    e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
	return 0;
}

static int
bind_local(struct addr *a, int fd, int family)
{
	struct addrinfo	*res;
	int		 r;

	if (resolve(a, a->bindhost, a->bindport, family, 1, &res) == -1)
		return -1;
	r = bind(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (r == -1)
		return syserr(a, "bind");
	return 0;
}

/* udp:, tcp: connect to the first address of HOST that answers. */
static int
open_ip_connect(struct addr *a, struct side *s)
{
	struct addrinfo	*res, *ai;
	int		 fd = -1;

	if (resolve(a, a->host, a->port, AF_UNSPEC, 0, &res) == -1)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			syserr(a, "socket");
			continue;
		}
		if (sock_options(a, fd) == 0 &&
		    (!a->hasbind || bind_local(a, fd, ai->ai_family) == 0)) {
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			syserr(a, "connect");
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
	return sock_side(a, s, fd,
	    a->kind == ADDR_TCP ? SOCK_STREAM : SOCK_DGRAM);
}

/* "HOST PORT" of fd's own end (peer 0) or of its peer (peer 1). */
static int
sock_name(struct addr *a, int fd, int peer, char *buf, size_t size)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss,
	    &len) == -1)
		return syserr(a, peer ? "getpeername" : "getsockname");
	addr_sockname((struct sockaddr *)&ss, len, buf, size);
	return 0;
}

/*
 * A forking udp-listen: a peer's socket joins the listener's SO_REUSEPORT
 * group at bind, before connect makes it the peer's.  In between the
 * kernel may hash other senders' datagrams to it.  This program makes the
 * group pick socket 0, the listener; a connected socket still gets its own
 * peer's datagrams, by the kernel's lookup score.  It narrows the window
 * but does not close it on every kernel: serve.c also drains each new
 * socket before its child starts and routes what it finds.
 */
static int
steer_to_listener(struct addr *a, int fd)
{
	struct sock_filter	 ret0[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog	 prog;

	memset(&prog, 0, sizeof(prog));	/* padding too: it goes to the kernel */
	prog.len = 1;
	prog.filter = ret0;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog)) == -1)
		return syserr(a, "setsockopt SO_ATTACH_REUSEPORT_CBPF");
	return 0;
}

/*
 * Listening socket for udp-listen, tcp-listen.  With no HOST, one IPv6
 * socket takes both families; IPv4 alone where IPv6 is off.
 */
static int
open_ip_listen(struct addr *a, struct side *s)
{
	struct addrinfo	*res, *ai;
	int		 fd = -1, family = AF_UNSPEC;
	int		 tcp = a->kind == ADDR_TCP;

	if (a->host[0] == '\0') {
		fd = socket(AF_INET6, (tcp ? SOCK_STREAM : SOCK_DGRAM) |
		    SOCK_CLOEXEC, 0);
		family = fd == -1 ? AF_INET : AF_INET6;
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	if (resolve(a, a->host, a->port, family, 1, &res) == -1)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			syserr(a, "socket");
			continue;
		}
		if (ai->ai_family == AF_INET6 && a->host[0] == '\0')
			(void)setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
		if (tcp)
			(void)setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
		/* fork: each peer's child binds here too, connected to it;
		 * receive times order what it is handed */
		if (!tcp && a->fork &&
		    (setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1 ||
		    setopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1) == -1)) {
			syserr(a, "setsockopt SO_REUSEPORT");
			close(fd);
			fd = -1;
			continue;
		}
		if (sock_options(a, fd) == 0) {
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
			    (!tcp || listen(fd, 16) == 0))
				break;
			syserr(a, tcp ? "bind/listen" : "bind");
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
	if (sock_name(a, fd, 0, s->local, sizeof(s->local)) == -1 ||
	    (!tcp && a->fork && steer_to_listener(a, fd) == -1)) {
		close(fd);
		return -1;
	}
	if (tcp || a->fork) {
		a->lfd = fd;
		if (a->fork && set_nonblock(fd, NULL) == -1)
			return syserr(a, "fcntl");
		return 0;
	}
	/* udp-listen: the relay adopts the first sender as the peer */
	s->rfd = s->wfd = fd;
	s->wsock = 1;
	s->lockpeer = 1;
	if (set_nonblock(fd, NULL) == -1)
		return syserr(a, "fcntl");
	return 0;
}

static socklen_t
unix_sockaddr(const struct addr *a, struct sockaddr_un *sun)
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

static int
open_unix(struct addr *a, struct side *s)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = unix_sockaddr(a, &sun);
	int			 type, fd;

	type = a->kind == ADDR_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM;
	if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) == -1)
		return syserr(a, "socket");
	if (sock_options(a, fd) == -1)
		goto bad;
	if (a->listen) {
		if (bind(fd, (struct sockaddr *)&sun, len) == -1) {
			syserr(a, "bind");
			goto bad;
		}
		a->unlink = a->path[0] != '@';
		if (listen(fd, 16) == -1) {
			syserr(a, "listen");
			goto bad;
		}
		a->lfd = fd;
		snprintf(s->local, sizeof(s->local), "%s", a->path);
		return 0;
	}
	if (connect(fd, (struct sockaddr *)&sun, len) == -1) {
		syserr(a, "connect");
		goto bad;
	}
	snprintf(s->peer, sizeof(s->peer), "%s", a->path);
	return sock_side(a, s, fd, type);
bad:
	close(fd);
	return -1;
}

int
addr_activation(void)
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
activated_fd(struct addr *a)
{
	const char	*names;
	size_t		 len = strlen(a->fdname);
	int		 n, i;

	if ((n = addr_activation()) == 0)
		return fail(a, "not socket-activated (no LISTEN_FDS for us)");
	if ((names = getenv("LISTEN_FDNAMES")) == NULL)
		return fail(a, "no LISTEN_FDNAMES to find %s in", a->fdname);
	for (i = 0; i < n && names != NULL; i++) {
		if (strncmp(names, a->fdname, len) == 0 &&
		    (names[len] == ':' || names[len] == '\0')) {
			a->rfd = a->wfd = 3 + i;
			return 0;
		}
		if ((names = strchr(names, ':')) != NULL)
			names++;
	}
	return fail(a, "no descriptor named %s in LISTEN_FDNAMES", a->fdname);
}

/*
 * fd:N, fd:R:W: the kind of side follows from what the descriptor is.
 * A listening stream socket is kept in a->lfd to accept from.
 */
static int
open_fd(struct addr *a, struct side *s)
{
	int		 type, acc;
	socklen_t	 len = sizeof(type);
	struct stat	 st;

	if (a->fdname[0] != '\0' && activated_fd(a) == -1)
		return -1;
	if (fstat(a->rfd, &st) == -1 || fstat(a->wfd, &st) == -1)
		return syserr(a, "fstat");
	if (getsockopt(a->rfd, SOL_SOCKET, SO_TYPE, &type, &len) == -1) {
		if (errno != ENOTSOCK)
			return syserr(a, "getsockopt SO_TYPE");
		type = 0;		/* pipe, tty, file: a stream */
	}
	len = sizeof(acc);
	if (type == SOCK_STREAM && getsockopt(a->rfd, SOL_SOCKET,
	    SO_ACCEPTCONN, &acc, &len) == 0 && acc) {
		if (a->rfd != a->wfd)
			return fail(a, "listening socket %d in fd:R:W", a->rfd);
		a->lfd = a->rfd;
		return sock_name(a, a->lfd, 0, s->local, sizeof(s->local));
	}
	if (a->fork)
		return fail(a, "option fork needs a listening stream socket");
	s->framed = type != SOCK_DGRAM && type != SOCK_SEQPACKET;
	s->seqpacket = type == SOCK_SEQPACKET;
	if (!s->framed && a->rfd != a->wfd)
		return fail(a, "a datagram socket needs fd:N, not fd:R:W");
	if (type == SOCK_DGRAM) {
		struct sockaddr_storage	 ss;

		len = sizeof(ss);
		if (getpeername(a->rfd, (struct sockaddr *)&ss, &len) == -1) {
			if (errno != ENOTCONN)
				return syserr(a, "getpeername");
			s->lockpeer = 1;	/* e.g. systemd --datagram */
		}
	}
	if (a->wfd != a->rfd) {
		len = sizeof(type);
		s->wsock = getsockopt(a->wfd, SOL_SOCKET, SO_TYPE, &type,
		    &len) == 0;
	} else
		s->wsock = type != 0;
	s->rfd = a->rfd;
	s->wfd = a->wfd;
	if (set_nonblock(s->rfd, &s->rflags) == -1 ||
	    set_nonblock(s->wfd, &s->wflags) == -1)
		return syserr(a, "fcntl O_NONBLOCK");
	return 0;
}

/* stdio: a stream on fd 0 and fd 1, whatever they are. */
static int
open_stdio(struct addr *a, struct side *s)
{
	int		 type;
	socklen_t	 len = sizeof(type);

	s->rfd = a->rfd = 0;
	s->wfd = a->wfd = 1;
	s->framed = 1;
	s->wsock = getsockopt(1, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	if (set_nonblock(0, &s->rflags) == -1 ||
	    set_nonblock(1, &s->wflags) == -1)
		return syserr(a, "fcntl O_NONBLOCK");
	return 0;
}

/* vsock:, vsock-listen: AF_VSOCK, SOCK_STREAM or (seqpacket) SOCK_SEQPACKET. */
static int
open_vsock(struct addr *a, struct side *s)
{
	struct sockaddr_vm	 vm;
	int			 fd, type;

	type = a->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
	if ((fd = socket(AF_VSOCK, type | SOCK_CLOEXEC, 0)) == -1)
		return syserr(a, "socket AF_VSOCK");
	if (sock_options(a, fd) == -1)
		goto bad;
	memset(&vm, 0, sizeof(vm));
	vm.svm_family = AF_VSOCK;
	vm.svm_cid = a->cid;
	vm.svm_port = a->vport;
	if (a->listen) {
		if (bind(fd, (struct sockaddr *)&vm, sizeof(vm)) == -1 ||
		    listen(fd, 16) == -1) {
			syserr(a, "bind/listen");
			goto bad;
		}
		if (a->fork && set_nonblock(fd, NULL) == -1) {
			syserr(a, "fcntl");
			goto bad;
		}
		a->lfd = fd;
		return sock_name(a, fd, 0, s->local, sizeof(s->local));
	}
	if (connect(fd, (struct sockaddr *)&vm, sizeof(vm)) == -1) {
		syserr(a, "connect");
		goto bad;
	}
	if (sock_side(a, s, fd, type) == -1)
		return -1;
	return sock_name(a, fd, 1, s->peer, sizeof(s->peer));
bad:
	close(fd);
	return -1;
}

/*
 * exec: /bin/sh -c COMMAND with one end of a socketpair as its standard
 * input and output; its standard error stays ours.
 */
static int
open_exec(struct addr *a, struct side *s)
{
	sigset_t	 none;
	int		 sv[2], type;

	type = a->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == -1)
		return syserr(a, "socketpair");
	if ((a->pid = fork()) == -1) {
		a->pid = 0;
		close(sv[0]);
		close(sv[1]);
		return syserr(a, "fork");
	}
	if (a->pid == 0) {
		/* the command starts with what a shell would give it */
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(sv[1], 0) == -1 || dup2(sv[1], 1) == -1)
			_exit(126);
		execl("/bin/sh", "sh", "-c", a->cmd, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	return sock_side(a, s, sv[0], type);
}

int
addr_open(struct addr *a, struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->rfd = s->wfd = -1;
	s->rflags = s->wflags = -1;
	s->name = a->spec;

	switch (a->kind) {
	case ADDR_UDP:
	case ADDR_TCP:
		if (a->listen)
			return open_ip_listen(a, s);
		if (open_ip_connect(a, s) == -1 ||
		    sock_name(a, s->rfd, 0, s->local, sizeof(s->local)) == -1)
			return -1;
		return sock_name(a, s->rfd, 1, s->peer, sizeof(s->peer));
	case ADDR_UNIX:
	case ADDR_SEQPACKET:
		return open_unix(a, s);
	case ADDR_FD:
		return open_fd(a, s);
	case ADDR_STDIO:
		return open_stdio(a, s);
	case ADDR_EXEC:
		return open_exec(a, s);
	case ADDR_VSOCK:
		return open_vsock(a, s);
	case ADDR_TUN:
		return tun_open(a, s);
	}
	return fail(a, "unknown address kind");
}

int
addr_accept(struct addr *a, struct side *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 fd, type;

	if (a->lfd == -1)
		return 0;
	do
		fd = accept4(a->lfd, (struct sockaddr *)&ss, &len,
		    SOCK_CLOEXEC);
	while (fd == -1 && (errno == EINTR || errno == ECONNABORTED) &&
	    !sig_quit && !a->fork);
	if (fd == -1)
		return syserr(a, "accept");
	if (!a->fork) {
		if (a->kind != ADDR_FD)
			close(a->lfd);
		a->lfd = -1;
	}
	addr_sockname((struct sockaddr *)&ss, len, s->peer, sizeof(s->peer));

	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		type = SOCK_STREAM;
	return sock_side(a, s, fd, type);
}

int
addr_udp_peer(struct addr *a, const struct sockaddr *peer, socklen_t plen,
    struct side *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 fd;

	memset(s, 0, sizeof(*s));
	s->rfd = s->wfd = -1;
	s->rflags = s->wflags = -1;
	s->name = a->spec;
	if (getsockname(a->lfd, (struct sockaddr *)&ss, &len) == -1)
		return syserr(a, "getsockname");
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return syserr(a, "socket");
	if (ss.ss_family == AF_INET6)
		(void)setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	if (setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1 ||
	    setopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1) == -1 ||
	    sock_options(a, fd) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    connect(fd, peer, plen) == -1 || set_nonblock(fd, NULL) == -1) {
		if (a->err[0] == '\0')
			syserr(a, "peer socket");
		close(fd);
		return -1;
	}
	s->rfd = s->wfd = fd;
	s->wsock = 1;
	memcpy(&s->peeraddr, peer, plen);
	s->peerlen = plen;
	addr_sockname(peer, plen, s->peer, sizeof(s->peer));
	return 0;
}

/*
 * The command of exec: ends with its socket (it saw end of input), or is
 * told to: SIGTERM, then SIGKILL after 2 seconds.  Its status lands in
 * a->status.
 */
static void
reap_command(struct addr *a)
{
	struct timespec	 ts = { 0, 10 * 1000000L };
	pid_t		 r;
	int		 n;

	for (n = 0; n < 50; n++) {	/* a moment to end by itself */
		if ((r = waitpid(a->pid, &a->status, WNOHANG)) != 0)
			goto done;
		nanosleep(&ts, NULL);
	}
	(void)kill(a->pid, SIGTERM);
	a->ended = 1;			/* we ended it: not its failure */
	for (n = 0; n < 200; n++) {
		if ((r = waitpid(a->pid, &a->status, WNOHANG)) != 0)
			goto done;
		nanosleep(&ts, NULL);
	}
	(void)kill(a->pid, SIGKILL);
	r = waitpid(a->pid, &a->status, 0);
done:
	if (r == -1)
		a->status = 0;		/* reaped elsewhere: nothing to say */
	a->reaped = 1;
}

void
addr_close(struct addr *a, struct side *s)
{
	/* inherited descriptors go back as they came */
	if (s->rflags != -1)
		(void)fcntl(s->rfd, F_SETFL, s->rflags);
	if (s->wflags != -1 && s->wfd != s->rfd)
		(void)fcntl(s->wfd, F_SETFL, s->wflags);
	if (a->lfd != -1 && a->kind != ADDR_FD)
		close(a->lfd);
	if (a->kind != ADDR_FD && a->kind != ADDR_STDIO) {
		if (s->rfd != -1)
			close(s->rfd);
		if (s->wfd != -1 && s->wfd != s->rfd)
			close(s->wfd);
	}
	s->rfd = s->wfd = a->lfd = -1;
	if (a->unlink)
		(void)unlink(a->path);
	a->unlink = 0;
	if (a->pid > 0)
		reap_command(a);
}
