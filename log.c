/*
 * log.c: messages, below everything else.  Each is one line on stderr in
 * one write(2): children of a fork share stderr, and a line written in
 * pieces would interleave with theirs.  Control characters an address or
 * a peer put in a message are shown as '?'.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

void
logv(int with_errno, const char *fmt, va_list ap)
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
	logv(0, fmt, ap);
	va_end(ap);
}

void
logerr(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	logv(1, fmt, ap);
	va_end(ap);
}

int
log_due(time_t *last)
{
	time_t	 now = time(NULL);

	if (now == *last)
		return 0;
	*last = now;
	return 1;
}
