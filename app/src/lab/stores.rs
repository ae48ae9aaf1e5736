//! Private store servers for the lab and the tests: each on a free port, in a directory of its
//! own, started from the installed binary and stopped by PID. Tests that restart or kill a store
//! use these, never the machine's shared services.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use diesel::{Connection, MysqlConnection, PgConnection, RunQueryDsl};
use nix::sys::signal::Signal;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

use super::process::{self, Logs};

/// Which server, and everything that differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// With its append-only file by default, as compose runs it: a restart keeps every session.
    /// Without it ([`StoreServer::set_append_only`]), a restart forgets them all.
    Redis,
    Memcached,
    /// `initdb`'d into the store's directory; run as `nobody` when the lab runs as root.
    Postgres,
    /// `mariadb-install-db`'d into the store's directory; local only, without grant tables.
    Mariadb,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Redis => "redis",
            StoreKind::Memcached => "memcached",
            StoreKind::Postgres => "postgres",
            StoreKind::Mariadb => "mysql",
        }
    }
}

pub struct StoreServer {
    kind: StoreKind,
    port: u16,
    dir: PathBuf,
    logs: Logs,
    child: Option<Child>,
    /// Redis only: `appendonly yes` (with `appendfsync everysec`, compose's setting) or nothing on
    /// disk at all.
    append_only: bool,
}

const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl StoreServer {
    /// Prepares (initdb, install-db) and starts a private server under `lab_dir`; a Redis keeps
    /// its append-only file.
    pub async fn start(kind: StoreKind, lab_dir: &Path, logs: Logs) -> anyhow::Result<Self> {
        Self::start_with(kind, lab_dir, logs, true).await
    }

    /// [`StoreServer::start`], with Redis's append-only file on or off.
    pub async fn start_with(kind: StoreKind, lab_dir: &Path, logs: Logs, append_only: bool) -> anyhow::Result<Self> {
        let dir = lab_dir.join(kind.name());
        std::fs::create_dir_all(&dir)?;
        if running_as_root() {
            // Database servers refuse to run as root: hand them the directory and drop to nobody.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(lab_dir, std::fs::Permissions::from_mode(0o755))?;
            nix::unistd::chown(&dir, Some(NOBODY.into()), Some(NOBODY.into()))?;
        }
        let mut server = Self { kind, port: process::free_port()?, dir, logs, child: None, append_only };
        server.initialize().await.with_context(|| format!("preparing a private {}", kind.name()))?;
        server.start_again().await?;
        Ok(server)
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Redis's persistence from its next start on: its append-only file, or none. (A Redis that
    /// starts without it does not read the file either: it starts empty.)
    pub fn set_append_only(&mut self, on: bool) {
        self.append_only = on;
    }

    /// Whether a restart keeps what was stored.
    pub fn durable(&self) -> bool {
        match self.kind {
            StoreKind::Redis => self.append_only,
            StoreKind::Memcached => false,
            StoreKind::Postgres | StoreKind::Mariadb => true,
        }
    }

    /// What this server keeps across a restart, in a few words: every row and chart of a store
    /// restart is labelled with it.
    pub fn persistence(&self) -> &'static str {
        match self.kind {
            StoreKind::Redis if self.append_only => "append-only file, fsync every second",
            StoreKind::Redis => "no persistence",
            StoreKind::Memcached => "a cache: no persistence",
            StoreKind::Postgres | StoreKind::Mariadb => "on disk",
        }
    }

    /// The URL the replicas get.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        match self.kind {
            StoreKind::Redis => format!("redis://127.0.0.1:{}", self.port),
            StoreKind::Memcached => format!("127.0.0.1:{}", self.port),
            StoreKind::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            StoreKind::Mariadb => format!("mysql://root@127.0.0.1:{}/sessionlab", self.port),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the server (again) on the same port and directory.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let cmd = self.command();
        self.child = Some(process::spawn(cmd, self.kind.name(), self.logs, &self.dir)?);
        self.wait_until_ready().await
    }

    /// Stops the server the way its operator would (a fast shutdown), by PID.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.kind == StoreKind::Postgres
                && let Some(pid) = child.id()
            {
                // SIGTERM is PostgreSQL's "smart" shutdown, which waits for the replicas' pooled
                // connections to go away; SIGINT is the "fast" one.
                let _ = process::signal(pid, Signal::SIGINT);
            }
            process::terminate(&mut child, Duration::from_secs(20)).await;
        }
    }

    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.start_again().await
    }

    async fn initialize(&self) -> anyhow::Result<()> {
        let mut cmd = match self.kind {
            StoreKind::Redis | StoreKind::Memcached => return Ok(()),
            StoreKind::Postgres => {
                let mut cmd = Command::new(pg_bin("initdb"));
                cmd.args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "-D"])
                    .arg(self.dir.join("data"));
                cmd
            }
            StoreKind::Mariadb => {
                // A tmpdir of its own: bootstraps running side by side collide on /tmp's temp tables.
                let mut cmd = Command::new("mariadb-install-db");
                cmd.args(["--no-defaults", "--skip-test-db", "--auth-root-authentication-method=normal"])
                    .arg(format!("--datadir={}", self.dir.join("data").display()))
                    .arg(format!("--tmpdir={}", self.dir.display()));
                cmd
            }
        };
        self.as_store_user(&mut cmd);
        let out = cmd.env("LC_ALL", "C").output().await.context("is the server package installed?")?;
        anyhow::ensure!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn command(&self) -> Command {
        let port = self.port.to_string();
        let data = self.dir.join("data");
        let mut cmd = match self.kind {
            StoreKind::Redis => {
                let mut cmd = Command::new("redis-server");
                // No RDB snapshots either way: what survives a restart is the append-only file's.
                cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--dir"]).arg(&self.dir);
                if self.append_only {
                    cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"]);
                } else {
                    cmd.args(["--appendonly", "no"]);
                }
                cmd
            }
            StoreKind::Memcached => {
                let mut cmd = Command::new("memcached");
                cmd.args(["-l", "127.0.0.1", "-p", &port, "-U", "0", "-m", "64"]);
                cmd
            }
            StoreKind::Postgres => {
                let mut cmd = Command::new(pg_bin("postgres"));
                cmd.arg("-D").arg(&data).args(["-p", &port, "-h", "127.0.0.1", "-k"]).arg(&self.dir);
                cmd
            }
            StoreKind::Mariadb => {
                let mut cmd = Command::new("mariadbd");
                cmd.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--socket={}", self.dir.join("mysqld.sock").display()))
                    .arg(format!("--pid-file={}", self.dir.join("mysqld.pid").display()))
                    .arg(format!("--tmpdir={}", self.dir.display()))
                    .args([&format!("--port={port}"), "--bind-address=127.0.0.1", "--skip-grant-tables"])
                    .args(["--innodb-buffer-pool-size=32M", "--skip-name-resolve"]);
                cmd
            }
        };
        self.as_store_user(&mut cmd);
        cmd
    }

    fn as_store_user(&self, cmd: &mut Command) {
        if running_as_root() && self.kind != StoreKind::Redis {
            cmd.uid(NOBODY).gid(NOBODY).env("HOME", &self.dir);
        }
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.answers().await {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                anyhow::bail!(
                    "{} exited ({status}): {}",
                    self.kind.name(),
                    process::log_tail(&self.dir, self.kind.name())
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} on port {} was not ready within 60 s", self.kind.name(), self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One real request in the server's own protocol.
    async fn answers(&self) -> bool {
        match self.kind {
            StoreKind::Redis => exchange(self.port, b"PING\r\n", b"+PONG").await,
            StoreKind::Memcached => exchange(self.port, b"version\r\n", b"VERSION").await,
            StoreKind::Postgres => {
                let url = self.url();
                blocking(move || PgConnection::establish(&url).is_ok()).await
            }
            StoreKind::Mariadb => {
                let url = format!("mysql://root@127.0.0.1:{}/mysql", self.port);
                blocking(move || {
                    MysqlConnection::establish(&url).is_ok_and(|mut c| {
                        diesel::sql_query("CREATE DATABASE IF NOT EXISTS sessionlab").execute(&mut c).is_ok()
                    })
                })
                .await
            }
        }
    }
}

async fn exchange(port: u16, request: &[u8], reply_prefix: &[u8]) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)).await else { return false };
    let mut reply = vec![0u8; reply_prefix.len()];
    conn.write_all(request).await.is_ok() && conn.read_exact(&mut reply).await.is_ok() && reply == reply_prefix
}

async fn blocking(check: impl FnOnce() -> bool + Send + 'static) -> bool {
    tokio::task::spawn_blocking(check).await.unwrap_or(false)
}

/// PostgreSQL's server binaries are not on PATH on Debian: take the newest installed version.
fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path().join("bin")).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()?.parse::<u32>().ok()));
    dirs.last().map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
}

/// A program of the PostgreSQL the lab runs (`pgbench`, for the comparison).
pub fn pg_binary(name: &str) -> PathBuf {
    pg_bin(name)
}

/// `postgres --version` of the server the lab runs, for reports.
pub fn postgres_version() -> String {
    std::process::Command::new(pg_bin("postgres"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres: not found".into())
}
