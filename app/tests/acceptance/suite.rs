//! The acceptance scenarios every strategy runs (see `strategies.rs`), through HAProxy with three
//! replicas. Where a strategy cannot do something by design, the scenario checks that it fails
//! the documented way, so no strategy can quietly claim more than it does.
use std::{collections::BTreeSet, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sessionlab::session::{Backend, COOKIE_NAME, SessionData, SessionId, SessionStore, cookie::CookieStore};

use crate::harness::{Client, Cluster, caps, spawn_lab, username};

/// Through HAProxy, a logged-in session with a cart is seen the same on every replica (shared
/// strategies: six requests reach all three); sticky keeps one client on one replica.
pub async fn a_logged_in_cart_is_the_same_on_every_replica(backend: Backend) {
    let lab = spawn_lab(backend).await;
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
    let expected = if caps(backend).shared { 3 } else { 1 };
    assert_eq!(replicas.len(), expected, "{backend}: replicas seen {replicas:?}");
    lab.shutdown().await;
}

/// `sticky`: each client stays on one replica, and new clients spread over all of them.
pub async fn sticky_pins_each_client_and_spreads_new_ones(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let mut first_replicas = BTreeSet::new();
    for _ in 0..30 {
        let client = Client::new(lab.url());
        let first = client.add(3, 1).await;
        assert_eq!(first.status, StatusCode::OK);
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
pub async fn killing_the_serving_replica(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let victim = survives_a_replica_kill(&lab, backend).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lab.replica_pid(&victim).is_none() {
        assert!(std::time::Instant::now() < deadline, "{victim} was not restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lab.shutdown().await;
}

/// The replica-kill scenario on any cluster (the lab, or compose in `make docker-smoke`).
/// Returns the replica it killed.
pub async fn survives_a_replica_kill(cluster: &dyn Cluster, backend: Backend) -> String {
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
        let lost = !caps(backend).shared && *pinned_to == victim;
        if lost {
            assert_eq!(me.status, StatusCode::UNAUTHORIZED, "sticky session survived its replica");
            assert!(items.is_empty(), "sticky cart survived its replica: {items:?}");
        } else {
            assert_eq!(me.status, StatusCode::OK, "{backend}: logged out after {victim} died");
            assert_eq!(items, vec![(*product, 2)]);
        }
        assert_ne!(reply.replica, victim, "served by the dead replica");
    }
    victim
}

/// Tampered, truncated, foreign and garbage cookies are "no session": no 5xx, a fresh anonymous
/// session on the next write.
pub async fn bad_session_cookies_are_no_session(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("tamper")).await;
    client.add(2, 1).await;
    let good = client.session_cookie().expect("a session cookie");

    let mut flipped = good.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let foreign_store = CookieStore::new(actix_web::cookie::Key::generate(), Duration::from_secs(600));
    let foreign_cookie =
        foreign_store.save(&SessionId::generate(), &SessionData::default(), None).await.unwrap().cookie;
    let bad = [
        String::from_utf8(flipped).unwrap(),
        good[..good.len() / 2].to_owned(),
        SessionId::generate().expose().to_owned(),
        foreign_cookie,
        "%%%not-base64%%%".to_owned(),
        "A".repeat(5000),
        String::new(),
    ];
    for value in &bad {
        let cookie = format!("{COOKIE_NAME}={value}");
        let me = client.get_with_cookie("/api/me", &cookie).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "cookie {:.40}…: {}", value, me.text);
        let cart = client.get_with_cookie("/api/cart", &cookie).await;
        assert_eq!(cart.status, StatusCode::OK);
        assert_eq!(cart.body["items"], json!([]));
        let page = client.get_with_cookie("/session", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "inspector with a bad cookie");
        let set_cookie = page
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(COOKIE_NAME));
        let fresh = set_cookie
            .expect("a fresh session cookie")
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches(&format!("{COOKIE_NAME}="))
            .to_owned();
        assert_ne!(&fresh, value);
    }
    // The real session is untouched by all of that.
    let me = client.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK);
    lab.shutdown().await;
}

/// Logging in moves the session to a new ID; the pre-login cookie does not carry the login.
/// Where the server can forget state, the old cookie is dead entirely.
pub async fn login_renews_the_session_id(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let client = Client::new(lab.url());
    let name = username("renew");
    let password = format!("pw-{name}-long");
    assert_eq!(
        client.post("/api/register", json!({"username": name, "password": password})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(client.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);

    client.add(4, 3).await;
    let before = client.session_cookie().expect("a guest session");
    let login = client.post("/api/login", json!({"username": name, "password": password})).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let after = client.session_cookie().unwrap();
    assert_ne!(before, after, "the session ID was not renewed");

    let (_, items) = client.cart().await;
    assert_eq!(items, vec![(4, 3)], "the guest cart comes along on login");
    let old = format!("{COOKIE_NAME}={before}");
    assert_eq!(client.get_with_cookie("/api/me", &old).await.status, StatusCode::UNAUTHORIZED);
    let old_cart = client.get_with_cookie("/api/cart", &old).await;
    if caps(backend).revocable {
        assert_eq!(old_cart.body["items"], json!([]), "the pre-login session still exists");
    }
    lab.shutdown().await;
}

/// Logging out destroys the session: the cookie is removed and, where the server keeps state,
/// a copy of it no longer works either.
pub async fn logout_destroys_the_session(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("logout")).await;
    client.add(6, 1).await;
    let copy = format!("{COOKIE_NAME}={}", client.session_cookie().unwrap());
    assert_eq!(client.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(client.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    assert!(client.cart().await.1.is_empty());
    let stolen = client.get_with_cookie("/api/me", &copy).await.status;
    if caps(backend).revocable {
        assert_eq!(stolen, StatusCode::UNAUTHORIZED, "a copied cookie outlived logout");
    } else {
        // The documented limitation: the server has nothing to strike the copy from.
        assert_eq!(stolen, StatusCode::OK);
    }
    lab.shutdown().await;
}

/// A full cart: the cookie strategy refuses the line that would cross 4 KB with 413 and keeps
/// the session as it was; server-side strategies take the whole catalog.
pub async fn a_cart_too_big_for_a_cookie(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("big")).await;
    let products = client.get("/api/products").await.body.as_array().unwrap().len() as i64;
    let mut refused_at = None;
    for id in 1..=products {
        let reply = client.add(id, 1).await;
        if reply.status == StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(reply.body["error"], "session_too_large", "{}", reply.text);
            refused_at = Some(id);
            break;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let (_, items) = client.cart().await;
    assert_eq!(client.get("/api/me").await.status, StatusCode::OK, "still logged in");
    if caps(backend).cookie_wall {
        let at = refused_at.expect("the cookie strategy hit no wall");
        assert!(at > 20, "the wall came after only {at} lines");
        assert_eq!(items.len() as i64, at - 1, "the refused line changed the cart");
        let bytes = client.session_cookie().unwrap().len() + COOKIE_NAME.len() + 1;
        assert!(bytes <= 4096, "cookie is {bytes} bytes");
        println!("{backend} wall: {} cart lines fit, cookie {bytes} bytes", at - 1);
    } else {
        assert_eq!(refused_at, None);
        assert_eq!(items.len() as i64, products);
    }
    lab.shutdown().await;
}

/// The JSON API's contract: statuses, error bodies, and what each endpoint returns.
pub async fn the_json_api_keeps_its_contract(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let c = Client::new(lab.url());
    let name = username("api");

    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(c.get("/readyz").await.status, StatusCode::OK);
    let products = c.get("/api/products").await;
    assert!(products.body.as_array().unwrap().len() >= 8);
    assert!(
        products.body[0]["id"].is_i64()
            && products.body[0]["name"].is_string()
            && products.body[0]["price_cents"].is_i64()
    );

    for (body, code) in [
        (json!({"username": "ab", "password": "long-enough"}), "invalid_username"),
        (json!({"username": "Nope!", "password": "long-enough"}), "invalid_username"),
        (json!({"username": &name, "password": "short"}), "password_too_short"),
    ] {
        let r = c.post("/api/register", body).await;
        assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{}", r.text);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = c.post("/api/register", json!({"username": &name, "password": "long-enough"})).await;
    assert_eq!((r.status, r.body["user"].as_str()), (StatusCode::CREATED, Some(name.as_str())));
    let taken =
        Client::new(lab.url()).post("/api/register", json!({"username": &name, "password": "long-enough"})).await;
    assert_eq!((taken.status, taken.body["error"].as_str()), (StatusCode::CONFLICT, Some("username_taken")));
    let me = c.get("/api/me").await;
    assert_eq!(me.body["user"], json!(name));
    assert_eq!(me.body["backend"], json!(backend.as_str()));
    assert_eq!(me.body["replica"], json!(me.replica));

    let stranger = Client::new(lab.url());
    let wrong = stranger.post("/api/login", json!({"username": &name, "password": "not-the-password"})).await;
    assert_eq!((wrong.status, wrong.body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong_credentials")));
    let nobody = stranger.post("/api/login", json!({"username": "nobody_here", "password": "whatever-long"})).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    let alice = stranger.post("/api/login", json!({"username": "alice", "password": "sessionlab-demo"})).await;
    assert_eq!(alice.status, StatusCode::OK, "demo user alice");

    let r = c.add(1, 2).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["product_id"], 1);
    assert_eq!(r.body["items"][0]["qty"], 2);
    assert!(r.body["items"][0]["name"].is_string());
    let price = r.body["items"][0]["price_cents"].as_i64().unwrap();
    assert_eq!(r.body["total_cents"].as_i64(), Some(price * 2));
    for qty in [0, -1, 100] {
        let bad = c.add(1, qty).await;
        assert_eq!(
            (bad.status, bad.body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_quantity")),
            "qty {qty}"
        );
    }
    assert_eq!(c.add(1, 98).await.status, StatusCode::UNPROCESSABLE_ENTITY, "a line may not pass 99");
    let unknown = c.add(9999, 1).await;
    assert_eq!((unknown.status, unknown.body["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_product")));
    let removed = c.send(Method::DELETE, "/api/cart/items/1", None).await;
    assert_eq!((removed.status, removed.body["items"].clone()), (StatusCode::OK, json!([])));
    assert_eq!(c.send(Method::DELETE, "/api/cart/items/abc", None).await.status, StatusCode::NOT_FOUND);

    let s = c.get("/api/session").await;
    assert_eq!(s.status, StatusCode::OK);
    for field in ["backend", "replica", "session_id", "user", "cart_count", "visits", "state_bytes", "ttl_seconds"] {
        assert!(s.body.get(field).is_some(), "/api/session lacks {field}: {}", s.text);
    }
    let cookie = c.session_cookie().unwrap();
    assert!(!s.text.contains(&cookie), "/api/session leaked the session cookie");
    assert_eq!(s.body["visits"].as_array().unwrap().len(), 1);
    let s2 = c.get("/api/session").await;
    assert_eq!(s2.body["visits"].as_array().unwrap().len(), 2, "each inspector look is recorded");
    c.cart().await;
    assert_eq!(c.get("/api/session").await.body["visits"].as_array().unwrap().len(), 3, "reads record no visit");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/api/cart/items", lab.url());
    let form = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("product_id=1&qty=1")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken =
        http.post(&url).header("content-type", "application/json").body("{\"product_id\": 1,").send().await.unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = broken.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    let huge = http
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("{{\"x\":\"{}\"}}", "a".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE, "oversized body");
    let missing = c.get("/api/nothing-here").await;
    assert_eq!((missing.status, missing.body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    // A cross-site form can post to the API with the browser's cookies, but not as JSON.
    let forged = c.http().post(format!("{}/api/logout", lab.url())).form(&[("x", "1")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let plain = c
        .http()
        .post(format!("{}/api/logout", lab.url()))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(c.get("/api/me").await.status, StatusCode::OK, "a forged form logged the user out");

    assert_eq!(c.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(c.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    lab.shutdown().await;
}

/// The HTML side: pages render with the footer and badge, forms need their CSRF token, and
/// logs never contain a session cookie or a password.
pub async fn pages_forms_and_logs(backend: Backend) {
    let lab = spawn_lab(backend).await;
    let c = Client::new(lab.url());
    let home = c.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains(&format!("served by <strong>{}</strong>", home.replica)), "footer");
    assert!(home.text.contains(&format!("backend: <strong>{backend}</strong>")));
    assert!(c.session_cookie().is_none(), "browsing alone created a session");
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    assert_eq!(home.headers["x-frame-options"], "DENY");
    assert!(home.headers.contains_key("referrer-policy"));
    let csrf = c.cookie("sl_csrf").expect("a CSRF cookie");

    let forged = c.post_form("/cart/add", &[("csrf", "forged"), ("product_id", "1")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.text.contains("expired"), "a clear page: {}", forged.text);
    let added = c.post_form("/cart/add", &[("csrf", &csrf), ("product_id", "7"), ("qty", "2")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let cart = c.get("/cart").await;
    assert!(cart.text.contains("data-testid=\"cart-badge\">2<"), "badge shows 2");
    assert!(cart.text.contains("Watermelon"));

    let name = username("page");
    let password = format!("pw-{name}-secret");
    let reg = c.post_form("/register", &[("csrf", &csrf), ("username", &name), ("password", &password)]).await;
    assert_eq!(reg.status, StatusCode::SEE_OTHER, "{}", reg.text);
    let session_cookie = c.session_cookie().expect("logged in");
    let wrong = Client::new(lab.url());
    wrong.get("/login").await;
    let wrong_csrf = wrong.cookie("sl_csrf").unwrap();
    let bad =
        wrong.post_form("/login", &[("csrf", &wrong_csrf), ("username", &name), ("password", "nope-nope-nope")]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text.contains("wrong username or password"));
    let short =
        wrong.post_form("/register", &[("csrf", &wrong_csrf), ("username", "newbie"), ("password", "short")]).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text.contains("at least 8"));

    let inspector = c.get("/session").await;
    assert!(inspector.text.contains(&name) && inspector.text.contains(backend.as_str()));
    let missing = c.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<!doctype html>"), "HTML 404 for pages");
    let out = c.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);

    lab_logs_never_contain(&lab, &[password, csrf, session_cookie]);
    lab.shutdown().await;
}

fn lab_logs_never_contain(lab: &sessionlab::lab::Lab, secrets: &[String]) {
    for id in lab.replica_ids() {
        let log = std::fs::read_to_string(lab.dir().join(format!("{id}.log"))).unwrap_or_default();
        assert!(log.contains("route"), "{id} logged no requests");
        for secret in secrets {
            assert!(!log.contains(secret.as_str()), "{id}'s log contains a secret");
        }
    }
}

/// The store restarts. Durable stores (PostgreSQL, MariaDB) lose no session; caches (Redis
/// without persistence, memcached) lose every session, and the app answers logged-out pages,
/// never a 5xx.
pub async fn a_store_restart(backend: Backend) {
    let durable = caps(backend).durable_store.expect("a strategy with a store");
    let lab = spawn_lab(backend).await;
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
    lab.shutdown().await;
}

/// The store is down: a clear 503 (JSON for the API, a page for people), `/readyz` 503 while
/// `/healthz` stays 200; the store back: the same replica processes recover within 5 s.
pub async fn a_store_outage_is_a_clear_503_and_heals_by_itself(backend: Backend) {
    let durable = caps(backend).durable_store.expect("a strategy with a store");
    let lab = spawn_lab(backend).await;
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
    let after: Vec<_> = lab.replica_ids().iter().map(|id| lab.replica_pid(id)).collect();
    assert_eq!(pids, after, "recovery must not need a replica restart");
    lab.shutdown().await;
}

/// 50 concurrent "add one" requests of one logged-in session, through HAProxy to three replicas.
/// Compare-and-set strategies end with exactly 50; a 409 would be an honest refusal, never an
/// acknowledged write that vanished. Cookie and JWT keep whichever copy the client got last:
/// the losses are counted and reported, as the docs say.
pub async fn concurrent_adds_lose_nothing(backend: Backend) {
    let lab = spawn_lab(backend).await;
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
    if caps(backend).lossless {
        assert_eq!(qty, acknowledged, "{backend} lost acknowledged writes");
        assert_eq!(qty, 50, "{backend} refused {refused} of 50");
    } else {
        // Each response carries its own copy of the state; the browser keeps the last one it got.
        assert!((1..=acknowledged).contains(&qty), "{backend}: {qty}");
    }
    lab.shutdown().await;
}

/// Idle and absolute timeouts, with short values: a session used every second outlives the
/// 4-second idle timeout (sliding expiry) but not the 7-second absolute one; a session left alone
/// for 6 seconds is gone.
pub async fn idle_and_absolute_timeouts(backend: Backend) {
    let mut cfg = sessionlab::lab::LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
    for (name, value) in [
        ("SESSION_IDLE_TIMEOUT_SECS", "4"),
        ("SESSION_ABSOLUTE_TIMEOUT_SECS", "7"),
        ("JWT_ACCESS_TTL_SECS", "4"),
        ("JWT_REFRESH_TTL_SECS", "4"),
    ] {
        cfg.extra_env.push((name.into(), value.into()));
    }
    let lab = crate::harness::spawn_lab_with(cfg).await;
    let (active, idle) = (Client::new(lab.url()), Client::new(lab.url()));
    idle.register_and_login(&username("idle")).await;
    idle.add(1, 1).await;
    // The clock starts when the active session does: its log-in starts its absolute lifetime.
    active.register_and_login(&username("active")).await;
    let started = std::time::Instant::now();
    active.add(1, 1).await;
    for second in 1..=9 {
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + Duration::from_secs(second))).await;
        let elapsed = started.elapsed();
        let me = active.get("/api/me").await.status;
        if elapsed < Duration::from_millis(6900) {
            assert_eq!(me, StatusCode::OK, "{backend}: an active session ended after {elapsed:?}");
        } else if elapsed >= Duration::from_secs(8) {
            assert_eq!(me, StatusCode::UNAUTHORIZED, "{backend}: outlived its absolute timeout ({elapsed:?})");
        }
        // Expiry times are whole seconds: allow one more than the timeout, plus the log-in's own time.
        if second == 6 {
            let idle_me = idle.get("/api/me").await.status;
            assert_eq!(idle_me, StatusCode::UNAUTHORIZED, "{backend}: idle for {elapsed:?} and still logged in");
        }
    }
    lab.shutdown().await;
}

/// Bad input of every kind, through HAProxy: each gets a clear 4xx (JSON with an error code on
/// the API, a page for forms), never a 5xx or a panic, and the user's session and cart are
/// unchanged afterwards.
pub async fn bad_input_is_a_clear_4xx_and_changes_nothing(backend: Backend) {
    let lab = spawn_lab(backend).await;
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
