//! The per-user session index for strategies that cannot list a user's sessions by themselves:
//! `memcached` (no secondary index), and through the [`Revocable`](super::revocable::Revocable)
//! layer `memory` and `sticky` (the sessions sit in three replicas' memories), `cookie` and `jwt`
//! (the sessions sit in the clients). One row per logged-in session in the app
//! database, written at log-in, refreshed with the session's device record (at most once a
//! minute), removed when the session is revoked. Never read on the request path.
use std::time::Duration;

use diesel::{
    RunQueryDsl,
    prelude::*,
    sql_types::{BigInt, Text},
};

use super::{SessionData, StoreError, device::Listed, unix_now};
use crate::db::{Db, schema::session_registry};

#[derive(Clone)]
pub struct Registry {
    db: Db,
    /// How long a row is kept: the absolute lifetime, which no session outlives.
    lifetime: Duration,
}

impl Registry {
    pub fn new(db: Db, lifetime: Duration) -> Self {
        Self { db, lifetime }
    }

    /// Records session `key` of the user `data` names (a log-in).
    pub async fn register(&self, key: &str, data: &SessionData) -> Result<(), StoreError> {
        let Some(user) = &data.user else { return Ok(()) };
        let (key, user_id, device) = (key.to_owned(), user.id, device_json(data));
        let (created, expires) = (data.created_at, data.created_at + self.lifetime.as_secs() as i64);
        self.db
            .run(move |conn| {
                diesel::sql_query(
                    "INSERT INTO session_registry (sid, user_id, device, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (sid) DO UPDATE SET device = excluded.device",
                )
                .bind::<Text, _>(&key)
                .bind::<BigInt, _>(user_id)
                .bind::<Text, _>(&device)
                .bind::<BigInt, _>(created)
                .bind::<BigInt, _>(expires)
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

    /// The user's registered sessions; rows past their lifetime are dropped on the way.
    pub async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        self.db
            .run(move |conn| {
                let now = unix_now();
                let mine = session_registry::table.filter(session_registry::user_id.eq(user_id));
                diesel::delete(mine.filter(session_registry::expires_at.le(now))).execute(conn)?;
                let rows: Vec<(String, String, i64)> = mine
                    .select((session_registry::sid, session_registry::device, session_registry::created_at))
                    .order(session_registry::created_at)
                    .load(conn)?;
                Ok(rows
                    .into_iter()
                    .map(|(key, device, created_at)| Listed {
                        key,
                        created_at,
                        device: serde_json::from_str(&device).ok(),
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

fn device_json(data: &SessionData) -> String {
    serde_json::to_string(&data.device).expect("a device record is plain JSON")
}
