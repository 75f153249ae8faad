/*
 * dgrelay: relay datagrams between two endpoints given as socat-style
 * addresses, framing them (2-byte big-endian length) on stream sides.
 *
 * This file owns the command line, signals and the lifecycle: parse both
 * addresses, open them in order, drop privileges, relay, report, exit.
 * It is the only place that exits.
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

volatile sig_atomic_t sig_quit;
volatile sig_atomic_t sig_stats;
volatile sig_atomic_t sig_child;

/*
 * Messages go out in one write(2) each: children of a fork share stderr,
 * and a line written in pieces would interleave with theirs.
 */
static void __attribute__((format(printf, 2, 0)))
vlog(int with_errno, const char *fmt, va_list ap)
{
	char	 line[4096];	/* an address (< 1024) and its reason fit */
	int	 e = errno, n, m;

	n = snprintf(line, sizeof(line), "%s: ", getprogname());
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		return;
	n = (size_t)(n + m) >= sizeof(line) - 1 ? (int)sizeof(line) - 2 :
	    n + m;
	if (with_errno)
		n += snprintf(line + n, sizeof(line) - n, ": %s", strerror(e));
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	for (m = 0; m < n; m++)		/* one message, one line */
		if ((unsigned char)line[m] < 0x20 || line[m] == 0x7f)
			line[m] = '?';
	line[n++] = '\n';
	(void)write(STDERR_FILENO, line, (size_t)n);
	errno = e;
}

void
logx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
}

void
logerr(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(1, fmt, ap);
	va_end(ap);
}

/* A bad flag or address: one line, exit 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
bad(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
	exit(2);
}

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: dgrelay [-hSuUVv] [-b count] [-s size] [-t idle] "
	    "[-Z user] ADDRESS ADDRESS\n");
	exit(status);
}

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_stats = 1;
	else if (sig == SIGCHLD)
		sig_child = 1;
	else
		sig_quit = 1;
}

static void
signals(int forking)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);	/* a closed stream is an EPIPE */
	sa.sa_handler = on_signal;
	/* no SA_RESTART: a blocking accept or connect must see SIGTERM */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_flags = SA_RESTART;	/* counters on demand never interrupt */
	sigaction(SIGUSR1, &sa, NULL);
	if (forking) {		/* reap children; an exec: command is reaped
				 * by waitpid at the end, no wakeup needed */
		sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
		sigaction(SIGCHLD, &sa, NULL);
	}
}

void
signals_hold(sigset_t *old, sigset_t *waitmask, int child)
{
	sigset_t	 block;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	if (child)
		sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, old);
	*waitmask = *old;
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGUSR1);
	if (child)
		sigdelset(waitmask, SIGCHLD);
}

/* -t: seconds with up to three decimals, as milliseconds. */
static long long
parse_idle(const char *s)
{
	const char	*errstr;
	long long	 ms;

	ms = addr_ms(s, IDLE_MAX, &errstr);
	if (errstr != NULL)
		bad("idle %s: %s", s, errstr);
	return ms;
}

/* Open address i: connect, or listen and accept.  -1: reason in a->err. */
static int
open_side(struct addr *a, struct side *s, int verbose)
{
	if (sock_open(a, s) == -1)
		return -1;
	if (a->retry) {
		redial_init(a, s, verbose);	/* the relay connects it */
		return 0;
	}
	if (verbose && a->kind == ADDR_EXEC)
		logx("%s: started, pid %d", a->spec, (int)a->pid);
	if (verbose && a->kind == ADDR_TUN)
		logx("%s: device %s", a->spec, s->local);
	else if (verbose && s->local[0] != '\0' && s->peer[0] == '\0')
		logx("%s: listening on %s", a->spec, s->local);
	if (verbose && s->peer[0] != '\0')
		logx("%s: connected to %s", a->spec, s->peer);
	if (a->lfd == -1)
		return 0;
	if (sock_accept(a, s) == -1)
		return -1;
	if (verbose)
		logx("%s: connection from %s", a->spec, s->peer);
	return 0;
}

/*
 * Close address i; for exec:, say how the command ended (-v), and make a
 * command that failed by itself a failure of ours.
 */
static int
close_side(struct addr *a, struct side *s, int verbose, int status)
{
	int	 st, failed;

	sock_close(a, s);
	if (a->kind == ADDR_EXEC && a->pid > 0 && !a->reaped) {
		logx("%s: could not end the command, pid %d: %s", a->spec,
		    (int)a->pid, a->err);
		return 1;
	}
	if (a->kind != ADDR_EXEC || !a->reaped)
		return status;
	st = a->status;
	failed = !a->ended && (WIFSIGNALED(st) || WEXITSTATUS(st) != 0);
	if (failed || verbose) {
		if (WIFSIGNALED(st))
			logx("%s: killed by signal %d", a->spec, WTERMSIG(st));
		else
			logx("%s: exit %d", a->spec, WEXITSTATUS(st));
	}
	return failed && status == 0 ? 1 : status;
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
	strlcpy(err, l->a->err, size);
	return -1;
}

/*
 * Relay between the sides (one may be pending: opened by the relay with
 * l, once the TLS server side's peer is authenticated); report.  Returns
 * the exit status.
 */
static int
relay(const struct relay_opts *o, struct side s[2], int stats,
    struct later *l)
{
	struct counters	 c[2];
	char		 err[NAME_MAX_ * 2];
	int		 status;

	memset(c, 0, sizeof(c));
	status = relay_run(o, s, c, err, sizeof(err), l != NULL ? open_later :
	    NULL, l);
	if (status != 0)
		logx("%s", err);
	if (stats || o->verbose)
		relay_print_counters(c, s);
	return status;
}

/*
 * fork on address fi: listen there; the parent serves until a signal, and
 * each child opens the other address and relays with its peer.
 */
static int
run_forking(const struct relay_opts *o, struct addr a[2], struct side s[2],
    int fi, const struct runas *ra, int stats)
{
	static char	 name[32];
	struct later	 l = { &a[!fi], o->verbose };
	int		 status, oi = !fi;

	if (sock_open(&a[fi], &s[fi]) == -1) {
		logx("%s: %s", a[fi].spec, a[fi].err);
		sock_close(&a[fi], &s[fi]);
		return 1;
	}
	if (o->verbose) {
		logx("%s: listening on %s", a[fi].spec, s[fi].local);
		logx("%s: at most %d children at once (max-children=N)",
		    a[fi].spec, a[fi].maxchildren);
	}
	if (ra != NULL && exec_runas(ra) == -1) {
		logerr("-Z %s", ra->name);
		sock_close(&a[fi], &s[fi]);
		return 1;
	}
	if ((status = serve_run(&a[fi], o, &s[fi], stats)) != -1) {
		sock_close(&a[fi], &s[fi]);
		return status;
	}
	/* a child: messages say which */
	snprintf(name, sizeof(name), "dgrelay[%d]", (int)getpid());
	setprogname(name);
	a[fi].unlink = 0;		/* the parent's socket path */
	if (a[fi].tls && !a[oi].listen) {
		/* opened once the TLS peer is authenticated */
		sock_pending(&a[oi], &s[oi]);
		status = relay(o, s, stats, &l);
	} else if (open_side(&a[oi], &s[oi], o->verbose) == -1) {
		logx("%s: %s", a[oi].spec, a[oi].err);
		status = 1;
	} else
		status = relay(o, s, stats, NULL);
	status = close_side(&a[oi], &s[oi], o->verbose, status);
	sock_close(&a[fi], &s[fi]);
	free(s[fi].pre);
	return status;
}

/*
 * multi on address mi: listen there, drop privileges, and serve every
 * peer in this process (multi.c).
 */
static int
run_multi(const struct relay_opts *o, struct addr a[2], struct side s[2],
    int mi, const struct runas *ra, int stats)
{
	int	 status;

	if (sock_open(&a[mi], &s[mi]) == -1) {
		logx("%s: %s", a[mi].spec, a[mi].err);
		sock_close(&a[mi], &s[mi]);
		return 1;
	}
	if (a[mi].lfd == -1) {
		logx("%s: option multi needs a listening socket", a[mi].spec);
		sock_close(&a[mi], &s[mi]);
		return 1;
	}
	if (o->verbose) {
		logx("%s: listening on %s", a[mi].spec, s[mi].local);
		logx("%s: at most %d sessions at once (max-peers=N)",
		    a[mi].spec, a[mi].maxpeers);
	}
	a[!mi].runas = ra;
	if (ra != NULL && exec_runas(ra) == -1) {
		logerr("-Z %s", ra->name);
		sock_close(&a[mi], &s[mi]);
		return 1;
	}
	status = multi_run(a, s, mi, o, stats);
	sock_close(&a[mi], &s[mi]);
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

/* -Z user: who dgrelay (and an exec: command) becomes. */
static void
parse_user(const char *name, struct runas *ra)
{
	struct passwd	*pw;

	if ((pw = getpwnam(name)) == NULL)
		bad("user %s: no such user", name);
	if (strlcpy(ra->name, pw->pw_name, sizeof(ra->name)) >=
	    sizeof(ra->name))
		bad("user %s: name too long", name);
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
}

/*
 * The flags, into o; -S into *stats, -Z into *user (its name stays empty
 * without).  Returns optind.
 */
static int
parse_flags(int argc, char *argv[], struct relay_opts *o, int *stats,
    struct runas *user)
{
	const char	*errstr;
	int		 ch;

	memset(o, 0, sizeof(*o));
	o->count = COUNT_DEF;
	o->size = SIZE_DEF;
	o->dir[0] = o->dir[1] = 1;
	while ((ch = getopt(argc, argv, ":b:hSs:t:uUVvZ:")) != -1) {
		switch (ch) {
		case 'b':
			o->count = addr_num(optarg, 1, COUNT_MAX, &errstr);
			if (errstr != NULL)
				bad("count %s: %s", optarg, errstr);
			break;
		case 'h':
			usage(0);
		case 'S':
			*stats = 1;
			break;
		case 's':
			o->size = addr_num(optarg, 1, FRAME_MAX, &errstr);
			if (errstr != NULL)
				bad("size %s: %s", optarg, errstr);
			break;
		case 't':
			o->idle_ms = parse_idle(optarg);
			break;
		case 'u':
			o->dir[1] = 0;
			break;
		case 'U':
			o->dir[0] = 0;
			break;
		case 'V':
			printf("dgrelay %s\n", DGRELAY_VERSION);
			exit(0);
		case 'v':
			o->verbose++;
			break;
		case 'Z':
			parse_user(optarg, user);
			break;
		case ':':
			bad("-%c needs a value", optopt);
		default:
			bad("-%c: unknown flag (-h for usage)", optopt);
		}
	}
	if (!o->dir[0] && !o->dir[1])
		bad("-u and -U together relay nothing");
	return optind;
}

int
main(int argc, char *argv[])
{
	struct relay_opts	 o;
	struct addr		 a[2];
	struct side		 s[2];
	struct runas		 user, *ra;
	struct later		 later = { NULL, 0 };
	int			 i, j, isopen[2] = { 0, 0 }, failed = -1;
	int			 stats = 0, status = 1;

	setprogname("dgrelay");
	memset(&user, 0, sizeof(user));
	i = parse_flags(argc, argv, &o, &stats, &user);
	ra = user.name[0] != '\0' ? &user : NULL;
	argc -= i;
	argv += i;
	if (argc != 2)
		usage(2);
	for (i = 0; i < 2; i++)
		if (addr_parse(argv[i], &a[i]) == -1)
			bad("%.256s%s: %s", argv[i], strlen(argv[i]) > 256 ?
			    "..." : "", a[i].err);
	if (a[0].many && a[1].many)
		bad("%s: fork or multi on one address only", argv[1]);
	/* a session's bounds, from whichever address gave them */
	for (i = 0; i < 2; i++) {
		if (a[i].stall_ms >= 0)
			o.stall_ms = a[i].stall_ms;
		if (a[i].frame_ms >= 0)
			o.frame_ms = a[i].frame_ms;
	}
	for (i = 0; i < 2; i++)
		if (a[i].multi && (a[!i].kind == ADDR_TUN ||
		    a[!i].kind == ADDR_FD || a[!i].kind == ADDR_STDIO ||
		    a[!i].listen))
			bad("%s: with multi on the other address, this one is "
			    "opened once per peer: udp, tcp, unix, "
			    "unix-seqpacket, vsock or exec", argv[!i]);
		else if (a[i].multi && a[!i].kind != ADDR_UDP &&
		    a[!i].kind != ADDR_EXEC)
			a[!i].dial = 1;	/* connected without blocking */
	/* address i is read only by direction i: 1>2 reads the first */
	for (i = 0; i < 2; i++)
		if (!o.dir[i] && a[i].kind == ADDR_UDP && a[i].listen &&
		    !a[i].fork)
			bad("%s: never read with %s, so it never learns its "
			    "peer", argv[i], i == 0 ? "-U" : "-u");

	/* keys and certificates are read now, before -Z */
	for (i = 0; i < 2; i++)
		if (a[i].tls && tls_setup(&a[i]) == -1) {
			logx("%s: %s", a[i].spec, a[i].err);
			tls_cleanup(&a[0]);
			tls_cleanup(&a[1]);
			return 1;
		}
	raise_nofile();
	signals(a[0].fork || a[1].fork);
	(void)fd_activation();	/* systemd's sockets: not for exec: */
	if (a[0].fork || a[1].fork || a[0].multi || a[1].multi) {
		status = a[0].fork || a[1].fork ?
		    run_forking(&o, a, s, a[1].fork, ra, stats) :
		    run_multi(&o, a, s, a[1].multi, ra, stats);
		for (i = 0; i < 2; i++)
			tls_cleanup(&a[i]);
		return status;
	}
	/* both open before the drop: a command started now runs as -Z too;
	 * but an address beside a TLS server is opened by the relay, after
	 * the drop, once the server's peer is authenticated */
	a[0].runas = a[1].runas = ra;
	for (i = 0; i < 2; i++)
		if (a[i].tls && a[i].listen && !a[!i].listen) {
			later.a = &a[!i];
			later.verbose = o.verbose;
			a[!i].runas = NULL;	/* it runs as -Z already */
		}
	for (i = 0; i < 2 && failed == -1; i++) {
		j = later.a == &a[0] ? 1 - i : i;	/* the server first */
		isopen[j] = 1;		/* the failed one may hold a path */
		if (later.a == &a[j])
			sock_pending(&a[j], &s[j]);
		else if (open_side(&a[j], &s[j], o.verbose) == -1)
			failed = j;
	}
	if (failed != -1) {
		if (sig_quit)
			status = 0;	/* asked to stop while waiting */
		else
			logx("%s: %s", a[failed].spec, a[failed].err);
	} else if (ra != NULL && exec_runas(ra) == -1)
		logerr("-Z %s", ra->name);
	else
		status = relay(&o, s, stats, later.a != NULL ? &later : NULL);
	for (i = 0; i < 2; i++)
		if (isopen[i])
			status = close_side(&a[i], &s[i], o.verbose, status);
	for (i = 0; i < 2; i++)
		tls_cleanup(&a[i]);
	return status;
}
