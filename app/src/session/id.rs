use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// A session's secret identifier: 256 random bits, base64url. Whoever holds it *is* the session,
/// so it never prints (`Debug` is redacted) and stores only ever see its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

const ENCODED_LEN: usize = 43;

impl SessionId {
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
    }

    /// Accepts only what [`SessionId::generate`] could have produced, so garbage cookies are
    /// rejected before they cost a store round trip.
    pub fn parse(raw: &str) -> Option<Self> {
        let well_formed =
            raw.len() == ENCODED_LEN && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the ID: the name under which server-side stores keep the state, so a dump
    /// of the store does not hand out live cookies.
    pub fn storage_key(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// A short, non-secret label for humans (the inspector page, logs of tests).
    pub fn fingerprint(&self) -> String {
        self.storage_key()[..12].to_owned()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_garbage_does_not() {
        let id = SessionId::generate();
        assert_eq!(SessionId::parse(id.expose()), Some(id.clone()));
        for bad in ["", "short", &"a".repeat(44), &format!("{}=", &id.expose()[..42]), "ä"] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_and_storage_key_never_contain_the_id() {
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(id.expose()));
        assert!(!id.storage_key().contains(id.expose()));
        assert_eq!(id.storage_key().len(), 64);
    }
}
