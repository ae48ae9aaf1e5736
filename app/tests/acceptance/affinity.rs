//! Sticky sessions' two mechanisms, as the article names them: HAProxy's cookie, and the client's
//! address (`balance source`). Where the mapping lives decides what breaks it.
use std::collections::BTreeSet;

use reqwest::StatusCode;
use sessionlab::{
    lab::{Affinity, LabConfig},
    session::Backend,
};

use crate::harness::{Client, spawn_lab_with, username};

fn sticky(affinity: Affinity) -> LabConfig {
    let mut config = LabConfig::new(Backend::Sticky, env!("CARGO_BIN_EXE_sessionlab").into());
    config.affinity = affinity;
    config
}

/// Every client of the lab comes from 127.0.0.1, as every office behind one NAT does: pinned by
/// address, all of them share one replica (the other two idle), and one crash logs them all out.
#[tokio::test]
async fn pinned_by_address_everyone_behind_one_address_shares_one_replica() {
    let lab = spawn_lab_with(sticky(Affinity::Source)).await;
    let mut clients = Vec::new();
    let mut served = BTreeSet::new();
    for n in 0..12 {
        let client = Client::new(lab.url());
        client.register_and_login(&username("nat")).await;
        client.add(n + 1, 1).await;
        for _ in 0..3 {
            let me = client.get("/api/me").await;
            assert_eq!(me.status, StatusCode::OK, "affinity by address keeps a client on its replica");
            served.insert(me.replica);
        }
        clients.push(client);
    }
    assert_eq!(served.len(), 1, "twelve users behind one address, replicas {served:?}");
    let everyone = served.into_iter().next().unwrap();
    // Whether HAProxy sends them to a survivor or to the restarted process (its memory is new),
    // no replica knows any of them any more.
    lab.kill_replica(&everyone).await.unwrap();
    for client in &clients {
        let me = client.get("/api/me").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{} still knew a user of {everyone}", me.replica);
    }
    lab.shutdown().await;
}

/// HAProxy's `SERVERID` cookie names the server in the client, so a restarted HAProxy (a new
/// process that remembers nothing) sends every client back to its replica. A stick table, kept in
/// HAProxy's memory, would be empty after the restart.
#[tokio::test]
async fn a_restarted_haproxy_keeps_every_client_on_its_replica() {
    let mut lab = spawn_lab_with(sticky(Affinity::Cookie)).await;
    let mut clients = Vec::new();
    for n in 0..6 {
        let client = Client::new(lab.url());
        client.register_and_login(&username("pinned")).await;
        client.add(n + 1, 2).await;
        let (reply, _) = client.cart().await;
        clients.push((client, reply.replica, n + 1));
    }
    let replicas: BTreeSet<_> = clients.iter().map(|(_, replica, _)| replica.clone()).collect();
    assert!(replicas.len() > 1, "the clients should spread over the replicas: {replicas:?}");
    let old_pid = lab.state().haproxy.pid;
    lab.restart_haproxy().await.unwrap();
    assert_ne!(lab.state().haproxy.pid, old_pid, "HAProxy was not restarted");
    for (client, replica, product) in &clients {
        for _ in 0..3 {
            let (reply, items) = client.cart().await;
            assert_eq!(&reply.replica, replica, "a restarted HAProxy moved a client");
            assert_eq!(items, vec![(*product, 2)]);
            assert_eq!(client.get("/api/me").await.status, StatusCode::OK);
        }
    }
    lab.shutdown().await;
}
