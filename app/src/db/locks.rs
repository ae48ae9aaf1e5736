//! Locks that every replica sees, held by one database connection: PostgreSQL advisory locks
//! and MySQL named locks. (SQLite serializes writers by itself; these are no-ops there.)
use diesel::{
    QueryableByName, RunQueryDsl,
    sql_types::{BigInt, Nullable, Text},
};

use super::DbConnection;

pub struct NamedLock {
    /// PostgreSQL's advisory locks are numbered.
    pub pg_key: i64,
    /// MySQL's are named.
    pub name: &'static str,
}

/// Held while a replica migrates and seeds at start-up.
pub const SETUP: NamedLock = NamedLock { pg_key: 0x005e_5510_71ab, name: "sessionlab_setup" };
/// Held by the one replica that sweeps expired sessions this round.
pub const SWEEP: NamedLock = NamedLock { pg_key: 0x005e_5510_5eeb, name: "sessionlab_sweep" };
/// Held by the one replica that sweeps the app database's expired rows this round.
pub const UPKEEP: NamedLock = NamedLock { pg_key: 0x005e_5510_0bee, name: "sessionlab_upkeep" };

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Nullable<BigInt>)]
    acquired: Option<i64>,
}

/// Takes `lock` on this connection, waiting up to `wait_secs` (0: try once and return). `false`:
/// another connection holds it. PostgreSQL waits without a limit when `wait_secs` is not 0.
pub fn acquire(conn: &mut DbConnection, lock: &NamedLock, wait_secs: i64) -> anyhow::Result<bool> {
    let got = match conn {
        DbConnection::Postgresql(pg) if wait_secs == 0 => {
            diesel::sql_query("SELECT CAST(CAST(pg_try_advisory_lock($1) AS INTEGER) AS BIGINT) AS acquired")
                .bind::<BigInt, _>(lock.pg_key)
                .get_result::<Acquired>(pg)?
        }
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT CAST(1 AS BIGINT) AS acquired FROM (SELECT pg_advisory_lock($1)) AS waited")
                .bind::<BigInt, _>(lock.pg_key)
                .get_result::<Acquired>(pg)?
        }
        DbConnection::Mysql(my) => diesel::sql_query("SELECT CAST(GET_LOCK(?, ?) AS SIGNED) AS acquired")
            .bind::<Text, _>(lock.name)
            .bind::<BigInt, _>(wait_secs)
            .get_result::<Acquired>(my)?,
        DbConnection::Sqlite(_) => Acquired { acquired: Some(1) },
    };
    Ok(got.acquired == Some(1))
}

pub fn release(conn: &mut DbConnection, lock: &NamedLock) -> anyhow::Result<()> {
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(lock.pg_key).execute(pg)?;
        }
        DbConnection::Mysql(my) => {
            diesel::sql_query("SELECT RELEASE_LOCK(?)").bind::<Text, _>(lock.name).execute(my)?;
        }
        DbConnection::Sqlite(_) => {}
    }
    Ok(())
}

/// One round of work that only one replica may do at a time: runs `work` if this connection
/// wins `lock` at once, and releases the lock whatever `work` returned. `None`: another replica
/// holds it, and this one skips the round.
pub fn one_at_a_time<T>(
    conn: &mut DbConnection,
    lock: &NamedLock,
    work: impl FnOnce(&mut DbConnection) -> anyhow::Result<T>,
) -> anyhow::Result<Option<T>> {
    if !acquire(conn, lock, 0)? {
        return Ok(None);
    }
    let result = work(conn);
    release(conn, lock)?;
    result.map(Some)
}
