//! `cookie`: the whole session travels in the `sl_session` cookie, encrypted and authenticated
//! with AES-256-GCM (the `cookie` crate's private jar, the same construction actix-session's
//! private cookie sessions use). No server keeps anything, so any replica can serve any request.
//!
//! The cookie holds `{sid, exp, state}`. `exp` gives an idle timeout the server enforces; because
//! a read cannot slide it without sending a new cookie, the cookie is re-issued when less than
//! half of the idle timeout is left.
//!
//! This file is the pure strategy (`SESSION_REVOCATION=off`): no server is asked anything. By
//! default it runs inside the [`Revocable`](super::revocable::Revocable) layer, which registers
//! logged-in sessions for "your devices" and checks each logged-in request against a revocation
//! list, so a logout sticks: one round trip per logged-in request, the very server-side state
//! cookie sessions are chosen to avoid.
//!
//! # Limitations
//! - Size: browsers drop a cookie over 4096 bytes, and it is sent with every request. A cart
//!   that would not fit is refused with 413 and the session stays as it was.
//! - On its own it cannot revoke: a copy of a logged-out cookie stays valid until `exp`, and
//!   there is no list of a user's sessions. A guest's cookie is never checked even with the
//!   revocation layer, so an old guest cookie keeps its cart.
//! - Last writer wins: two concurrent requests each send back their own version of the state.
//! - Every replica needs the same `SESSION_KEY`; rotating it logs everybody out.
use std::time::Duration;

use actix_web::cookie::{Cookie, CookieJar, Key};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    Backend, COOKIE_NAME, Describe, Loaded, MAX_COOKIE_BYTES, Saved, SessionData, SessionId, SessionStore, StoreError,
    unix_now,
};
use crate::config::Settings;

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: the whole session travels in your cookie, and every replica can decrypt it.",
    store_restarted: "There is no session store. (Unless SESSION_REVOCATION=off, logged-in requests check a revocation list in the app database or Redis; while it is down, they get a 503 page.)",
    not_found: "Every replica can decrypt your cookie, so a replica refuses it only when it has expired, was altered, was sealed with another key, or its session was logged out (the revocation list says so).",
};

pub struct CookieStore {
    key: Key,
    ttl: Duration,
    /// The cookie's name in the browser (`__Host-` behind HTTPS): it counts towards the 4 KB.
    /// The encryption binds the stable [`COOKIE_NAME`], so the value is the same under either.
    cookie_name: &'static str,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    sid: String,
    exp: i64,
    state: SessionData,
}

impl CookieStore {
    pub fn new(key: Key, ttl: Duration) -> Self {
        Self { key, ttl, cookie_name: COOKIE_NAME }
    }

    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let store = Self::new(key_from_settings(settings)?, settings.idle_timeout);
        Ok(Self { cookie_name: crate::cookies::CookieNames::new(settings.cookie_secure).session, ..store })
    }

    fn decrypt(&self, value: &str) -> Option<Envelope> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(COOKIE_NAME, value.to_owned()));
        let plain = jar.private(&self.key).get(COOKIE_NAME)?;
        serde_json::from_str(plain.value()).ok()
    }

    fn encrypt(&self, envelope: &Envelope) -> String {
        let json = serde_json::to_string(envelope).expect("session data is plain JSON");
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(Cookie::new(COOKIE_NAME, json));
        jar.get(COOKIE_NAME).expect("just added").value().to_owned()
    }
}

#[async_trait]
impl SessionStore for CookieStore {
    fn backend(&self) -> Backend {
        Backend::Cookie
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        // Anything longer could not have been issued by `save`; don't spend AES on it.
        if cookie.len() > MAX_COOKIE_BYTES {
            return Ok(None);
        }
        let Some(envelope) = self.decrypt(cookie) else {
            return Ok(None);
        };
        let Some(id) = SessionId::parse(&envelope.sid) else {
            return Ok(None);
        };
        let left = envelope.exp - unix_now();
        if left <= 0 {
            return Ok(None);
        }
        let ttl = Duration::from_secs(left as u64);
        Ok(Some(Loaded {
            id,
            data: envelope.state,
            state_bytes: cookie.len(),
            ttl,
            refresh_due: ttl < self.ttl / 2,
            version: None,
        }))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, _expected: Option<u64>) -> Result<Saved, StoreError> {
        let envelope =
            Envelope { sid: id.expose().to_owned(), exp: unix_now() + self.ttl.as_secs() as i64, state: data.clone() };
        let value = self.encrypt(&envelope);
        let bytes = self.cookie_name.len() + 1 + value.len();
        if bytes > MAX_COOKIE_BYTES {
            return Err(StoreError::TooLarge { bytes, limit: MAX_COOKIE_BYTES });
        }
        Ok(Saved { state_bytes: value.len(), cookie: value, ttl: self.ttl, version: None })
    }

    async fn delete(&self, _id: &SessionId) -> Result<(), StoreError> {
        // Nothing to delete: the middleware removes the cookie from this browser. Copies of it
        // stay valid unless the revocation layer lists the session as ended.
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Describe for CookieStore {
    fn location(&self, _id: &SessionId) -> String {
        format!("the {} cookie in your browser, AES-256-GCM encrypted; no server keeps a copy", self.cookie_name)
    }
}

/// The key every replica encrypts cookies with, from `SESSION_KEY`.
pub(crate) fn key_from_settings(settings: &Settings) -> anyhow::Result<Key> {
    Ok(match &settings.session_key {
        Some(secret) => Key::derive_from(secret.expose().as_bytes()),
        None if settings.part_of_cluster => anyhow::bail!(
            "SESSION_BACKEND={} needs SESSION_KEY (at least 64 bytes, the same on every replica): \
             replica {} would otherwise invent its own key and reject the cookies the others issued. \
             Make one with `openssl rand -base64 64`.",
            settings.backend,
            settings.replica_id
        ),
        None => {
            tracing::warn!(
                "SESSION_KEY is unset: using a random key; sessions end when this process stops \
                 and no other replica can read them"
            );
            Key::generate()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cart::Cart, catalog::Product};

    fn store() -> CookieStore {
        CookieStore::new(Key::generate(), Duration::from_secs(600))
    }

    #[tokio::test]
    async fn a_cookie_round_trips_and_a_flipped_byte_is_no_session() {
        let store = store();
        let id = SessionId::generate();
        let saved = store.save(&id, &SessionData::default(), None).await.unwrap();
        assert_eq!(store.load(&saved.cookie).await.unwrap().unwrap().id, id);

        let mut bytes = saved.cookie.into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        assert!(store.load(&String::from_utf8(bytes).unwrap()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn another_key_cannot_read_the_cookie() {
        let saved = store().save(&SessionId::generate(), &SessionData::default(), None).await.unwrap();
        assert!(store().load(&saved.cookie).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_state_over_four_kilobytes_is_refused() {
        let mut data = SessionData::default();
        let mut cart = Cart::default();
        for id in 0..200 {
            let p = Product { id, name: format!("Product number {id}"), emoji: "x".into(), price_cents: 100 };
            cart.add(&p, 1).unwrap();
        }
        data.cart = cart;
        let err = store().save(&SessionId::generate(), &data, None).await.unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { limit: 4096, .. }), "{err}");
    }
}
