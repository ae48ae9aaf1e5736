use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, SessionData, SessionId, device::Listed};

/// Where session state lives. One implementation per strategy.
///
/// `load` and `save` are the lesson; `reload`, `delete` and `end` complete a session's life, and
/// `ping` is for `/readyz`. What only some strategies have sits in traits of its own, which a
/// store hands out if it has them: a per-user index ([`UserIndex`], for "your devices") and
/// refresh tokens ([`RefreshTokens`], `jwt`). How a store tells a person where a session lives is
/// [`Describe`].
///
/// The cookie value is opaque to callers: for server-side stores it is the [`SessionId`], for the
/// `cookie` strategy it is the encrypted state itself. Stores never see anything but what they
/// need: server-side stores key by [`SessionId::storage_key`], a hash.
#[async_trait]
pub trait SessionStore: Describe + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Resolves the cookie a client sent. `Ok(None)` means "no session": unknown, expired,
    /// tampered or garbage input are all the same to the caller. Implementations extend the idle
    /// timeout here if they can do it without a write.
    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError>;

    /// Stores `data` as session `id` and returns the cookie value the client must hold from now on.
    ///
    /// `expected` is the version [`Loaded::version`] reported, or `None` for a session that does
    /// not exist yet. Stores with compare-and-set refuse the write with [`StoreError::Conflict`]
    /// when the stored version moved on (or, for `None`, when the ID exists); the others ignore it.
    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError>;

    /// The current state of session `id`, after a write was refused with a conflict. Stores
    /// whose cookie is the session ID (all that can conflict) need not override this.
    async fn reload(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        self.load(id.expose()).await
    }

    /// Forgets session `id`. Deleting an unknown session is not an error.
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError>;

    /// Ends session `id` holding `data` (log out, or the old ID at log-in): a logged-in session
    /// leaves its user's index, a guest's is deleted. Where the session lives in the client
    /// (`cookie`, `jwt`), only the [`Revocable`](super::revocable) layer stops a copy working.
    async fn end(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        if let (Some(user), Some(index)) = (&data.user, self.user_index())
            && index.revoke(user.id, &id.storage_key()).await?
        {
            return Ok(());
        }
        self.delete(id).await
    }

    /// One round trip to the store, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The list of each user's live sessions, if this store keeps one. The strategies without a
    /// shared store keep none unless their [`Revocable`](super::revocable) layer adds it.
    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }

    /// The strategy's refresh tokens, if it hands them out (`jwt`).
    fn refresh_tokens(&self) -> Option<&dyn RefreshTokens> {
        None
    }
}

/// How a store tells a person about a session, for the inspector. Never the secret itself.
pub trait Describe {
    /// Where the state of session `id` physically lives, in words (a key name, "in this
    /// replica's memory").
    fn location(&self, id: &SessionId) -> String;

    /// What a person may see of a credential this store issued (a JWT's header and claims).
    fn inspect_cookie(&self, _cookie: &str) -> Option<serde_json::Value> {
        None
    }
}

/// Each user's live, logged-in sessions: "your devices", and ending one of them from another.
#[async_trait]
pub trait UserIndex: Send + Sync {
    /// Session `id` just logged in: add it to its user's list.
    async fn add(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError>;

    /// The device record of session `id` changed. Indexes that read the record from the session
    /// itself when listing need not do anything.
    async fn touch(&self, _id: &SessionId, _data: &SessionData) -> Result<(), StoreError> {
        Ok(())
    }

    /// The live sessions of user `user_id`, oldest first.
    async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError>;

    /// Ends session `key` ([`SessionId::storage_key`]) of user `user_id`: from the next request
    /// on, no replica accepts it. `Ok(false)`: the user has no such session.
    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError>;

    /// Ends every session of user `user_id` but `keep`, including any that [`list`] does not
    /// show (log out everywhere, a password change); the listed ones are then revoked one by
    /// one as well. Indexes that hold every live session need do nothing here.
    ///
    /// [`list`]: UserIndex::list
    async fn revoke_all_but(&self, _user_id: i64, _keep: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Refresh tokens: a long-lived credential traded, once, for a new short-lived one.
#[async_trait]
pub trait RefreshTokens: Send + Sync {
    /// The first refresh token of session `id`, which just logged in; `None` for a guest.
    async fn issue(&self, id: &SessionId, data: &SessionData) -> Result<Option<RefreshToken>, StoreError>;

    /// Exchanges a refresh token for a new access credential and the next refresh token.
    /// `previous` is the (possibly expired) access credential, to carry its state over.
    /// `Ok(None)`: the refresh token is invalid, expired, revoked, or was used before.
    async fn refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<Option<Refreshed>, StoreError>;
}

/// A refresh token as issued: what the client gets, and what tracking its use needs.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token: String,
    /// The token's own ID (its `jti`).
    pub jti: String,
    pub ttl: Duration,
}

/// A refresh that succeeded: the session, its new credential, the next refresh token.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub loaded: Loaded,
    pub saved: Saved,
    pub refresh_token: RefreshToken,
    /// The `jti` of the refresh token this exchange used up.
    pub presented_jti: String,
}

/// A session found by [`SessionStore::load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: SessionId,
    pub data: SessionData,
    /// Bytes the state occupies where it lives (stored value, or the cookie).
    pub state_bytes: usize,
    /// Time left before the session expires if unused.
    pub ttl: Duration,
    /// The store cannot slide the expiry by itself on a read: the middleware should save the
    /// unchanged session once it is this stale (the `cookie` strategy re-issues its cookie).
    pub refresh_due: bool,
    /// The version to compare-and-set against, for stores that have one.
    pub version: Option<u64>,
}

/// What [`SessionStore::save`] produced.
#[derive(Debug, Clone)]
pub struct Saved {
    pub cookie: String,
    pub state_bytes: usize,
    pub ttl: Duration,
    /// The version now stored, for stores that have one.
    pub version: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (down, timed out, refused). Shown as 503.
    #[error("session store unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The state does not fit where it must live (the 4 KB cookie). Shown as 413; nothing saved.
    #[error("the session would take {bytes} bytes, more than the {limit}-byte limit of this strategy")]
    TooLarge { bytes: usize, limit: usize },
    /// Another request changed (or removed) the session since it was read. Shown as 409.
    #[error("the session was changed by another request at the same time")]
    Conflict,
    /// The strategy cannot do this by design (the stock actix stack keeps no per-user index).
    /// Shown as 404 with the reason.
    #[error("{0}")]
    Unsupported(String),
}

/// The store's [`UserIndex`], or, for a strategy without its revocation layer, why "your devices"
/// cannot be shown.
pub(crate) fn index_of(store: &dyn SessionStore) -> Result<&dyn UserIndex, StoreError> {
    store.user_index().ok_or_else(|| unlisted(store.backend()))
}

fn unlisted(backend: Backend) -> StoreError {
    StoreError::Unsupported(format!(
        "{backend} runs with SESSION_REVOCATION=off: no server keeps a list of a user's sessions, so none \
         can be listed or ended from another device; each lasts until it is logged out where it is used, \
         or expires"
    ))
}

impl StoreError {
    pub fn unavailable(err: impl Into<anyhow::Error>) -> Self {
        StoreError::Unavailable(err.into())
    }
}
