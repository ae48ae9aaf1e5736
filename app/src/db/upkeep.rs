//! Rows of the app database that expire are deleted when they expire, not only when somebody
//! happens to look at them: without this, every address and username that ever failed a log-in
//! would keep a throttle row, and every session that simply timed out a "your devices" row.
//!
//! Every replica runs the loop; in each round the one that wins a try-lock does the work, so the
//! deletes never run twice at once.
use std::time::Duration;

use diesel::{RunQueryDsl, prelude::*};

use super::{
    Db, locks,
    schema::{jwt_refresh_families, login_throttle, revoked_sessions, session_registry},
};
use crate::session::unix_now;

/// Deletes expired rows every `interval` while the process runs.
pub fn spawn(db: Db, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            match sweep(&db).await {
                Ok(Some(n)) if n > 0 => {
                    tracing::info!(deleted = n, "swept expired throttle, device and revocation rows")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "app database sweep failed"),
            }
        }
    });
}

/// One round: the number of rows deleted, or `None` if another replica holds the round's lock.
pub async fn sweep(db: &Db) -> anyhow::Result<Option<usize>> {
    let now = unix_now();
    db.run(move |conn| {
        locks::one_at_a_time(conn, &locks::UPKEEP, |conn| {
            Ok(diesel::delete(login_throttle::table.filter(login_throttle::window_ends.le(now))).execute(conn)?
                + diesel::delete(session_registry::table.filter(session_registry::expires_at.le(now))).execute(conn)?
                + diesel::delete(revoked_sessions::table.filter(revoked_sessions::expires_at.le(now))).execute(conn)?
                + diesel::delete(jwt_refresh_families::table.filter(jwt_refresh_families::expires_at.le(now)))
                    .execute(conn)?)
        })
    })
    .await
}
