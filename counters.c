/*
 * counters.c: what each direction counts, said one way everywhere: the
 * lines of -S, -v and SIGUSR1 (a pair's, a fork child's, and multi's
 * totals), and their sums.  The fields are struct counters (dgrelay.h);
 * this table is the one place that names them.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dgrelay.h"

static const struct {
	size_t		 off;
	const char	*label;		/* -S */
	const char	*key;		/* -J, -M */
} fields[] = {
	{ offsetof(struct counters, dgrams), "datagrams", "datagrams" },
	{ offsetof(struct counters, bytes), "bytes", "bytes" },
	{ offsetof(struct counters, oversize), "oversize", "oversize" },
	{ offsetof(struct counters, senderr), "send errors", "send_errors" },
	{ offsetof(struct counters, truncated), "truncated", "truncated" },
	{ offsetof(struct counters, otherpeer), "other peer", "other_peer" },
	{ offsetof(struct counters, unsent), "unsent", "unsent" },
	{ offsetof(struct counters, empty), "empty dropped", "empty_dropped" },
	{ offsetof(struct counters, down), "dropped while down",
	    "dropped_while_down" },
	{ offsetof(struct counters, stalled), "stalled", "stalled" },
	{ offsetof(struct counters, slowframe), "slow frames", "slow_frames" },
	{ offsetof(struct counters, kdrops), "dropped by the kernel",
	    "kernel_drops" },
};
#define NFIELDS	(sizeof(fields) / sizeof(fields[0]))

struct proc_figures procfig;

static uint64_t *
field(struct counters *c, size_t i)
{
	return (uint64_t *)((char *)c + fields[i].off);
}

static uint64_t
value(const struct counters *c, size_t i)
{
	return *(const uint64_t *)((const char *)c + fields[i].off);
}

int
counters_field(size_t i, const struct counters *c, uint64_t *v,
    const char **key, const char **label)
{
	if (i >= NFIELDS)
		return -1;
	*v = value(c, i);
	*key = fields[i].key;
	*label = fields[i].label;
	return 0;
}

void
counters_add(struct counters *t, const struct counters *c)
{
	size_t	 i;

	for (i = 0; i < NFIELDS; i++)
		*field(t, i) += value(c, i);
}

void
counters_print(const struct counters c[2], const struct side s[2])
{
	char	 line[1024];
	size_t	 i, n;
	int	 d;

	for (d = 0; d < 2; d++) {
		n = 0;
		for (i = 0; i < NFIELDS && n < sizeof(line); i++)
			n += (size_t)snprintf(line + n, sizeof(line) - n,
			    "%s%llu %s", i ? ", " : "",
			    (unsigned long long)value(&c[d], i),
			    fields[i].label);
		logx("%s: %s", d ? "2>1" : "1>2", line);
	}
	for (d = 0; s != NULL && d < 2; d++)
		redial_print(&s[d]);
}
