/*
 * report.c: what a running dgrelay has done (struct report, filled by
 * whatever runs it), said for machines: one JSON object a line (-J), or
 * the Prometheus text format (-M, metrics.c serves it), with the usual
 * process figures.  The counter fields are named in counters.c's table.
 */
#include <sys/types.h>
#include <sys/resource.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dgrelay.h"

static const char *const dirkey[2] = { "first_to_second", "second_to_first" };
static const char *const dirlabel[2] = { "1>2", "2>1" };

/* The listener's drops, by cause: JSON key and metric label alike. */
static const struct {
	size_t		 off;
	const char	*key;
} drops[] = {
	{ offsetof(struct report, newpeer), "new_peer_limit" },
	{ offsetof(struct report, full[0]), "queue_full" },
	{ offsetof(struct report, full[1]), "over_share" },
	{ offsetof(struct report, full[2]), "pool_at_cap" },
	{ offsetof(struct report, full[3]), "ending" },
	{ offsetof(struct report, kdrops), "kernel" },
	{ offsetof(struct report, late), "late" },
};
#define NDROPS	(sizeof(drops) / sizeof(drops[0]))

static uint64_t
drop(const struct report *r, size_t i)
{
	return *(const uint64_t *)(const void *)((const char *)r +
	    drops[i].off);
}

/* An appending writer over a fixed buffer; overflow is remembered. */
struct out {
	char	*buf;
	size_t	 size, len;
	int	 over;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (o->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->len)
		o->over = 1;
	else
		o->len += (size_t)n;
}

void
report_json(const struct report *r, const char *event)
{
	char		 buf[4096];
	struct out	 o = { buf, sizeof(buf), 0, 0 };
	const char	*key, *label;
	uint64_t	 v;
	size_t		 i;
	int		 d;

	put(&o, "{\"event\":\"%s\",\"mode\":\"%s\"", event, r->mode);
	for (d = 0; d < 2; d++) {
		put(&o, ",\"%s\":{", dirkey[d]);
		for (i = 0; counters_field(i, &r->c[d], &v, &key, &label) == 0;
		    i++)
			put(&o, "%s\"%s\":%llu", i ? "," : "", key,
			    (unsigned long long)v);
		put(&o, "}");
	}
	if (r->listener) {
		put(&o, ",\"sessions\":{\"served\":%llu,\"running\":%llu}",
		    (unsigned long long)r->served,
		    (unsigned long long)r->running);
		put(&o, ",\"listener_dropped\":{");
		for (i = 0; i < NDROPS; i++)
			put(&o, "%s\"%s\":%llu", i ? "," : "", drops[i].key,
			    (unsigned long long)drop(r, i));
		put(&o, "},\"quarantined\":%llu",
		    (unsigned long long)r->quarantined);
	}
	if (r->mux)
		put(&o, ",\"mux\":{\"carriers\":%llu,\"carried\":%llu,"
		    "\"streams\":%llu,\"streams_opened\":%llu,"
		    "\"streams_accepted\":%llu,\"not_opened_while_down\":%llu}",
		    (unsigned long long)r->carriers,
		    (unsigned long long)r->carried,
		    (unsigned long long)r->streams,
		    (unsigned long long)r->sopened,
		    (unsigned long long)r->saccepted,
		    (unsigned long long)r->muxdown);
	if (r->haspool)
		put(&o, ",\"pool\":{\"lent\":%llu,\"peak\":%llu,\"cap\":%llu}",
		    (unsigned long long)r->lent, (unsigned long long)r->peak,
		    (unsigned long long)r->cap);
	for (d = 0; d < 2; d++)
		if (r->redials[d])
			put(&o, ",\"side%d\":{\"reconnects\":%llu,"
			    "\"down_seconds\":%lld.%03lld}", d + 1,
			    (unsigned long long)r->reconnects[d],
			    r->down_ms[d] / 1000, r->down_ms[d] % 1000);
	put(&o, ",\"tls\":{\"handshakes\":%llu,\"failed\":%llu}}",
	    (unsigned long long)procfig.tls_done,
	    (unsigned long long)procfig.tls_failed);
	if (o.over)
		logx("-J: counters too long for one line");
	else
		fprintf(stderr, "%s\n", buf);
}

void
report_say(void (*fill)(void *, struct report *), void *arg,
    const char *event)
{
	struct report	 r;

	memset(&r, 0, sizeof(r));
	fill(arg, &r);
	report_json(&r, event);
}

/* HELP and TYPE of one metric. */
static void
head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric of one sample, without labels. */
static void
one(struct out *o, const char *name, const char *type, const char *help,
    uint64_t v)
{
	head(o, name, type, help);
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* The process's own figures, as Prometheus's client libraries give them. */
static void
process_metrics(struct out *o)
{
	struct rusage	 ru;
	struct rlimit	 rl;
	struct dirent	*de;
	DIR		*dir;
	FILE		*f;
	char		 line[1024], *p;
	unsigned long long start = 0, btime = 0, vsz = 0, rss = 0;
	long		 fds = 0, tck = sysconf(_SC_CLK_TCK);
	long		 page = sysconf(_SC_PAGESIZE);
	int		 i;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		head(o, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.");
		put(o, "process_cpu_seconds_total %.6f\n",
		    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%llu %llu", &vsz, &rss) == 2) {
			head(o, "process_virtual_memory_bytes", "gauge",
			    "Virtual memory size in bytes.");
			put(o, "process_virtual_memory_bytes %llu\n",
			    vsz * (unsigned long long)page);
			head(o, "process_resident_memory_bytes", "gauge",
			    "Resident memory size in bytes.");
			put(o, "process_resident_memory_bytes %llu\n",
			    rss * (unsigned long long)page);
		}
		fclose(f);
	}
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(dir)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		closedir(dir);
		head(o, "process_open_fds", "gauge",
		    "Number of open file descriptors.");
		put(o, "process_open_fds %ld\n", fds - 1);	/* not dir's */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		head(o, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.");
		put(o, "process_max_fds %llu\n",
		    (unsigned long long)rl.rlim_cur);
	}
	/* the start: clock ticks after boot (field 22, after the name's
	 * closing parenthesis), and when the machine booted */
	if ((f = fopen("/proc/self/stat", "r")) != NULL) {
		if (fgets(line, sizeof(line), f) != NULL &&
		    (p = strrchr(line, ')')) != NULL) {
			for (i = 0; i < 20 && p != NULL; i++)
				p = strchr(p + 1, ' ');
			if (p != NULL)
				start = strtoull(p + 1, NULL, 10);
		}
		fclose(f);
	}
	if ((f = fopen("/proc/stat", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "btime %llu", &btime) == 1)
				break;
		fclose(f);
	}
	if (btime > 0 && tck > 0) {
		head(o, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.");
		put(o, "process_start_time_seconds %.2f\n",
		    (double)btime + (double)start / (double)tck);
	}
}

int
report_metrics(const struct report *r, char *buf, size_t size)
{
	struct out	 o = { buf, size, 0, 0 };
	const char	*key, *label;
	uint64_t	 v;
	size_t		 i;
	int		 d;

	head(&o, "dgrelay_build_info", "gauge",
	    "dgrelay's version and what it runs (the value is 1).");
	put(&o, "dgrelay_build_info{version=\"%s\",mode=\"%s\"} 1\n",
	    DGRELAY_VERSION, r->mode);
	head(&o, "dgrelay_datagrams_total", "counter",
	    "Datagrams relayed, by direction (1>2: first address to second).");
	for (d = 0; d < 2; d++)
		put(&o, "dgrelay_datagrams_total{direction=\"%s\"} %llu\n",
		    dirlabel[d], (unsigned long long)r->c[d].dgrams);
	head(&o, "dgrelay_bytes_total", "counter",
	    "Payload bytes relayed, by direction.");
	for (d = 0; d < 2; d++)
		put(&o, "dgrelay_bytes_total{direction=\"%s\"} %llu\n",
		    dirlabel[d], (unsigned long long)r->c[d].bytes);
	head(&o, "dgrelay_dropped_total", "counter",
	    "Datagrams dropped (or, for stalled and slow_frames, sessions "
	    "ended), by direction and reason.");
	for (d = 0; d < 2; d++)
		for (i = 2; counters_field(i, &r->c[d], &v, &key, &label) ==
		    0; i++)
			put(&o, "dgrelay_dropped_total{direction=\"%s\","
			    "reason=\"%s\"} %llu\n", dirlabel[d], key,
			    (unsigned long long)v);
	if (r->listener) {
		head(&o, "dgrelay_listener_dropped_total", "counter",
		    "Datagrams a multi or fork listener dropped before a "
		    "session took them, by reason.");
		for (i = 0; i < NDROPS; i++)
			put(&o, "dgrelay_listener_dropped_total{reason=\"%s\"} "
			    "%llu\n", drops[i].key,
			    (unsigned long long)drop(r, i));
		one(&o, "dgrelay_sessions_served_total", "counter",
		    "Sessions (multi) or children (fork) started.",
		    r->served);
		one(&o, "dgrelay_sessions_running", "gauge",
		    "Sessions (multi) or children (fork) running now.",
		    r->running);
		one(&o, "dgrelay_quarantined_ports", "gauge",
		    "Ended UDP sessions' ports kept from reuse now.",
		    r->quarantined);
	}
	if (r->mux) {
		one(&o, "dgrelay_mux_carriers", "gauge",
		    "Mux carriers up now.", r->carriers);
		one(&o, "dgrelay_mux_carriers_total", "counter",
		    "Mux carriers accepted or dialled.", r->carried);
		one(&o, "dgrelay_mux_streams", "gauge",
		    "Mux streams open now.", r->streams);
		one(&o, "dgrelay_mux_streams_opened_total", "counter",
		    "Mux streams opened here.", r->sopened);
		one(&o, "dgrelay_mux_streams_accepted_total", "counter",
		    "Mux streams the far side opened.", r->saccepted);
		one(&o, "dgrelay_mux_not_opened_total", "counter",
		    "Sessions not opened: no carrier was up.", r->muxdown);
	}
	if (r->haspool) {
		one(&o, "dgrelay_pool_lent_bytes", "gauge",
		    "Buffer bytes lent to sessions now.",
		    r->lent);
		one(&o, "dgrelay_pool_lent_max_bytes", "gauge",
		    "Buffer bytes lent at most so far.",
		    r->peak);
		one(&o, "dgrelay_pool_cap_bytes", "gauge",
		    "Buffer bytes that may be lent at most (the cap).",
		    r->cap);
	}
	if (r->redials[0] || r->redials[1]) {
		head(&o, "dgrelay_reconnects_total", "counter",
		    "Connections made again after the first (retry), by "
		    "address (1 or 2).");
		for (d = 0; d < 2; d++)
			if (r->redials[d])
				put(&o, "dgrelay_reconnects_total{address="
				    "\"%d\"} %llu\n", d + 1,
				    (unsigned long long)r->reconnects[d]);
		head(&o, "dgrelay_down_seconds_total", "counter",
		    "Seconds a reconnecting address was down.");
		for (d = 0; d < 2; d++)
			if (r->redials[d])
				put(&o, "dgrelay_down_seconds_total{address="
				    "\"%d\"} %lld.%03lld\n", d + 1,
				    r->down_ms[d] / 1000, r->down_ms[d] % 1000);
	}
	head(&o, "dgrelay_tls_handshakes_total", "counter",
	    "TLS handshakes, by result (done, failed: refused or timed out).");
	put(&o, "dgrelay_tls_handshakes_total{result=\"done\"} %llu\n",
	    (unsigned long long)procfig.tls_done);
	put(&o, "dgrelay_tls_handshakes_total{result=\"failed\"} %llu\n",
	    (unsigned long long)procfig.tls_failed);
	one(&o, "dgrelay_scrapes_total", "counter",
	    "Metrics requests answered before this one.",
	    procfig.scrapes);
	process_metrics(&o);
	return o.over ? -1 : (int)o.len;
}
