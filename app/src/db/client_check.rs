//! Does the C client library see committed writes? Checked by every replica before it migrates
//! or serves anything on PostgreSQL or MySQL.
//!
//! diesel reaches those servers through the machine's C libraries: libpq, and libmariadb (or
//! libmysqlclient). Their version is whatever the machine has, and one is known to lose writes
//! under diesel: MariaDB Connector/C 3.3.19, shipped as Debian 12's `libmariadb3`
//! 1:10.11.18 (diesel issues 5091 and 5102). With it, a row one connection just committed is not
//! found by the next read, and replicas starting together each re-run the migrations. A replica
//! that would run like that refuses to start instead, naming the library and the fix.
//!
//! Why a check and not pure-Rust drivers (diesel-async over tokio-postgres and mysql_async): the
//! app database's queries are written once for SQLite, PostgreSQL and MySQL through diesel's
//! `MultiConnection`, which takes only diesel's own connection types (its helper trait is
//! sealed), so the pure-Rust connections would split every query into per-engine code. The check
//! costs two connections and three statements at start-up, nothing per request, and catches any
//! library that loses a committed write, not only the one known today.
use std::ffi::CStr;

use diesel::{OptionalExtension, RunQueryDsl, prelude::*};

use super::DbConnection;

diesel::table! {
    /// A scratch table: one row per check, deleted again at once.
    sessionlab_client_check (probe) {
        probe -> Text,
    }
}

/// Writes a row on `writer`, commits it, and reads it back on `reader`, another connection.
pub fn committed_writes_are_seen(writer: &mut DbConnection, reader: &mut DbConnection) -> anyhow::Result<()> {
    if matches!(writer, DbConnection::Sqlite(_)) {
        // SQLite is compiled into the process with diesel's own bindings: one library, one file.
        return Ok(());
    }
    let create = "CREATE TABLE IF NOT EXISTS sessionlab_client_check (probe VARCHAR(64) PRIMARY KEY)";
    // Replicas starting together race to create it; PostgreSQL may refuse the loser once.
    if diesel::sql_query(create).execute(writer).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        diesel::sql_query(create).execute(writer)?;
    }
    let probe = hex::encode(rand::random::<[u8; 16]>());
    diesel::insert_into(sessionlab_client_check::table)
        .values(sessionlab_client_check::probe.eq(&probe))
        .execute(writer)?;
    let seen = sessionlab_client_check::table
        .filter(sessionlab_client_check::probe.eq(&probe))
        .select(sessionlab_client_check::probe)
        .first::<String>(reader)
        .optional()?;
    diesel::delete(sessionlab_client_check::table.filter(sessionlab_client_check::probe.eq(&probe))).execute(writer)?;
    anyhow::ensure!(
        seen.as_deref() == Some(probe.as_str()),
        "the database client library {} lost a committed write: a row one connection wrote was not found by \
         another. sessionlab refuses to run on it, because sessions would be lost without an error. {}",
        describe(writer),
        fix(writer)
    );
    Ok(())
}

/// The library in use, as it names itself.
fn describe(conn: &DbConnection) -> String {
    match conn {
        // SAFETY: both functions take no arguments and return a pointer to a static,
        // NUL-terminated string (or a plain integer); nothing is freed or kept.
        DbConnection::Mysql(_) => {
            let version = unsafe { CStr::from_ptr(mysqlclient_sys::mysql_get_client_info()) };
            format!(
                "(MySQL client library, version {}, {})",
                version.to_string_lossy(),
                loaded_from("libmariadb", "libmysqlclient")
            )
        }
        DbConnection::Postgresql(_) => {
            let version = unsafe { pq_sys::PQlibVersion() };
            format!("(libpq {version}, {})", loaded_from("libpq", "libpq"))
        }
        DbConnection::Sqlite(_) => "(SQLite)".into(),
    }
}

fn fix(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Mysql(_) => {
            "MariaDB Connector/C 3.3.19 (Debian 12's libmariadb3 1:10.11.18, MariaDB 10.11.17 and 10.11.18) is \
             known to do this: install a newer libmariadb3 (on Debian 12, `apt-get install libmariadb3` from \
             bookworm-security, 1:10.11.19 or later) and start again."
        }
        _ => "Install your distribution's current client library and start again.",
    }
}

/// Which file the dynamic loader took the library from: what a person must replace.
fn loaded_from(name: &str, alternative: &str) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains(&format!("/{name}.so")) || path.contains(&format!("/{alternative}.so")))
        .map_or_else(|| "loaded from an unknown path".to_owned(), |path| format!("loaded from {path}"))
}
