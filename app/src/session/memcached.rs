//! `memcached`: the session lives in memcached under `sessionlab:session:<sha256 of the ID>`; the
//! cookie holds only the random ID. Any replica can serve any request.
//!
//! Client: async-memcached (maintained, tokio) over memcached's meta protocol, which does in one
//! command what the classic protocol needs two for:
//! - a read is one `mg <key> v c T<idle>`: value, CAS token, and the idle expiry slid forward;
//! - a new session is one `ms <key> ME T<idle>` (add: never overwrites), an update one
//!   `ms <key> C<cas> T<idle>`: compare-and-set against the token read with the state, so a stale
//!   write is refused (`EX`) instead of silently winning;
//! - log out is one `md <key>`.
//!
//! Connections come from a deadpool pool per server with the same free health check as the Redis
//! store: a connection that failed is dropped, never pinged. With several servers
//! (`MEMCACHED_URL=host1:11211,host2:11211`) each key goes to one server by rendezvous hashing,
//! so adding a server moves only the keys it takes over.
//!
//! Expiry: memcached reads an expiration over 30 days as an absolute Unix time. [`exptime`]
//! converts long idle timeouts to absolute times, so none is ever misread as a date in 1970.
//!
//! "Your devices": memcached has no secondary index, so each logged-in session is also
//! registered in the app database ([`Registry`]) at log-in. Listing reads the user's rows, then
//! each session from memcached (rows whose session is gone are dropped); revoking deletes the
//! row, then the key — the next read on any replica finds nothing. The request path is unchanged.
//!
//! # Limitations
//! - memcached is a cache: a restart, or memory pressure (LRU eviction), forgets sessions. Users
//!   are logged out and carts emptied; nothing is written to disk, by design.
//! - memcached down means no sessions: 503 until it is back.
//! - It cannot list a user's sessions by itself: "your devices" needs the index kept elsewhere.
use std::time::Duration;

use async_memcached::{Client, Error as McError, MetaProtocol, MetaValue, Status};
use async_trait::async_trait;
use deadpool::managed::Pool;
use sha2::{Digest, Sha256};

use super::{
    Backend, Describe, Loaded, Saved, SessionData, SessionId, SessionStore, StoreError, UserIndex,
    device::Listed,
    pool::{self, Connector, Manager, TIMEOUT},
    registry::Registry,
    unix_now,
};

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: every replica reads your session from memcached.",
    store_restarted: "memcached is a cache and keeps nothing on disk: a restart logs everyone out and empties every cart. While it is down, pages answer 503.",
    not_found: "Every replica asks the same memcached, so a session no replica finds has expired, was logged out, was evicted to make room (memcached is a cache), or was lost when memcached restarted.",
};

pub const KEY_PREFIX: &str = "sessionlab:session:";
/// memcached's limit: larger relative expirations are read as absolute Unix times.
const RELATIVE_EXPTIME_MAX: u64 = 60 * 60 * 24 * 30;

pub struct MemcachedStore {
    servers: Vec<Server>,
    ttl: Duration,
    /// Absent only for a store used on its own (unit tests): then listing a user's sessions fails.
    registry: Option<Registry>,
}

struct Server {
    addr: String,
    pool: Pool<Manager<MemcachedConnector>>,
}

/// The `exptime` to send for an idle timeout of `ttl`.
pub fn exptime(ttl: Duration, now: i64) -> u64 {
    let secs = ttl.as_secs().max(1);
    if secs <= RELATIVE_EXPTIME_MAX { secs } else { now as u64 + secs }
}

impl MemcachedStore {
    /// `urls`: one or more `host:port` (or `tcp://host:port`), comma-separated.
    pub fn connect(urls: &str, ttl: Duration) -> anyhow::Result<Self> {
        let servers = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|url| {
                let addr =
                    url.strip_prefix("memcache://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(url).to_owned();
                let pool = pool::build(MemcachedConnector { dsn: format!("tcp://{addr}") })?;
                Ok(Server { addr, pool })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!servers.is_empty(), "MEMCACHED_URL names no server");
        Ok(Self { servers, ttl, registry: None })
    }

    pub fn with_registry(self, registry: Registry) -> Self {
        Self { registry: Some(registry), ..self }
    }

    fn registry(&self) -> Result<&Registry, StoreError> {
        self.registry.as_ref().ok_or_else(|| StoreError::unavailable(anyhow::anyhow!("no session registry configured")))
    }

    fn key(id: &SessionId) -> String {
        format!("{KEY_PREFIX}{}", id.storage_key())
    }

    /// Rendezvous hashing: the server with the highest hash of (server, key) owns the key.
    fn server_for(&self, key: &str) -> &Server {
        self.servers
            .iter()
            .max_by_key(|s| {
                let digest = Sha256::new().chain_update(s.addr.as_bytes()).chain_update(key.as_bytes()).finalize();
                u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
            })
            .expect("at least one server")
    }

    fn ttl_flag(&self) -> String {
        format!("T{}", exptime(self.ttl, unix_now()))
    }

    /// Runs `op` on a pooled connection of the key's server. A connection that failed is
    /// dropped, with the server's idle ones (after a memcached restart they are all dead), and
    /// `op` is tried once more on a fresh connection: the first request after a restart must not
    /// be a 503. That is safe: reads and deletes are idempotent, and a repeated compare-and-set
    /// write is refused rather than applied twice.
    async fn run(&self, key: &str, op: Op<'_>) -> Result<Result<Option<MetaValue>, Status>, StoreError> {
        let server = self.server_for(key);
        match Self::try_once(server, key, &op).await {
            Err(_) => {
                server.pool.retain(|_, _| false);
                Self::try_once(server, key, &op).await
            }
            done => done,
        }
    }

    async fn try_once(
        server: &Server,
        key: &str,
        op: &Op<'_>,
    ) -> Result<Result<Option<MetaValue>, Status>, StoreError> {
        let mut conn = server.pool.get().await.map_err(StoreError::unavailable)?;
        let client = &mut conn.conn;
        let sent = match op {
            Op::Get(flags) => tokio::time::timeout(TIMEOUT, client.meta_get(key, false, None, Some(flags))).await,
            Op::Set(value, flags) => {
                tokio::time::timeout(TIMEOUT, client.meta_set(key, *value, false, None, Some(flags))).await
            }
            Op::Delete => tokio::time::timeout(TIMEOUT, client.meta_delete(key, false, None, None)).await,
        };
        match sent {
            // With flags asked for, a refusal (EX, NS, NF) comes back as a value with a status.
            Ok(Ok(Some(MetaValue {
                status: Some(status @ (Status::Exists | Status::NotStored | Status::NotFound)),
                ..
            }))) => Ok(Err(status)),
            Ok(Ok(value)) => Ok(Ok(value)),
            Ok(Err(McError::Protocol(status))) if !matches!(status, Status::Error(_)) => Ok(Err(status)),
            Ok(Err(err)) => {
                conn.broken = true;
                Err(StoreError::unavailable(anyhow::anyhow!("memcached {}: {err:?}", server.addr)))
            }
            Err(_) => {
                conn.broken = true;
                Err(StoreError::unavailable(anyhow::anyhow!("memcached {} timed out", server.addr)))
            }
        }
    }
}

/// The three meta commands this store sends.
enum Op<'a> {
    Get(&'a [&'a str]),
    Set(&'a [u8], &'a [&'a str]),
    Delete,
}

#[async_trait]
impl SessionStore for MemcachedStore {
    fn backend(&self) -> Backend {
        Backend::Memcached
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(id) = SessionId::parse(cookie) else { return Ok(None) };
        let key = Self::key(&id);
        let ttl = self.ttl_flag();
        let found = self.run(&key, Op::Get(&["v", "c", &ttl])).await?;
        let Ok(Some(value)) = found else { return Ok(None) };
        let (Some(json), Some(cas)) = (value.data, value.cas) else { return Ok(None) };
        Ok(SessionData::from_json(&json).map(|data| Loaded {
            id,
            data,
            state_bytes: json.len(),
            ttl: self.ttl,
            refresh_due: false,
            version: Some(cas),
        }))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        let key = Self::key(id);
        let json = data.to_json();
        let ttl = self.ttl_flag();
        let cas_flag = expected.map(|cas| format!("C{cas}"));
        let flags: Vec<&str> = match &cas_flag {
            Some(cas) => vec![cas, &ttl, "c"],
            None => vec!["ME", &ttl, "c"],
        };
        let stored = self.run(&key, Op::Set(&json, &flags)).await?;
        match stored {
            Ok(value) => Ok(Saved {
                cookie: id.expose().to_owned(),
                state_bytes: json.len(),
                ttl: self.ttl,
                version: value.and_then(|v| v.cas),
            }),
            // EX: the CAS token moved on; NF: the session expired or was deleted meanwhile;
            // NS: a new ID collided (practically impossible with 256 random bits).
            Err(Status::Exists | Status::NotFound | Status::NotStored) => Err(StoreError::Conflict),
            Err(other) => Err(StoreError::unavailable(anyhow::anyhow!("memcached refused the write: {other:?}"))),
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = Self::key(id);
        match self.run(&key, Op::Delete).await? {
            Ok(_) | Err(Status::NotFound) => Ok(()),
            Err(other) => Err(StoreError::unavailable(anyhow::anyhow!("memcached refused the delete: {other:?}"))),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        for server in &self.servers {
            let mut conn = server.pool.get().await.map_err(StoreError::unavailable)?;
            if let Err(err) = conn.conn.version().await {
                conn.broken = true;
                return Err(StoreError::unavailable(anyhow::anyhow!("memcached {}: {err:?}", server.addr)));
            }
        }
        Ok(())
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

/// memcached cannot list keys, so a registry in the app database remembers which sessions each
/// user logged in; memcached still holds the sessions themselves.
#[async_trait]
impl UserIndex for MemcachedStore {
    async fn add(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        self.registry()?.register(&id.storage_key(), data).await
    }

    /// The registry says which sessions the user had; memcached says which are still alive and
    /// holds their device records. Sessions memcached forgot are unregistered on the way.
    async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        let registry = self.registry()?;
        let mut live = Vec::new();
        for entry in registry.list(user_id).await? {
            let key = format!("{KEY_PREFIX}{}", entry.key);
            let data = match self.run(&key, Op::Get(&["v"])).await? {
                Ok(Some(MetaValue { data: Some(json), .. })) => SessionData::from_json(&json),
                _ => None,
            };
            match data {
                Some(data) => live.push(Listed::new(entry.key, data)),
                None => drop(registry.remove(user_id, &entry.key).await?),
            }
        }
        Ok(live)
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        if !self.registry()?.remove(user_id, key).await? {
            return Ok(false);
        }
        match self.run(&format!("{KEY_PREFIX}{key}"), Op::Delete).await? {
            Ok(_) | Err(Status::NotFound) => Ok(true),
            Err(other) => Err(StoreError::unavailable(anyhow::anyhow!("memcached refused the delete: {other:?}"))),
        }
    }
}

impl Describe for MemcachedStore {
    fn location(&self, id: &SessionId) -> String {
        let key = Self::key(id);
        format!("memcached key {key} on {}", self.server_for(&key).addr)
    }
}

pub struct MemcachedConnector {
    dsn: String,
}

impl Connector for MemcachedConnector {
    type Conn = Client;
    type Error = McError;

    async fn connect(&self) -> Result<Client, McError> {
        Client::new(&self.dsn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeouts_past_thirty_days_are_sent_as_absolute_times() {
        let now = 1_800_000_000;
        assert_eq!(exptime(Duration::from_secs(1800), now), 1800);
        assert_eq!(exptime(Duration::from_secs(RELATIVE_EXPTIME_MAX), now), RELATIVE_EXPTIME_MAX);
        let long = Duration::from_secs(RELATIVE_EXPTIME_MAX + 1);
        assert_eq!(exptime(long, now), now as u64 + RELATIVE_EXPTIME_MAX + 1);
        assert_eq!(exptime(Duration::ZERO, now), 1, "0 would mean 'never expires'");
    }

    #[test]
    fn keys_spread_over_servers_and_stay_put() {
        let store = MemcachedStore::connect("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", Duration::from_secs(60)).unwrap();
        let owners: std::collections::BTreeSet<_> =
            (0..60).map(|n| store.server_for(&format!("k{n}")).addr.clone()).collect();
        assert_eq!(owners.len(), 3);
        assert_eq!(store.server_for("k1").addr, store.server_for("k1").addr);
    }
}
