//! Every store, measured: a decorator that times each call to the store, its [`UserIndex`] and its
//! [`RefreshTokens`], and counts it by operation and result, for `/metrics`. One place, so no strategy can forget it, and the
//! comparison harness reads "store operations per request" from the same numbers.
use std::{future::Future, sync::Arc, time::Instant};

use async_trait::async_trait;

use super::{
    Backend, Describe, Loaded, RefreshToken, RefreshTokens, Refreshed, Saved, SessionData, SessionId, SessionStore,
    StoreError, UserIndex, device::Listed, store::index_of,
};

/// The histogram of store calls: `op` (load, save, delete, …) and `result` (hit, miss, ok,
/// conflict, too_large, error).
pub const STORE_OPERATIONS: &str = "sessionlab_store_operation_duration_seconds";

/// Hands itself out as the [`UserIndex`] and [`RefreshTokens`] of the store it wraps, where that
/// store has them, so those calls are measured too.
pub struct Metered {
    inner: Arc<dyn SessionStore>,
}

impl Metered {
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self { inner }
    }

    /// The wrapped store's index. It has one whenever this layer handed itself out as an index.
    fn index(&self) -> Result<&dyn UserIndex, StoreError> {
        index_of(self.inner.as_ref())
    }
}

/// Runs one store call, timing it and counting it under `op` and its result.
async fn timed<T>(
    op: &'static str,
    ok: impl FnOnce(&T) -> &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let outcome = call.await;
    let result = match &outcome {
        Ok(value) => ok(value),
        Err(StoreError::Conflict) => "conflict",
        Err(StoreError::TooLarge { .. }) => "too_large",
        Err(StoreError::Unavailable(_)) => "error",
        Err(StoreError::Unsupported(_)) => "unsupported",
    };
    metrics::histogram!(STORE_OPERATIONS, "op" => op, "result" => result).record(started.elapsed().as_secs_f64());
    outcome
}

fn found<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "hit" } else { "miss" }
}

fn ok<T>(_: &T) -> &'static str {
    "ok"
}

#[async_trait]
impl SessionStore for Metered {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        timed("load", found, self.inner.load(cookie)).await
    }

    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        timed("save", ok, self.inner.save(id, data, expected)).await
    }

    async fn reload(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        timed("reload", found, self.inner.reload(id)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        timed("delete", ok, self.inner.delete(id)).await
    }

    async fn end(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        timed("end", ok, self.inner.end(id, data)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", ok, self.inner.ping()).await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index().map(|_| self as &dyn UserIndex)
    }

    fn refresh_tokens(&self) -> Option<&dyn RefreshTokens> {
        self.inner.refresh_tokens().map(|_| self as &dyn RefreshTokens)
    }
}

#[async_trait]
impl UserIndex for Metered {
    async fn add(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        timed("index", ok, async { self.index()?.add(id, data).await }).await
    }

    async fn touch(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        timed("index", ok, async { self.index()?.touch(id, data).await }).await
    }

    async fn list(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        timed("list", ok, async { self.index()?.list(user_id).await }).await
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        let hit = |revoked: &bool| if *revoked { "hit" } else { "miss" };
        timed("revoke", hit, async { self.index()?.revoke(user_id, key).await }).await
    }

    async fn revoke_all_but(&self, user_id: i64, keep: &str) -> Result<(), StoreError> {
        timed("revoke_all", ok, async { self.index()?.revoke_all_but(user_id, keep).await }).await
    }
}

#[async_trait]
impl RefreshTokens for Metered {
    async fn issue(&self, id: &SessionId, data: &SessionData) -> Result<Option<RefreshToken>, StoreError> {
        let Some(tokens) = self.inner.refresh_tokens() else { return Ok(None) };
        timed("issue_refresh_token", ok, tokens.issue(id, data)).await
    }

    async fn refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<Option<Refreshed>, StoreError> {
        let Some(tokens) = self.inner.refresh_tokens() else { return Ok(None) };
        timed("refresh", found, tokens.refresh(refresh_token, previous)).await
    }
}

impl Describe for Metered {
    fn location(&self, id: &SessionId) -> String {
        self.inner.location(id)
    }

    fn inspect_cookie(&self, cookie: &str) -> Option<serde_json::Value> {
        self.inner.inspect_cookie(cookie)
    }
}
