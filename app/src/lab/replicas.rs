//! The replicas: `sessionlab serve` processes, and the supervisor that restarts a dead one.
use std::{net::Ipv4Addr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{
    process::{Child, Command},
    sync::watch,
};

use super::{
    LabConfig, Shared,
    netns::Netns,
    process::{self, Logs},
    state::ProcessState,
};

/// How long a replica may take to answer /healthz after it starts (migrations, demo users).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause before a dead replica is started again (compose's restart policy is about this).
const RESTART_DELAY: Duration = Duration::from_secs(1);

pub struct Replica {
    pub id: String,
    pub port: u16,
    /// Where it listens: 127.0.0.1, or its namespace's address.
    addr: Ipv4Addr,
    /// The network namespace it runs in, if it has one of its own.
    netns: Option<Arc<Netns>>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    logs: Logs,
    dir: PathBuf,
}

impl Replica {
    pub fn new(id: String, port: u16, config: &LabConfig, env: &[(String, String)], dir: &std::path::Path) -> Self {
        let mut env = env.to_vec();
        env.push(("REPLICA_ID".into(), id.clone()));
        env.push(("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")));
        // The replicas share this machine's cores: one worker each, unless you say otherwise.
        // Each replica plays a small server of its own; one worker per core in every replica
        // would run several times more threads than cores, beside HAProxy and the store.
        if std::env::var_os("HTTP_WORKERS").is_none() {
            env.push(("HTTP_WORKERS".into(), "1".into()));
        }
        let (binary, logs, dir) = (config.binary.clone(), config.logs, dir.to_owned());
        Self { id, port, addr: Ipv4Addr::LOCALHOST, netns: None, binary, env, logs, dir }
    }

    /// Runs it in `netns` instead, listening on the namespace's address, with `env` (the
    /// relays' addresses) replacing what named 127.0.0.1.
    pub fn isolated(mut self, netns: Arc<Netns>, env: Vec<(String, String)>) -> Self {
        self.addr = netns.inside();
        self.env.retain(|(name, _)| name != "LISTEN_ADDR" && !env.iter().any(|(n, _)| n == name));
        self.env.push(("LISTEN_ADDR".into(), format!("{}:{}", self.addr, self.port)));
        self.env.extend(env);
        self.netns = Some(netns);
        self
    }

    /// `address:port`, as HAProxy reaches it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address())
    }

    pub fn spawn(&self) -> anyhow::Result<Child> {
        let mut cmd = match &self.netns {
            Some(netns) => netns.command(&self.binary),
            None => Command::new(&self.binary),
        };
        cmd.arg("serve").envs(self.env.iter().map(|(k, v)| (k, v)));
        process::spawn(cmd, &self.id, self.logs, &self.dir)
    }

    pub async fn wait_ready(&self, child: &mut Child) -> anyhow::Result<()> {
        process::wait_http_ok(&format!("{}/healthz", self.url()), Some(child), READY_TIMEOUT)
            .await
            .with_context(|| format!("replica {} did not start: {}", self.id, process::log_tail(&self.dir, &self.id)))
    }

    pub fn state(&self, pid: Option<u32>) -> ProcessState {
        ProcessState { id: self.id.clone(), pid, url: self.url() }
    }
}

/// Watches one replica until the lab shuts down; restarts it when it dies, if asked to.
pub async fn supervise(
    replica: Arc<Replica>,
    mut child: Child,
    restart: bool,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let exited = tokio::select! {
            status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
            () = stopped(&mut stop) => {
                process::terminate(&mut child, Duration::from_secs(10)).await;
                return;
            }
        };
        tracing::warn!(replica = %replica.id, status = %exited, "replica exited");
        set_pid(&shared, &replica, None);
        if !restart {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(RESTART_DELAY) => {}
            () = stopped(&mut stop) => return,
        }
        match replica.spawn() {
            Ok(new_child) => {
                child = new_child;
                set_pid(&shared, &replica, child.id());
                tracing::info!(replica = %replica.id, pid = ?child.id(), "replica restarted");
            }
            Err(err) => {
                tracing::error!(replica = %replica.id, error = %err, "could not restart the replica");
                return;
            }
        }
    }
}

/// Resolves once the lab shuts down.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the lab is gone: that is a stop too.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

fn set_pid(shared: &Shared, replica: &Replica, pid: Option<u32>) {
    shared.update(|s| {
        if let Some(r) = s.replicas.iter_mut().find(|r| r.id == replica.id) {
            r.pid = pid;
        }
    });
}
