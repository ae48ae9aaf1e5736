use serde::{Deserialize, Serialize};

use crate::cart::Cart;

/// How many replica visits the inspector remembers.
const VISITS_KEPT: usize = 10;

/// Everything a session holds. Every strategy stores exactly this, serialized as JSON, so their
/// sizes compare fairly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SessionUser>,
    #[serde(default, skip_serializing_if = "Cart::is_empty")]
    pub cart: Cart,
    /// Unix seconds when the session began (or its user logged in): the absolute timeout counts
    /// from here. 0 for state written before this field existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_at: i64,
    /// Replicas that served the inspector for this session, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visits: Vec<Visit>,
    /// Where a logged-in session is used, for "your devices".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<super::device::Device>,
    /// The answers to the last requests that carried an `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<super::idempotency::Replay>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub replica: String,
    /// Unix seconds.
    pub at: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl SessionData {
    /// A new session's state, starting its absolute lifetime now.
    pub fn new() -> Self {
        Self { created_at: unix_now(), ..Self::default() }
    }

    /// Whether the session is older than `absolute` (never, for state without a start time).
    pub fn outlived(&self, absolute: std::time::Duration) -> bool {
        self.created_at > 0 && unix_now() - self.created_at > absolute.as_secs() as i64
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("session data is plain JSON")
    }

    /// `None` for bytes that are not a session: stores treat that as "no session", never a panic.
    pub fn from_json(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    pub fn record_visit(&mut self, replica: &str, at: i64) {
        self.visits.push(Visit { replica: replica.to_owned(), at });
        let excess = self.visits.len().saturating_sub(VISITS_KEPT);
        self.visits.drain(..excess);
    }
}

/// Seconds since the Unix epoch, the unit every strategy stores times in.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
