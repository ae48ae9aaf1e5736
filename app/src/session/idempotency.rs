//! Safe retries: a request that changes the session may carry an `Idempotency-Key` (the IETF
//! httpapi draft's header). The key and the answer the change produced are stored *in the
//! session*, by the same compare-and-set that applies the change, so a repeat of the request —
//! a client's retry, HAProxy's retry on another replica after a crash — gets the first answer
//! and changes nothing. The same key with a different request is refused (422).
//!
//! Only strategies that keep the session on the server honour keys: a retry of a `cookie` or
//! `jwt` request carries the old state (the client never got the new one), so no record in it
//! could stop the change being applied again. There, keys are ignored, and HAProxy does not
//! retry their `POST`s.
use serde::{Deserialize, Serialize};

use super::{Backend, SessionData};

/// Request header carrying the key.
pub const HEADER: &str = "Idempotency-Key";
/// How many answers a session remembers: enough for a client's retries, small enough to keep
/// the session small.
const KEPT: usize = 8;
const MAX_LEN: usize = 255;

/// A client's key for one change, as sent (the draft's structured-field string, `"…"`, or the
/// bare token many clients send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the Idempotency-Key header must be 1 to 255 printable ASCII characters, without quotes or backslashes inside"
    )]
    Malformed,
    #[error("this Idempotency-Key was already used for a different request")]
    Reused,
}

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let value = value.trim();
        let inner = match value.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"').ok_or(KeyError::Malformed)?,
            None => value,
        };
        let printable = inner.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if inner.is_empty() || inner.len() > MAX_LEN || !printable {
            return Err(KeyError::Malformed);
        }
        Ok(Self(inner.to_owned()))
    }

    /// A fresh key, for the forms a page renders.
    pub fn generate() -> Self {
        Self(hex::encode(rand::random::<[u8; 16]>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    key: String,
    /// What the request asked for ("add 4 1"): the same key for another request is refused.
    request: String,
    answer: serde_json::Value,
}

/// Whether a strategy can honour keys: its state lives on the server, where a replay finds it
/// (`memory` is left out: the replay goes to a replica that never saw the first try).
pub fn honoured_by(backend: Backend) -> bool {
    matches!(backend, Backend::Sticky | Backend::Redis | Backend::Memcached | Backend::Postgres | Backend::Mysql)
}

impl SessionData {
    /// The answer recorded for `key`: `Some(Ok)` to replay, `Some(Err)` if it answered another
    /// request, `None` if the key is new.
    pub fn replay(&self, key: &IdempotencyKey, request: &str) -> Option<Result<serde_json::Value, KeyError>> {
        let found = self.replies.iter().find(|r| r.key == key.0)?;
        Some(if found.request == request { Ok(found.answer.clone()) } else { Err(KeyError::Reused) })
    }

    pub fn remember(&mut self, key: &IdempotencyKey, request: &str, answer: serde_json::Value) {
        self.replies.push(Replay { key: key.0.clone(), request: request.to_owned(), answer });
        let excess = self.replies.len().saturating_sub(KEPT);
        self.replies.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_structured_strings_or_bare_tokens() {
        assert_eq!(IdempotencyKey::parse("\"8e03978e-40d5\"").unwrap().as_str(), "8e03978e-40d5");
        assert_eq!(IdempotencyKey::parse("abc").unwrap().as_str(), "abc");
        for bad in ["", "\"\"", "\"open", "a\"b", "a\\b", "tab\there", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_session_replays_the_first_answer_and_refuses_another_request() {
        let mut data = SessionData::new();
        let key = IdempotencyKey::parse("k1").unwrap();
        assert!(data.replay(&key, "add 1 1").is_none());
        data.remember(&key, "add 1 1", serde_json::json!({"n": 1}));
        assert_eq!(data.replay(&key, "add 1 1").unwrap().unwrap(), serde_json::json!({"n": 1}));
        assert!(matches!(data.replay(&key, "add 2 1"), Some(Err(KeyError::Reused))));
        for n in 0..KEPT {
            data.remember(&IdempotencyKey::parse(&format!("other{n}")).unwrap(), "x", serde_json::json!(n));
        }
        assert!(data.replay(&key, "add 1 1").is_none(), "the oldest answer is forgotten");
        assert_eq!(data.replies.len(), KEPT);
    }
}
