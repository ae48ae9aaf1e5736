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
    # Whole or not at all: a container killed half-way must not keep a file without its replicaof.
    cp "/etc/redis-lab/$kind.conf" "$conf.new"
    for line in "$@"; do
        printf '%s\n' "$line" >>"$conf.new"
    done
    mv "$conf.new" "$conf"
fi
if [ "$kind" = sentinel ]; then
    exec docker-entrypoint.sh redis-server "$conf" --sentinel
fi
exec docker-entrypoint.sh redis-server "$conf"
