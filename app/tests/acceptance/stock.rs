//! What the stock actix stack (`actix-redis`, `actix-cookie`) does where sessionlab's own layer
//! differs: each outcome is declared in `docs/strategies/actix-session.md` and asserted here, so
//! the comparison cannot drift from what the code does.
use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;
use sessionlab::session::{Backend, COOKIE_NAME};

use crate::harness::{Client, Reply, redis_commands, spawn_lab, username};

/// The `sl_session` cookie a response set, as `name=value`.
fn set_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// Commands Redis ran for `reads` logged-in `GET /api/cart` requests, per read.
async fn commands_per_read(backend: Backend, reads: u64) -> BTreeMap<String, f64> {
    let lab = spawn_lab(backend).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("count")).await;
    client.add(1, 1).await;
    for _ in 0..6 {
        client.cart().await;
    }
    let url = lab.store().expect("a private Redis").lock().await.url();
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    crate::harness::pause_health_checks(&lab).await;
    let before = redis_commands(&mut conn).await;
    for _ in 0..reads {
        let (reply, items) = client.cart().await;
        assert_eq!((reply.status, items), (StatusCode::OK, vec![(1, 1)]));
    }
    let after = redis_commands(&mut conn).await;
    lab.shutdown().await;
    after
        .iter()
        .map(|(cmd, n)| (cmd.clone(), (n - before.get(cmd).copied().unwrap_or(0)) as f64 / reads as f64))
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

/// A logged-in read on `actix-redis`: the load (`GET`), the visit deadline's rewrite of the whole
/// session (`SET … XX`), and one pool checkout for each, which pipelines `UNWATCH` + `PING`.
/// sessionlab's `redis` does the same read with one `GETEX` (`redis_store.rs`).
#[tokio::test]
async fn actix_redis_a_read_costs_six_redis_commands_and_a_write() {
    let per_read = commands_per_read(Backend::ActixRedis, 40).await;
    println!("actix-redis, Redis commands per logged-in read: {per_read:?}");
    let expected: BTreeMap<String, f64> =
        [("get", 1.0), ("set", 1.0), ("unwatch", 2.0), ("ping", 2.0)].map(|(c, n)| (c.to_owned(), n)).into();
    assert_eq!(per_read, expected);
}

/// Redis down: actix-session turns the failed load into an empty 500 before any handler runs,
/// where sessionlab's layer answers 503 with an explanation. `/readyz` still tells the truth,
/// and the stack heals once Redis is back.
#[tokio::test]
async fn actix_redis_a_store_outage_is_an_opaque_500() {
    let lab = spawn_lab(Backend::ActixRedis).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("outage")).await;
    client.add(3, 1).await;
    lab.store().unwrap().lock().await.stop().await;
    let api = client.get("/api/cart").await;
    assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", api.text);
    assert!(!api.text.contains("session_store_unavailable"), "{}", api.text);
    assert_eq!(client.get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);
    lab.store().unwrap().lock().await.start_again().await.unwrap();
    let healed = std::time::Instant::now();
    while client.get("/api/cart").await.status != StatusCode::OK {
        assert!(healed.elapsed() < std::time::Duration::from_secs(5), "did not heal");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    lab.shutdown().await;
}

/// `actix-cookie` checks 4,064 bytes of plaintext; encrypted and base64-encoded, the cookie is
/// about a third larger. Between the two, a request answers 200 with a `Set-Cookie` that a
/// browser drops without a word (see `browser.rs` for Chromium doing it); past the plaintext
/// limit, the answer becomes an empty 500 after the handler already accepted the change.
#[tokio::test]
async fn actix_cookie_a_big_cart_gets_a_cookie_browsers_drop_then_a_500() {
    let lab = spawn_lab(Backend::ActixCookie).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("wall")).await;
    let products = client.get("/api/products").await.body.as_array().unwrap().len() as i64;
    let (mut dropped_from, mut failed_at) = (None, None);
    for id in 1..=products {
        let reply = client.add(id, 1).await;
        if reply.status == StatusCode::INTERNAL_SERVER_ERROR {
            failed_at = Some(id);
            break;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let bytes = set_cookie(&reply).expect("the stock stack re-sends its cookie").len();
        if bytes > 4096 && dropped_from.is_none() {
            dropped_from = Some((id, bytes));
        }
    }
    let (first_dropped, bytes) = dropped_from.expect("no Set-Cookie over 4,096 bytes before the 500");
    let failed_at = failed_at.expect("actix-session's 4,064-byte plaintext check never fired");
    println!(
        "actix-cookie: line {first_dropped} answered 200 with a {bytes}-byte cookie (browsers drop it); \
         line {failed_at} answered 500"
    );
    assert!(first_dropped < failed_at);
    lab.shutdown().await;
}

/// "Your devices" needs a per-user index; the stock stack keeps none, and says so.
#[tokio::test]
async fn actix_redis_has_no_device_list_and_says_why() {
    let lab = spawn_lab(Backend::ActixRedis).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("devices")).await;
    let list = client.get("/api/sessions").await;
    assert_eq!(list.status, StatusCode::NOT_FOUND, "{}", list.text);
    assert_eq!(list.body["error"], "not_supported_by_strategy");
    assert!(list.body["message"].as_str().unwrap().contains("keeps no list"), "{}", list.text);
    let page = client.get("/devices").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.text.contains("keeps no list"), "{}", page.text);
    // The rest of the account works: the session is intact.
    assert_eq!(client.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    lab.shutdown().await;
}
