//! The experiments of `sessionlab compare`, each against a running lab.
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{StatusCode, header::COOKIE};
use serde::Serialize;
use serde_json::json;

use super::{
    counters::{StoreCounter, app_store_calls},
    load::{self, LoadResult, Op, User},
};
use crate::{haproxy_admin::ServerState, lab::Lab, session::COOKIE_NAME};

/// How long and how hard each experiment runs.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub load_seconds: f64,
    pub chaos_users: usize,
    pub chaos_seconds: f64,
}

impl Scale {
    pub fn full() -> Self {
        Self { load_seconds: 8.0, chaos_users: 50, chaos_seconds: 20.0 }
    }

    /// Small enough for CI: the whole comparison in about three minutes on two cores.
    pub fn quick() -> Self {
        Self { load_seconds: 1.0, chaos_users: 12, chaos_seconds: 4.0 }
    }
}

fn name(prefix: &str, n: usize) -> String {
    format!("{prefix}{n}_{}", hex::encode(rand::random::<[u8; 3]>()))
}

/// Throughput and latency at 1 and 32 clients, and what each request cost at the store.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub healthz_1: LoadResult,
    pub healthz_32: LoadResult,
    /// `/healthz` straight to one replica, not through HAProxy: what HAProxy's share costs.
    pub healthz_direct_32: LoadResult,
    /// wrk's rate on `/healthz` through HAProxy, 32 connections: whether our load generator is
    /// the bottleneck. `None` where wrk is not installed.
    pub wrk_healthz_32: Option<f64>,
    /// CPU time per request during `healthz_32`, by process: where the ceiling's time goes.
    pub healthz_cpu: Option<CpuPerRequest>,
    pub read_1: LoadResult,
    pub read_32: LoadResult,
    pub write_1: LoadResult,
    pub write_32: LoadResult,
    /// Session-store calls per request, counted by the replicas (`/metrics`).
    pub app_calls_per_read: f64,
    pub app_calls_per_write: f64,
    /// Round trips per request, counted by the store itself, where there is a store to ask.
    pub store_ops_per_read: Option<f64>,
    pub store_ops_per_write: Option<f64>,
    /// Writes refused by compare-and-set and re-applied, per write request.
    pub conflicts_per_write: f64,
    /// Session saves during the read run, per read: the budget says none.
    pub saves_per_read: f64,
    /// Writes the store saw during the read run, per read (counted at the store).
    pub store_writes_per_read: Option<f64>,
    /// The store's own rate for a read's operation at 32 connections (its benchmark tool).
    pub store_read_rps: Option<f64>,
}

pub async fn throughput(
    lab: &Lab,
    counter: &StoreCounter,
    read_command: &[&str],
    scale: Scale,
) -> anyhow::Result<Throughput> {
    let base = lab.url();
    let mut users = Vec::new();
    for n in 0..32 {
        users.push(User::sign_up_with_three_items(base, name("load", n)).await?);
    }
    let seconds = Duration::from_secs_f64(scale.load_seconds);
    // Warm every replica's connection pools before anything is measured.
    load::run(base, &users, Op::Read, Duration::from_millis(300)).await;
    load::run(base, &users, Op::Write, Duration::from_millis(300)).await;

    let healthz_1 = load::run(base, &users[..1], Op::Healthz, seconds).await;
    let cpu_before = CpuTimes::of(&lab.state());
    let healthz_32 = load::run(base, &users, Op::Healthz, seconds).await;
    let healthz_cpu = cpu_before.and_then(|before| before.per_request_until(&lab.state(), healthz_32.requests));
    let replica = lab.state().replicas.first().map(|r| r.url.clone()).ok_or_else(|| anyhow::anyhow!("no replica"))?;
    let healthz_direct_32 = load::run(&replica, &users, Op::Healthz, seconds).await;
    let wrk_healthz_32 = wrk(&format!("{base}/healthz"), scale.load_seconds).await;
    let read_1 = load::run(base, &users[..1], Op::Read, seconds).await;
    let write_1 = load::run(base, &users[..1], Op::Write, seconds).await;

    let (calls, ops, writes) = (app_store_calls(lab).await?, counter.total().await?, counter.writes().await?);
    let read_32 = load::run(base, &users, Op::Read, seconds).await;
    let (calls_after_read, ops_after_read) = (app_store_calls(lab).await?, counter.total().await?);
    let writes_after_read = counter.writes().await?;
    let write_32 = load::run(base, &users, Op::Write, seconds).await;
    let (calls_after_write, ops_after_write) = (app_store_calls(lab).await?, counter.total().await?);

    let store_read_rps = counter.own_read_rate(read_command, scale.load_seconds).await?;
    let per = |after: f64, before: f64, run: &LoadResult| (after - before) / run.requests.max(1) as f64;
    let conflicts = calls_after_write.get("save/conflict").copied().unwrap_or(0.0)
        - calls_after_read.get("save/conflict").copied().unwrap_or(0.0);
    Ok(Throughput {
        app_calls_per_read: per(total(&calls_after_read), total(&calls), &read_32),
        app_calls_per_write: per(total(&calls_after_write), total(&calls_after_read), &write_32),
        store_ops_per_read: ops.zip(ops_after_read).map(|(b, a)| per(a, b, &read_32)),
        store_ops_per_write: ops_after_read.zip(ops_after_write).map(|(b, a)| per(a, b, &write_32)),
        conflicts_per_write: conflicts / write_32.requests.max(1) as f64,
        saves_per_read: saves(&calls_after_read, &calls) / read_32.requests.max(1) as f64,
        store_writes_per_read: writes.zip(writes_after_read).map(|(b, a)| per(a, b, &read_32)),
        store_read_rps,
        healthz_1,
        healthz_32,
        healthz_direct_32,
        wrk_healthz_32,
        healthz_cpu,
        read_1,
        read_32,
        write_1,
        write_32,
    })
}

/// Microseconds of CPU (user + system) each process spent per request.
#[derive(Debug, Clone, Serialize)]
pub struct CpuPerRequest {
    pub haproxy_us: f64,
    /// The three replicas together.
    pub replicas_us: f64,
    /// This process: the load generator (and the lab's supervision, which is idle meanwhile).
    pub generator_us: f64,
}

/// CPU seconds used so far by HAProxy, the replicas and this process, from `/proc/<pid>/stat`.
struct CpuTimes {
    haproxy: f64,
    replicas: f64,
    generator: f64,
}

impl CpuTimes {
    /// `None` where `/proc` cannot tell (not Linux) or a process is down.
    fn of(state: &crate::lab::LabState) -> Option<Self> {
        let mut replicas = 0.0;
        for replica in &state.replicas {
            replicas += cpu_seconds(&replica.pid?.to_string())?;
        }
        Some(Self { haproxy: cpu_seconds(&state.haproxy.pid?.to_string())?, replicas, generator: cpu_seconds("self")? })
    }

    fn per_request_until(self, state: &crate::lab::LabState, requests: u64) -> Option<CpuPerRequest> {
        let after = Self::of(state)?;
        let per = |after: f64, before: f64| (after - before) * 1e6 / requests.max(1) as f64;
        Some(CpuPerRequest {
            haproxy_us: per(after.haproxy, self.haproxy),
            replicas_us: per(after.replicas, self.replicas),
            generator_us: per(after.generator, self.generator),
        })
    }
}

/// utime + stime of `/proc/<pid>/stat`, in seconds. Linux reports them in USER_HZ ticks, which
/// its ABI fixes at 100 a second whatever the kernel's own tick rate.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Requests per second wrk reaches on `url` with one thread and 32 connections.
async fn wrk(url: &str, seconds: f64) -> Option<f64> {
    let duration = format!("{}s", seconds.ceil().max(1.0));
    let out = tokio::process::Command::new("wrk").args(["-t1", "-c32", "-d", &duration, url]).output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())
}

fn total(calls: &BTreeMap<String, f64>) -> f64 {
    calls.values().sum()
}

/// `save` calls (of any result) between two snapshots.
fn saves(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> f64 {
    let sum = |calls: &BTreeMap<String, f64>| {
        calls.iter().filter(|(k, _)| k.starts_with("save/")).map(|(_, v)| v).sum::<f64>()
    };
    sum(after) - sum(before)
}

/// The session cookie's size as the cart grows, and where the strategy refuses to grow it.
#[derive(Debug, Clone, Serialize)]
pub struct CookieSizes {
    /// (cart lines, bytes of `sl_session=<value>`).
    pub points: Vec<(usize, usize)>,
    /// The cart lines at which a write was refused with 413, if it was.
    pub wall_at: Option<usize>,
    /// The first cart line answered 2xx with a `Set-Cookie` over 4,096 bytes, which browsers
    /// drop without a word (the stock `actix-cookie`).
    pub dropped_from: Option<usize>,
    /// The cart line answered with a 5xx instead, if one was.
    pub failed_at: Option<usize>,
}

pub async fn cookie_sizes(lab: &Lab) -> anyhow::Result<CookieSizes> {
    let user = User::new(name("bytes", 0))?;
    let base = lab.url();
    let res = user
        .http
        .post(format!("{base}/api/register"))
        .json(&json!({"username": user.name, "password": format!("pw-{}-long", user.name)}))
        .send()
        .await?;
    let mut size = session_cookie_bytes(&res).unwrap_or(0);
    let mut points = vec![(0, size)];
    let (mut wall_at, mut dropped_from, mut failed_at) = (None, None, None);
    let products = crate::catalog::seed_products().count();
    for (lines, product) in (1..=products).zip(1i64..) {
        let res = user
            .http
            .post(format!("{base}/api/cart/items"))
            .json(&json!({"product_id": product, "qty": 1}))
            .send()
            .await?;
        if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
            wall_at = Some(lines);
            break;
        }
        if res.status().is_server_error() {
            failed_at = Some(lines);
            break;
        }
        anyhow::ensure!(res.status().is_success(), "adding product {product}: {}", res.status());
        size = session_cookie_bytes(&res).unwrap_or(size);
        if size > crate::session::MAX_COOKIE_BYTES && dropped_from.is_none() {
            dropped_from = Some(lines);
        }
        points.push((lines, size));
    }
    Ok(CookieSizes { points, wall_at, dropped_from, failed_at })
}

fn session_cookie_bytes(res: &reqwest::Response) -> Option<usize> {
    res.cookies().find(|c| c.name() == COOKIE_NAME).map(|c| COOKIE_NAME.len() + 1 + c.value().len())
}

/// What a crash (or a store restart) in the middle of a load did to the users.
#[derive(Debug, Clone, Serialize)]
pub struct Chaos {
    pub users: usize,
    pub sessions_lost: usize,
    pub acknowledged_writes: u64,
    /// Acknowledged writes missing afterwards, in sessions that survived.
    pub acknowledged_writes_lost: u64,
    /// Acknowledged writes that went with a lost session.
    pub writes_lost_with_sessions: u64,
    /// Adds found in a cart beyond those acknowledged: applied twice, or applied by a request
    /// whose answer never arrived.
    pub writes_applied_twice: u64,
    pub failed_requests: u64,
    pub server_errors: u64,
    /// From the disruption to the last 5xx (0 when there was none), in milliseconds.
    pub recovery_ms: f64,
    /// The slowest request of the run, answered or not, in milliseconds: a client that retries
    /// through an outage (Redis Cluster's) turns 503s into waits.
    pub slowest_ms: f64,
    /// The replica killed (the one holding the most users at that moment), for a replica kill.
    pub victim: Option<Victim>,
    pub spread: Spread,
}

#[derive(Debug, Clone, Serialize)]
pub struct Victim {
    pub id: String,
    pub pid: u32,
}

/// How the requests and the users spread over the replicas before the disruption and after it:
/// the uneven load the article predicts for sticky sessions, next to round robin's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    /// HTTP requests HAProxy sent each replica (its `req_tot`), in the half of the run before the
    /// disruption and in the half after it.
    pub requests_before: BTreeMap<String, u64>,
    pub requests_after: BTreeMap<String, u64>,
    /// Users by the replica that answered their latest request: at the disruption, and at the end.
    pub users_before: BTreeMap<String, usize>,
    pub users_after: BTreeMap<String, usize>,
}

/// HAProxy's request counter of every replica (empty if its runtime API does not answer).
async fn requests_by_replica(lab: &Lab) -> BTreeMap<String, u64> {
    let servers = lab.haproxy_admin().replicas().await.unwrap_or_default();
    servers.into_iter().map(|s| (s.id, s.requests)).collect()
}

fn minus(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(id, n)| (id.clone(), n.saturating_sub(before.get(id).copied().unwrap_or(0)))).collect()
}

/// How many users each replica answered last.
fn tally(latest: &std::sync::Mutex<Vec<Option<String>>>) -> BTreeMap<String, usize> {
    let mut users = BTreeMap::new();
    for replica in latest.lock().unwrap_or_else(|p| p.into_inner()).iter().flatten() {
        *users.entry(replica.clone()).or_default() += 1;
    }
    users
}

/// What to do to the lab half-way through.
#[derive(Debug, Clone, Copy)]
pub enum Disruption {
    KillReplica,
    RestartStore,
    /// Kill a Redis primary of a Sentinel or Cluster lab (SIGKILL): a replica is promoted.
    KillRedisPrimary,
}

pub async fn under_load(lab: &Lab, scale: Scale, disruption: Disruption) -> anyhow::Result<Chaos> {
    let base: Arc<str> = lab.url().into();
    let mut users = Vec::new();
    for n in 0..scale.chaos_users {
        users.push(User::sign_up_with_three_items(&base, name("chaos", n)).await?);
    }
    let latest = Arc::new(std::sync::Mutex::new(vec![None; users.len()]));
    let requests_at_start = requests_by_replica(lab).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(scale.chaos_seconds);
    let workers: Vec<_> = users
        .iter()
        .cloned()
        .enumerate()
        .map(|(n, user)| {
            let base = base.clone();
            let latest = latest.clone();
            tokio::spawn(async move {
                let (mut acknowledged, mut failed, mut errors_at) = (0u64, 0u64, Vec::new());
                let mut slowest = Duration::ZERO;
                let mut step = n as i64;
                while Instant::now() < deadline {
                    // Twenty products beyond the first three, one at a time: a cart of 23 lines
                    // fits every strategy's cookie, and at a thousand adds per user in the full run
                    // no line comes near the 99 limit (a 422 would count as a failure).
                    let product = 4 + step % 20;
                    step += 1;
                    let sent = Instant::now();
                    let status = user.add_on(&base, product).await;
                    slowest = slowest.max(sent.elapsed());
                    match status {
                        Ok((status, replica)) if status.is_success() => {
                            acknowledged += 1;
                            latest.lock().unwrap_or_else(|p| p.into_inner())[n] = Some(replica);
                        }
                        Ok((status, _)) => {
                            failed += 1;
                            if status.is_server_error() {
                                errors_at.push(Instant::now());
                            }
                        }
                        Err(_) => failed += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (acknowledged, failed, errors_at, slowest)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(scale.chaos_seconds / 2.0)).await;
    let users_before = tally(&latest);
    let requests_at_disruption = requests_by_replica(lab).await;
    let disrupted_at = Instant::now();
    let mut victim = None;
    match disruption {
        Disruption::KillReplica => {
            // The replica with the most users: with affinity by address, the one holding everyone.
            let busiest = users_before.iter().max_by_key(|(_, n)| **n).map(|(id, _)| id.clone());
            let id = busiest.unwrap_or_else(|| "app2".to_owned());
            let pid = lab.kill_replica(&id).await?;
            victim = Some(Victim { id, pid });
        }
        Disruption::RestartStore => {
            let store = lab.store().ok_or_else(|| anyhow::anyhow!("this strategy has no store to restart"))?;
            store.lock().await.restart().await?;
            lab.refresh_store_state().await;
        }
        Disruption::KillRedisPrimary => kill_redis_primary(lab).await?,
    }
    let mut chaos = Chaos {
        users: users.len(),
        sessions_lost: 0,
        acknowledged_writes: 0,
        acknowledged_writes_lost: 0,
        writes_lost_with_sessions: 0,
        writes_applied_twice: 0,
        failed_requests: 0,
        server_errors: 0,
        recovery_ms: 0.0,
        slowest_ms: 0.0,
        victim,
        spread: Spread::default(),
    };
    let mut acknowledged_by_user = Vec::new();
    for worker in workers {
        let (acknowledged, failed, errors_at, slowest) = worker.await?;
        chaos.slowest_ms = chaos.slowest_ms.max(slowest.as_secs_f64() * 1e3);
        chaos.acknowledged_writes += acknowledged;
        chaos.failed_requests += failed;
        chaos.server_errors += errors_at.len() as u64;
        if let Some(last) = errors_at.iter().filter(|at| **at >= disrupted_at).max() {
            chaos.recovery_ms = chaos.recovery_ms.max((*last - disrupted_at).as_secs_f64() * 1e3);
        }
        acknowledged_by_user.push(acknowledged);
    }
    chaos.spread = Spread {
        requests_before: minus(&requests_at_disruption, &requests_at_start),
        requests_after: minus(&requests_by_replica(lab).await, &requests_at_disruption),
        users_before,
        users_after: tally(&latest),
    };
    if matches!(disruption, Disruption::KillRedisPrimary) {
        wait_until_ready(lab).await?;
    }
    for (user, acknowledged) in users.iter().zip(acknowledged_by_user) {
        let me = user.http.get(format!("{base}/api/me")).send().await?;
        if me.status() != StatusCode::OK {
            chaos.sessions_lost += 1;
            chaos.writes_lost_with_sessions += acknowledged;
            continue;
        }
        let cart: serde_json::Value = user.http.get(format!("{base}/api/cart")).send().await?.json().await?;
        let added: i64 = cart["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["product_id"].as_i64().is_some_and(|id| id > 3))
            .map(|item| item["qty"].as_i64().unwrap_or(0))
            .sum();
        chaos.acknowledged_writes_lost += acknowledged.saturating_sub(added.max(0) as u64);
        chaos.writes_applied_twice += (added.max(0) as u64).saturating_sub(acknowledged);
    }
    Ok(chaos)
}

/// Kills the Redis primary (Sentinel's, or in a Cluster the one serving hash slot 0) while the
/// load runs, waits for its replica to take over, and starts the killed server again, as a
/// supervisor would: it comes back as the new primary's replica.
async fn kill_redis_primary(lab: &Lab) -> anyhow::Result<()> {
    const WITHIN: Duration = Duration::from_secs(30);
    if let Some(group) = lab.sentinel() {
        let old = group.lock().await.kill_primary().await?;
        group.lock().await.wait_for_failover(old, WITHIN).await?;
        group.lock().await.restart(old)
    } else if let Some(group) = lab.cluster() {
        let old = group.lock().await.kill_primary_of(0).await?;
        group.lock().await.wait_for_failover(0, old, WITHIN).await?;
        group.lock().await.restart(old)
    } else {
        anyhow::bail!("this lab runs Redis on one server: there is no replica to fail over to")
    }
}

/// Until every replica answers `/readyz` (which asks the session store): six in a row.
pub async fn wait_until_ready(lab: &Lab) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    // HAProxy's rotation follows /readyz: every replica back in it, not just one that answers.
    while !lab
        .haproxy_admin()
        .replicas()
        .await
        .is_ok_and(|all| all.iter().all(|r| matches!(r.state, ServerState::Up | ServerState::Maintenance)))
    {
        anyhow::ensure!(Instant::now() < deadline, "the replicas did not reach the store again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Fifty "add one" requests of one session at once, across the replicas.
#[derive(Debug, Clone, Serialize)]
pub struct Concurrent {
    pub sent: usize,
    pub acknowledged: usize,
    pub conflicts: usize,
    /// In the cart afterwards, out of the acknowledged ones.
    pub kept: i64,
}

pub async fn concurrent_adds(lab: &Lab) -> anyhow::Result<Concurrent> {
    let base = lab.url();
    let user = User::sign_up_with_three_items(base, name("race", 0)).await?;
    let sends: Vec<_> = (0..50)
        .map(|_| {
            let user = user.clone();
            let base = base.to_owned();
            tokio::spawn(async move { user.add(&base, 9).await })
        })
        .collect();
    let (mut acknowledged, mut conflicts) = (0, 0);
    for send in sends {
        match send.await? {
            Ok(StatusCode::OK) => acknowledged += 1,
            Ok(StatusCode::CONFLICT) => conflicts += 1,
            _ => {}
        }
    }
    let cart: serde_json::Value = user.http.get(format!("{base}/api/cart")).send().await?.json().await?;
    let kept = cart["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["product_id"] == 9)
        .and_then(|item| item["qty"].as_i64())
        .unwrap_or(0);
    Ok(Concurrent { sent: 50, acknowledged, conflicts, kept })
}

/// From a logout through HAProxy until every replica refuses a copy of the cookie.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    pub trials: usize,
    /// The slowest trial, in milliseconds.
    pub max_ms: f64,
    /// Whether every replica refused the copy in the end.
    pub refused_everywhere: bool,
}

pub async fn revocation(lab: &Lab) -> anyhow::Result<Revocation> {
    let replicas: Vec<String> = lab.state().replicas.into_iter().map(|r| r.url).collect();
    let bare = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
    let (mut max_ms, mut refused_everywhere, mut trials) = (0f64, true, 0);
    for n in 0..5 {
        trials += 1;
        let user = User::sign_up_with_three_items(lab.url(), name("revoke", n)).await?;
        // A copy of the cookies as the browser holds them, as a thief would replay them.
        let copy = user.cookie_header(lab.url()).ok_or_else(|| anyhow::anyhow!("no session cookie to copy"))?;
        let logout = user.http.post(format!("{}/api/logout", lab.url())).json(&json!({})).send().await?;
        anyhow::ensure!(logout.status() == StatusCode::NO_CONTENT, "logout: {}", logout.status());
        let logged_out = Instant::now();
        for replica in &replicas {
            let mut refused = false;
            while logged_out.elapsed() < Duration::from_secs(5) {
                let me = bare.get(format!("{replica}/api/me")).header(COOKIE, &copy).send().await?;
                if me.status() == StatusCode::UNAUTHORIZED {
                    refused = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            refused_everywhere &= refused;
            if !refused {
                break;
            }
        }
        max_ms = max_ms.max(logged_out.elapsed().as_secs_f64() * 1e3);
        // One copy still accepted is the answer; more trials would only wait 5 s each.
        if !refused_everywhere {
            break;
        }
    }
    Ok(Revocation { trials, max_ms, refused_everywhere })
}
