//! The app database on PostgreSQL: three replicas migrate and seed one fresh database at the
//! same moment without tripping over each other, and sweep its expired rows. The tests start
//! their own private PostgreSQL (initdb'd in a temporary directory, stopped by PID when the test
//! ends).
use std::{
    path::Path,
    time::{Duration, Instant},
};

use diesel::{RunQueryDsl, sql_types::BigInt};
use reqwest::StatusCode;
use sessionlab::{
    db::Db,
    lab::{Lab, LabConfig, Logs, StoreKind, StoreServer},
    session::{Backend, unix_now},
};

use crate::harness::{Client, spawn_lab_with, username};

/// A private PostgreSQL (under `dir`) as the app database of a `cookie` lab.
async fn lab_on_postgres(dir: &Path, env: &[(&str, &str)]) -> (StoreServer, Lab) {
    let postgres = StoreServer::start(StoreKind::Postgres, dir, Logs::Files).await.unwrap();
    let mut cfg = LabConfig::new(Backend::Cookie, env!("CARGO_BIN_EXE_sessionlab").into());
    cfg.database_url = Some(postgres.url());
    cfg.extra_env.extend(env.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    let lab = spawn_lab_with(cfg).await;
    (postgres, lab)
}

#[tokio::test]
async fn three_replicas_migrate_one_postgres_database_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut postgres, lab) = lab_on_postgres(dir.path(), &[]).await;
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

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows that expire are deleted by the replicas' upkeep (one of them per round), without anyone
/// reading them: throttle windows, "your devices" rows, revocation entries, refresh families.
/// Rows that have not expired stay.
#[tokio::test]
async fn the_replicas_sweep_expired_rows_and_keep_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (mut postgres, lab) = lab_on_postgres(dir.path(), &[("SESSION_SWEEP_INTERVAL_SECS", "1")]).await;

    let db = Db::open(&postgres.url()).unwrap();
    let now = unix_now();
    let (past, future) = (now - 1, now + 900);
    db.run(move |conn| {
        for (key, ends) in [("expired", past), ("live", future)] {
            diesel::sql_query(format!(
                "INSERT INTO login_throttle (key, failures, window_ends) VALUES ('ip:{key}', 3, {ends})"
            ))
            .execute(conn)?;
            diesel::sql_query(format!(
                "INSERT INTO session_registry (sid, user_id, device, created_at, expires_at) \
                 VALUES ('{key}', 1, 'null', {now}, {ends})"
            ))
            .execute(conn)?;
            diesel::sql_query(format!("INSERT INTO revoked_sessions (sid, expires_at) VALUES ('{key}', {ends})"))
                .execute(conn)?;
            diesel::sql_query(format!(
                "INSERT INTO jwt_refresh_families (sid, current_jti, expires_at) VALUES ('{key}', 'j', {ends})"
            ))
            .execute(conn)?;
        }
        Ok(())
    })
    .await
    .unwrap();

    let count = |condition: &'static str| {
        let db = db.clone();
        async move {
            db.run(move |conn| {
                let sql = format!(
                    "SELECT (SELECT COUNT(*) FROM login_throttle WHERE key LIKE 'ip:{condition}') \
                     + (SELECT COUNT(*) FROM session_registry WHERE sid = '{condition}') \
                     + (SELECT COUNT(*) FROM revoked_sessions WHERE sid = '{condition}') \
                     + (SELECT COUNT(*) FROM jwt_refresh_families WHERE sid = '{condition}') AS n"
                );
                Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n)
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(count("expired").await, 4, "the rows are in");
    let deadline = Instant::now() + Duration::from_secs(15);
    while count("expired").await > 0 {
        assert!(Instant::now() < deadline, "expired rows were not swept");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count("live").await, 4, "a live row was swept");
    lab.shutdown().await;
    postgres.stop().await;
}

/// The app database down: a replica cannot check a password, and says so with a 503
/// `database_unavailable` and a `Retry-After`, never a 500. Once the database is back, the same
/// log-in works on the same replica, whose pool drops the connections that died with it.
#[tokio::test]
async fn a_database_outage_is_a_503_until_the_database_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut postgres, lab) = lab_on_postgres(dir.path(), &[]).await;
    let name = username("dbdown");
    Client::new(lab.url()).register_and_login(&name).await;
    // Straight to a replica, as a guest each time (a logged-in session would first need the
    // revocation list, which lives in the same database): HAProxy takes replicas that fail
    // /readyz out of its rotation.
    let url = lab.state().replicas[0].url.clone();
    let guest = || Client::new(&url);
    let login = serde_json::json!({"username": name, "password": format!("pw-{name}-long")});
    assert_eq!(guest().post("/api/login", login.clone()).await.status, StatusCode::OK);

    postgres.stop().await;
    let down = guest().post("/api/login", login.clone()).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "{}", down.text);
    assert_eq!(down.body["error"], "database_unavailable", "{}", down.text);
    assert_eq!(down.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("2"));
    let ready = guest().get("/readyz").await;
    assert_eq!((ready.status, &ready.body["database"]), (StatusCode::SERVICE_UNAVAILABLE, &"unavailable".into()));

    postgres.start_again().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let back = guest().post("/api/login", login.clone()).await;
        if back.status == StatusCode::OK {
            break;
        }
        assert_eq!(back.status, StatusCode::SERVICE_UNAVAILABLE, "{}", back.text);
        assert!(Instant::now() < deadline, "the log-in did not work again: {}", back.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lab.shutdown().await;
    postgres.stop().await;
}
