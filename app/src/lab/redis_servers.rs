//! The private `redis-server` processes behind the lab's Sentinel and Cluster topologies, and
//! the few questions the lab asks them.
use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use tokio::process::{Child, Command};

use super::process::{self, Logs};

/// The key the lab writes to check its replicas; lab-only, expiring.
pub const PROBE_KEY: &str = "sessionlab:lab:probe";

/// One `redis-server` of a group: started again with the same arguments after a kill.
pub struct Server {
    pub name: String,
    pub port: u16,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub args: Vec<String>,
}

impl Server {
    pub fn start(&mut self, logs: Logs) -> anyhow::Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args);
        self.child = Some(process::spawn(cmd, &self.name, logs, &self.dir)?);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

pub async fn connect(port: u16) -> anyhow::Result<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(1));
    Ok(redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

pub async fn info_field(port: u16, field: &str) -> Option<String> {
    let mut conn = connect(port).await.ok()?;
    let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.ok()?;
    info.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':')).map(|v| v.trim().to_owned())
}

pub async fn role(port: u16) -> Option<String> {
    info_field(port, "role").await
}

impl Server {
    /// A data server on `port`, in `<lab_dir>/<name>`, with its append-only file or nothing on disk.
    pub fn data(name: String, port: u16, lab_dir: &std::path::Path, append_only: bool) -> anyhow::Result<Self> {
        let dir = lab_dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let mut args = vec!["--port".into(), port.to_string(), "--bind".into(), "127.0.0.1".into()];
        args.extend(["--save".into(), String::new(), "--dir".into(), dir.display().to_string()]);
        args.extend(["--appendonly".into(), if append_only { "yes" } else { "no" }.into()]);
        Ok(Self { name, port, dir, child: None, args })
    }

    /// An error naming the server and its log's last lines, if it has exited.
    pub fn exited(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            self.child = None;
            anyhow::bail!("{} exited ({status}): {}", self.name, process::log_tail(&self.dir, &self.name));
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after five seconds.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, Duration::from_secs(5)).await;
        }
    }

    /// SIGKILL, at once: for `Drop`, so that no server outlives its lab.
    pub fn kill_now(&self) {
        if let Some(pid) = self.pid() {
            let _ = process::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// How many replicas of the primary on `port` confirm a write of `key` within 100 ms (`WAIT`),
/// up to `wanted`: whether they are attached and caught up as `REDIS_WAIT_REPLICAS` will need
/// them. (Their offsets in `INFO` can agree before a replica that has just synced accepts the
/// stream.) In a cluster, `key` must hash to a slot of that primary.
pub async fn replicas_confirming(port: u16, key: &str, wanted: usize) -> usize {
    let Ok(mut conn) = connect(port).await else { return 0 };
    let probe = redis::cmd("SET").arg(key).arg(1).arg("EX").arg(60).to_owned();
    if probe.query_async::<()>(&mut conn).await.is_err() {
        return 0;
    }
    redis::cmd("WAIT").arg(wanted).arg(100).query_async(&mut conn).await.unwrap_or(0)
}

/// Kills the server on `port` at once (SIGKILL, by PID: a crash, not a shutdown).
pub async fn kill(servers: &mut [Server], port: u16) -> anyhow::Result<()> {
    let server = servers.iter_mut().find(|s| s.port == port).context("the server is not one of the lab's")?;
    let mut child = server.child.take().context("the server is not running")?;
    Ok(child.kill().await?)
}

/// Starts the server on `port` again, with the arguments it first had.
pub fn restart(servers: &mut [Server], logs: Logs, port: u16) -> anyhow::Result<()> {
    let server = servers.iter_mut().find(|s| s.port == port).context("the server is not one of the lab's")?;
    if server.child.is_none() {
        server.start(logs)?;
    }
    Ok(())
}
