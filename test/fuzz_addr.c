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

/* A string option's value lies inside the spec, one option's worth. */
static void
check_str(const struct addr *a, struct optstr o, const char *spec)
{
	size_t	 i;

	if (o.len == 0)
		return;
	CHECK((size_t)o.off + o.len <= strlen(spec));
	for (i = o.off; i < (size_t)o.off + o.len; i++)
		CHECK(spec[i] != ',' && (unsigned char)spec[i] >= 0x20 &&
		    spec[i] != 0x7f);
	CHECK(o.off > 0 && spec[o.off - 1] == '=');
	(void)a;
}

/* tls options on tls only, and what excludes what. */
static void
check_tls(const struct addr *a, const char *spec)
{
	if (!a->tls) {
		CHECK(!a->cert.len && !a->key.len && !a->cafile.len &&
		    !a->psk.len && !a->sni.len && !a->alpn.len &&
		    a->handshake_ms == 0 && a->verify == 1);
		return;
	}
	CHECK(a->kind == ADDR_TCP);
	CHECK(a->handshake_ms >= 1 && a->handshake_ms <= HANDSHAKE_MAX);
	CHECK(!a->listen || a->cert.len || a->psk.len);
	CHECK(!a->key.len || a->cert.len);
	CHECK(!a->psk.len || (!a->cert.len && !a->cafile.len && a->verify));
	CHECK(!a->listen || (a->verify && !a->sni.len));
	check_str(a, a->cert, spec);
	check_str(a, a->key, spec);
	check_str(a, a->cafile, spec);
	check_str(a, a->psk, spec);
	check_str(a, a->sni, spec);
	check_str(a, a->alpn, spec);
}

static void
check(const struct addr *a, const char *spec)
{
	size_t	 n;

	CHECK(a->kind >= ADDR_UDP && a->kind <= ADDR_TUN);
	CHECK(memchr(a->host, '\0', sizeof(a->host)) != NULL);
	CHECK(memchr(a->path, '\0', sizeof(a->path)) != NULL);
	CHECK(memchr(a->cmd, '\0', sizeof(a->cmd)) != NULL);
	/* what messages call it: the spec's start (its options left out),
	 * or that cut short with "..." */
	CHECK(memchr(a->label, '\0', sizeof(a->label)) != NULL);
	n = strlen(a->label);
	if (n >= 3 && strcmp(a->label + n - 3, "...") == 0)
		n -= 3;
	CHECK(strncmp(a->label, spec, n) == 0);
	CHECK(a->names == NULL);
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
	check_tls(a, spec);
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
		check(&a, spec);
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
