//! `memory`: the problem the other strategies solve. Each replica keeps its sessions in its own
//! memory and HAProxy balances round robin, so a log-in is known only to the replica that served
//! it. These scenarios assert that failure, the article's opening example, and that it is the
//! balancing, not the store, that breaks it.
use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Client, Cluster, username};

/// Log in, then ask "who am I?" thirty times through HAProxy: only the replica that served the
/// log-in knows the session; the other two answer 401, so about two requests in three find no
/// session. The inspector on another replica says why. A write on a replica that does not know
/// the session starts a new one there and moves the cookie to it: the log-in is then lost on
/// every replica.
pub async fn most_logged_in_requests_find_no_session(cluster: &dyn Cluster) {
    let client = Client::new(cluster.url());
    let name = username("unshared");
    let login = client.post("/api/register", json!({"username": name, "password": format!("pw-{name}-long")})).await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.text);
    let home = login.replica.clone();
    let cookie = client.session_cookie().expect("the log-in set a session cookie");

    let mut answers: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut found = 0;
    for _ in 0..30 {
        let me = client.get("/api/me").await;
        answers.entry(me.replica.clone()).or_default().insert(me.status.as_u16());
        match me.status {
            StatusCode::OK => {
                assert_eq!(me.replica, home, "a replica that never saw the log-in knew the user");
                assert_eq!(me.body["user"], json!(name));
                found += 1;
            }
            StatusCode::UNAUTHORIZED => assert_ne!(me.replica, home, "the replica that served the log-in forgot it"),
            other => panic!("{other} from {}: {}", me.replica, me.text),
        }
    }
    assert_eq!(answers.len(), 3, "round robin reaches every replica: {answers:?}");
    assert!((5..=15).contains(&found), "about one request in three finds the session, not {found} of 30: {answers:?}");
    assert_eq!(client.session_cookie(), Some(cookie.clone()), "a read changed the cookie");

    // The inspector, on a replica that does not have the session, explains.
    let look = loop {
        let look = client.get("/api/session").await;
        if look.replica != home {
            break look;
        }
    };
    assert_eq!(look.body["session_id"], json!(null), "{}", look.text);
    let why = look.body["not_found"].as_str().unwrap_or_default();
    assert!(why.contains("own memory") && why.contains("next replica in turn"), "{why}");
    let page = loop {
        let page = client.get("/session").await;
        if page.replica != home {
            break page;
        }
    };
    assert!(page.text.contains("data-testid=\"not-found\"") && page.text.contains("own memory"), "{:.400}", page.text);

    // A write on another replica: a new guest session there, and the cookie now points to it.
    let add = loop {
        let add = client.add(4, 1).await;
        assert_eq!(add.status, StatusCode::OK, "{}", add.text);
        if add.replica != home {
            break add;
        }
        // The home replica added to the logged-in cart; go round again until another one serves.
    };
    assert_ne!(client.session_cookie(), Some(cookie), "{} kept the old cookie", add.replica);
    for _ in 0..6 {
        let me = client.get("/api/me").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{} still knows the user", me.replica);
    }
}
