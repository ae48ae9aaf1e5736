//! Redis past one server: the `redis` strategy on Redis Sentinel and on Redis Cluster, a primary
//! killed under load, once as Redis replicates by default (asynchronously) and once with every
//! session write waiting for a replica (`REDIS_WAIT_REPLICAS=1`), with what that wait costs a
//! write.
use std::time::Duration;

use serde::Serialize;

use super::{
    experiments::{self, Chaos, Disruption, Scale},
    load::{self, LoadResult, Op, User},
};
use crate::{
    lab::{Lab, LabConfig, Logs, RedisTopology},
    session::Backend,
};

#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    #[serde(serialize_with = "topology_name")]
    pub topology: RedisTopology,
    /// `REDIS_WAIT_REPLICAS`: 0, Redis's default, or 1.
    pub wait_replicas: u32,
    /// Writes through HAProxy before anything fails, at 1 client and at 32.
    pub write_1: LoadResult,
    pub write_32: LoadResult,
    /// The primary killed while every user adds to their cart.
    pub chaos: Chaos,
}

pub async fn failover(
    binary: &std::path::Path,
    scale: Scale,
    topology: RedisTopology,
    wait_replicas: u32,
) -> anyhow::Result<Failover> {
    let mut config = LabConfig::new(Backend::Redis, binary.to_owned());
    config.logs = Logs::Files;
    config.redis_topology = topology;
    config.extra_env.push(("REDIS_WAIT_REPLICAS".into(), wait_replicas.to_string()));
    let lab = Lab::start(config).await?;
    let result = measure(&lab, scale, topology, wait_replicas).await;
    lab.shutdown().await;
    result
}

async fn measure(lab: &Lab, scale: Scale, topology: RedisTopology, wait_replicas: u32) -> anyhow::Result<Failover> {
    let base = lab.url();
    let mut users = Vec::new();
    for n in 0..32 {
        users.push(User::sign_up_with_three_items(base, format!("wait{wait_replicas}_{n}_{}", suffix())).await?);
    }
    let seconds = Duration::from_secs_f64(scale.load_seconds);
    load::run(base, &users, Op::Write, Duration::from_millis(300)).await;
    let write_1 = load::run(base, &users[..1], Op::Write, seconds).await;
    let write_32 = load::run(base, &users, Op::Write, seconds).await;
    // Long enough, even in the quick run, for writes to come back before the load stops: a
    // primary is called down after a second, and a replica promoted about a second later.
    let scale = Scale { chaos_seconds: scale.chaos_seconds.max(12.0), ..scale };
    let chaos = experiments::under_load(lab, scale, Disruption::KillRedisPrimary).await?;
    Ok(Failover { topology, wait_replicas, write_1, write_32, chaos })
}

fn topology_name<S: serde::Serializer>(topology: &RedisTopology, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(topology.as_str())
}

fn suffix() -> String {
    hex::encode(rand::random::<[u8; 3]>())
}
