/*
 * addr.h: the parser's tables (address types, options), shared by
 * addr.c, which parses with them, and help.c, which lists them (-h) and
 * finds the nearest name to a misspelt one.  Private to those two.
 */
#ifndef ADDR_H
#define ADDR_H

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

/* Which options an address type takes: groups, one bit each. */
#define ON_IP		0x01	/* udp, tcp: both modes (mark, dev) */
#define ON_CONNECT	0x02	/* udp, tcp: connecting (bind) */
#define ON_LISTEN	0x04	/* udp, tcp: listening (reuseport) */
#define ON_SOCKET	0x08	/* any socket we make, and fd: (buffers) */
#define ON_TCP		0x10	/* nodelay */
#define ON_FORK		0x20	/* listen addresses, fd: (fork) */
#define ON_SEQPACKET	0x40	/* exec, vsock: SOCK_SEQPACKET */
#define ON_TUN		0x80
#define ON_RETRY	0x100	/* connecting stream and seqpacket sockets */
#define ON_TLS		0x200	/* tls, tls-listen */
#define ON_PATHLISTEN	0x400	/* unix-listen, unix-seqpacket-listen */
#define ON_FRAME	0x800	/* what may be a stream: frame= */
#define ON_MUX		0x1000	/* tcp-listen, tcp: mux */

#define IP_CONNECT	(ON_IP | ON_CONNECT | ON_SOCKET)
#define IP_LISTEN	(ON_IP | ON_LISTEN | ON_SOCKET | ON_FORK)

/*
 * Every address type: its name, what it takes after the colon and which
 * option groups apply.  A new type is a row here, an enum addr_kind and an
 * opener in sock.c's table.
 */
struct addr_type {
	const char	*name;
	enum addr_kind	 kind;
	int		 listen;
	enum params	 params;
	int		 opts;		/* ON_* groups */
};

enum opt_id { O_BIND, O_REUSEPORT, O_RCVBUF, O_SNDBUF, O_MARK, O_DEV,
	O_NODELAY, O_FORK, O_MAXCHILDREN, O_SEQPACKET, O_TAP, O_MTU, O_UP,
	O_ADDR, O_KEEPALIVE, O_KEEPIDLE, O_KEEPINTVL, O_KEEPCNT, O_USERTIMEOUT,
	O_MPTCP, O_RETRY, O_INTERVAL, O_MULTI, O_MAXPEERS, O_CERT, O_KEY,
	O_CAFILE, O_VERIFY, O_SNI, O_ALPN, O_PSK, O_HANDSHAKE, O_MAXHS, O_STALL,
	O_FRAMEWAIT, O_UNLINKEARLY, O_FRAME, O_MUX, O_MUXPING };

#define SPECIAL	((size_t)-1)	/* an option with its own syntax */
#define OPTIONAL	2		/* value: =VALUE may be left out */
#define INT(f)	offsetof(struct addr, f)

/*
 * A flag sets its int field to 1; a number is checked against min..max
 * into its int field; SPECIAL options are parsed by name below.
 */
struct addr_opt {
	const char	*name;
	enum opt_id	 id;
	int		 on;
	int		 value;		/* 1: takes =VALUE, 0: none, OPTIONAL */
	size_t		 off;
	long long	 min, max;
};

extern const struct addr_type	addr_types[];
extern const struct addr_opt	addr_opts[];
extern const size_t		addr_ntypes, addr_nopts;

/* addr_near(s, options, buf, size): " (did you mean NAME?)" for the type
 * (or option) nearest s, or "" when none is near. */
const char *addr_near(const char *s, int options, char *buf, size_t size);

/* addr_applies(o, buf, size): the names of the types o applies to. */
const char *addr_applies(const struct addr_opt *o, char *buf, size_t size);

#endif /* ADDR_H */
