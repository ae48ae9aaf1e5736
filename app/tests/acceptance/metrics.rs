//! `/metrics` on every replica and on HAProxy's stats port: the store calls the app counts agree
//! with the commands Redis counts, and session events and request latencies are there.
use sessionlab::{
    lab::LabConfig,
    metrics::{parse, sum},
    session::Backend,
};

use crate::harness::{Client, redis_commands, spawn_lab_with, username};

const STORE_CALLS: &str = "sessionlab_store_operation_duration_seconds_count";

/// Every replica's samples, summed by the caller.
async fn scrape_replicas(lab: &sessionlab::lab::Lab) -> Vec<sessionlab::metrics::Sample> {
    let mut samples = Vec::new();
    for replica in lab.state().replicas {
        let text = reqwest::get(format!("{}/metrics", replica.url)).await.unwrap().text().await.unwrap();
        samples.extend(parse(&text));
    }
    samples
}

#[tokio::test]
async fn store_calls_sessions_and_requests_are_counted_and_agree_with_redis() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("metrics")).await;
    client.add(1, 1).await;
    let url = lab.store().unwrap().lock().await.url();
    let mut redis = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();

    crate::harness::pause_health_checks(&lab).await;
    let (before, redis_before) = (scrape_replicas(&lab).await, redis_commands(&mut redis).await);
    for _ in 0..30 {
        client.cart().await;
    }
    for n in 0..5 {
        client.add(2 + n, 1).await;
    }
    let (after, redis_after) = (scrape_replicas(&lab).await, redis_commands(&mut redis).await);
    let delta = |matching: &[(&str, &str)]| sum(&after, STORE_CALLS, matching) - sum(&before, STORE_CALLS, matching);
    assert_eq!(delta(&[("op", "load"), ("result", "hit")]), 35.0, "30 reads and 5 writes each load once");
    assert_eq!(delta(&[("op", "save"), ("result", "ok")]), 5.0);
    assert_eq!(delta(&[]), 40.0, "nothing else touched the store");
    let redis_delta =
        |cmd: &str| redis_after.get(cmd).copied().unwrap_or(0) - redis_before.get(cmd).copied().unwrap_or(0);
    assert_eq!(redis_delta("getex") as f64, delta(&[("op", "load")]), "Redis agrees on reads");
    assert_eq!(redis_delta("evalsha") as f64, delta(&[("op", "save")]), "Redis agrees on writes");

    assert_eq!(sum(&after, "sessionlab_sessions_total", &[("event", "renewed")]), 1.0, "one log-in");
    let cart_requests = sum(
        &after,
        "sessionlab_http_request_duration_seconds_count",
        &[("route", "/api/cart"), ("method", "GET"), ("status", "200")],
    );
    assert_eq!(cart_requests, 30.0);

    // Operators scrape the replicas and HAProxy's stats port; the public port does not serve it.
    let public = client.get("/metrics").await;
    assert_eq!(public.status, reqwest::StatusCode::NOT_FOUND, "{}", public.text);

    let stats = lab.state().haproxy.stats_url;
    let haproxy = reqwest::get(format!("{stats}metrics")).await.unwrap().text().await.unwrap();
    assert!(sum(&parse(&haproxy), "haproxy_backend_http_responses_total", &[("proxy", "replicas")]) > 0.0);
    lab.shutdown().await;
}

/// Label values are bounded: requests with made-up methods do not each add a series that the
/// replica keeps (and serves) for ever.
#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Cookie, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let replica = lab.state().replicas[0].url.clone();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for n in 0..40 {
        let method = reqwest::Method::from_bytes(format!("FOO{n}").as_bytes()).unwrap();
        http.request(method, format!("{replica}/api/cart")).send().await.unwrap();
    }
    let text = http.get(format!("{replica}/metrics")).send().await.unwrap().text().await.unwrap();
    let methods: std::collections::BTreeSet<String> = parse(&text)
        .into_iter()
        .filter(|s| s.name.starts_with("sessionlab_http_request_duration_seconds"))
        .flat_map(|s| s.labels.into_iter().filter(|(k, _)| k == "method").map(|(_, v)| v))
        .collect();
    assert!(methods.contains("other"), "made-up methods are counted, as `other`: {methods:?}");
    assert!(!methods.iter().any(|m| m.starts_with("FOO")), "a made-up method became a label: {methods:?}");
    lab.shutdown().await;
}
