//! Login and sign-up throttling, shared by every replica through the app database (whatever the
//! session strategy), so spreading attempts over replicas gains nothing.
//!
//! Log-ins are counted three ways within [`WINDOW`], and a full count answers 429 with
//! `Retry-After` until its window ends (the lockout lasts at most the window, then starts over):
//!
//! - [`MAX_PER_USER_AND_ADDRESS`] failures for one username from one address. This is the limit a
//!   guesser meets, and it locks out only that address: someone who types a user's name with
//!   wrong passwords cannot lock the user out everywhere.
//! - [`MAX_PER_USER`], a ceiling for one username from all addresses together, for a guesser who
//!   spreads over many addresses. Ten times the first: reaching it takes ten addresses.
//! - [`MAX_PER_ADDRESS`] failures from one address over every username, for one address trying a
//!   password on many accounts. High, because a whole classroom or office can share one address.
//!
//! Addresses are the client's as [`crate::client_addr`] establishes it (`TRUSTED_PROXIES`), IPv6
//! ones by their /64.
//!
//! Each attempt **reserves** its place in all three counts, in one transaction, *before* the
//! password hash is checked: a check-then-record throttle lets a wave of parallel guesses all
//! pass the check before the first failure is recorded. A success gives the places back (and
//! forgets the failures of that username from that address); a wrong password keeps them, and
//! that is the recorded failure. So at most [`MAX_PER_USER_AND_ADDRESS`] password checks run per
//! username, address and window, however many arrive at once, and a locked-out guesser costs one
//! query, not an argon2 run.
//!
//! Sign-ups: at most `SIGN_UPS_PER_ADDRESS` per address and window, each of which costs a hash.
//!
//! The dashboard's admin token: at most [`MAX_TOKEN_GUESSES`] wrong ones per address and window.
//! The tokens are random and long, so this is not what keeps them safe; it keeps a script from
//! trying forever.
use std::time::Duration;

use diesel::{
    QueryDsl, RunQueryDsl,
    prelude::*,
    result::Error as DieselError,
    sql_types::{BigInt, Text},
};

use crate::{
    client_addr::throttle_key,
    db::{Db, DbConnection, schema::login_throttle},
    error::AppError,
    session::unix_now,
};

pub const MAX_PER_USER_AND_ADDRESS: i64 = 5;
pub const MAX_PER_USER: i64 = 50;
pub const MAX_PER_ADDRESS: i64 = 100;
pub const MAX_TOKEN_GUESSES: i64 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct Throttle {
    db: Db,
    sign_ups_per_address: i64,
}

/// A log-in attempt that holds a place in each of its counts.
#[must_use = "an attempt is settled by succeeded(), failed() or abandoned()"]
pub struct Attempt {
    pair: String,
    user: String,
    ip: String,
}

impl Attempt {
    fn new(username: &str, ip: &str) -> Self {
        let address = throttle_key(ip);
        Self {
            pair: format!("pair:{username}@{address}"),
            user: format!("user:{username}"),
            ip: format!("ip:{address}"),
        }
    }

    fn limits(&self) -> [(String, i64); 3] {
        [
            (self.pair.clone(), MAX_PER_USER_AND_ADDRESS),
            (self.user.clone(), MAX_PER_USER),
            (self.ip.clone(), MAX_PER_ADDRESS),
        ]
    }
}

/// Takes a place in `key`'s count unless it is full: `false` when the count is at `max` within
/// its window. (An expired window starts over at 1.) One statement, so concurrent callers cannot
/// both take the last place.
fn reserve(conn: &mut DbConnection, key: &str, max: i64, now: i64) -> Result<bool, DieselError> {
    let changed = diesel::sql_query(
        "INSERT INTO login_throttle (key, failures, window_ends) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_ends <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
           window_ends = CASE WHEN login_throttle.window_ends <= $3 THEN $2 ELSE login_throttle.window_ends END \
         WHERE login_throttle.window_ends <= $3 OR login_throttle.failures < $4",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(now + WINDOW.as_secs() as i64)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(max)
    .execute(conn)?;
    Ok(changed == 1)
}

/// Gives a place back.
fn release(conn: &mut DbConnection, key: &str) -> Result<(), DieselError> {
    diesel::sql_query("UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0")
        .bind::<Text, _>(key)
        .execute(conn)?;
    Ok(())
}

impl Throttle {
    pub fn new(db: Db, sign_ups_per_address: u32) -> Self {
        Self { db, sign_ups_per_address: i64::from(sign_ups_per_address) }
    }

    /// Reserves a log-in attempt for `username` from `ip`, or `Err(TooManyAttempts)` while any
    /// of its counts is full.
    pub async fn attempt(&self, username: &str, ip: &str) -> Result<Attempt, AppError> {
        let attempt = Attempt::new(username, ip);
        let limits = attempt.limits();
        let reserved = self
            .db
            .run(move |conn| {
                let now = unix_now();
                let taken = conn.transaction(|conn| {
                    for (key, max) in &limits {
                        if !reserve(conn, key, *max, now)? {
                            // Undoes the places this attempt already took.
                            return Err(DieselError::RollbackTransaction);
                        }
                    }
                    Ok(())
                });
                match taken {
                    Ok(()) => Ok(true),
                    Err(DieselError::RollbackTransaction) => Ok(false),
                    Err(err) => Err(err.into()),
                }
            })
            .await?;
        if reserved {
            Ok(attempt)
        } else {
            let retry_after = self.retry_after(&attempt.limits()).await?;
            Err(AppError::TooManyAttempts { retry_after })
        }
    }

    /// The password was right: the username's failures from this address are forgotten, and
    /// the other counts get their places back (a success is not a failure). The ceiling for the
    /// username keeps the others' failures: a log-in does not reset a guesser's count elsewhere.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), AppError> {
        self.db
            .run(move |conn| {
                diesel::delete(login_throttle::table.filter(login_throttle::key.eq(&attempt.pair))).execute(conn)?;
                release(conn, &attempt.user)?;
                release(conn, &attempt.ip)?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// The password was wrong: the reservation stays, as the recorded failure.
    pub fn failed(&self, attempt: Attempt) {
        drop(attempt);
    }

    /// The attempt ended before the password was checked (the server was busy, the database
    /// failed): both places are given back.
    pub async fn abandoned(&self, attempt: Attempt) -> Result<(), AppError> {
        self.db
            .run(move |conn| {
                release(conn, &attempt.pair)?;
                release(conn, &attempt.user)?;
                release(conn, &attempt.ip)?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Counts a sign-up from `ip`, or `Err(TooManySignUps)` when the address had its share.
    pub async fn sign_up(&self, ip: &str) -> Result<(), AppError> {
        let (key, max) = (format!("signup:{}", throttle_key(ip)), self.sign_ups_per_address);
        let counted = {
            let key = key.clone();
            self.db.run(move |conn| Ok(reserve(conn, &key, max, unix_now())?)).await?
        };
        if counted {
            Ok(())
        } else {
            Err(AppError::TooManySignUps { retry_after: self.retry_after(&[(key, max)]).await? })
        }
    }

    /// Runs `check` (does the admin token match?) unless `ip` has guessed wrong too often; a
    /// wrong token counts, a right one gives its place back.
    pub async fn admin_token(&self, ip: &str, check: impl FnOnce() -> bool) -> Result<bool, AppError> {
        let key = format!("token:{}", throttle_key(ip));
        let reserved = {
            let key = key.clone();
            self.db.run(move |conn| Ok(reserve(conn, &key, MAX_TOKEN_GUESSES, unix_now())?)).await?
        };
        if !reserved {
            let retry_after = self.retry_after(&[(key, MAX_TOKEN_GUESSES)]).await?;
            return Err(AppError::TooManyTokenGuesses { retry_after });
        }
        let right = check();
        if right {
            self.db.run(move |conn| Ok(release(conn, &key)?)).await?;
        }
        Ok(right)
    }

    /// Seconds until the first of the full counts among `limits` starts over.
    async fn retry_after(&self, limits: &[(String, i64)]) -> Result<u64, AppError> {
        let limits = limits.to_vec();
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
        let ends = rows
            .iter()
            .filter(|(key, failures, _)| limits.iter().any(|(k, max)| k == key && failures >= max))
            .map(|(_, _, ends)| *ends)
            .max()
            .unwrap_or_else(unix_now);
        Ok((ends - unix_now()).max(1) as u64)
    }
}
