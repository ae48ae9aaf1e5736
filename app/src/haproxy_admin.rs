//! HAProxy's runtime API — the `stats socket` of `docker/haproxy/haproxy.cfg` — as the /lab
//! dashboard uses it: one command per connection, the way `socat` sends them.
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The backend of `haproxy.cfg` whose servers are the replicas.
const BACKEND: &str = "replicas";
const TIMEOUT: Duration = Duration::from_secs(2);
/// `show stat` is a few kilobytes; anything far beyond is not HAProxy.
const MAX_REPLY: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct HaproxyAdmin {
    addr: String,
}

/// A replica as HAProxy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    pub id: String,
    pub state: ServerState,
    /// HAProxy's own words (`UP`, `DOWN 1/2`, `DRAIN`, `MAINT`…).
    pub detail: String,
    /// HTTP requests HAProxy has sent this replica since it started (`req_tot`).
    pub requests: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    Up,
    Down,
    /// Takes no new clients; sticky ones still reach it.
    Draining,
    /// Taken out of rotation by hand.
    Maintenance,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Up => "up",
            ServerState::Down => "down",
            ServerState::Draining => "draining",
            ServerState::Maintenance => "maintenance",
        }
    }
}

/// What the Drain, Ready and Remove buttons ask for (`drain`, `ready`, `remove` in their paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    /// No new clients; pinned ones still reach it.
    Drain,
    /// In rotation: back from a drain, or the spare added.
    Ready,
    /// Out of rotation at once, pinned clients included (HAProxy's maintenance): a server taken
    /// away, as a scale-down does.
    Remove,
}

impl HaproxyAdmin {
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    /// The replicas and their states, from `show stat`.
    pub async fn replicas(&self) -> anyhow::Result<Vec<ServerStatus>> {
        parse_stat(&self.command("show stat").await?)
    }

    /// Drains or readies replica `id`, which must be one of the backend's servers.
    pub async fn set(&self, id: &str, admin: Admin) -> anyhow::Result<()> {
        anyhow::ensure!(self.replicas().await?.iter().any(|s| s.id == id), "HAProxy has no replica {id}");
        let state = match admin {
            Admin::Drain => "drain",
            Admin::Ready => "ready",
            Admin::Remove => "maint",
        };
        let reply = self.command(&format!("set server {BACKEND}/{id} state {state}")).await?;
        // Success is an empty answer; anything else is HAProxy explaining a refusal.
        anyhow::ensure!(reply.trim().is_empty(), "HAProxy refused: {}", reply.trim());
        Ok(())
    }

    async fn command(&self, command: &str) -> anyhow::Result<String> {
        let exchange = async {
            let mut stream = TcpStream::connect(&self.addr).await?;
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            let mut reply = String::new();
            stream.take(MAX_REPLY).read_to_string(&mut reply).await?;
            anyhow::Ok(reply)
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {TIMEOUT:?}"))?
            .with_context(|| format!("HAProxy's runtime API at {} (HAPROXY_ADMIN_ADDR)", self.addr))
    }
}

/// The replicas' rows of `show stat`'s CSV, whose first line names the columns.
fn parse_stat(csv: &str) -> anyhow::Result<Vec<ServerStatus>> {
    let mut lines = csv.lines();
    let header = lines.next().and_then(|h| h.strip_prefix("# ")).context("`show stat` sent no header")?;
    let column = |name: &str| header.split(',').position(|c| c == name).with_context(|| format!("no {name} column"));
    let (px, sv, status) = (column("pxname")?, column("svname")?, column("status")?);
    let req_tot = column("req_tot").ok();
    let mut servers = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(pxname), Some(svname), Some(detail)) = (fields.get(px), fields.get(sv), fields.get(status)) else {
            continue;
        };
        if *pxname != BACKEND || matches!(*svname, "FRONTEND" | "BACKEND") {
            continue;
        }
        let requests = req_tot.and_then(|i| fields.get(i)).and_then(|n| n.parse().ok()).unwrap_or(0);
        servers.push(ServerStatus {
            id: (*svname).to_owned(),
            state: state_of(detail),
            detail: (*detail).to_owned(),
            requests,
        });
    }
    Ok(servers)
}

fn state_of(detail: &str) -> ServerState {
    match detail.split_whitespace().next().unwrap_or_default() {
        "DRAIN" => ServerState::Draining,
        "MAINT" => ServerState::Maintenance,
        // "UP 1/2" is going down, "DOWN 1/2" coming up: both still are what they say first.
        "DOWN" => ServerState::Down,
        _ if detail.contains("DRAIN") => ServerState::Draining,
        _ if detail.contains("MAINT") => ServerState::Maintenance,
        _ => ServerState::Up,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_stat_rows_become_replica_states() {
        let csv = "# pxname,svname,qcur,status,weight,req_tot\n\
                   web,FRONTEND,,OPEN,,9\n\
                   replicas,app1,0,UP,1,5\n\
                   replicas,app2,0,DOWN,1,3\n\
                   replicas,app3,0,DRAIN,0,\n\
                   replicas,BACKEND,0,UP,2,8\n\
                   stats,FRONTEND,,OPEN,,\n";
        let states: Vec<_> = parse_stat(csv).unwrap().into_iter().map(|s| (s.id, s.state, s.requests)).collect();
        assert_eq!(
            states,
            [
                ("app1".to_owned(), ServerState::Up, 5),
                ("app2".to_owned(), ServerState::Down, 3),
                ("app3".to_owned(), ServerState::Draining, 0)
            ]
        );
        assert!(parse_stat("Unknown command.\n").is_err());
        assert_eq!(state_of("MAINT (resolution)"), ServerState::Maintenance);
        assert_eq!(state_of("no check"), ServerState::Up);
    }
}
