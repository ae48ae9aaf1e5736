//! The `sessionlab` binary: `serve` one replica, run the whole `lab` (replicas + HAProxy + stores),
//! or `compare` the strategies in it.
use clap::{Parser, Subcommand};
use sessionlab::{config::Settings, lab, startup::Application, telemetry};

#[derive(Parser)]
#[command(name = "sessionlab", version, about = "Session-sharing strategies, runnable and measurable")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one replica (the default). Configured by environment variables; see .env.example.
    Serve,
    /// Run N replicas behind HAProxy with every store the backend needs, without Docker.
    Lab(lab::cli::LabArgs),
    /// Measure every strategy through the lab and write docs/results.md and the charts.
    Compare(sessionlab::compare::CompareArgs),
    /// Exit 0 if this container's replica answers /healthz (Docker's HEALTHCHECK; no curl needed).
    Healthcheck,
    /// Write this installation's SESSION_KEY, JWT_KEYS and ADMIN_TOKEN into DIR, keeping any that
    /// exist (compose's one-shot `secrets` service; the replicas read them through *_FILE).
    Secrets { dir: std::path::PathBuf },
}

fn main() -> anyhow::Result<()> {
    // A missing .env is normal (containers, CI); a malformed one is an error worth stopping for.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        anyhow::bail!("could not read .env: {err}");
    }
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Lab(args) => lab::cli::run(args),
        Command::Compare(args) => sessionlab::compare::run(args),
        Command::Healthcheck => healthcheck(),
        Command::Secrets { dir } => {
            let created = sessionlab::secrets::ensure(&dir)?;
            // Names only: the values never reach a log.
            println!("secrets in {}: created {created:?}, every other one kept", dir.display());
            Ok(())
        }
    }
}

fn healthcheck() -> anyhow::Result<()> {
    let mut addr = Settings::from_env()?.listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/healthz");
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let client = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(2)).build()?;
        let status = client.get(&url).send().await?.status();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        Ok(())
    })
}

fn serve() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    telemetry::init(&settings);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })
}
