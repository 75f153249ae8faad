/*
 * mux.h: the yamux protocol engine (mux.c), apart from sockets and the
 * loop, so that it links alone into its fuzzer.
 */
#ifndef MUX_H
#define MUX_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define MUX_VERSION	0
#define MUX_HDR		12
#define MUX_WINDOW	(256u << 10)	/* each stream's window, each way */
#define MUX_WINDOW_MAX	(1u << 20)	/* ... a busy stream's receive window */
#define MUX_GROWN_MAX	64		/* busy streams a carrier, at most */
#define MUX_OUT_MAX	(1u << 20)	/* a carrier's queued output, at most */
#define MUX_BUCKETS	4096

enum { MUX_DATA, MUX_WINDOW_UPDATE, MUX_PING, MUX_GOAWAY };
#define MUX_SYN	0x1
#define MUX_ACK	0x2
#define MUX_FIN	0x4
#define MUX_RST	0x8
enum { MUX_GOAWAY_NORMAL, MUX_GOAWAY_PROTO, MUX_GOAWAY_INTERNAL };

struct mux;

/* One stream of a carrier. */
struct mstream {
	struct mux	*m;
	uint32_t	 id;
	uint32_t	 sendwin;	/* bytes we may send */
	uint32_t	 recvwin;	/* bytes the peer may still send */
	size_t		 unread;	/* read by the owner, not yet granted */
	uint8_t		*rbuf;		/* received, not yet read */
	size_t		 rlen, rcap;
	int		 acked, needack;
	int		 lfin, rfin, rst;
	int		 gone;		/* out of the carrier's table */
	int		 grown;		/* its receive window is grown */
	int		 released;	/* the owner let go */
	void		*owner;		/* the owner's */
	struct mstream	*hnext;
};

struct mux {
	int		 dialer;	/* we dialled: odd IDs are ours */
	uint32_t	 next_id;
	size_t		 max_streams, nstreams;
	uint64_t	 salt;
	struct mstream	*bucket[MUX_BUCKETS];
	uint8_t		 hdr[MUX_HDR];	/* the frame being read */
	size_t		 hlen;
	uint8_t		*pay;		/* ... its payload, if not read whole
					 * (at most MUX_WINDOW_MAX) */
	size_t		 plen, pneed, pcap;
	size_t		 ngrown;	/* streams with a grown window */
	uint8_t		*out;		/* frames to send */
	size_t		 olen, ooff, ocap;
	int		 failed;	/* a protocol fault: Go Away sent */
	char		 why[96];
	int		 goaway_sent, goaway_recv;
	uint32_t	 goaway_code;
	int		 outwait;	/* a write came up short for the
					 * output's bound (the owner clears) */
	int		 ping_out;	/* a ping unanswered */
	uint32_t	 ping_id;
	uint64_t	 opened, accepted, refused;
	/* the owner's: a stream the peer opened; something to look at on
	 * a stream (bytes, window, FIN, RST) */
	void		(*on_accept)(void *, struct mstream *);
	void		(*on_event)(void *, struct mstream *);
	void		*arg;
};

/* mux_init(m, dialer, max_streams, salt): a carrier's engine; -1: ENOMEM. */
int	mux_init(struct mux *m, int dialer, size_t max_streams,
	    uint64_t salt);
/* mux_free(m): the engine and every stream still in it (an owner
 * releases its streams first, or never touches them again). */
void	mux_free(struct mux *m);

/* mux_input(m, in, n): the carrier's bytes; -1 once it failed (m->why). */
ssize_t	mux_input(struct mux *m, const uint8_t *in, size_t n);

/* mux_output(m, n): the bytes to send now; mux_sent(m, n): n went. */
const uint8_t *mux_output(struct mux *m, size_t *n);
void	mux_sent(struct mux *m, size_t n);

/* mux_open(m): a new stream (SYN sent), NULL with errno. */
struct mstream *mux_open(struct mux *m);

/* mux_ping(m): a Ping (1: the last is unanswered); mux_goaway(m). */
int	mux_ping(struct mux *m);
int	mux_goaway(struct mux *m);

/*
 * ms_read(s, buf, n): received bytes (0: the peer's FIN or RST; -1 EAGAIN);
 * ms_write(s, buf, n): bytes taken within the window and the carrier's
 * bound (-1 EAGAIN: wait for an event; EPIPE: closed); ms_close(s): FIN;
 * ms_release(s, reset): the owner lets go (RST unless both sides ended).
 */
ssize_t	ms_read(struct mstream *s, void *buf, size_t n);
struct iovec;
ssize_t	ms_writev(struct mstream *s, const struct iovec *iov, int niov);
/* ms_room(s): bytes ms_write would take now; ms_readable(s): ms_read
 * would not say EAGAIN. */
size_t	ms_room(const struct mstream *s);
int	ms_readable(const struct mstream *s);
ssize_t	ms_write(struct mstream *s, const void *buf, size_t n);
int	ms_close(struct mstream *s);
void	ms_release(struct mstream *s, int reset);

#endif /* MUX_H */
