//! The app database (users and products): SQLite by default, PostgreSQL when
//! `DATABASE_URL=postgres://…`. Diesel is synchronous, so every query runs on tokio's blocking
//! pool through [`Db::run`], never on an actix worker thread.
mod client_check;
pub mod locks;
pub mod queries;
pub mod schema;
mod setup;
pub mod upkeep;

use std::time::Duration;

use diesel::{
    Connection, ConnectionError, MysqlConnection, PgConnection, RunQueryDsl, SqliteConnection,
    r2d2::{ManageConnection, Pool, PooledConnection},
};

pub use setup::{prepare, with_setup_lock};

const POOL_SIZE: u32 = 8;

/// The database did not answer: no connection within the pool's timeout, or every connection
/// tried was lost. Requests that needed it answer 503, as for a session store that is down.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer")]
pub struct Unavailable(#[source] anyhow::Error);

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
    Mysql(MysqlConnection),
}

/// Which engine a `DATABASE_URL` names. Decided by scheme, never by trial: a mistyped Postgres
/// URL must fail loudly, not quietly create an SQLite file of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
    Mysql(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbUrl::Postgres(url.to_owned()))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(DbUrl::Mysql(url.replacen("mariadb://", "mysql://", 1)))
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Ok(DbUrl::Sqlite(path.to_owned()))
        } else {
            anyhow::bail!(
                "a database URL must start with sqlite://, postgres:// or mysql:// (the scheme picks the engine)"
            )
        }
    }
}

pub struct Manager(DbUrl);

/// A pooled connection, with the verdict of [`Db::run`] on whether it still works.
pub struct Pooled {
    conn: DbConnection,
    broken: bool,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let conn = match &self.0 {
            DbUrl::Postgres(url) => DbConnection::Postgresql(PgConnection::establish(url)?),
            DbUrl::Mysql(url) => DbConnection::Mysql(MysqlConnection::establish(url)?),
            DbUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                // Three replicas may share one file in the lab: wait for locks instead of failing,
                // and let readers proceed while one writes.
                diesel::sql_query("PRAGMA busy_timeout = 10000")
                    .execute(&mut conn)
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                diesel::sql_query("PRAGMA journal_mode = WAL")
                    .execute(&mut conn)
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(Pooled { conn, broken: false })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        queries::ping(&mut pooled.conn).map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.broken
    }
}

#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
}

impl Db {
    /// Opens the pool lazily: the app starts even when the database is down (`/readyz` tells).
    ///
    /// Connections are not tested at checkout (r2d2's default sends a `SELECT 1` before every
    /// query, doubling the round trips of a session read). [`Db::run`] checks one only after a
    /// query failed.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(2))
            .build_unchecked(Manager(DbUrl::parse(url)?));
        Ok(Self { pool })
    }

    /// Refuses a C client library that loses committed writes ([`client_check`]): one
    /// connection writes, another reads. Run before anything else touches the database.
    pub async fn check_client_library(&self) -> anyhow::Result<()> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            // Both checked out at once: two connections, as two replicas would have.
            let (mut writer, mut reader) = (pool.get()?, pool.get()?);
            client_check::committed_writes_are_seen(&mut writer.conn, &mut reader.conn)
        })
        .await?
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    ///
    /// When `work` fails and the connection no longer answers a `SELECT 1` (the server restarted
    /// since it was pooled), the connection is discarded and `work` runs again on another one, so
    /// a database restart costs no request an error. That is safe for everything sessionlab
    /// sends: reads and deletes are idempotent, and a repeated compare-and-set write is refused
    /// rather than applied twice.
    pub async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        F: Fn(&mut DbConnection) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut attempts = 0;
            loop {
                let mut pooled: PooledConnection<Manager> = pool.get().map_err(|err| Unavailable(err.into()))?;
                match work(&mut pooled.conn) {
                    Ok(value) => return Ok(value),
                    Err(err) if queries::ping(&mut pooled.conn).is_err() => {
                        pooled.broken = true;
                        attempts += 1;
                        if attempts > POOL_SIZE {
                            return Err(Unavailable(err).into());
                        }
                        tracing::debug!(error = %format!("{err:#}"), "database connection lost; retrying on another");
                    }
                    Err(err) => return Err(err),
                }
            }
        })
        .await?
    }
}
