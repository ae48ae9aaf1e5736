//! Login throttling: after [`MAX_PER_USER`] failed log-ins for one username, or [`MAX_PER_IP`]
//! from one address, within [`WINDOW`], further attempts get 429 with `Retry-After` until the
//! window ends. The counts live in the app database, which every replica shares whatever the
//! session strategy, so spreading attempts over replicas gains nothing. The check runs before the
//! password hash is computed: a locked-out guesser costs one query, not an argon2 run.
use std::time::Duration;

use diesel::{
    QueryDsl, RunQueryDsl,
    prelude::*,
    sql_types::{BigInt, Text},
};

use crate::{
    db::{Db, schema::login_throttle},
    error::AppError,
    session::unix_now,
};

pub const MAX_PER_USER: i64 = 5;
pub const MAX_PER_IP: i64 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct Throttle {
    db: Db,
}

fn keys(username: &str, ip: &str) -> [(String, i64); 2] {
    [(format!("user:{username}"), MAX_PER_USER), (format!("ip:{ip}"), MAX_PER_IP)]
}

impl Throttle {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// `Err(TooManyAttempts)` while either count is at its limit.
    pub async fn check(&self, username: &str, ip: &str) -> Result<(), AppError> {
        let limits = keys(username, ip);
        let names: Vec<String> = limits.iter().map(|(k, _)| k.clone()).collect();
        let rows: Vec<(String, i64, i64)> = self
            .db
            .run(move |conn| {
                Ok(login_throttle::table
                    .filter(login_throttle::key.eq_any(&names))
                    .filter(login_throttle::window_ends.gt(unix_now()))
                    .select((login_throttle::key, login_throttle::failures, login_throttle::window_ends))
                    .load(conn)?)
            })
            .await?;
        let blocked_until = rows
            .iter()
            .filter(|(key, failures, _)| limits.iter().any(|(k, max)| k == key && failures >= max))
            .map(|(_, _, ends)| *ends)
            .max();
        match blocked_until {
            Some(ends) => Err(AppError::TooManyAttempts { retry_after: (ends - unix_now()).max(1) as u64 }),
            None => Ok(()),
        }
    }

    pub async fn record_failure(&self, username: &str, ip: &str) -> Result<(), AppError> {
        let keys = keys(username, ip);
        self.db
            .run(move |conn| {
                let now = unix_now();
                for (key, _) in &keys {
                    diesel::sql_query(
                        "INSERT INTO login_throttle (key, failures, window_ends) VALUES ($1, 1, $2) \
                         ON CONFLICT (key) DO UPDATE SET \
                           failures = CASE WHEN login_throttle.window_ends <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
                           window_ends = CASE WHEN login_throttle.window_ends <= $3 THEN $2 ELSE login_throttle.window_ends END",
                    )
                    .bind::<Text, _>(key)
                    .bind::<BigInt, _>(now + WINDOW.as_secs() as i64)
                    .bind::<BigInt, _>(now)
                    .execute(conn)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// A successful log-in forgets the username's failures (not the address's).
    pub async fn clear(&self, username: &str) -> Result<(), AppError> {
        let key = format!("user:{username}");
        self.db
            .run(move |conn| {
                Ok(diesel::delete(login_throttle::table.filter(login_throttle::key.eq(&key))).execute(conn)?)
            })
            .await?;
        Ok(())
    }
}
