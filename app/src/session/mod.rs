//! The session story, in one place.
//!
//! - [`SessionStore`] (in `store.rs`) is the one abstraction: load the state a cookie points to,
//!   save state and get the cookie that points to it, delete, ping. It is object-safe so the
//!   backend is picked at run time from `SESSION_BACKEND`. What only some strategies have is a
//!   trait of its own that a store hands out: [`UserIndex`] ("your devices") and
//!   [`RefreshTokens`] (`jwt`); [`Describe`] is what the inspector shows.
//! - One file per strategy, each starting with how it works and its **Limitations**: [`memory`]
//!   (the problem: nothing shared), [`sticky`], [`cookie`], [`redis`], [`memcached`], [`sql`]
//!   (postgres and mysql), [`jwt`].
//! - [`actix_stock`]: the stock actix-session + actix-identity stack (`actix-redis`,
//!   `actix-cookie`), behind the same [`Session`] handle, as the baseline the others are measured
//!   against.
//! - [`Session`] (in `handle.rs`) is what handlers use: typed reads, and writes that reach the
//!   store *inside* the handler, so a full cookie or a dead store becomes a proper 413/503 instead
//!   of a response that already said "200 OK".
//! - [`middleware`] loads the session before the handler and sets or clears the cookie after it.
//!
//! Why a layer of its own rather than actix-session's: see [`actix_stock`]'s limitations, each
//! measured side by side in `docs/strategies/actix-session.md`.
pub mod actix_stock;
mod data;
pub mod device;
mod handle;
mod id;
pub mod idempotency;
pub mod middleware;
mod store;

pub mod cookie;
pub mod jwt;
pub mod memcached;
pub mod memory;
pub mod metered;
mod pool;
pub mod redis;
pub mod redis_client;
pub mod registry;
pub mod revocable;
pub mod revocation;
pub mod sql;
pub mod sticky;

use std::{fmt, str::FromStr, sync::Arc};

pub use data::{SessionData, SessionUser, Visit, unix_now};
pub use handle::{Session, SessionInfo};
pub use id::SessionId;
pub use store::{Describe, Loaded, RefreshToken, RefreshTokens, Refreshed, Saved, SessionStore, StoreError, UserIndex};

use crate::config::Settings;

/// Name of the cookie that carries the session (an ID, or the whole state for `cookie`) over
/// plain http; behind HTTPS it is `__Host-sl_session` ([`crate::cookies::CookieNames`]).
pub const COOKIE_NAME: &str = crate::cookies::CookieNames::new(false).session;
/// Browsers drop a cookie whose name and value exceed this many bytes.
pub const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Each replica's own memory, no affinity: the problem, not a solution ([`memory`]).
    Memory,
    Sticky,
    Cookie,
    Redis,
    Memcached,
    Postgres,
    Mysql,
    Jwt,
    /// The stock actix-session + actix-identity stack on Redis ([`actix_stock`]).
    ActixRedis,
    /// The stock actix-session cookie store with actix-identity ([`actix_stock`]).
    ActixCookie,
}

impl Backend {
    pub const ALL: [Backend; 10] = [
        Backend::Memory,
        Backend::Sticky,
        Backend::Cookie,
        Backend::Redis,
        Backend::Memcached,
        Backend::Postgres,
        Backend::Mysql,
        Backend::Jwt,
        Backend::ActixRedis,
        Backend::ActixCookie,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sticky => "sticky",
            Backend::Cookie => "cookie",
            Backend::Redis => "redis",
            Backend::Memcached => "memcached",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Jwt => "jwt",
            Backend::ActixRedis => "actix-redis",
            Backend::ActixCookie => "actix-cookie",
        }
    }

    /// The stock actix stack rather than sessionlab's own layer.
    pub fn is_stock(self) -> bool {
        matches!(self, Backend::ActixRedis | Backend::ActixCookie)
    }

    /// The session state travels in the client's cookie or token; the server keeps none of it.
    pub fn keeps_state_in_client(self) -> bool {
        matches!(self, Backend::Cookie | Backend::Jwt | Backend::ActixCookie)
    }

    /// No shared store holds the sessions, so listing and revoking them takes the
    /// [`revocable::Revocable`] layer, which `SESSION_REVOCATION=off` leaves out.
    pub fn revocation_is_a_layer(self) -> bool {
        matches!(self, Backend::Memory | Backend::Sticky | Backend::Cookie | Backend::Jwt)
    }
}

/// What the lab's two experiments do to a session of a strategy, in plain words: shown by the
/// dashboard and the `sessionlab lab` banner, checked by the acceptance suite.
#[derive(Debug, Clone, Copy)]
pub struct Outcomes {
    pub replica_killed: &'static str,
    pub store_restarted: &'static str,
    /// Why a replica may find no session for the cookie a browser sent: shown when a page sees a
    /// session cookie that opens nothing.
    pub not_found: &'static str,
}

impl Backend {
    pub fn outcomes(self) -> Outcomes {
        match self {
            Backend::Memory => memory::OUTCOMES,
            Backend::Sticky => sticky::OUTCOMES,
            Backend::Cookie => cookie::OUTCOMES,
            Backend::Redis => redis::OUTCOMES,
            Backend::Memcached => memcached::OUTCOMES,
            Backend::Postgres | Backend::Mysql => sql::OUTCOMES,
            Backend::Jwt => jwt::OUTCOMES,
            Backend::ActixRedis => actix_stock::REDIS_OUTCOMES,
            Backend::ActixCookie => actix_stock::COOKIE_OUTCOMES,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL.into_iter().find(|b| b.as_str() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            let names: Vec<_> = Backend::ALL.iter().map(|b| b.as_str()).collect();
            format!("unknown session backend; use one of: {}", names.join(", "))
        })
    }
}

/// The session layer a replica runs: sessionlab's own, on the store `SESSION_BACKEND` names, or
/// the stock actix stack.
#[derive(Clone)]
pub enum Layer {
    Own(Arc<dyn SessionStore>),
    Stock(actix_stock::Stack),
}

impl Layer {
    pub async fn build(settings: &Settings, db: &crate::db::Db) -> anyhow::Result<Self> {
        Ok(if settings.backend.is_stock() {
            Layer::Stock(actix_stock::Stack::from_settings(settings).await?)
        } else {
            Layer::Own(build_store(settings, db).await?)
        })
    }

    /// One round trip to the session store, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Layer::Own(store) => store.ping().await,
            Layer::Stock(stack) => stack.ping().await,
        }
    }
}

/// Builds the store `SESSION_BACKEND` names, for sessionlab's own layer.
pub async fn build_store(settings: &Settings, db: &crate::db::Db) -> anyhow::Result<Arc<dyn SessionStore>> {
    let ttl = settings.idle_timeout;
    let registry = match settings.backend {
        Backend::Memory | Backend::Sticky => {
            registry::Registry::new(db.clone(), settings.absolute_timeout)
                .held_in_memory_of(&settings.replica_id)
                .await?
        }
        _ => registry::Registry::new(db.clone(), settings.absolute_timeout),
    };
    let store: Arc<dyn SessionStore> = match settings.backend {
        Backend::Memory | Backend::Sticky => Arc::new(memory::MemoryStore::new(settings.backend, ttl)),
        Backend::Cookie => Arc::new(cookie::CookieStore::from_settings(settings)?),
        Backend::Redis => {
            let client = redis_client::RedisClient::connect(settings.redis_url.expose(), settings.redis_wait_replicas)?;
            Arc::new(redis::RedisStore::new(client, ttl, settings.absolute_timeout))
        }
        Backend::Memcached => Arc::new(
            memcached::MemcachedStore::connect(settings.memcached_url.expose(), ttl)?.with_registry(registry.clone()),
        ),
        Backend::Postgres | Backend::Mysql => {
            let url = settings.session_database_url()?;
            let store = Arc::new(sql::SqlStore::connect(url.expose(), settings.backend, ttl).await?);
            store.spawn_sweeper(settings.sweep_interval);
            store
        }
        Backend::Jwt => Arc::new(jwt::JwtStore::from_settings(settings)?),
        Backend::ActixRedis | Backend::ActixCookie => {
            anyhow::bail!("{} is the stock actix stack: it has no sessionlab store", settings.backend)
        }
    };
    let store = if settings.backend.revocation_is_a_layer() && settings.revocation {
        // The revocation list: Redis when REDIS_URL is set, otherwise the app database.
        let revocations = match &settings.revocation_redis {
            Some(url) => revocation::Revocations::Redis(redis_client::RedisClient::connect(
                url.expose(),
                settings.redis_wait_replicas,
            )?),
            None => revocation::Revocations::Database(db.clone()),
        };
        // A revoked credential must be refused for as long as it could be presented.
        let revoked_for = match settings.backend {
            Backend::Jwt => settings.jwt_refresh_ttl.max(settings.jwt_access_ttl),
            _ => settings.absolute_timeout,
        };
        Arc::new(revocable::Revocable::new(store, registry, revocations, revoked_for))
    } else {
        store
    };
    Ok(Arc::new(metered::Metered::new(store)))
}
