//! The stores with compare-and-set, driven directly through the `SessionStore` trait against
//! private servers: a stale write is refused, reads do not write, and the SQL sweeper is elected.
use std::{sync::Arc, time::Duration};

use diesel::{Connection, MysqlConnection, PgConnection, RunQueryDsl, sql_types::BigInt};
use sessionlab::{
    cart::Cart,
    lab::{Logs, StoreServer, store_for},
    session::{
        Backend, SessionData, SessionId, SessionStore, StoreError, memcached::MemcachedStore, sql::SqlStore, unix_now,
    },
};

struct Fixture {
    _dir: tempfile::TempDir,
    server: StoreServer,
    store: Arc<dyn SessionStore>,
}

async fn fixture(backend: Backend, ttl: Duration) -> (Fixture, Option<Arc<SqlStore>>) {
    let dir = tempfile::tempdir().unwrap();
    let (kind, _) = store_for(backend).unwrap();
    let server = StoreServer::start(kind, dir.path(), Logs::Files).await.unwrap();
    let (store, sql): (Arc<dyn SessionStore>, _) = match backend {
        Backend::Memcached => (Arc::new(MemcachedStore::connect(&server.url(), ttl).unwrap()), None),
        _ => {
            let sql = Arc::new(SqlStore::connect(&server.url(), backend, ttl).await.unwrap());
            (sql.clone(), Some(sql))
        }
    };
    (Fixture { _dir: dir, server, store }, sql)
}

fn data_with(product_id: i32) -> SessionData {
    let mut data = SessionData::default();
    let mut cart = Cart::default();
    let product = sessionlab::catalog::seed_products().find(|p| p.id == product_id).unwrap();
    cart.add(&product, 1).unwrap();
    data.cart = cart;
    data
}

async fn a_stale_write_is_refused(backend: Backend) {
    let (f, _) = fixture(backend, Duration::from_secs(600)).await;
    let id = SessionId::generate();
    let created = f.store.save(&id, &data_with(1), None).await.unwrap();
    assert!(created.version.is_some(), "{backend} reports no version");
    assert!(matches!(f.store.save(&id, &data_with(2), None).await, Err(StoreError::Conflict)), "created twice");

    let first_read = f.store.load(id.expose()).await.unwrap().unwrap();
    let second_read = f.store.load(id.expose()).await.unwrap().unwrap();
    assert_eq!(first_read.version, created.version);
    let written = f.store.save(&id, &data_with(3), first_read.version).await.unwrap();
    assert_ne!(written.version, first_read.version);
    let stale = f.store.save(&id, &data_with(4), second_read.version).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{backend} accepted a stale write");
    let now = f.store.load(id.expose()).await.unwrap().unwrap();
    assert_eq!(now.data, data_with(3), "the stale write changed the state");
    assert_eq!(now.version, written.version);
    drop(f.server);
}

#[tokio::test]
async fn memcached_refuses_a_stale_write() {
    a_stale_write_is_refused(Backend::Memcached).await;
}

#[tokio::test]
async fn postgres_refuses_a_stale_write() {
    a_stale_write_is_refused(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_refuses_a_stale_write() {
    a_stale_write_is_refused(Backend::Mysql).await;
}

/// `(expires_at, updated_at)` of a session row, read behind the store's back.
fn row_times(url: &str, backend: Backend, id: &SessionId) -> (i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct Times {
        #[diesel(sql_type = BigInt)]
        expires_at: i64,
        #[diesel(sql_type = BigInt)]
        updated_at: i64,
    }
    let sql = format!("SELECT expires_at, updated_at FROM sessions WHERE id = '{}'", id.storage_key());
    let t: Times = match backend {
        Backend::Postgres => diesel::sql_query(sql).get_result(&mut PgConnection::establish(url).unwrap()).unwrap(),
        _ => diesel::sql_query(sql).get_result(&mut MysqlConnection::establish(url).unwrap()).unwrap(),
    };
    (t.expires_at, t.updated_at)
}

fn execute(url: &str, backend: Backend, sql: &str) {
    match backend {
        Backend::Postgres => diesel::sql_query(sql).execute(&mut PgConnection::establish(url).unwrap()).unwrap(),
        _ => diesel::sql_query(sql).execute(&mut MysqlConnection::establish(url).unwrap()).unwrap(),
    };
}

async fn sql_reads_do_not_write_until_half_the_idle_time_is_gone(backend: Backend) {
    let (f, _) = fixture(backend, Duration::from_secs(1800)).await;
    let url = f.server.url();
    let id = SessionId::generate();
    f.store.save(&id, &SessionData::default(), None).await.unwrap();
    let before = row_times(&url, backend, &id);
    for _ in 0..5 {
        f.store.load(id.expose()).await.unwrap().unwrap();
    }
    assert_eq!(row_times(&url, backend, &id), before, "a fresh session's reads wrote");

    let soon = unix_now() + 100;
    execute(&url, backend, &format!("UPDATE sessions SET expires_at = {soon} WHERE id = '{}'", id.storage_key()));
    f.store.load(id.expose()).await.unwrap().unwrap();
    let (expires_at, updated_at) = row_times(&url, backend, &id);
    assert!(expires_at >= unix_now() + 1700, "the expiry did not slide: {expires_at}");
    assert_eq!(updated_at, before.1, "sliding the expiry is not a state change");
}

#[tokio::test]
async fn postgres_reads_do_not_write_until_half_the_idle_time_is_gone() {
    sql_reads_do_not_write_until_half_the_idle_time_is_gone(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_reads_do_not_write_until_half_the_idle_time_is_gone() {
    sql_reads_do_not_write_until_half_the_idle_time_is_gone(Backend::Mysql).await;
}

async fn the_sweeper_deletes_expired_rows_on_one_replica_at_a_time(backend: Backend) {
    let (f, sql) = fixture(backend, Duration::from_secs(600)).await;
    let sql = sql.unwrap();
    let url = f.server.url();
    for _ in 0..3 {
        let id = SessionId::generate();
        f.store.save(&id, &SessionData::default(), None).await.unwrap();
        let past = unix_now() - 1;
        execute(&url, backend, &format!("UPDATE sessions SET expires_at = {past} WHERE id = '{}'", id.storage_key()));
    }
    let live = SessionId::generate();
    f.store.save(&live, &SessionData::default(), None).await.unwrap();

    // Another replica holds this round's lock: this one skips without waiting.
    let holder_url = url.clone();
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || match backend {
        Backend::Postgres => {
            let mut c = PgConnection::establish(&holder_url).unwrap();
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(sessionlab::db::locks::SWEEP.pg_key)
                .execute(&mut c)
                .unwrap();
            held.send(()).unwrap();
            release.recv().unwrap();
            // Unlock explicitly: a disconnect releases the lock too, but asynchronously.
            diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(sessionlab::db::locks::SWEEP.pg_key)
                .execute(&mut c)
                .unwrap();
        }
        _ => {
            let mut c = MysqlConnection::establish(&holder_url).unwrap();
            diesel::sql_query("SELECT GET_LOCK('sessionlab_sweep', 10)").execute(&mut c).unwrap();
            held.send(()).unwrap();
            release.recv().unwrap();
            diesel::sql_query("SELECT RELEASE_LOCK('sessionlab_sweep')").execute(&mut c).unwrap();
        }
    });
    is_held.recv().unwrap();
    assert_eq!(sql.sweep().await.unwrap(), None, "swept while another replica held the lock");
    hold.send(()).unwrap();
    holder.join().unwrap();

    assert_eq!(sql.sweep().await.unwrap(), Some(3), "expired rows");
    assert!(f.store.load(live.expose()).await.unwrap().is_some(), "the sweeper took a live session");
}

#[tokio::test]
async fn the_postgres_sweeper_deletes_expired_rows_on_one_replica_at_a_time() {
    the_sweeper_deletes_expired_rows_on_one_replica_at_a_time(Backend::Postgres).await;
}

#[tokio::test]
async fn the_mysql_sweeper_deletes_expired_rows_on_one_replica_at_a_time() {
    the_sweeper_deletes_expired_rows_on_one_replica_at_a_time(Backend::Mysql).await;
}
