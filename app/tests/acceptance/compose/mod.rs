//! The whole stack in containers: `docker compose up` for every strategy, driven through
//! http://localhost:8080 as a user drives it. Ignored in the plain `cargo test`;
//! `scripts/compose-suite.sh` (part of `make test`) builds the images once and runs these one at
//! a time, or says why it cannot (no Docker engine: skipped, except in CI, where that fails).
mod checks;
mod redis_topologies;
mod stack;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sessionlab::session::Backend;

use crate::{
    browser::{self, Browser},
    dashboard::{control, unlocked},
    harness::{Client, Cluster, Mode, username},
    suite,
};
pub use stack::{Stack, URL};

/// Crashes a replica with the dashboard's Kill button, and returns once Docker has seen the
/// container die (its restart count went up: the process really ended, whatever the page said).
struct KillButton<'a> {
    stack: &'a Stack,
    admin: Client,
}

#[async_trait::async_trait(?Send)]
impl Cluster for KillButton<'_> {
    fn url(&self) -> &str {
        URL
    }

    async fn kill(&self, id: &str) {
        let before = self.stack.restart_count(id);
        let reply = control(&self.admin, id, "kill").await;
        assert!(reply.status.is_success() || reply.status.is_redirection(), "Kill {id}: {}", reply.text);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stack.restart_count(id) == before {
            assert!(Instant::now() < deadline, "Kill answered, but the {id} container never died");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `restart: unless-stopped` starts a crashed container again within a second.
    fn restarts_at_once(&self) -> bool {
        true
    }
}

/// Crashes a replica from the terminal, `docker compose kill -s SIGKILL`: a manual stop, which
/// the restart policy leaves down until `docker compose start`.
struct ComposeKill<'a> {
    stack: &'a Stack,
}

#[async_trait::async_trait(?Send)]
impl Cluster for ComposeKill<'_> {
    fn url(&self) -> &str {
        URL
    }

    async fn kill(&self, id: &str) {
        self.stack.run(&["kill", "-s", "SIGKILL", id]);
        assert!(!self.stack.running(id), "{id} still runs after docker compose kill");
        // Back once HAProxy's health check (every second) has taken it out of rotation.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stack.replicas_up().await == 3 {
            assert!(Instant::now() < deadline, "HAProxy still has {id} up after the kill");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Everything one strategy must show in containers.
async fn in_containers(mode: impl Into<Mode>) {
    let mode = mode.into();
    let stack = Stack::up(mode).await;
    checks::no_public_secret_and_nothing_published_beyond_this_machine(&stack);
    checks::only_the_replicas_reach_haproxys_runtime_api(&stack);
    if crate::harness::caps(mode).lists_sessions {
        checks::the_client_address_is_the_one_haproxy_saw(URL).await;
    }

    let admin = unlocked(URL, &stack.admin_token()).await;
    let victim = suite::survives_a_replica_kill(&KillButton { stack: &stack, admin }, mode).await;
    stack.wait_back(&victim).await;

    let victim = suite::survives_a_replica_kill(&ComposeKill { stack: &stack }, mode).await;
    stack.run(&["start", &victim]);
    stack.wait_back(&victim).await;

    if let Some(store) = store_of(mode.backend) {
        a_store_restart(&stack, store).await;
    }
}

/// The compose service that holds the strategy's sessions.
fn store_of(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Redis | Backend::ActixRedis => Some("redis"),
        Backend::Memcached => Some("memcached"),
        Backend::Postgres => Some("postgres"),
        Backend::Mysql => Some("mariadb"),
        Backend::Memory | Backend::Sticky | Backend::Cookie | Backend::Jwt | Backend::ActixCookie => None,
    }
}

/// `docker compose stop <store>`, then `start`: Redis (append-only file on), PostgreSQL and
/// MariaDB keep every session; memcached keeps none, and once it is back nothing answers a 5xx.
async fn a_store_restart(stack: &Stack, store: &str) {
    let durable = store != "memcached";
    let mut clients = Vec::new();
    for n in 1..=3 {
        let client = Client::new(URL);
        client.register_and_login(&username("restart")).await;
        client.add(n, 1).await;
        clients.push((client, n));
    }
    stack.run(&["stop", store]);
    // With the store stopped, the dashboard stays up, says so, and names the command that
    // brings it back (a replica cannot drive Docker, and must not). The stock actix stack fails
    // every request whose session it cannot load, the dashboard's too.
    if !stack.mode().backend.is_stock() {
        let dashboard = clients[0].0.get("/lab").await;
        assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text);
        assert!(dashboard.text.contains(">down<"), "{}", dashboard.text);
        assert!(dashboard.text.contains(&format!("docker compose start {store}")), "{}", dashboard.text);
    }
    stack.run(&["start", store]);
    wait_until_every_replica_is_ready(stack).await;

    for (client, product) in &clients {
        for _ in 0..3 {
            let me = client.get("/api/me").await;
            let page = client.get("/cart").await;
            assert!(!page.status.is_server_error(), "{store} back, {}: {} {}", page.replica, page.status, page.text);
            if durable {
                assert_eq!(me.status, StatusCode::OK, "a {store} restart lost a session ({})", me.replica);
                assert_eq!(client.cart().await.1, vec![(*product, 1)]);
            } else {
                assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{} after the restart: {}", me.replica, me.text);
                assert!(page.text.contains("Your cart is empty"));
            }
        }
    }
}

/// Every replica back in HAProxy's rotation, which follows `/readyz` (it asks the session store),
/// and then `/readyz` answers 200 on six requests in a row: each replica's pool has found the
/// store again, not just the one connection a readiness check took.
async fn wait_until_every_replica_is_ready(stack: &Stack) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack.replicas_up().await < 3 {
        assert!(Instant::now() < deadline, "the replicas never became ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = Client::new(URL);
    let mut in_a_row = 0;
    while in_a_row < 6 {
        assert!(Instant::now() < deadline, "the replicas never became ready again");
        in_a_row = if client.get("/readyz").await.status == StatusCode::OK { in_a_row + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

macro_rules! every_strategy_in_containers {
    ($($backend:ident => $variant:expr),* $(,)?) => {$(
        #[tokio::test]
        #[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
        async fn $backend() {
            in_containers($variant).await;
        }
    )*};
}

every_strategy_in_containers!(
    sticky => Backend::Sticky,
    sticky_by_address => Mode::by_address(Backend::Sticky),
    sticky_pure => Mode::pure(Backend::Sticky),
    cookie => Backend::Cookie,
    cookie_pure => Mode::pure(Backend::Cookie),
    redis => Backend::Redis,
    memcached => Backend::Memcached,
    postgres => Backend::Postgres,
    mysql => Backend::Mysql,
    jwt => Backend::Jwt,
    actix_redis => Backend::ActixRedis,
    actix_cookie => Backend::ActixCookie,
);

/// `memory` in containers: `SESSION_BACKEND=memory docker compose up` shows the article's
/// problem, a log-in that only one replica of three knows.
#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn memory() {
    let stack = Stack::up(Backend::Memory).await;
    checks::no_public_secret_and_nothing_published_beyond_this_machine(&stack);
    suite::most_logged_in_requests_find_no_session(&ComposeKill { stack: &stack }).await;
}

/// `SESSION_BACKEND=jwt SESSION_REVOCATION=off docker compose up`: the JWT strategy as the
/// article describes it. Any replica verifies the token without asking anything; a copy of a
/// logged-out token keeps working; "your devices" says it cannot exist.
#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn jwt_pure() {
    let mode = Mode::pure(Backend::Jwt);
    let stack = Stack::up(mode).await;
    let victim = suite::survives_a_replica_kill(&ComposeKill { stack: &stack }, mode).await;
    stack.run(&["start", &victim]);
    stack.wait_back(&victim).await;
    let client = Client::new(URL);
    client.register_and_login(&username("pure")).await;
    let copy = format!("{}={}", sessionlab::session::COOKIE_NAME, client.session_cookie().unwrap());
    assert_eq!(client.get("/api/sessions").await.status, StatusCode::NOT_FOUND);
    assert_eq!(client.post("/api/logout", serde_json::json!({})).await.status, StatusCode::NO_CONTENT);
    for _ in 0..3 {
        let me = client.get_with_cookie("/api/me", &copy).await;
        assert_eq!(me.status, StatusCode::OK, "{}: the pure strategy refused a logged-out copy", me.replica);
    }
}

/// The spare service (app4) in containers: the dashboard adds it to HAProxy's rotation and
/// removes it again; sticky clients pinned elsewhere never move, the one it held is logged out.
#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn sticky_a_spare_replica_joins_and_leaves() {
    let stack = Stack::up(Backend::Sticky).await;
    crate::scaling::sticky_add_and_remove_from_the_dashboard(URL, &stack.admin_token()).await;
}

/// HAProxy follows a replica to a new address: Docker's DNS, re-resolved every second.
#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn haproxy_finds_a_replica_at_a_new_address() {
    let stack = Stack::up(Backend::Redis).await;
    // The network HAProxy reaches the replicas on (its only one).
    let network = stack.networks("haproxy").remove(0);
    let old = stack.address("app2", &network);
    stack.run(&["stop", "app2"]);
    // Something else joins the network now and takes the first free address, app2's old one, so
    // that app2 comes back at another.
    let _squatter = checks::Container(checks::docker(&[
        "run",
        "--detach",
        "--rm",
        "--network",
        &network,
        "debian:bookworm-slim",
        "sleep",
        "300",
    ]));
    stack.run(&["start", "app2"]);
    let new = stack.address("app2", &network);
    assert_ne!(old, new, "app2 came back at its old address; the test proves nothing");
    stack.wait_back("app2").await;
    let client = Client::new(URL);
    let mut served = std::collections::BTreeSet::new();
    for _ in 0..9 {
        served.insert(client.get("/healthz").await.replica);
    }
    assert!(served.contains("app2"), "HAProxy never sent a request to app2 at {new}: {served:?}");
}

/// Cuts app1 from the `stores` network (`docker network disconnect`) while HAProxy, on `edge`,
/// still reaches it: the native partition test's steps, in containers.
struct Disconnect<'a> {
    stack: &'a Stack,
    network: String,
    cut: std::cell::Cell<bool>,
}

impl Disconnect<'_> {
    fn connect(&self) {
        // With its compose alias, as `up` had put it there.
        checks::docker(&["network", "connect", "--alias", "app1", &self.network, &self.stack.container("app1")]);
        self.cut.set(false);
    }
}

/// A failed test must not leave app1 cut off for the next one, which reuses the container.
impl Drop for Disconnect<'_> {
    fn drop(&mut self) {
        if self.cut.get() {
            self.connect();
        }
    }
}

#[async_trait::async_trait(?Send)]
impl crate::partition::Partition for Disconnect<'_> {
    fn url(&self) -> &str {
        URL
    }

    async fn cut(&self) {
        checks::docker(&["network", "disconnect", &self.network, &self.stack.container("app1")]);
        self.cut.set(true);
    }

    async fn heal(&self) {
        self.connect();
    }
}

#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn a_replica_cut_from_the_stores_network_leaves_the_rotation_until_it_is_back() {
    let stack = Stack::up(Backend::Redis).await;
    // Redis's only network: the one the replicas share with the stores.
    let network = stack.networks("redis").remove(0);
    assert!(stack.networks("app1").contains(&network) && !stack.networks("haproxy").contains(&network));
    crate::partition::survives_a_partition(&Disconnect { stack: &stack, network, cut: false.into() }).await;
}

/// The newcomer's experiment in a real browser, in containers: log in, fill the cart, Kill the
/// replica from /lab, reload: the same cart, and the container really died.
#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn a_browser_kills_a_replica_from_the_dashboard() {
    let stack = Stack::up(Backend::Redis).await;
    let browser = Browser::start().await;
    let web = browser.web();
    let name = browser::sign_up_and_fill_the_cart(web, URL).await;
    browser::open_the_dashboard(web, URL, &stack.admin_token()).await;
    let victim = browser::served_by(web).await;
    let restarts = stack.restart_count(&victim);
    browser::click(web, &format!("[data-testid=kill-{victim}]")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.restart_count(&victim) == restarts {
        assert!(Instant::now() < deadline, "Kill in the browser, but {victim}'s container never died");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut replicas = std::collections::BTreeSet::new();
    for _ in 0..4 {
        web.refresh().await.unwrap();
        assert_eq!(browser::text(web, "[data-testid=user]").await, format!("👤 {name}"), "logged out by the kill");
        assert_eq!(browser::cart_badge(web).await, "2", "the cart changed");
        replicas.insert(browser::served_by(web).await);
    }
    assert!(replicas.iter().any(|r| *r != victim), "only {victim} answered: {replicas:?}");
    browser.stop().await;
    stack.wait_back(&victim).await;
}
