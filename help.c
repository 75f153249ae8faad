/*
 * help.c: the parser's tables said to a person: -h lists every address
 * type and every option with the types it applies to, made from the
 * tables themselves so that it cannot drift; and a misspelt type or
 * option is answered with the nearest valid name.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dgrelay.h"
#include "addr.h"

/*
 * Edit distance of a and b, for names under 32 bytes: insertions,
 * deletions, changes and swaps of neighbours ("mutli") count one each.
 */
static size_t
distance(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b), i, j, c, v, d[33][33];

	if (la > 32 || lb > 32)
		return (size_t)-1;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			c = tolower((unsigned char)a[i - 1]) != b[j - 1];
			v = d[i - 1][j - 1] + c;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

/* The nearest of n names (stride apart) to s, if near enough; or NULL. */
static const char *
nearest(const char *s, const void *table, size_t n, size_t stride)
{
	const char	*best = NULL, *name;
	size_t		 i, d, bestd = (size_t)-1, max;

	max = strlen(s) < 6 ? 1 : strlen(s) / 3;
	for (i = 0; i < n; i++) {
		memcpy(&name, (const char *)table + i * stride, sizeof(name));
		if ((d = distance(s, name)) < bestd) {
			bestd = d;
			best = name;
		}
	}
	return bestd <= max ? best : NULL;
}

/* ", did you mean NAME?" for s among the types, or the options. */
const char *
addr_near(const char *s, int options, char *buf, size_t size)
{
	const char	*n;

	n = options ? nearest(s, addr_opts, addr_nopts, sizeof(addr_opts[0])) :
	    nearest(s, addr_types, addr_ntypes, sizeof(addr_types[0]));
	if (n == NULL)
		return "";
	snprintf(buf, size, " (did you mean %s?)", n);
	return buf;
}

static const char *
param_form(enum params p)
{
	switch (p) {
	case P_HOSTPORT:	return ":HOST:PORT";
	case P_LISTENPORT:	return ":[HOST:]PORT";
	case P_PATH:		return ":PATH";
	case P_FD:		return ":N, fd:R:W, fd:NAME";
	case P_CMD:		return ":COMMAND";
	case P_VSOCK:		return ":CID:PORT";
	case P_VSOCKLISTEN:	return ":[CID:]PORT";
	case P_IFNAME:		return "[:NAME]";
	default:		return "";
	}
}

/* What follows NAME= in an option, where the table does not say. */
static const char *
value_form(enum opt_id id)
{
	switch (id) {
	case O_BIND:		return "HOST[:PORT]";
	case O_MARK:		return "N";
	case O_DEV:		return "IFNAME";
	case O_ADDR:		return "A.B.C.D/PREFIX";
	case O_RETRY:		return "N";
	case O_INTERVAL:
	case O_HANDSHAKE:
	case O_STALL:
	case O_FRAMEWAIT:	return "SECONDS";
	case O_CERT:
	case O_KEY:
	case O_CAFILE:
	case O_PSK:		return "FILE";
	case O_FRAME:		return "u16be|u32be";
	case O_MUXPING:		return "SECONDS";
	case O_SNI:		return "NAME";
	case O_ALPN:		return "PROTO[:PROTO...]";
	default:		return "N";
	}
}

/* The names of the address types option o applies to. */
const char *
addr_applies(const struct addr_opt *o, char *buf, size_t size)
{
	size_t	 j, n;

	buf[0] = '\0';
	for (j = n = 0; j < addr_ntypes; j++)
		if (addr_types[j].opts & o->on) {
			if (n++ > 0)
				strlcat(buf, " ", size);
			strlcat(buf, addr_types[j].name, size);
		}
	return buf;
}

void
addr_help(FILE *f)
{
	const struct addr_opt	*o;
	char			 form[64], on[256];
	size_t			 i;

	fprintf(f, "addresses (TYPE:PARAMETERS,OPTION,...):\n");
	for (i = 0; i < addr_ntypes; i++)
		fprintf(f, "  %s%s\n", addr_types[i].name,
		    param_form(addr_types[i].params));
	fprintf(f, "options, and the addresses they apply to:\n");
	for (i = 0; i < addr_nopts; i++) {
		o = &addr_opts[i];
		if (o->value == 0)
			snprintf(form, sizeof(form), "%s", o->name);
		else if (o->off != SPECIAL && o->max > o->min)
			snprintf(form, sizeof(form), "%s=%lld..%lld", o->name,
			    o->min, o->max);
		else
			snprintf(form, sizeof(form), "%s%s=%s", o->name,
			    o->value == OPTIONAL ? "[" : "", value_form(o->id));
		if (o->value == OPTIONAL)
			strlcat(form, "]", sizeof(form));
		fprintf(f, "  %-26s %s\n", form, addr_applies(o, on,
		    sizeof(on)));
	}
}

