//! `Idempotency-Key` on the cart's API and forms: a repeat gets the first answer and changes
//! nothing, on the strategies that keep the session on the server; `cookie` cannot honour it
//! (a retry carries the old state) and says so in the docs — its behaviour is asserted too.
use reqwest::StatusCode;
use serde_json::json;
use sessionlab::session::Backend;

use crate::harness::{Client, Reply, spawn_lab, username};

async fn add_with_key(client: &Client, key: &str, product: i64) -> Reply {
    let req = client
        .http()
        .post(format!("{}/api/cart/items", client.base_url().trim_end_matches('/')))
        .header("Idempotency-Key", key)
        .json(&json!({"product_id": product, "qty": 1}));
    crate::harness::reply(req.send().await.unwrap()).await
}

fn qty(items: &[(i64, i64)], product: i64) -> i64 {
    items.iter().find(|(id, _)| *id == product).map_or(0, |(_, q)| *q)
}

#[tokio::test]
async fn redis_a_repeated_key_replays_the_first_answer() {
    let lab = spawn_lab(Backend::Redis).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("idem")).await;

    let first = add_with_key(&client, "\"k-1\"", 7).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    client.add(8, 1).await;
    // The repeat lands wherever HAProxy sends it, and gets the answer the first request got.
    for _ in 0..3 {
        let again = add_with_key(&client, "k-1", 7).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(again.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
        assert_eq!(again.body, first.body, "the first answer, without the later add");
    }
    let (_, items) = client.cart().await;
    assert_eq!((qty(&items, 7), qty(&items, 8)), (1, 1));

    let reused = add_with_key(&client, "k-1", 9).await;
    assert_eq!(
        (reused.status, reused.body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    for bad in ["\"\"", "\"unterminated", "a\\b"] {
        let malformed = add_with_key(&client, bad, 9).await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{bad}: {}", malformed.text);
        assert_eq!(malformed.body["error"], "invalid_idempotency_key");
    }
    assert_eq!(qty(&client.cart().await.1, 9), 0, "refused requests changed the cart");
    lab.shutdown().await;
}

/// The shop's forms carry a fresh key each: the same form submitted twice adds once.
#[tokio::test]
async fn memcached_a_form_submitted_twice_adds_once() {
    let lab = spawn_lab(Backend::Memcached).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("twice")).await;
    let page = client.get("/").await;
    let csrf = crate::harness::csrf_field(&page.text).expect("a CSRF field");
    let form = page.text.split("<form").find(|f| f.contains("name=\"product_id\" value=\"3\"")).unwrap();
    let key = form.split("name=\"idempotency_key\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let fields = [("csrf", csrf.as_str()), ("product_id", "3"), ("back", "/"), ("idempotency_key", key.as_str())];
    for _ in 0..2 {
        let res = client.post_form("/cart/add", &fields).await;
        assert!(res.status.is_success() || res.status.is_redirection(), "{}", res.status);
    }
    assert_eq!(qty(&client.cart().await.1, 3), 1);
    let next = client.get("/").await;
    assert!(!next.text.contains(&key), "a rendered form reuses a key");
    lab.shutdown().await;
}

/// `cookie` keeps its state in the client: a repeat carries the state without the first change,
/// so no record could stop it. Keys are ignored there, as its strategy page says.
#[tokio::test]
async fn cookie_ignores_keys_as_documented() {
    let lab = spawn_lab(Backend::Cookie).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("nokeys")).await;
    for _ in 0..2 {
        let reply = add_with_key(&client, "same", 4).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.headers.get("idempotent-replayed").is_none());
    }
    assert_eq!(qty(&client.cart().await.1, 4), 2);
    lab.shutdown().await;
}
