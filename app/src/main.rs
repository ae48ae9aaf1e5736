//! The `sessionlab` binary: `serve` one replica, or run the whole `lab` (replicas + HAProxy + stores).
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
    }
}

fn serve() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    telemetry::init(&settings);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })
}
