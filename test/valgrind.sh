#!/bin/sh
# DGRELAY for `make valgrind`: dgrelay under memcheck.  An invalid access,
# a use of uninitialised memory or a leak makes it exit 99 and leaves a log
# in $VG_LOGS (empty logs when clean: -q).
exec valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full \
    --suppressions="$(dirname "$0")/valgrind.supp" \
    --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect \
    --log-file="${VG_LOGS:-/tmp}/vg.%p.log" \
    "$(dirname "$0")/../dgrelay" "$@"
