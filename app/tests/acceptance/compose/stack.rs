//! The project's docker-compose.yml, driven from a test as a user drives it: `up` with one
//! `SESSION_BACKEND`, `kill`, `restart`, `start`, and `docker inspect` for what really happened to
//! a container (its restart count and address, not the page's word).
use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use sessionlab::session::Backend;

use crate::harness::Mode;

/// Where the stack answers, as the README tells users.
pub const URL: &str = "http://localhost:8080";
/// A project name of its own, so the suite never touches a stack the user runs.
const PROJECT: &str = "sessionlabtest";
/// Variables that would change what compose does; the suite runs the file as it ships.
const USER_VARS: [&str; 9] = [
    "SESSION_KEY",
    "JWT_KEYS",
    "ADMIN_TOKEN",
    "PUBLISH_ADDR",
    "SESSION_DATABASE_URL",
    "STICKY_AFFINITY",
    "STACK_REDIS_URL",
    "STACK_REDIS_WAIT_REPLICAS",
    "COMPOSE_PROFILES",
];

pub struct Stack {
    mode: Mode,
    topology: Option<Topology>,
}

/// One of docker-compose.yml's Redis topologies: a profile, started with its settings file as
/// the redis page tells users (`docker compose --env-file docker/redis-sentinel.env up`).
#[derive(Debug, Clone, Copy)]
pub enum Topology {
    Sentinel,
    Cluster,
}

impl Topology {
    fn env_file(self) -> &'static str {
        match self {
            Self::Sentinel => "docker/redis-sentinel.env",
            Self::Cluster => "docker/redis-cluster.env",
        }
    }

    /// Its long-running services, each with a health check.
    fn services(self) -> &'static [&'static str] {
        match self {
            Self::Sentinel => &["redis-a", "redis-b", "redis-c", "sentinel-1", "sentinel-2", "sentinel-3"],
            Self::Cluster => {
                &["redis-node-1", "redis-node-2", "redis-node-3", "redis-node-4", "redis-node-5", "redis-node-6"]
            }
        }
    }
}

/// `docker compose` (the plugin users have) where it exists, else the standalone
/// `docker-compose` 1.x (what Debian 12 packages).
fn compose_command() -> Command {
    let plugin = Command::new("docker").args(["compose", "version"]).output().is_ok_and(|o| o.status.success());
    let mut cmd = if plugin {
        let mut cmd = Command::new("docker");
        cmd.arg("compose");
        cmd
    } else {
        Command::new("docker-compose")
    };
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).args(["-p", PROJECT]);
    for var in USER_VARS {
        cmd.env_remove(var);
    }
    cmd
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Stack {
    /// `SESSION_BACKEND=<backend> [SESSION_REVOCATION=off] [STICKY_AFFINITY=source] docker compose up
    /// --detach`, and back once every container is healthy and HAProxy has all three replicas up. Switching strategies recreates the replicas
    /// and HAProxy and keeps the stores, as it does for a user.
    pub async fn up(mode: impl Into<Mode>) -> Self {
        Self::start(Self { mode: mode.into(), topology: None }).await
    }

    /// `docker compose --env-file docker/redis-<topology>.env up --detach`: the redis strategy on
    /// Redis Sentinel or Cluster, once it is formed and every replica is ready.
    pub async fn up_redis(topology: Topology) -> Self {
        Self::start(Self { mode: Backend::Redis.into(), topology: Some(topology) }).await
    }

    async fn start(stack: Self) -> Self {
        let mut cmd = stack.compose();
        cmd.args(["up", "--detach"]);
        run(cmd);
        stack.wait_healthy().await;
        stack
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A compose command for this stack's strategy.
    pub fn compose(&self) -> Command {
        let mut cmd = compose_command();
        if let Some(topology) = self.topology {
            cmd.args(["--env-file", topology.env_file()]);
        }
        cmd.env("SESSION_BACKEND", self.mode.backend.as_str());
        cmd.env("SESSION_REVOCATION", if self.mode.revocation { "on" } else { "off" });
        cmd.env("STICKY_AFFINITY", self.mode.affinity.as_str());
        // The suite's many users all come from one address (the Docker network's gateway), and
        // the app database outlives a strategy switch: the sign-up throttle would stop them.
        cmd.env("SIGN_UPS_PER_ADDRESS", "100000");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        let mut cmd = self.compose();
        cmd.args(args);
        text(run(cmd))
    }

    /// The container that runs `service` now.
    pub fn container(&self, service: &str) -> String {
        // --all: a one-shot service's container has exited (docker compose v2 lists running ones
        // only without it).
        let id = self.run(&["ps", "--all", "-q", service]);
        assert!(!id.is_empty(), "no container for {service}");
        id
    }

    pub fn inspect(&self, service: &str, format: &str) -> String {
        let mut cmd = Command::new("docker");
        cmd.args(["inspect", "-f", format, &self.container(service)]);
        text(run(cmd))
    }

    /// How often Docker's restart policy has started the container again.
    pub fn restart_count(&self, service: &str) -> u32 {
        self.inspect(service, "{{.RestartCount}}").parse().unwrap()
    }

    pub fn running(&self, service: &str) -> bool {
        self.inspect(service, "{{.State.Running}}") == "true"
    }

    /// The service's address on `network` (a container has one per network it is on).
    pub fn address(&self, service: &str, network: &str) -> String {
        self.inspect(service, &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"))
    }

    /// The networks the service's container is on.
    pub fn networks(&self, service: &str) -> Vec<String> {
        let names = self.inspect(service, "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}");
        names.split_whitespace().map(str::to_owned).collect()
    }

    /// Whether a command succeeds inside the service's container.
    pub fn exec_succeeds(&self, service: &str, args: &[&str]) -> bool {
        Command::new("docker")
            .args(["exec", &self.container(service)])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Runs a command inside the service's container.
    pub fn exec(&self, service: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", &self.container(service)]).args(args);
        text(run(cmd))
    }

    /// The admin token the `secrets` service generated for this installation, read the way the
    /// README tells users to.
    pub fn admin_token(&self) -> String {
        self.exec("app1", &["cat", "/var/lib/sessionlab/secrets/admin_token"])
    }

    /// Waits until every service's health check passes and HAProxy sees three replicas up.
    pub async fn wait_healthy(&self) {
        let mut services = vec!["app1", "app2", "app3", "app4", "redis", "memcached", "postgres", "mariadb"];
        services.extend(self.topology.map_or(&[][..], Topology::services));
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let health: Vec<_> = services.iter().map(|s| (s, self.inspect(s, "{{.State.Health.Status}}"))).collect();
            if health.iter().all(|(_, h)| h == "healthy") && self.replicas_up().await == 3 && self.cluster_created() {
                return;
            }
            assert!(Instant::now() < deadline, "{:?}: not healthy after 300 s: {health:?}", self.mode);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// With the cluster profile: whether the one-shot `redis-cluster-create` has joined the nodes
    /// (a node answers PING, and so a replica is ready, before the cluster serves any slot).
    fn cluster_created(&self) -> bool {
        if !matches!(self.topology, Some(Topology::Cluster)) {
            return true;
        }
        let state = self.inspect("redis-cluster-create", "{{.State.Status}} {{.State.ExitCode}}");
        assert!(!state.starts_with("exited") || state == "exited 0", "redis-cluster-create failed: {state}");
        state == "exited 0"
    }

    /// How many replicas HAProxy has in rotation, as the dashboard reports them.
    pub async fn replicas_up(&self) -> usize {
        let Ok(reply) = reqwest::get(format!("{URL}/lab/state")).await else { return 0 };
        let Ok(state) = reply.json::<serde_json::Value>().await else { return 0 };
        state["replicas"].as_array().map_or(0, |r| r.iter().filter(|r| r["state"] == "up").count())
    }

    /// Waits until `service`'s container runs and is healthy again, and HAProxy has it back.
    pub async fn wait_back(&self, service: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !(self.running(service) && self.inspect(service, "{{.State.Health.Status}}") == "healthy") {
            assert!(Instant::now() < deadline, "{service} did not come back");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        while self.replicas_up().await < 3 {
            assert!(Instant::now() < deadline, "HAProxy did not take {service} back");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The topology's servers go with the test that started them: the next test's stack must not
/// keep sentinels that would fail over a Redis it does not know about.
impl Drop for Stack {
    fn drop(&mut self) {
        let Some(topology) = self.topology else { return };
        let mut cmd = self.compose();
        cmd.args(["rm", "--force", "--stop", "-v"]).args(topology.services());
        if matches!(topology, Topology::Cluster) {
            cmd.arg("redis-cluster-create");
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("removing the {topology:?} servers failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("removing the {topology:?} servers: {e}"),
        }
    }
}
