/*
 * addr.c: ADDRESS arguments from text to a struct addr: the table of
 * address types, the table of options, and addr_parse().  No system calls
 * (it links alone into test/fuzz_addr); opening is sock.c's.  Never prints,
 * never exits: failures come back as -1 with the reason in a->err.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <linux/vm_sockets.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "dgrelay.h"

#include "addr.h"

const struct addr_type addr_types[] = {
	{ "udp",		ADDR_UDP,	0, P_HOSTPORT,	IP_CONNECT },
	{ "udp-listen",		ADDR_UDP,	1, P_LISTENPORT, IP_LISTEN },
	{ "tcp",		ADDR_TCP,	0, P_HOSTPORT,
	    IP_CONNECT | ON_TCP | ON_RETRY | ON_FRAME | ON_MUX },
	{ "tcp-listen",		ADDR_TCP,	1, P_LISTENPORT,
	    IP_LISTEN | ON_TCP | ON_FRAME | ON_MUX },
	{ "tls",		ADDR_TCP,	0, P_HOSTPORT,
	    IP_CONNECT | ON_TCP | ON_RETRY | ON_TLS | ON_FRAME | ON_MUX },
	{ "tls-listen",		ADDR_TCP,	1, P_LISTENPORT,
	    IP_LISTEN | ON_TCP | ON_TLS | ON_FRAME | ON_MUX },
	{ "unix",		ADDR_UNIX,	0, P_PATH,
	    ON_SOCKET | ON_RETRY | ON_FRAME | ON_MUX },
	{ "unix-listen",	ADDR_UNIX,	1, P_PATH,
	    ON_SOCKET | ON_FORK | ON_PATHLISTEN | ON_FRAME | ON_MUX },
	{ "unix-seqpacket",	ADDR_SEQPACKET,	0, P_PATH,
	    ON_SOCKET | ON_RETRY },
	{ "unix-seqpacket-listen", ADDR_SEQPACKET, 1, P_PATH,
	    ON_SOCKET | ON_FORK | ON_PATHLISTEN },
	{ "fd",			ADDR_FD,	0, P_FD,
	    ON_SOCKET | ON_FORK | ON_FRAME },
	{ "stdio",		ADDR_STDIO,	0, P_NONE,	ON_FRAME },
	{ "exec",		ADDR_EXEC,	0, P_CMD,
	    ON_SOCKET | ON_SEQPACKET | ON_FRAME },
	{ "vsock",		ADDR_VSOCK,	0, P_VSOCK,
	    ON_SOCKET | ON_SEQPACKET | ON_RETRY | ON_FRAME | ON_MUX },
	{ "vsock-listen",	ADDR_VSOCK,	1, P_VSOCKLISTEN,
	    ON_SOCKET | ON_SEQPACKET | ON_FORK | ON_FRAME | ON_MUX },
	{ "tun",		ADDR_TUN,	0, P_IFNAME,	ON_TUN },
};

const struct addr_opt addr_opts[] = {
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
	{ "multi",	O_MULTI,	ON_FORK,	0, INT(multi), 0, 0 },
	{ "max-peers",	O_MAXPEERS,	ON_FORK,	1, INT(maxpeers), 1,
	    1000000 },
	{ "seqpacket",	O_SEQPACKET,	ON_SEQPACKET,	0, INT(seqpacket), 0,
	    0 },
	{ "tap",	O_TAP,		ON_TUN,		0, INT(tap), 0, 0 },
	{ "mtu",	O_MTU,		ON_TUN,		1, INT(mtu), 68, 65535 },
	{ "up",		O_UP,		ON_TUN,		0, INT(up), 0, 0 },
	{ "addr",	O_ADDR,		ON_TUN,		1, SPECIAL, 0, 0 },
	{ "keepalive",	O_KEEPALIVE,	ON_TCP,		0, INT(keepalive), 0, 0 },
	{ "keepidle",	O_KEEPIDLE,	ON_TCP,		1, INT(keepidle), 1, 32767 },
	{ "keepintvl",	O_KEEPINTVL,	ON_TCP,		1, INT(keepintvl), 1,
	    32767 },
	{ "keepcnt",	O_KEEPCNT,	ON_TCP,		1, INT(keepcnt), 1, 127 },
	{ "user-timeout", O_USERTIMEOUT, ON_TCP,	1, INT(usertimeout), 1,
	    INT32_MAX },
	{ "mptcp",	O_MPTCP,	ON_TCP,		0, INT(mptcp), 0, 0 },
	{ "retry",	O_RETRY,	ON_RETRY,	OPTIONAL, SPECIAL, 0, 0 },
	{ "interval",	O_INTERVAL,	ON_RETRY,	1, SPECIAL, 0, 0 },
	{ "cert",	O_CERT,		ON_TLS,		1, SPECIAL, 0, 0 },
	{ "key",	O_KEY,		ON_TLS,		1, SPECIAL, 0, 0 },
	{ "cafile",	O_CAFILE,	ON_TLS,		1, SPECIAL, 0, 0 },
	{ "verify",	O_VERIFY,	ON_TLS,		1, INT(verify), 0, 1 },
	{ "sni",	O_SNI,		ON_TLS,		1, SPECIAL, 0, 0 },
	{ "alpn",	O_ALPN,		ON_TLS,		1, SPECIAL, 0, 0 },
	{ "psk",	O_PSK,		ON_TLS,		1, SPECIAL, 0, 0 },
	{ "handshake-timeout", O_HANDSHAKE, ON_TLS,	1, SPECIAL, 0, 0 },
	{ "max-handshakes", O_MAXHS,	ON_TLS,		1, INT(maxhs), 1,
	    1000000 },
	{ "stall-timeout", O_STALL,	ON_FORK,	1, SPECIAL, 0, 0 },
	{ "frame-timeout", O_FRAMEWAIT,	ON_FORK,	1, SPECIAL, 0, 0 },
	{ "unlink-early", O_UNLINKEARLY, ON_PATHLISTEN, 0, INT(unlinkearly), 0,
	    0 },
	{ "frame",	O_FRAME,	ON_FRAME,	1, SPECIAL, 0, 0 },
	{ "mux",	O_MUX,		ON_MUX,		0, INT(mux), 0, 0 },
	{ "mux-ping",	O_MUXPING,	ON_MUX,		1, SPECIAL, 0, 0 },
};
const size_t addr_ntypes = sizeof(addr_types) / sizeof(addr_types[0]);
const size_t addr_nopts = sizeof(addr_opts) / sizeof(addr_opts[0]);

int
addr_fail(struct addr *a, const char *fmt, ...)
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

long long
addr_num(const char *s, long long min, long long max, const char **errstr)
{
	const char	*d = *s == '-' ? s + 1 : s;

	/* strtonum alone would take " 9", "+9" and "-0" */
	if (*d == '\0' || strspn(d, "0123456789") != strlen(d)) {
		*errstr = "invalid";
		return 0;
	}
	if (*s == '-' && min >= 0) {
		*errstr = "too small";
		return 0;
	}
	return strtonum(s, min, max, errstr);
}

long long
addr_ms(const char *s, long long max, const char **errstr)
{
	char		 buf[32], *dot;
	const char	*e;
	long long	 sec, ms = 0;
	size_t		 i, n;

	*errstr = NULL;
	if (strlcpy(buf, s, sizeof(buf)) >= sizeof(buf)) {
		*errstr = "too long";
		return 0;
	}
	if ((dot = strchr(buf, '.')) != NULL) {
		*dot++ = '\0';
		n = strlen(dot);
		if (n == 0 || n > 3 || strspn(dot, "0123456789") != n) {
			*errstr = "at most three decimals";
			return 0;
		}
		for (i = 0; i < 3; i++)
			ms = ms * 10 + (i < n ? dot[i] - '0' : 0);
	}
	sec = addr_num(buf, 0, max / 1000, &e);
	if (e == NULL && sec * 1000 + ms > max)
		e = "too large";
	if (e == NULL && sec * 1000 + ms == 0)
		e = "must be more than 0";
	*errstr = e;
	return e == NULL ? sec * 1000 + ms : 0;
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
	for (; *h != '\0'; h++)	/* brackets only around IPv6 */
		if (!isgraph((unsigned char)*h) || *h == '[' || *h == ']')
			return addr_fail(a, "host: invalid character");
	return 0;
}

static int
parse_port(struct addr *a, const char *s, char *port, int zero_ok)
{
	const char	*errstr;
	long long	 n;

	n = addr_num(s, 0, 65535, &errstr);
	if (errstr != NULL)
		return addr_fail(a, "port %s: %s", *s ? s : "(empty)", errstr);
	if (n == 0 && !zero_ok)
		return addr_fail(a, "port 0 needs a listen address");
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
			return addr_fail(a, "missing ']' in %s", s);
		*p++ = '\0';
		if (*p != ':')
			return addr_fail(a, "missing port after [%s]", s + 1);
		if (s[1] == '\0')
			return addr_fail(a, "empty host in brackets");
		if (copy(host, NAME_MAX_, s + 1) == -1)
			return addr_fail(a, "host name too long");
		if (check_host(a, host) == -1)
			return -1;
		return parse_port(a, p + 1, port, zero_ok);
	}
	if ((p = strrchr(s, ':')) == NULL) {
		if (need_host)
			return addr_fail(a, "expected HOST:PORT, got '%s'", s);
		host[0] = '\0';
		return parse_port(a, s, port, zero_ok);
	}
	*p = '\0';
	if (strchr(s, ':') != NULL)
		return addr_fail(a, "IPv6 address must be in brackets: [%s]",
		    s);
	if (*s == '\0')
		return addr_fail(a, "empty host");
	if (copy(host, NAME_MAX_, s) == -1)
		return addr_fail(a, "host name too long");
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
			return addr_fail(a,
			    "CID any only makes sense to listen on");
		a->cid = VMADDR_CID_ANY;
	} else {
		a->cid = (uint32_t)addr_num(s, 0, UINT32_MAX - 1, &errstr);
		if (errstr != NULL)
			return addr_fail(a, "CID %s: %s",
			    *s ? s : "(empty)", errstr);
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
		return addr_fail(a, "expected CID:PORT, got '%s'", s);
	a->vport = (uint32_t)addr_num(s, 0, UINT32_MAX - 1, &errstr);
	if (errstr != NULL)
		return addr_fail(a, "port %s: %s", *s ? s : "(empty)", errstr);
	if (a->vport == 0 && !listen)
		return addr_fail(a, "port 0 needs a listen address");
	if (a->vport == 0)
		a->vport = VMADDR_PORT_ANY;
	return 0;
}

static int
parse_fdnum(struct addr *a, const char *s, int *fd)
{
	const char	*errstr;

	*fd = (int)addr_num(s, 0, 65535, &errstr);
	if (errstr != NULL)
		return addr_fail(a, "descriptor %s: %s", *s ? s : "(empty)",
		    errstr);
	return 0;
}

/* frame=u16be or frame=u32be: a stream's frame header. */
static int
parse_frame(struct addr *a, const char *v)
{
	if (strcasecmp(v, "u16be") == 0)
		a->wideframe = 0;
	else if (strcasecmp(v, "u32be") == 0)
		a->wideframe = 1;
	else
		return addr_fail(a, "option frame=%s: must be u16be or u32be",
		    v);
	return 0;
}

/*
 * exec:COMMAND[,seqpacket][,frame=F]: options only at the end, so commas
 * stay.
 */
static int
parse_cmd(struct addr *a, char *s)
{
	char	*p;

	while ((p = strrchr(s, ',')) != NULL) {
		if (strcasecmp(p + 1, "seqpacket") == 0)
			a->seqpacket = 1;
		else if (strncasecmp(p + 1, "frame=", 6) == 0 &&
		    (strcasecmp(p + 7, "u16be") == 0 ||
		    strcasecmp(p + 7, "u32be") == 0))
			(void)parse_frame(a, p + 7);
		else
			break;
		*p = '\0';
	}
	if (*s == '\0')
		return addr_fail(a, "exec needs a command");
	return copy(a->cmd, sizeof(a->cmd), s) == -1 ?
	    addr_fail(a, "command longer than %zu bytes",
	    sizeof(a->cmd) - 1) : 0;
}

/* fd:N, fd:R:W, or fd:NAME (a name systemd gave: FileDescriptorName=). */
static int
parse_fd(struct addr *a, char *s)
{
	char	*p;

	if (!isdigit((unsigned char)*s) && *s != '-' && *s != '+') {
		if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
		    "OPQRSTUVWXYZ0123456789._-") != strlen(s))
			return addr_fail(a, "descriptor %s: invalid", s);
		return copy(a->fdname, sizeof(a->fdname), s) == -1 ?
		    addr_fail(a, "descriptor name too long") : 0;
	}
	if ((p = strchr(s, ':')) != NULL)
		*p++ = '\0';
	if (parse_fdnum(a, s, &a->rfd) == -1)
		return -1;
	a->wfd = a->rfd;
	if (p != NULL && parse_fdnum(a, p, &a->wfd) == -1)
		return -1;
	return 0;
}

static int
parse_params(struct addr *a, const struct addr_type *t, char *s)
{
	switch (t->params) {
	case P_NONE:
		if (s != NULL)
			return addr_fail(a, "%s takes no parameters", t->name);
		return 0;
	case P_IFNAME:
		/* tun: or tun:NAME; the kernel picks a name for "" */
		if (s != NULL && copy(a->ifname, sizeof(a->ifname), s) == -1)
			return addr_fail(a, "device name longer than %d bytes",
			    IFNAMSIZ - 1);
		if (strchr(a->ifname, '/') != NULL)
			return addr_fail(a, "device name %s: invalid",
			    a->ifname);
		return 0;
	default:
		if (s == NULL || *s == '\0')
			return addr_fail(a, "%s needs parameters after ':'",
			    t->name);
		break;
	}
	switch (t->params) {
	case P_HOSTPORT:
		return parse_hostport(a, s, a->host, a->port, 1, 0);
	case P_LISTENPORT:
		return parse_hostport(a, s, a->host, a->port, 0, 1);
	case P_PATH:
		if (copy(a->path, sizeof(a->path), s) == -1)
			return addr_fail(a, "path longer than %zu bytes",
			    sizeof(a->path) - 1);
		if (strcmp(s, "@") == 0)
			return addr_fail(a, "empty abstract socket name");
		return 0;
	case P_VSOCK:
		return parse_vsock(a, s, 0);
	case P_VSOCKLISTEN:
		return parse_vsock(a, s, 1);
	case P_CMD:
		return parse_cmd(a, s);
	case P_FD:
		return parse_fd(a, s);
	default:
		return 0;
	}
}

static int
parse_int(struct addr *a, const char *name, const char *v, long long min,
    long long max, long long *n)
{
	const char	*errstr;

	*n = addr_num(v, min, max, &errstr);
	if (errstr != NULL)
		return addr_fail(a, "option %s=%s: %s", name, v, errstr);
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
		return addr_fail(a, "option addr=%s: expected A.B.C.D/LEN", v);
	*slash++ = '\0';
	if (inet_pton(AF_INET, v, &in) != 1)
		return addr_fail(a, "option addr=%s: not an IPv4 address", v);
	a->prefix = (int)addr_num(slash, 0, 32, &errstr);
	if (errstr != NULL)
		return addr_fail(a, "option addr: prefix /%s: %s",
		    slash, errstr);
	a->ifaddr = in.s_addr;
	a->hasaddr = 1;
	return 0;
}

/*
 * A string option's value, v, kept as where it lies in the spec (base is
 * the copy being parsed): paths and names, checked for what no file or
 * name can hold.
 */
static int
parse_str(struct addr *a, struct optstr *o, const char *name, const char *v,
    const char *base)
{
	const char	*c;

	if (*v == '\0')
		return addr_fail(a, "option %s needs a value (%s=...)", name,
		    name);
	for (c = v; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return addr_fail(a, "option %s: control character",
			    name);
	o->off = (uint16_t)(v - base);
	o->len = (uint16_t)strlen(v);
	return 0;
}

char *
addr_str(const struct addr *a, struct optstr o, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", (int)o.len, a->spec + o.off);
	return buf;
}

/* alpn=PROTO[:PROTO...]: each 1..255 bytes, 255 in all on the wire. */
static int
check_alpn(struct addr *a, const char *v)
{
	size_t	 n, wire = 0;

	for (;;) {
		n = strcspn(v, ":");
		if (n == 0 || n > 255)
			return addr_fail(a, "option alpn: a protocol name of "
			    "%zu bytes (1 to 255)", n);
		wire += n + 1;
		if (v[n] == '\0')
			break;
		v += n + 1;
	}
	if (wire > 255)
		return addr_fail(a, "option alpn: longer than 255 bytes in all");
	return 0;
}

/* A session bound in seconds (stall-timeout, frame-timeout); 0: none. */
static int
parse_bound(struct addr *a, const char *name, const char *v, long long *ms)
{
	const char	*errstr;

	if (strcmp(v, "0") == 0) {
		*ms = 0;
		return 0;
	}
	*ms = addr_ms(v, IDLE_MAX, &errstr);
	if (errstr != NULL)
		return addr_fail(a, "option %s=%s: %s (seconds, 0 for none)",
		    name, v, errstr);
	return 0;
}

/*
 * One NAME[=VALUE] option into a: its row in addr_opts says where a flag
 * or a ranged number goes; the rest is a case each.  Long, as a table of
 * cases is: each case is a few lines, and one place lists them all.
 */
static int
parse_option(struct addr *a, const struct addr_type *t, char *s,
    const char *base)
{
	const struct addr_opt	*o = NULL;
	const char		*errstr;
	char			*v, hint[64], where[256];
	long long		 n;
	size_t			 i;

	if ((v = strchr(s, '=')) != NULL)
		*v++ = '\0';
	for (i = 0; s[i] != '\0'; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	for (i = 0; i < addr_nopts; i++)
		if (strcmp(s, addr_opts[i].name) == 0)
			o = &addr_opts[i];
	if (o == NULL)
		return addr_fail(a, "unknown option '%s'%s", s,
		    addr_near(s, 1, hint, sizeof(hint)));
	if (!(t->opts & o->on))
		return addr_fail(a, "option %s does not apply to this address "
		    "(only to %s)", s, addr_applies(o, where, sizeof(where)));
	if (o->value == 1 && v == NULL)
		return addr_fail(a, "option %s needs a value (%s=...)", s, s);
	if (!o->value && v != NULL)
		return addr_fail(a, "option %s takes no value", s);

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
			return addr_fail(a, "option dev=%s: bad interface name",
			    v);
		return 0;
	case O_ADDR:
		return parse_ifaddr(a, v);
	case O_RETRY:		/* retry: forever; retry=N: N attempts */
		if (v == NULL) {
			a->retry = RETRY_FOREVER;
			return 0;
		}
		if (parse_int(a, s, v, 1, INT32_MAX, &n) == -1)
			return -1;
		a->retry = (int)n;
		return 0;
	case O_INTERVAL:
		a->interval_ms = addr_ms(v, INTERVAL_MAX, &errstr);
		if (errstr != NULL)
			return addr_fail(a, "option interval=%s: %s", v, errstr);
		return 0;
	case O_MUXPING:
		a->muxping_ms = addr_ms(v, HANDSHAKE_MAX, &errstr);
		if (errstr != NULL)
			return addr_fail(a, "option mux-ping=%s: %s", v, errstr);
		return 0;
	case O_HANDSHAKE:
		a->handshake_ms = addr_ms(v, HANDSHAKE_MAX, &errstr);
		if (errstr != NULL)
			return addr_fail(a, "option handshake-timeout=%s: %s", v,
			    errstr);
		return 0;
	case O_STALL:
		return parse_bound(a, s, v, &a->stall_ms);
	case O_FRAMEWAIT:
		return parse_bound(a, s, v, &a->frame_ms);
	case O_CERT:
		return parse_str(a, &a->cert, s, v, base);
	case O_KEY:
		return parse_str(a, &a->key, s, v, base);
	case O_CAFILE:
		return parse_str(a, &a->cafile, s, v, base);
	case O_SNI:
		if (parse_str(a, &a->sni, s, v, base) == -1)
			return -1;
		return check_host(a, v) == -1 ? addr_fail(a, "option sni=%s: "
		    "not a host name", v) : 0;
	case O_ALPN:
		if (parse_str(a, &a->alpn, s, v, base) == -1)
			return -1;
		return check_alpn(a, v);
	case O_PSK:
		return parse_str(a, &a->psk, s, v, base);
	case O_FRAME:
		return parse_frame(a, v);
	default:
		return 0;
	}
}

/* What tls: and tls-listen: need, and what excludes what. */
static int
tls_check(struct addr *a)
{
	if (a->handshake_ms == 0)
		a->handshake_ms = HANDSHAKE_DEF;
	if (a->key.len && !a->cert.len)
		return addr_fail(a, "option key needs cert");
	if (a->psk.len && (a->cert.len || a->cafile.len))
		return addr_fail(a, "option psk excludes cert, key and cafile");
	if (a->psk.len && !a->verify)
		return addr_fail(a, "option psk excludes verify=0 (a key is "
		    "always checked)");
	if (a->listen && !a->cert.len && !a->psk.len)
		return addr_fail(a, "tls-listen needs cert= (and key=) or psk=");
	if (!a->verify && a->cafile.len)
		return addr_fail(a, "options verify=0 and cafile exclude each "
		    "other (cafile= is what the server is checked against)");
	if (a->listen && (!a->verify || a->sni.len))
		return addr_fail(a, "options %s apply to a client (tls:)",
		    a->sni.len ? "sni" : "verify");
	return 0;
}

/*
 * What messages call a: the spec's first n bytes (TYPE:PARAMETERS, its
 * options left out), or an exec:'s whole command; cut short with "...".
 */
static void
make_label(struct addr *a, const struct addr_type *t, size_t n)
{
	if (t->params == P_CMD)
		n = strlen(a->spec);
	if (n < sizeof(a->label)) {
		memcpy(a->label, a->spec, n);
		a->label[n] = '\0';
		return;
	}
	memcpy(a->label, a->spec, sizeof(a->label) - 4);
	strlcpy(a->label + sizeof(a->label) - 4, "...", 4);
}

/*
 * a serves many sessions in this process (multi, or a mux address whose
 * carriers' streams are sessions: dgrelay.c decides): multi's defaults.
 */
void
addr_multi(struct addr *a)
{
	a->multi = a->many = 1;
	if (a->maxpeers == 0)
		a->maxpeers = MULTI_MAX_DEF;
	/* a crowd of peers: one that stalls is ended, not waited on */
	if (a->stall_ms == -1)
		a->stall_ms = STALL_DEF;
	if (a->frame_ms == -1)
		a->frame_ms = FRAMEWAIT_DEF;
}

/*
 * The rules between a's options, and the defaults that follow from them.
 * 0, or -1 with a->err.
 */
static int
options_agree(struct addr *a)
{
	if (a->maxchildren && !a->fork)
		return addr_fail(a, "option max-children needs fork");
	/* a keepalive setting means keepalive */
	if (a->keepidle || a->keepintvl || a->keepcnt)
		a->keepalive = 1;
	if (a->interval_ms && !a->retry)
		return addr_fail(a, "option interval needs retry");
	if (a->retry && a->interval_ms == 0)
		a->interval_ms = INTERVAL_DEF;
	if (a->maxpeers && !a->multi && !a->mux)
		return addr_fail(a, "option max-peers needs multi or mux");
	if (a->fork && a->multi)
		return addr_fail(a, "options fork and multi exclude each other");
	if (a->mux && a->fork)
		return addr_fail(a, "options mux and fork exclude each other");
	if (a->mux && a->seqpacket)
		return addr_fail(a, "option mux needs a stream; seqpacket "
		    "carries datagrams already");
	if (a->muxping_ms && !a->mux)
		return addr_fail(a, "option mux-ping needs mux");
	if (a->mux && a->muxping_ms == 0)
		a->muxping_ms = MUXPING_DEF;
	if (a->multi)
		addr_multi(a);
	a->many = a->fork || a->multi;
	if (a->fork && a->maxchildren == 0)
		a->maxchildren = FORK_MAX_DEF;	/* bounded unless told */
	if (a->tls && tls_check(a) == -1)
		return -1;
	if (a->wideframe && a->seqpacket)
		return addr_fail(a, "option frame applies to a stream; with "
		    "seqpacket there is no framing");
	if (a->many && a->kind == ADDR_FD && a->rfd != a->wfd)
		return addr_fail(a, "option %s needs fd:N, not fd:R:W",
		    a->fork ? "fork" : "multi");
	return 0;
}

int
addr_parse(const char *spec, struct addr *a)
{
	const struct addr_type	*t = NULL;
	char			 buf[SPEC_MAX], *params, *opts, *o, hint[64];
	size_t			 i, n;

	memset(a, 0, sizeof(*a));
	a->spec = spec;
	a->nodelay = 1;
	a->rfd = a->wfd = -1;
	a->stall_ms = a->frame_ms = -1;
	if (copy(buf, sizeof(buf), spec) == -1)
		return addr_fail(a, "address longer than %d bytes",
		    SPEC_MAX - 1);

	n = strcspn(buf, ":,");
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	params = buf[n] == ':' ? buf + n + 1 : NULL;
	opts = buf[n] == ',' ? buf + n + 1 : NULL;
	buf[n] = '\0';
	for (i = 0; i < addr_ntypes; i++)
		if (strcmp(buf, addr_types[i].name) == 0)
			t = &addr_types[i];
	if (t == NULL)
		return addr_fail(a, "unknown address type '%s'%s", buf,
		    addr_near(buf, 0, hint, sizeof(hint)));
	a->kind = t->kind;
	a->listen = t->listen;
	a->tls = (t->opts & ON_TLS) != 0;
	a->verify = 1;

	if (params != NULL && t->params != P_CMD &&
	    (o = strchr(params, ',')) != NULL) {
		*o = '\0';
		opts = o + 1;
	}
	make_label(a, t, params != NULL ? (size_t)(params - buf) +
	    strlen(params) : strlen(buf));
	if (parse_params(a, t, params) == -1)
		return -1;
	while (opts != NULL) {
		o = strsep(&opts, ",");
		if (*o == '\0')
			return addr_fail(a, "empty option");
		if (parse_option(a, t, o, buf) == -1)
			return -1;
	}
	return options_agree(a);
}
