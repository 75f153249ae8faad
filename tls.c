/*
 * tls.c: tls: and tls-listen:, frames inside TLS 1.2 or 1.3 (OpenSSL 3).
 *
 * An address's settings become an SSL_CTX once, at start (its files are
 * read then, before -Z); each connection gets an SSL on its non-blocking
 * socket, made by the relay, which runs the handshake inside its loop
 * (tls_handshake says what to wait for) within handshake-timeout, then
 * reads and writes through it.  Renegotiation, compression and anything
 * older than TLS 1.2 are off.  Where the kernel has TLS offload, OpenSSL
 * is asked to use it (SSL_OP_ENABLE_KTLS).
 *
 * psk=FILE is stunnel's PSKsecrets format, read as stunnel reads it: lines
 * IDENTITY:KEY, a key in hexadecimal being those bytes, any other its text
 * (at least 16 bytes either way).  A client uses the first line, a server
 * accepts any; OpenSSL's PSK callbacks serve TLS 1.2 (PSK
 * cipher suites) and TLS 1.3 alike, which is what stunnel uses.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dgrelay.h"

#define PSK_ID_MAX	127	/* an identity's bytes (OpenSSL's, as stunnel) */
#define PSK_KEY_MIN	16	/* a key's bytes, at least (stunnel) */
#define PSK_KEY_MAX	512	/* PSK_MAX_PSK_LEN */
#define TLS_READ_BUF	(64 << 10)	/* OpenSSL's read-ahead, a pair */
#define TLS13_SUITES	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
			    "TLS_CHACHA20_POLY1305_SHA256"
#define PSK_LINE_MAX	(PSK_ID_MAX + 3 * PSK_KEY_MAX + 4)
#define PSK_FILE_MAX	(1 << 20)	/* bytes of a psk= file */

struct psk {
	char		 id[PSK_ID_MAX + 1];
	unsigned char	 key[PSK_KEY_MAX];
	unsigned	 keylen;
};

struct tls_conf {
	SSL_CTX		*ctx;
	int		 client;
	int		 verify;	/* client: the server's certificate */
	char		 name[NAME_MAX_];	/* client: checked, sent as SNI */
	int		 nameip;	/* ... an address: checked, not sent */
	unsigned char	 alpn[256];	/* wire format */
	unsigned	 alpnlen;
	struct psk	*psk;
	size_t		 npsk;
	long long	 handshake_ms;
	int		 many;		/* one of many connections */
	/* handshakes under way (an SSL each) and those waiting for one of
	 * the max-handshakes slots, oldest first */
	int		 maxhs, inflight;
	struct waitq	 slots;
};

struct tls {
	SSL		*ssl;		/* NULL until its handshake starts */
	struct tls_conf	*c;
	int		 slot;		/* holds a handshake slot */
	struct pool_wait slotw;		/* ... waits for one */
	void		(*wake)(void *);	/* a slot came free for it */
	void		*warg;
	int		 up;		/* handshake done */
	int		 dead;		/* a fatal error: nothing more is sent */
	int		 closed;	/* close_notify said */
	int		 unclean;	/* ended without close_notify */
	int		 err;		/* dead: the errno to repeat */
	uint32_t	 hswant;	/* handshake: waits for this */
	uint32_t	 rwant, wwant;	/* a read, a write said EAGAIN for */
	char		 pskid[PSK_ID_MAX + 1];	/* server: the client's */
	long long	 due;		/* handshake deadline */
	char		 why[NAME_MAX_ * 2];
};

/* ------------------------------------------------------------ messages */

/*
 * OpenSSL's reason for the failure of the call that returned r, its
 * SSL_get_error e, into why: "certificate verify failed: self-signed
 * certificate", "tlsv1 alert unknown ca", a socket's errno text.
 */
/* What to do about a certificate that did not verify (v), if we know. */
static const char *
verify_hint(long v)
{
	switch (v) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return "; give cafile= with the CA that signed it (or the "
		    "certificate itself), or verify=0 not to check it";
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return "; dial the name it was made for, or give sni= with it";
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "; check the clocks, or renew it";
	default:
		return "";
	}
}

static void
set_why(struct tls *t, const char *what, int e)
{
	unsigned long	 err = ERR_peek_error();
	const char	*r = NULL;
	long		 v;
	int		 reason;
	char		 num[32];

	if (e == SSL_ERROR_SYSCALL && err == 0)
		r = errno != 0 ? strerror(errno) : "connection closed";
	else if (err != 0) {
		if ((r = ERR_reason_error_string(err)) == NULL) {
			snprintf(num, sizeof(num), "error %lx", err);
			r = num;
		}
	} else
		r = "failed";
	reason = err != 0 && ERR_GET_LIB(err) == ERR_LIB_SSL ?
	    ERR_GET_REASON(err) : 0;
	if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && t->c->client &&
	    t->c->npsk > 0)
		snprintf(t->why, sizeof(t->why), "%sthe server did not take "
		    "the pre-shared key (it sent a certificate)", what);
	else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	    (v = SSL_get_verify_result(t->ssl)) != X509_V_OK)
		snprintf(t->why, sizeof(t->why), "%s%s: %s%s", what, r,
		    X509_verify_cert_error_string(v), verify_hint(v));
	else if (t->c->npsk > 0 && t->c->client &&
	    (reason == SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER ||
	    reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
	    reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR))
		snprintf(t->why, sizeof(t->why), "%sthe server refused the "
		    "pre-shared key: identity or key differ (%s)", what, r);
	else if (t->c->npsk > 0 && reason == SSL_R_BINDER_DOES_NOT_VERIFY)
		snprintf(t->why, sizeof(t->why), "%sthe client's pre-shared "
		    "key differs from ours (%s)", what, r);
	else if (t->c->npsk > 0 && !t->c->client &&
	    (reason == SSL_R_NO_SHARED_CIPHER ||
	    reason == SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM))
		snprintf(t->why, sizeof(t->why), "%sthe client offered no "
		    "pre-shared key of ours: an identity unknown here, or none "
		    "(%s)", what, r);
	else
		snprintf(t->why, sizeof(t->why), "%s%s", what, r);
	ERR_clear_error();
}

/* The reason of OpenSSL's last failure, for a setup message. */
static const char *
ssl_reason(void)
{
	unsigned long	 err = ERR_peek_last_error();
	const char	*r;

	r = err != 0 ? ERR_reason_error_string(err) : NULL;
	ERR_clear_error();
	return r != NULL ? r : "failed";
}

/* ---------------------------------------------------------------- setup */

/*
 * A file of ours, opened here so that its absence reads as the system
 * says; OpenSSL is then given its name.
 */
static int
readable(struct addr *a, const char *what, const char *path)
{
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL)
		return addr_fail(a, "%s %s: %s", what, path, strerror(errno));
	fclose(f);
	return 0;
}

/* One IDENTITY:KEY line of a PSK file into p. */
static int
psk_line(struct addr *a, const char *path, unsigned lineno, char *line,
    struct psk *p)
{
	char		*colon = strchr(line, ':');
	unsigned char	*hex;
	const void	*key;
	size_t		 idlen, keylen;
	long		 hexlen = 0;

	if (colon == NULL)
		return addr_fail(a, "psk %s: line %u: expected IDENTITY:KEY",
		    path, lineno);
	idlen = (size_t)(colon - line);
	/* hexadecimal (pairs, maybe colon-separated): its bytes */
	if ((hex = OPENSSL_hexstr2buf(colon + 1, &hexlen)) != NULL) {
		key = hex;
		keylen = (size_t)hexlen;
	} else {
		ERR_clear_error();
		key = colon + 1;
		keylen = strlen(colon + 1);
	}
	if (idlen == 0 || idlen > PSK_ID_MAX || keylen < PSK_KEY_MIN ||
	    keylen > PSK_KEY_MAX) {
		OPENSSL_clear_free(hex, (size_t)hexlen);
		if (idlen == 0 || idlen > PSK_ID_MAX)
			return addr_fail(a, "psk %s: line %u: identity of %zu "
			    "bytes (1 to %d)", path, lineno, idlen, PSK_ID_MAX);
		return addr_fail(a, "psk %s: line %u: key of %zu bytes (%d "
		    "to %d%s)", path, lineno, keylen, PSK_KEY_MIN, PSK_KEY_MAX,
		    hex != NULL ? "; hexadecimal, so two digits a byte" : "");
	}
	memcpy(p->id, line, idlen);
	p->id[idlen] = '\0';
	memcpy(p->key, key, keylen);
	p->keylen = (unsigned)keylen;
	OPENSSL_clear_free(hex, (size_t)hexlen);
	return 0;
}

/*
 * The psk= file, open for reading: a regular file (a FIFO or a device
 * could feed it for ever; opened without blocking, so a FIFO with no
 * writer does not hang the start) of at most PSK_FILE_MAX bytes, that
 * others may not read or write (stunnel warns of it; its group may, as
 * stunnel allows).  NULL with a->err set.
 */
static FILE *
psk_open(struct addr *a, const char *path)
{
	struct stat	 st;
	FILE		*f;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		addr_fail(a, "psk %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1)
		addr_fail(a, "psk %s: fstat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		addr_fail(a, "psk %s: not a regular file", path);
	else if (st.st_size > PSK_FILE_MAX)
		addr_fail(a, "psk %s: larger than %d bytes", path, PSK_FILE_MAX);
	else if (st.st_mode & S_IRWXO)
		addr_fail(a, "psk %s: others may use it (chmod o-rwx)", path);
	else if ((f = fdopen(fd, "r")) == NULL)
		addr_fail(a, "psk %s: %s", path, strerror(errno));
	else
		return f;
	close(fd);
	return NULL;
}

/* psk=FILE: stunnel's PSKsecrets; blank lines are skipped. */
static int
psk_load(struct addr *a, struct tls_conf *c, const char *path)
{
	FILE		*f;
	struct psk	*p;
	char		 line[PSK_LINE_MAX + 2];
	size_t		 n;
	long		 pos = 0;
	unsigned	 lineno = 0;
	int		 r = 0;

	if ((f = psk_open(a, path)) == NULL)
		return -1;
	while (r == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		n = strlen(line);
		if ((long)n != ftell(f) - pos) {	/* it read past a NUL */
			r = addr_fail(a, "psk %s: line %u: a NUL byte", path,
			    lineno);
			break;
		}
		pos = ftell(f);
		if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
			r = addr_fail(a, "psk %s: line %u: longer than %d "
			    "bytes", path, lineno, PSK_LINE_MAX);
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if ((p = reallocarray(c->psk, c->npsk + 1,
		    sizeof(*p))) == NULL) {
			r = addr_fail(a, "psk %s: %s", path, strerror(errno));
			break;
		}
		c->psk = p;
		if ((r = psk_line(a, path, lineno, line, &p[c->npsk])) == 0)
			c->npsk++;
	}
	if (r == 0 && ferror(f))
		r = addr_fail(a, "psk %s: %s", path, strerror(errno));
	fclose(f);
	if (r == 0 && c->npsk == 0)
		r = addr_fail(a, "psk %s: no IDENTITY:KEY line", path);
	explicit_bzero(line, sizeof(line));
	return r;
}

static unsigned int
psk_client(SSL *ssl, const char *hint, char *id, unsigned int idmax,
    unsigned char *key, unsigned int keymax)
{
	const struct tls_conf	*c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const struct psk	*p = &c->psk[0];

	(void)hint;
	if (strlen(p->id) + 1 > idmax || p->keylen > keymax)
		return 0;
	memcpy(id, p->id, strlen(p->id) + 1);
	memcpy(key, p->key, p->keylen);
	return p->keylen;
}

static unsigned int
psk_server(SSL *ssl, const char *id, unsigned char *key, unsigned int keymax)
{
	const struct tls_conf	*c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	size_t			 i;

	struct tls		*t = SSL_get_app_data(ssl);

	for (i = 0; id != NULL && i < c->npsk; i++)
		if (strcmp(c->psk[i].id, id) == 0 &&
		    c->psk[i].keylen <= keymax) {
			strlcpy(t->pskid, id, sizeof(t->pskid));
			memcpy(key, c->psk[i].key, c->psk[i].keylen);
			return c->psk[i].keylen;
		}
	return 0;		/* unknown identity: the handshake fails */
}

/* alpn=a:b as ALPN's wire format (addr.c checked the lengths). */
static void
alpn_wire(struct tls_conf *c, const char *v)
{
	size_t	 n;

	while (*v != '\0') {
		n = strcspn(v, ":");
		c->alpn[c->alpnlen++] = (unsigned char)n;
		memcpy(c->alpn + c->alpnlen, v, n);
		c->alpnlen += (unsigned)n;
		v += n + (v[n] == ':');
	}
}

/* A server with alpn=: the first of its protocols the client offers. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct tls_conf	*c = arg;
	unsigned char		*o;

	(void)ssl;
	if (SSL_select_next_proto(&o, outlen, c->alpn, c->alpnlen, in,
	    inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;	/* RFC 7301 */
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

/* cert= and key= (the key may be in the certificate's file). */
static int
use_cert(struct addr *a, SSL_CTX *ctx)
{
	char	 cert[SPEC_MAX], key[SPEC_MAX];

	addr_str(a, a->cert, cert, sizeof(cert));
	addr_str(a, a->key.len ? a->key : a->cert, key, sizeof(key));
	if (readable(a, "cert", cert) == -1 || readable(a, "key", key) == -1)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return addr_fail(a, "cert %s: reading a PEM certificate chain: "
		    "%s", cert, ssl_reason());
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) ==
		    X509_R_KEY_VALUES_MISMATCH)
			return addr_fail(a, "key %s: does not match cert %s: %s",
			    key, cert, ssl_reason());
		if (!a->key.len)
			return addr_fail(a, "cert %s holds no private key: give "
			    "key= with the file that does (%s)", cert,
			    ssl_reason());
		return addr_fail(a, "key %s: reading a PEM private key: %s",
		    key, ssl_reason());
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
		return addr_fail(a, "key %s: does not match cert %s: %s", key,
		    cert, ssl_reason());
	return 0;
}

/* cafile=, or the system's store for a client. */
static int
use_ca(struct addr *a, struct tls_conf *c)
{
	STACK_OF(X509_NAME) *names;
	char		 ca[SPEC_MAX];

	if (!a->cafile.len) {
		if (c->client && c->verify && !a->psk.len &&
		    SSL_CTX_set_default_verify_paths(c->ctx) != 1)
			return addr_fail(a, "system CA store: %s",
			    ssl_reason());
		return 0;
	}
	addr_str(a, a->cafile, ca, sizeof(ca));
	if (readable(a, "cafile", ca) == -1)
		return -1;
	if (SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
		return addr_fail(a, "cafile %s: %s", ca, ssl_reason());
	if (!c->client) {	/* mutual TLS: a client certificate, checked */
		if ((names = SSL_load_client_CA_file(ca)) == NULL)
			return addr_fail(a, "cafile %s: %s", ca, ssl_reason());
		SSL_CTX_set_client_CA_list(c->ctx, names);
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return 0;
}

static int
setup_ctx(struct addr *a, struct tls_conf *c)
{
	char	 v[SPEC_MAX];
	long	 mode = SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;

	c->ctx = SSL_CTX_new(c->client ? TLS_client_method() :
	    TLS_server_method());
	if (c->ctx == NULL)
		return addr_fail(a, "SSL_CTX_new: %s", ssl_reason());
	SSL_CTX_set_app_data(c->ctx, c);
	if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1)
		return addr_fail(a, "TLS 1.2: %s", ssl_reason());
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_ENABLE_KTLS);
	/* many sessions: a connection's buffers go back while it is idle */
	if ((a->many || a->dial) && !a->mux)	/* (a carrier is busy) */
		mode |= SSL_MODE_RELEASE_BUFFERS;
	SSL_CTX_set_mode(c->ctx, mode);
	/* a read takes what is there: with a pair, up to 64 KiB a call */
	SSL_CTX_set_read_ahead(c->ctx, 1);
	if (!(a->many || a->dial) || a->mux)
		SSL_CTX_set_default_read_buffer_len(c->ctx, TLS_READ_BUF);
	/* AES-128-GCM first: as safe for this, and cheaper per byte */
	if (SSL_CTX_set_ciphersuites(c->ctx, TLS13_SUITES) != 1)
		return addr_fail(a, "TLS 1.3 cipher suites: %s", ssl_reason());
	/* a PSK client verifies too, against no CA at all: a server that
	 * does not take the key and shows a certificate instead (a TLS 1.3
	 * full handshake) is refused, whoever signed it */
	if (c->client)
		SSL_CTX_set_verify(c->ctx, c->verify ? SSL_VERIFY_PEER :
		    SSL_VERIFY_NONE, NULL);
	if (a->cert.len && use_cert(a, c->ctx) == -1)
		return -1;
	if (use_ca(a, c) == -1)
		return -1;
	if (a->psk.len) {
		if (psk_load(a, c, addr_str(a, a->psk, v, sizeof(v))) == -1)
			return -1;
		/* TLS 1.2: the PSK suites; TLS 1.3 uses the callbacks too */
		if (SSL_CTX_set_cipher_list(c->ctx, "PSK") != 1)
			return addr_fail(a, "PSK cipher suites: %s",
			    ssl_reason());
		if (c->client)
			SSL_CTX_set_psk_client_callback(c->ctx, psk_client);
		else
			SSL_CTX_set_psk_server_callback(c->ctx, psk_server);
	}
	if (a->alpn.len) {
		alpn_wire(c, addr_str(a, a->alpn, v, sizeof(v)));
		if (c->client && SSL_CTX_set_alpn_protos(c->ctx, c->alpn,
		    c->alpnlen) != 0)
			return addr_fail(a, "alpn: %s", ssl_reason());
		if (!c->client)
			SSL_CTX_set_alpn_select_cb(c->ctx, alpn_select, c);
	}
	return 0;
}

int
tls_setup(struct addr *a)
{
	struct tls_conf	*c;
	unsigned char	 ip[16];

	if (a->tlsc != NULL)
		return 0;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return addr_fail(a, "TLS settings: %s", strerror(errno));
	a->tlsc = c;
	c->client = !a->listen;
	c->verify = a->verify;
	c->handshake_ms = a->handshake_ms;
	c->many = a->multi || a->dial;
	c->maxhs = a->maxhs > 0 ? a->maxhs : HANDSHAKES_DEF;
	if (c->client) {
		if (a->sni.len)
			addr_str(a, a->sni, c->name, sizeof(c->name));
		else
			strlcpy(c->name, a->host, sizeof(c->name));
		c->nameip = inet_pton(AF_INET, c->name, ip) == 1 ||
		    inet_pton(AF_INET6, c->name, ip) == 1;
	}
	return setup_ctx(a, c);
}

void
tls_cleanup(struct addr *a)
{
	struct tls_conf	*c = a->tlsc;

	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	if (c->psk != NULL)
		explicit_bzero(c->psk, c->npsk * sizeof(*c->psk));
	free(c->psk);
	free(c);
	a->tlsc = NULL;
}

/* ----------------------------------------------------------- connections */

/* A slot came free for the connection that waited longest. */
static void
slot_ready(struct pool_wait *w)
{
	struct tls	*t = w->arg;

	t->hswant = EPOLLOUT;		/* a step at once */
	t->wake(t->warg);
}

int
tls_start(struct side *s, void (*wake)(void *), void *arg, char *err,
    size_t size)
{
	struct tls	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, size, "TLS connection: %s", strerror(errno));
		return -1;
	}
	t->c = s->tlsc;
	t->wake = wake;
	t->warg = arg;
	t->slotw.fn = slot_ready;
	t->slotw.arg = t;
	/* a server's deadline runs from the connection until its handshake
	 * starts, then from that start (tls_make); a client's from the start */
	t->due = t->c->client ? 0 : loop_now() + t->c->handshake_ms;
	/* a server waits for the first bytes of a ClientHello before it
	 * makes the SSL (a silent peer costs no TLS state); a client
	 * speaks first */
	t->hswant = t->c->client ? EPOLLOUT : EPOLLIN;
	s->tls = t;
	return 0;
}

/* t's handshake is over (or t goes): its slot to the oldest waiter. */
static void
slot_release(struct tls *t)
{
	struct tls_conf		*c = t->c;
	struct pool_wait	*w;

	waitq_del(&c->slots, &t->slotw);
	if (!t->slot)
		return;
	t->slot = 0;
	c->inflight--;
	if ((w = c->slots.head) != NULL) {
		waitq_del(&c->slots, w);
		w->fn(w);
	}
}

/*
 * The SSL of t, made when its handshake may start: a slot free (else it
 * waits for one: a server until handshake-timeout from the connection, a
 * client as long as it takes, as it waits on us, not on its peer); the
 * handshake then has handshake-timeout of its own.  0 made, 1 not yet, -1
 * a failure (err).
 */
static int
tls_make(struct side *s, struct tls *t)
{
	struct tls_conf	*c = t->c;
	char		 b;

	if (!c->client && recv(s->rfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1 &&
	    (errno == EAGAIN || errno == EINTR)) {
		t->hswant = EPOLLIN;	/* nothing from the peer yet */
		return 1;
	}
	if (c->inflight >= c->maxhs) {
		waitq_add(&c->slots, &t->slotw);
		t->hswant = 0;
		return 1;
	}
	waitq_del(&c->slots, &t->slotw);
	if ((t->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(t->ssl, s->rfd) != 1)
		goto bad;
	t->slot = 1;
	c->inflight++;
	SSL_set_app_data(t->ssl, t);
	/* the handshake's own time runs from its start: a wait for a slot
	 * (bounded too, from the connection) is not its peer's */
	t->due = loop_now() + c->handshake_ms;
	if (c->client) {
		SSL_set_connect_state(t->ssl);
		if (!c->nameip && c->name[0] != '\0' &&
		    SSL_set_tlsext_host_name(t->ssl, c->name) != 1)
			goto bad;
		if (c->verify && c->name[0] != '\0' && (c->nameip ?
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
		    c->name) : SSL_set1_host(t->ssl, c->name)) != 1)
			goto bad;
	} else
		SSL_set_accept_state(t->ssl);
	return 0;
bad:
	snprintf(t->why, sizeof(t->why), "TLS connection setup: %s",
	    ssl_reason());
	t->dead = 1;
	return -1;
}

void
tls_end(struct side *s)
{
	if (s->tls == NULL)
		return;
	slot_release(s->tls);
	SSL_free(s->tls->ssl);
	free(s->tls);
	s->tls = NULL;
}

int
tls_up(const struct side *s)
{
	return s->tls != NULL && s->tls->up;
}

long long
tls_due(const struct side *s)
{
	return s->tls != NULL && !s->tls->up ? s->tls->due : 0;
}

uint32_t
tls_want(const struct side *s, int reading)
{
	const struct tls	*t = s->tls;

	if (t == NULL)
		return 0;
	if (!t->up)
		return t->hswant;
	if (reading)
		return t->rwant != 0 ? t->rwant : EPOLLIN;
	return t->wwant != 0 ? t->wwant : EPOLLOUT;
}

int
tls_handshake(struct side *s)
{
	struct tls	*t = s->tls;
	char		 who[NAME_MAX_ + 16];
	int		 r;

	if (t->up)
		return 1;
	/* a server says whose handshake failed */
	snprintf(who, sizeof(who), "%s%s%s", t->c->client ? "" : "client ",
	    t->c->client ? "" : s->peer, t->c->client ? "" : ": ");
	if (t->due > 0 && loop_now() >= t->due) {
		snprintf(t->why, sizeof(t->why), "%shandshake: %s in "
		    "%lld.%lld s", who, t->slotw.queued ?
		    "no slot of max-handshakes free" : "no answer",
		    t->c->handshake_ms / 1000, t->c->handshake_ms % 1000 / 100);
		t->dead = 1;
		return -1;
	}
	if (t->ssl == NULL && (r = tls_make(s, t)) != 0)
		return r == 1 ? 0 : -1;
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_do_handshake(t->ssl)) == 1) {
		t->up = 1;
		t->hswant = 0;
		slot_release(t);
		return 1;
	}
	switch (SSL_get_error(t->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		t->hswant = EPOLLIN;
		/* waiting on the peer: its record buffers go back until
		 * it answers (one of many: a pending handshake is cheap) */
		if (t->c->many)
			(void)SSL_free_buffers(t->ssl);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		t->hswant = EPOLLOUT;
		return 0;
	default:
		set_why(t, who, SSL_get_error(t->ssl, r));
		t->dead = 1;
		slot_release(t);
		return -1;
	}
}

/* A read or write that did not go: errno says how, for the caller. */
static ssize_t
io_error(struct tls *t, int r, uint32_t *want)
{
	unsigned long	 err;
	int		 e = SSL_get_error(t->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = EPOLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want = EPOLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:	/* close_notify */
		return 0;
	}
	t->dead = 1;
	err = ERR_peek_error();
	if (e == SSL_ERROR_SSL && ERR_GET_LIB(err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		/* closed without close_notify: an end all the same (a
		 * frame cut short by it is still found and reported) */
		t->unclean = 1;
		snprintf(t->why, sizeof(t->why), "closed without "
		    "close_notify");
		ERR_clear_error();
		return 0;
	}
	if (e == SSL_ERROR_SYSCALL && err == 0 && errno != 0) {
		ERR_clear_error();
		t->err = errno;
		return -1;		/* the socket's errno */
	}
	set_why(t, "", e);
	errno = t->err = EPROTO;
	return -1;
}

ssize_t
tls_read(struct side *s, void *buf, size_t len)
{
	struct tls	*t = s->tls;
	size_t		 n;
	int		 r;

	if (t->dead) {		/* OpenSSL would only say it is shut */
		errno = t->err;
		return t->err != 0 ? -1 : 0;
	}
	ERR_clear_error();
	errno = 0;
	t->rwant = 0;
	if ((r = SSL_read_ex(t->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	return io_error(t, r, &t->rwant);
}

ssize_t
tls_write(struct side *s, const void *buf, size_t len)
{
	struct tls	*t = s->tls;
	size_t		 n;
	int		 r;

	if (t->dead) {
		errno = t->err != 0 ? t->err : EPIPE;
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	t->wwant = 0;
	if ((r = SSL_write_ex(t->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	if ((r = (int)io_error(t, r, &t->wwant)) == 0) {
		errno = EPIPE;		/* written to after its end */
		r = -1;
	}
	return r;
}

int
tls_pending(const struct side *s)
{
	return s->tls != NULL && s->tls->up && !s->tls->dead &&
	    SSL_has_pending(s->tls->ssl);
}

int
tls_close_notify(struct side *s)
{
	struct tls	*t = s->tls;
	int		 r;

	if (t == NULL || !t->up || t->dead || t->closed)
		return 0;
	t->closed = 1;
	ERR_clear_error();
	r = SSL_shutdown(t->ssl);
	ERR_clear_error();
	return r >= 0;
}

int
tls_unclean(const struct side *s)
{
	return s->tls != NULL && s->tls->unclean;
}

const char *
tls_why(const struct side *s)
{
	return s->tls != NULL && s->tls->why[0] != '\0' ? s->tls->why :
	    "TLS failed";
}

void
tls_describe(const struct side *s, char *buf, size_t size)
{
	const struct tls	*t = s->tls;
	const struct tls_conf	*c = t->c;
	const unsigned char	*alpn;
	unsigned		 alpnlen;
	BIO			*b = SSL_get_wbio(t->ssl);
	X509			*peer;
	char			 who[NAME_MAX_] = "";
	size_t			 n;

	if ((peer = SSL_get1_peer_certificate(t->ssl)) != NULL) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
		    NID_commonName, who, sizeof(who));
		X509_free(peer);
	}
	n = (size_t)snprintf(buf, size, "%s %s", SSL_get_version(t->ssl),
	    SSL_get_cipher_name(t->ssl));
	if (n < size && c->npsk > 0)
		n += (size_t)snprintf(buf + n, size - n, ", pre-shared key %s",
		    c->client ? c->psk[0].id : t->pskid);
	else if (n < size && c->client && !c->verify)
		n += (size_t)snprintf(buf + n, size - n, ", server NOT "
		    "verified (verify=0)");
	else if (n < size && c->client)
		n += (size_t)snprintf(buf + n, size - n, ", server %s "
		    "verified as %s", who, c->name);
	else if (n < size && who[0] != '\0')
		n += (size_t)snprintf(buf + n, size - n, ", client %s "
		    "verified", who);
	SSL_get0_alpn_selected(t->ssl, &alpn, &alpnlen);
	if (n < size && alpnlen > 0)
		n += (size_t)snprintf(buf + n, size - n, ", alpn %.*s",
		    (int)alpnlen, (const char *)alpn);
	if (n < size)
		snprintf(buf + n, size - n, ", %s", BIO_get_ktls_send(b) ?
		    (BIO_get_ktls_recv(SSL_get_rbio(t->ssl)) ?
		    "kernel TLS both ways" : "kernel TLS sending") :
		    "TLS in user space (no kernel TLS)");
}
