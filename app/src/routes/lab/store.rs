//! The session store on the dashboard: whether it answers, and how to stop and start it. A store
//! outage is an experiment of its own, and the dashboard is where a person goes to understand
//! it, so the dashboard keeps working while the store is down (`works_without_the_store` in the
//! session middleware).
//!
//! Stopping and starting is the job of whoever runs the store. Under `sessionlab lab`, that is
//! the lab process, the replicas' parent: the buttons ask it with a signal (SIGUSR1 stops,
//! SIGUSR2 starts). Under compose, it is Docker, which a replica must not be able to drive: the
//! dashboard shows the commands instead.
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use nix::{sys::signal::Signal, unistd::Pid};
use serde::{Deserialize, Serialize};

use super::{LabControls, controls::ControlForm};
use crate::{
    error::AppError,
    lab::RedisTopology as Topology,
    routes::{csrf::CsrfToken, pages::see_other},
    session::{Backend, Layer},
    startup::AppInfo,
};

/// A store that does not answer within this long is shown as down: the dashboard must not hang.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
const SENTINEL_COMPOSE: &str = "docker compose --env-file docker/redis-sentinel.env";
const CLUSTER_COMPOSE: &str = "docker compose --env-file docker/redis-cluster.env";

/// What the dashboard shows about the store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStatus {
    /// What holds the sessions (or their revocation list), in a few words.
    pub name: &'static str,
    pub up: bool,
    /// The compose command and service to stop and start it, for the commands the page shows.
    pub compose: &'static str,
    pub service: &'static str,
}

/// `None` for the strategies that keep no session state outside the replicas or the client.
pub async fn status(info: &AppInfo, layer: &Layer) -> Option<StoreStatus> {
    let (name, service) = held_by(info)?;
    let up = matches!(tokio::time::timeout(PING_TIMEOUT, layer.ping()).await, Ok(Ok(())));
    // docker-compose.yml's Redis profiles: a server that starts as a primary (after a failover the
    // sentinels or the cluster may have made it a replica).
    let (compose, service) = match (service, info.redis_topology) {
        ("redis", Topology::Sentinel) => (SENTINEL_COMPOSE, "redis-a"),
        ("redis", Topology::Cluster) => (CLUSTER_COMPOSE, "redis-node-1"),
        _ => ("docker compose", service),
    };
    let name = match (name, info.redis_topology) {
        ("Redis", Topology::Sentinel) => "Redis Sentinel",
        ("Redis", Topology::Cluster) => "Redis Cluster",
        _ => name,
    };
    Some(StoreStatus { name, up, compose, service })
}

/// The store this replica's sessions depend on, and its compose service.
fn held_by(info: &AppInfo) -> Option<(&'static str, &'static str)> {
    match info.backend {
        Backend::Redis | Backend::ActixRedis => Some(("Redis", "redis")),
        Backend::Memcached => Some(("memcached", "memcached")),
        Backend::Postgres => Some(("PostgreSQL", "postgres")),
        Backend::Mysql => Some(("MariaDB", "mariadb")),
        Backend::ActixCookie => None,
        Backend::Memory | Backend::Sticky | Backend::Cookie | Backend::Jwt if !info.revocation => None,
        Backend::Memory | Backend::Sticky | Backend::Cookie | Backend::Jwt => Some(if info.revocation_in_redis {
            ("the revocation list, in Redis", "redis")
        } else {
            ("the revocation list, in the app database", "postgres")
        }),
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Stop,
    Start,
}

/// `POST /lab/store/{stop|start}`: asks `sessionlab lab` (this replica's parent) to stop or start
/// the store. It answers before the store has changed; the dashboard shows it when it has.
pub async fn control(
    req: HttpRequest,
    controls: web::Data<LabControls>,
    csrf: CsrfToken,
    action: web::Path<Action>,
    form: web::Form<ControlForm>,
) -> Result<HttpResponse, AppError> {
    controls.require_admin(&req)?;
    csrf.verify(form.csrf())?;
    let supervisor = controls.store_supervisor().ok_or_else(|| {
        AppError::LabControlFailed(
            "this replica was not started by `sessionlab lab`, so it cannot stop or start the store: \
             with compose, run `docker compose stop <store>` and `docker compose start <store>`"
                .into(),
        )
    })?;
    let (signal, notice) = match action.into_inner() {
        Action::Stop => (Signal::SIGUSR1, "store=stopping"),
        Action::Start => (Signal::SIGUSR2, "store=starting"),
    };
    nix::sys::signal::kill(Pid::from_raw(supervisor as i32), signal)
        .map_err(|err| AppError::LabControlFailed(format!("could not signal the lab (pid {supervisor}): {err}")))?;
    Ok(see_other(&format!("/lab?{notice}")))
}

impl LabControls {
    /// The lab process that runs the store, if it is still this replica's parent (a PID alone
    /// could have been reused by anything).
    pub fn store_supervisor(&self) -> Option<u32> {
        self.lab_supervisor.filter(|pid| nix::unistd::getppid().as_raw() as u32 == *pid)
    }
}
