//! Under pressure: concurrent writes to one session, and bad input of every kind.

use reqwest::StatusCode;
use serde_json::json;
use sessionlab::session::COOKIE_NAME;

use crate::harness::{Client, Mode, caps, spawn_lab, username};

/// 50 concurrent "add one" requests of one logged-in session, through HAProxy to three replicas.
/// Compare-and-set strategies end with exactly 50; a 409 would be an honest refusal, never an
/// acknowledged write that vanished. Cookie and JWT keep whichever copy the client got last:
/// the losses are counted and reported, as the docs say.
pub async fn concurrent_adds_lose_nothing(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("race")).await;
    client.add(2, 1).await;
    // One browser: one cookie jar, which keeps whatever cookie the last response set (and
    // HAProxy's SERVERID, for sticky).
    let http = client.http();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = http.post(format!("{}/api/cart/items", lab.url())).json(&json!({"product_id": 1, "qty": 1}));
        requests.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    let (mut acknowledged, mut refused) = (0, 0);
    while let Some(status) = requests.join_next().await {
        match status.unwrap().unwrap() {
            StatusCode::OK => acknowledged += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("{backend}: unexpected {other}"),
        }
    }
    let (_, items) = client.cart().await;
    let qty = items.iter().find(|(id, _)| *id == 1).map_or(0, |(_, q)| *q);
    println!("{backend}: 50 concurrent adds: {acknowledged} acknowledged, {refused} refused (409), cart holds {qty}");
    if caps(mode).lossless {
        assert_eq!(qty, acknowledged, "{backend} lost acknowledged writes");
        assert_eq!(qty, 50, "{backend} refused {refused} of 50");
    } else if backend.is_stock() {
        // actix-session writes `SET … XX` with what each request read: last writer wins, and
        // 50 at once through six workers always overlap.
        assert!((1..acknowledged).contains(&qty), "{backend} is declared to lose concurrent updates: {qty}");
    } else {
        // Each response carries its own copy of the state; the browser keeps the last one it got.
        assert!((1..=acknowledged).contains(&qty), "{backend}: {qty}");
    }
    lab.shutdown().await;
}

/// Bad input of every kind, through HAProxy: each gets a clear 4xx (JSON with an error code on
/// the API, a page for forms), never a 5xx or a panic, and the user's session and cart are
/// unchanged afterwards.
pub async fn bad_input_is_a_clear_4xx_and_changes_nothing(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
    let c = Client::new(lab.url());
    c.register_and_login(&username("bad")).await;
    c.add(1, 2).await;
    let (_, cart_before) = c.cart().await;
    let http = c.http();
    let url = |path: &str| format!("{}{path}", lab.url());

    let json_bodies: &[(&str, &str, u16)] = &[
        ("/api/cart/items", r#"{"product_id": 1,"#, 400),
        ("/api/cart/items", r#""just a string""#, 422),
        ("/api/cart/items", r#"{}"#, 422),
        ("/api/cart/items", r#"{"product_id": 1, "qty": -1}"#, 422),
        ("/api/cart/items", r#"{"product_id": 1, "qty": 0}"#, 422),
        ("/api/cart/items", r#"{"product_id": 1, "qty": 100}"#, 422),
        ("/api/cart/items", r#"{"product_id": 1, "qty": 99999999999999999999999}"#, 422),
        ("/api/cart/items", r#"{"product_id": 1, "qty": 1.5}"#, 422),
        ("/api/cart/items", r#"{"product_id": 1, "qty": "3"}"#, 422),
        ("/api/cart/items", r#"{"product_id": -5, "qty": 1}"#, 404),
        ("/api/cart/items", r#"{"product_id": 9223372036854775807, "qty": 1}"#, 404),
        ("/api/cart/items", r#"{"product_id": null, "qty": 1}"#, 422),
        ("/api/register", r#"{"username": "x' OR '1'='1", "password": "long-enough-pw"}"#, 422),
        ("/api/register", r#"{"username": "robert'); DROP TABLE users;--", "password": "long-enough-pw"}"#, 422),
        ("/api/login", r#"{"username": "x' OR '1'='1' --", "password": "' OR '1'='1"}"#, 401),
        ("/api/login", r#"{"username": 42, "password": []}"#, 422),
    ];
    let long_name = format!(r#"{{"username": "{}", "password": "long-enough-pw"}}"#, "a".repeat(10_000));
    let mut cases: Vec<(String, reqwest::RequestBuilder, u16)> = json_bodies
        .iter()
        .map(|(path, body, want)| {
            (
                format!("{path} {body}"),
                http.post(url(path)).header("content-type", "application/json").body(*body),
                *want,
            )
        })
        .collect();
    cases.push((
        "very long username".into(),
        http.post(url("/api/register")).header("content-type", "application/json").body(long_name),
        422,
    ));
    cases.push((
        "non-UTF-8 username".into(),
        http.post(url("/api/register"))
            .header("content-type", "application/json")
            .body(b"{\"username\": \"\xff\xfe\", \"password\": \"long-enough-pw\"}".to_vec()),
        400,
    ));
    cases.push((
        "oversized JSON".into(),
        http.post(url("/api/cart/items")).header("content-type", "application/json").body("x".repeat(40_000)),
        413,
    ));
    cases.push((
        "text/plain".into(),
        http.post(url("/api/cart/items")).header("content-type", "text/plain").body("product_id=1"),
        415,
    ));
    cases.push((
        "no content type".into(),
        http.post(url("/api/cart/items")).body(r#"{"product_id": 1, "qty": 1}"#),
        415,
    ));
    cases.push(("negative id in a path".into(), http.delete(url("/api/cart/items/-1")), 404));
    cases.push(("huge id in a path".into(), http.delete(url("/api/cart/items/99999999999999999999999")), 404));
    cases.push((
        "form: quantity not a number".into(),
        http.post(url("/cart/add")).form(&[("csrf", "x"), ("product_id", "1"), ("qty", "many")]),
        400,
    ));
    cases.push(("form: no CSRF token".into(), http.post(url("/cart/add")).form(&[("product_id", "1")]), 400));
    let mut wrong = Vec::new();
    for (what, request, want) in cases {
        let res = request.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        if status != want {
            wrong.push(format!("{what} → {status} (want {want}) {text:.120}"));
        }
    }
    assert!(wrong.is_empty(), "{backend}:\n{}", wrong.join("\n"));
    // An empty quantity box is explained in the person's terms, not the parser's.
    let csrf = c.form_token("/cart").await;
    let empty = c.post_form("/cart/add", &[("csrf", &csrf), ("product_id", "1"), ("qty", "")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.text.contains("enter the quantity as a whole number"), "{}", empty.text);
    assert!(!empty.text.contains("cannot parse") && !empty.text.contains("Parse error"), "{}", empty.text);

    // Header and cookie garbage on a request of this very user: treated as no session, not 5xx.
    let cookie = c.session_cookie().unwrap();
    let garbage_headers = [
        ("authorization", "Bearer not-a-token".to_owned()),
        ("authorization", format!("Bearer {}", "A".repeat(5000))),
        ("authorization", "Basic dXNlcjpwYXNz".to_owned()),
        ("cookie", format!("{COOKIE_NAME}={}", "B".repeat(7000))),
        ("cookie", format!("{COOKIE_NAME}=garbage; {COOKIE_NAME}={cookie}")),
        ("cookie", format!("{COOKIE_NAME}={}", &cookie[..cookie.len() - 3])),
        ("cookie", "sl_csrf=; sl_refresh=%%%; =; ;;".to_owned()),
        ("cookie", format!("{COOKIE_NAME}=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")),
    ];
    let bare = reqwest::Client::builder().no_proxy().build().unwrap();
    for (name, value) in &garbage_headers {
        for path in ["/api/me", "/api/cart", "/cart"] {
            let res = bare.get(url(path)).header(*name, value).send().await.unwrap();
            assert!(
                res.status().is_success() || res.status().is_client_error(),
                "{backend}: {name}: {:.40} on {path} → {}",
                value,
                res.status()
            );
        }
    }

    assert_eq!(c.get("/api/me").await.status, StatusCode::OK, "{backend}: bad input logged the user out");
    assert_eq!(c.cart().await.1, cart_before, "{backend}: bad input changed the cart");
    for id in lab.replica_ids() {
        let log = std::fs::read_to_string(lab.dir().join(format!("{id}.log"))).unwrap_or_default();
        assert!(!log.contains("panicked"), "{id} panicked: {log}");
    }
    lab.shutdown().await;
}
