//! `sessionlab lab`: the whole topology in one terminal, without Docker.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::{Affinity, Lab, LabConfig, Logs, RedisTopology};
use crate::session::Backend;

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Session strategy: memory, sticky, cookie, redis, memcached, postgres, mysql, jwt, actix-redis or
    /// actix-cookie.
    #[arg(long, env = "SESSION_BACKEND", default_value = "cookie")]
    pub backend: Backend,
    /// How many replicas (1 to 3, like the server lines in haproxy.cfg).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// HAProxy's port: open http://127.0.0.1:PORT.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// HAProxy's stats page port.
    #[arg(long, default_value_t = 8404)]
    pub stats_port: u16,
    /// Where to write what runs where (rewritten on every change, removed on exit).
    #[arg(long, default_value = "target/lab/state.json")]
    pub state_file: PathBuf,
    /// Redis keeps its append-only file, as in compose (`--redis-aof false`: nothing on disk, so
    /// a Redis restart logs everyone out).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub redis_aof: bool,
    /// With `--backend redis`: one Redis server (`single`), Redis Sentinel (`sentinel`: a
    /// primary, two replicas and three sentinels, which promote a replica when the primary dies),
    /// or Redis Cluster (`cluster`: three primaries with a replica each).
    #[arg(long, value_enum, default_value_t = RedisTopology::Single)]
    pub redis_topology: RedisTopology,
    /// `off` runs memory, sticky, cookie or jwt without their revocation list: the pure strategy,
    /// where nothing is looked up per request and a copied cookie outlives a logout.
    #[arg(long, env = "SESSION_REVOCATION", default_value = "on", value_parser = ["on", "off"])]
    pub revocation: String,
    /// With `--backend sticky`: how HAProxy pins a client, by its own `cookie` (the default) or
    /// by the client's address (`source`; every browser on this machine then shares one replica).
    #[arg(long, env = "STICKY_AFFINITY", value_enum, default_value_t = Affinity::Cookie)]
    pub affinity: Affinity,
    /// Don't run the spare replica (app4) that the dashboard can add to HAProxy's rotation.
    #[arg(long)]
    pub no_spare: bool,
    /// Leave a dead replica dead instead of restarting it after about a second.
    #[arg(long)]
    pub no_restart: bool,
    /// The HAProxy configuration (the file compose uses).
    #[arg(long, default_value = "docker/haproxy/haproxy.cfg")]
    pub haproxy_cfg: PathBuf,
}

pub fn run(args: LabArgs) -> anyhow::Result<()> {
    crate::telemetry::init(&crate::config::Settings::from_env()?);
    tokio::runtime::Runtime::new()?.block_on(async move {
        let binary = std::env::current_exe().context("cannot find the sessionlab binary")?;
        let mut config = LabConfig::new(args.backend, binary);
        config.replicas = args.replicas;
        config.port = args.port;
        config.stats_port = args.stats_port;
        config.restart = !args.no_restart;
        config.redis_append_only = args.redis_aof;
        config.redis_topology = args.redis_topology;
        config.revocation = args.revocation == "on";
        config.affinity = args.affinity;
        config.spare = !args.no_spare;
        config.state_file = Some(args.state_file.clone());
        config.haproxy_cfg = args.haproxy_cfg;
        config.logs = Logs::Inherit;
        // A store whose URL is in the environment (or .env) is used as it is; otherwise the lab
        // starts a private one.
        config.store_url = super::store_for(args.backend).and_then(|(_, variable)| non_empty_env(variable));
        config.database_url = non_empty_env("DATABASE_URL");
        config.store_buttons = true;
        // Listening before the replicas start: a button pressed at once must not kill the lab.
        let mut term = signal(SignalKind::terminate())?;
        let mut stop_store = signal(SignalKind::user_defined1())?;
        let mut start_store = signal(SignalKind::user_defined2())?;
        let lab = Lab::start(config).await?;
        print_banner(&lab, &args.state_file, args.revocation == "on");

        loop {
            // The dashboard's Stop and Start store buttons (a replica signals its parent, us).
            let running = tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = stop_store.recv() => false,
                _ = start_store.recv() => true,
            };
            eprintln!("{} the store, as the dashboard asked", if running { "starting" } else { "stopping" });
            if let Err(err) = lab.set_store_running(running).await {
                eprintln!("could not start the store: {err:#}");
            }
        }
        eprintln!("\nstopping the lab…");
        lab.shutdown().await;
        Ok(())
    })
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn print_banner(lab: &Lab, state_file: &std::path::Path, revocation: bool) {
    let state = lab.state();
    println!("\nsessionlab lab is up: backend {}", state.backend);
    println!("  open       {}", state.url);
    println!("  stats      {}", state.haproxy.stats_url);
    for store in &state.stores {
        match &store.persistence {
            Some(persistence) => println!("  {:<10} {}   ({persistence})", store.kind, store.url),
            None => println!("  {:<10} {}", store.kind, store.url),
        }
    }
    println!("  state      {}", state_file.display());
    for (i, replica) in state.replicas.iter().enumerate() {
        println!(
            "  {}  pid {:<7} crash it: kill -9 $(jq '.replicas[{i}].pid' {}){}",
            replica.id,
            replica.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            state_file.display(),
            if replica.id == super::SPARE { "   (the spare: out of rotation until /lab's Ready adds it)" } else { "" }
        );
    }
    println!("  dashboard  {}/lab   admin token: {}", state.url, lab.admin_token());
    let outcomes = lab.backend().outcomes();
    println!("  kill a replica:   {}", outcomes.replica_killed);
    println!("  restart a store:  {}", outcomes.store_restarted);
    if lab.backend().revocation_is_a_layer() && !revocation {
        println!(
            "  revocation off:   the pure strategy. No lookup per request; a copy of a logged-out cookie or token \
             works until it expires, and \"your devices\" cannot list or end sessions."
        );
    }
    println!("Ctrl-C stops everything.\n");
}
