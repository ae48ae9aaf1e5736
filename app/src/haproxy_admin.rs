//! HAProxy's runtime API — the `stats socket` of `docker/haproxy/haproxy.cfg` — as the /lab
//! dashboard uses it: one command per connection, the way `socat` sends them.
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The backend of `haproxy.cfg` whose servers are the replicas in rotation: checked on `/readyz`.
const BACKEND: &str = "replicas";
/// The same servers checked only for running (`/healthz`), which HAProxy uses while none is ready.
const ALIVE: &str = "alive";
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
    /// HTTP requests HAProxy has sent this replica since it started (`req_tot`, both backends).
    pub requests: u64,
    /// How many times HAProxy has seen the process go from up to down (`chkdown` of `alive`): a
    /// crash, a kill; not a store outage, which only takes it out of the rotation.
    pub downs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    Up,
    Down,
    /// It runs, but its `/readyz` fails (its store or database is out of reach): out of rotation.
    #[serde(rename = "not-ready")]
    NotReady,
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
            ServerState::NotReady => "not-ready",
            ServerState::Draining => "draining",
            ServerState::Maintenance => "maintenance",
        }
    }
}

/// How HAProxy picks a replica for a request: the `algo` and `cookie` of the backend's row of
/// `show stat`. The dashboard shows this rather than the configuration the lab was started with,
/// so what it says is what HAProxy does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balancing {
    /// `roundrobin`, `source`…
    pub algorithm: String,
    /// The affinity cookie HAProxy sets (`SERVERID`), if it sets one.
    pub cookie: Option<String>,
}

impl Balancing {
    /// What the balancing means for a session kept in one replica's memory, in a sentence.
    pub fn describe(&self) -> String {
        match (self.algorithm.as_str(), &self.cookie) {
            (algorithm, Some(cookie)) => format!(
                "{algorithm} for a new client, which HAProxy then pins with its {cookie} cookie: the cookie names \
                 the replica, so every later request goes back to it"
            ),
            ("source", None) => "by client address (balance source): a client stays on one replica as long as its \
                                 address does, and everyone behind one address shares that replica"
                .to_owned(),
            ("roundrobin", None) => "round robin, no affinity: each request goes to the next replica".to_owned(),
            (algorithm, None) => format!("{algorithm}, no affinity"),
        }
    }
}

/// Everything the dashboard reads from one `show stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub replicas: Vec<ServerStatus>,
    /// `None` when the backend's row is missing.
    pub balancing: Option<Balancing>,
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
        Ok(self.stat().await?.replicas)
    }

    /// The replicas, and how HAProxy balances between them.
    pub async fn stat(&self) -> anyhow::Result<Stat> {
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
        // Both backends, so that a replica taken out stays out while none is ready.
        for backend in [BACKEND, ALIVE] {
            let reply = self.command(&format!("set server {backend}/{id} state {state}")).await?;
            // Success is an empty answer; anything else is HAProxy explaining a refusal.
            anyhow::ensure!(reply.trim().is_empty(), "HAProxy refused: {}", reply.trim());
        }
        Ok(())
    }

    /// Pauses (or resumes) HAProxy's health checks of every replica, in both backends. Each
    /// readiness check costs a store round trip: a test pauses them while it counts what
    /// requests cost the store.
    pub async fn set_checks(&self, on: bool) -> anyhow::Result<()> {
        let verb = if on { "enable" } else { "disable" };
        for server in self.replicas().await? {
            for backend in [BACKEND, ALIVE] {
                let reply = self.command(&format!("{verb} health {backend}/{}", server.id)).await?;
                anyhow::ensure!(reply.trim().is_empty(), "HAProxy refused: {}", reply.trim());
            }
        }
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

/// The replicas' rows of `show stat`'s CSV, whose first line names the columns: their state
/// in the rotation (`replicas`), whether the process runs and how often it went down (`alive`).
fn parse_stat(csv: &str) -> anyhow::Result<Stat> {
    let mut lines = csv.lines();
    let header = lines.next().and_then(|h| h.strip_prefix("# ")).context("`show stat` sent no header")?;
    let column = |name: &str| header.split(',').position(|c| c == name).with_context(|| format!("no {name} column"));
    let (px, sv, status) = (column("pxname")?, column("svname")?, column("status")?);
    let (req_tot, algo, cookie) = (column("req_tot").ok(), column("algo").ok(), column("cookie").ok());
    let (chkdown, check_status) = (column("chkdown").ok(), column("check_status").ok());
    let mut servers: Vec<ServerStatus> = Vec::new();
    // Servers whose last rotation check got an HTTP answer that said no (`L7STS`) or none in time
    // (`L7TOUT`): the process runs. A refused connection (`L4CON`) is a process that does not.
    let mut answered = Vec::new();
    // The `alive` rows: (id, runs, requests, downs).
    let mut alive = Vec::new();
    let mut balancing = None;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(pxname), Some(svname), Some(detail)) = (fields.get(px), fields.get(sv), fields.get(status)) else {
            continue;
        };
        if ![BACKEND, ALIVE].contains(pxname) || *svname == "FRONTEND" {
            continue;
        }
        let field = |column: Option<usize>| column.and_then(|i| fields.get(i)).copied().unwrap_or_default();
        let (requests, downs) = (field(req_tot).parse().unwrap_or(0), field(chkdown).parse().unwrap_or(0));
        match (*pxname, *svname) {
            (BACKEND, "BACKEND") => {
                let cookie = Some(field(cookie)).filter(|c| !c.is_empty()).map(str::to_owned);
                balancing = Some(Balancing { algorithm: field(algo).to_owned(), cookie });
            }
            (_, "BACKEND") => {}
            (BACKEND, id) => {
                if field(check_status).starts_with("L7") {
                    answered.push(id.to_owned());
                }
                servers.push(ServerStatus {
                    id: id.to_owned(),
                    state: state_of(detail),
                    detail: (*detail).to_owned(),
                    requests,
                    downs,
                });
            }
            (_, id) => alive.push((id.to_owned(), state_of(detail) != ServerState::Down, requests, downs)),
        }
    }
    for (id, runs, requests, downs) in alive {
        let Some(server) = servers.iter_mut().find(|s| s.id == id) else { continue };
        server.requests += requests;
        server.downs = downs;
        // Both must agree: the two backends' checks run a moment apart.
        if runs && server.state == ServerState::Down && answered.contains(&server.id) {
            server.state = ServerState::NotReady;
            server.detail = format!("NOT READY ({} in the rotation, UP for /healthz)", server.detail);
        }
    }
    Ok(Stat { replicas: servers, balancing })
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
        let csv = "# pxname,svname,qcur,status,weight,req_tot,cookie,algo,chkdown,check_status\n\
                   web,FRONTEND,,OPEN,,9,,,,\n\
                   replicas,app1,0,UP,1,5,app1,,0,L7OK\n\
                   replicas,app2,0,DOWN,1,3,app2,,2,L4CON\n\
                   replicas,app3,0,DRAIN,0,,app3,,,L7OK\n\
                   replicas,app4,0,DOWN,1,4,app4,,7,L7STS\n\
                   replicas,BACKEND,0,UP,2,8,SERVERID,roundrobin,,\n\
                   alive,app1,0,UP,1,1,app1,,0,L7OK\n\
                   alive,app2,0,UP,1,0,app2,,1,L7OK\n\
                   alive,app4,0,UP,1,2,app4,,0,L7OK\n\
                   alive,BACKEND,0,UP,2,3,SERVERID,roundrobin,,\n\
                   stats,FRONTEND,,OPEN,,,,,,\n";
        let stat = parse_stat(csv).unwrap();
        let balancing = stat.balancing.unwrap();
        assert_eq!((balancing.algorithm.as_str(), balancing.cookie.as_deref()), ("roundrobin", Some("SERVERID")));
        assert!(balancing.describe().contains("SERVERID cookie"));
        let by_address = Balancing { algorithm: "source".into(), cookie: None };
        assert!(by_address.describe().contains("balance source"), "{}", by_address.describe());
        // Downs are the process's (`alive`), requests both backends'; app3 has no `alive` row.
        assert_eq!(stat.replicas.iter().map(|s| s.downs).collect::<Vec<_>>(), [0, 1, 0, 0]);
        let states: Vec<_> = stat.replicas.into_iter().map(|s| (s.id, s.state, s.requests)).collect();
        assert_eq!(
            states,
            [
                ("app1".to_owned(), ServerState::Up, 6),
                ("app2".to_owned(), ServerState::Down, 3),
                ("app3".to_owned(), ServerState::Draining, 0),
                // Out of the rotation, yet running: its store is out of its reach.
                ("app4".to_owned(), ServerState::NotReady, 6),
            ]
        );
        assert!(parse_stat("Unknown command.\n").is_err());
        assert_eq!(state_of("MAINT (resolution)"), ServerState::Maintenance);
        assert_eq!(state_of("no check"), ServerState::Up);
    }
}
