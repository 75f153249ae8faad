/*
 * tun.c: tun:[NAME] addresses.  A TUN device (IFF_TUN, or IFF_TAP with
 * option tap) without packet info: one read is one IP packet (or Ethernet
 * frame), one write sends one.  Never prints, never exits.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/if_tun.h>
#include <netinet/in.h>
#include <net/if.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

static void
sin_of(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = addr;
	memcpy(sa, &sin, sizeof(sin));
}

/* mtu=, addr=, up: through an AF_INET socket's interface ioctls. */
static int
tun_configure(const struct addr *a, struct side *s, const char *name)
{
	struct ifreq	 ifr;
	uint32_t	 mask;
	int		 fd, r = -1;

	if (!a->mtu && !a->hasaddr && !a->up)
		return 0;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return sock_syserr(s, "socket");
	memset(&ifr, 0, sizeof(ifr));
	strlcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
	if (a->mtu) {
		ifr.ifr_mtu = a->mtu;
		if (ioctl(fd, SIOCSIFMTU, &ifr) == -1) {
			sock_syserr(s, "ioctl SIOCSIFMTU");
			goto out;
		}
	}
	if (a->hasaddr) {
		mask = a->prefix ? htonl(0xffffffffU << (32 - a->prefix)) : 0;
		sin_of(&ifr.ifr_addr, a->ifaddr);
		if (ioctl(fd, SIOCSIFADDR, &ifr) == -1) {
			sock_syserr(s, "ioctl SIOCSIFADDR");
			goto out;
		}
		sin_of(&ifr.ifr_netmask, mask);
		if (ioctl(fd, SIOCSIFNETMASK, &ifr) == -1) {
			sock_syserr(s, "ioctl SIOCSIFNETMASK");
			goto out;
		}
	}
	if (a->up) {
		if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1) {
			sock_syserr(s, "ioctl SIOCGIFFLAGS");
			goto out;
		}
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1) {
			sock_syserr(s, "ioctl SIOCSIFFLAGS");
			goto out;
		}
	}
	r = 0;
out:
	close(fd);
	return r;
}

int
tun_open(const struct addr *a, struct side *s)
{
	struct ifreq	 ifr;
	int		 fd;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1)
		return sock_syserr(s, "open /dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = (a->tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
	strlcpy(ifr.ifr_name, a->ifname, sizeof(ifr.ifr_name));
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		sock_syserr(s, "ioctl TUNSETIFF");
		if (errno == EPERM)
			strlcat(s->err, " (needs CAP_NET_ADMIN)", sizeof(s->err));
		else if (errno == EBUSY || errno == EINVAL)
			strlcat(s->err, " (name in use?)", sizeof(s->err));
		close(fd);
		return -1;
	}
	if (tun_configure(a, s, ifr.ifr_name) == -1 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
		if (s->err[0] == '\0')
			sock_syserr(s, "fcntl O_NONBLOCK");
		close(fd);
		return -1;
	}
	snprintf(s->local, sizeof(s->local), "%s", ifr.ifr_name);
	s->rfd = s->wfd = fd;
	s->io = IO_PACKET;
	return 0;
}
