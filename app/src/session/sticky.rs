//! `sticky`: the session lives in the memory of the replica that created it, and HAProxy sends
//! every request of that client back to the same replica (it inserts a `SERVERID` cookie naming
//! the server; see `docker/haproxy/haproxy.cfg`).
//!
//! The cookie carries a random session ID; this process keeps the JSON state in a map keyed by the
//! ID's hash, with a sliding idle expiry renewed on every read (in memory, so that costs nothing).
//!
//! "Your devices" needs more than this replica's memory: a user's sessions may sit on all three
//! replicas, and a revocation issued on one must reach a session held by another. So logged-in
//! sessions are also registered in the app database ([`Ledger`]) and every logged-in request is
//! checked against the revocation list: one round trip that the pure strategy does not have.
//!
//! # Limitations
//! - A replica that dies takes its sessions with it: its clients are logged out and lose their
//!   carts, while everybody else keeps theirs. The lab exists to show exactly that.
//! - Load is only as balanced as the clients: one busy client stays on one replica.
//! - Scaling down, rolling deploys and restarts all log people out.
//! - Memory grows with sessions; expired ones are swept at most once a minute, on a write.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{
    Backend, Loaded, Saved, SessionData, SessionId, SessionStore, StoreError, device::Listed, registry::Ledger,
};

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Your session lives only in the memory of the replica HAProxy pins you to. Kill that replica and the session dies with it: you are logged out and your cart is gone. Kill another one and nothing happens to you.",
    store_restarted: "There is no session store to restart: the replicas are the store.",
};

const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct MemoryStore {
    ttl: Duration,
    state: Mutex<State>,
    /// Absent only for a store used on its own (unit tests): then nothing is listed or revoked
    /// beyond this process.
    ledger: Option<Ledger>,
}

struct State {
    sessions: HashMap<String, Entry>,
    last_sweep: Instant,
}

struct Entry {
    json: Vec<u8>,
    version: u64,
    expires: Instant,
}

impl MemoryStore {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, state: Mutex::new(State { sessions: HashMap::new(), last_sweep: Instant::now() }), ledger: None }
    }

    pub fn with_ledger(self, ledger: Ledger) -> Self {
        Self { ledger: Some(ledger), ..self }
    }

    fn ledger(&self) -> Result<&Ledger, StoreError> {
        self.ledger.as_ref().ok_or_else(|| StoreError::unavailable(anyhow::anyhow!("no session registry configured")))
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave a half-written entry behind, so the data
        // is still sound: keep serving rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Sticky
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(None);
        };
        let key = id.storage_key();
        let found = {
            let now = Instant::now();
            let mut state = self.lock();
            let Some(entry) = state.sessions.get_mut(&key) else {
                return Ok(None);
            };
            if entry.expires <= now {
                state.sessions.remove(&key);
                return Ok(None);
            }
            entry.expires = now + self.ttl;
            let (state_bytes, version) = (entry.json.len(), entry.version);
            SessionData::from_json(&entry.json).map(|data| Loaded {
                id,
                data,
                state_bytes,
                ttl: self.ttl,
                refresh_due: false,
                version: Some(version),
            })
        };
        // A logged-in session may have been revoked from another replica.
        if let (Some(loaded), Some(ledger)) = (&found, &self.ledger)
            && loaded.data.user.is_some()
            && ledger.is_revoked(&key).await?
        {
            self.lock().sessions.remove(&key);
            return Ok(None);
        }
        Ok(found)
    }

    /// Compare-and-set under the map's lock: the write of a request that read an older version
    /// is refused, so two requests of one session on two worker threads cannot lose an update.
    async fn save(&self, id: &SessionId, data: &SessionData, expected: Option<u64>) -> Result<Saved, StoreError> {
        let json = data.to_json();
        let state_bytes = json.len();
        let now = Instant::now();
        let mut state = self.lock();
        if now.duration_since(state.last_sweep) >= SWEEP_EVERY {
            state.sessions.retain(|_, entry| entry.expires > now);
            state.last_sweep = now;
        }
        let key = id.storage_key();
        let current = state.sessions.get(&key).filter(|e| e.expires > now).map(|e| e.version);
        if current != expected {
            return Err(StoreError::Conflict);
        }
        let version = expected.map_or(1, |v| v + 1);
        state.sessions.insert(key, Entry { json, version, expires: now + self.ttl });
        Ok(Saved { cookie: id.expose().to_owned(), state_bytes, ttl: self.ttl, version: Some(version) })
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.lock().sessions.remove(&id.storage_key());
        Ok(())
    }

    async fn index(&self, id: &SessionId, data: &SessionData, new: bool) -> Result<(), StoreError> {
        self.ledger()?.index(&id.storage_key(), data, new).await
    }

    async fn sessions_of(&self, user_id: i64) -> Result<Vec<Listed>, StoreError> {
        self.ledger()?.registry.list(user_id).await
    }

    async fn revoke(&self, user_id: i64, key: &str) -> Result<bool, StoreError> {
        let revoked = self.ledger()?.revoke(user_id, key).await?;
        if revoked {
            self.lock().sessions.remove(key);
        }
        Ok(revoked)
    }

    /// Logged-in requests need the revocation list: it is this strategy's only dependency.
    async fn ping(&self) -> Result<(), StoreError> {
        match &self.ledger {
            Some(ledger) => ledger.revocations.ping().await,
            None => Ok(()),
        }
    }

    fn location(&self, _id: &SessionId) -> String {
        "this replica's memory (a HashMap keyed by the session ID's SHA-256)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_saved_session_loads_until_it_idles_out() {
        let store = MemoryStore::new(Duration::from_millis(50));
        let id = SessionId::generate();
        store.save(&id, &SessionData::default(), None).await.unwrap();
        assert!(store.load(id.expose()).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(store.load(id.expose()).await.unwrap().is_none());
        assert!(store.is_empty(), "an expired session is dropped when found");
    }
}
