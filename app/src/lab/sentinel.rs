//! Redis past one server, for the lab and the tests: one primary, two replicas and three
//! sentinels, each a private `redis-server` (sentinels with `--sentinel`) on a free port, in a
//! directory of its own, stopped by PID.
//!
//! The replicas reach the primary through a [`Relay`] of the lab's own, so a test can cut
//! replication while the primary keeps answering: the one deterministic way to show a write that
//! the primary acknowledged and no replica ever received. (The sentinels would re-point a replica
//! that names another address than the primary's, but only after `failover-timeout`, a minute
//! here: longer than any experiment.)
//!
//! The replicas and the sentinels also listen on 127.0.0.2 and open their own connections from
//! there (`bind-source-addr`), while clients come from 127.0.0.1. That lets a test cut the
//! primary off from its replicas and sentinels, and from them only ([`SentinelGroup::
//! partition_primary`], a firewall rule on those two addresses and the primary's ports): a
//! client that still reaches the old primary keeps writing to it while the sentinels promote
//! another. (Redis 7.0's protected mode counts a connection from 127.0.0.2 as remote, so it is
//! off: every server listens on loopback addresses only.)
use std::{
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{
    process::{self, Logs},
    redis_servers::{self, PROBE_KEY, Server, connect, replicas_confirming, role},
    relay::Relay,
};

/// The name the sentinels monitor the primary under: `redis-sentinel://…/sessionlab`.
pub const SERVICE: &str = "sessionlab";
/// How long the sentinels wait before they call an unanswering primary down.
pub const DOWN_AFTER: Duration = Duration::from_secs(1);
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct SentinelGroup {
    logs: Logs,
    /// The primary first, as started; after a failover any of them may be the primary.
    data: Vec<Server>,
    sentinels: Vec<Server>,
    relay: Relay,
    /// The nftables table of [`SentinelGroup::partition_primary`], while it is in place.
    partition: Option<String>,
}

/// Where the replicas and sentinels listen besides 127.0.0.1, and connect from.
const PEERS: &str = "127.0.0.2";

impl SentinelGroup {
    pub async fn start(lab_dir: &Path, logs: Logs, append_only: bool) -> anyhow::Result<Self> {
        let primary_port = process::free_port()?;
        let relay = Relay::start(Ipv4Addr::LOCALHOST, primary_port).await?;
        let mut data = Vec::new();
        for n in 0..3 {
            let port = if n == 0 { primary_port } else { process::free_port()? };
            let mut server = Server::data(format!("redis-{n}"), port, lab_dir, append_only)?;
            server.args.extend(["--protected-mode".into(), "no".into()]);
            if n > 0 {
                server.args.extend(["--bind".into(), "127.0.0.1".into(), PEERS.into()]);
                server.args.extend(["--bind-source-addr".into(), PEERS.into()]);
                // One address for each replica in the sentinels' tables, whichever it connected from.
                server.args.extend(["--replica-announce-ip".into(), "127.0.0.1".into()]);
                server.args.extend(["--replicaof".into(), "127.0.0.1".into(), relay.port().to_string()]);
            }
            data.push(server);
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
                    "port {port}\nbind 127.0.0.1 {PEERS}\nbind-source-addr {PEERS}\nprotected-mode no\ndir {dir}\n\
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
        let mut group = Self { logs, data, sentinels, relay, partition: None };
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
        redis_servers::kill(&mut self.data, port).await?;
        Ok(port)
    }

    /// Starts a killed data server again; the sentinels make it a replica of the new primary.
    pub fn restart(&mut self, port: u16) -> anyhow::Result<()> {
        redis_servers::restart(&mut self.data, self.logs, port)
    }

    /// Waits until the failover away from `old` has ended: every sentinel's table of primaries
    /// (`SENTINEL MASTER`, which clients such as the redis crate read) names the new one, and it
    /// answers as one.
    ///
    /// Not just `GET-MASTER-ADDR-BY-NAME`, which names the promoted replica as soon as it is
    /// promoted: until the failover ends, the table still names `old`, and a client that asks
    /// then and finds `old` already restarted (a primary again, for now) writes there. Those
    /// writes are lost when the sentinels make it a replica.
    pub async fn wait_for_failover(&self, old: u16, within: Duration) -> anyhow::Result<u16> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(port) = self.agreed_primary().await
                && port != old
                && role(port).await.as_deref() == Some("master")
            {
                return Ok(port);
            }
            anyhow::ensure!(Instant::now() < deadline, "no failover within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The primary's port, if every sentinel's table of primaries names the same one.
    async fn agreed_primary(&self) -> Option<u16> {
        let mut agreed = None;
        for sentinel in &self.sentinels {
            let mut conn = connect(sentinel.port).await.ok()?;
            let fields: Vec<String> =
                redis::cmd("SENTINEL").arg("MASTER").arg(SERVICE).query_async(&mut conn).await.ok()?;
            let port = fields.iter().position(|f| f == "port").and_then(|i| fields.get(i + 1)?.parse().ok())?;
            if agreed.is_some_and(|p| p != port) {
                return None;
            }
            agreed = Some(port);
        }
        agreed
    }

    /// Waits until every running replica has acknowledged everything the primary has.
    pub async fn wait_in_sync(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let primary = self.primary_port().await?;
            let replicas = self.data.iter().filter(|s| s.port != primary && s.child.is_some()).count();
            if replicas_confirming(primary, PROBE_KEY, replicas).await >= replicas {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the replicas did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cuts the replicas off the primary they were started with: the primary keeps answering
    /// clients and sentinels, and nothing it writes from now on reaches a replica.
    pub fn cut_replication(&self) {
        self.relay.cut();
    }

    /// Cuts the primary the group was started with off from its replicas and sentinels, and from
    /// them only: every packet between them is dropped (nothing refuses a connection: it goes
    /// quiet, as across a failed link), while clients on 127.0.0.1 still reach it. The sentinels
    /// promote a replica; the old primary does not know, and keeps taking writes. Returns its port.
    pub async fn partition_primary(&mut self) -> anyhow::Result<u16> {
        let old = self.data[0].port;
        anyhow::ensure!(
            self.primary_port().await? == old,
            "the primary the group started with is no longer the primary"
        );
        let table = format!("sessionlab_redis_{old}");
        // Its own port and the relay's, which the replicas reach it through.
        let ports = format!("{{ {old}, {} }}", self.relay.port());
        let rules = format!(
            "table ip {table} {{\n  chain out {{\n    type filter hook output priority 0;\n    \
             ip saddr {PEERS} ip daddr 127.0.0.1 tcp dport {ports} drop\n    \
             ip saddr 127.0.0.1 tcp sport {ports} ip daddr {PEERS} drop\n  }}\n}}\n"
        );
        process::run("nft", &["-f", "-"], Some(rules)).await.context("nft (apt-get install nftables; root only)")?;
        self.partition = Some(table);
        Ok(old)
    }

    /// Ends [`SentinelGroup::partition_primary`]: the sentinels find the old primary again and
    /// make it a replica of the new one, which replaces everything it holds.
    pub async fn heal_primary(&mut self) -> anyhow::Result<()> {
        let table = self.partition.as_ref().context("no partition to heal")?;
        process::run("nft", &["delete", "table", "ip", table], None).await?;
        self.partition = None;
        Ok(())
    }

    /// `CONFIG SET name value` on every running data server, as an operator would set it on all
    /// of them (any may be promoted).
    pub async fn config_set(&self, name: &str, value: &str) -> anyhow::Result<()> {
        for server in self.data.iter().filter(|s| s.child.is_some()) {
            let mut conn = connect(server.port).await?;
            redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query_async::<()>(&mut conn).await?;
        }
        Ok(())
    }

    /// The replication role of the data server on `port` (`master`, `slave`).
    pub async fn role(&self, port: u16) -> Option<String> {
        role(port).await
    }

    /// Stops every server (SIGTERM, then SIGKILL), sentinels first so none starts a failover.
    pub async fn stop(&mut self) {
        for server in self.sentinels.iter_mut().chain(self.data.iter_mut()) {
            server.stop().await;
        }
    }

    async fn wait_until_formed(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.formed().await {
                return Ok(());
            }
            for server in self.data.iter_mut().chain(self.sentinels.iter_mut()) {
                server.exited()?;
            }
            anyhow::ensure!(Instant::now() < deadline, "not formed within {READY_WITHIN:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Both replicas have caught up, and every sentinel knows both of them and the two other
    /// sentinels.
    async fn formed(&self) -> bool {
        if replicas_confirming(self.data[0].port, PROBE_KEY, 2).await < 2 {
            return false;
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
        for server in self.sentinels.iter().chain(&self.data) {
            server.kill_now();
        }
        // A rule left behind would outlive the lab, on ports another test may take.
        if let Some(table) = &self.partition {
            let _ = std::process::Command::new("nft").args(["delete", "table", "ip", table]).status();
        }
    }
}
