/*
 * multi.h: multi's sessions and listener, shared by multi.c and muxsess.c
 * (mux's carriers: their streams as sessions).  Private to those two.
 */
#ifndef MULTI_H
#define MULTI_H

#include <netinet/in.h>

#define CTL_BYTES	(CMSG_SPACE(sizeof(struct in6_pktinfo)) + \
			    CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int)))
#define CAUSES		16	/* failure causes remembered (sess_say) */
#define CARRIERS_MAX	1024	/* carriers at once, a mux listener */
/* a session is a stream of a carrier: its lines with -vv, not -v */
#define MUXED(m)	((m)->a->mux || (m)->oa->mux)

/*
 * The UDP socket of an ended session, kept open for QUARANTINE_MS: its
 * local port is not given to another session while the backend may still
 * answer the old one (a late reply is read and dropped, counted), as a
 * NAT keeps a mapping.
 */
struct quar {
	struct watch	 w;
	struct multi	*m;
	long long	 due;
	struct quar	*next;
};

/* A cause of sessions' failures: said once a second, the rest counted. */
struct cause {
	char		 why[128];	/* the line's last part: the reason */
	time_t		 at;		/* last said */
	uint64_t	 more;		/* not said since */
};

/* A carrier dialled (mux on a connecting address), again with retry. */
struct mdial {
	struct multi		*m;
	const struct addr	*a;		/* NULL: none */
	int			 in;		/* its streams are sessions */
	struct carrier		*c;		/* up (or its TLS under way) */
	struct side		 cs;		/* its attempt */
	struct watch		 cw;
	struct timer		 ct;		/* the next attempt */
	uint64_t		 dials;		/* connections made */
};

struct sess {
	struct multi	*m;
	struct relay	*rl;
	struct side	 s[2];
	struct counters	 c[2];
	const struct addr *oa;		/* the other address, as parsed
					 * (shared: its state is in s[]) */
	char		 err[NAME_MAX_ * 2];
	struct sess	*prev, *next;	/* every session */
	struct sess	*dnext;		/* over: freed after this pass */
	struct sess	*bnext;		/* blocked on the shared socket */
	struct pool_group *src;		/* its source address's */
	int		 blocked;
	int		 dead;		/* on the dead list */
};

struct multi {
	struct addr		*a;		/* the listening address */
	const struct addr	*oa;		/* the other, as parsed */
	int			 li;		/* the listening one's index */
	const struct relay_opts	*o;
	struct relay_opts	 so;		/* the sessions' (compact) */
	struct side		*ls;		/* the listening side */
	struct loop		*loop;
	struct pool		 pool;
	struct watch		 lw;		/* the listening socket */
	int			 udp;
	int			 family;	/* udp: of the listening socket */
	int			 gro;		/* udp: runs come coalesced */
	struct ptab		 peers;		/* udp: sessions by address */
	struct ptab		 sources;	/* pool groups by address, no port */
	struct sess		*all, *dead, *blocked;
	size_t			 n;		/* sessions now */
	uint64_t		 served;	/* sessions made */
	uint64_t		 kdrops;	/* udp: the listening
						 * socket's, by the kernel */
	uint64_t		 dropped;	/* udp: new peers' datagrams
						 * over max-peers */
	uint64_t		 full[PUSH_POOL + 1];	/* udp: datagrams
						 * a session could not take,
						 * by the cause */
	int			 status;	/* a failure of the listener */
	time_t			 warned, errwarned;
	struct cause		 causes[CAUSES];
	struct quar		*qhead, *qtail;	/* oldest first */
	size_t			 nquar;
	struct timer		 qtimer;
	uint64_t		 late;		/* replies to ended sessions,
						 * dropped */
	int			 udp_other;	/* the other address is udp: */
	unsigned		 ncause;	/* the next to replace */
	struct timer		 pause;		/* out of descriptors: a second */
	int			 paused;
	struct counters		 total[2];	/* of ended sessions */
	/* mux (muxsess.c): carriers accepted on the multi address, on the
	 * other address (a reverse tunnel), those lost this pass; the ones
	 * dialled */
	struct carrier		**cars, **ocars, **deadcars;
	size_t			 ncars, capcars, nocars, capocars;
	size_t			 ndead, capdead;
	struct side		*os;		/* the other's listener */
	struct watch		 ow;
	struct mdial		 din, dout;
	uint64_t		 carried;	/* carriers accepted or dialled */
	uint64_t		 sopened, saccepted;	/* streams of carriers
						 * freed */
	uint64_t		 downdrops;	/* sessions not opened: down */
	int			 stopping;	/* the end: no listener again */
	/* udp: one batch of the listener's */
	uint8_t			*buf;
	struct mmsghdr		*msg;
	struct iovec		*iov;
	struct sockaddr_storage	*from;
	uint8_t			*ctl;
};

/* multi.c: a session for the peer on side ps (NULL: said, ps the
 * caller's); the listener watched as there is room. */
struct sess	*sess_new(struct multi *m, const struct side *ps);
void		 listener_arm(struct multi *m);

/*
 * muxsess.c: mux_start(m, os) dials the carriers to dial and watches the
 * other address's listening side os (a reverse tunnel); carrier_in(m, s)
 * makes an accepted connection a carrier; mux_ready(m): a session's
 * stream can be had now; mux_stream(m, os) opens it as side os (0, or -1
 * said in os); mux_reap frees the carriers lost this pass; mux_stop says
 * Go Away on every carrier; mux_end writes and frees them.
 */
void		 mux_start(struct multi *m, struct side *os);
void		 carrier_in(struct multi *m, struct side *s);
void		 mux_arm(struct multi *m);
int		 mux_ready(struct multi *m);
int		 mux_stream(struct multi *m, struct side *os);
void		 mux_reap(struct multi *m);
void		 mux_stop(struct multi *m);
void		 mux_end(struct multi *m);
void		 mux_report(struct multi *m, struct report *r);
void		 mux_print(struct multi *m);

#endif /* MULTI_H */
