#!/bin/sh
# Joins redis-node-1 … redis-node-6 into one Redis Cluster, three primaries with a replica each,
# on the stack's first start. On a later start it finds the cluster serving every slot and leaves
# it as it is.
#
# CLUSTER MEET takes addresses, not hostnames, and the nodes find each other again after a
# restart by the addresses they saved (nodes.conf). One node that comes back at a new address
# reaches the others at theirs, and they learn its new one; if they all moved (a daemon restart),
# the cluster cannot re-form by itself, and this script, run again by the next `up`, introduces
# the nodes at the addresses they have now. Clients never see the addresses: the nodes send them
# to a hostname (cluster-announce-hostname).
set -eu
nodes="redis-node-1 redis-node-2 redis-node-3 redis-node-4 redis-node-5 redis-node-6"
info=$(redis-cli -h redis-node-1 cluster info)
if echo "$info" | grep -q '^cluster_state:ok'; then
    echo "the cluster serves every slot already"
    exit 0
fi
addresses=""
for node in $nodes; do
    address=$(getent hosts "$node" | cut -d' ' -f1)
    [ -n "$address" ] || { echo "$node does not resolve" >&2; exit 1; }
    addresses="$addresses $address"
done
if echo "$info" | grep -q '^cluster_slots_assigned:16384'; then
    echo "the cluster was formed, but its nodes lost each other: introducing them again"
    for address in ${addresses#* * }; do # every node but redis-node-1 itself
        redis-cli -h redis-node-1 cluster meet "$address" 6379 >/dev/null
    done
    for _ in $(seq 60); do
        redis-cli -h redis-node-1 cluster info | grep -q '^cluster_state:ok' && exit 0
        sleep 1
    done
    echo "the cluster did not serve every slot again within a minute" >&2
    exit 1
fi
# shellcheck disable=SC2086 # one argument per node
exec redis-cli --cluster create $(for a in $addresses; do printf '%s:6379 ' "$a"; done) --cluster-replicas 1 --cluster-yes
