//! Per-installation secrets: `sessionlab secrets DIR` writes a SESSION_KEY, JWT_KEYS and an
//! ADMIN_TOKEN into DIR, once. Compose runs it as a one-shot service before the replicas start,
//! and the replicas read the files through `*_FILE` variables, so a fresh `docker compose up`
//! never runs with a secret anybody else knows. Files that exist are kept: the keys outlive
//! restarts and rebuilds, and sessions with them.
use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use anyhow::Context;

/// 64 random bytes, hex: a SESSION_KEY, or the secret half of a JWT key.
pub fn random_key() -> String {
    hex::encode(rand::random::<[u8; 64]>())
}

/// The files and what goes in each.
fn wanted() -> [(&'static str, String); 3] {
    [
        ("session_key", random_key()),
        ("jwt_keys", format!("k1:{}", random_key())),
        ("admin_token", format!("admin-{}", &random_key()[..32])),
    ]
}

/// Creates each missing file (mode 0600) and returns the names of those it created. A file is
/// written under a temporary name and renamed, so a replica never reads half a key.
pub fn ensure(dir: &Path) -> anyhow::Result<Vec<&'static str>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut created = Vec::new();
    for (name, value) in wanted() {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(value.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        created.push(name);
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_what_is_missing_and_keeps_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ensure(dir.path()).unwrap(), ["session_key", "jwt_keys", "admin_token"]);
        let key = fs::read_to_string(dir.path().join("session_key")).unwrap();
        assert!(key.len() >= 64, "SESSION_KEY needs 64 bytes");
        fs::remove_file(dir.path().join("admin_token")).unwrap();
        assert_eq!(ensure(dir.path()).unwrap(), ["admin_token"]);
        assert_eq!(fs::read_to_string(dir.path().join("session_key")).unwrap(), key, "kept across runs");
        let mode = fs::metadata(dir.path().join("jwt_keys")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }

    #[test]
    fn generated_secrets_are_accepted_by_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path()).unwrap();
        let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        let vars = [
            ("REPLICA_ID", "app1".to_owned()),
            ("SESSION_BACKEND", "jwt".to_owned()),
            ("SESSION_KEY_FILE", file("session_key")),
            ("JWT_KEYS_FILE", file("jwt_keys")),
            ("ADMIN_TOKEN_FILE", file("admin_token")),
        ];
        let settings =
            crate::config::Settings::from_lookup(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()))
                .unwrap();
        assert!(settings.admin_token.is_some() && settings.jwt_keys.is_some());
        crate::session::jwt::parse_keys(settings.jwt_keys.unwrap().expose()).unwrap();
    }
}
