//! What only the Redis strategies promise: the command count, the key names, and persistence.
//! Each test owns a private redis-server.
use reqwest::StatusCode;
use sessionlab::{
    lab::LabConfig,
    session::{Backend, SessionId, redis::KEY_PREFIX},
};

use crate::harness::{Client, redis_commands, spawn_lab, spawn_lab_with, username};

async fn redis_conn(lab: &sessionlab::lab::Lab) -> redis::aio::MultiplexedConnection {
    let url = lab.store().expect("a private Redis").lock().await.url();
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn a_read_only_request_costs_exactly_one_redis_command() {
    let lab = spawn_lab(Backend::Redis).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("budget")).await;
    client.add(1, 1).await;
    // Warm every replica's pool, so connection set-up is not counted.
    for _ in 0..6 {
        client.cart().await;
    }
    let mut conn = redis_conn(&lab).await;
    crate::harness::pause_health_checks(&lab).await;
    let before = redis_commands(&mut conn).await;
    for _ in 0..50 {
        let (reply, items) = client.cart().await;
        assert_eq!((reply.status, items.len()), (StatusCode::OK, 1));
    }
    let after = redis_commands(&mut conn).await;
    let delta: std::collections::BTreeMap<_, _> = after
        .iter()
        .map(|(cmd, n)| (cmd.clone(), n - before.get(cmd).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(delta, [("getex".to_owned(), 50)].into(), "commands for 50 reads");
    lab.shutdown().await;
}

#[tokio::test]
async fn keys_are_prefixed_hashes_of_the_session_id_and_slide_on_reads() {
    let lab = spawn_lab(Backend::Redis).await;
    let client = Client::new(lab.url());
    client.register_and_login(&username("keys")).await;
    let cookie = client.session_cookie().unwrap();
    let id = SessionId::parse(&cookie).expect("the cookie is a bare session ID");
    let mut conn = redis_conn(&lab).await;
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("{KEY_PREFIX}*"))
        .arg("COUNT")
        .arg(1000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![format!("{KEY_PREFIX}{}", id.storage_key())]);
    let value: String = redis::cmd("GET").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(!value.contains(&cookie) && !keys[0].contains(&cookie), "the store holds the live cookie");

    let _: () = redis::cmd("EXPIRE").arg(&keys[0]).arg(100).query_async(&mut conn).await.unwrap();
    client.cart().await;
    let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(ttl > 1000, "a read did not slide the expiry (TTL {ttl})");
    lab.shutdown().await;
}

/// The article counts persistence among Redis's strengths; the lab runs Redis both ways. With its
/// append-only file (the default, as compose runs it) a restart keeps every session; without
/// persistence, the same restart logs everyone out. The same scenario for `redis` and the stock
/// `actix-redis`, so each way is seen failing or holding on both.
#[tokio::test]
async fn a_redis_restart_keeps_sessions_only_with_its_append_only_file() {
    for backend in [Backend::Redis, Backend::ActixRedis] {
        for append_only in [true, false] {
            let mut config = LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
            config.redis_append_only = append_only;
            let lab = spawn_lab_with(config).await;
            let persistence = lab.state().stores[0].persistence.clone().unwrap_or_default();
            assert_eq!(persistence.contains("append-only"), append_only, "{backend}: {persistence}");
            crate::suite::restarting_the_store(&lab, append_only).await;
            lab.shutdown().await;
        }
    }
}
