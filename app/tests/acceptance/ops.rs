//! Store operations per request, counted by the store itself: the numbers in the README's table.
//! Reads are `GET /api/cart` of a logged-in user; writes are `POST /api/cart/items`.
use std::collections::BTreeMap;

use diesel::{Connection, MysqlConnection, PgConnection, QueryableByName, RunQueryDsl, sql_types::Text};
use sessionlab::{lab::LabConfig, session::Backend};

use crate::harness::{Client, pause_health_checks, redis_commands, spawn_lab_with, username};

type Counts = BTreeMap<String, u64>;

/// What the store says it has done so far.
async fn counters(backend: Backend, lab: &sessionlab::lab::Lab, redis_url: Option<&str>) -> Counts {
    let url = match redis_url {
        Some(url) => url.to_owned(),
        None => lab.store().unwrap().lock().await.url(),
    };
    match backend {
        // The client-side strategies' revocation list, when it is in Redis.
        _ if redis_url.is_some() => {
            let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
            redis_commands(&mut conn).await
        }
        Backend::Redis | Backend::Jwt | Backend::ActixRedis => {
            let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
            redis_commands(&mut conn).await
        }
        Backend::Memcached => {
            let mut client = async_memcached::Client::new(format!("tcp://{url}")).await.unwrap();
            let stats = client.stats().await.unwrap();
            ["cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses"]
                .iter()
                .map(|k| (k.to_string(), stats[*k].parse().unwrap()))
                .collect()
        }
        Backend::Postgres => {
            // Every statement the server executes, from its own log (log_statement = all).
            let log = std::fs::read_to_string(lab.dir().join("postgres/postgres.log")).unwrap();
            let executed =
                log.lines().filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement:")).count();
            [("statements".to_owned(), executed as u64)].into()
        }
        Backend::Mysql => tokio::task::spawn_blocking(move || {
            #[derive(QueryableByName)]
            struct Status {
                #[diesel(sql_type = Text, column_name = "Variable_name")]
                name: String,
                #[diesel(sql_type = Text, column_name = "Value")]
                value: String,
            }
            let mut conn = MysqlConnection::establish(&url).unwrap();
            diesel::sql_query(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_insert', 'Com_update', 'Com_delete')",
            )
            .load::<Status>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|s| (s.name.to_lowercase(), s.value.parse().unwrap()))
            .collect()
        })
        .await
        .unwrap(),
        Backend::Memory | Backend::Sticky | Backend::Cookie | Backend::ActixCookie => Counts::new(),
    }
}

fn delta(before: &Counts, after: &Counts) -> Counts {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect()
}

/// `(reads, writes)`: what 50 reads and 10 writes cost at the store.
async fn measure(backend: Backend, extra_env: &[(&str, String)]) -> (Counts, Counts) {
    let mut cfg = LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
    cfg.extra_env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let redis_url = extra_env.iter().find(|(k, _)| *k == "REDIS_URL").map(|(_, v)| v.clone());
    let lab = spawn_lab_with(cfg).await;
    if backend == Backend::Postgres {
        let url = lab.store().unwrap().lock().await.url();
        tokio::task::spawn_blocking(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            diesel::sql_query("ALTER SYSTEM SET log_statement = 'all'").execute(&mut conn).unwrap();
            diesel::sql_query("SELECT pg_reload_conf()").execute(&mut conn).unwrap();
        })
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let client = Client::new(lab.url());
    client.register_and_login(&username("ops")).await;
    client.add(1, 1).await;
    for _ in 0..6 {
        client.cart().await; // every replica opens its connections before counting starts
    }

    pause_health_checks(&lab).await;
    let start = counters(backend, &lab, redis_url.as_deref()).await;
    for _ in 0..50 {
        assert_eq!(client.cart().await.1.len(), 1);
    }
    let after_reads = counters(backend, &lab, redis_url.as_deref()).await;
    for n in 0..10 {
        assert_eq!(client.add(2 + n, 1).await.status, reqwest::StatusCode::OK);
    }
    let after_writes = counters(backend, &lab, redis_url.as_deref()).await;
    lab.shutdown().await;
    let (reads, writes) = (delta(&start, &after_reads), delta(&after_reads, &after_writes));
    println!("{backend}: 50 reads -> {reads:?}; 10 writes -> {writes:?}");
    (reads, writes)
}

fn counts(pairs: &[(&str, u64)]) -> Counts {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn redis_reads_cost_one_getex_and_writes_one_more_compare_and_set() {
    let (reads, writes) = measure(Backend::Redis, &[]).await;
    assert_eq!(reads, counts(&[("getex", 50)]));
    // One round trip per write: EVALSHA, whose script runs its GET and SET inside Redis (INFO
    // commandstats counts those too).
    assert_eq!(writes, counts(&[("getex", 10), ("evalsha", 10), ("get", 10), ("set", 10)]));
}

#[tokio::test]
async fn memcached_reads_cost_one_meta_get_and_writes_one_more_meta_set() {
    let (reads, writes) = measure(Backend::Memcached, &[]).await;
    // One `mg <key> v c T<ttl>` per read: memcached files a get that also touches under cmd_touch.
    assert_eq!(reads, counts(&[("cmd_touch", 50)]));
    assert_eq!(writes, counts(&[("cmd_set", 10), ("cmd_touch", 10)]));
}

#[tokio::test]
async fn postgres_reads_cost_one_statement_and_writes_one_more() {
    let (reads, writes) = measure(Backend::Postgres, &[]).await;
    assert_eq!(reads, counts(&[("statements", 50)]));
    assert_eq!(writes, counts(&[("statements", 20)]));
}

#[tokio::test]
async fn mysql_reads_cost_one_select_and_writes_one_more_update() {
    let (reads, writes) = measure(Backend::Mysql, &[]).await;
    assert_eq!(reads, counts(&[("com_select", 50)]));
    assert_eq!(writes, counts(&[("com_select", 10), ("com_update", 10)]));
}

/// What 50 reads and 10 writes of a logged-in user cost at a private Redis holding the
/// revocation list of a client-side strategy.
async fn measure_with_revocations_in_redis(backend: Backend) -> (Counts, Counts) {
    let (_dir, mut redis) = private_redis().await;
    let measured = measure(backend, &[("REDIS_URL", redis.url())]).await;
    redis.stop().await;
    measured
}

/// A Redis of the test's own, in a temporary directory that lives as long as the server.
async fn private_redis() -> (tempfile::TempDir, sessionlab::lab::StoreServer) {
    let dir = tempfile::tempdir().unwrap();
    let redis = sessionlab::lab::StoreServer::start(
        sessionlab::lab::StoreKind::Redis,
        dir.path(),
        sessionlab::lab::Logs::Files,
    )
    .await
    .unwrap();
    (dir, redis)
}

#[tokio::test]
async fn jwt_reads_and_writes_cost_one_revocation_check_each() {
    let (reads, writes) = measure_with_revocations_in_redis(Backend::Jwt).await;
    assert_eq!(reads, counts(&[("mget", 50)]));
    assert_eq!(writes, counts(&[("mget", 10)]), "a JWT write touches no store");
}

/// The price of "your devices" for the strategies that keep no session on the server: every
/// logged-in request asks the revocation list, once.
#[tokio::test]
async fn logged_in_cookie_and_sticky_requests_cost_one_revocation_check_each() {
    for backend in [Backend::Cookie, Backend::Sticky] {
        let (reads, writes) = measure_with_revocations_in_redis(backend).await;
        assert_eq!(reads, counts(&[("mget", 50)]), "{backend}");
        assert_eq!(writes, counts(&[("mget", 10)]), "{backend}: the write itself touches no store");
    }
}

/// Without their revocation layer (`SESSION_REVOCATION=off`), the same strategies are what the
/// article describes: no request, read or write, asks any store. What that gives up is in `pure.rs`.
#[tokio::test]
async fn without_the_revocation_layer_no_logged_in_request_asks_a_store() {
    for backend in [Backend::Jwt, Backend::Cookie, Backend::Sticky] {
        let (_dir, mut redis) = private_redis().await;
        let (reads, writes) =
            measure(backend, &[("REDIS_URL", redis.url()), ("SESSION_REVOCATION", "off".into())]).await;
        redis.stop().await;
        assert_eq!((reads, writes), (Counts::new(), Counts::new()), "{backend}");
    }
}

/// Guests of the client-side strategies stay stateless: their requests never reach a store.
#[tokio::test]
async fn guest_cookie_and_sticky_requests_touch_no_store() {
    for backend in [Backend::Cookie, Backend::Sticky] {
        let (_dir, mut redis) = private_redis().await;
        let mut cfg = LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
        cfg.extra_env.push(("REDIS_URL".into(), redis.url()));
        let lab = spawn_lab_with(cfg).await;
        pause_health_checks(&lab).await;
        let url = redis.url();
        let guest = Client::new(lab.url());
        let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let before = redis_commands(&mut conn).await;
        assert_eq!(guest.add(1, 1).await.status, reqwest::StatusCode::OK);
        for _ in 0..20 {
            assert_eq!(guest.cart().await.1, vec![(1, 1)]);
        }
        let after = redis_commands(&mut conn).await;
        assert_eq!(delta(&before, &after), Counts::new(), "{backend}: a guest reached the store");
        lab.shutdown().await;
        redis.stop().await;
    }
}

/// Guests cannot fill the stores: one who only looks at the session inspector creates nothing
/// anywhere (with memcached, guests' sessions could evict real users'), and a guest's logout
/// writes nothing — for `cookie` and `jwt` not even a revocation entry for the guest's token.
#[tokio::test]
async fn a_guest_who_only_looks_or_logs_out_writes_nothing() {
    for (backend, revocations_in_redis) in [
        (Backend::Redis, false),
        (Backend::Memcached, false),
        (Backend::Jwt, true),
        (Backend::Cookie, true),
        (Backend::Sticky, true),
    ] {
        let mut private = if revocations_in_redis { Some(private_redis().await) } else { None };
        let redis_url = private.as_ref().map(|(_, redis)| redis.url());
        let mut cfg = LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
        cfg.extra_env.extend(redis_url.iter().map(|url| ("REDIS_URL".to_owned(), url.clone())));
        let lab = spawn_lab_with(cfg).await;
        pause_health_checks(&lab).await;
        let guest = Client::new(lab.url());

        let before = counters(backend, &lab, redis_url.as_deref()).await;
        for _ in 0..3 {
            let page = guest.get("/session").await;
            assert_eq!(page.status, reqwest::StatusCode::OK, "{backend}");
            let api = guest.get("/api/session").await;
            assert_eq!((api.status, api.body["cart_count"].as_u64()), (reqwest::StatusCode::OK, Some(0)), "{backend}");
        }
        let logout = guest.post("/api/logout", serde_json::json!({})).await;
        assert_eq!(logout.status, reqwest::StatusCode::NO_CONTENT, "{backend}");
        let after = counters(backend, &lab, redis_url.as_deref()).await;
        assert_eq!(delta(&before, &after), Counts::new(), "{backend}: a guest who only looked reached the store");
        assert!(guest.session_cookie().is_none(), "{backend}: a look handed the guest a session");

        // A guest with a cart, logging out: the server-side strategies delete what they stored;
        // the client-side ones have nothing to delete, and list nothing as revoked.
        assert_eq!(guest.add(1, 1).await.status, reqwest::StatusCode::OK);
        let before = counters(backend, &lab, redis_url.as_deref()).await;
        assert_eq!(guest.post("/api/logout", serde_json::json!({})).await.status, reqwest::StatusCode::NO_CONTENT);
        let after = counters(backend, &lab, redis_url.as_deref()).await;
        if backend.keeps_state_in_client() || backend == Backend::Sticky {
            // Reading the revocation list (an `MGET`) is allowed; writing to it is not.
            let mut wrote = delta(&before, &after);
            wrote.remove("mget");
            assert_eq!(wrote, Counts::new(), "{backend}: a guest's logout wrote to the store");
        }
        assert_eq!(guest.cart().await.1, vec![], "{backend}: the cart outlived the logout");
        lab.shutdown().await;
        if let Some((_dir, redis)) = private.as_mut() {
            redis.stop().await;
        }
    }
}
