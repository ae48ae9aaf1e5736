//! Every store, measured: a decorator that times each [`SessionStore`] call and counts it by
//! operation and result, for `/metrics`. One place, so no strategy can forget it, and the
//! comparison harness reads "store operations per request" from the same numbers.
use std::{sync::Arc, time::Instant};

use async_trait::async_trait;

use super::{
    Backend, Loaded, RefreshToken, Refreshed, Saved, SessionData, SessionId, SessionStore, StoreError, device::Listed,
};

/// The histogram of store calls: `op` (load, save, delete, …) and `result` (hit, miss, ok,
/// conflict, too_large, error).
pub const STORE_OPERATIONS: &str = "sessionlab_store_operation_duration_seconds";

pub struct Metered {
    inner: Arc<dyn SessionStore>,
}

impl Metered {
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self { inner }
    }
}

fn record<T>(op: &'static str, started: Instant, outcome: &Result<T, StoreError>, ok: impl FnOnce(&T) -> &'static str) {
    let result = match outcome {
        Ok(value) => ok(value),
        Err(StoreError::Conflict) => "conflict",
        Err(StoreError::TooLarge { .. }) => "too_large",
        Err(StoreError::Unavailable(_)) => "error",
        Err(StoreError::Unsupported(_)) => "unsupported",
    };
    metrics::histogram!(STORE_OPERATIONS, "op" => op, "result" => result).record(started.elapsed().as_secs_f64());
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
        let started = Instant::now();
        let outcome = self.inner.load(cookie).await;
        record("load", started, &outcome, found);
        outcome
    }

    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.save(id, data, expected).await;
        record("save", started, &outcome, ok);
        outcome
    }

    async fn reload(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.reload(id).await;
        record("reload", started, &outcome, found);
        outcome
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let started = Instant::now();
        let outcome = self.inner.delete(id).await;
        record("delete", started, &outcome, ok);
        outcome
    }

    async fn end(&self, id: &SessionId, data: &SessionData) -> Result<(), StoreError> {
        let started = Instant::now();
        let outcome = self.inner.end(id, data).await;
        record("end", started, &outcome, ok);
        outcome
    }

    async fn index(&self, id: &SessionId, data: &SessionData, new: bool) -> Result<(), StoreError> {
        let started = Instant::now();
        let outcome = self.inner.index(id, data, new).await;
        record("index", started, &outcome, ok);
        outcome
    }

    async fn sessions_of(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.sessions_of(user_id).await;
        record("list", started, &outcome, ok);
        outcome
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.revoke(user_id, key).await;
        record("revoke", started, &outcome, |revoked| if *revoked { "hit" } else { "miss" });
        outcome
    }

    async fn revoke_all_but(&self, user_id: i64, keep: &str) -> Result<(), StoreError> {
        let started = Instant::now();
        let outcome = self.inner.revoke_all_but(user_id, keep).await;
        record("revoke_all", started, &outcome, ok);
        outcome
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let outcome = self.inner.ping().await;
        record("ping", started, &outcome, ok);
        outcome
    }

    fn location(&self, id: &SessionId) -> String {
        self.inner.location(id)
    }

    fn has_refresh_tokens(&self) -> bool {
        self.inner.has_refresh_tokens()
    }

    async fn issue_refresh_token(
        &self,
        id: &SessionId,
        data: &SessionData,
    ) -> Result<Option<RefreshToken>, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.issue_refresh_token(id, data).await;
        record("issue_refresh_token", started, &outcome, ok);
        outcome
    }

    async fn refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<Option<Refreshed>, StoreError> {
        let started = Instant::now();
        let outcome = self.inner.refresh(refresh_token, previous).await;
        record("refresh", started, &outcome, found);
        outcome
    }

    fn inspect_cookie(&self, cookie: &str) -> Option<serde_json::Value> {
        self.inner.inspect_cookie(cookie)
    }
}
