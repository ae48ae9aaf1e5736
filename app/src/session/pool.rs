//! The pool behind the Redis and memcached stores: deadpool, with a health check that costs no
//! round trip. A connection is never pinged; a store marks it broken when a command on it fails
//! for connection reasons, and deadpool replaces it at the next checkout.
use std::time::Duration;

use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult};

pub const POOL_SIZE: usize = 16;
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How to open one connection to a store.
pub trait Connector: Send + Sync + 'static {
    type Conn: Send;
    type Error: std::fmt::Debug + Send;
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;
}

/// A pooled connection and the store's verdict on it.
pub struct Tracked<C> {
    pub conn: C,
    pub broken: bool,
}

pub struct Manager<C>(C);

impl<C: Connector> managed::Manager for Manager<C> {
    type Type = Tracked<C::Conn>;
    type Error = C::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        Ok(Tracked { conn: self.0.connect().await?, broken: false })
    }

    async fn recycle(&self, tracked: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
        if tracked.broken { Err(RecycleError::message("a command on this connection failed")) } else { Ok(()) }
    }
}

/// A pool that connects lazily: the app starts (and `/readyz` says 503) while the store is down.
pub fn build<C: Connector>(connector: C) -> anyhow::Result<Pool<Manager<C>>> {
    Ok(Pool::builder(Manager(connector))
        .max_size(POOL_SIZE)
        .wait_timeout(Some(TIMEOUT))
        .create_timeout(Some(TIMEOUT))
        .recycle_timeout(Some(TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}
