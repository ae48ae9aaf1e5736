//! Redis Cluster for the lab and the tests: three primaries, each with one replica, six private
//! `redis-server`s with `--cluster-enabled yes`, joined by `redis-cli --cluster create`.
//!
//! `cluster-require-full-coverage no`: while one shard has no primary, the other two keep
//! serving, so only the users whose session hashes to that shard see a 503. (Redis's default,
//! `yes`, stops the whole cluster until every slot is served again.)
use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{
    process::{self, Logs},
    redis_servers::{self, PROBE_KEY, Server, connect, replicas_confirming, role},
};

/// How long a node goes unanswered before the others call it failed and its replica takes over.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(1);
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct ClusterGroup {
    logs: Logs,
    nodes: Vec<Server>,
}

/// One line of `CLUSTER NODES`, the parts the lab needs.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    port: u16,
    primary: bool,
    failed: bool,
    /// The primary it replicates, for a replica.
    primary_id: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl ClusterGroup {
    pub async fn start(lab_dir: &Path, logs: Logs, append_only: bool) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        for n in 0..6 {
            let mut server = Server::data(format!("redis-node-{n}"), process::free_port()?, lab_dir, append_only)?;
            server.args.extend(["--cluster-enabled".into(), "yes".into()]);
            // The bus port defaults to the port + 10000, which may be in the ephemeral range
            // and taken: one of the lab's own instead.
            server.args.extend(["--cluster-port".into(), process::free_port()?.to_string()]);
            server.args.extend(["--cluster-config-file".into(), server.dir.join("nodes.conf").display().to_string()]);
            server.args.extend(["--cluster-node-timeout".into(), NODE_TIMEOUT.as_millis().to_string()]);
            server.args.extend(["--cluster-require-full-coverage".into(), "no".into()]);
            server.start(logs)?;
            nodes.push(server);
        }
        let mut group = Self { logs, nodes };
        group.wait(|g| Box::pin(g.all_answer())).await.context("the cluster nodes did not start")?;
        let mut create = tokio::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(group.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create.output().await.context("running redis-cli --cluster create: is redis-tools installed?")?;
        anyhow::ensure!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        group.wait(|g| Box::pin(g.formed())).await.context("Redis Cluster did not form")?;
        Ok(group)
    }

    /// What the replicas get as `REDIS_URL`: every node, so that any one can answer first.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    pub fn pids(&self) -> Vec<Option<u32>> {
        self.nodes.iter().map(Server::pid).collect()
    }

    /// The port of the primary that serves hash slot `slot`.
    pub async fn primary_of(&self, slot: u16) -> anyhow::Result<u16> {
        let nodes = self.topology().await?;
        let primary = nodes.iter().find(|n| n.primary && !n.failed && n.serves(slot));
        primary.map(|n| n.port).with_context(|| format!("no primary serves slot {slot}"))
    }

    /// Kills (SIGKILL) the primary that serves hash slot `slot`, and returns its port.
    pub async fn kill_primary_of(&mut self, slot: u16) -> anyhow::Result<u16> {
        let port = self.primary_of(slot).await?;
        redis_servers::kill(&mut self.nodes, port).await?;
        Ok(port)
    }

    /// Waits until a node other than `old` serves hash slot `slot` as a primary: the killed
    /// primary's replica, promoted.
    pub async fn wait_for_failover(&self, slot: u16, old: u16, within: Duration) -> anyhow::Result<u16> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(nodes) = self.topology().await
                && let Some(heir) = nodes.iter().find(|n| n.port != old && n.primary && !n.failed && n.serves(slot))
                && role(heir.port).await.as_deref() == Some("master")
            {
                return Ok(heir.port);
            }
            anyhow::ensure!(Instant::now() < deadline, "no failover within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts a killed node again: it rejoins as a replica of the primary that replaced it.
    pub fn restart(&mut self, port: u16) -> anyhow::Result<()> {
        redis_servers::restart(&mut self.nodes, self.logs, port)
    }

    /// Waits until every running replica has everything its primary has.
    pub async fn wait_in_sync(&mut self) -> anyhow::Result<()> {
        self.wait(|g| Box::pin(g.in_sync())).await
    }

    pub async fn stop(&mut self) {
        for server in &mut self.nodes {
            server.stop().await;
        }
    }

    async fn wait<F>(&mut self, done: F) -> anyhow::Result<()>
    where
        F: for<'a> Fn(&'a Self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + 'a>>,
    {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if done(self).await {
                return Ok(());
            }
            for server in self.nodes.iter_mut() {
                server.exited()?;
            }
            anyhow::ensure!(Instant::now() < deadline, "not within {READY_WITHIN:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn all_answer(&self) -> bool {
        for node in &self.nodes {
            if connect(node.port).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Every node knows all six and calls the cluster ok, and every replica has caught up.
    async fn formed(&self) -> bool {
        for node in &self.nodes {
            let Ok(mut conn) = connect(node.port).await else { return false };
            let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.unwrap_or_default();
            if !info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:6") {
                return false;
            }
        }
        // Every node may call the cluster ok before the replicas have attached to their primaries.
        let Ok(nodes) = self.topology().await else { return false };
        let (primaries, replicas): (Vec<&Node>, Vec<&Node>) = nodes.iter().partition(|n| n.primary);
        primaries.len() == 3 && replicas.len() == 3 && self.in_sync().await
    }

    async fn in_sync(&self) -> bool {
        let Ok(nodes) = self.topology().await else { return false };
        let running = |port: u16| self.nodes.iter().any(|s| s.port == port && s.child.is_some());
        for primary in nodes.iter().filter(|n| n.primary && !n.failed) {
            let replicas =
                nodes.iter().filter(|n| n.primary_id.as_ref() == Some(&primary.id) && running(n.port)).count();
            let Some(key) = primary.slots.first().map(|(slot, _)| key_in_slot(*slot)) else { return false };
            if replicas_confirming(primary.port, &key, replicas).await < replicas {
                return false;
            }
        }
        true
    }

    /// `CLUSTER NODES`, as the first node that answers sees it.
    async fn topology(&self) -> anyhow::Result<Vec<Node>> {
        for server in self.nodes.iter().filter(|s| s.child.is_some()) {
            let Ok(mut conn) = connect(server.port).await else { continue };
            let Ok(text) = redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut conn).await else { continue };
            return Ok(text.lines().filter_map(parse_node).collect());
        }
        anyhow::bail!("no cluster node answers")
    }
}

impl Drop for ClusterGroup {
    fn drop(&mut self) {
        for server in &self.nodes {
            server.kill_now();
        }
    }
}

/// A lab key (`sessionlab:lab:probe:{n}`) that hashes to slot `slot`.
fn key_in_slot(slot: u16) -> String {
    (0u32..)
        .map(|n| format!("{PROBE_KEY}:{{{n}}}"))
        .find(|key| crate::session::redis_client::hash_slot(key) == slot)
        .expect("every slot has a key")
}

impl Node {
    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(first, last)| (*first..=*last).contains(&slot))
    }
}

/// `<id> <ip:port@cport> <flags> <primary> <ping> <pong> <epoch> <link> <slot> <slot>…`
fn parse_node(line: &str) -> Option<Node> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
    let flags = fields.get(2)?;
    let slots = fields
        .iter()
        .skip(8)
        .filter(|s| !s.starts_with('['))
        .filter_map(|range| match range.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => range.parse().ok().map(|slot| (slot, slot)),
        })
        .collect();
    Some(Node {
        id: fields[0].to_owned(),
        port,
        primary: flags.contains("master"),
        failed: flags.contains("fail"),
        primary_id: Some(fields.get(3)?.to_string()).filter(|id| *id != "-"),
        slots,
    })
}
