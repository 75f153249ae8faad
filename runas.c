/*
 * runas.c: -Z user, who dgrelay becomes once its addresses are open, and
 * who an exec: command runs as (exec.c calls it in the command's child).
 */
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "dgrelay.h"

const char *
runas_lookup(const char *name, struct runas *r)
{
	struct passwd	*pw;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
		return errno != 0 ? strerror(errno) : "no such user";
	if (strlcpy(r->name, pw->pw_name, sizeof(r->name)) >= sizeof(r->name))
		return "name too long";
	r->uid = pw->pw_uid;
	r->gid = pw->pw_gid;
	return NULL;
}

const char *
runas_switch(const struct runas *r)
{
	if (initgroups(r->name, r->gid) == -1)
		return "initgroups";
	if (setgid(r->gid) == -1)
		return "setgid";
	if (setuid(r->uid) == -1)
		return "setuid";
	/* no way back: a root that could regain privileges did not drop */
	if (r->uid != 0 && (setuid(0) != -1 || getuid() != r->uid ||
	    geteuid() != r->uid)) {
		errno = EPERM;
		return "setuid(0) succeeded, so the drop";
	}
	return NULL;
}

int
runas_become(const struct runas *r)
{
	const char	*call;

	if ((call = runas_switch(r)) == NULL)
		return 0;
	logerr("-Z %s: %s", r->name, call);
	return -1;
}
