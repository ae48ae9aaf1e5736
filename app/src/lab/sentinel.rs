//! Redis past one server, for the lab and the tests: one primary, two replicas and three
//! sentinels, each a private `redis-server` (sentinels with `--sentinel`) on a free port, in a
//! directory of its own, stopped by PID.
//!
//! The replicas reach the primary through a [`Relay`] of the lab's own, so a test can cut
//! replication while the primary keeps answering: the one deterministic way to show a write that
//! the primary acknowledged and no replica ever received. (The sentinels would re-point a replica
//! that names another address than the primary's, but only after `failover-timeout`, a minute
//! here: longer than any experiment.)
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use nix::sys::signal::Signal;
use redis::aio::MultiplexedConnection;
use tokio::{
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::watch,
};

use super::process::{self, Logs};

/// The name the sentinels monitor the primary under: `redis-sentinel://…/sessionlab`.
pub const SERVICE: &str = "sessionlab";
/// How long the sentinels wait before they call an unanswering primary down.
pub const DOWN_AFTER: Duration = Duration::from_secs(1);
const READY_WITHIN: Duration = Duration::from_secs(60);

struct Server {
    name: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
}

impl Server {
    fn start(&mut self, logs: Logs) -> anyhow::Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args);
        self.child = Some(process::spawn(cmd, &self.name, logs, &self.dir)?);
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

pub struct SentinelGroup {
    logs: Logs,
    /// The primary first, as started; after a failover any of them may be the primary.
    data: Vec<Server>,
    sentinels: Vec<Server>,
    relay: Relay,
}

impl SentinelGroup {
    pub async fn start(lab_dir: &Path, logs: Logs, append_only: bool) -> anyhow::Result<Self> {
        let primary_port = process::free_port()?;
        let relay = Relay::start(primary_port).await?;
        let mut data = Vec::new();
        for n in 0..3 {
            let port = if n == 0 { primary_port } else { process::free_port()? };
            let dir = lab_dir.join(format!("redis-{n}"));
            std::fs::create_dir_all(&dir)?;
            let mut args = vec!["--port".into(), port.to_string(), "--bind".into(), "127.0.0.1".into()];
            args.extend(["--save".into(), String::new(), "--dir".into(), dir.display().to_string()]);
            args.extend(["--appendonly".into(), if append_only { "yes" } else { "no" }.into()]);
            if n > 0 {
                args.extend(["--replicaof".into(), "127.0.0.1".into(), relay.port.to_string()]);
            }
            data.push(Server { name: format!("redis-{n}"), port, dir, child: None, args });
        }
        let mut sentinels = Vec::new();
        for n in 0..3 {
            let port = process::free_port()?;
            let dir = lab_dir.join(format!("sentinel-{n}"));
            std::fs::create_dir_all(&dir)?;
            // Sentinel rewrites its configuration file as it learns the topology: one each.
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {SERVICE} {down}\n\
                     sentinel failover-timeout {SERVICE} 60000\n\
                     sentinel parallel-syncs {SERVICE} 1\n",
                    dir = dir.display(),
                    down = DOWN_AFTER.as_millis(),
                ),
            )?;
            let args = vec![conf.display().to_string(), "--sentinel".into()];
            sentinels.push(Server { name: format!("sentinel-{n}"), port, dir, child: None, args });
        }
        let mut group = Self { logs, data, sentinels, relay };
        for server in group.data.iter_mut().chain(group.sentinels.iter_mut()) {
            server.start(logs)?;
        }
        group.wait_until_formed().await.context("Redis Sentinel did not form")?;
        Ok(group)
    }

    /// What the replicas get as `REDIS_URL`.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis-sentinel://{}/{SERVICE}", sentinels.join(","))
    }

    /// The PID of every data server, the primary first as started.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.data.iter().map(Server::pid).collect()
    }

    /// The port the sentinels name as the primary now.
    pub async fn primary_port(&self) -> anyhow::Result<u16> {
        for sentinel in &self.sentinels {
            let Ok(mut conn) = connect(sentinel.port).await else { continue };
            let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(SERVICE)
                .query_async(&mut conn)
                .await
                .unwrap_or(None);
            if let Some((_, port)) = reply {
                return Ok(port);
            }
        }
        anyhow::bail!("no sentinel names a primary for {SERVICE}")
    }

    /// Kills the primary (SIGKILL, by PID: a crash, not a shutdown) and returns its port.
    pub async fn kill_primary(&mut self) -> anyhow::Result<u16> {
        let port = self.primary_port().await?;
        let server = self.data.iter_mut().find(|s| s.port == port).context("the primary is not one of ours")?;
        let mut child = server.child.take().context("the primary is not running")?;
        child.kill().await?;
        Ok(port)
    }

    /// Starts a killed data server again; the sentinels make it a replica of the new primary.
    pub fn restart(&mut self, port: u16) -> anyhow::Result<()> {
        let logs = self.logs;
        let server = self.data.iter_mut().find(|s| s.port == port).context("no such data server")?;
        if server.child.is_none() {
            server.start(logs)?;
        }
        Ok(())
    }

    /// Waits until the sentinels name another primary than `old`, and it answers as one.
    pub async fn wait_for_failover(&self, old: u16, within: Duration) -> anyhow::Result<u16> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(port) = self.primary_port().await
                && port != old
                && role(port).await.as_deref() == Some("master")
            {
                return Ok(port);
            }
            anyhow::ensure!(Instant::now() < deadline, "no failover within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every replica has everything the primary has (equal replication offsets).
    pub async fn wait_in_sync(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let primary = self.primary_port().await?;
            let wanted = offset(primary, "master_repl_offset").await;
            let mut behind = false;
            for server in self.data.iter().filter(|s| s.port != primary && s.child.is_some()) {
                behind |= wanted.is_none() || offset(server.port, "slave_repl_offset").await != wanted;
            }
            if !behind {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the replicas did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cuts the replicas off the primary they were started with: the primary keeps answering
    /// clients and sentinels, and nothing it writes from now on reaches a replica.
    pub fn cut_replication(&self) {
        self.relay.cut.send_replace(true);
    }

    /// Stops every server (SIGTERM, then SIGKILL), sentinels first so none starts a failover.
    pub async fn stop(&mut self) {
        for server in self.sentinels.iter_mut().chain(self.data.iter_mut()) {
            if let Some(mut child) = server.child.take() {
                process::terminate(&mut child, Duration::from_secs(5)).await;
            }
        }
    }

    async fn wait_until_formed(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.formed().await {
                return Ok(());
            }
            for server in self.data.iter_mut().chain(self.sentinels.iter_mut()) {
                if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    server.child = None;
                    anyhow::bail!(
                        "{} exited ({status}): {}",
                        server.name,
                        process::log_tail(&server.dir, &server.name)
                    );
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "not formed within {READY_WITHIN:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Both replicas are linked, and every sentinel knows both of them and the two other sentinels.
    async fn formed(&self) -> bool {
        for replica in &self.data[1..] {
            if info_field(replica.port, "master_link_status").await.as_deref() != Some("up") {
                return false;
            }
        }
        for sentinel in &self.sentinels {
            let Ok(mut conn) = connect(sentinel.port).await else { return false };
            for (what, wanted) in [("REPLICAS", 2), ("SENTINELS", 2)] {
                let known: Vec<redis::Value> =
                    redis::cmd("SENTINEL").arg(what).arg(SERVICE).query_async(&mut conn).await.unwrap_or_default();
                if known.len() != wanted {
                    return false;
                }
            }
        }
        true
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        // kill_on_drop ends the processes; SIGKILL them now so no sentinel outlives its primary.
        for pid in self.sentinels.iter().chain(&self.data).filter_map(Server::pid) {
            let _ = process::signal(pid, Signal::SIGKILL);
        }
    }
}

async fn connect(port: u16) -> anyhow::Result<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(1));
    Ok(redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

async fn info_field(port: u16, field: &str) -> Option<String> {
    let mut conn = connect(port).await.ok()?;
    let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.ok()?;
    info.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':')).map(|v| v.trim().to_owned())
}

async fn offset(port: u16, field: &str) -> Option<u64> {
    info_field(port, field).await?.parse().ok()
}

async fn role(port: u16) -> Option<String> {
    info_field(port, "role").await
}

/// A TCP relay from a port of its own to `target`, until it is cut: then it closes every
/// connection it carries, drops what it had not passed on, and closes every new one.
struct Relay {
    port: u16,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", process::free_port()?)).await?;
        let port = listener.local_addr()?.port();
        let (cut, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watching.borrow() {
                    continue;
                }
                let mut watching = watching.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                    // Redis sets TCP_NODELAY on its own sockets; a relay that did not would add
                    // Nagle's delay to every replication ack, and so to every WAIT.
                    let _ = inbound.set_nodelay(true).and(outbound.set_nodelay(true));
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watching.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Ok(Self { port, cut, task })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
