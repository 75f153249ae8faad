/*
 * exec.c: exec:COMMAND, a command on a socketpair.  /bin/sh -c COMMAND
 * runs with one end as its standard input and output (SOCK_STREAM, or
 * SOCK_SEQPACKET with option seqpacket); the other end is our side.
 * Under -Z the command runs as that user, like dgrelay itself.
 * Never prints, never exits (but in the child it forks).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

int
exec_runas(const struct runas *r)
{
	if (initgroups(r->name, r->gid) == -1 || setgid(r->gid) == -1 ||
	    setuid(r->uid) == -1)
		return -1;
	/* no way back: a root that could regain privileges did not drop */
	if (r->uid != 0 && (setuid(0) != -1 || getuid() != r->uid ||
	    geteuid() != r->uid)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* In the child: the command, as a shell would start it. */
static void __attribute__((noreturn))
exec_child(struct addr *a, int fd)
{
	sigset_t	 none;

	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (a->runas != NULL && exec_runas(a->runas) == -1) {
		logerr("%s: -Z %s", a->spec, a->runas->name);
		_exit(126);
	}
	if (dup2(fd, 0) == -1 || dup2(fd, 1) == -1)
		_exit(126);
	execl("/bin/sh", "sh", "-c", a->cmd, (char *)NULL);
	_exit(127);
}

int
exec_open(struct addr *a, struct side *s)
{
	int	 sv[2], type;

	type = a->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == -1)
		return sock_syserr(a, "socketpair");
	if ((a->pid = fork()) == -1) {
		a->pid = 0;
		close(sv[0]);
		close(sv[1]);
		return sock_syserr(a, "fork");
	}
	if (a->pid == 0)
		exec_child(a, sv[1]);
	close(sv[1]);
	return sock_side(a, s, sv[0], type);
}

/* Wait up to ms for the command to end; 1 once it is reaped. */
static int
reaped_within(struct addr *a, int ms)
{
	struct timespec	 ts = { 0, 10 * 1000000L };
	pid_t		 r;

	for (; ms >= 0; ms -= 10) {
		if ((r = waitpid(a->pid, &a->status, WNOHANG)) != 0) {
			if (r == -1)
				a->status = 0;	/* reaped elsewhere */
			return 1;
		}
		if (ms > 0)
			nanosleep(&ts, NULL);
	}
	return 0;
}

/*
 * The command ends with its socket (it saw end of input), or is told to:
 * SIGTERM, then SIGKILL after 2 seconds.  Every wait is bounded: a command
 * dgrelay may not signal, or that will not die, is reported in a->err and
 * left behind.
 */
void
exec_reap(struct addr *a)
{
	a->err[0] = '\0';
	if (reaped_within(a, 500))	/* a moment to end by itself */
		goto done;
	a->ended = 1;			/* we ended it: not its failure */
	if (kill(a->pid, SIGTERM) == -1 && errno != ESRCH) {
		sock_syserr(a, "kill");
		return;
	}
	if (reaped_within(a, 2000))
		goto done;
	if (kill(a->pid, SIGKILL) == -1 && errno != ESRCH) {
		sock_syserr(a, "kill");
		return;
	}
	if (!reaped_within(a, 2000)) {
		addr_fail(a, "pid %d did not end after SIGKILL", (int)a->pid);
		return;
	}
done:
	a->reaped = 1;
}
