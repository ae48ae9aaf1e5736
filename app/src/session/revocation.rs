//! The state the client-side strategies need after all: which sessions are revoked (`jwt`, and
//! the logged-in sessions of `cookie` and `sticky`), and which refresh token of each `jwt`
//! family may still be used. In Redis when `REDIS_URL` is set, otherwise in the app database.
//! Every request that must be checked asks [`Revocations::is_revoked`]: one round trip (the
//! session's own entry and its user's cutoff), no cache, so a logout on one replica is refused by
//! all of them from the next request on.
use std::time::Duration;

use diesel::{
    OptionalExtension, RunQueryDsl,
    prelude::*,
    sql_types::{BigInt, Text},
};

use std::sync::LazyLock;

use super::{
    RefreshToken, SessionId, StoreError,
    redis_client::{Lua, RedisClient},
    unix_now,
};
use crate::db::{
    Db,
    schema::{jwt_refresh_families, revoked_sessions},
};

// A session's keys carry its storage key as a hash tag (`{…}`): on a Redis Cluster, the script
// and the MULTI block that touch two of them need both in one hash slot. The user's cutoff lives
// in another slot, so there the revocation check's MGET is two round trips, sent in parallel.
const REVOKED_PREFIX: &str = "sessionlab:revoked:";
const FAMILY_PREFIX: &str = "sessionlab:jwt:family:";
const GRACE_PREFIX: &str = "sessionlab:jwt:grace:";
const CUTOFF_PREFIX: &str = "sessionlab:revoked-before:";

/// `<prefix>{<storage key>}`: see the hash-tag note above.
fn tagged(prefix: &str, key: &str) -> String {
    format!("{prefix}{{{key}}}")
}

/// "Every session of this user that started before `not_before` is over, except `exempt`": how
/// log-out-everywhere reaches sessions that no list remembers. Whole seconds, and strictly
/// before: a session that starts in the same second as the cutoff is still listed (its registry
/// row was just written), so the per-session revocations end it if it must end.
#[derive(Debug, PartialEq, Eq)]
struct Cutoff {
    not_before: i64,
    exempt: String,
}

impl Cutoff {
    /// Its row in the app database's `revoked_sessions`, beside the sessions' own (64 hex digits).
    fn row(user_id: i64) -> String {
        format!("user:{user_id}")
    }

    fn ends(&self, key: &str, started: i64) -> bool {
        started < self.not_before && key != self.exempt
    }

    /// Its Redis value, as [`Display`](std::fmt::Display) writes it: `<not_before> <exempt>`.
    fn parse(value: &str) -> Option<Self> {
        let (not_before, exempt) = value.split_once(' ')?;
        Some(Self { not_before: not_before.parse().ok()?, exempt: exempt.to_owned() })
    }
}

impl std::fmt::Display for Cutoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.not_before, self.exempt)
    }
}

/// How long a refresh token that was just rotated away still gets its successor: two tabs, or a
/// retried request, refreshing with the same token at once. RFC 9700 (section 4.14.2) allows
/// this; a replay later than that is treated as theft.
pub const REFRESH_GRACE: Duration = Duration::from_secs(5);

/// What became of a presented refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// It was the family's current token, and now the successor is.
    Rotated,
    /// It was rotated away within [`REFRESH_GRACE`]: here is the refresh token it became.
    Grace(String),
    /// Neither: a used token, presented again.
    Reused,
}

/// Sets the family's current refresh token (KEYS[1]) to ARGV[2] only if it is ARGV[1], and
/// remembers for the grace period (KEYS[2]) which token ARGV[1] became (ARGV[4]). Atomic, so two
/// replicas cannot both rotate the same token. Returns 'rotated', the successor (a JWT) when
/// ARGV[1] was rotated away within the grace period, or '' for a reused token.
static ROTATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
  return 'rotated'
end
return redis.call('GET', KEYS[2]) or ''",
    )
});

pub enum Revocations {
    Redis(RedisClient),
    Database(Db),
}

impl Revocations {
    pub fn describe(&self) -> &'static str {
        match self {
            Revocations::Redis(_) => "Redis",
            Revocations::Database(_) => "the app database",
        }
    }

    /// Whether the session stored under `key` ([`SessionId::storage_key`]), of user `user_id` and
    /// started at `started` (unix seconds), was revoked: by itself, or by its user's cutoff. Both
    /// are read in one round trip.
    pub async fn is_revoked(&self, key: &str, user_id: i64, started: i64) -> Result<bool, StoreError> {
        let (revoked, cutoff) = match self {
            Revocations::Redis(redis) => {
                let mut mget = redis::cmd("MGET");
                mget.arg(tagged(REVOKED_PREFIX, key)).arg(format!("{CUTOFF_PREFIX}{user_id}"));
                let (revoked, cutoff) = redis.run::<(Option<String>, Option<String>)>(&mget).await?;
                (revoked.is_some(), cutoff.as_deref().and_then(Cutoff::parse))
            }
            Revocations::Database(db) => db
                .run({
                    let key = key.to_owned();
                    move |conn| {
                        let rows = revoked_sessions::table
                            .filter(revoked_sessions::sid.eq_any([key.clone(), Cutoff::row(user_id)]))
                            .filter(revoked_sessions::expires_at.gt(unix_now()))
                            .select((revoked_sessions::sid, revoked_sessions::not_before, revoked_sessions::exempt))
                            .load::<(String, Option<i64>, Option<String>)>(conn)?;
                        let revoked = rows.iter().any(|(sid, ..)| *sid == key);
                        let cutoff = rows.into_iter().find_map(|(_, not_before, exempt)| {
                            Some(Cutoff { not_before: not_before?, exempt: exempt.unwrap_or_default() })
                        });
                        Ok((revoked, cutoff))
                    }
                })
                .await
                .map_err(StoreError::unavailable)?,
        };
        Ok(revoked || cutoff.is_some_and(|c| c.ends(key, started)))
    }

    /// Revokes every token of session `sid` for `ttl`, the longest any of them can live, and
    /// ends its refresh family.
    pub async fn revoke(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = key.to_owned();
        let secs = ttl.as_secs().max(1);
        match self {
            Revocations::Redis(redis) => {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("SET")
                    .arg(tagged(REVOKED_PREFIX, &key))
                    .arg(1)
                    .arg("EX")
                    .arg(secs)
                    .ignore()
                    .cmd("DEL")
                    .arg(tagged(FAMILY_PREFIX, &key))
                    .ignore();
                redis.run_pipeline(&tagged(REVOKED_PREFIX, &key), &pipe).await
            }
            Revocations::Database(db) => db
                .run(move |conn| {
                    let now = unix_now();
                    diesel::sql_query(
                        "INSERT INTO revoked_sessions (sid, expires_at) VALUES ($1, $2) \
                         ON CONFLICT (sid) DO UPDATE SET expires_at = excluded.expires_at",
                    )
                    .bind::<Text, _>(&key)
                    .bind::<BigInt, _>(now + secs as i64)
                    .execute(conn)?;
                    diesel::delete(jwt_refresh_families::table.filter(jwt_refresh_families::sid.eq(&key)))
                        .execute(conn)?;
                    // Rows past their expiry are swept by the replicas' upkeep (db/upkeep.rs).
                    Ok(())
                })
                .await
                .map_err(StoreError::unavailable),
        }
    }

    /// Revokes, for `ttl`, every session of user `user_id` that started before now except
    /// `exempt`: those still listed and those no list remembers. A later cutoff replaces it.
    pub async fn revoke_all_but(&self, user_id: i64, exempt: &str, ttl: Duration) -> Result<(), StoreError> {
        let cutoff = Cutoff { not_before: unix_now(), exempt: exempt.to_owned() };
        let secs = ttl.as_secs().max(1);
        match self {
            Revocations::Redis(redis) => {
                let cutoff_key = format!("{CUTOFF_PREFIX}{user_id}");
                let mut set = redis::cmd("SET");
                set.arg(&cutoff_key).arg(cutoff.to_string()).arg("EX").arg(secs);
                redis.write::<()>(&cutoff_key, &set).await
            }
            Revocations::Database(db) => db
                .run(move |conn| {
                    diesel::sql_query(
                        "INSERT INTO revoked_sessions (sid, expires_at, not_before, exempt) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (sid) DO UPDATE SET expires_at = excluded.expires_at, \
                         not_before = excluded.not_before, exempt = excluded.exempt",
                    )
                    .bind::<Text, _>(Cutoff::row(user_id))
                    .bind::<BigInt, _>(cutoff.not_before + secs as i64)
                    .bind::<BigInt, _>(cutoff.not_before)
                    .bind::<Text, _>(&cutoff.exempt)
                    .execute(conn)?;
                    Ok(())
                })
                .await
                .map_err(StoreError::unavailable),
        }
    }

    /// Starts a refresh family whose one usable token is `jti`.
    pub async fn start_family(&self, sid: &SessionId, jti: &str, ttl: Duration) -> Result<(), StoreError> {
        let (key, jti, secs) = (sid.storage_key(), jti.to_owned(), ttl.as_secs().max(1));
        match self {
            Revocations::Redis(redis) => {
                let family = tagged(FAMILY_PREFIX, &key);
                redis.write::<()>(&family, redis::cmd("SET").arg(&family).arg(&jti).arg("EX").arg(secs)).await
            }
            Revocations::Database(db) => db
                .run(move |conn| {
                    diesel::insert_into(jwt_refresh_families::table)
                        .values((
                            jwt_refresh_families::sid.eq(&key),
                            jwt_refresh_families::current_jti.eq(&jti),
                            jwt_refresh_families::expires_at.eq(unix_now() + secs as i64),
                        ))
                        .execute(conn)?;
                    Ok(())
                })
                .await
                .map_err(StoreError::unavailable),
        }
    }

    /// Moves the family from the token `presented` (its `jti`) to `next`, or says why not.
    pub async fn rotate(&self, sid: &SessionId, presented: &str, next: &RefreshToken) -> Result<Rotation, StoreError> {
        let (key, presented, secs) = (sid.storage_key(), presented.to_owned(), next.ttl.as_secs().max(1));
        let (next_jti, successor) = (next.jti.clone(), next.token.clone());
        let grace = REFRESH_GRACE.as_secs();
        match self {
            Revocations::Redis(redis) => {
                let keys = [tagged(FAMILY_PREFIX, &key), format!("{}:{presented}", tagged(GRACE_PREFIX, &key))];
                let args = [presented, next_jti, secs.to_string(), successor, grace.to_string()];
                let answer: String = redis.eval(&ROTATE, &[&keys[0], &keys[1]], &args.map(String::into_bytes)).await?;
                Ok(match answer.as_str() {
                    "rotated" => Rotation::Rotated,
                    "" => Rotation::Reused,
                    _ => Rotation::Grace(answer),
                })
            }
            Revocations::Database(db) => db
                .run(move |conn| {
                    let now = unix_now();
                    let family = jwt_refresh_families::table
                        .filter(jwt_refresh_families::sid.eq(&key))
                        .filter(jwt_refresh_families::expires_at.gt(now));
                    let rows = diesel::update(family.filter(jwt_refresh_families::current_jti.eq(&presented)))
                        .set((
                            jwt_refresh_families::current_jti.eq(&next_jti),
                            jwt_refresh_families::expires_at.eq(now + secs as i64),
                            jwt_refresh_families::previous_jti.eq(&presented),
                            jwt_refresh_families::successor.eq(&successor),
                            jwt_refresh_families::grace_until.eq(now + grace as i64),
                        ))
                        .execute(conn)?;
                    if rows == 1 {
                        return Ok(Rotation::Rotated);
                    }
                    let within_grace = family
                        .filter(jwt_refresh_families::previous_jti.eq(&presented))
                        .filter(jwt_refresh_families::grace_until.gt(now))
                        .select(jwt_refresh_families::successor)
                        .first::<Option<String>>(conn)
                        .optional()?
                        .flatten();
                    Ok(within_grace.map_or(Rotation::Reused, Rotation::Grace))
                })
                .await
                .map_err(StoreError::unavailable),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Revocations::Redis(redis) => redis.ping().await,
            Revocations::Database(db) => {
                db.run(|conn| Ok(crate::db::queries::ping(conn)?)).await.map_err(StoreError::unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cutoff;

    #[test]
    fn a_cutoff_ends_what_started_before_it_except_the_session_that_asked() {
        let cutoff = Cutoff { not_before: 100, exempt: "mine".into() };
        assert!(cutoff.ends("other", 99));
        assert!(!cutoff.ends("mine", 99), "the session that asked goes on");
        assert!(!cutoff.ends("other", 100), "a session from the cutoff's own second is still listed");
        assert!(!cutoff.ends("other", 101), "a log-in after the cutoff");
        assert_eq!(Cutoff::parse(&cutoff.to_string()), Some(cutoff));
        assert_eq!(Cutoff::parse("garbage"), None);
        assert_eq!(Cutoff::parse("x mine"), None);
    }
}
