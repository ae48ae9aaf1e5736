//! The per-user session index for strategies that cannot list a user's sessions by themselves:
//! `memcached` (no secondary index), and through the [`Revocable`](super::revocable::Revocable)
//! layer `memory` and `sticky` (the sessions sit in three replicas' memories), `cookie` and `jwt`
//! (the sessions sit in the clients). One row per logged-in session in the app
//! database, written at log-in, refreshed with the session's device record (at most once a
//! minute), removed when the session is revoked. Never read on the request path.
//!
//! `memory` and `sticky` sessions also die with the replica process that holds them, and a
//! killed process removes nothing. So for them each replica records when its process started,
//! each row which process holds its session, and the list leaves out (and deletes) the sessions
//! whose holder has started again since.
use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use diesel::{
    RunQueryDsl,
    prelude::*,
    sql_types::{BigInt, Nullable, Text},
};

use super::{SessionData, StoreError, device::Listed, unix_now};
use crate::db::{
    Db,
    schema::{replica_starts, session_registry},
};

#[derive(Clone)]
pub struct Registry {
    db: Db,
    /// How long a row is kept: the absolute lifetime, which no session outlives.
    lifetime: Duration,
    /// The process that holds the sessions this replica registers, where a session lives in
    /// one replica's memory.
    holder: Option<Holder>,
}

/// One run of one replica: its name and its start, in Unix milliseconds (a restart is never
/// within the same millisecond).
#[derive(Clone)]
struct Holder {
    replica: String,
    started_at: i64,
}

impl Registry {
    pub fn new(db: Db, lifetime: Duration) -> Self {
        Self { db, lifetime, holder: None }
    }

    /// For sessions held in one replica's memory: records that `replica` starts now, so that
    /// the sessions its previous run held drop out of every list.
    pub async fn held_in_memory_of(self, replica: &str) -> anyhow::Result<Self> {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
        let holder = Holder { replica: replica.to_owned(), started_at: since_epoch.as_millis().try_into()? };
        let row = holder.clone();
        self.db
            .run(move |conn| {
                diesel::sql_query(
                    "INSERT INTO replica_starts (replica, started_at) VALUES ($1, $2) \
                     ON CONFLICT (replica) DO UPDATE SET started_at = excluded.started_at",
                )
                .bind::<Text, _>(&row.replica)
                .bind::<BigInt, _>(row.started_at)
                .execute(conn)?;
                Ok(())
            })
            .await?;
        Ok(Self { holder: Some(holder), ..self })
    }

    /// Records session `key` of the user `data` names (a log-in).
    pub async fn register(&self, key: &str, data: &SessionData) -> Result<(), StoreError> {
        let Some(user) = &data.user else { return Ok(()) };
        let (key, user_id, device) = (key.to_owned(), user.id, device_json(data));
        let (created, expires) = (data.created_at, data.created_at + self.lifetime.as_secs() as i64);
        let holder = self.holder.clone();
        self.db
            .run(move |conn| {
                diesel::sql_query(
                    "INSERT INTO session_registry (sid, user_id, device, created_at, expires_at, held_by, held_since) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (sid) DO UPDATE SET device = excluded.device",
                )
                .bind::<Text, _>(&key)
                .bind::<BigInt, _>(user_id)
                .bind::<Text, _>(&device)
                .bind::<BigInt, _>(created)
                .bind::<BigInt, _>(expires)
                .bind::<Nullable<Text>, _>(holder.as_ref().map(|h| h.replica.as_str()))
                .bind::<Nullable<BigInt>, _>(holder.as_ref().map(|h| h.started_at))
                .execute(conn)?;
                Ok(())
            })
            .await
            .map_err(StoreError::unavailable)
    }

    /// Refreshes the device record of session `key`, if it is still registered: a revoked
    /// session is never brought back by a request that was already in flight.
    pub async fn touch(&self, key: &str, data: &SessionData) -> Result<(), StoreError> {
        let (key, device) = (key.to_owned(), device_json(data));
        self.db
            .run(move |conn| {
                diesel::update(session_registry::table.find(&key))
                    .set(session_registry::device.eq(&device))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .map_err(StoreError::unavailable)
    }

    /// The user's registered sessions, without those past their lifetime; sessions whose replica
    /// process is gone are dropped on the way.
    pub async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        self.db
            .run(move |conn| {
                let now = unix_now();
                // Expired rows are skipped here and swept by the replicas' upkeep (db/upkeep.rs).
                let mine = session_registry::table
                    .filter(session_registry::user_id.eq(user_id))
                    .filter(session_registry::expires_at.gt(now));
                let rows: Vec<Row> = mine
                    .select((
                        session_registry::sid,
                        session_registry::device,
                        session_registry::created_at,
                        session_registry::held_by,
                        session_registry::held_since,
                    ))
                    .order(session_registry::created_at)
                    .load(conn)?;
                let starts: HashMap<String, i64> = if rows.iter().any(|row| row.held_by.is_some()) {
                    replica_starts::table.load(conn)?.into_iter().collect()
                } else {
                    HashMap::new()
                };
                let (alive, gone): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|row| row.lives(&starts));
                let gone: Vec<String> = gone.into_iter().map(|row| row.key).collect();
                if !gone.is_empty() {
                    diesel::delete(session_registry::table.filter(session_registry::sid.eq_any(gone))).execute(conn)?;
                }
                Ok(alive
                    .into_iter()
                    .map(|row| Listed {
                        key: row.key,
                        created_at: row.created_at,
                        device: serde_json::from_str(&row.device).ok(),
                    })
                    .collect())
            })
            .await
            .map_err(StoreError::unavailable)
    }

    /// Removes session `key` of `user_id`; `false` if the user has no such session.
    pub async fn remove(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.db
            .run(move |conn| {
                let rows =
                    diesel::delete(session_registry::table.find(&key).filter(session_registry::user_id.eq(user_id)))
                        .execute(conn)?;
                Ok(rows == 1)
            })
            .await
            .map_err(StoreError::unavailable)
    }
}

/// A registered session, as the list reads it.
#[derive(Queryable)]
struct Row {
    key: String,
    device: String,
    created_at: i64,
    held_by: Option<String>,
    held_since: Option<i64>,
}

impl Row {
    /// Whether the session can still be used: it is not held by a replica, or that replica
    /// still runs the process that held it.
    fn lives(&self, starts: &HashMap<String, i64>) -> bool {
        self.held_by.as_ref().is_none_or(|replica| starts.get(replica) == self.held_since.as_ref())
    }
}

fn device_json(data: &SessionData) -> String {
    serde_json::to_string(&data.device).expect("a device record is plain JSON")
}
