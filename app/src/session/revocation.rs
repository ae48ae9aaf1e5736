//! The state the client-side strategies need after all: which sessions are revoked (`jwt`, and
//! the logged-in sessions of `cookie` and `sticky`), and which refresh token of each `jwt`
//! family may still be used. In Redis when `REDIS_URL` is set, otherwise in the app database.
//! Every request that must be checked asks [`Revocations::is_revoked`]: one round trip, no
//! cache, so a logout on one replica is refused by all of them from the next request on.
use std::time::Duration;

use diesel::{
    OptionalExtension, RunQueryDsl,
    prelude::*,
    sql_types::{BigInt, Text},
};

use std::sync::LazyLock;

use super::{
    RefreshToken, SessionId, StoreError,
    redis::{Lua, RedisClient},
    unix_now,
};
use crate::db::{
    Db,
    schema::{jwt_refresh_families, revoked_sessions},
};

const REVOKED_PREFIX: &str = "sessionlab:revoked:";
const FAMILY_PREFIX: &str = "sessionlab:jwt:family:";
const GRACE_PREFIX: &str = "sessionlab:jwt:grace:";

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

    /// Whether the session stored under `key` ([`SessionId::storage_key`]) was revoked.
    pub async fn is_revoked(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        match self {
            Revocations::Redis(redis) => {
                redis.run::<bool>(redis::cmd("EXISTS").arg(format!("{REVOKED_PREFIX}{key}"))).await
            }
            Revocations::Database(db) => db
                .run(move |conn| {
                    let found = revoked_sessions::table
                        .filter(revoked_sessions::sid.eq(&key))
                        .filter(revoked_sessions::expires_at.gt(unix_now()))
                        .select(revoked_sessions::sid)
                        .first::<String>(conn)
                        .optional()?;
                    Ok(found.is_some())
                })
                .await
                .map_err(StoreError::unavailable),
        }
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
                    .arg(format!("{REVOKED_PREFIX}{key}"))
                    .arg(1)
                    .arg("EX")
                    .arg(secs)
                    .ignore()
                    .cmd("DEL")
                    .arg(format!("{FAMILY_PREFIX}{key}"))
                    .ignore();
                redis.run_pipeline(&pipe).await
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

    /// Starts a refresh family whose one usable token is `jti`.
    pub async fn start_family(&self, sid: &SessionId, jti: &str, ttl: Duration) -> Result<(), StoreError> {
        let (key, jti, secs) = (sid.storage_key(), jti.to_owned(), ttl.as_secs().max(1));
        match self {
            Revocations::Redis(redis) => {
                redis
                    .run::<()>(redis::cmd("SET").arg(format!("{FAMILY_PREFIX}{key}")).arg(&jti).arg("EX").arg(secs))
                    .await
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
                let keys = [format!("{FAMILY_PREFIX}{key}"), format!("{GRACE_PREFIX}{key}:{presented}")];
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
            Revocations::Redis(redis) => redis.run::<String>(&redis::cmd("PING")).await.map(drop),
            Revocations::Database(db) => {
                db.run(|conn| Ok(crate::db::queries::ping(conn)?)).await.map_err(StoreError::unavailable)
            }
        }
    }
}
