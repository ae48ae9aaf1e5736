//! A TCP relay the lab owns: it listens on an address of its own and passes every connection on
//! to a port on 127.0.0.1. The Sentinel group's replicas reach their primary through one, so a
//! test can cut replication; a replica in a network namespace of its own reaches the store and
//! HAProxy's runtime API through others, since the namespace has a loopback of its own.
use std::net::Ipv4Addr;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// Passes connections on until it is cut: then it closes every connection it carries, drops
/// what it had not passed on, and closes every new one.
pub struct Relay {
    addr: Ipv4Addr,
    port: u16,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free port of `addr`, for `127.0.0.1:target`.
    pub async fn start(addr: Ipv4Addr, target: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((addr, 0)).await?;
        let port = listener.local_addr()?.port();
        let (cut, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watching.borrow() {
                    continue;
                }
                let mut watching = watching.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)).await else { return };
                    // Redis sets TCP_NODELAY on its own sockets; a relay that did not would add
                    // Nagle's delay to every replication ack, and so to every WAIT.
                    let _ = inbound.set_nodelay(true).and(outbound.set_nodelay(true));
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watching.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Ok(Self { addr, port, cut, task })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `addr:port`, where clients connect.
    pub fn address(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
