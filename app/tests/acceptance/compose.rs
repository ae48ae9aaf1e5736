//! `make docker-smoke`: the suite's replica-kill scenario against `docker compose up`, for a
//! machine with a Docker engine. Ignored in `make test` (this project's CI has no engine).
use std::{process::Command, time::Duration};

use sessionlab::session::Backend;

use crate::{harness::Cluster, suite};

struct Compose {
    url: String,
}

#[async_trait::async_trait(?Send)]
impl Cluster for Compose {
    fn url(&self) -> &str {
        &self.url
    }

    /// `docker kill` counts as a manual stop: compose's restart policy leaves it down until
    /// `docker compose start`, which [`bring_back`] does.
    async fn kill(&self, id: &str) {
        docker(&["compose", "kill", "--signal", "SIGKILL", id]);
        tokio::time::sleep(Duration::from_secs(2)).await; // HAProxy's check (1 s) marks it down
    }
}

fn docker(args: &[&str]) {
    let status = Command::new("docker").args(args).status().expect("docker is installed");
    assert!(status.success(), "docker {args:?} failed");
}

fn bring_back(id: &str) {
    docker(&["compose", "start", id]);
}

#[tokio::test]
#[ignore = "needs a Docker engine and a running `docker compose up`: make docker-smoke"]
async fn a_replica_kill_in_compose() {
    let backend: Backend = std::env::var("SMOKE_BACKEND").expect("SMOKE_BACKEND").parse().unwrap();
    let url = std::env::var("SESSIONLAB_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let compose = Compose { url };
    let victim = suite::survives_a_replica_kill(&compose, backend).await;
    bring_back(&victim);
}
