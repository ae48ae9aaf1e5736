//! A private `redis-server` on a free port in a directory of its own, with no persistence
//! (the lab shows what a restart of a cache-like store does). Stopped and started by PID.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

use super::process::{self, Logs};

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    logs: Logs,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start(dir: &Path, logs: Logs) -> anyhow::Result<Self> {
        let mut server = Self { port: process::free_port()?, dir: dir.to_owned(), logs, child: None };
        server.start_again().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the server (again) on the same port, empty.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir);
        self.child = Some(process::spawn(cmd, "redis", self.logs, &self.dir)?);
        self.wait_until_ready().await
    }

    /// Stops the server: every session it held is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, Duration::from_secs(5)).await;
        }
    }

    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.start_again().await
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping().await {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!("redis-server exited ({status}): {}", process::log_tail(&self.dir, "redis"));
            }
            if Instant::now() > deadline {
                anyhow::bail!("redis-server on port {} did not answer PING within 10 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut reply = [0u8; 7];
        conn.write_all(b"PING\r\n").await.is_ok() && conn.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
    }
}
