//! Adding a server and removing it. The article warns that with sticky sessions this can disrupt
//! active sessions; with a shared store every replica reads the same sessions. The lab's spare replica (app4) runs out of rotation; the dashboard's
//! Ready adds it through HAProxy's runtime API, Remove takes it away.
use reqwest::StatusCode;
use sessionlab::{
    compare::add_and_remove,
    lab::{LabConfig, SPARE},
    session::Backend,
};

use crate::{
    dashboard::{control, unlocked, wait_for_state},
    harness::{Client, spawn_lab_with, username},
};

fn with_spare(backend: Backend) -> LabConfig {
    let mut config = LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
    config.spare = true;
    config
}

#[tokio::test]
async fn sticky_a_server_added_moves_nobody_and_removed_takes_its_clients() {
    let lab = spawn_lab_with(with_spare(Backend::Sticky)).await;
    sticky_add_and_remove_from_the_dashboard(lab.url(), lab.admin_token()).await;
    lab.shutdown().await;
}

/// Sticky, through the dashboard: adding app4 moves nobody (HAProxy's cookie names each
/// client's server) and new clients reach it; removing it logs out exactly the clients it held.
/// Leaves app4 out of rotation, as it found it. (Compose runs it too: `compose/mod.rs`.)
pub async fn sticky_add_and_remove_from_the_dashboard(url: &str, token: &str) {
    let admin = unlocked(url, token).await;
    wait_for_state(&admin, SPARE, "maintenance").await;
    let mut pinned = Vec::new();
    for n in 0..6 {
        let client = Client::new(url);
        client.register_and_login(&username("before")).await;
        client.add(n + 1, 1).await;
        let replica = client.get("/api/me").await.replica;
        assert_ne!(replica, SPARE, "the spare served a client before it was added");
        pinned.push((client, replica));
    }

    let added = control(&admin, SPARE, "ready").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    wait_for_state(&admin, SPARE, "up").await;
    for (client, replica) in &pinned {
        let me = client.get("/api/me").await;
        assert_eq!((me.status, &me.replica), (StatusCode::OK, replica), "adding a server moved a client");
    }
    let mut newcomer = None;
    for _ in 0..8 {
        let client = Client::new(url);
        client.register_and_login(&username("after")).await;
        if client.get("/api/me").await.replica == SPARE {
            newcomer = Some(client);
            break;
        }
    }
    let newcomer = newcomer.expect("no new client reached the added server in eight sign-ups");

    let removed = control(&admin, SPARE, "remove").await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.text);
    assert!(admin.get(removed.headers["location"].to_str().unwrap()).await.text.contains("out of rotation"));
    wait_for_state(&admin, SPARE, "maintenance").await;
    let gone = newcomer.get("/api/me").await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{} knew a session of the removed server", gone.replica);
    for (client, replica) in &pinned {
        let me = client.get("/api/me").await;
        assert_eq!((me.status, &me.replica), (StatusCode::OK, replica), "removing app4 moved another client");
    }
}

/// The same experiment `make compare` runs, on sticky and on a shared store.
#[tokio::test]
async fn a_shared_store_loses_nothing_when_a_server_comes_and_goes_and_sticky_loses_its_clients() {
    for backend in [Backend::Redis, Backend::Sticky] {
        let lab = spawn_lab_with(with_spare(backend)).await;
        let s = add_and_remove(&lab).await.unwrap();
        println!("{backend}: {s:?}");
        assert_eq!(s.kept_after_add, s.users_before, "{backend}: adding a server logged people out");
        assert!(s.new_on_spare > 0, "{backend}: the added server served no new user");
        let everyone = s.users_before + s.new_users;
        if backend == Backend::Sticky {
            assert!(s.on_spare_at_removal > 0 && s.on_spare_kept == 0, "{backend}: {s:?}");
            assert_eq!(s.kept_after_remove, everyone - s.on_spare_at_removal, "{backend}");
        } else {
            assert_eq!(s.kept_after_remove, everyone, "{backend}: removing a server logged people out");
        }
        lab.shutdown().await;
    }
}
