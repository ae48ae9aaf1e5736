//! The Redis machinery behind the `redis` strategy and the revocation list: a pool of
//! multiplexed connections, the retry after a dead connection, Lua scripts by hash, and the
//! three topologies `REDIS_URL` can name.
//!
//! - `redis://host:port` (or `rediss://`, `unix://`): one server.
//! - `redis-cluster://[user:password@]host:port,host:port,…`: Redis Cluster, through the redis crate's cluster
//!   connection, which follows `MOVED` redirects and a shard's failover. Every key that a script
//!   or a `MULTI` block touches together must share a hash slot: the revocation list tags its
//!   keys with the session's storage key (`{…}`).
//! - `redis-sentinel://[user:password@]host:port,host:port,…/service`: Redis Sentinel. Every new
//!   connection asks the sentinels which server is the primary of `service` *now* (the redis
//!   crate's `SentinelClient`, which also checks that server's `ROLE`). After a failover, a
//!   connection to the old primary is dead (it crashed), answers `READONLY` (it came back as a
//!   replica), or, cut off from its replicas, refuses writes (`NOREPLICAS`, with
//!   `min-replicas-to-write`) or leaves a `WAIT` unconfirmed; each marks the connection broken,
//!   so the next checkout asks the sentinels again.
//!
//! `REDIS_WAIT_REPLICAS=N` makes every session write wait until N replicas have it (`WAIT`):
//! Redis replicates asynchronously, so without it a failover can lose writes the app already
//! acknowledged. A write that N replicas did not confirm in time is answered 503: it may survive
//! or not, but the app never said it was saved (a client that retries sends its
//! `Idempotency-Key`).
use std::time::Duration;

use deadpool::managed::Pool;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ErrorKind, FromRedisValue, RedisError, RedisFuture, Script, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
};

use super::{
    StoreError,
    pool::{self, Connector, Manager, TIMEOUT},
};

/// How long a write waits for its replicas before it is answered 503. Well under the 2 s
/// command timeout: a replica that is this far behind is as good as absent.
pub const WAIT_TIMEOUT: Duration = Duration::from_millis(500);

/// A Lua script and its SHA-1, for `EVALSHA`.
pub struct Lua {
    code: &'static str,
    hash: String,
}

impl Lua {
    pub fn new(code: &'static str) -> Self {
        Self { code, hash: Script::new(code).get_hash().to_owned() }
    }
}

/// A pool of multiplexed Redis connections whose health check costs nothing (see
/// [`pool`](super::pool)), shared by the Redis session store and the revocation list. (A cluster
/// connection is itself multiplexed over one connection per primary; pooling it too keeps one
/// code path, at the price of a few idle connections.)
pub struct RedisClient {
    pool: Pool<Manager<RedisConnector>>,
    /// Replicas every write waits for (`REDIS_WAIT_REPLICAS`); 0: none.
    wait_replicas: u32,
}

impl RedisClient {
    /// Builds the pool without connecting: the app starts (and `/readyz` says 503) while Redis is down.
    pub fn connect(url: &str, wait_replicas: u32) -> anyhow::Result<Self> {
        let topology = Topology::parse(url)?;
        let config = AsyncConnectionConfig::new().set_connection_timeout(TIMEOUT).set_response_timeout(TIMEOUT);
        let pool = pool::build(RedisConnector { topology, config })?;
        Ok(Self { pool, wait_replicas })
    }

    /// Runs one command that needs no replica's confirmation (a read, or a clean-up). A command
    /// that failed on a dead connection is sent once more on a fresh one: after a Redis restart or
    /// a failover the first request of each replica must not be a 503. The idle connections are
    /// dropped too, as they point at the same dead server. (A write whose answer, not whose
    /// request, was lost runs twice: see the limitation in `docs/strategies/redis.md`.)
    pub async fn run<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.with_retry(Request::Command(cmd), None).await
    }

    /// [`Self::run`] for a write to `key` that must reach `REDIS_WAIT_REPLICAS` replicas to
    /// count. (In a cluster, `key` names the shard whose replicas are waited for.)
    pub async fn write<T: FromRedisValue>(&self, key: &str, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.with_retry(Request::Command(cmd), Some(key)).await
    }

    /// Runs a (writing) Lua script by its hash (`EVALSHA`), sending the whole script (`EVAL`,
    /// which also caches it) only the first time a server has not seen it: a new primary after a
    /// failover has not. In a cluster every key must be in one hash slot (a `{tag}`).
    pub async fn eval<T: FromRedisValue>(
        &self,
        script: &Lua,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<T, StoreError> {
        let mut by_hash = redis::cmd("EVALSHA");
        by_hash.arg(&script.hash).arg(keys.len()).arg(keys).arg(args);
        match self.write::<T>(keys[0], &by_hash).await {
            Err(StoreError::Unavailable(err))
                if err.downcast_ref::<RedisError>().is_some_and(|e| e.kind() == ErrorKind::NoScriptError) =>
            {
                let mut full = redis::cmd("EVAL");
                full.arg(script.code).arg(keys.len()).arg(keys).arg(args);
                self.write(keys[0], &full).await
            }
            other => other,
        }
    }

    /// One round trip to the store, for `/readyz` (which HAProxy's rotation follows): in a
    /// cluster, the first node to answer. Readiness asks whether this replica reaches the
    /// store at all; a shard failing over must not take every replica out of the rotation.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with_retry::<String>(Request::Ping, None).await.map(drop)
    }

    /// Runs a pipeline writing `key` (a `MULTI`/`EXEC` block when atomic: then, in a cluster,
    /// every key in one hash slot), with the same retry.
    pub async fn run_pipeline(&self, key: &str, pipe: &redis::Pipeline) -> Result<(), StoreError> {
        self.with_retry(Request::Pipeline(pipe), Some(key)).await
    }

    async fn with_retry<T: FromRedisValue>(&self, request: Request<'_>, write: Option<&str>) -> Result<T, StoreError> {
        match self.try_run(request, write).await {
            Err(Failure::Connection(_)) => {
                self.pool.retain(|_, _| false);
                self.try_run(request, write).await.map_err(Failure::into_store_error)
            }
            other => other.map_err(Failure::into_store_error),
        }
    }

    async fn try_run<T: FromRedisValue>(&self, request: Request<'_>, write: Option<&str>) -> Result<T, Failure> {
        let mut conn = self.pool.get().await.map_err(|e| Failure::Other(e.into()))?;
        let reply = match request {
            Request::Command(cmd) => cmd.query_async(&mut conn.conn).await,
            Request::Pipeline(pipe) => pipe.query_async(&mut conn.conn).await,
            Request::Ping => conn.conn.ping().await.and_then(|pong| T::from_redis_value(&pong)),
        };
        let reply = reply.map_err(|err| Failure::classify(err, &mut conn.broken))?;
        if let Some(key) = write.filter(|_| self.wait_replicas > 0) {
            // The write itself has run: whatever happens to the WAIT, it must not be sent again.
            let confirmed = conn.conn.wait_for_replicas(key, self.wait_replicas).await.map_err(|err| {
                let _ = Failure::classify(err, &mut conn.broken);
                Failure::Other(anyhow::anyhow!("the write reached the Redis primary, but WAIT for its replicas failed"))
            })?;
            if confirmed < self.wait_replicas {
                // A primary no replica answers may have been replaced (cut off from its
                // sentinels, it cannot know): the next checkout asks the sentinels again.
                conn.broken = true;
                return Err(Failure::Other(anyhow::anyhow!(
                    "the write reached the Redis primary, but {confirmed} of the {} replicas REDIS_WAIT_REPLICAS asks \
                     for confirmed it within {} ms",
                    self.wait_replicas,
                    WAIT_TIMEOUT.as_millis()
                )));
            }
        }
        Ok(reply)
    }
}

#[derive(Clone, Copy)]
enum Request<'a> {
    Command(&'a redis::Cmd),
    Pipeline(&'a redis::Pipeline),
    Ping,
}

enum Failure {
    /// The connection is dead, or its server is no longer the primary; the command may be
    /// retried on a new one.
    Connection(RedisError),
    Other(anyhow::Error),
}

impl Failure {
    fn classify(err: RedisError, broken: &mut bool) -> Self {
        // A primary that lost its replicas refuses writes (`min-replicas-to-write`) before it
        // applies them: cut off from its sentinels too, it may no longer be the one they name,
        // and a new connection asks them again.
        let demoted = err.kind() == ErrorKind::ReadOnly || err.code() == Some("NOREPLICAS");
        if demoted || err.is_unrecoverable_error() || err.is_timeout() || err.is_connection_dropped() {
            *broken = true;
            Failure::Connection(err)
        } else {
            Failure::Other(err.into())
        }
    }

    fn into_store_error(self) -> StoreError {
        match self {
            Failure::Connection(err) => StoreError::unavailable(err),
            Failure::Other(err) => StoreError::Unavailable(err),
        }
    }
}

/// Where connections go: one server, whichever the sentinels name as the primary, or a cluster.
enum Topology {
    Single(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

pub const SENTINEL_SCHEME: &str = "redis-sentinel://";
pub const CLUSTER_SCHEME: &str = "redis-cluster://";

impl Topology {
    fn parse(url: &str) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            // Any reachable node will do: the client learns the rest from CLUSTER SLOTS. The
            // credentials, if any, are every node's.
            let (credentials, hosts) = rest.rsplit_once('@').map_or(("", rest), |(c, h)| (c, h));
            let at = if credentials.is_empty() { "" } else { "@" };
            let nodes: Vec<String> = hosts.split(',').map(|node| format!("redis://{credentials}{at}{node}")).collect();
            let client = ClusterClient::builder(nodes)
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT)
                .build()
                .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis Cluster URL: {e}"))?;
            return Ok(Topology::Cluster(client));
        }
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            let client = Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
            return Ok(Topology::Single(client));
        };
        let sentinel = SentinelUrl::parse(rest)?;
        let mut builder =
            SentinelClientBuilder::new(sentinel.addresses, sentinel.service.to_owned(), SentinelServerType::Master)?;
        if let Some(user) = sentinel.username {
            builder = builder.set_client_to_redis_username(user.to_owned());
        }
        if let Some(password) = sentinel.password {
            builder = builder.set_client_to_redis_password(password.to_owned());
        }
        Ok(Topology::Sentinel(tokio::sync::Mutex::new(builder.build()?)))
    }
}

/// A connection to one server, or a cluster connection (which holds one per primary and follows
/// `MOVED` redirects and failovers by itself).
pub enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connection {
    /// `WAIT`s for `replicas` replicas of the server that took the write to `key`: on the same
    /// connection, since WAIT counts the writes its own client sent. In a cluster, only that
    /// key's shard is asked: a failover elsewhere must not fail this write.
    async fn wait_for_replicas(&mut self, key: &str, replicas: u32) -> redis::RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(WAIT_TIMEOUT.as_millis() as u64);
        match self {
            Connection::Single(conn) => wait.query_async(conn).await,
            Connection::Cluster(conn) => {
                let shard = Route::new(hash_slot(key), SlotAddr::Master);
                let reply = conn
                    .route_command(&wait, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(shard)))
                    .await?;
                u32::from_redis_value(&reply)
            }
        }
    }
}

impl Connection {
    /// `PING` to the one server, or in a cluster to every node, done at the first answer (the
    /// crate's default asks every primary and fails if one does).
    async fn ping(&mut self) -> redis::RedisResult<Value> {
        let ping = redis::cmd("PING");
        match self {
            Connection::Single(conn) => ping.query_async(conn).await,
            Connection::Cluster(conn) => {
                let any = (MultipleNodeRoutingInfo::AllNodes, Some(ResponsePolicy::OneSucceeded));
                conn.route_command(&ping, RoutingInfo::MultiNode(any)).await
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(pipe, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Redis Cluster's hash slot of `key`: CRC16 of the key, or of its `{tag}` if it has a non-empty
/// one, modulo 16384.
pub fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| Some((open, key[open + 1..].find('}')?)))
        .filter(|(_, len)| *len > 0)
        .map(|(open, len)| &bytes[open + 1..open + 1 + len]);
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % 16384
}

/// The parts of `redis-sentinel://[user:password@]host:port,…/service`. The credentials are the
/// data servers'; the sentinels are asked without any, as Debian's and compose's run. (No
/// `Debug`: it holds a password.)
#[derive(PartialEq)]
struct SentinelUrl<'a> {
    username: Option<&'a str>,
    password: Option<&'a str>,
    addresses: Vec<ConnectionAddr>,
    service: &'a str,
}

impl<'a> SentinelUrl<'a> {
    fn parse(rest: &'a str) -> anyhow::Result<Self> {
        const FORM: &str = "use redis-sentinel://[user:password@]host:port,host:port,…/service";
        let (hosts, service) =
            rest.split_once('/').ok_or_else(|| anyhow::anyhow!("REDIS_URL names no service: {FORM}"))?;
        anyhow::ensure!(!service.is_empty() && !service.contains('/'), "REDIS_URL names no service: {FORM}");
        let (credentials, hosts) = match hosts.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, hosts),
        };
        let (username, password) = match credentials.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            None => (None, None),
            Some((user, password)) => (Some(user).filter(|u| !u.is_empty()), Some(password).filter(|p| !p.is_empty())),
        };
        let addresses = hosts
            .split(',')
            .map(|host| {
                let (name, port) = host.rsplit_once(':').unwrap_or((host, "26379"));
                let port = port.parse::<u16>().map_err(|_| anyhow::anyhow!("REDIS_URL: {host:?} has no valid port"))?;
                anyhow::ensure!(!name.is_empty(), "REDIS_URL: {host:?} has no host: {FORM}");
                Ok(ConnectionAddr::Tcp(name.to_owned(), port))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { username, password, addresses, service })
    }
}

pub struct RedisConnector {
    topology: Topology,
    config: AsyncConnectionConfig,
}

impl Connector for RedisConnector {
    type Conn = Connection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Connection, RedisError> {
        let client = match &self.topology {
            Topology::Single(client) => client.clone(),
            // Boxed: the sentinel client's future is deep enough to overflow the compiler's
            // layout depth when it is inlined into every store call's future.
            Topology::Sentinel(sentinel) => Box::pin(async { sentinel.lock().await.async_get_client().await }).await?,
            Topology::Cluster(cluster) => {
                return Box::pin(cluster.get_async_connection()).await.map(Connection::Cluster);
            }
        };
        client.get_multiplexed_async_connection_with_config(&self.config).await.map(Connection::Single)
    }
}

/// Whether `url` names a Sentinel or Cluster deployment rather than one server.
pub fn names_several_servers(url: &str) -> bool {
    url.starts_with(SENTINEL_SCHEME) || url.starts_with(CLUSTER_SCHEME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_follow_redis_cluster_including_hash_tags() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot("123456789"), 0x31C3, "the CRC16 check value of the spec");
        assert_eq!(hash_slot("foo"), 12182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("{user1000}.followers"));
        // What Redis 7's CLUSTER KEYSLOT answers for each.
        assert_eq!(hash_slot("somekey"), 11058);
        assert_eq!(hash_slot("foo{hash_tag}"), 2515);
        assert_eq!(hash_slot("foo{}{bar}"), 8363, "an empty first tag: the whole key");
        assert_eq!(hash_slot("foo{{bar}}zap"), 4015, "the tag is `{{bar`");
        assert_eq!(hash_slot("foo{bar}{zap}"), 5061, "only the first tag counts");
    }

    #[test]
    fn a_sentinel_url_names_its_sentinels_service_and_credentials() {
        let url = SentinelUrl::parse(":s3cret@10.0.0.1:26379,sentinel-2,10.0.0.3:26380/sessionlab").unwrap();
        assert_eq!(url.username, None);
        assert_eq!(url.password, Some("s3cret"));
        assert_eq!(url.service, "sessionlab");
        assert_eq!(
            url.addresses,
            vec![
                ConnectionAddr::Tcp("10.0.0.1".into(), 26379),
                ConnectionAddr::Tcp("sentinel-2".into(), 26379),
                ConnectionAddr::Tcp("10.0.0.3".into(), 26380),
            ]
        );
    }

    #[test]
    fn a_sentinel_url_without_service_or_with_a_bad_port_is_refused_with_the_form() {
        let err = SentinelUrl::parse("127.0.0.1:26379").err().unwrap().to_string();
        assert!(err.contains("names no service") && err.contains("redis-sentinel://"), "{err}");
        let err = SentinelUrl::parse("127.0.0.1:port/sessionlab").err().unwrap().to_string();
        assert!(err.contains("no valid port"), "{err}");
    }
}
