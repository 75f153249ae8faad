/*
 * vsock_shim.so: a TEST SHIM, for LD_PRELOAD.  It maps AF_VSOCK sockets to
 * AF_UNIX sockets of the same type, so that dgrelay's vsock: and
 * vsock-listen: addresses can relay end to end on a machine without a
 * vsock loopback transport.  Port P is the unix socket $VSOCK_SHIM_DIR/P;
 * every CID is this machine.  Only what dgrelay calls is mapped: socket,
 * bind, connect, accept, accept4, getsockname, getpeername, close.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/vm_sockets.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXFD	4096

static struct vs {
	int		 on;
	unsigned int	 cid, port, peerport;
} tab[MAXFD];

static unsigned int next_port = 50000;

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static struct vs *
vs(int fd)
{
	return fd >= 0 && fd < MAXFD && tab[fd].on ? &tab[fd] : NULL;
}

static int
path_of(unsigned int port, struct sockaddr_un *sun)
{
	const char	*dir = getenv("VSOCK_SHIM_DIR");

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (dir == NULL || snprintf(sun->sun_path, sizeof(sun->sun_path),
	    "%s/%u", dir, port) >= (int)sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void
fill(struct sockaddr *sa, socklen_t *len, unsigned int cid,
    unsigned int port)
{
	struct sockaddr_vm	 vm;

	memset(&vm, 0, sizeof(vm));
	vm.svm_family = AF_VSOCK;
	vm.svm_cid = cid;
	vm.svm_port = port;
	if (sa != NULL && len != NULL) {
		memcpy(sa, &vm, *len < sizeof(vm) ? *len : sizeof(vm));
		*len = sizeof(vm);
	}
}

int
socket(int domain, int type, int protocol)
{
	int	 fd;

	if (domain != AF_VSOCK)
		return REAL(socket)(domain, type, protocol);
	if ((fd = REAL(socket)(AF_UNIX, type, 0)) >= 0 && fd < MAXFD)
		tab[fd] = (struct vs){ 1, VMADDR_CID_ANY, 0, 0 };
	return fd;
}

int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_vm	*vm = (const struct sockaddr_vm *)sa;
	struct sockaddr_un		 sun;
	struct vs			*v = vs(fd);
	unsigned int			 port;

	if (v == NULL || sa->sa_family != AF_VSOCK)
		return REAL(bind)(fd, sa, len);
	port = vm->svm_port == VMADDR_PORT_ANY ? next_port++ : vm->svm_port;
	if (path_of(port, &sun) == -1 ||
	    REAL(bind)(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return -1;
	v->cid = vm->svm_cid;
	v->port = port;
	return 0;
}

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_vm	*vm = (const struct sockaddr_vm *)sa;
	struct sockaddr_un		 sun;
	struct vs			*v = vs(fd);

	if (v == NULL || sa->sa_family != AF_VSOCK)
		return REAL(connect)(fd, sa, len);
	if (path_of(vm->svm_port, &sun) == -1 ||
	    REAL(connect)(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return -1;
	v->cid = VMADDR_CID_LOCAL;
	v->peerport = vm->svm_port;
	return 0;
}

int
accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct vs	*v = vs(fd);
	int		 c;

	if (v == NULL)
		return REAL(accept4)(fd, sa, len, flags);
	if ((c = REAL(accept4)(fd, NULL, NULL, flags)) >= 0 && c < MAXFD) {
		tab[c] = (struct vs){ 1, v->cid, v->port, 0 };
		fill(sa, len, VMADDR_CID_LOCAL, 0);
	}
	return c;
}

int
accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	return accept4(fd, sa, len, 0);
}

int
getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vs	*v = vs(fd);

	if (v == NULL)
		return REAL(getsockname)(fd, sa, len);
	fill(sa, len, v->cid, v->port);
	return 0;
}

int
getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct vs	*v = vs(fd);

	if (v == NULL)
		return REAL(getpeername)(fd, sa, len);
	fill(sa, len, VMADDR_CID_LOCAL, v->peerport);
	return 0;
}

int
close(int fd)
{
	if (vs(fd) != NULL)
		tab[fd].on = 0;
	return REAL(close)(fd);
}
