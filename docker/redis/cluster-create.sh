#!/bin/sh
# Joins redis-node-1 … redis-node-6 into one Redis Cluster, three primaries with a replica each,
# on the stack's first start; a later start finds it formed and leaves it as it is.
#
# CLUSTER MEET takes addresses, not hostnames, so the nodes are introduced by the addresses they
# have now. The nodes then tell clients their hostnames (cluster-announce-hostname), and a node
# that restarts with another address is recognised by its ID, so nothing depends on the
# addresses afterwards.
set -eu
nodes="redis-node-1 redis-node-2 redis-node-3 redis-node-4 redis-node-5 redis-node-6"
if redis-cli -h redis-node-1 cluster info | grep -q '^cluster_known_nodes:6'; then
    echo "the cluster is formed already"
    exit 0
fi
addresses=""
for node in $nodes; do
    address=$(getent hosts "$node" | cut -d' ' -f1)
    [ -n "$address" ] || { echo "$node does not resolve" >&2; exit 1; }
    addresses="$addresses $address:6379"
done
# shellcheck disable=SC2086 # one argument per node
exec redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
