//! Migrations and seed data, safe when three replicas start at the same moment.
use diesel::{
    Connection, RunQueryDsl,
    sql_types::{BigInt, Integer, Text},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Db, DbConnection, locks};
use crate::catalog::{self, Product};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Migrates, seeds the products (and demo users when given), and returns the catalog.
///
/// Replicas racing here take turns: PostgreSQL through an advisory lock held for the whole setup,
/// SQLite through one `BEGIN IMMEDIATE` transaction (the others wait on `busy_timeout`). Seeding
/// uses `ON CONFLICT DO NOTHING`, so a second replica finds nothing left to do.
pub async fn prepare(db: &Db, demo_users: Vec<(String, String)>) -> anyhow::Result<Vec<Product>> {
    db.check_client_library().await?;
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

/// Runs `work` while holding the lock every replica takes at start-up, so migrations never race.
/// (SQLite has `BEGIN IMMEDIATE` instead; see [`prepare`].)
pub fn with_setup_lock<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    anyhow::ensure!(locks::acquire(conn, &locks::SETUP, 60)?, "waited 60 s for another replica's migrations");
    let result = work(conn);
    locks::release(conn, &locks::SETUP)?;
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
