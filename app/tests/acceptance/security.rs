//! Login throttling across replicas: per username and per client address.
use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;
use sessionlab::{
    session::Backend,
    throttle::{MAX_PER_IP, MAX_PER_USER},
};

use crate::harness::{Client, spawn_lab, username};

#[tokio::test]
async fn failed_logins_are_throttled_per_username_and_per_address_across_replicas() {
    let lab = spawn_lab(Backend::Cookie).await;
    let (victim, other) = (username("victim"), username("other"));
    for name in [&victim, &other] {
        Client::new(lab.url()).register_and_login(name).await;
    }
    let attacker = Client::new(lab.url());
    let mut replicas = BTreeSet::new();
    for _ in 0..MAX_PER_USER {
        let r = attacker.post("/api/login", json!({"username": victim, "password": "wrong-password"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        replicas.insert(r.replica);
    }
    assert_eq!(replicas.len(), 3, "the failures were spread over every replica");

    let right = json!({"username": victim, "password": format!("pw-{victim}-long")});
    let locked = Client::new(lab.url()).post("/api/login", right.clone()).await;
    assert_eq!(
        (locked.status, locked.body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    let retry_after: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After {retry_after}");
    let page = Client::new(lab.url());
    page.get("/login").await;
    let csrf = page.cookie("sl_csrf").unwrap();
    let form = page.post_form("/login", &[("csrf", &csrf), ("username", &victim), ("password", "whatever-long")]).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(form.text.contains("too many failed log-ins"), "the form says why");

    // Another account from the same address is not locked out by someone else's username...
    let ok = Client::new(lab.url())
        .post("/api/login", json!({"username": other, "password": format!("pw-{other}-long")}))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // ...until the address itself has failed too often.
    for n in MAX_PER_USER..MAX_PER_IP {
        let r =
            attacker.post("/api/login", json!({"username": format!("guess_{n}"), "password": "wrong-password"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    let blocked = Client::new(lab.url())
        .post("/api/login", json!({"username": other, "password": format!("pw-{other}-long")}))
        .await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    lab.shutdown().await;
}
