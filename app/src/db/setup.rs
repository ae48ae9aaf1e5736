//! Migrations and seed data, safe when three replicas start at the same moment.
use diesel::{
    Connection, QueryableByName, RunQueryDsl,
    sql_types::{BigInt, Integer, Nullable, Text},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Db, DbConnection};
use crate::catalog::{self, Product};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
/// Any constant shared by every replica: the advisory lock that serializes start-up on Postgres.
const SETUP_LOCK: i64 = 0x005e_5510_71ab;

/// Migrates, seeds the products (and demo users when given), and returns the catalog.
///
/// Replicas racing here take turns: PostgreSQL through an advisory lock held for the whole setup,
/// SQLite through one `BEGIN IMMEDIATE` transaction (the others wait on `busy_timeout`). Seeding
/// uses `ON CONFLICT DO NOTHING`, so a second replica finds nothing left to do.
pub async fn prepare(db: &Db, demo_users: Vec<(String, String)>) -> anyhow::Result<Vec<Product>> {
    db.run(move |conn| {
        match conn {
            DbConnection::Postgresql(_) => with_setup_lock(conn, |conn| {
                if let DbConnection::Postgresql(pg) = conn {
                    pg.run_pending_migrations(POSTGRES).map_err(anyhow::Error::from_boxed)?;
                }
                seed(conn, &demo_users)
            })?,
            DbConnection::Mysql(_) => anyhow::bail!(
                "DATABASE_URL: the app database is SQLite or PostgreSQL; MySQL serves sessions (SESSION_DATABASE_URL)"
            ),
            DbConnection::Sqlite(sqlite) => {
                sqlite.immediate_transaction(|c| {
                    c.run_pending_migrations(SQLITE).map(drop).map_err(anyhow::Error::from_boxed)
                })?;
                seed(conn, &demo_users)?;
            }
        }
        Ok(super::queries::load_products(conn)?)
    })
    .await
}

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Nullable<BigInt>)]
    acquired: Option<i64>,
}

/// Runs `work` while holding the lock every replica takes at start-up, so migrations never race:
/// a PostgreSQL advisory lock or a MySQL named lock, held on this connection. (SQLite has
/// `BEGIN IMMEDIATE` instead; see [`prepare`].)
pub fn with_setup_lock<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(SETUP_LOCK).execute(pg)?;
        }
        DbConnection::Mysql(my) => {
            let got = diesel::sql_query("SELECT CAST(GET_LOCK('sessionlab_setup', 60) AS SIGNED) AS acquired")
                .get_result::<Acquired>(my)?;
            anyhow::ensure!(got.acquired == Some(1), "waited 60 s for another replica's migrations");
        }
        DbConnection::Sqlite(_) => {}
    }
    let result = work(conn);
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(SETUP_LOCK).execute(pg)?;
        }
        DbConnection::Mysql(my) => {
            diesel::sql_query("SELECT RELEASE_LOCK('sessionlab_setup')").execute(my)?;
        }
        DbConnection::Sqlite(_) => {}
    }
    result
}

fn seed(conn: &mut DbConnection, demo_users: &[(String, String)]) -> anyhow::Result<()> {
    conn.transaction(|conn| {
        for p in catalog::seed_products() {
            diesel::sql_query(
                "INSERT INTO products (id, name, emoji, price_cents) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
            .bind::<Integer, _>(p.id)
            .bind::<Text, _>(&p.name)
            .bind::<Text, _>(&p.emoji)
            .bind::<BigInt, _>(p.price_cents)
            .execute(conn)?;
        }
        for (username, password_hash) in demo_users {
            diesel::sql_query(
                "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING",
            )
            .bind::<Text, _>(username)
            .bind::<Text, _>(password_hash)
            .bind::<BigInt, _>(crate::session::unix_now())
            .execute(conn)?;
        }
        Ok(())
    })
}
