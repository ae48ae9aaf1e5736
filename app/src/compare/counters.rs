//! Store operations, counted twice: by the replicas (their `/metrics`) and by the store itself
//! (Redis `INFO commandstats`, memcached `stats`, PostgreSQL's statement log, MariaDB's `Com_*`
//! counters). The first says what the app asked for, the second what the store did.
use std::{collections::BTreeMap, path::PathBuf};

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
    /// The private PostgreSQL's log, with `log_statement = all`.
    Postgres(PathBuf),
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
                StoreCounter::Postgres(lab.dir().join("postgres/postgres.log"))
            }
            StoreKind::Mariadb => StoreCounter::Mariadb(store.url()),
        })
    }

    /// Operations so far; `None` where there is no store of its own to ask.
    pub async fn total(&self) -> anyhow::Result<Option<f64>> {
        Ok(Some(match self {
            StoreCounter::None => return Ok(None),
            StoreCounter::Redis(url) => {
                let mut conn = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
                let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await?;
                info.lines()
                    .filter(|line| line.starts_with("cmdstat_") && !line.starts_with("cmdstat_info:"))
                    .filter_map(|line| line.split("calls=").nth(1)?.split(',').next()?.parse::<f64>().ok())
                    .sum()
            }
            StoreCounter::Memcached(addr) => {
                let mut client = async_memcached::Client::new(format!("tcp://{addr}")).await?;
                let stats = client.stats().await?;
                ["cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses"]
                    .iter()
                    .filter_map(|key| stats.get(*key)?.parse::<f64>().ok())
                    .sum()
            }
            StoreCounter::Postgres(log) => std::fs::read_to_string(log)?
                .lines()
                .filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement:"))
                .count() as f64,
            StoreCounter::Mariadb(url) => {
                let url = url.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
                    #[derive(QueryableByName)]
                    struct Status {
                        #[diesel(sql_type = Text, column_name = "Value")]
                        value: String,
                    }
                    let mut conn = MysqlConnection::establish(&url)?;
                    let rows: Vec<Status> = diesel::sql_query(
                        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_insert', 'Com_update', 'Com_delete')",
                    )
                    .load(&mut conn)?;
                    Ok(rows.iter().filter_map(|r| r.value.parse::<f64>().ok()).sum())
                })
                .await??
            }
        }))
    }
}
