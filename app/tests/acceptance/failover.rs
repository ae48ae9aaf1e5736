//! The `redis` strategy past one server, on Redis Sentinel (one primary, two replicas, three
//! sentinels) and Redis Cluster (three primaries with a replica each), all private
//! `redis-server`s: what a primary's crash costs the sessions.
//!
//! Redis replicates asynchronously. The lab's replicas reach the primary through a relay the test
//! can cut, so "a write the primary acknowledged and no replica received" is not a race to hope
//! for but a step of the test: without `WAIT` the app acknowledges it and the failover loses it;
//! with `REDIS_WAIT_REPLICAS=1` the app answers 503 instead, and loses nothing it acknowledged.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sessionlab::{
    lab::{Lab, LabConfig, RedisTopology},
    session::{Backend, SessionId, redis::KEY_PREFIX, redis_client::hash_slot},
};

use crate::harness::{Client, spawn_lab_with, username};

pub async fn sentinel_lab(wait_replicas: u32) -> Lab {
    let mut config = LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into());
    config.redis_topology = RedisTopology::Sentinel;
    config.extra_env.push(("REDIS_WAIT_REPLICAS".into(), wait_replicas.to_string()));
    spawn_lab_with(config).await
}

/// What the client saw between the primary's crash and its first successful write.
pub struct Outage {
    pub took: Duration,
    pub unavailable: usize,
}

/// Adds `product` every 50 ms until the app acknowledges it.
pub async fn write_until_acknowledged(client: &Client, product: i64) -> Outage {
    let start = Instant::now();
    let mut unavailable = 0;
    loop {
        let reply = client.add(product, 1).await;
        match reply.status {
            StatusCode::OK | StatusCode::CREATED => return Outage { took: start.elapsed(), unavailable },
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("a write during the failover got {other}, not 503: {}", reply.text),
        }
        assert!(start.elapsed() < Duration::from_secs(60), "writes did not come back within a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs in, adds product 1, and waits until both replicas have it.
pub async fn logged_in_with_one_replicated_item(lab: &Lab) -> Client {
    let client = Client::new(lab.url());
    client.register_and_login(&username("failover")).await;
    assert_eq!(client.add(1, 1).await.status, StatusCode::OK);
    lab.sentinel().unwrap().lock().await.wait_in_sync().await.unwrap();
    client
}

pub async fn products_in_cart(client: &Client) -> Vec<i64> {
    let (reply, items) = client.cart().await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    items.into_iter().map(|(product, _)| product).collect()
}

#[tokio::test]
async fn a_failover_keeps_replicated_sessions_and_loses_an_acknowledged_write_no_replica_had() {
    let lab = sentinel_lab(0).await;
    let client = logged_in_with_one_replicated_item(&lab).await;
    let group = lab.sentinel().unwrap();

    group.lock().await.cut_replication();
    let unreplicated = client.add(2, 1).await;
    assert_eq!(unreplicated.status, StatusCode::OK, "without WAIT the primary's word is enough");
    let old = group.lock().await.kill_primary().await.unwrap();
    let outage = write_until_acknowledged(&client, 3).await;
    let new = group.lock().await.wait_for_failover(old, Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "sentinel failover without WAIT: writes back after {} ms, {} answers 503 meanwhile; primary {old} -> {new}",
        outage.took.as_millis(),
        outage.unavailable
    );

    assert_eq!(client.get("/api/me").await.status, StatusCode::OK, "the replicated session survived");
    assert_eq!(products_in_cart(&client).await, vec![1, 3], "the acknowledged product 2 is lost, as Redis warns");
    lab.shutdown().await;
}

#[tokio::test]
async fn with_wait_a_write_no_replica_confirmed_is_a_503_and_no_acknowledged_write_is_lost() {
    let lab = sentinel_lab(1).await;
    let client = logged_in_with_one_replicated_item(&lab).await;
    let group = lab.sentinel().unwrap();

    group.lock().await.cut_replication();
    let unconfirmed = client.add(2, 1).await;
    assert_eq!(unconfirmed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", unconfirmed.text);
    let old = group.lock().await.kill_primary().await.unwrap();
    let outage = write_until_acknowledged(&client, 3).await;
    group.lock().await.wait_for_failover(old, Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "sentinel failover with WAIT 1: writes back after {} ms, {} answers 503 meanwhile",
        outage.took.as_millis(),
        outage.unavailable
    );

    assert_eq!(client.get("/api/me").await.status, StatusCode::OK, "the replicated session survived");
    assert_eq!(products_in_cart(&client).await, vec![1, 3], "every acknowledged product is there");
    lab.shutdown().await;
}

/// The old primary, started again, comes back as a replica: the app keeps writing to the new
/// primary and a read finds everything acknowledged since.
#[tokio::test]
async fn the_old_primary_comes_back_as_a_replica_and_the_app_keeps_its_sessions() {
    let lab = sentinel_lab(0).await;
    let client = logged_in_with_one_replicated_item(&lab).await;
    let group = lab.sentinel().unwrap();
    let old = group.lock().await.kill_primary().await.unwrap();
    write_until_acknowledged(&client, 2).await;
    group.lock().await.wait_for_failover(old, Duration::from_secs(30)).await.unwrap();
    group.lock().await.restart(old).unwrap();
    group.lock().await.wait_in_sync().await.unwrap();
    assert_eq!(client.add(3, 1).await.status, StatusCode::OK);
    assert_eq!(products_in_cart(&client).await, vec![1, 2, 3]);
    lab.shutdown().await;
}

async fn cluster_lab(wait_replicas: u32) -> Lab {
    let mut config = LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into());
    config.redis_topology = RedisTopology::Cluster;
    config.extra_env.push(("REDIS_WAIT_REPLICAS".into(), wait_replicas.to_string()));
    spawn_lab_with(config).await
}

/// The Redis Cluster hash slot of `client`'s session.
pub fn session_slot(client: &Client) -> u16 {
    let id = SessionId::parse(&client.session_cookie().unwrap()).unwrap();
    hash_slot(&format!("{KEY_PREFIX}{}", id.storage_key()))
}

/// A logged-in client whose session lives in another shard than `slot`'s.
async fn client_on_another_shard(lab: &Lab, slot: u16) -> Client {
    let group = lab.cluster().unwrap().lock().await;
    let shard = group.primary_of(slot).await.unwrap();
    for _ in 0..30 {
        let client = Client::new(lab.url());
        client.register_and_login(&username("shard")).await;
        if group.primary_of(session_slot(&client)).await.unwrap() != shard {
            return client;
        }
    }
    panic!("30 sessions in a row hashed to one shard");
}

/// A shard's primary dies: its replica takes over, and its users' sessions survive. The users of
/// the two other shards never notice (`cluster-require-full-coverage no`).
#[tokio::test]
async fn a_cluster_failover_costs_only_the_failed_shard_and_keeps_its_sessions() {
    let lab = cluster_lab(0).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("cluster")).await;
    assert_eq!(client.add(1, 1).await.status, StatusCode::OK);
    let slot = session_slot(&client);
    let bystander = client_on_another_shard(&lab, slot).await;
    let group = lab.cluster().unwrap();
    group.lock().await.wait_in_sync().await.unwrap();

    let old = group.lock().await.kill_primary_of(slot).await.unwrap();
    assert_eq!(bystander.add(2, 1).await.status, StatusCode::OK, "another shard's user kept writing");
    let outage = write_until_acknowledged(&client, 3).await;
    group.lock().await.wait_for_failover(slot, old, Duration::from_secs(30)).await.unwrap();
    eprintln!(
        "cluster failover without WAIT: writes back after {} ms, {} answers 503 meanwhile",
        outage.took.as_millis(),
        outage.unavailable
    );
    assert_eq!(client.get("/api/me").await.status, StatusCode::OK, "the replicated session survived");
    assert_eq!(products_in_cart(&client).await, vec![1, 3]);
    assert_eq!(products_in_cart(&bystander).await, vec![2]);
    lab.shutdown().await;
}

/// `WAIT` asks only the shard that took the write. With one replica per shard, a promoted
/// primary has none left: its shard refuses writes (503) until the old primary is back as its
/// replica, while the other shards keep confirming theirs.
#[tokio::test]
async fn on_a_cluster_wait_asks_the_written_shard_and_a_shard_without_replica_refuses_writes() {
    let lab = cluster_lab(1).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("cluster")).await;
    assert_eq!(client.add(1, 1).await.status, StatusCode::OK, "a replica confirms each write");
    let slot = session_slot(&client);
    let bystander = client_on_another_shard(&lab, slot).await;
    let group = lab.cluster().unwrap();
    group.lock().await.wait_in_sync().await.unwrap();

    let old = group.lock().await.kill_primary_of(slot).await.unwrap();
    group.lock().await.wait_for_failover(slot, old, Duration::from_secs(30)).await.unwrap();
    let unconfirmed = client.add(2, 1).await;
    assert_eq!(unconfirmed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", unconfirmed.text);
    assert_eq!(bystander.add(2, 1).await.status, StatusCode::OK, "the other shards still have their replicas");

    group.lock().await.restart(old).unwrap();
    write_until_acknowledged(&client, 3).await;
    assert_eq!(client.get("/api/me").await.status, StatusCode::OK);
    let products = products_in_cart(&client).await;
    assert!(products == [1, 3] || products == [1, 2, 3], "product 1 and 3 were acknowledged: {products:?}");
    lab.shutdown().await;
}
