//! `redis`: the session lives in Redis under `sessionlab:session:<sha256 of the ID>`; the cookie
//! holds only the random ID. Every replica reads the same key, so any replica can serve any
//! request, and a replica crash loses nothing.
//!
//! Costs, counted by the tests with `INFO commandstats`:
//! - a read is exactly one command, `GETEX key EX <idle>`: it fetches the state *and* slides the
//!   idle expiry, so the expiry is extended on every request without a write;
//! - a write is one compare-and-set: `EVALSHA` of a Lua script that `SET`s the new state only if
//!   the stored version is the one read (a new session is `SET … NX`); log out is one `DEL`.
//!   The value is stored as `<version>:<json>`.
//!
//! The connections (a pool, the retry after a dead one, Sentinel, `WAIT`) are machinery, in
//! [`redis_client`](super::redis_client): this file is only what a session store does.
//!
//! Keys share one prefix so operators can `SCAN MATCH sessionlab:session:*` (never `KEYS`).
//!
//! "Your devices": each user has a set `sessionlab:user:<id>:sessions` of their sessions' keys,
//! added to at log-in (one more command, only then) and kept for the absolute lifetime, which no
//! member outlives. Listing is `SMEMBERS` + `MGET` (members whose session expired are removed on
//! the way); revoking checks that the session is that user's (`SISMEMBER`), deletes it (`DEL`)
//! and removes it from the set (`SREM`). A revoked session is simply gone: the next read finds nothing, with no extra
//! check on the request path.
//!
//! # Limitations
//! - Redis restarted without persistence forgets every session: users are logged out, carts
//!   emptied (the app answers normally, with logged-out pages). With AOF on, they survive.
//! - Redis down means no sessions at all: pages answer 503 until it is back.
//! - One more network hop per request, and one more thing to run, secure and monitor.
//! - Past one server (`REDIS_URL=redis-sentinel://…`), Redis replicates asynchronously: when the
//!   sentinels promote a replica, writes the old primary acknowledged but had not yet passed on
//!   are gone. `REDIS_WAIT_REPLICAS=1` closes that window at the price of a round trip to a
//!   replica on every write; `docs/strategies/redis.md` has both measured.
use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;

use super::{
    Backend, Describe, Loaded, Saved, SessionData, SessionId, SessionStore, StoreError, UserIndex,
    device::Listed,
    redis_client::{Lua, RedisClient},
};

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: every replica reads your session from Redis.",
    store_restarted: "With its append-only file on (the lab and compose, by default) a Redis restart loses nothing. Without persistence (sessionlab lab --redis-aof false) it forgets every session: everyone is logged out. While Redis is down, pages answer 503.",
    not_found: "Every replica asks the same Redis, so a session no replica finds has expired, was logged out (here or from another device), or was lost when a Redis without persistence restarted.",
};

pub const KEY_PREFIX: &str = "sessionlab:session:";
const USER_PREFIX: &str = "sessionlab:user:";

/// Stores ARGV[2] (with ARGV[3] seconds to live) only if the stored value's version prefix is
/// ARGV[1]. One atomic step on the server: `WATCH`/`MULTI` would need a connection of its own,
/// and ours are multiplexed between requests.
static COMPARE_AND_SET: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^(%d+):') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0",
    )
});

/// `"<version>:<json>"`, the stored form, into its parts.
fn split_version(value: &[u8]) -> Option<(u64, &[u8])> {
    let colon = value.iter().position(|b| *b == b':')?;
    let version = std::str::from_utf8(&value[..colon]).ok()?.parse().ok()?;
    Some((version, &value[colon + 1..]))
}

pub struct RedisStore {
    redis: RedisClient,
    ttl: Duration,
    /// The absolute lifetime: how long a user's session set is kept after a log-in.
    lifetime: Duration,
}

impl RedisStore {
    pub fn new(redis: RedisClient, ttl: Duration, lifetime: Duration) -> Self {
        Self { redis, ttl, lifetime }
    }

    fn key(id: &SessionId) -> String {
        format!("{KEY_PREFIX}{}", id.storage_key())
    }

    fn user_key(user_id: i64) -> String {
        format!("{USER_PREFIX}{user_id}:sessions")
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn backend(&self) -> Backend {
        Backend::Redis
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(None);
        };
        let mut getex = redis::cmd("GETEX");
        getex.arg(Self::key(&id)).arg("EX").arg(self.ttl.as_secs());
        let Some(value) = self.redis.run::<Option<Vec<u8>>>(&getex).await? else {
            return Ok(None);
        };
        let Some((version, json)) = split_version(&value) else { return Ok(None) };
        Ok(SessionData::from_json(json).map(|data| Loaded {
            id,
            data,
            state_bytes: json.len(),
            ttl: self.ttl,
            refresh_due: false,
            version: Some(version),
        }))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        let json = data.to_json();
        let version = expected.map_or(1, |v| v + 1);
        let mut value = format!("{version}:").into_bytes();
        value.extend_from_slice(&json);
        let written = match expected {
            // A new session: SET … NX never overwrites one that exists.
            None => {
                let key = Self::key(id);
                let mut set = redis::cmd("SET");
                set.arg(&key).arg(&value).arg("EX").arg(self.ttl.as_secs()).arg("NX");
                self.redis.write::<Option<String>>(&key, &set).await?.is_some()
            }
            Some(expected) => {
                let args = [expected.to_string().into_bytes(), value, self.ttl.as_secs().to_string().into_bytes()];
                self.redis.eval::<i64>(&COMPARE_AND_SET, &[&Self::key(id)], &args).await? == 1
            }
        };
        if !written {
            return Err(StoreError::Conflict);
        }
        Ok(Saved { cookie: id.expose().to_owned(), state_bytes: json.len(), ttl: self.ttl, version: Some(version) })
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = Self::key(id);
        self.redis.write::<()>(&key, redis::cmd("DEL").arg(&key)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

/// A set per user of the storage keys of their sessions. Listing reads the sessions themselves,
/// which hold the device records, and drops the keys that expired.
#[async_trait]
impl UserIndex for RedisStore {
    async fn add(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        let Some(user) = &data.user else { return Ok(()) };
        let set = Self::user_key(user.id);
        let mut pipe = redis::pipe();
        pipe.cmd("SADD").arg(&set).arg(id.storage_key()).ignore();
        pipe.cmd("EXPIRE").arg(&set).arg(self.lifetime.as_secs().max(1)).ignore();
        self.redis.run_pipeline(&set, &pipe).await
    }

    async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        let set = Self::user_key(user_id);
        let members: Vec<String> = self.redis.run(redis::cmd("SMEMBERS").arg(&set)).await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = members.iter().map(|m| format!("{KEY_PREFIX}{m}")).collect();
        let values: Vec<Option<Vec<u8>>> = self.redis.run(redis::cmd("MGET").arg(&keys)).await?;
        let (mut live, mut gone) = (Vec::new(), Vec::new());
        for (member, value) in members.into_iter().zip(values) {
            let data = value.as_deref().and_then(split_version).and_then(|(_, json)| SessionData::from_json(json));
            match data {
                Some(data) => live.push(Listed::new(member, data)),
                None => gone.push(member),
            }
        }
        if !gone.is_empty() {
            self.redis.run::<()>(redis::cmd("SREM").arg(&set).arg(&gone)).await?;
        }
        live.sort_by_key(|l| l.created_at);
        Ok(live)
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        // Three commands, not one script: on a Redis Cluster the user's set and the session live
        // in different hash slots. Only a member of this user's set is deleted, so no user can
        // end another's session, and each step is safe to repeat after a failure.
        let set = Self::user_key(user_id);
        if !self.redis.run::<bool>(redis::cmd("SISMEMBER").arg(&set).arg(key)).await? {
            return Ok(false);
        }
        let session = format!("{KEY_PREFIX}{key}");
        self.redis.write::<()>(&session, redis::cmd("DEL").arg(&session)).await?;
        self.redis.write::<()>(&set, redis::cmd("SREM").arg(&set).arg(key)).await?;
        Ok(true)
    }
}

impl Describe for RedisStore {
    fn location(&self, id: &SessionId) -> String {
        format!("Redis key {}", Self::key(id))
    }
}
