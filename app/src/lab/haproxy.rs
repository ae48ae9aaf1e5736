//! HAProxy, run from `docker/haproxy/haproxy.cfg`, the file compose uses too. Everything that
//! differs between the two (addresses, ports, the strategy) comes in through environment variables.
use std::{path::Path, sync::Arc};

use anyhow::Context;
use tokio::process::{Child, Command};

use super::{Logs, process, replicas::Replica};
use crate::session::Backend;

pub fn environment(
    backend: Backend,
    affinity: super::Affinity,
    ports: super::Ports,
    replicas: &[Arc<Replica>],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("SESSION_BACKEND".to_owned(), backend.to_string()),
        ("STICKY_AFFINITY".to_owned(), affinity.as_str().to_owned()),
        ("HAPROXY_BIND".to_owned(), format!("127.0.0.1:{}", ports.web)),
        ("HAPROXY_STATS_BIND".to_owned(), format!("127.0.0.1:{}", ports.stats)),
        ("HAPROXY_ADMIN_BIND".to_owned(), format!("127.0.0.1:{}", ports.admin)),
    ];
    // app1 → APP1_ADDR: the server line of that name, the spare's (app4) included.
    for replica in replicas {
        env.push((format!("{}_ADDR", replica.id.to_uppercase()), replica.address()));
    }
    env
}

/// `haproxy -c`: refuses to start the lab on a configuration HAProxy would reject.
pub async fn check(cfg: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    let out = base(cfg, env)
        .arg("-c")
        .output()
        .await
        .context("could not run haproxy: install it (apt-get install haproxy)")?;
    if !out.status.success() {
        anyhow::bail!(
            "{} is not a valid HAProxy configuration:\n{}{}",
            cfg.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub fn spawn(cfg: &Path, env: &[(String, String)], logs: Logs, dir: &Path) -> anyhow::Result<Child> {
    let mut cmd = base(cfg, env);
    cmd.arg("-db");
    process::spawn(cmd, "haproxy", logs, dir)
}

fn base(cfg: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new("haproxy");
    // Only what we set: an APP3_ADDR left in the caller's shell must not add a server.
    for var in ["APP1_ADDR", "APP2_ADDR", "APP3_ADDR", "APP4_ADDR"] {
        cmd.env_remove(var);
    }
    cmd.arg("-f").arg(cfg).envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}
