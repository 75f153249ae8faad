/*
 * multi.h: multi's sessions and listener, shared by multi.c and muxsess.c
 * (mux's carriers: their streams as sessions).  Private to those two.
 */
#ifndef MULTI_H
#define MULTI_H

#include <netinet/in.h>

#define CTL_BYTES	(CMSG_SPACE(sizeof(struct in6_pktinfo)) + \
			    CMSG_SPACE(sizeof(uint32_t)))
#define CAUSES		16	/* failure causes remembered (sess_say) */

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
	/* mux: the carriers accepted, and those lost this pass */
	struct carrier		**cars;
	size_t			 ncars, capcars;
	struct carrier		**deadcars;
	size_t			 ndead, capdead;
	uint64_t		 carried;	/* carriers accepted */
	/* mux on the other address: the one carrier, dialled */
	struct carrier		*out;
	struct side		 cs;		/* its attempt */
	struct watch		 cw;
	struct timer		 ct;		/* the next attempt */
	uint64_t		 redials;	/* carriers dialled after the first */
	uint64_t		 downdrops;	/* sessions not opened: down */
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

/* muxsess.c: an accepted connection as a carrier; the dialled carrier. */
void		 carrier_in(struct multi *m, struct side *s);
void		 dial_start(struct multi *m);
void		 dial_due(struct timer *t);
void		 dial_ready(struct watch *w, uint32_t ev);

#endif /* MULTI_H */
