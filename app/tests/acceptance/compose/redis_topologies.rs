//! The `redis` strategy on docker-compose.yml's Redis topologies, started as the redis page tells
//! users (`docker compose --env-file docker/redis-sentinel.env up`, or `redis-cluster.env`): a
//! primary killed with `docker compose kill` while users write, and started again.
//!
//! What the containers add to the native `failover.rs`: the servers find each other by Docker's
//! DNS names (the sentinels name the primary by hostname, the cluster sends clients to a node by
//! hostname), and a container that comes back keeps the role Redis gave it, not the one compose
//! first did. Both settings files ship with `REDIS_WAIT_REPLICAS=1`, so every write the app
//! acknowledged must survive the failover.
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{
    URL,
    stack::{Stack, Topology},
};
use crate::{
    failover::{products_in_cart, session_slot, write_until_acknowledged},
    harness::{Client, username},
};

/// Logged in through the stack, with product 1 in the cart.
async fn shopper(name: &str) -> Client {
    let client = Client::new(URL);
    client.register_and_login(&username(name)).await;
    let reply = client.add(1, 1).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    client
}

/// Polls `probe` every 250 ms until it returns something, for at most a minute.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within a minute");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The server the sentinels name as the primary now, by its hostname.
fn sentinel_primary(stack: &Stack) -> String {
    let reply =
        stack.exec("sentinel-1", &["redis-cli", "-p", "26379", "sentinel", "get-master-addr-by-name", "sessionlab"]);
    reply.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn redis_sentinel_fails_over_to_a_replica_and_loses_nothing_acknowledged() {
    let stack = Stack::up_redis(Topology::Sentinel).await;
    assert_eq!(sentinel_primary(&stack), "redis-a", "the sentinels name the primary by its hostname");
    // The sentinels learn the replicas from the primary's INFO, every ten seconds: a failover
    // before they know one has nothing to promote.
    for sentinel in ["sentinel-1", "sentinel-2", "sentinel-3"] {
        eventually(&format!("{sentinel} knows both replicas"), || {
            let replicas = stack.exec(sentinel, &["redis-cli", "-p", "26379", "sentinel", "replicas", "sessionlab"]);
            (replicas.lines().filter(|l| *l == "name").count() == 2).then_some(())
        })
        .await;
    }
    let users = [shopper("sentinel").await, shopper("sentinel").await, shopper("sentinel").await];
    let dashboard = users[0].get("/lab").await;
    let command = "docker compose --env-file docker/redis-sentinel.env stop redis-a";
    assert!(dashboard.text.contains("Redis Sentinel") && dashboard.text.contains(command), "{}", dashboard.text);

    stack.run(&["kill", "-s", "SIGKILL", "redis-a"]);
    for user in &users {
        let outage = write_until_acknowledged(user, 2).await;
        eprintln!(
            "sentinel in compose: writes back after {} ms, {} answers 503",
            outage.took.as_millis(),
            outage.unavailable
        );
    }
    let promoted = sentinel_primary(&stack);
    assert!(["redis-b", "redis-c"].contains(&promoted.as_str()), "the sentinels name {promoted:?}");
    // Sentinel's CONFIG REWRITE reached the file the container starts from (docker/redis/start.sh):
    // restarted, the promoted server would come back as the primary, not as redis-a's replica.
    let config = stack.exec(&promoted, &["cat", "/data/data.conf"]);
    assert!(!config.contains("replicaof"), "{promoted} was promoted, but its configuration says:\n{config}");

    // The old primary, started again, is made a replica of the new one.
    stack.run(&["start", "redis-a"]);
    eventually("redis-a back as a replica", || {
        stack.exec_succeeds("redis-a", &["sh", "-c", "redis-cli role | head -n 1 | grep -qx slave"]).then_some(())
    })
    .await;
    for user in &users {
        assert_eq!(user.get("/api/me").await.status, StatusCode::OK, "the failover lost a session");
        assert_eq!(products_in_cart(user).await, vec![1, 2], "the failover lost an acknowledged write");
    }
}

/// The hostname of the cluster node that serves `slot` as a primary now, asked of `via`.
fn cluster_primary_of(stack: &Stack, via: &str, slot: u16) -> Option<String> {
    let nodes = stack.exec(via, &["redis-cli", "cluster", "nodes"]);
    nodes.lines().find_map(|line| {
        // <id> <ip:port@bus,hostname> <flags> <primary> <ping> <pong> <epoch> <link> <slots…>
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        if !flags.contains("master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| match range.split_once('-') {
            Some((from, to)) => from.parse().is_ok_and(|f: u16| f <= slot) && to.parse().is_ok_and(|t: u16| slot <= t),
            None => range.parse() == Ok(slot),
        });
        serves.then(|| fields[1].split_once(',').map_or(fields[1], |(_, host)| host).to_owned())
    })
}

#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn redis_cluster_fails_over_one_shard_and_loses_nothing_acknowledged() {
    let stack = Stack::up_redis(Topology::Cluster).await;
    let user = shopper("cluster").await;
    let victim = cluster_primary_of(&stack, "redis-node-1", session_slot(&user)).expect("a primary for the slot");
    assert!(victim.starts_with("redis-node-"), "the cluster names its nodes by hostname: {victim}");
    let mut bystander = shopper("shard").await;
    for _ in 0..30 {
        if cluster_primary_of(&stack, "redis-node-1", session_slot(&bystander)).as_ref() != Some(&victim) {
            break;
        }
        bystander = shopper("shard").await;
    }
    let witness = if victim == "redis-node-1" { "redis-node-2" } else { "redis-node-1" };
    assert_ne!(cluster_primary_of(&stack, witness, session_slot(&bystander)).as_ref(), Some(&victim));

    stack.run(&["kill", "-s", "SIGKILL", &victim]);
    let promoted = eventually("a replica promoted in the failed shard", || {
        cluster_primary_of(&stack, witness, session_slot(&user)).filter(|p| *p != victim)
    })
    .await;
    eprintln!("cluster in compose: {promoted} took over from {victim}");
    let bystanders_write = bystander.add(2, 1).await;
    assert_eq!(bystanders_write.status, StatusCode::OK, "another shard's user: {}", bystanders_write.text);
    // REDIS_WAIT_REPLICAS=1: the promoted primary has no replica left to confirm a write.
    let unconfirmed = user.add(2, 1).await;
    assert_eq!(unconfirmed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", unconfirmed.text);

    // The old primary, started again, becomes the replica that confirms the shard's writes.
    stack.run(&["start", &victim]);
    write_until_acknowledged(&user, 3).await;
    assert_eq!(user.get("/api/me").await.status, StatusCode::OK, "the failover lost a session");
    let products = products_in_cart(&user).await;
    assert!(products == [1, 3] || products == [1, 2, 3], "products 1 and 3 were acknowledged: {products:?}");
    assert_eq!(products_in_cart(&bystander).await, vec![1, 2]);
}
