//! A network partition between one replica and the session store: the lab runs app1 in a network
//! namespace of its own and the test makes that namespace drop every packet to Redis, as a failed
//! link or a firewall rule does: nothing refuses app1's connections, they just go quiet. The
//! compose suite runs the same steps with `docker network disconnect`.
//!
//! What must happen: app1's `/readyz` fails (its Redis client gives up after its timeout), so
//! HAProxy's readiness check takes it out of the rotation; the users it served move to app2 and
//! app3, which are unaffected; the only errors anyone sees meanwhile are app1's own 503s; no
//! acknowledged write is lost; and once the partition heals, app1 is back in the rotation.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sessionlab::{
    lab::{Lab, LabConfig},
    session::Backend,
};

use crate::harness::{Client, spawn_lab_with, username};

/// Three replicas behind HAProxy, app1 of which can be cut from the session store.
#[async_trait::async_trait(?Send)]
pub trait Partition {
    fn url(&self) -> &str;
    async fn cut(&self);
    async fn heal(&self);
    /// More checks while app1 is cut off and out of the rotation.
    async fn while_cut(&self) {}
}

/// app1's state as the dashboard reports HAProxy's (`up`, `not-ready`, `down`…).
async fn state_of_app1(url: &str) -> String {
    let Ok(reply) = reqwest::get(format!("{url}/lab/state")).await else { return "unknown".into() };
    let Ok(state) = reply.json::<serde_json::Value>().await else { return "unknown".into() };
    let app1 = state["replicas"].as_array().and_then(|r| r.iter().find(|r| r["id"] == "app1")).cloned();
    app1.and_then(|r| r["state"].as_str().map(str::to_owned)).unwrap_or_else(|| "unknown".into())
}

async fn wait_for_app1(url: &str, wanted: &str) -> Duration {
    let start = Instant::now();
    loop {
        let state = state_of_app1(url).await;
        if state == wanted {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "app1 is still {state}, not {wanted}, after a minute");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct User {
    client: Client,
    product: i64,
    acknowledged: i64,
    attempted: i64,
}

impl User {
    /// Adds one of its product; anything but 200 or the app's own 503 fails the test.
    async fn add(&mut self) -> StatusCode {
        self.attempted += 1;
        let reply = self.client.add(self.product, 1).await;
        match reply.status {
            StatusCode::OK => self.acknowledged += 1,
            // The app's own answer (the session store's or, in compose, where app1 loses
            // PostgreSQL too, the database's), never HAProxy's.
            StatusCode::SERVICE_UNAVAILABLE => assert!(
                reply.replica == "app1" && reply.body["error"].as_str().is_some_and(|e| e.ends_with("_unavailable")),
                "a 503 that is not app1's own: {}",
                reply.text
            ),
            other => panic!("{other} from {} during the partition: {}", reply.replica, reply.text),
        }
        reply.status
    }

    /// What the cart holds of its product.
    async fn quantity(&self) -> i64 {
        let (reply, items) = self.client.cart().await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {}", reply.replica, reply.text);
        items.iter().find(|(p, _)| *p == self.product).map_or(0, |(_, qty)| *qty)
    }
}

/// Six users write to their carts across a partition of app1 and its healing.
pub async fn survives_a_partition(cluster: &impl Partition) {
    let url = cluster.url();
    let mut users = Vec::new();
    for product in 1..=6 {
        let client = Client::new(url);
        client.register_and_login(&username("partition")).await;
        let mut user = User { client, product, acknowledged: 0, attempted: 0 };
        assert_eq!(user.add().await, StatusCode::OK);
        users.push(user);
    }
    assert_eq!(state_of_app1(url).await, "up");

    cluster.cut().await;
    // Everyone keeps writing while HAProxy finds out: app1's users may see its 503, nobody worse.
    let mut unavailable = 0;
    let writes = async {
        loop {
            for user in &mut users {
                unavailable += usize::from(user.add().await == StatusCode::SERVICE_UNAVAILABLE);
            }
        }
    };
    let out = tokio::select! {
        out = wait_for_app1(url, "not-ready") => out,
        never = writes => never,
    };
    eprintln!("app1 out of rotation {} ms after the cut; {unavailable} writes got its 503", out.as_millis());

    // Out of rotation, it serves no one, and nobody notices: app2 and app3 carry every session.
    for user in &mut users {
        for _ in 0..3 {
            assert_eq!(user.add().await, StatusCode::OK);
            let me = user.client.get("/api/me").await;
            assert_eq!(me.status, StatusCode::OK, "{}", me.text);
            assert_ne!(me.replica, "app1", "HAProxy sent a request to the partitioned replica");
        }
    }
    cluster.while_cut().await;

    cluster.heal().await;
    let back = wait_for_app1(url, "up").await;
    eprintln!("app1 back in rotation {} ms after the partition healed", back.as_millis());
    let mut served_by_app1 = 0;
    for user in &mut users {
        for _ in 0..3 {
            assert_eq!(user.add().await, StatusCode::OK);
            let me = user.client.get("/api/me").await;
            assert_eq!(me.status, StatusCode::OK, "{}", me.text);
            served_by_app1 += usize::from(me.replica == "app1");
        }
    }
    assert!(served_by_app1 > 0, "app1 is back in rotation but served none of 18 requests");

    // Nothing acknowledged was lost. (A write app1 answered 503 may still have reached Redis
    // before the cut swallowed the reply: at most what was attempted.)
    for user in &users {
        let quantity = user.quantity().await;
        assert!(
            (user.acknowledged..=user.attempted).contains(&quantity),
            "product {}: {} acknowledged, {} attempted, the cart has {quantity}",
            user.product,
            user.acknowledged,
            user.attempted
        );
    }
}

/// The native lab, app1 in a network namespace of its own.
struct Namespace {
    lab: Lab,
}

#[async_trait::async_trait(?Send)]
impl Partition for Namespace {
    fn url(&self) -> &str {
        self.lab.url()
    }

    async fn cut(&self) {
        self.lab.partition().await.unwrap();
    }

    async fn heal(&self) {
        self.lab.heal().await.unwrap();
    }

    /// app1 itself runs, and says what it lacks.
    async fn while_cut(&self) {
        let app1 = Client::new(&self.lab.state().replicas[0].url);
        assert_eq!(app1.get("/healthz").await.status, StatusCode::OK);
        let ready = app1.get("/readyz").await;
        assert_eq!(
            (ready.status, ready.body["session_store"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
        );
    }
}

#[tokio::test]
async fn a_replica_cut_from_the_store_leaves_the_rotation_and_comes_back_when_the_partition_heals() {
    // Network namespaces and nftables need root: said and skipped elsewhere, required in CI.
    if !nix::unistd::geteuid().is_root() && std::env::var_os("CI").is_none() {
        eprintln!("partition: SKIPPED, network namespaces need root");
        return;
    }
    let mut config = LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into());
    config.partitionable = true;
    let lab = spawn_lab_with(config).await;
    let app1 = Client::new(&lab.state().replicas[0].url);
    assert_eq!(app1.get("/readyz").await.status, StatusCode::OK, "app1 reaches Redis from its namespace");
    let cluster = Namespace { lab };
    survives_a_partition(&cluster).await;
    cluster.lab.shutdown().await;
}
