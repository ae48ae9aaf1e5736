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

/// A write the app acknowledged, and when it was sent, from the cut.
struct Acknowledged {
    product: i64,
    sent: Duration,
}

/// What a user saw from the cut until a while after the failover.
struct Run {
    acknowledged: Vec<Acknowledged>,
    /// Answered 503 (nothing else is allowed).
    refused: usize,
    /// When the sentinels agreed on a new primary, from the cut.
    failover: Duration,
}

/// Adds a new product every 250 ms (the catalogue has 60), from the cut until `keep_on` after
/// the failover.
async fn write_across_the_failover(
    client: &Client,
    group: &tokio::sync::Mutex<sessionlab::lab::sentinel::SentinelGroup>,
    old: u16,
    keep_on: Duration,
) -> Run {
    let cut = Instant::now();
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    let mut failover = None;
    for product in 2..=60 {
        let sent = cut.elapsed();
        let reply = client.add(product, 1).await;
        match reply.status {
            StatusCode::OK => acknowledged.push(Acknowledged { product, sent }),
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("{other} during the partition: {}", reply.text),
        }
        if failover.is_none() && group.lock().await.wait_for_failover(old, Duration::ZERO).await.is_ok() {
            failover = Some(cut.elapsed());
        }
        if let Some(failover) = failover
            && cut.elapsed() > failover + keep_on
        {
            eprintln!("the sentinels promoted a replica {} ms after the cut", failover.as_millis());
            return Run { acknowledged, refused, failover };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("out of products {:?} after the cut, before the failover ended", cut.elapsed());
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

    let run = write_across_the_failover(&client, group, old, Duration::from_secs(4)).await;
    assert_eq!(run.refused, 0, "the old primary takes every write: nothing tells it that it was replaced");
    heal(group, old).await;

    let lost = lost(&client, &run.acknowledged).await;
    eprintln!("without min-replicas-to-write: {} of {} acknowledged writes lost", lost.len(), run.acknowledged.len());
    assert!(products_in_cart(&client).await.contains(&1), "what the replicas had before the cut is kept");
    assert!(!lost.is_empty(), "the writes the old primary took during the partition are gone");
    // Lost even when sent after the sentinels had promoted another: the old primary never knew.
    let last = lost.iter().map(|a| a.sent).max().unwrap();
    assert!(last > run.failover, "the last lost write was sent {last:?} after the cut, before the failover");
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

    let Run { acknowledged, refused, .. } =
        write_across_the_failover(&client, group, old, Duration::from_secs(4)).await;
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
    assert!(lost.iter().all(|a| a.sent < bound), "lost writes sent after {bound:?}");
    assert!(
        acknowledged.iter().any(|a| a.sent > bound),
        "writes came back on the new primary once the app asked the sentinels again"
    );
    lab.shutdown().await;
}

/// `WAIT` for one replica: the old primary still applies each write, but none is acknowledged
/// without a replica's word, so none is lost; the app drops the connection and finds the new
/// primary once the sentinels name it.
#[tokio::test]
async fn with_wait_nothing_acknowledged_is_lost_and_writes_resume_at_the_new_primary() {
    let lab = sentinel_lab(1).await;
    let client = logged_in_with_one_replicated_item(&lab).await;
    let group = lab.sentinel().unwrap();
    let old = group.lock().await.partition_primary().await.unwrap();

    let run = write_across_the_failover(&client, group, old, Duration::from_secs(4)).await;
    heal(group, old).await;

    let lost = lost(&client, &run.acknowledged).await;
    eprintln!(
        "with REDIS_WAIT_REPLICAS=1: {} of {} acknowledged writes lost, {} refused (503)",
        lost.len(),
        run.acknowledged.len(),
        run.refused
    );
    assert!(lost.is_empty(), "an acknowledged write was lost");
    assert!(run.refused > 0, "the old primary's unconfirmed writes were answered 503");
    assert!(run.acknowledged.iter().any(|a| a.sent > run.failover), "writes resumed at the new primary");
    lab.shutdown().await;
}
