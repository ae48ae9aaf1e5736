//! Redis Sentinel with its primary cut off from its replicas and sentinels, while the app still
//! reaches it: the partition the sentinels answer with a failover, and the old primary does
//! not hear about. A firewall rule of the lab drops every packet between them
//! ([`SentinelGroup::partition_primary`](sessionlab::lab::sentinel::SentinelGroup)).
//!
//! The app's pooled connections keep writing to the old primary, which acknowledges every write.
//! When the partition heals, the sentinels make it a replica of the new primary, and it throws
//! away everything it took meanwhile. `min-replicas-to-write` bounds the loss: a primary that
//! has heard from no replica for `min-replicas-max-lag` seconds refuses writes, and the app asks
//! the sentinels again.
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::{
    failover::{logged_in_with_one_replicated_item, products_in_cart, sentinel_lab},
    harness::Client,
};

/// `min-replicas-max-lag` in the second test.
const MAX_LAG_SECS: u64 = 2;

/// How long after the cut a primary with `MAX_LAG_SECS` may still take writes: replicas
/// acknowledge once a second, lag is counted in whole seconds, and the primary recounts its good
/// replicas once a second.
fn refusing_after() -> Duration {
    Duration::from_secs(MAX_LAG_SECS + 3)
}

/// A write the app acknowledged, and when, from the cut.
struct Acknowledged {
    product: i64,
    after: Duration,
}

/// Adds a new product every 250 ms (the catalogue has 60), from the cut until `keep_on` after the failover; returns
/// the acknowledged ones and how many were refused (503: nothing else is allowed).
async fn write_across_the_failover(
    client: &Client,
    group: &tokio::sync::Mutex<sessionlab::lab::sentinel::SentinelGroup>,
    old: u16,
    keep_on: Duration,
) -> (Vec<Acknowledged>, usize) {
    let cut = Instant::now();
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    let mut failed_over: Option<Instant> = None;
    for product in 2..=60 {
        let reply = client.add(product, 1).await;
        match reply.status {
            StatusCode::OK => acknowledged.push(Acknowledged { product, after: cut.elapsed() }),
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("{other} during the partition: {}", reply.text),
        }
        if failed_over.is_none() && group.lock().await.wait_for_failover(old, Duration::ZERO).await.is_ok() {
            eprintln!("the sentinels promoted a replica {} ms after the cut", cut.elapsed().as_millis());
            failed_over = Some(Instant::now());
        }
        if failed_over.is_some_and(|at| at.elapsed() > keep_on) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(failed_over.is_some_and(|at| at.elapsed() > keep_on), "out of products before the failover ended");
    (acknowledged, refused)
}

/// Heals the partition and waits until the old primary is a replica of the new one, caught up.
async fn heal(group: &tokio::sync::Mutex<sessionlab::lab::sentinel::SentinelGroup>, old: u16) {
    group.lock().await.heal_primary().await.unwrap();
    let healed = Instant::now();
    while group.lock().await.role(old).await.as_deref() != Some("slave") {
        assert!(healed.elapsed() < Duration::from_secs(60), "the old primary never became a replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    group.lock().await.wait_in_sync().await.unwrap();
}

/// What the cart lost of what was acknowledged.
async fn lost<'a>(client: &Client, acknowledged: &'a [Acknowledged]) -> Vec<&'a Acknowledged> {
    let kept = products_in_cart(client).await;
    acknowledged.iter().filter(|a| !kept.contains(&a.product)).collect()
}

#[tokio::test]
async fn a_primary_cut_off_from_its_replicas_and_sentinels_loses_what_the_app_kept_writing_to_it() {
    let lab = sentinel_lab(0).await;
    let client = logged_in_with_one_replicated_item(&lab).await;
    let group = lab.sentinel().unwrap();
    let old = group.lock().await.partition_primary().await.unwrap();

    let (acknowledged, refused) = write_across_the_failover(&client, group, old, Duration::from_secs(4)).await;
    assert_eq!(refused, 0, "the old primary takes every write: nothing tells it that it was replaced");
    heal(group, old).await;

    let lost = lost(&client, &acknowledged).await;
    eprintln!("without min-replicas-to-write: {} of {} acknowledged writes lost", lost.len(), acknowledged.len());
    assert!(products_in_cart(&client).await.contains(&1), "what the replicas had before the cut is kept");
    assert!(!lost.is_empty(), "the writes the old primary took during the partition are gone");
    // Lost even long after the sentinels had promoted another: the old primary never knew.
    let last = lost.iter().map(|a| a.after).max().unwrap();
    assert!(last > refusing_after(), "the last lost write was acknowledged {last:?} after the cut");
    lab.shutdown().await;
}

#[tokio::test]
async fn min_replicas_to_write_bounds_the_loss_to_the_first_seconds_of_the_partition() {
    let lab = sentinel_lab(0).await;
    let client = logged_in_with_one_replicated_item(&lab).await;
    let group = lab.sentinel().unwrap();
    group.lock().await.config_set("min-replicas-to-write", "1").await.unwrap();
    group.lock().await.config_set("min-replicas-max-lag", &MAX_LAG_SECS.to_string()).await.unwrap();
    let old = group.lock().await.partition_primary().await.unwrap();

    let (acknowledged, refused) = write_across_the_failover(&client, group, old, Duration::from_secs(4)).await;
    heal(group, old).await;

    let lost = lost(&client, &acknowledged).await;
    eprintln!(
        "with min-replicas-max-lag {MAX_LAG_SECS}: {} of {} acknowledged writes lost, {refused} refused (503)",
        lost.len(),
        acknowledged.len()
    );
    // Refused by the old primary, the app asks the sentinels again: a 503 until they have
    // promoted a replica (none at all when that came first), then the new primary takes writes.
    let bound = refusing_after();
    assert!(lost.iter().all(|a| a.after < bound), "lost writes acknowledged after {bound:?}");
    assert!(
        acknowledged.iter().any(|a| a.after > bound),
        "writes came back on the new primary once the app asked the sentinels again"
    );
    lab.shutdown().await;
}
