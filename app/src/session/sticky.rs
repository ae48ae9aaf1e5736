//! `sticky`: the session lives in the memory of the replica that created it, and HAProxy sends
//! every request of that client back to the same replica. The store is `memory`'s
//! ([`MemoryStore`]); what turns the broken `memory` strategy into a working one is one line of
//! `docker/haproxy/haproxy.cfg`:
//!
//! ```text
//! cookie SERVERID insert indirect nocache httponly attr "SameSite=Lax"
//! ```
//!
//! HAProxy names the server that answered in a cookie of its own and sends the client back to
//! that server while it is up. (The article's other way to pin a client is by its address.)
//!
//! "Your devices" needs more than this replica's memory: a user's sessions may sit on all three
//! replicas, and a revocation issued on one must reach a session held by another. So by default
//! the store runs inside the [`Revocable`](super::revocable::Revocable) layer: logged-in sessions
//! are listed in the app database and every logged-in request is checked against the revocation
//! list. That is one round trip per request; `SESSION_REVOCATION=off` runs the pure strategy,
//! which has none (and no "your devices").
//!
//! # Limitations
//! - A replica that dies takes its sessions with it: its clients are logged out and lose their
//!   carts, while everybody else keeps theirs. The lab exists to show exactly that.
//! - Load is only as balanced as the clients: one busy client stays on one replica.
//! - Scaling down, rolling deploys and restarts all log people out.
//! - Memory grows with sessions; expired ones are swept at most once a minute, on a write.
pub use super::memory::MemoryStore;

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Your session lives only in the memory of the replica HAProxy pins you to. Kill that replica and the session dies with it: you are logged out and your cart is gone. Kill another one and nothing happens to you.",
    store_restarted: "There is no session store to restart: the replicas are the store.",
    not_found: "Only the replica HAProxy pinned you to has your session, in its memory. If that replica was killed or restarted, the session died with it, and HAProxy moved you to one that never knew you. (A session also ends when it times out or is logged out from another device.)",
};
