//! `postgres` and `mysql`: sessions in a table of a relational database, through diesel. The
//! cookie holds only the random ID; the row's key is the ID's SHA-256.
//!
//! - A read is one `SELECT state, version, expires_at … WHERE id = ? AND expires_at > now`. Reads
//!   do not write: the idle expiry is pushed forward by an `UPDATE` only when less than half of
//!   it is left, so a steady reader costs one extra statement per half idle timeout, not one per
//!   request.
//! - A write is compare-and-set: `UPDATE … SET version = v + 1 … WHERE id = ? AND version = v`.
//!   No row updated means another request wrote first (or the session is gone): the write is
//!   refused with a conflict instead of silently overwriting. A new session is an `INSERT`.
//! - `user_id` is kept in its own indexed column: "your devices" is one `SELECT … WHERE user_id`,
//!   and revoking a session is one `DELETE … WHERE id = ? AND user_id = ?` — the next read on
//!   any replica finds no row.
//! - Expired rows are deleted by a background task, in batches of [`SWEEP_BATCH`]. Each replica
//!   runs one, but a round only proceeds on the replica that wins a *try-lock* (PostgreSQL
//!   `pg_try_advisory_lock`, MySQL `GET_LOCK(…, 0)`): one sweeper at a time, the others skip the
//!   round without waiting. Chosen over `SKIP LOCKED` because it does the same on both engines
//!   and keeps three replicas from scanning the same index three times.
//!
//! Diesel is synchronous: every statement runs on tokio's blocking pool ([`crate::db::Db::run`]).
//!
//! # Limitations
//! - The slowest store here: every read is a query, every write a transaction on disk.
//! - The database down means no sessions: 503 until it is back. (A restart loses none: rows are durable.)
//! - Expired rows linger until the sweeper's next round; reads ignore them.
use std::time::Duration;

use async_trait::async_trait;
use diesel::{
    OptionalExtension, RunQueryDsl,
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::BigInt,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{
    Backend, Describe, Loaded, Saved, SessionData, SessionId, SessionStore, StoreError, UserIndex, device::Listed,
    unix_now,
};
use crate::db::{Db, DbConnection, locks, schema::sessions};

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: every replica reads your session from the same table.",
    store_restarted: "Nothing is lost: the sessions are rows on disk. While the database is down, pages answer 503.",
    not_found: "Every replica reads the same table, and its rows survive restarts: a session no replica finds has expired or was logged out.",
};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../migrations/sessions/postgres");
const MYSQL: EmbeddedMigrations = embed_migrations!("../migrations/sessions/mysql");
pub const SWEEP_BATCH: i64 = 500;

pub struct SqlStore {
    db: Db,
    backend: Backend,
    ttl: Duration,
}

impl SqlStore {
    /// Opens the pool and migrates the sessions table (replicas starting together take turns).
    pub async fn connect(url: &str, backend: Backend, ttl: Duration) -> anyhow::Result<Self> {
        let db = Db::open(url)?;
        db.check_client_library().await?;
        db.run(move |conn| {
            let engine_matches = matches!(
                (&*conn, backend),
                (DbConnection::Postgresql(_), Backend::Postgres) | (DbConnection::Mysql(_), Backend::Mysql)
            );
            anyhow::ensure!(
                engine_matches,
                "SESSION_DATABASE_URL must point to a {backend} database for SESSION_BACKEND={backend}"
            );
            crate::db::with_setup_lock(conn, |conn| {
                match conn {
                    DbConnection::Postgresql(pg) => pg.run_pending_migrations(POSTGRES).map(drop),
                    DbConnection::Mysql(my) => my.run_pending_migrations(MYSQL).map(drop),
                    DbConnection::Sqlite(_) => Ok(()),
                }
                .map_err(anyhow::Error::from_boxed)
            })
        })
        .await?;
        Ok(Self { db, backend, ttl })
    }

    /// Deletes expired rows every `interval`, on whichever replica wins the round's try-lock.
    pub fn spawn_sweeper(self: &std::sync::Arc<Self>, interval: Duration) {
        let store = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                match store.sweep().await {
                    Ok(Some(n)) if n > 0 => tracing::info!(deleted = n, "swept expired sessions"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %format!("{err:#}"), "session sweep failed"),
                }
            }
        });
    }

    /// One sweep round: `None` if another replica holds the lock.
    pub async fn sweep(&self) -> anyhow::Result<Option<usize>> {
        let now = unix_now();
        self.db
            .run(move |conn| {
                locks::one_at_a_time(conn, &locks::SWEEP, |conn| {
                    let mut deleted = 0;
                    loop {
                        let n = delete_expired_batch(conn, now)?;
                        deleted += n;
                        if (n as i64) < SWEEP_BATCH {
                            return Ok(deleted);
                        }
                    }
                })
            })
            .await
    }

    fn table(&self) -> &'static str {
        if self.backend == Backend::Postgres { "PostgreSQL" } else { "MySQL" }
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(id) = SessionId::parse(cookie) else { return Ok(None) };
        let key = id.storage_key();
        let ttl = self.ttl.as_secs() as i64;
        let row = self
            .db
            .run(move |conn| {
                let now = unix_now();
                let row: Option<(String, i64, i64)> = sessions::table
                    .filter(sessions::id.eq(&key))
                    .filter(sessions::expires_at.gt(now))
                    .select((sessions::state, sessions::version, sessions::expires_at))
                    .first(conn)
                    .optional()?;
                if let Some((_, _, expires_at)) = &row
                    && expires_at - now < ttl / 2
                {
                    diesel::update(sessions::table.filter(sessions::id.eq(&key)))
                        .set(sessions::expires_at.eq(now + ttl))
                        .execute(conn)?;
                }
                Ok(row)
            })
            .await
            .map_err(StoreError::unavailable)?;
        let Some((state, version, _)) = row else { return Ok(None) };
        Ok(SessionData::from_json(state.as_bytes()).map(|data| Loaded {
            id,
            data,
            state_bytes: state.len(),
            ttl: self.ttl,
            refresh_due: false,
            version: Some(version as u64),
        }))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        let key = id.storage_key();
        let state = String::from_utf8(data.to_json()).expect("JSON is UTF-8");
        let state_bytes = state.len();
        let user_id = data.user.as_ref().map(|u| u.id);
        let ttl = self.ttl.as_secs() as i64;
        let written = self
            .db
            .run(move |conn| {
                let now = unix_now();
                let rows = match expected {
                    None => diesel::insert_into(sessions::table)
                        .values((
                            sessions::id.eq(&key),
                            sessions::state.eq(&state),
                            sessions::version.eq(1_i64),
                            sessions::user_id.eq(user_id),
                            sessions::created_at.eq(now),
                            sessions::updated_at.eq(now),
                            sessions::expires_at.eq(now + ttl),
                        ))
                        .execute(conn),
                    Some(version) => diesel::update(
                        sessions::table.filter(sessions::id.eq(&key)).filter(sessions::version.eq(version as i64)),
                    )
                    .set((
                        sessions::state.eq(&state),
                        sessions::version.eq(version as i64 + 1),
                        sessions::user_id.eq(user_id),
                        sessions::updated_at.eq(now),
                        sessions::expires_at.eq(now + ttl),
                    ))
                    .execute(conn),
                };
                match rows {
                    Ok(1) => Ok(true),
                    Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
                    Err(err) => Err(err.into()),
                }
            })
            .await
            .map_err(StoreError::unavailable)?;
        if !written {
            return Err(StoreError::Conflict);
        }
        Ok(Saved {
            cookie: id.expose().to_owned(),
            state_bytes,
            ttl: self.ttl,
            version: Some(expected.map_or(1, |v| v + 1)),
        })
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = id.storage_key();
        self.db
            .run(move |conn| {
                Ok(diesel::delete(sessions::table.filter(sessions::id.eq(&key))).execute(conn).map(drop)?)
            })
            .await
            .map_err(StoreError::unavailable)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.run(|conn| Ok(crate::db::queries::ping(conn)?)).await.map_err(StoreError::unavailable)
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

/// The `user_id` column is the index: `save` keeps it, and a query lists a user's rows.
#[async_trait]
impl UserIndex for SqlStore {
    async fn add(&self, _id: &SessionId, _data: &SessionData) -> Result<(), StoreError> {
        Ok(())
    }

    async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        let rows: Vec<(String, String)> = self
            .db
            .run(move |conn| {
                Ok(sessions::table
                    .filter(sessions::user_id.eq(user_id))
                    .filter(sessions::expires_at.gt(unix_now()))
                    .order(sessions::created_at)
                    .select((sessions::id, sessions::state))
                    .load(conn)?)
            })
            .await
            .map_err(StoreError::unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, state)| SessionData::from_json(state.as_bytes()).map(|data| Listed::new(key, data)))
            .collect())
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.db
            .run(move |conn| {
                let mine = sessions::table.filter(sessions::id.eq(&key)).filter(sessions::user_id.eq(user_id));
                Ok(diesel::delete(mine).execute(conn)? == 1)
            })
            .await
            .map_err(StoreError::unavailable)
    }
}

impl Describe for SqlStore {
    fn location(&self, id: &SessionId) -> String {
        format!("{} table sessions, row id = {}", self.table(), id.storage_key())
    }
}

fn delete_expired_batch(conn: &mut DbConnection, now: i64) -> anyhow::Result<usize> {
    Ok(match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(SWEEP_BATCH)
        .execute(pg)?,
        DbConnection::Mysql(my) => diesel::sql_query("DELETE FROM sessions WHERE expires_at <= ? LIMIT ?")
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(SWEEP_BATCH)
            .execute(my)?,
        DbConnection::Sqlite(_) => 0,
    })
}
