//! The app database on PostgreSQL: three replicas migrate and seed one fresh database at the
//! same moment without tripping over each other. The test starts its own private PostgreSQL
//! (initdb'd in a temporary directory, stopped by PID when the test ends).
use reqwest::StatusCode;
use sessionlab::{
    lab::{LabConfig, Logs, StoreKind, StoreServer},
    session::Backend,
};

use crate::harness::{Client, spawn_lab_with, username};

#[tokio::test]
async fn three_replicas_migrate_one_postgres_database_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut postgres = StoreServer::start(StoreKind::Postgres, dir.path(), Logs::Files).await.unwrap();

    let mut cfg = LabConfig::new(Backend::Cookie, env!("CARGO_BIN_EXE_sessionlab").into());
    cfg.database_url = Some(postgres.url());
    let lab = spawn_lab_with(cfg).await;
    let client = Client::new(lab.url());
    assert_eq!(client.get("/readyz").await.status, StatusCode::OK);
    let products = client.get("/api/products").await.body.as_array().unwrap().len();
    assert_eq!(products, sessionlab::catalog::SEED.len(), "seeded exactly once");
    client.register_and_login(&username("pg")).await;
    let alice = Client::new(lab.url())
        .post("/api/login", serde_json::json!({"username": "alice", "password": "sessionlab-demo"}))
        .await;
    assert_eq!(alice.status, StatusCode::OK);
    lab.shutdown().await;
    postgres.stop().await;
}
