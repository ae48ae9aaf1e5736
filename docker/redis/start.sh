#!/bin/sh
# start.sh data|sentinel|cluster [LINE…]: starts this container's Redis from /data/<kind>.conf,
# a file Redis may rewrite. Sentinel records there the topology it learns, and a data server that
# the sentinels turn into a replica (or a primary) records its new role (CONFIG REWRITE), so a
# container that restarts comes back as what it had become, not as what compose first said.
# The first start writes the file: the shared settings of /etc/redis-lab/<kind>.conf, then this
# service's own LINEs. Later starts keep it. The image's entrypoint then drops root.
set -eu
kind=$1
shift
conf=/data/$kind.conf
if [ ! -f "$conf" ]; then
    cp "/etc/redis-lab/$kind.conf" "$conf"
    for line in "$@"; do
        printf '%s\n' "$line" >>"$conf"
    done
fi
if [ "$kind" = sentinel ]; then
    exec docker-entrypoint.sh redis-server "$conf" --sentinel
fi
exec docker-entrypoint.sh redis-server "$conf"
