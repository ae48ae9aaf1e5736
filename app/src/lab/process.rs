//! Child processes the lab owns: they die with it, even if it is killed with SIGKILL.
use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context;
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};

/// Where a child's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// The lab's own terminal: `sessionlab lab` shows what the replicas log.
    Inherit,
    /// `<lab dir>/<name>.log`: tests keep their output quiet and readable after a failure.
    Files,
}

/// Spawns `cmd` so that the kernel kills it when the spawning thread's process goes away
/// (`PR_SET_PDEATHSIG`), and tokio kills it when its handle is dropped.
pub fn spawn(mut cmd: Command, name: &str, logs: Logs, dir: &Path) -> anyhow::Result<Child> {
    match logs {
        Logs::Inherit => {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        Logs::Files => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    cmd.spawn().with_context(|| format!("could not start {program} for {name}: is it installed and on PATH?"))
}

pub fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    nix::sys::signal::kill(Pid::from_raw(pid as i32), signal).with_context(|| format!("kill -{signal} {pid}"))
}

/// SIGTERM, then SIGKILL if the child is still there after `grace`.
pub async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = signal(pid, Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Where lab ports are picked: below Linux's ephemeral range (32768 and up), so that neither
/// the many short connections HAProxy opens to the replicas (each holds its local port in
/// TIME_WAIT for a minute) nor any outgoing connection can take a port between the moment it is
/// picked and the moment its server binds it.
const LAB_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A TCP port nobody listens on right now, and that this process has not handed out before:
/// tests start many labs at once, and a port released by one probe could otherwise be given to
/// two servers.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let port = rand::random_range(LAB_PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner()).insert(port)
        {
            return Ok(port);
        }
    }
    anyhow::bail!("no free TCP port in {LAB_PORTS:?} after 1000 tries")
}

/// Polls `url` until it answers 200, `child` exits, or `timeout` passes.
pub async fn wait_http_ok(url: &str, mut child: Option<&mut Child>, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(res) = client.get(url).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child.try_wait()?
        {
            anyhow::bail!("exited ({status}) before {url} answered");
        }
        if Instant::now() > deadline {
            anyhow::bail!("{url} did not answer 200 within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs `program` to its end, with `stdin` as its input; an error carries what it printed.
pub async fn run(program: &str, args: &[&str], stdin: Option<String>) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run {program} (apt-get install iproute2 nftables)"))?;
    let mut input = child.stdin.take().context("no stdin")?;
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await?;
    }
    drop(input);
    let out = child.wait_with_output().await?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
