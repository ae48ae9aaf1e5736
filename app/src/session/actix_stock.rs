//! `actix-redis` and `actix-cookie`: the stock actix stack, wired the way the crates' docs and the
//! actix examples wire it — and nothing more. It is the baseline sessionlab's own layer is
//! measured against (`docs/strategies/actix-session.md`), so it stays stock: no fixes in here.
//!
//! How it works:
//! - [`SessionMiddleware`] loads the session (a map of string keys to JSON values) before the
//!   handler and writes it back *after* the handler answered, if it changed.
//! - `actix-redis`: the map lives in Redis ([`RedisSessionStore`] on a deadpool-redis pool, the
//!   `redis-pool` feature); the cookie carries the key, encrypted. `actix-cookie`: the map itself
//!   is the cookie ([`CookieSessionStore`]), encrypted and authenticated (AES-GCM).
//! - [`PersistentSession`] with [`TtlExtensionPolicy::OnEveryRequest`]: every request pushes the
//!   expiry of the cookie (and of the Redis key) `IDLE_TIMEOUT` ahead.
//! - [`IdentityMiddleware`] remembers who logged in: [`Identity::login`] stores the user ID and
//!   renews the session key (fixation protection), [`Identity::logout`] purges the session. Its
//!   visit deadline is the idle timeout, its login deadline the absolute one.
//! - The app's own data (the cart, the username) are plain entries of the session map.
//!
//! # Limitations (each one measured or tested, see the strategy page)
//! - No compare-and-set: the Redis store writes `SET … XX` with whatever the request read, so
//!   concurrent requests of one session overwrite each other (last writer wins).
//! - The write happens after the handler answered: a Redis error or a cookie over actix-session's
//!   4,064-byte limit can only turn the answer into an empty 500.
//! - That limit is on the plaintext: encrypted and base64-encoded, a cookie a little under it is
//!   a `Set-Cookie` over the 4,096 bytes browsers keep, and the browser drops it silently.
//! - Every read costs writes: the visit deadline rewrites the whole session on every logged-in
//!   request (`SET … XX`), the TTL extension sends `EXPIRE` on the others, and each of those
//!   checks a connection out of the pool, which pipelines `UNWATCH` + `PING` first.
//! - `actix-cookie` has nothing on the server: a copied cookie stays valid after its owner logs
//!   out, until the identity deadlines run out.
//! - Neither keeps a per-user index: "your devices" cannot list or end a user's other sessions.
use std::time::Duration;

use actix_identity::{Identity, IdentityExt, IdentityMiddleware};
use actix_session::{
    SessionExt, SessionMiddleware,
    config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy},
    storage::{CookieSessionStore, RedisSessionStore},
};
use actix_web::{HttpMessage, HttpRequest, cookie::Key};

use super::{Backend, SessionData, SessionUser, StoreError, Visit};
use crate::{cart::Cart, config::Settings};

pub const REDIS_OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: every replica reads your session from Redis.",
    store_restarted: "With its append-only file on (the lab and compose, by default) a Redis restart loses nothing. Without persistence (sessionlab lab --redis-aof false) it forgets the sessions: everyone is logged out. While Redis is down, every page with a session answers an empty 500: actix-session has no other way to say it.",
    not_found: "Every replica asks the same Redis, so a session no replica finds has expired, was logged out, or was lost when a Redis without persistence restarted.",
};

pub const COOKIE_OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: the whole session travels in your cookie, and every replica can decrypt it.",
    store_restarted: "There is no session store, and nothing is checked on the server: a copy of your cookie keeps working after you log out.",
    not_found: "Every replica can decrypt your cookie, so a replica ignores it only when it was altered, sealed with another key, or past its deadline. Nothing on the server can end it sooner.",
};

/// The session map's entries for the app's own data.
const CART: &str = "cart";
const VISITS: &str = "visits";
const USERNAME: &str = "username";

/// What the stock stack needs at start-up: the store and the key that encrypts the cookie.
#[derive(Clone)]
pub struct Stack {
    pub store: Store,
    key: Key,
    idle: Duration,
    absolute: Duration,
    secure: bool,
}

#[derive(Clone)]
pub enum Store {
    Redis { sessions: RedisSessionStore, pool: deadpool_redis::Pool },
    Cookie,
}

impl Stack {
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let store = match settings.backend {
            Backend::ActixRedis => {
                let pool = deadpool_redis::Config::from_url(settings.redis_url.expose())
                    .create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
                Store::Redis { sessions: RedisSessionStore::new_pooled(pool.clone()).await?, pool }
            }
            _ => Store::Cookie,
        };
        Ok(Self {
            store,
            key: super::cookie::key_from_settings(settings)?,
            idle: settings.idle_timeout,
            absolute: settings.absolute_timeout,
            secure: settings.cookie_secure,
        })
    }

    /// The session middleware, for either store.
    pub fn sessions<S: actix_session::storage::SessionStore>(&self, store: S) -> SessionMiddleware<S> {
        SessionMiddleware::builder(store, self.key.clone())
            .cookie_name(crate::cookies::CookieNames::new(self.secure).session.to_owned())
            .cookie_secure(self.secure)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(actix_web::cookie::time::Duration::seconds(self.idle.as_secs() as i64))
                    .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
            )
            .build()
    }

    pub fn cookie_sessions(&self) -> SessionMiddleware<CookieSessionStore> {
        self.sessions(CookieSessionStore::default())
    }

    pub fn identity(&self) -> IdentityMiddleware {
        IdentityMiddleware::builder().visit_deadline(Some(self.idle)).login_deadline(Some(self.absolute)).build()
    }

    /// For `/readyz`: one connection from the pool, one `PING`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let Store::Redis { pool, .. } = &self.store else { return Ok(()) };
        let mut conn = pool.get().await.map_err(StoreError::unavailable)?;
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(StoreError::unavailable)
    }
}

/// What the handler reads: who is logged in (the identity), the cart and the inspector's visits.
pub fn read(req: &HttpRequest) -> SessionData {
    let session = req.get_session();
    let user = req.get_identity().ok().and_then(|identity| {
        let id = identity.id().ok()?.parse().ok()?;
        let username = session.get::<String>(USERNAME).ok()??;
        Some(SessionUser { id, username })
    });
    let cart = session.get::<Cart>(CART).ok().flatten().unwrap_or_default();
    let visits = session.get::<Vec<Visit>>(VISITS).ok().flatten().unwrap_or_default();
    SessionData { user, cart, visits, ..SessionData::default() }
}

/// Puts the cart and the visits into the session map. They reach the store after the handler
/// answered.
pub fn write(req: &HttpRequest, data: &SessionData) -> Result<(), StoreError> {
    let session = req.get_session();
    session.insert(CART, &data.cart).map_err(StoreError::unavailable)?;
    session.insert(VISITS, &data.visits).map_err(StoreError::unavailable)
}

/// Logs `user` in: the identity is set and the session key renewed.
pub fn login(req: &HttpRequest, user: &SessionUser) -> Result<(), StoreError> {
    Identity::login(&req.extensions(), user.id.to_string()).map_err(StoreError::unavailable)?;
    req.get_session().insert(USERNAME, &user.username).map_err(StoreError::unavailable)
}

/// Logs out: the whole session is purged (actix-identity's default).
pub fn logout(req: &HttpRequest) {
    match req.get_identity() {
        Ok(identity) => identity.logout(),
        Err(_) => req.get_session().purge(),
    }
}

/// A new session key for the same state.
pub fn renew(req: &HttpRequest) {
    req.get_session().renew();
}

// The glue to sessionlab's `Session` handle lives apart, so that this file stays the lesson.
pub(crate) mod bridge;
