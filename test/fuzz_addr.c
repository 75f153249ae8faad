/*
 * libFuzzer target for addr_parse(): any string gives either a parsed
 * address whose fields hold together, or -1 with one line of reason.
 * addr.c links alone (no stubs): addr_parse makes no system call.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgrelay.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", \
	__FILE__, __LINE__, #c); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_port(const char *p, int zero_ok)
{
	char		*end;
	unsigned long	 n;

	CHECK(*p != '\0');
	n = strtoul(p, &end, 10);
	CHECK(*end == '\0' && n <= 65535 && (zero_ok || n > 0));
}

static void
check(const struct addr *a)
{
	CHECK(a->kind >= ADDR_UDP && a->kind <= ADDR_TUN);
	CHECK(memchr(a->host, '\0', sizeof(a->host)) != NULL);
	CHECK(memchr(a->path, '\0', sizeof(a->path)) != NULL);
	CHECK(memchr(a->cmd, '\0', sizeof(a->cmd)) != NULL);
	CHECK(a->lfd == -1 && a->pid == 0);
	switch (a->kind) {
	case ADDR_UDP:
	case ADDR_TCP:
		check_port(a->port, a->listen);
		CHECK(a->listen || a->host[0] != '\0');
		CHECK(strchr(a->host, ':') == NULL || a->host[0] != '\0');
		break;
	case ADDR_UNIX:
	case ADDR_SEQPACKET:
		CHECK(a->path[0] != '\0' && strcmp(a->path, "@") != 0);
		break;
	case ADDR_FD:
		CHECK(a->fdname[0] != '\0' ||
		    (a->rfd >= 0 && a->wfd >= 0 && a->rfd <= 65535));
		break;
	case ADDR_EXEC:
		CHECK(a->cmd[0] != '\0');
		break;
	case ADDR_VSOCK:
		CHECK(a->listen || a->vport != 0);
		break;
	default:
		break;
	}
	CHECK(!a->maxchildren || a->fork);
	CHECK(!a->hasaddr || (a->prefix >= 0 && a->prefix <= 32));
	CHECK(!a->mtu || (a->mtu >= 68 && a->mtu <= 65535));
	CHECK(a->rcvbuf >= 0 && a->sndbuf >= 0);
	/* TCP options on tcp only; a keepalive setting means keepalive */
	CHECK(a->kind == ADDR_TCP || (!a->keepalive && !a->usertimeout &&
	    !a->mptcp));
	CHECK(a->keepalive || (!a->keepidle && !a->keepintvl && !a->keepcnt));
	CHECK(a->keepcnt >= 0 && a->keepcnt <= 127 && a->keepidle >= 0 &&
	    a->keepidle <= 32767 && a->usertimeout >= 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct addr	 a, b;
	char			 spec[SPEC_MAX + 64];

	if (size >= sizeof(spec))
		size = sizeof(spec) - 1;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (addr_parse(spec, &a) == 0) {
		check(&a);
		/* the same text parses the same way again */
		CHECK(addr_parse(spec, &b) == 0);
		CHECK(a.kind == b.kind && a.listen == b.listen &&
		    strcmp(a.host, b.host) == 0 && strcmp(a.port, b.port) == 0);
	} else {
		CHECK(a.err[0] != '\0');
		CHECK(strchr(a.err, '\n') == NULL);	/* one line */
	}
	return 0;
}
