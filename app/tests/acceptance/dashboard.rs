//! The /lab dashboard through HAProxy, without a browser: HAProxy's replica states, the chaos
//! controls and their two locks (admin token, CSRF), and a Kill that is a real crash.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sessionlab::{lab::LabConfig, session::Backend, throttle::MAX_TOKEN_GUESSES};

use crate::harness::{Client, Reply, spawn_lab_with, username};

fn config(backend: Backend) -> LabConfig {
    LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into())
}

/// A browser that entered the admin token on /lab.
async fn admin(lab: &sessionlab::lab::Lab) -> Client {
    unlocked(lab.url(), lab.admin_token()).await
}

/// A client of `url` that entered `token` on /lab (the lab's or compose's).
pub async fn unlocked(url: &str, token: &str) -> Client {
    let client = Client::new(url);
    let csrf = client.form_token("/lab").await;
    let unlocked = client.post_form("/lab/unlock", &[("csrf", &csrf), ("token", token)]).await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER, "{}", unlocked.text);
    client
}

pub async fn control(client: &Client, replica: &str, action: &str) -> Reply {
    // The catalog has forms whether or not the lab's controls are on.
    let csrf = client.form_token("/").await;
    client.post_form(&format!("/lab/replicas/{replica}/{action}"), &[("csrf", &csrf)]).await
}

pub async fn states(client: &Client) -> Vec<(String, String)> {
    let state = client.get("/lab/state").await;
    assert_eq!(state.status, StatusCode::OK, "{}", state.text);
    state.body["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["state"].as_str().unwrap().to_owned()))
        .collect()
}

/// The requests HAProxy has sent each replica (its `req_tot`), as the dashboard shows them.
async fn requests(client: &Client) -> std::collections::BTreeMap<String, u64> {
    let state = client.get("/lab/state").await;
    let replicas = state.body["replicas"].as_array().unwrap().iter();
    replicas.map(|r| (r["id"].as_str().unwrap().to_owned(), r["requests"].as_u64().unwrap())).collect()
}

/// Waits until HAProxy reports `replica` in `state` (health checks run every second).
pub async fn wait_for_state(client: &Client, replica: &str, state: &str) {
    for _ in 0..100 {
        if states(client).await.iter().any(|(id, s)| id == replica && s == state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{replica} never became {state}: {:?}", states(client).await);
}

#[tokio::test]
async fn the_dashboard_shows_haproxys_states_and_drains_only_with_token_and_csrf() {
    let lab = spawn_lab_with(config(Backend::Redis)).await;
    let guest = Client::new(lab.url());
    let page = guest.get("/lab").await;
    assert_eq!(page.status, StatusCode::OK);
    for id in ["app1", "app2", "app3"] {
        assert!(page.text.contains(&format!("data-testid=\"state-{id}\"")), "{id} missing");
    }
    assert!(page.text.contains("data-testid=\"unlock\""), "the token form");
    assert!(!page.text.contains("data-testid=\"kill-app1\""), "buttons before the token");
    assert!(page.text.contains("Nothing happens: every replica reads your session from Redis."));
    assert!(page.text.contains("href=\"/docs/redis\""));
    assert_eq!(guest.get("/docs/redis").await.status, StatusCode::OK);
    assert_eq!(states(&guest).await.iter().filter(|(_, s)| s == "up").count(), 3);

    // Locked: no token, a wrong token, a forged form.
    let refused = control(&guest, "app2", "drain").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("admin token"), "{}", refused.text);
    let csrf = guest.form_token("/lab").await;
    // A wrong token leads back to the form, which says where the token is.
    let wrong = guest.post_form("/lab/unlock", &[("csrf", &csrf), ("token", "guess")]).await;
    assert_eq!(
        (wrong.status, wrong.headers["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/lab?wrong_token=1")
    );
    let again = guest.get("/lab?wrong_token=1").await;
    assert!(again.text.contains("That is not the admin token"), "{}", again.text);
    assert!(again.text.contains("data-testid=\"unlock\"") && again.text.contains("jq -r .admin_token"));
    assert!(!again.text.contains("data-testid=\"kill-app1\""), "a wrong token unlocked the buttons");
    let forged = guest.post_form("/lab/unlock", &[("csrf", "forged"), ("token", lab.admin_token())]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let admin = admin(&lab).await;
    assert!(admin.get("/lab").await.text.contains("data-testid=\"kill-app1\""));
    // The cookie proves the token was entered; it is not the token.
    let proof = admin.cookie_at("/lab/", "sl_admin").expect("the admin cookie");
    assert!(!proof.contains(lab.admin_token()), "the admin cookie holds the token itself");
    let raw = guest.get_with_cookie("/lab", &format!("sl_admin={}", lab.admin_token())).await;
    assert!(!raw.text.contains("data-testid=\"kill-app1\""), "the raw token, as a cookie, unlocked the controls");
    let no_csrf = admin.post_form("/lab/replicas/app2/drain", &[("csrf", "forged")]).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(states(&admin).await.iter().filter(|(_, s)| s == "up").count(), 3, "a refused drain did nothing");

    // Drain: HAProxy sends app2 nothing new; Ready: back in rotation.
    let drained = control(&admin, "app2", "drain").await;
    assert_eq!(drained.status, StatusCode::SEE_OTHER, "{}", drained.text);
    assert_eq!(drained.headers["location"], "/lab?drained=app2");
    wait_for_state(&admin, "app2", "draining").await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("drain")).await;
    let before = requests(&admin).await;
    for _ in 0..9 {
        assert_ne!(client.get("/api/me").await.replica, "app2", "a draining replica got a new request");
    }
    let after = requests(&admin).await;
    assert_eq!(after["app2"], before["app2"], "the dashboard counts requests app2 never got");
    let others = |counts: &std::collections::BTreeMap<String, u64>| counts["app1"] + counts["app3"];
    assert!(others(&after) >= others(&before) + 9, "the nine requests are not counted: {before:?} → {after:?}");
    assert!(page.text.contains("data-testid=\"requests-app1\""), "the page shows the counts too");
    assert_eq!(control(&admin, "app2", "ready").await.status, StatusCode::SEE_OTHER);
    wait_for_state(&admin, "app2", "up").await;
    let served: std::collections::BTreeSet<_> = {
        let mut served = std::collections::BTreeSet::new();
        for _ in 0..6 {
            served.insert(client.get("/api/me").await.replica);
        }
        served
    };
    assert!(served.contains("app2"), "app2 is back in rotation: {served:?}");
    let unknown = control(&admin, "app9", "drain").await;
    assert_eq!(unknown.status, StatusCode::CONFLICT, "{}", unknown.text);
    assert_eq!(control(&admin, "app1", "explode").await.status, StatusCode::NOT_FOUND, "only drain or ready");
    lab.shutdown().await;
}

/// A script guessing the admin token is stopped after a few tries (at its own address only), and
/// a crafted link cannot put words of its own on the dashboard.
#[tokio::test]
async fn token_guesses_are_throttled_and_links_cannot_write_on_the_dashboard() {
    let lab = spawn_lab_with(config(Backend::Cookie)).await;
    let guesser = Client::from_address(lab.url(), std::net::IpAddr::from([127, 0, 0, 2]));
    let csrf = guesser.form_token("/lab").await;
    for n in 0..MAX_TOKEN_GUESSES {
        let wrong = guesser.post_form("/lab/unlock", &[("csrf", &csrf), ("token", &format!("guess-{n}"))]).await;
        assert_eq!(wrong.status, StatusCode::SEE_OTHER, "guess {n}: {}", wrong.text);
    }
    let stopped = guesser.post_form("/lab/unlock", &[("csrf", &csrf), ("token", lab.admin_token())]).await;
    assert_eq!(stopped.status, StatusCode::TOO_MANY_REQUESTS, "even the right token, from that address");
    assert!(stopped.text.contains("too many wrong admin tokens"), "{}", stopped.text);
    assert!(stopped.headers.contains_key("retry-after"));
    // Elsewhere, the right token still works, and gives its place back each time.
    for _ in 0..=MAX_TOKEN_GUESSES {
        assert!(admin(&lab).await.get("/lab").await.text.contains("data-testid=\"kill-app1\""));
    }

    let crafted = Client::new(lab.url()).get("/lab?killed=Your%20account%20is%20locked,%20call%20555-0100").await;
    assert_eq!(crafted.status, StatusCode::OK);
    assert!(!crafted.text.contains("555-0100") && !crafted.text.contains("data-testid=\"notice\""), "{}", crafted.text);
    let real = Client::new(lab.url()).get("/lab?drained=app2").await;
    assert!(real.text.contains("app2 is draining"), "{}", real.text);
    lab.shutdown().await;
}

/// Kill is a crash of the replica the button names, whichever replica served the page; the lab's
/// supervisor brings it back. Acknowledged writes made around the crash all stay.
#[tokio::test]
async fn kill_crashes_the_named_replica_and_loses_no_acknowledged_write() {
    let lab = spawn_lab_with(config(Backend::Redis)).await;
    let admin = admin(&lab).await;
    let shopper = Client::new(lab.url());
    shopper.register_and_login(&username("crash")).await;

    let writers: Vec<_> = (0..4)
        .map(|_| {
            let http = shopper.http();
            let url = format!("{}api/cart/items", shopper.base_url());
            tokio::spawn(async move {
                let (mut acknowledged, mut failed) = (0, 0);
                for _ in 0..25 {
                    let res = http.post(&url).json(&json!({"product_id": 1, "qty": 1})).send().await;
                    match res.map(|r| r.status()) {
                        Ok(StatusCode::OK) => acknowledged += 1,
                        _ => failed += 1,
                    }
                }
                (acknowledged, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let old_pid = lab.replica_pid("app2").unwrap();
    let killed = control(&admin, "app2", "kill").await;
    assert_eq!(killed.status, StatusCode::SEE_OTHER, "{}", killed.text);
    assert_eq!(killed.replica, "app2", "HAProxy sent the kill to the replica it names");
    assert_eq!(killed.headers["location"], "/lab?killed=app2");
    let new_pid = lab.wait_for_restart("app2", old_pid, Duration::from_secs(20)).await.unwrap();
    assert_ne!(new_pid, old_pid);

    let (mut acknowledged, mut failed) = (0, 0);
    for writer in writers {
        let (a, f) = writer.await.unwrap();
        acknowledged += a;
        failed += f;
    }
    let qty = shopper.cart().await.1.first().map_or(0, |(_, qty)| *qty);
    println!("around the kill: {acknowledged} writes acknowledged, {failed} failed; the cart holds {qty}");
    assert!(qty >= acknowledged, "an acknowledged write was lost: {qty} < {acknowledged}");
    assert!(qty <= acknowledged + failed, "more in the cart than was ever sent");
    lab.shutdown().await;
}

#[tokio::test]
async fn without_an_admin_token_the_controls_do_not_exist() {
    let mut cfg = config(Backend::Cookie);
    cfg.extra_env.push(("ADMIN_TOKEN".into(), String::new()));
    let lab = spawn_lab_with(cfg).await;
    let client = Client::new(lab.url());
    let page = client.get("/lab").await;
    assert!(page.text.contains("data-testid=\"controls-off\"") && page.text.contains("ADMIN_TOKEN"));
    assert!(!page.text.contains("data-testid=\"unlock\""));
    let csrf = client.form_token("/").await;
    for action in ["kill", "drain", "ready"] {
        let refused = control(&client, "app1", action).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{action}");
        assert!(refused.text.contains("controls are off"), "{}", refused.text);
    }
    let unlock = client.post_form("/lab/unlock", &[("csrf", &csrf), ("token", "")]).await;
    assert_eq!(unlock.status, StatusCode::FORBIDDEN);
    assert_eq!(states(&client).await.len(), 3, "the states are still shown");
    lab.shutdown().await;
}

/// The "your session is gone" explanation appears when a session vanished under the browser,
/// never after the browser logged out by itself.
#[tokio::test]
async fn the_page_tells_a_lost_session_from_a_logout() {
    let lab = spawn_lab_with(config(Backend::Cookie)).await;
    let name = username("lost");
    let browser = Client::new(lab.url());
    browser.register_and_login(&name).await;
    assert!(!browser.get("/lab").await.text.contains("data-testid=\"lost\""));
    assert_eq!(browser.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    assert!(!browser.get("/lab").await.text.contains("data-testid=\"lost\""), "a logout is not a loss");

    let password = format!("pw-{name}-long");
    let login = browser.post("/api/login", json!({"username": name, "password": password})).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(browser.get("/lab").await.text.contains(&name));
    let phone = Client::new(lab.url());
    phone.post("/api/login", json!({"username": name, "password": password})).await;
    let others = phone.send(reqwest::Method::DELETE, "/api/sessions/others", None).await;
    assert_eq!(others.body["revoked"], 1);
    let page = browser.get("/lab").await;
    assert!(page.text.contains("data-testid=\"lost\"") && page.text.contains("Your session is gone"), "{}", page.text);
    assert!(page.text.contains(&name));
    lab.shutdown().await;
}

/// The "your session is gone" panel says why from what it can know: after a store restart (a
/// Redis that keeps nothing) the replica did not go down, and the panel does not blame a kill;
/// after a kill of the replica that held a sticky session, it names the kill.
#[tokio::test]
async fn a_lost_session_is_blamed_on_what_happened() {
    let mut cfg = config(Backend::Redis);
    cfg.redis_append_only = false;
    let lab = spawn_lab_with(cfg).await;
    let browser = Client::new(lab.url());
    browser.register_and_login(&username("why")).await;
    let seen = browser.get("/lab").await;
    lab.store().unwrap().lock().await.restart().await.unwrap();
    let page = browser.get("/lab").await;
    assert!(page.text.contains("data-testid=\"lost\""), "{}", page.text);
    assert!(page.text.contains(&format!("{} has not gone down since your last look", seen.replica)), "{}", page.text);
    lab.shutdown().await;

    let lab = spawn_lab_with(config(Backend::Sticky)).await;
    let browser = Client::new(lab.url());
    browser.register_and_login(&username("why")).await;
    let pinned = browser.get("/lab").await.replica;
    let pid = lab.replica_pid(&pinned).unwrap();
    lab.kill_replica(&pinned).await.unwrap();
    lab.wait_for_restart(&pinned, pid, Duration::from_secs(30)).await.unwrap();
    let page = browser.get("/lab").await;
    assert!(page.text.contains(&format!("{pinned} went down since your last look")), "{}", page.text);
    lab.shutdown().await;
}

/// The admin token is a secret wherever it comes from (the lab's, compose's generated one): no
/// replica ever logs it, not even while it is used.
#[tokio::test]
async fn the_admin_token_is_never_logged() {
    let lab = spawn_lab_with(config(Backend::Cookie)).await;
    let admin = admin(&lab).await;
    assert_eq!(control(&admin, "app9", "drain").await.status, StatusCode::CONFLICT);
    for replica in ["app1", "app2", "app3"] {
        let log = std::fs::read_to_string(lab.dir().join(format!("{replica}.log"))).unwrap();
        assert!(!log.contains(lab.admin_token()), "{replica} logged the admin token");
    }
    lab.shutdown().await;
}
