//! "Your devices" on every strategy: list a user's sessions, end one or all others, and change
//! the password — each effective on every replica from the very next request.
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessionlab::session::{COOKIE_NAME, unix_now};

use crate::harness::{Client, Mode, Reply, caps, spawn_lab, username};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const CURL: &str = "curl/8.11.1";

async fn log_in(client: &Client, name: &str, password: &str) {
    let r = client.post("/api/login", json!({"username": name, "password": password})).await;
    assert_eq!(r.status, StatusCode::OK, "log in {name}: {}", r.text);
}

fn sessions(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["sessions"].as_array().expect("a sessions list").clone()
}

/// The session that is not `current` and whose device label contains `label`.
fn id_of(list: &[Value], label: &str) -> String {
    let found = list.iter().find(|s| s["device"].as_str().unwrap().contains(label));
    found.unwrap_or_else(|| panic!("no {label} session in {list:?}"))["id"].as_str().unwrap().to_owned()
}

/// `client` is logged out, whichever replica its next requests reach (three in a row cover
/// every replica of the round robin; a sticky client keeps its own).
async fn assert_logged_out(client: &Client, why: &str) {
    for _ in 0..3 {
        let me = client.get("/api/me").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{why}: {} still accepted it", me.replica);
    }
}

pub async fn your_devices_lists_and_revokes_on_every_replica(mode: impl Into<Mode>) {
    let mode = mode.into();
    let lab = spawn_lab(mode).await;
    if !caps(mode).lists_sessions {
        return no_device_list_and_it_says_why(lab).await;
    }
    let name = username("devices");
    let password = format!("pw-{name}-long");
    let laptop = Client::with_user_agent(lab.url(), Some(FIREFOX));
    laptop.register_and_login(&name).await;
    laptop.add(3, 2).await;
    let phone = Client::with_user_agent(lab.url(), Some(IPHONE));
    log_in(&phone, &name, &password).await;
    let script = Client::with_user_agent(lab.url(), Some(CURL));
    log_in(&script, &name, &password).await;

    let list = sessions(&laptop.get("/api/sessions").await);
    assert_eq!(list.len(), 3, "{list:?}");
    let current: Vec<_> = list.iter().filter(|s| s["current"] == json!(true)).collect();
    assert_eq!(current.len(), 1, "exactly one is this device: {list:?}");
    assert!(current[0]["device"].as_str().unwrap().starts_with("Firefox 133"), "{list:?}");
    for s in &list {
        assert_eq!(s["ip"], "127.0.0.1", "the client's address, through HAProxy: {s}");
        assert!(["app1", "app2", "app3"].contains(&s["replica"].as_str().unwrap()), "{s}");
        let (created, seen) = (s["created_at"].as_i64().unwrap(), s["last_seen"].as_i64().unwrap());
        assert!(created <= seen && seen <= unix_now(), "{s}");
        assert_eq!(s["id"].as_str().unwrap().len(), 64, "a storage key, not a cookie: {s}");
        assert_ne!(Some(s["id"].as_str().unwrap().to_owned()), laptop.session_cookie());
    }
    assert!(list.iter().any(|s| s["device"].as_str().unwrap().contains("Safari")), "{list:?}");
    assert!(list.iter().any(|s| s["device"] == "curl 8.11.1"), "{list:?}");

    // Ending one session: the phone is logged out on every replica with its next request.
    let phone_id = id_of(&list, "Safari");
    let revoked = laptop.send(Method::DELETE, &format!("/api/sessions/{phone_id}"), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    // The phone's next page that needs a log-in leads to the log-in form, which says why.
    let devices = phone.get("/devices").await;
    assert_eq!((devices.status, devices.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    let login = phone.get("/login").await;
    assert!(login.text.contains("data-testid=\"session-ended\""), "the log-in form says nothing: {}", login.text);
    assert!(login.text.contains("finds no valid session for this browser"), "{}", login.text);
    assert_logged_out(&phone, "a revoked session").await;
    assert_eq!(sessions(&laptop.get("/api/sessions").await).len(), 2);
    let again = laptop.send(Method::DELETE, &format!("/api/sessions/{phone_id}"), None).await;
    assert_eq!((again.status, again.body["error"].clone()), (StatusCode::NOT_FOUND, json!("unknown_session")));
    for bad in ["not-a-session", &"f".repeat(64), &"A".repeat(64)] {
        let r = laptop.send(Method::DELETE, &format!("/api/sessions/{bad}"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.text);
    }

    // Nobody else can end this user's sessions.
    let eve = Client::new(lab.url());
    eve.register_and_login(&username("eve")).await;
    let laptop_id = current[0]["id"].as_str().unwrap();
    let foreign = eve.send(Method::DELETE, &format!("/api/sessions/{laptop_id}"), None).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
    assert_eq!(sessions(&eve.get("/api/sessions").await).len(), 1, "eve sees only her own");
    let guest = Client::new(lab.url());
    assert_eq!(guest.get("/api/sessions").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(guest.send(Method::DELETE, "/api/sessions/others", None).await.status, StatusCode::UNAUTHORIZED);

    // Everywhere else: the script is logged out, the laptop keeps its session and its cart.
    let others = laptop.send(Method::DELETE, "/api/sessions/others", None).await;
    assert_eq!(others.body, json!({"revoked": 1}), "{}", others.text);
    assert_logged_out(&script, "log out everywhere else").await;
    assert_eq!(laptop.get("/api/me").await.status, StatusCode::OK);
    assert_eq!(laptop.cart().await.1, vec![(3, 2)]);
    let left = sessions(&laptop.get("/api/sessions").await);
    assert_eq!((left.len(), left[0]["current"].clone()), (1, json!(true)), "{left:?}");

    // Ending the current session is a log-out.
    let own = laptop.send(Method::DELETE, &format!("/api/sessions/{laptop_id}"), None).await;
    assert_eq!(own.status, StatusCode::NO_CONTENT);
    assert_logged_out(&laptop, "the session ended itself").await;
    lab.shutdown().await;
}

/// Sessions kept in a replica's memory die with it, and nothing removes them from the registry:
/// "your devices" must not list them as live. A user logged in on two devices loses the replica
/// of the first; after the lab restarts it, the list holds exactly the sessions still alive.
pub async fn sessions_of_a_killed_replica_leave_the_list(mode: impl Into<Mode>) {
    let mode = mode.into();
    assert!(!caps(mode).shared && caps(mode).lists_sessions, "{mode:?}: no sessions die with a replica");
    let lab = spawn_lab(mode).await;
    let name = username("gone");
    let password = format!("pw-{name}-long");
    let laptop = Client::with_user_agent(lab.url(), Some(FIREFOX));
    laptop.register_and_login(&name).await;
    let phone = Client::with_user_agent(lab.url(), Some(IPHONE));
    log_in(&phone, &name, &password).await;
    let victim = laptop.get("/api/me").await.replica;
    let phone_replica = phone.get("/api/me").await.replica;
    assert_eq!(sessions(&phone.get("/api/sessions").await).len(), 2);

    let old_pid = lab.kill_replica(&victim).await.unwrap();
    lab.wait_for_restart(&victim, old_pid, Duration::from_secs(30)).await.unwrap();
    // Logged in again after the restart, wherever HAProxy sends this device now.
    let tablet = Client::with_user_agent(lab.url(), Some(CURL));
    log_in(&tablet, &name, &password).await;
    let list = sessions(&tablet.get("/api/sessions").await);
    let labels: Vec<&str> = list.iter().map(|s| s["device"].as_str().unwrap()).collect();
    assert!(!labels.iter().any(|label| label.contains("Firefox")), "the killed replica's session is listed: {list:?}");
    let phone_lives = phone_replica != victim;
    assert_eq!(phone.get("/api/me").await.status == StatusCode::OK, phone_lives, "pinned to {phone_replica}");
    assert_eq!(labels.iter().any(|label| label.contains("Safari")), phone_lives, "{list:?}");
    assert_eq!(list.len(), 1 + usize::from(phone_lives), "{list:?}");
    lab.shutdown().await;
}

/// A password change ends every other session and moves this one to a new ID (so does every
/// log-in and log-out: session fixation). The page and its forms do the same as the API.
pub async fn a_password_change_ends_other_sessions_and_renews_the_id(mode: impl Into<Mode>) {
    let mode = mode.into();
    let lab = spawn_lab(mode).await;
    if !caps(mode).lists_sessions {
        return a_password_change_ends_no_other_session(lab, mode).await;
    }
    let name = username("passwd");
    let password = format!("pw-{name}-long");
    let me = Client::with_user_agent(lab.url(), Some(FIREFOX));
    me.register_and_login(&name).await;
    me.add(5, 1).await;
    let other = Client::new(lab.url());
    log_in(&other, &name, &password).await;
    let before = me.session_cookie().unwrap();

    let wrong =
        me.post("/api/password", json!({"current_password": "not-it-at-all", "new_password": "x".repeat(12)})).await;
    assert_eq!(
        (wrong.status, wrong.body["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("wrong_password"))
    );
    let short = me.post("/api/password", json!({"current_password": password, "new_password": "short"})).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", short.text);
    assert_eq!(other.get("/api/me").await.status, StatusCode::OK, "a refused change ends nothing");

    let new_password = format!("new-{password}");
    let changed = me.post("/api/password", json!({"current_password": password, "new_password": new_password})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["other_sessions_ended"], 1);
    let after = me.session_cookie().unwrap();
    assert_ne!(before, after, "the session ID was not renewed");
    assert_logged_out(&other, "a session from before the password change").await;
    let old_copy = me.get_with_cookie("/api/me", &format!("{COOKIE_NAME}={before}")).await;
    assert_eq!(old_copy.status, StatusCode::UNAUTHORIZED, "the pre-change cookie still works");
    assert_eq!(me.get("/api/me").await.status, StatusCode::OK);
    assert_eq!(me.cart().await.1, vec![(5, 1)], "the cart stays with the renewed session");
    let stale = Client::new(lab.url());
    let old_login = stale.post("/api/login", json!({"username": name, "password": password})).await;
    assert_eq!(old_login.status, StatusCode::UNAUTHORIZED);
    log_in(&stale, &name, &new_password).await;

    // The page: a guest is sent to log in; the user sees both sessions, this one marked.
    assert_eq!(Client::new(lab.url()).get("/devices").await.status, StatusCode::SEE_OTHER);
    let page = me.get("/devices").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("this device") && page.text.contains("Firefox 133 on Linux"), "{}", page.text);
    assert_eq!(page.text.matches("data-session-id=").count(), 2);
    let csrf = crate::harness::csrf_field(&page.text).expect("a CSRF field");
    let forged = me.post_form("/devices/revoke-others", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(stale.get("/api/me").await.status, StatusCode::OK, "a forged form ends nothing");
    let done = me.post_form("/devices/revoke-others", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.headers["location"], "/devices?ended=1");
    assert_logged_out(&stale, "the page's log out everywhere else").await;
    let wrong_form = me
        .post_form(
            "/account/password",
            &[("csrf", &csrf), ("current_password", "nope-nope-nope"), ("new_password", "whatever-long")],
        )
        .await;
    assert_eq!(wrong_form.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong_form.text.contains("current password is not right"), "{}", wrong_form.text);

    // Log-out renews too: the next session is a new one, the logged-out one is dead.
    let logged_in = me.session_cookie().unwrap();
    assert_eq!(me.post("/api/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    me.add(1, 1).await;
    let guest = me.session_cookie().expect("a new guest session");
    assert_ne!(guest, logged_in);
    let dead = me.get_with_cookie("/api/me", &format!("{COOKIE_NAME}={logged_in}")).await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);
    lab.shutdown().await;
}

/// Without a list of a user's sessions (`SESSION_REVOCATION=off`), "your devices" is a 404 that
/// says why, on the API and the page, and the rest of the account works.
async fn no_device_list_and_it_says_why(lab: sessionlab::lab::Lab) {
    let client = Client::new(lab.url());
    client.register_and_login(&username("devices")).await;
    let list = client.get("/api/sessions").await;
    assert_eq!((list.status, list.body["error"].clone()), (StatusCode::NOT_FOUND, json!("not_supported_by_strategy")));
    assert!(list.body["message"].as_str().unwrap().contains("SESSION_REVOCATION=off"), "{}", list.text);
    let others = client.send(Method::DELETE, "/api/sessions/others", None).await;
    assert_eq!(others.status, StatusCode::NOT_FOUND, "{}", others.text);
    let page = client.get("/devices").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.text.contains("SESSION_REVOCATION=off"), "{}", page.text);
    assert_eq!(client.get("/api/me").await.status, StatusCode::OK, "the session is intact");
    lab.shutdown().await;
}

/// The password changes and this session moves to a new ID, but nothing on the server can find,
/// let alone end, the user's other sessions: they live on until they expire.
async fn a_password_change_ends_no_other_session(lab: sessionlab::lab::Lab, mode: Mode) {
    let name = username("passwd");
    let password = format!("pw-{name}-long");
    let me = Client::new(lab.url());
    me.register_and_login(&name).await;
    let other = Client::new(lab.url());
    log_in(&other, &name, &password).await;
    let before = me.session_cookie().unwrap();
    let new_password = format!("new-{password}");
    let changed = me.post("/api/password", json!({"current_password": password, "new_password": new_password})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["other_sessions_ended"], 0);
    assert_ne!(me.session_cookie().unwrap(), before, "the session ID was not renewed");
    for _ in 0..3 {
        assert_eq!(other.get("/api/me").await.status, StatusCode::OK, "{mode:?}: who could have ended it?");
    }
    let old_copy = me.get_with_cookie("/api/me", &format!("{COOKIE_NAME}={before}")).await.status;
    let expected = if caps(mode).logout_revokes_copies { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    assert_eq!(old_copy, expected, "{mode:?}: the pre-change cookie");
    let old_login = Client::new(lab.url()).post("/api/login", json!({"username": name, "password": password})).await;
    assert_eq!(old_login.status, StatusCode::UNAUTHORIZED);
    lab.shutdown().await;
}
