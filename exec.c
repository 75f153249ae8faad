/*
 * exec.c: exec:COMMAND, a command on a socketpair.  /bin/sh -c COMMAND
 * runs with one end as its standard input and output (SOCK_STREAM, or
 * SOCK_SEQPACKET with option seqpacket); the other end is our side.
 * Under -Z the command runs as that user, like dgrelay itself.
 *
 * When its side closes, the command is ended on the loop's timers and
 * SIGCHLD (exec_end): a moment to end by itself, then SIGTERM, then
 * SIGKILL; nothing waits in place, so one session's command never stalls
 * the others.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

#define EXEC_SELF	500	/* ms a command has to end by itself */
#define EXEC_GRACE	2000	/* ... and after each signal */

/* A command exec: started, until it is over. */
struct cmd {
	pid_t		 pid;
	const char	*spec;		/* its address, for messages */
	int		 status;	/* its wait status, once reaped */
	int		 reaped;
	int		 ended;		/* dgrelay had to end it */
	int		 stage;		/* signals sent */
	int		 keep;		/* its owner reports and frees it */
	int		 verbose;
	char		 err[128];	/* why it could not be ended */
	struct loop	*l;
	struct child	 ch;
	struct timer	 tm;
	struct cmd	*next;		/* on the list of those ending */
};

/* In the child: the command, as a shell would start it. */
static void __attribute__((noreturn))
exec_child(const struct addr *a, int fd)
{
	sigset_t	 none;
	const char	*call;

	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (a->runas != NULL && (call = runas_switch(a->runas)) != NULL) {
		logerr("%s: -Z %s: %s", a->label, a->runas->name, call);
		_exit(126);
	}
	if (dup2(fd, 0) == -1 || dup2(fd, 1) == -1)
		_exit(126);
	execl("/bin/sh", "sh", "-c", a->cmd, (char *)NULL);
	_exit(127);
}

int
exec_open(const struct addr *a, struct side *s)
{
	struct cmd	*c;
	int		 sv[2], type;

	type = a->seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return sock_syserr(s, "calloc");
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == -1) {
		free(c);
		return sock_syserr(s, "socketpair");
	}
	if ((c->pid = fork()) == -1) {
		free(c);
		close(sv[0]);
		close(sv[1]);
		return sock_syserr(s, "fork");
	}
	if (c->pid == 0)
		exec_child(a, sv[1]);
	close(sv[1]);
	c->spec = a->label;
	s->cmd = c;
	return sock_side(a, s, sv[0], type);
}

/* The commands being ended; exec_wait runs the loop until none is. */
static struct cmd	*ending;
static int		 waiting;

static void
unlist(struct cmd *c)
{
	struct cmd	**pp;

	for (pp = &ending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

/* c is over: reaped, or given up on; an orphan says so and goes. */
static void
cmd_done(struct cmd *c)
{
	loop_untimer(c->l, &c->tm);
	loop_unchild(c->l, &c->ch);
	unlist(c);
	if (ending == NULL && waiting)
		loop_stop(c->l);
	if (c->keep)
		return;
	(void)exec_report(c, c->verbose, 0);
	free(c);
}

static void
cmd_reaped(struct child *ch, int status)
{
	struct cmd	*c = ch->arg;

	c->status = status;
	c->reaped = 1;
	cmd_done(c);
}

/*
 * The command had a moment to end by itself (it sees end of input), then
 * SIGTERM and a grace period, then SIGKILL and another: each step a
 * timer of the loop, never a wait in place.  One dgrelay may not signal,
 * or that outlives SIGKILL, is left behind, said in c->err.
 */
static void
cmd_step(struct timer *t)
{
	struct cmd	*c = t->arg;
	int		 sig = c->stage == 0 ? SIGTERM : SIGKILL;

	if (c->stage == 2) {
		snprintf(c->err, sizeof(c->err), "pid %d did not end after "
		    "SIGKILL", (int)c->pid);
		cmd_done(c);
		return;
	}
	c->ended = 1;			/* we ended it: not its failure */
	if (kill(c->pid, sig) == -1 && errno != ESRCH) {
		snprintf(c->err, sizeof(c->err), "kill pid %d: %s",
		    (int)c->pid, strerror(errno));
		cmd_done(c);
		return;
	}
	c->stage++;
	if (loop_timer(c->l, t, loop_now() + EXEC_GRACE) == -1) {
		snprintf(c->err, sizeof(c->err), "timer: %s", strerror(errno));
		cmd_done(c);
	}
}

void
exec_end(struct loop *l, struct cmd *c, int keep, int verbose)
{
	pid_t	 r;

	c->l = l;
	c->keep = keep;
	c->verbose = verbose;
	c->next = ending;
	ending = c;
	timer_init(&c->tm, cmd_step, c);
	if ((r = waitpid(c->pid, &c->status, WNOHANG)) != 0) {
		if (r == -1)
			c->status = 0;	/* reaped elsewhere */
		c->reaped = 1;
		cmd_done(c);
		return;
	}
	loop_child(l, &c->ch, c->pid, cmd_reaped, c);
	if (loop_timer(l, &c->tm, loop_now() + EXEC_SELF) == -1) {
		snprintf(c->err, sizeof(c->err), "timer: %s", strerror(errno));
		cmd_done(c);
	}
}

void
exec_wait(struct loop *l)
{
	waiting = 1;
	/* bounded by the commands' timers; a signal meanwhile (a shell
	 * signals the whole group) does not cut a command's grace short */
	while (ending != NULL)
		if (loop_run(l) == -1)
			break;
	waiting = 0;
}

int
exec_report(struct cmd *c, int verbose, int status)
{
	int	 st = c->status, failed;

	if (!c->reaped) {
		logx("%s: could not end the command, pid %d: %s", c->spec,
		    (int)c->pid, c->err);
		return 1;
	}
	failed = !c->ended && (WIFSIGNALED(st) || WEXITSTATUS(st) != 0);
	if (failed || verbose) {
		if (WIFSIGNALED(st))
			logx("%s: killed by signal %d", c->spec, WTERMSIG(st));
		else
			logx("%s: exit %d", c->spec, WEXITSTATUS(st));
	}
	return failed && status == 0 ? 1 : status;
}

void
exec_free(struct cmd *c)
{
	free(c);
}

pid_t
exec_pid(const struct cmd *c)
{
	return c->pid;
}
