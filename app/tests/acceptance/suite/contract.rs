//! The outside contract: the JSON API and the HTML pages, forms and logs.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Client, Mode, spawn_lab, username};

/// The JSON API's contract: statuses, error bodies, and what each endpoint returns.
pub async fn the_json_api_keeps_its_contract(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
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
pub async fn pages_forms_and_logs(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
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
    assert_eq!(home.headers["cache-control"], "no-store", "a page with the user and the cart in it");
    assert!(c.get("/static/app.css").await.headers["cache-control"].to_str().unwrap().starts_with("public"));
    let csrf = crate::harness::csrf_field(&home.text).expect("a CSRF field");

    let forged = c.post_form("/cart/add", &[("csrf", "forged"), ("product_id", "1")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.text.contains("expired"), "a clear page: {}", forged.text);
    let added = c.post_form("/cart/add", &[("csrf", &csrf), ("product_id", "7"), ("qty", "2")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    // Back to the product, with a status line and the focus on the button that was pressed.
    assert_eq!(added.headers["location"], "/?added=7");
    let back = c.get("/?added=7").await;
    assert!(back.text.contains("Added 🍉 Watermelon: 2 in your cart."), "{}", back.text);
    assert!(
        back.text.contains("aria-label=\"Add to cart: Watermelon\" autofocus aria-describedby=\"added\""),
        "the focus returns"
    );
    assert_eq!(back.text.matches("autofocus").count(), 1);
    for odd in ["/?added=abc", "/?added=99999"] {
        let page = c.get(odd).await;
        assert_eq!(page.status, StatusCode::OK, "{odd}: the catalog, not an error");
        assert!(!page.text.contains("autofocus") && !page.text.contains("data-testid=\"added\""), "{odd}");
    }
    let cart = c.get("/cart").await;
    assert!(cart.text.contains("data-testid=\"cart-badge\">2<"), "badge shows 2");
    assert!(cart.text.contains("Watermelon"));

    let name = username("page");
    let password = format!("pw-{name}-secret");
    let reg = c.post_form("/register", &[("csrf", &csrf), ("username", &name), ("password", &password)]).await;
    assert_eq!(reg.status, StatusCode::SEE_OTHER, "{}", reg.text);
    let session_cookie = c.session_cookie().expect("logged in");
    let wrong = Client::new(lab.url());
    let wrong_csrf = wrong.form_token("/login").await;
    let bad =
        wrong.post_form("/login", &[("csrf", &wrong_csrf), ("username", &name), ("password", "nope-nope-nope")]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text.contains("wrong username or password"));
    let short =
        wrong.post_form("/register", &[("csrf", &wrong_csrf), ("username", "newbie"), ("password", "short")]).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text.contains("at least 8"));
    // A phone capitalises the first letter: it is the same account.
    let capitalised = format!(" {}", name.to_uppercase());
    let again =
        wrong.post_form("/login", &[("csrf", &wrong_csrf), ("username", &capitalised), ("password", &password)]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text);
    assert!(wrong.get("/session").await.text.contains(&name));

    let inspector = c.get("/session").await;
    assert!(inspector.text.contains(&name) && inspector.text.contains(backend.as_str()));
    // The dashboard says how this lab runs, from HAProxy itself and the replica's settings.
    let dashboard = c.get("/lab").await;
    assert!(dashboard.text.contains(mode.balancing_says()), "{mode:?}: {}", dashboard.text);
    let revocation = match (backend.revocation_is_a_layer(), mode.revocation) {
        (false, _) => None,
        (true, true) => Some("SESSION_REVOCATION=on"),
        (true, false) => Some("SESSION_REVOCATION=off"),
    };
    assert_eq!(dashboard.text.contains("data-testid=\"revocation\""), revocation.is_some(), "{mode:?}");
    assert!(revocation.is_none_or(|setting| dashboard.text.contains(setting)), "{mode:?}: {}", dashboard.text);
    let missing = c.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<!doctype html>"), "HTML 404 for pages");
    // Logged in, the forms carry a token bound to the user: the guest's no longer passes.
    let guest_csrf = csrf;
    let csrf = c.form_token("/").await;
    assert_ne!(csrf, guest_csrf);
    assert_eq!(c.post_form("/logout", &[("csrf", &guest_csrf)]).await.status, StatusCode::FORBIDDEN);
    let out = c.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);

    lab_logs_never_contain(&lab, &[password, csrf, session_cookie]);
    lab.shutdown().await;
}

fn lab_logs_never_contain(lab: &sessionlab::lab::Lab, secrets: &[String]) {
    // The replicas that served the requests logged them (health checks are not logged, so with
    // sticky the others may have nothing): the search below looks at real request lines.
    let mut logged = 0;
    for id in lab.replica_ids() {
        let log = std::fs::read_to_string(lab.dir().join(format!("{id}.log"))).unwrap_or_default();
        logged += log.matches("route").count();
        for secret in secrets {
            assert!(!log.contains(secret.as_str()), "{id}'s log contains a secret");
        }
    }
    assert!(logged >= 10, "the replicas logged {logged} requests");
}
