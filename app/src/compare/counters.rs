//! Store operations, counted twice: by the replicas (their `/metrics`) and by the store itself
//! (Redis `INFO commandstats`, memcached `stats`, PostgreSQL's statement log, MariaDB's `Com_*`
//! counters). The first says what the app asked for, the second what the store did.
use std::{collections::BTreeMap, path::PathBuf};

use async_memcached::{AsciiProtocol, MetaProtocol};
use diesel::{Connection, MysqlConnection, PgConnection, QueryableByName, RunQueryDsl, sql_types::Text};

use crate::{
    lab::{Lab, StoreKind},
    metrics::parse,
    session::metered::STORE_OPERATIONS,
};

/// Every replica's session-store calls so far, by `op/result`.
pub async fn app_store_calls(lab: &Lab) -> anyhow::Result<BTreeMap<String, f64>> {
    let count = format!("{STORE_OPERATIONS}_count");
    let mut calls = BTreeMap::new();
    for replica in lab.state().replicas {
        let text = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(format!("{}/metrics", replica.url))
            .send()
            .await?
            .text()
            .await?;
        for sample in parse(&text).into_iter().filter(|s| s.name == count) {
            let label = |key: &str| sample.labels.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str());
            *calls.entry(format!("{}/{}", label("op"), label("result"))).or_default() += sample.value;
        }
    }
    Ok(calls)
}

/// A store that can say how many operations it has done.
pub enum StoreCounter {
    None,
    Redis(String),
    Memcached(String),
    /// The private PostgreSQL, whose log has `log_statement = all`.
    Postgres {
        log: PathBuf,
        url: String,
    },
    Mariadb(String),
}

impl StoreCounter {
    /// The counter for a lab's private store; `redis` is the revocation list's Redis, for the
    /// strategies that keep only that.
    pub async fn for_lab(lab: &Lab, redis: Option<String>) -> anyhow::Result<Self> {
        if let Some(url) = redis {
            return Ok(StoreCounter::Redis(url));
        }
        let Some(store) = lab.store() else { return Ok(StoreCounter::None) };
        let store = store.lock().await;
        Ok(match store.kind() {
            StoreKind::Redis => StoreCounter::Redis(store.url()),
            StoreKind::Memcached => StoreCounter::Memcached(store.url()),
            StoreKind::Postgres => {
                let url = store.url();
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let mut conn = PgConnection::establish(&url)?;
                    diesel::sql_query("ALTER SYSTEM SET log_statement = 'all'").execute(&mut conn)?;
                    diesel::sql_query("SELECT pg_reload_conf()").execute(&mut conn)?;
                    Ok(())
                })
                .await??;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                StoreCounter::Postgres { log: lab.dir().join("postgres/postgres.log"), url: store.url() }
            }
            StoreKind::Mariadb => StoreCounter::Mariadb(store.url()),
        })
    }

    /// Operations so far; `None` where there is no store of its own to ask.
    pub async fn total(&self) -> anyhow::Result<Option<f64>> {
        Ok(Some(match self {
            StoreCounter::None => return Ok(None),
            StoreCounter::Redis(url) => redis_calls(url, |cmd| cmd != "info").await?,
            StoreCounter::Memcached(addr) => {
                memcached_stats(addr, &["cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses"]).await?
            }
            StoreCounter::Postgres { log, .. } => postgres_statements(log, |_| true)?,
            StoreCounter::Mariadb(url) => {
                mariadb_status(url, "'Com_select', 'Com_insert', 'Com_update', 'Com_delete'").await?
            }
        }))
    }

    /// Writes so far (Redis `SET`s and scripts, memcached sets, SQL `INSERT`/`UPDATE`s): how
    /// often a request rewrote a session. `None` where there is no store of its own to ask.
    pub async fn writes(&self) -> anyhow::Result<Option<f64>> {
        Ok(Some(match self {
            StoreCounter::None => return Ok(None),
            StoreCounter::Redis(url) => {
                redis_calls(url, |cmd| ["set", "setex", "psetex", "eval", "evalsha", "fcall"].contains(&cmd)).await?
            }
            StoreCounter::Memcached(addr) => memcached_stats(addr, &["cmd_set"]).await?,
            StoreCounter::Postgres { log, .. } => {
                postgres_statements(log, |l| l.contains("INSERT") || l.contains("UPDATE"))?
            }
            StoreCounter::Mariadb(url) => mariadb_status(url, "'Com_insert', 'Com_update'").await?,
        }))
    }
}

/// Calls of the Redis commands `keep` selects, from `INFO commandstats`.
async fn redis_calls(url: &str, keep: impl Fn(&str) -> bool) -> anyhow::Result<f64> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await?;
    Ok(info
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_")?.split_once(':'))
        .filter(|(cmd, _)| keep(cmd))
        .filter_map(|(_, rest)| rest.split("calls=").nth(1)?.split(',').next()?.parse::<f64>().ok())
        .sum())
}

/// The sum of memcached's `stats` counters `keys`.
async fn memcached_stats(addr: &str, keys: &[&str]) -> anyhow::Result<f64> {
    let mut client = async_memcached::Client::new(format!("tcp://{addr}")).await?;
    let stats = client.stats().await?;
    Ok(keys.iter().filter_map(|key| stats.get(*key)?.parse::<f64>().ok()).sum())
}

/// Statements PostgreSQL executed (its log has `log_statement = all`) that `keep` selects.
fn postgres_statements(log: &std::path::Path, keep: impl Fn(&str) -> bool) -> anyhow::Result<f64> {
    Ok(std::fs::read_to_string(log)?
        .lines()
        .filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement:"))
        .filter(|l| keep(l))
        .count() as f64)
}

/// The sum of MariaDB's global status counters `names` (a quoted, comma-separated list).
async fn mariadb_status(url: &str, names: &'static str) -> anyhow::Result<f64> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        #[derive(QueryableByName)]
        struct Status {
            #[diesel(sql_type = Text, column_name = "Value")]
            value: String,
        }
        let mut conn = MysqlConnection::establish(&url)?;
        let rows: Vec<Status> =
            diesel::sql_query(format!("SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")).load(&mut conn)?;
        Ok(rows.iter().filter_map(|r| r.value.parse::<f64>().ok()).sum())
    })
    .await?
}

impl StoreCounter {
    /// The store's own rate, at 32 connections, for the operation a session read costs it,
    /// measured with the store's own benchmark tool (`redis-benchmark`, `pgbench`, `mysqlslap`;
    /// for memcached, which ships none in Debian, a loop of our own). `None` without a store.
    pub async fn own_read_rate(&self, redis_command: &[&str], seconds: f64) -> anyhow::Result<Option<f64>> {
        let (program, args, parse): (&str, Vec<String>, ParseRate) = match self {
            StoreCounter::None => return Ok(None),
            StoreCounter::Memcached(addr) => return memcached_read_rate(addr, seconds).await.map(Some),
            StoreCounter::Redis(url) => {
                let port = reqwest::Url::parse(url)?.port().unwrap_or(6379).to_string();
                let requests = ((seconds * 20_000.0) as u64).max(5_000).to_string();
                let mut args: Vec<String> =
                    ["-h", "127.0.0.1", "-p", &port, "-c", "32", "-n", &requests, "--csv"].map(str::to_owned).to_vec();
                args.extend(redis_command.iter().map(|a| (*a).to_owned()));
                ("redis-benchmark", args, |out, _| {
                    // "<test>","<rps>",… after the header line.
                    out.lines().nth(1)?.split(',').nth(1)?.trim_matches('"').parse().ok()
                })
            }
            StoreCounter::Postgres { url, .. } => {
                let script = std::env::temp_dir().join(format!("sessionlab-pgbench-{}.sql", std::process::id()));
                std::fs::write(&script, format!("{SESSION_LOOKUP};\n"))?;
                let url = url.clone();
                let args = vec![
                    "-n".into(),
                    "-c".into(),
                    "32".into(),
                    "-j".into(),
                    "2".into(),
                    "-T".into(),
                    format!("{}", seconds.ceil().max(1.0)),
                    "-f".into(),
                    script.display().to_string(),
                    url,
                ];
                let pgbench = crate::lab::stores::pg_binary("pgbench");
                return Ok(run_tool(&pgbench.display().to_string(), &args, seconds, |out, _| {
                    let line = out.lines().find(|l| l.starts_with("tps = "))?;
                    line.trim_start_matches("tps = ").split_whitespace().next()?.parse().ok()
                })
                .await);
            }
            StoreCounter::Mariadb(url) => {
                let url = reqwest::Url::parse(url)?;
                let queries = ((seconds * 5_000.0) as u64).max(2_000);
                let args = vec![
                    "-h".into(),
                    "127.0.0.1".into(),
                    "-P".into(),
                    url.port().unwrap_or(3306).to_string(),
                    "-u".into(),
                    url.username().to_owned(),
                    format!("--create-schema={}", url.path().trim_start_matches('/')),
                    "--concurrency=32".into(),
                    "--iterations=1".into(),
                    format!("--number-of-queries={queries}"),
                    format!("--query={SESSION_LOOKUP}"),
                ];
                return Ok(run_tool("mysqlslap", &args, queries as f64, |out, queries| {
                    let line = out.lines().find(|l| l.contains("Average number of seconds to run all queries"))?;
                    let secs: f64 = line.split(':').nth(1)?.split_whitespace().next()?.parse().ok()?;
                    (secs > 0.0).then(|| queries / secs)
                })
                .await);
            }
        };
        Ok(run_tool(program, &args, seconds, parse).await)
    }
}

/// memcached ships no benchmark tool in Debian (no memtier, no mc-crusher), so this one is ours:
/// 32 connections sending the `mg <key> v T<idle>` a session read sends, as fast as they can.
async fn memcached_read_rate(addr: &str, seconds: f64) -> anyhow::Result<f64> {
    const KEY: &str = "sessionlab:bench";
    let mut setup = async_memcached::Client::new(format!("tcp://{addr}")).await?;
    setup.set(KEY, &b"{}"[..], Some(1800), None).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut client = async_memcached::Client::new(format!("tcp://{addr}")).await?;
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while std::time::Instant::now() < deadline {
                if client.meta_get(KEY, false, None, Some(&["v", "T1800"])).await.is_err() {
                    break;
                }
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Finds the rate in a benchmark tool's output; the `f64` is what the tool was asked to do.
type ParseRate = fn(&str, f64) -> Option<f64>;

/// The lookup a session read makes, by primary key (any ID: the cost is the index probe).
const SESSION_LOOKUP: &str = "SELECT state, version, expires_at FROM sessions WHERE id = 'bench' AND expires_at > 0";

async fn run_tool(program: &str, args: &[String], scale: f64, parse: ParseRate) -> Option<f64> {
    let out = tokio::process::Command::new(program).args(args).output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let rate = parse(&text, scale);
    if rate.is_none() {
        tracing::warn!(program, output = %text.lines().take(5).collect::<Vec<_>>().join(" | "), "no rate in the output");
    }
    rate
}
