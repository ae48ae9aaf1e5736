//! The state that the stateless strategies need after all, as a layer around them.
//!
//! `cookie`, `jwt`, `sticky` and `memory` keep no shared list of sessions: the cookie or token
//! is the session (or the session sits in one replica's memory). On their own, that has two
//! consequences the article names for JWTs: a credential stays valid until it expires, logout or
//! not, and there is no "active sessions list" to show or end. [`Revocable`] adds exactly what is
//! missing, and nothing else:
//!
//! - a [`Registry`] row per logged-in session (in the app database), for "your devices";
//! - a revocation list ([`Revocations`]: Redis, or the app database) that every logged-in request
//!   is checked against, so a logout or a revocation on one replica is refused by all of them
//!   from the next request on;
//! - for `jwt`, the current refresh token of each session, so a refresh token works once and a
//!   used one presented again ends its session (RFC 9700's reuse detection).
//!
//! It is on by default. `SESSION_REVOCATION=off` runs the strategy without it (for `sticky` and
//! `jwt`, as the article presents them; the article has no cookie strategy): no lookup on any request, and a copy of a logged-out cookie or token keeps
//! working until it expires. `make compare` measures both modes side by side.
//!
//! Guests are never checked: a guest's cookie or token opens only its own cart, so a revocation
//! list entry for it would protect nothing, and any visitor could grow the list at will.
use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use super::{
    Backend, Describe, Loaded, RefreshToken, RefreshTokens, Refreshed, Saved, SessionData, SessionId, SessionStore,
    StoreError, UserIndex,
    device::Listed,
    registry::Registry,
    revocation::{Revocations, Rotation},
};

pub struct Revocable {
    inner: Arc<dyn SessionStore>,
    registry: Registry,
    revocations: Revocations,
    /// How long a revocation is remembered: as long as a revoked credential could still be used.
    revoked_for: Duration,
}

impl Revocable {
    pub fn new(
        inner: Arc<dyn SessionStore>,
        registry: Registry,
        revocations: Revocations,
        revoked_for: Duration,
    ) -> Self {
        Self { inner, registry, revocations, revoked_for }
    }

    /// Whether a logged-in session was revoked; guests never are.
    async fn revoked(&self, loaded: &Loaded) -> Result<bool, StoreError> {
        let Some(user) = &loaded.data.user else { return Ok(false) };
        self.revocations.is_revoked(&loaded.id.storage_key(), user.id, loaded.data.created_at).await
    }

    /// From the next request on, no replica accepts session `key`, and it has no refresh token.
    async fn revoke_everywhere(&self, key: &str) -> Result<(), StoreError> {
        self.revocations.revoke(key, self.revoked_for).await
    }
}

#[async_trait]
impl SessionStore for Revocable {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(loaded) = self.inner.load(cookie).await? else { return Ok(None) };
        if self.revoked(&loaded).await? {
            // Where the session also sits in this replica's memory, drop it there too.
            self.inner.delete(&loaded.id).await?;
            return Ok(None);
        }
        Ok(Some(loaded))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        self.inner.save(id, data, expected).await
    }

    async fn reload(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        self.inner.reload(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }

    /// A logged-in session is revoked whether or not it is still listed: a registry row can be
    /// gone while a copy of the credential is still out there.
    async fn end(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        if let Some(user) = &data.user {
            let key = id.storage_key();
            self.registry.remove(user.id, &key).await?;
            self.revoke_everywhere(&key).await?;
        }
        self.inner.delete(id).await
    }

    /// Logged-in requests cannot be answered without the revocation list.
    async fn ping(&self) -> Result<(), StoreError> {
        self.revocations.ping().await?;
        self.inner.ping().await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn refresh_tokens(&self) -> Option<&dyn RefreshTokens> {
        self.inner.refresh_tokens().map(|_| self as &dyn RefreshTokens)
    }
}

/// The registry is the index; revoking also lists the session as revoked, for every replica.
#[async_trait]
impl UserIndex for Revocable {
    async fn add(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        self.registry.register(&id.storage_key(), data).await
    }

    async fn touch(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        self.registry.touch(&id.storage_key(), data).await
    }

    async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        self.registry.list(user_id).await
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        if !self.registry.remove(user_id, key).await? {
            return Ok(false);
        }
        self.revoke_everywhere(key).await?;
        Ok(true)
    }

    /// A registry row can be gone (swept, or lost with its database) while a copy of the cookie
    /// or token is still out there: the user's cutoff reaches those too.
    async fn revoke_all_but(&self, user_id: i64, keep: &str) -> Result<(), StoreError> {
        self.revocations.revoke_all_but(user_id, keep, self.revoked_for).await
    }
}

/// The inner strategy checks a refresh token's signature and expiry and mints the next pair; this
/// layer decides whether the token may still be used, and makes sure it is used only once.
#[async_trait]
impl RefreshTokens for Revocable {
    async fn issue(&self, id: &SessionId, data: &SessionData) -> Result<Option<RefreshToken>, StoreError> {
        let Some(tokens) = self.inner.refresh_tokens() else { return Ok(None) };
        let Some(issued) = tokens.issue(id, data).await? else { return Ok(None) };
        self.revocations.start_family(id, &issued.jti, issued.ttl).await?;
        Ok(Some(issued))
    }

    async fn refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<Option<Refreshed>, StoreError> {
        let Some(tokens) = self.inner.refresh_tokens() else { return Ok(None) };
        let Some(refreshed) = tokens.refresh(refresh_token, previous).await? else { return Ok(None) };
        let id = &refreshed.loaded.id;
        let key = id.storage_key();
        if self.revoked(&refreshed.loaded).await? {
            return Ok(None);
        }
        match self.revocations.rotate(id, &refreshed.presented_jti, &refreshed.refresh_token).await? {
            Rotation::Rotated => Ok(Some(refreshed)),
            // Two refreshes with one token at once (two tabs, a retry): both get the same
            // successor, and the family goes on from it.
            Rotation::Grace(successor) => {
                let mut refreshed = refreshed;
                refreshed.refresh_token.token = successor;
                Ok(Some(refreshed))
            }
            Rotation::Reused => {
                // Either the thief or the rightful client used it first: end the session for both.
                tracing::warn!(session = %id.fingerprint(), "a used refresh token was presented again: revoking its session");
                if let Some(user) = &refreshed.loaded.data.user {
                    self.registry.remove(user.id, &key).await?;
                }
                self.revoke_everywhere(&key).await?;
                Ok(None)
            }
        }
    }
}

impl Describe for Revocable {
    fn location(&self, id: &SessionId) -> String {
        format!(
            "{}; logged-in sessions are checked against the revocation list in {}",
            self.inner.location(id),
            self.revocations.describe()
        )
    }

    fn inspect_cookie(&self, cookie: &str) -> Option<serde_json::Value> {
        self.inner.inspect_cookie(cookie)
    }
}
