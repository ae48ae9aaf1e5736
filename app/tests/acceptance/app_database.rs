//! The app database on PostgreSQL: three replicas migrate and seed one fresh database at the
//! same moment without tripping over each other. Uses a private database on the machine's
//! PostgreSQL (never stopped), dropped afterwards.
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::StatusCode;
use sessionlab::{lab::LabConfig, session::Backend};

use crate::harness::{Client, spawn_lab_with, username};

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

#[tokio::test]
async fn three_replicas_migrate_one_postgres_database_at_once() {
    let Ok(mut admin) = PgConnection::establish(&format!("{SERVER}/postgres")) else {
        // CI has PostgreSQL; a laptop may not. Say so instead of passing silently.
        assert!(std::env::var("CI").is_err(), "PostgreSQL at {SERVER} is required in CI");
        eprintln!("SKIPPED: no PostgreSQL at {SERVER}");
        return;
    };
    let db = username("sessionlab_test");
    diesel::sql_query(format!("CREATE DATABASE {db}")).execute(&mut admin).unwrap();

    let mut cfg = LabConfig::new(Backend::Cookie, env!("CARGO_BIN_EXE_sessionlab").into());
    cfg.database_url = Some(format!("{SERVER}/{db}"));
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

    diesel::sql_query(format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).unwrap();
}
