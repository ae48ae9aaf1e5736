//! Sharing and surviving: one session seen by every replica, pinned clients, replica crashes,
//! store restarts and outages.
use std::{collections::BTreeSet, time::Duration};

use reqwest::StatusCode;

use crate::harness::{Client, Cluster, Mode, caps, spawn_lab, username};

/// Through HAProxy, a logged-in session with a cart is seen the same on every replica (shared
/// strategies: six requests reach all three); sticky keeps one client on one replica.
pub async fn a_logged_in_cart_is_the_same_on_every_replica(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("shared")).await;
    client.add(1, 2).await;
    client.add(5, 1).await;

    let mut replicas = BTreeSet::new();
    for _ in 0..6 {
        let (reply, items) = client.cart().await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(items, vec![(1, 2), (5, 1)], "cart seen by {}", reply.replica);
        let me = client.get("/api/me").await;
        assert_eq!(me.status, StatusCode::OK, "logged in on {}", me.replica);
        replicas.insert(reply.replica);
        replicas.insert(me.replica);
    }
    let expected = if caps(mode).shared { 3 } else { 1 };
    assert_eq!(replicas.len(), expected, "{backend}: replicas seen {replicas:?}");
    lab.shutdown().await;
}

/// `sticky`: each client stays on one replica, and new clients spread over all of them.
pub async fn sticky_pins_each_client_and_spreads_new_ones(mode: impl Into<Mode>) {
    let mode = mode.into();
    let lab = spawn_lab(mode).await;
    let mut first_replicas = BTreeSet::new();
    for _ in 0..30 {
        let client = Client::new(lab.url());
        let first = client.add(3, 1).await;
        assert_eq!(first.status, StatusCode::OK);
        let pin = first
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("SERVERID="));
        assert!(pin.is_some_and(|c| c.contains("SameSite=Lax")), "HAProxy's cookie: {pin:?}");
        for _ in 0..3 {
            let (again, items) = client.cart().await;
            assert_eq!(again.replica, first.replica, "a sticky client moved");
            assert_eq!(items, vec![(3, 1)]);
        }
        first_replicas.insert(first.replica);
    }
    assert_eq!(first_replicas.len(), 3, "30 new clients reached {first_replicas:?}");
    lab.shutdown().await;
}

/// `kill -9` of the replica that served the last request. Shared strategies: the next request
/// lands elsewhere, still logged in with the same cart. Sticky: exactly the clients pinned to
/// the dead replica lose their session. The lab then brings the replica back.
pub async fn killing_the_serving_replica(mode: impl Into<Mode>) {
    let mode = mode.into();
    let lab = spawn_lab(mode).await;
    let victim = survives_a_replica_kill(&lab, mode).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lab.replica_pid(&victim).is_none() {
        assert!(std::time::Instant::now() < deadline, "{victim} was not restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lab.shutdown().await;
}

/// The replica-kill scenario on any cluster (the lab, or compose: `compose/mod.rs`).
/// Returns the replica it killed.
pub async fn survives_a_replica_kill(cluster: &dyn Cluster, mode: impl Into<Mode>) -> String {
    let mode = mode.into();
    let backend = mode.backend;
    let mut clients = Vec::new();
    for n in 0..6 {
        let client = Client::new(cluster.url());
        client.register_and_login(&username("kill")).await;
        client.add(n + 1, 2).await;
        let (reply, _) = client.cart().await;
        clients.push((client, reply.replica, n + 1));
    }
    let victim = clients[0].1.clone();
    cluster.kill(&victim).await;

    for (client, pinned_to, product) in &clients {
        let (reply, items) = client.cart().await;
        let me = client.get("/api/me").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let lost = !caps(mode).shared && *pinned_to == victim;
        if lost {
            assert_eq!(me.status, StatusCode::UNAUTHORIZED, "sticky session survived its replica");
            assert!(items.is_empty(), "sticky cart survived its replica: {items:?}");
        } else {
            assert_eq!(me.status, StatusCode::OK, "{backend}: logged out after {victim} died");
            assert_eq!(items, vec![(*product, 2)]);
        }
        if !cluster.restarts_at_once() {
            assert_ne!(reply.replica, victim, "served by the dead replica");
        }
    }
    victim
}

/// The store restarts. Durable stores (PostgreSQL, MariaDB, Redis with its append-only file) lose
/// no session; the others (memcached, Redis without persistence) lose every session, and the app
/// answers logged-out pages, never a 5xx.
pub async fn a_store_restart(mode: impl Into<Mode>) {
    let mode = mode.into();
    let durable = caps(mode).durable_store.expect("a strategy with a store");
    let lab = spawn_lab(mode).await;
    restarting_the_store(&lab, durable).await;
    lab.shutdown().await;
}

/// [`a_store_restart`] on a running lab, whose store does (`durable`) or does not keep sessions.
pub async fn restarting_the_store(lab: &sessionlab::lab::Lab, durable: bool) {
    let client = Client::new(lab.url());
    client.register_and_login(&username("restart")).await;
    client.add(2, 2).await;
    for _ in 0..3 {
        client.cart().await;
    }
    lab.store().expect("a private store").lock().await.restart().await.unwrap();

    for _ in 0..6 {
        let me = client.get("/api/me").await;
        let page = client.get("/cart").await;
        assert_eq!(page.status, StatusCode::OK, "{}: {}", page.replica, page.text);
        if durable {
            assert_eq!(me.status, StatusCode::OK, "{} lost the session in a restart: {}", me.replica, me.text);
            assert_eq!(client.cart().await.1, vec![(2, 2)]);
        } else {
            assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{} after the restart: {}", me.replica, me.text);
            assert!(page.text.contains("Your cart is empty"));
        }
    }
}

/// The store is down: a clear 503 (JSON for the API, a page for people), `/readyz` 503 while
/// `/healthz` stays 200; the store back: the same replica processes recover within 5 s.
pub async fn a_store_outage_is_a_clear_503_and_heals_by_itself(mode: impl Into<Mode>) {
    let mode = mode.into();
    let durable = caps(mode).durable_store.expect("a strategy with a store");
    let lab = spawn_lab(mode).await;
    let pids: Vec<_> = lab.replica_ids().iter().map(|id| lab.replica_pid(id)).collect();
    let client = Client::new(lab.url());
    client.register_and_login(&username("outage")).await;
    client.add(3, 1).await;
    lab.store().unwrap().lock().await.stop().await;

    for _ in 0..3 {
        let api = client.get("/api/cart").await;
        assert_eq!(
            (api.status, api.body["error"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("session_store_unavailable")),
            "{}",
            api.text
        );
        let page = client.get("/cart").await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            page.text.contains("Session store unavailable") && page.text.contains("<!doctype html>"),
            "{}",
            page.text
        );
        // The page cannot know the session, and says so: no guest's "Log in", no cart of 0.
        assert!(page.text.contains("data-testid=\"session-unknown\""), "{}", page.text);
        assert!(!page.text.contains("href=\"/login\"") && !page.text.contains("cart-badge"), "{}", page.text);
        // It promises what will happen, in this strategy's terms, not "reload in a few seconds".
        assert!(!page.text.contains("reload in a few seconds") && page.text.contains("When it is back:"));
        // The dashboard and the docs stay up: they are where a person goes to understand this.
        let dashboard = client.get("/lab").await;
        assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text);
        assert!(dashboard.text.contains("data-testid=\"store-state\"") && dashboard.text.contains(">down<"));
        assert!(dashboard.text.contains("data-testid=\"session-unknown-panel\""), "{}", dashboard.text);
        assert!(!dashboard.text.contains("data-testid=\"lost\""), "an outage is not a lost session");
        let live = client.get("/lab/state").await;
        assert_eq!((live.status, live.body["store"]["up"].clone()), (StatusCode::OK, serde_json::json!(false)));
        assert_eq!(live.body["session_unknown"], serde_json::json!(true));
        assert_eq!(client.get(&format!("/docs/{}", mode.backend)).await.status, StatusCode::OK);
        let ready = client.get("/readyz").await;
        assert_eq!(
            (ready.status, ready.body["session_store"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
        );
        assert_eq!(client.get("/healthz").await.status, StatusCode::OK, "liveness must not depend on the store");
    }

    lab.store().unwrap().lock().await.start_again().await.unwrap();
    let started = std::time::Instant::now();
    let mut healthy_in_a_row = 0;
    while healthy_in_a_row < 6 {
        assert!(started.elapsed() < Duration::from_secs(5), "replicas did not recover within 5 s");
        let ok = client.get("/api/cart").await.status == StatusCode::OK
            && client.get("/readyz").await.status == StatusCode::OK;
        healthy_in_a_row = if ok { healthy_in_a_row + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let me = client.get("/api/me").await.status;
    assert_eq!(me == StatusCode::OK, durable, "after the outage: {me}");
    let dashboard = client.get("/lab").await;
    assert!(dashboard.text.contains(">up<") && !dashboard.text.contains("session-unknown"), "{}", dashboard.text);
    let after: Vec<_> = lab.replica_ids().iter().map(|id| lab.replica_pid(id)).collect();
    assert_eq!(pids, after, "recovery must not need a replica restart");
    lab.shutdown().await;
}

/// Users add to their carts, each add with its own `Idempotency-Key`, while a replica is killed:
/// HAProxy replays the keyed POSTs it could not get an answer for on another replica, and the
/// key recorded in the session makes each change happen once. No add fails, none is lost, none
/// is applied twice (`make compare` runs the same experiment at full size).
pub async fn keyed_posts_through_a_kill_happen_exactly_once(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    use sessionlab::compare::{Disruption, Scale, under_load};
    let lab = spawn_lab(mode).await;
    let scale = Scale { load_seconds: 1.0, chaos_users: 20, chaos_seconds: 4.0 };
    let chaos = under_load(&lab, scale, Disruption::KillReplica).await.unwrap();
    println!("{backend}: {chaos:?}");
    assert!(chaos.acknowledged_writes > 0);
    assert_eq!(
        (chaos.failed_requests, chaos.acknowledged_writes_lost, chaos.writes_applied_twice),
        (0, 0, 0),
        "{backend}: failed, lost, applied twice"
    );
    lab.shutdown().await;
}
