//! The state file: what runs where, for tools that drive the lab from outside.
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LabState {
    pub backend: String,
    pub url: String,
    /// What unlocks the dashboard's buttons: kept here, so it is not lost once the log scrolls.
    /// The file is readable by its owner only.
    #[serde(default)]
    pub admin_token: String,
    pub haproxy: HaproxyState,
    pub replicas: Vec<ProcessState>,
    pub stores: Vec<StoreState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HaproxyState {
    pub pid: Option<u32>,
    pub stats_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessState {
    pub id: String,
    /// `None` while the replica is down (between a crash and its restart).
    pub pid: Option<u32>,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoreState {
    pub kind: String,
    pub pid: Option<u32>,
    pub url: String,
    /// What it keeps across a restart (`None`: a store the lab did not start).
    #[serde(default)]
    pub persistence: Option<String>,
}

impl LabState {
    /// Writes through a temporary file and a rename, so a reader never sees half a file.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(file.write(true).create(true).truncate(true), 0o600);
        std::io::Write::write_all(&mut file.open(&tmp)?, &serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, path)
    }
}
