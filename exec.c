/*
 * exec.c: exec:COMMAND, a command on a socketpair.  /bin/sh -c COMMAND
 * runs with one end as its standard input and output (SOCK_STREAM, or
 * SOCK_SEQPACKET with option seqpacket); the other end is our side.
 * Never prints, never exits.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

/*
 * exec: /bin/sh -c COMMAND with one end of a socketpair as its standard
 * input and output; its standard error stays ours.
 */
int
exec_open(struct addr *a, struct side *s)
{
	sigset_t	 none;
	int		 sv[2], type;

	type = a->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == -1)
		return sock_syserr(a, "socketpair");
	if ((a->pid = fork()) == -1) {
		a->pid = 0;
		close(sv[0]);
		close(sv[1]);
		return sock_syserr(a, "fork");
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

/*
 * The command of exec: ends with its socket (it saw end of input), or is
 * told to: SIGTERM, then SIGKILL after 2 seconds.  Its status lands in
 * a->status.
 */
void
exec_reap(struct addr *a)
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
