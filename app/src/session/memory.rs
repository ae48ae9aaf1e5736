//! `memory`: every replica keeps its sessions in its own memory, and HAProxy sends each request
//! to the next replica in turn (plain round robin, no affinity). This is what a web framework does
//! out of the box, and it is correct on one server. It is here to show the bug the whole project
//! is about: log in on app1, and the next request goes to app2, which has never heard of you.
//!
//! The cookie carries a random session ID; the replica that created the session keeps its JSON
//! state in a map keyed by the ID's hash, with a sliding idle expiry renewed on every read (in
//! memory, so that costs nothing). The other replicas look the ID up in *their* maps, find
//! nothing, and treat the request as a guest's: with three replicas, about two requests in three.
//!
//! `sticky` (in `sticky.rs`) is this same store plus one line of HAProxy configuration that sends
//! each client back to the replica holding its session.
//!
//! A user's sessions may sit in three replicas' memories, and a revocation issued on one replica
//! must reach a session held by another: by default the store runs inside the
//! [`Revocable`](super::revocable::Revocable) layer, which lists logged-in sessions in the app
//! database and checks each logged-in request against a revocation list, as with `sticky`.
//!
//! # Limitations
//! - Behind a load balancer without affinity it does not work: each replica sees you logged in
//!   only if it served your log-in, and a cart filled on one replica is empty on the others.
//!   Worse, a write on a replica that does not know you starts a new session there and moves
//!   your cookie to it, so what you had on the first one is orphaned.
//! - A replica that stops takes its sessions with it; so do deploys and restarts.
//! - Memory grows with sessions; expired ones are swept at most once a minute, on a write.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{Backend, Describe, Loaded, Saved, SessionData, SessionId, SessionStore, StoreError};

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Your session lives only in the memory of the replica that created it, and you already reach that one only one time in three. Kill it and the session is gone for good; kill another one and nothing changes.",
    store_restarted: "There is no session store to restart: each replica is its own store, and none of them shares.",
    not_found: "Each replica keeps its own sessions in its own memory, and HAProxy sends every request to the next replica in turn. Your session is in the memory of the replica that created it; this one has never seen it, so it sees a guest. About one request in three reaches the replica that has it.",
};

const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct MemoryStore {
    /// `memory` or `sticky`: the same store, with or without affinity in front of it.
    backend: Backend,
    ttl: Duration,
    state: Mutex<State>,
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
    pub fn new(backend: Backend, ttl: Duration) -> Self {
        Self { backend, ttl, state: Mutex::new(State { sessions: HashMap::new(), last_sweep: Instant::now() }) }
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
        self.backend
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(None);
        };
        let key = id.storage_key();
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
        Ok(SessionData::from_json(&entry.json).map(|data| Loaded {
            id,
            data,
            state_bytes,
            ttl: self.ttl,
            refresh_due: false,
            version: Some(version),
        }))
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

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Describe for MemoryStore {
    fn location(&self, _id: &SessionId) -> String {
        match self.backend {
            Backend::Sticky => "this replica's memory (a HashMap keyed by the session ID's SHA-256)".into(),
            _ => "this replica's memory and no other's (a HashMap keyed by the session ID's SHA-256)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_saved_session_loads_until_it_idles_out() {
        let store = MemoryStore::new(Backend::Memory, Duration::from_millis(50));
        let id = SessionId::generate();
        store.save(&id, &SessionData::default(), None).await.unwrap();
        assert!(store.load(id.expose()).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(store.load(id.expose()).await.unwrap().is_none());
        assert!(store.is_empty(), "an expired session is dropped when found");
    }
}
