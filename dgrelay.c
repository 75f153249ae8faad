/*
 * dgrelay: relay datagrams between two endpoints given as socat-style
 * addresses, framing them (2-byte big-endian length) on stream sides.
 *
 * This file owns the command line and the lifecycle: parse both
 * addresses, open them in order, drop privileges, relay (the pair here;
 * fork.c and multi.c for many peers), all on one loop (loop.c), report,
 * exit.  It is the only place that exits.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

/* A bad flag or address: one line, exit 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
bad(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	logv(0, fmt, ap);
	va_end(ap);
	exit(2);
}

static const char	 synopsis[] = "usage: dgrelay [-hJnSuUVv] [-b count] "
    "[-i seconds] [-M address] [-s size]\n"
    "               [-t idle] [-Z user] ADDRESS ADDRESS\n";

static void __attribute__((noreturn))
usage(void)
{
	fputs(synopsis, stderr);
	exit(2);
}

/* -h, --help: the synopsis, every flag, address type and option. */
static void __attribute__((noreturn))
help(void)
{
	printf("%s\n"
	    "Relays datagrams between two addresses; on a stream side each\n"
	    "datagram is a frame: a 2-byte big-endian length, then the bytes.\n"
	    "\n"
	    "flags:\n"
	    "  -b count    datagrams a read or write takes at once (1..%d; %d)\n"
	    "  -h, --help  this help; dgrelay(1) is the whole reference\n"
	    "  -i seconds  the counters on stderr every so many seconds\n"
	    "  -J          the counters as JSON lines (at the end, SIGUSR1, -i)\n"
	    "  -M address  Prometheus metrics on a tcp-listen or unix-listen\n"
	    "              address (GET /metrics)\n"
	    "  -n          parse and check both addresses, open nothing, exit\n"
	    "  -S          the counters on stderr at the end (SIGUSR1: now)\n"
	    "  -s size     the largest datagram, bytes (1..%d; %d)\n"
	    "  -t idle     end after so many seconds without a datagram\n"
	    "              (0.001..%lld, three decimals at most)\n"
	    "  -u          relay only first to second\n"
	    "  -U          relay only second to first\n"
	    "  -V, --version  the version\n"
	    "  -v          say what happens; -vv: every datagram\n"
	    "  -Z user     become user once the addresses are open\n"
	    "\n", synopsis, COUNT_MAX, COUNT_DEF, FRAME_MAX, SIZE_DEF,
	    IDLE_MAX / 1000);
	addr_help(stdout);
	exit(0);
}

static void __attribute__((noreturn))
version(void)
{
	printf("dgrelay %s\n", DGRELAY_VERSION);
	exit(0);
}

/* Seconds with up to three decimals, as milliseconds: -t, -i. */
static long long
parse_secs(int flag, const char *s)
{
	const char	*errstr;
	long long	 ms;

	ms = addr_ms(s, IDLE_MAX, &errstr);
	if (errstr != NULL)
		bad("-%c %s: %s: must be seconds, 0.001..%lld, at most three "
		    "decimals", flag, s, errstr, IDLE_MAX / 1000);
	return ms;
}

/* A whole number for flag, in min..max. */
static long long
parse_count(int flag, const char *s, long long min, long long max)
{
	const char	*errstr;
	long long	 n;

	n = addr_num(s, min, max, &errstr);
	if (errstr != NULL)
		bad("-%c %s: %s: must be %lld..%lld", flag, s, errstr, min,
		    max);
	return n;
}

/* Open address a as s: connect, or listen and accept.  -1: s->err says
 * why. */
static int
open_side(const struct addr *a, struct side *s, int verbose)
{
	if (sock_open(a, s) == -1)
		return -1;
	if (a->retry) {
		redial_init(a, s, verbose);	/* the relay connects it */
		return 0;
	}
	if (verbose && s->cmd != NULL)
		logx("%s: started, pid %d", a->label, (int)exec_pid(s->cmd));
	if (verbose && a->kind == ADDR_TUN)
		logx("%s: device %s", a->label, s->local);
	else if (verbose && s->local[0] != '\0' && s->peer[0] == '\0')
		logx("%s: listening on %s", a->label, s->local);
	if (verbose && s->peer[0] != '\0')
		logx("%s: connected to %s", a->label, s->peer);
	if (s->lfd == -1)
		return 0;
	if (sock_accept(a, s, s) == -1)
		return -1;
	if (verbose)
		logx("%s: connection from %s", a->label, s->peer);
	return 0;
}

/*
 * Close the sides that are open (isopen[i]); end their exec: commands on
 * the loop, both at once, and say how each ended (-v), making a command
 * that failed by itself a failure of ours.  Returns the exit status.
 */
static int
close_sides(struct loop *l, struct addr a[2], struct side s[2],
    const int isopen[2], int verbose, int status)
{
	int	 i;

	for (i = 0; i < 2; i++) {
		if (!isopen[i])
			continue;
		sock_close(&a[i], &s[i]);
		if (s[i].cmd != NULL)
			exec_end(l, s[i].cmd, 1, verbose);
	}
	exec_wait(l);
	for (i = 0; i < 2; i++)
		if (isopen[i] && s[i].cmd != NULL) {
			status = exec_report(s[i].cmd, verbose, status);
			exec_free(s[i].cmd);
			s[i].cmd = NULL;
		}
	return status;
}

/* An address opened by the relay, once the TLS peer before it is known. */
struct later {
	struct addr	*a;
	int		 verbose;
};

static int
open_later(void *arg, struct side *s, char *err, size_t size)
{
	struct later	*l = arg;

	if (open_side(l->a, s, l->verbose) == 0)
		return 0;
	strlcpy(err, s->err, size);
	return -1;
}

/* The pair, as the loop's driver sees it. */
struct pair {
	struct loop	*l;
	struct counters	 own[2];
	struct counters	*c;		/* own, or a fork child's shared slot */
	struct side	*s;
	struct pool	*pool;
	const struct relay_opts *o;
};

static void
pair_over(struct relay *rl, void *arg)
{
	struct pair	*p = arg;

	(void)rl;
	loop_stop(p->l);
}

static void
pair_report(void *arg, struct report *r)
{
	struct pair	*p = arg;
	int		 i;

	r->mode = "pair";
	memcpy(r->c, p->c, sizeof(r->c));
	r->haspool = 1;
	r->lent = p->pool->lent;
	r->peak = p->pool->peak;
	r->cap = p->pool->max;
	for (i = 0; i < 2; i++)
		redial_figures(&p->s[i], r, i);
}

static void
pair_stats(void *arg)
{
	struct pair	*p = arg;

	if (p->o->json)
		report_say(pair_report, p, "signal");
	if (!p->o->json || p->o->stats)
		counters_print(p->c, p->s);
}

/*
 * Relay between the sides on l (one may be pending: opened by the relay
 * with lt, once the TLS server side's peer is authenticated); report.
 * Returns the exit status.
 */
static int
relay(struct loop *l, const struct relay_opts *o, struct side s[2],
    int stats, struct later *lt)
{
	struct pair	 p;
	struct pool	 pool;
	struct relay	*rl;
	char		 err[NAME_MAX_ * 2], why[64];
	int		 status = 1;

	memset(&p, 0, sizeof(p));
	p.l = l;
	p.s = s;
	p.pool = &pool;
	p.o = o;
	if ((p.c = fork_child_counters()) == NULL)
		p.c = p.own;
	pool_init(&pool, relay_slab(o), o->size + FRAME_HDR, POOL_MAX);
	metrics_serve(l, pair_report, &p);
	if ((rl = relay_open(l, &pool, o, s, p.c, err, sizeof(err),
	    pair_over, &p)) != NULL) {
		if (lt != NULL)
			relay_opener(rl, open_later, lt);
		l->on_stats = pair_stats;
		l->arg = &p;
		if (loop_run(l) == -1) {
			snprintf(why, sizeof(why), "epoll_pwait: %s",
			    strerror(errno));
			relay_abort(rl, why);
		}
		l->on_stats = NULL;
		status = relay_end(rl);
	}
	if (status != 0)
		logx("%s", err);
	if (o->json)
		report_say(pair_report, &p, "exit");
	if (stats || (o->verbose && !o->json))
		counters_print(p.c, s);
	metrics_serve(l, NULL, NULL);
	pool_free(&pool);
	return status;
}

/*
 * fork on address fi: listen there; the parent serves until a signal, and
 * each child opens the other address and relays with its peer.
 */
static int
run_forking(struct loop *l, const struct relay_opts *o, struct addr a[2],
    struct side s[2], int fi, const struct runas *ra, int stats)
{
	static char	 name[32];
	struct later	 lt = { &a[!fi], o->verbose };
	int		 status, oi = !fi, isopen[2] = { 0, 0 };

	if (sock_open(&a[fi], &s[fi]) == -1) {
		logx("%s: %s", a[fi].label, s[fi].err);
		sock_close(&a[fi], &s[fi]);
		return 1;
	}
	if (o->verbose) {
		logx("%s: listening on %s", a[fi].label, s[fi].local);
		logx("%s: at most %d children at once (max-children=N)",
		    a[fi].label, a[fi].maxchildren);
	}
	if (ra != NULL && runas_become(ra) == -1) {
		sock_close(&a[fi], &s[fi]);
		return 1;
	}
	if ((status = fork_run(l, &a[fi], o, &s[fi], stats)) != -1) {
		sock_close(&a[fi], &s[fi]);
		return status;
	}
	/* a child: messages say which */
	snprintf(name, sizeof(name), "dgrelay[%d]", (int)getpid());
	setprogname(name);
	s[fi].unlink = 0;		/* the parent's socket path */
	isopen[0] = isopen[1] = 1;
	if (a[fi].tls && !a[oi].listen) {
		/* opened once the TLS peer is authenticated */
		sock_pending(&a[oi], &s[oi]);
		status = relay(l, o, s, stats, &lt);
	} else if (open_side(&a[oi], &s[oi], o->verbose) == -1) {
		logx("%s: %s", a[oi].label, s[oi].err);
		status = 1;
	} else
		status = relay(l, o, s, stats, NULL);
	status = close_sides(l, a, s, isopen, o->verbose, status);
	free(s[fi].pre);
	return status;
}

/* Open listening address i for run_multi (-v says where); 0 or 1. */
static int
multi_listen(const struct relay_opts *o, struct addr *a, struct side *s,
    const char *what)
{
	if (sock_open(a, s) == -1) {
		logx("%s: %s", a->label, s->err);
		sock_close(a, s);
		return 1;
	}
	if (s->lfd == -1) {
		logx("%s: %s needs a listening socket", a->label, what);
		sock_close(a, s);
		return 1;
	}
	if (o->verbose)
		logx("%s: listening on %s", a->label, s->local);
	return 0;
}

/*
 * multi on address mi: listen there (or, a mux address that connects,
 * dial its carrier from the loop), drop privileges, and serve every peer
 * in this process (multi.c).  A listening mux on the other address (a
 * reverse tunnel) listens now too, before -Z.
 */
static int
run_multi(struct loop *l, const struct relay_opts *o, struct addr a[2],
    struct side s[2], int mi, const struct runas *ra, int stats)
{
	int	 status, oi = !mi, i;

	for (i = 0; i < 2; i++)
		sock_side_init(&a[i], &s[i]);
	if (a[mi].listen && multi_listen(o, &a[mi], &s[mi], a[mi].mux ?
	    "option mux" : "option multi") != 0)
		return 1;
	if (a[oi].listen && multi_listen(o, &a[oi], &s[oi], "option mux")) {
		sock_close(&a[mi], &s[mi]);
		return 1;
	}
	if (o->verbose)
		logx("%s: at most %d sessions at once (max-peers=N)",
		    a[mi].label, a[mi].maxpeers);
	/* the names of the addresses dialled, looked up now: in the loop, a
	 * slow resolver would stall every session */
	for (i = 0; i < 2; i++)
		if (sock_resolve_once(&a[i]) == -1) {
			logx("%s: %s", a[i].label, a[i].err);
			status = 1;
			goto out;
		}
	a[oi].runas = ra;
	if (ra != NULL && runas_become(ra) == -1) {
		status = 1;
		goto out;
	}
	status = multi_run(l, a, s, mi, o, stats);
out:
	for (i = 0; i < 2; i++) {
		sock_forget_names(&a[i]);
		sock_close(&a[i], &s[i]);
	}
	return status;
}

/* Many peers need many descriptors: the soft limit up to the hard one. */
static void
raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * The flags, into o; -S into *stats, -n into *dry, -Z into *user (its
 * name stays empty without), -M to metrics.c.  Returns optind.  Long as
 * a switch is: a case a flag, all in one place.
 */
static int
parse_flags(int argc, char *argv[], struct relay_opts *o, int *stats,
    int *dry, struct runas *user)
{
	const char	*why;
	int		 ch;

	memset(o, 0, sizeof(*o));
	o->count = COUNT_DEF;
	o->size = SIZE_DEF;
	o->dir[0] = o->dir[1] = 1;
	/* the long forms socat and nc users type, among the flags */
	for (ch = 1; ch < argc && argv[ch][0] == '-' &&
	    strcmp(argv[ch], "--") != 0; ch++) {
		if (strcmp(argv[ch], "--help") == 0)
			help();
		if (strcmp(argv[ch], "--version") == 0)
			version();
		if (argv[ch][1] == '-')
			bad("%s: unknown flag (-h for help)", argv[ch]);
	}
	while ((ch = getopt(argc, argv, ":b:hi:JM:nSs:t:uUVvZ:")) != -1) {
		switch (ch) {
		case 'b':
			o->count = (size_t)parse_count('b', optarg, 1,
			    COUNT_MAX);
			break;
		case 'h':
			help();
		case 'i':
			o->stats_ms = parse_secs('i', optarg);
			break;
		case 'J':
			o->json = 1;
			break;
		case 'M':
			if ((why = metrics_parse(optarg)) != NULL)
				bad("-M %.256s: %s", optarg, why);
			break;
		case 'n':
			*dry = 1;
			break;
		case 'S':
			*stats = 1;
			o->stats = 1;
			break;
		case 's':
			o->size = (size_t)parse_count('s', optarg, 1,
			    FRAME_MAX);
			break;
		case 't':
			o->idle_ms = parse_secs('t', optarg);
			break;
		case 'u':
			o->dir[1] = 0;
			break;
		case 'U':
			o->dir[0] = 0;
			break;
		case 'V':
			version();
		case 'v':
			o->verbose++;
			break;
		case 'Z':
			if ((why = runas_lookup(optarg, user)) != NULL)
				bad("-Z %s: %s", optarg, why);
			break;
		case ':':
			bad("-%c needs a value (-h for help)", optopt);
		default:
			bad("-%c: unknown flag (-h for help)", optopt);
		}
	}
	if (!o->dir[0] && !o->dir[1])
		bad("-u and -U together relay nothing");
	return optind;
}

/*
 * The rules between the two addresses (usage errors name both, or the
 * one the rule is about); a session's bounds, from whichever gave them.
 */
static void
check_pair(struct relay_opts *o, struct addr a[2], char *argv[])
{
	int	 i;

	if (a[0].many && a[1].many)
		bad("%s %s: fork or multi on one address only", argv[0],
		    argv[1]);
	for (i = 0; i < 2; i++) {
		if (a[i].stall_ms >= 0)
			o->stall_ms = a[i].stall_ms;
		if (a[i].frame_ms >= 0)
			o->frame_ms = a[i].frame_ms;
	}
	/*
	 * mux: beside multi, the mux address carries the sessions' streams
	 * (dialled, or listening: a reverse tunnel); else its carriers'
	 * streams are the sessions (the first address's, when both have
	 * mux), served as multi serves its peers
	 */
	if (!a[0].multi && !a[1].multi && (a[0].mux || a[1].mux))
		addr_multi(&a[a[0].mux ? 0 : 1]);
	for (i = 0; i < 2; i++)
		if (a[i].multi && (a[!i].kind == ADDR_TUN ||
		    a[!i].kind == ADDR_FD || a[!i].kind == ADDR_STDIO ||
		    (a[!i].listen && !a[!i].mux)))
			bad("%s: with %s on the other address, this one is "
			    "opened once per %s: udp, tcp, unix, "
			    "unix-seqpacket, vsock, exec, or a mux address%s",
			    argv[!i], a[i].mux ? "mux" : "multi",
			    a[i].mux ? "stream" : "peer", a[i].mux ?
			    " (to open streams from its peers instead, give "
			    "it multi)" : "");
		else if (a[i].multi && a[!i].kind != ADDR_UDP &&
		    a[!i].kind != ADDR_EXEC && !a[!i].listen)
			a[!i].dial = 1;	/* connected without blocking */
	for (i = 0; i < 2; i++)
		if (a[i].mux && !a[i].multi && a[i].maxpeers)
			bad("%s: max-peers goes on %s, whose sessions the "
			    "streams are", argv[i], argv[!i]);
	for (i = 0; i < 2; i++)
		if (a[i].mux && !a[i].listen)
			a[i].dial = 1;	/* the carrier: without blocking */
		else if (a[i].mux)
			a[i].many = 1;	/* carriers: many, accepted on the loop */
	/* address i is read only by direction i: 1>2 reads the first */
	for (i = 0; i < 2; i++)
		if (!o->dir[i] && a[i].kind == ADDR_UDP && a[i].listen &&
		    !a[i].fork)
			bad("%s: never read with %s, so it never learns its "
			    "peer", argv[i], i == 0 ? "-U" : "-u");
}

/*
 * The pair: both addresses opened before the drop (a command started now
 * runs as -Z too), but an address beside a TLS server is opened by the
 * relay, after the drop, once the server's peer is authenticated.
 */
static int
run_pair(struct loop *l, const struct relay_opts *o, struct addr a[2],
    struct side s[2], const struct runas *ra, int stats)
{
	struct later	 later = { NULL, 0 };
	int		 i, j, isopen[2] = { 0, 0 }, failed = -1, status = 1;

	a[0].runas = a[1].runas = ra;
	for (i = 0; i < 2; i++)
		if (a[i].tls && a[i].listen && !a[!i].listen) {
			later.a = &a[!i];
			later.verbose = o->verbose;
			a[!i].runas = NULL;	/* it runs as -Z already */
		}
	for (i = 0; i < 2 && failed == -1; i++) {
		j = later.a == &a[0] ? 1 - i : i;	/* the server first */
		isopen[j] = 1;		/* the failed one may hold a path */
		if (later.a == &a[j])
			sock_pending(&a[j], &s[j]);
		else if (open_side(&a[j], &s[j], o->verbose) == -1)
			failed = j;
	}
	if (failed != -1) {
		if (loop_signalled())
			status = 0;	/* asked to stop while waiting */
		else
			logx("%s: %s", a[failed].label, s[failed].err);
	} else if (ra == NULL || runas_become(ra) == 0)
		status = relay(l, o, s, stats, later.a != NULL ? &later : NULL);
	return close_sides(l, a, s, isopen, o->verbose, status);
}

int
main(int argc, char *argv[])
{
	struct relay_opts	 o;
	struct addr		 a[2];
	struct side		 s[2];
	struct runas		 user, *ra;
	struct loop		 l;
	int			 i, stats = 0, dry = 0, status;

	setprogname("dgrelay");
	memset(&user, 0, sizeof(user));
	i = parse_flags(argc, argv, &o, &stats, &dry, &user);
	ra = user.name[0] != '\0' ? &user : NULL;
	argc -= i;
	argv += i;
	if (argc != 2) {
		if (argc == 0)
			usage();
		bad("%d address%s given, 2 needed: dgrelay [flags] ADDRESS "
		    "ADDRESS (-h for help)", argc, argc == 1 ? "" : "es");
	}
	for (i = 0; i < 2; i++)
		if (addr_parse(argv[i], &a[i]) == -1)
			bad("%.256s%s: %s", argv[i], strlen(argv[i]) > 256 ?
			    "..." : "", a[i].err);
	check_pair(&o, a, argv);
	if (dry)	/* -n: both parse and agree; nothing is opened */
		return 0;
	/* keys and certificates are read now, before -Z */
	for (i = 0; i < 2; i++)
		if (a[i].tls && tls_setup(&a[i]) == -1) {
			logx("%s: %s", a[i].spec, a[i].err);
			tls_cleanup(&a[0]);
			tls_cleanup(&a[1]);
			return 1;
		}
	raise_nofile();
	loop_signals();
	if (loop_init(&l) == -1) {
		logerr("epoll_create1");
		return 1;
	}
	l.stats_ms = o.stats_ms;	/* -i */
	(void)fd_activation();	/* systemd's sockets: not for exec: */
	if (metrics_open(o.verbose) == -1) {	/* before -Z: a low port */
		loop_free(&l);
		return 1;
	}
	if (a[0].fork || a[1].fork)
		status = run_forking(&l, &o, a, s, a[1].fork, ra, stats);
	else if (a[0].multi || a[1].multi)
		status = run_multi(&l, &o, a, s, a[1].multi, ra, stats);
	else
		status = run_pair(&l, &o, a, s, ra, stats);
	metrics_close(1);
	loop_free(&l);
	for (i = 0; i < 2; i++)
		tls_cleanup(&a[i]);
	return status;
}
