//! A session's life: bad cookies, renewal at log-in, log-out, the 4 KB wall, timeouts.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sessionlab::session::{COOKIE_NAME, SessionData, SessionId, SessionStore, cookie::CookieStore};

use crate::harness::{Client, Mode, caps, spawn_lab, username};

/// Tampered, truncated, foreign and garbage cookies are "no session": no 5xx, a fresh anonymous
/// session on the next write.
pub async fn bad_session_cookies_are_no_session(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
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
        if backend.is_stock() {
            // actix-session does not tell the app whether the cookie it got held a session, so
            // any cookie counts as one, and the look's visit saves a fresh session.
            continue;
        }
        // A bad cookie reads as no session, and the page says the cookie opened nothing.
        let shown = if value.is_empty() { "none yet" } else { "found no session for it" };
        assert!(page.text.contains(shown), "cookie {:.40}…: {:.300}", value, page.text);
        // A look stores nothing, so it hands out no session either (at most, it clears the bad one).
        let handed_out = page
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.strip_prefix(&format!("{COOKIE_NAME}=")))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
            .find(|v| !v.is_empty());
        assert_eq!(handed_out, None, "a look at the inspector handed out a session");
    }
    // The real session is untouched by all of that.
    let me = client.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK);
    lab.shutdown().await;
}

/// Logging in moves the session to a new ID; the pre-login cookie does not carry the login.
/// Where the server can forget state, the old cookie is dead entirely.
pub async fn login_renews_the_session_id(mode: impl Into<Mode>) {
    let mode = mode.into();
    let lab = spawn_lab(mode).await;
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
    if caps(mode).guests_revocable {
        assert_eq!(old_cart.body["items"], json!([]), "the pre-login session still exists");
    }
    lab.shutdown().await;
}

/// Logging out destroys the session: the cookie is removed and a copy of it no longer works
/// either — on `cookie` and `jwt` only thanks to their revocation layer. The stock
/// `actix-cookie`, and `cookie` and `jwt` with `SESSION_REVOCATION=off`, keep no revocation list:
/// there, the copy still works, and the test says so.
pub async fn logout_destroys_the_session(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("logout")).await;
    client.add(6, 1).await;
    let copy = format!("{COOKIE_NAME}={}", client.session_cookie().unwrap());
    assert_eq!(client.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(client.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    assert!(client.cart().await.1.is_empty());
    let stolen = client.get_with_cookie("/api/me", &copy).await.status;
    if caps(mode).logout_revokes_copies {
        assert_eq!(stolen, StatusCode::UNAUTHORIZED, "a copied cookie outlived logout");
    } else {
        assert_eq!(stolen, StatusCode::OK, "{backend} is declared to accept a copied cookie after logout");
        println!("{backend}: a copy of the cookie still logs in after logout");
    }
    lab.shutdown().await;
}

/// A full cart: the cookie strategy refuses the line that would cross 4 KB with 413 and keeps
/// the session as it was; server-side strategies take the whole catalog.
pub async fn a_cart_too_big_for_a_cookie(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let lab = spawn_lab(mode).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("big")).await;
    let products = client.get("/api/products").await.body.as_array().unwrap().len() as i64;
    let refused_at = fill_until_refused(&client, products).await;
    let (_, items) = client.cart().await;
    assert_eq!(client.get("/api/me").await.status, StatusCode::OK, "still logged in");
    if caps(mode).cookie_wall {
        let at = refused_at.expect("the cookie strategy hit no wall");
        assert!(at > 20, "the wall came after only {at} lines");
        assert_eq!(items.len() as i64, at - 1, "the refused line changed the cart");
        let bytes = client.session_cookie().unwrap().len() + COOKIE_NAME.len() + 1;
        assert!(bytes <= 4096, "cookie is {bytes} bytes");
        println!("{backend} wall: {} cart lines fit, cookie {bytes} bytes", at - 1);
        // At the wall, looking at the session still works, and says what it holds.
        for path in ["/session", "/api/session"] {
            let look = client.get(path).await;
            assert_eq!(look.status, StatusCode::OK, "{path} at the wall: {}", look.text);
        }
        // A user who looked at the session nine times first (each look records the replica)
        // meets the wall at the same line: visits give way to the cart.
        let looker = Client::new(lab.url());
        looker.register_and_login(&username("big")).await;
        for _ in 0..9 {
            assert_eq!(looker.get("/session").await.status, StatusCode::OK);
        }
        let visits = looker.get("/api/session").await.body["visits"].as_array().map_or(0, Vec::len);
        assert!(visits >= 9, "the looks were not recorded: {visits}");
        assert_eq!(fill_until_refused(&looker, products).await, Some(at), "the wall moved with the looks");
    } else {
        assert_eq!(refused_at, None);
        assert_eq!(items.len() as i64, products);
    }
    lab.shutdown().await;
}

/// Adds products 1, 2, 3… one of each; the first one refused with 413, if any.
async fn fill_until_refused(client: &Client, products: i64) -> Option<i64> {
    for id in 1..=products {
        let reply = client.add(id, 1).await;
        if reply.status == StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(reply.body["error"], "session_too_large", "{}", reply.text);
            return Some(id);
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    None
}

/// Idle and absolute timeouts, with short values: a session used every second outlives the
/// 4-second idle timeout (sliding expiry) but not the 7-second absolute one; a session left alone
/// for 6 seconds is gone.
pub async fn idle_and_absolute_timeouts(mode: impl Into<Mode>) {
    let mode = mode.into();
    let backend = mode.backend;
    let mut cfg = mode.config();
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
        // The absolute lifetime counts from the log-in, which was before `started`, and the stock
        // stack (actix-identity) stores that moment in whole seconds: a session may end up to a
        // second early. Still past the idle timeout (4 s): only the sliding expiry kept it alive.
        if elapsed < Duration::from_millis(5900) {
            assert_eq!(me, StatusCode::OK, "{backend}: an active session ended after {elapsed:?}");
        } else if elapsed >= Duration::from_secs(8) {
            assert_eq!(me, StatusCode::UNAUTHORIZED, "{backend}: outlived its absolute timeout ({elapsed:?})");
        }
        // An active session's device record is refreshed every half idle timeout (2 s here),
        // by the requests themselves: "last seen" moves on. (The stock stack lists no devices.)
        if second == 5 && caps(mode).lists_sessions {
            let list = active.get("/api/sessions").await;
            let session = &list.body["sessions"][0];
            let (created, seen) = (session["created_at"].as_i64().unwrap(), session["last_seen"].as_i64().unwrap());
            assert!(seen - created >= 2, "{backend}: last seen was not refreshed: {}", list.text);
        }
        // Expiry times are whole seconds: allow one more than the timeout, plus the log-in's own time.
        if second == 6 {
            let idle_me = idle.get("/api/me").await.status;
            assert_eq!(idle_me, StatusCode::UNAUTHORIZED, "{backend}: idle for {elapsed:?} and still logged in");
        }
    }
    lab.shutdown().await;
}
