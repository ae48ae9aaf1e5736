//! A network of its own for one replica, so that a test can cut it from the store while HAProxy
//! still reaches it: what `docker network disconnect` does to a container, natively.
//!
//! The replica runs in a network namespace (`ip netns exec`) joined to this one by a veth pair,
//! on two addresses of 198.18.0.0/15 (set aside for network tests). The namespace has its own
//! loopback, so the store and HAProxy's runtime API, which listen on 127.0.0.1 here, are reached
//! through [`Relay`]s on the host side of the pair. [`Netns::partition`] makes the namespace drop
//! (not refuse) every packet to the store's relay, as a failed link or a firewall does: the
//! replica's connections hang until its own timeouts give up. Linux and root only.
use std::net::Ipv4Addr;

use anyhow::Context;
use tokio::process::Command;

use super::{process, relay::Relay};

/// The nftables table that holds the partition, inside the namespace.
const TABLE: &str = "sessionlab_partition";

pub struct Netns {
    name: String,
    /// This side of the veth pair, where the relays listen and HAProxy's packets come from.
    host: Ipv4Addr,
    /// The namespace's side: where the replica listens.
    inside: Ipv4Addr,
    store: Option<Relay>,
    admin: Option<Relay>,
}

impl Netns {
    pub async fn create() -> anyhow::Result<Self> {
        anyhow::ensure!(
            nix::unistd::geteuid().is_root(),
            "a replica in a network namespace of its own needs root (ip netns, nft)"
        );
        // A /30 of 198.18.0.0/16 (the lower half of the test range): .1 here, .2 inside. The
        // names carry the block's number, so two labs that drew the same one fail to start.
        let n = rand::random::<u32>() % (1 << 14);
        let tag = format!("{n:04x}");
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n * 4;
        let (host, inside) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let name = format!("sessionlab-{tag}");
        let ns = Self { name: name.clone(), host, inside, store: None, admin: None };
        let (outside, within) = (format!("slh{tag}"), format!("sln{tag}"));
        for args in [
            vec!["netns", "add", &name],
            vec!["link", "add", &outside, "type", "veth", "peer", "name", &within, "netns", &name],
            vec!["addr", "add", &format!("{host}/30"), "dev", &outside],
            vec!["link", "set", &outside, "up"],
            vec!["-n", &name, "addr", "add", &format!("{inside}/30"), "dev", &within],
            vec!["-n", &name, "link", "set", &within, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            process::run("ip", &args, None).await?;
        }
        Ok(ns)
    }

    /// Where the replica inside listens.
    pub fn inside(&self) -> Ipv4Addr {
        self.inside
    }

    /// The address HAProxy's connections come from, as the replica sees them.
    pub fn host(&self) -> Ipv4Addr {
        self.host
    }

    /// The command that runs `program` inside.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Opens relays to the store's port and HAProxy's runtime API's; returns their addresses
    /// as the replica inside must name them.
    pub async fn relay(&mut self, store_port: u16, admin_port: u16) -> anyhow::Result<(String, String)> {
        let store = Relay::start(self.host, store_port).await?;
        let admin = Relay::start(self.host, admin_port).await?;
        let addresses = (store.address(), admin.address());
        (self.store, self.admin) = (Some(store), Some(admin));
        Ok(addresses)
    }

    /// Cuts the replica from its store: every packet to the store's relay is dropped.
    pub async fn partition(&self) -> anyhow::Result<()> {
        let store = self.store.as_ref().context("this namespace relays no store")?;
        let rules = format!(
            "table ip {TABLE} {{\n  chain out {{\n    type filter hook output priority 0;\n    \
             ip daddr {} tcp dport {} drop\n  }}\n}}\n",
            self.host,
            store.port()
        );
        process::run("ip", &["netns", "exec", &self.name, "nft", "-f", "-"], Some(rules)).await
    }

    /// Heals the partition.
    pub async fn heal(&self) -> anyhow::Result<()> {
        process::run("ip", &["netns", "exec", &self.name, "nft", "delete", "table", "ip", TABLE], None).await
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The veth pair goes with the namespace (once its last process has exited).
        let _ = std::process::Command::new("ip").args(["netns", "delete", &self.name]).status();
    }
}
