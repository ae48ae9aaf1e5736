//! The native lab: N replicas behind HAProxy with the stores their backend needs, from installed
//! binaries. `sessionlab lab`, the integration tests and the benchmarks all start it through
//! [`Lab::start`], so what the tests check is what people run.
pub mod cli;
pub mod cluster;
mod haproxy;
mod netns;
pub mod process;
mod redis_servers;
mod relay;
mod replicas;
pub mod sentinel;
pub mod state;
pub mod stores;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::{process::Child, sync::watch};

pub use process::Logs;
pub use state::LabState;
pub use stores::{StoreKind, StoreServer};

use crate::{secrets::random_key, session::Backend};
use replicas::Replica;

/// The most replicas `docker/haproxy/haproxy.cfg` has server lines for (app1…app3, as compose).
pub const MAX_REPLICAS: usize = 3;
/// The spare replica's name: `haproxy.cfg`'s fourth server line, in maintenance until added.
pub const SPARE: &str = "app4";

#[derive(Debug, Clone)]
pub struct LabConfig {
    pub backend: Backend,
    pub replicas: usize,
    /// HAProxy's port; 0 picks a free one.
    pub port: u16,
    /// HAProxy's stats page port; 0 picks a free one.
    pub stats_port: u16,
    /// The `sessionlab` binary the replicas run.
    pub binary: PathBuf,
    /// The HAProxy configuration, the same file compose mounts.
    pub haproxy_cfg: PathBuf,
    /// Restart a replica about a second after it dies, like compose's `restart: unless-stopped`.
    pub restart: bool,
    pub state_file: Option<PathBuf>,
    pub logs: Logs,
    /// Use the store at this URL instead of starting a private one.
    pub store_url: Option<String>,
    /// Use this app database instead of an SQLite file in the lab's directory.
    pub database_url: Option<String>,
    /// More environment for the replicas (e.g. a short idle timeout in a test).
    pub extra_env: Vec<(String, String)>,
    /// The private Redis keeps its append-only file (as compose's does), so a restart loses
    /// nothing; `false`: it keeps nothing on disk, and a restart forgets every session.
    pub redis_append_only: bool,
    /// One Redis server, Redis Sentinel, or Redis Cluster.
    pub redis_topology: RedisTopology,
    /// `memory`, `sticky`, `cookie` and `jwt` run with their revocation layer (`false`: the pure
    /// strategy, `SESSION_REVOCATION=off`).
    pub revocation: bool,
    /// How HAProxy pins a `sticky` client to its replica.
    pub affinity: Affinity,
    /// Also run the spare replica ([`SPARE`]), which HAProxy keeps out of rotation until the
    /// dashboard (or its runtime API) adds it.
    pub spare: bool,
    /// The dashboard's Stop and Start store buttons signal this process (SIGUSR1, SIGUSR2), which
    /// must then handle them: `sessionlab lab` does. Off in tests, whose process would die of it.
    pub store_buttons: bool,
    /// app1 runs in a network namespace of its own, so that [`Lab::partition`] can cut it from
    /// the store while HAProxy still reaches it (root only; a store the lab runs as one server).
    pub partitionable: bool,
}

/// How the lab runs Redis for `--backend redis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RedisTopology {
    /// One server: a crash of it is an outage until it is back.
    #[default]
    Single,
    /// One primary, two replicas and three sentinels ([`sentinel::SentinelGroup`]): the
    /// sentinels promote a replica when the primary dies.
    Sentinel,
    /// Three primaries, each with a replica ([`cluster::ClusterGroup`]): sessions spread over
    /// the three by hash slot, and a shard's replica takes over when its primary dies.
    Cluster,
}

impl RedisTopology {
    /// What a `REDIS_URL` names, by its scheme.
    pub fn of_url(url: &str) -> Self {
        use crate::session::redis_client::{CLUSTER_SCHEME, SENTINEL_SCHEME};
        if url.starts_with(SENTINEL_SCHEME) {
            Self::Sentinel
        } else if url.starts_with(CLUSTER_SCHEME) {
            Self::Cluster
        } else {
            Self::Single
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RedisTopology::Single => "single",
            RedisTopology::Sentinel => "sentinel",
            RedisTopology::Cluster => "cluster",
        }
    }
}

/// How HAProxy pins a `sticky` client to the replica that holds its session (`STICKY_AFFINITY`
/// in `haproxy.cfg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Affinity {
    /// HAProxy's own `SERVERID` cookie names the server: the mapping lives in the client.
    #[default]
    Cookie,
    /// A hash of the client's address picks the server: everyone behind one address shares one.
    Source,
}

impl Affinity {
    pub fn as_str(self) -> &'static str {
        match self {
            Affinity::Cookie => "cookie",
            Affinity::Source => "source",
        }
    }
}

impl LabConfig {
    /// Defaults for a lab run from this repository's checkout.
    pub fn new(backend: Backend, binary: PathBuf) -> Self {
        Self {
            backend,
            replicas: MAX_REPLICAS,
            port: 0,
            stats_port: 0,
            binary,
            haproxy_cfg: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/haproxy/haproxy.cfg")),
            restart: true,
            state_file: None,
            logs: Logs::Files,
            store_url: None,
            database_url: None,
            extra_env: Vec::new(),
            revocation: true,
            affinity: Affinity::Cookie,
            spare: false,
            redis_append_only: true,
            redis_topology: RedisTopology::Single,
            store_buttons: false,
            partitionable: false,
        }
    }
}

/// The ports HAProxy listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub web: u16,
    pub stats: u16,
    /// The runtime API the replicas' /lab dashboard uses.
    pub admin: u16,
}

/// A running lab. Dropping it kills every process it started; [`Lab::shutdown`] stops them
/// gracefully.
pub struct Lab {
    backend: Backend,
    dir: tempfile::TempDir,
    url: String,
    replicas: Vec<Arc<Replica>>,
    supervisors: Vec<tokio::task::JoinHandle<()>>,
    haproxy: Child,
    /// What HAProxy was started with, to start it again.
    haproxy_cfg: PathBuf,
    haproxy_env: Vec<(String, String)>,
    /// HAProxy's runtime API, as the replicas' dashboard reaches it.
    haproxy_admin: String,
    logs: Logs,
    store: Option<tokio::sync::Mutex<StoreServer>>,
    /// The Redis Sentinel group this lab started, with `RedisTopology::Sentinel`.
    sentinel: Option<tokio::sync::Mutex<sentinel::SentinelGroup>>,
    /// The Redis Cluster this lab started, with `RedisTopology::Cluster`.
    cluster: Option<tokio::sync::Mutex<cluster::ClusterGroup>>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    admin_token: String,
    /// app1's network namespace, with `LabConfig::partitionable`.
    netns: Option<Arc<netns::Netns>>,
}

/// What the supervisors and the lab both change: the published state.
struct Shared {
    state: Mutex<LabState>,
    state_file: Option<PathBuf>,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut LabState)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut state);
        if let Some(path) = &self.state_file
            && let Err(err) = state.write_to(path)
        {
            tracing::warn!(path = %path.display(), error = %err, "could not write the lab state file");
        }
    }
}

impl Lab {
    pub async fn start(config: LabConfig) -> anyhow::Result<Self> {
        if !(1..=MAX_REPLICAS).contains(&config.replicas) {
            anyhow::bail!(
                "--replicas must be 1 to {MAX_REPLICAS}: docker/haproxy/haproxy.cfg has server lines for app1…app{MAX_REPLICAS}"
            );
        }
        let dir = tempfile::Builder::new().prefix("sessionlab-lab-").tempdir()?;
        let port = if config.port == 0 { process::free_port()? } else { config.port };
        // The stats page is a convenience: if its port is taken, take another rather than fail.
        let stats_port = match config.stats_port {
            0 => process::free_port()?,
            wanted if std::net::TcpListener::bind(("127.0.0.1", wanted)).is_err() => {
                let other = process::free_port()?;
                tracing::warn!(wanted, other, "the stats port is taken; using another");
                other
            }
            wanted => wanted,
        };
        let url = format!("http://127.0.0.1:{port}");
        let ports = Ports { web: port, stats: stats_port, admin: process::free_port()? };
        // The dashboard's chaos controls are on in the lab, with the token it prints.
        let admin_token = std::env::var("ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| format!("lab-{}", &random_key()[..16]));

        let mut env = vec![
            ("SESSION_BACKEND".to_owned(), config.backend.to_string()),
            ("SEED_DEMO_USERS".to_owned(), "true".to_owned()),
            // Every client of a lab comes from 127.0.0.1, and its load generator and tests sign up
            // hundreds of users: the per-address sign-up throttle would stop them. Yours if set.
            (
                "SIGN_UPS_PER_ADDRESS".to_owned(),
                std::env::var("SIGN_UPS_PER_ADDRESS").unwrap_or_else(|_| "100000".to_owned()),
            ),
            ("ADMIN_TOKEN".to_owned(), admin_token.clone()),
            // HAProxy reaches the replicas from 127.0.0.1; a test can reach one from another
            // loopback address (127.0.0.2) to play a client that bypasses it.
            ("TRUSTED_PROXIES".to_owned(), "127.0.0.1".to_owned()),
            ("HAPROXY_ADMIN_ADDR".to_owned(), format!("127.0.0.1:{}", ports.admin)),
            ("SESSION_KEY".to_owned(), std::env::var("SESSION_KEY").unwrap_or_else(|_| random_key())),
            (
                "DATABASE_URL".to_owned(),
                match &config.database_url {
                    Some(url) => url.clone(),
                    None => format!("sqlite://{}", dir.path().join("app.sqlite3").display()),
                },
            ),
        ];
        if config.backend.revocation_is_a_layer() {
            let mode = if config.revocation { "on" } else { "off" };
            env.push(("SESSION_REVOCATION".to_owned(), mode.to_owned()));
        }
        // Only a store this lab runs itself, as one server, can be stopped and started by it.
        let one_server = config.redis_topology == RedisTopology::Single;
        if config.store_buttons && config.store_url.is_none() && one_server && store_for(config.backend).is_some() {
            env.push(("LAB_SUPERVISOR_PID".to_owned(), std::process::id().to_string()));
        }
        if config.backend == Backend::Jwt {
            let keys = std::env::var("JWT_KEYS").unwrap_or_else(|_| format!("lab:{}", random_key()));
            env.push(("JWT_KEYS".to_owned(), keys));
        }
        if config.redis_topology != RedisTopology::Single && config.store_url.is_some() {
            anyhow::bail!(
                "--redis-topology {} starts the lab's own Redis servers: unset REDIS_URL to use it",
                config.redis_topology.as_str()
            );
        }
        if config.redis_topology != RedisTopology::Single && config.backend != Backend::Redis {
            anyhow::bail!(
                "--redis-topology {} is for --backend redis: the stock actix stack and the revocation lists run \
                 against one Redis server in the lab",
                config.redis_topology.as_str()
            );
        }
        let mut stores = Vec::new();
        let mut store = None;
        let (mut sentinel_group, mut cluster_group) = (None, None);
        if let Some((kind, variable)) = store_for(config.backend) {
            let url = match &config.store_url {
                Some(url) => {
                    stores.push(state::StoreState {
                        kind: kind.name().into(),
                        pid: None,
                        url: url.clone(),
                        persistence: None,
                    });
                    url.clone()
                }
                None if config.redis_topology == RedisTopology::Cluster => {
                    let group = cluster::ClusterGroup::start(dir.path(), config.logs, config.redis_append_only)
                        .await
                        .context("starting Redis Cluster")?;
                    stores.push(state::StoreState {
                        kind: kind.name().into(),
                        pid: group.pids()[0],
                        url: group.url(),
                        persistence: Some("Cluster: 3 primaries, a replica each".into()),
                    });
                    let url = group.url();
                    cluster_group = Some(tokio::sync::Mutex::new(group));
                    url
                }
                None if config.redis_topology == RedisTopology::Sentinel => {
                    let group = sentinel::SentinelGroup::start(dir.path(), config.logs, config.redis_append_only)
                        .await
                        .context("starting Redis Sentinel")?;
                    stores.push(state::StoreState {
                        kind: kind.name().into(),
                        pid: group.pids()[0],
                        url: group.url(),
                        persistence: Some("Sentinel: a primary, 2 replicas, 3 sentinels".into()),
                    });
                    let url = group.url();
                    sentinel_group = Some(tokio::sync::Mutex::new(group));
                    url
                }
                None => {
                    let server = StoreServer::start_with(kind, dir.path(), config.logs, config.redis_append_only)
                        .await
                        .with_context(|| format!("starting a private {}", kind.name()))?;
                    stores.push(state::StoreState {
                        kind: kind.name().into(),
                        pid: server.pid(),
                        url: server.url(),
                        persistence: Some(server.persistence().into()),
                    });
                    let url = server.url();
                    store = Some(tokio::sync::Mutex::new(server));
                    url
                }
            };
            env.push((variable.to_owned(), url));
        }
        env.extend(config.extra_env.iter().cloned());
        let isolated = match (&store, config.partitionable) {
            (_, false) => None,
            (None, true) => anyhow::bail!("a partitionable lab needs a store it runs itself, as one server"),
            // The namespace reaches 127.0.0.1 only through relays: a database elsewhere would be
            // out of app1's reach from the start.
            (_, true) if config.database_url.is_some() => {
                anyhow::bail!("a partitionable lab keeps its app database in SQLite: unset DATABASE_URL")
            }
            (Some(server), true) => {
                let server = server.lock().await;
                let mut ns = netns::Netns::create().await?;
                let (store_relay, admin_relay) = ns.relay(server.port(), ports.admin).await?;
                let (_, variable) = store_for(config.backend).context("this backend has no store")?;
                let url = server.url().replace(&format!("127.0.0.1:{}", server.port()), &store_relay);
                let env = vec![
                    (variable.to_owned(), url),
                    ("HAPROXY_ADMIN_ADDR".to_owned(), admin_relay),
                    ("TRUSTED_PROXIES".to_owned(), ns.host().to_string()),
                ];
                Some((Arc::new(ns), env))
            }
        };

        let shared = Arc::new(Shared { state: Mutex::new(LabState::default()), state_file: config.state_file.clone() });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut replicas = Vec::new();
        let mut children = Vec::new();
        let spare = config.spare.then(|| SPARE.to_owned());
        for id in (1..=config.replicas).map(|n| format!("app{n}")).chain(spare) {
            let mut replica = Replica::new(id, process::free_port()?, &config, &env, dir.path());
            if let Some((ns, env)) = isolated.as_ref().filter(|_| replica.id == "app1") {
                replica = replica.isolated(ns.clone(), env.clone());
            }
            let replica = Arc::new(replica);
            children.push(replica.spawn()?);
            replicas.push(replica);
        }
        for (replica, child) in replicas.iter().zip(children.iter_mut()) {
            replica.wait_ready(child).await?;
        }

        let haproxy_env = haproxy::environment(config.backend, config.affinity, ports, &replicas);
        haproxy::check(&config.haproxy_cfg, &haproxy_env).await?;
        let mut haproxy = haproxy::spawn(&config.haproxy_cfg, &haproxy_env, config.logs, dir.path())?;
        process::wait_http_ok(&format!("{url}/healthz"), Some(&mut haproxy), Duration::from_secs(10))
            .await
            .with_context(|| format!("HAProxy did not come up: {}", process::log_tail(dir.path(), "haproxy")))?;

        shared.update(|s| {
            *s = LabState {
                backend: config.backend.to_string(),
                url: url.clone(),
                admin_token: admin_token.clone(),
                haproxy: state::HaproxyState {
                    pid: haproxy.id(),
                    stats_url: format!("http://127.0.0.1:{stats_port}/"),
                },
                replicas: replicas.iter().zip(&children).map(|(r, c)| r.state(c.id())).collect(),
                stores,
            }
        });
        let supervisors = replicas
            .iter()
            .zip(children)
            .map(|(replica, child)| {
                let task =
                    replicas::supervise(replica.clone(), child, config.restart, shared.clone(), shutdown_rx.clone());
                tokio::spawn(task)
            })
            .collect();
        Ok(Self {
            backend: config.backend,
            dir,
            url,
            replicas,
            supervisors,
            haproxy,
            haproxy_cfg: config.haproxy_cfg.clone(),
            haproxy_env,
            haproxy_admin: format!("127.0.0.1:{}", ports.admin),
            logs: config.logs,
            store,
            sentinel: sentinel_group,
            cluster: cluster_group,
            shared,
            shutdown,
            admin_token,
            netns: isolated.map(|(ns, _)| ns),
        })
    }

    /// Cuts app1 from the store, with [`LabConfig::partitionable`]: its packets to the store
    /// are dropped, while HAProxy, and you, still reach it.
    pub async fn partition(&self) -> anyhow::Result<()> {
        self.netns.as_ref().context("the lab was not started partitionable")?.partition().await
    }

    /// Ends [`Lab::partition`].
    pub async fn heal(&self) -> anyhow::Result<()> {
        self.netns.as_ref().context("the lab was not started partitionable")?.heal().await
    }

    /// The token that unlocks the /lab dashboard's Kill, Drain, Ready and Remove buttons.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// HAProxy's address: where clients go.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn state(&self) -> LabState {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replica_ids(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.id.clone()).collect()
    }

    pub fn replica_pid(&self, id: &str) -> Option<u32> {
        self.state().replicas.into_iter().find(|r| r.id == id).and_then(|r| r.pid)
    }

    /// `kill -9` the replica: a crash, not a shutdown. Returns once the process is gone (the
    /// signal is delivered asynchronously) with the PID it had.
    pub async fn kill_replica(&self, id: &str) -> anyhow::Result<u32> {
        let pid = self.replica_pid(id).with_context(|| format!("replica {id} is not running"))?;
        process::signal(pid, Signal::SIGKILL)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.replica_pid(id) == Some(pid) {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("replica {id} (pid {pid}) did not die within 10 s of SIGKILL");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(pid)
    }

    /// Waits until the supervisor has brought `id` back with a PID other than `old_pid`, and
    /// the new process answers and HAProxy has it back in rotation.
    pub async fn wait_for_restart(&self, id: &str, old_pid: u32, timeout: Duration) -> anyhow::Result<u32> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let replica = self.state().replicas.into_iter().find(|r| r.id == id);
            if let Some((pid, url)) = replica.and_then(|r| Some((r.pid?, r.url))).filter(|(pid, _)| *pid != old_pid) {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                process::wait_http_ok(&format!("{url}/healthz"), None, left).await?;
                // Back in HAProxy's rotation too: until its health check sees the replica, the
                // next request goes elsewhere, and the one after that may not.
                while !self
                    .haproxy_admin()
                    .replicas()
                    .await
                    .is_ok_and(|all| all.iter().any(|r| r.id == id && r.state == crate::haproxy_admin::ServerState::Up))
                {
                    if tokio::time::Instant::now() > deadline {
                        anyhow::bail!("HAProxy did not put replica {id} back in rotation within {timeout:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                return Ok(pid);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("replica {id} was not restarted within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The private store server this lab started, if any.
    pub fn store(&self) -> Option<&tokio::sync::Mutex<StoreServer>> {
        self.store.as_ref()
    }

    /// The Redis Sentinel group this lab started, if any.
    pub fn sentinel(&self) -> Option<&tokio::sync::Mutex<sentinel::SentinelGroup>> {
        self.sentinel.as_ref()
    }

    /// The Redis Cluster this lab started, if any.
    pub fn cluster(&self) -> Option<&tokio::sync::Mutex<cluster::ClusterGroup>> {
        self.cluster.as_ref()
    }

    /// Stops (`false`) or starts (`true`) the private store, as the dashboard's buttons ask, and
    /// says so in the state file. Nothing to do without a private store.
    pub async fn set_store_running(&self, running: bool) -> anyhow::Result<()> {
        let Some(store) = &self.store else { return Ok(()) };
        if running {
            store.lock().await.start_again().await?;
        } else {
            store.lock().await.stop().await;
        }
        self.refresh_store_state().await;
        Ok(())
    }

    /// Updates the state file after the store was stopped or started by hand.
    pub async fn refresh_store_state(&self) {
        if let Some(store) = &self.store {
            let store = store.lock().await;
            let (kind, pid, persistence) = (store.kind().name(), store.pid(), store.persistence());
            self.shared.update(|s| {
                for st in s.stores.iter_mut().filter(|st| st.kind == kind) {
                    st.pid = pid;
                    st.persistence = Some(persistence.into());
                }
            });
        }
    }

    /// HAProxy's runtime API: the replicas' states and the requests each has answered.
    pub fn haproxy_admin(&self) -> crate::haproxy_admin::HaproxyAdmin {
        crate::haproxy_admin::HaproxyAdmin::new(self.haproxy_admin.clone())
    }

    /// Stops HAProxy and starts it again on the same ports and configuration: what a deploy or a
    /// crash of the load balancer does. Everything it kept in memory is gone; returns once the new
    /// one answers.
    pub async fn restart_haproxy(&mut self) -> anyhow::Result<()> {
        process::terminate(&mut self.haproxy, Duration::from_secs(5)).await;
        self.haproxy = haproxy::spawn(&self.haproxy_cfg, &self.haproxy_env, self.logs, self.dir.path())?;
        process::wait_http_ok(&format!("{}/healthz", self.url), Some(&mut self.haproxy), Duration::from_secs(10))
            .await
            .with_context(|| format!("HAProxy did not come back: {}", process::log_tail(self.dir.path(), "haproxy")))?;
        let pid = self.haproxy.id();
        self.shared.update(|s| s.haproxy.pid = pid);
        Ok(())
    }

    /// Stops every process gracefully (SIGTERM, then SIGKILL after a grace period).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.supervisors.drain(..) {
            let _ = task.await;
        }
        process::terminate(&mut self.haproxy, Duration::from_secs(5)).await;
        if let Some(store) = &self.store {
            store.lock().await.stop().await;
        }
        if let Some(group) = &self.sentinel {
            group.lock().await.stop().await;
        }
        if let Some(group) = &self.cluster {
            group.lock().await.stop().await;
        }
        if let Some(path) = &self.shared.state_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The store a backend needs, and the variable that tells the replicas where it is.
pub fn store_for(backend: Backend) -> Option<(StoreKind, &'static str)> {
    match backend {
        Backend::Redis | Backend::ActixRedis => Some((StoreKind::Redis, "REDIS_URL")),
        Backend::Memcached => Some((StoreKind::Memcached, "MEMCACHED_URL")),
        Backend::Postgres => Some((StoreKind::Postgres, "SESSION_DATABASE_URL")),
        Backend::Mysql => Some((StoreKind::Mariadb, "SESSION_DATABASE_URL")),
        Backend::Memory | Backend::Sticky | Backend::Cookie | Backend::Jwt | Backend::ActixCookie => None,
    }
}
