//! The `mysql` strategy on MariaDB Connector/C 3.3.19 (Debian 12's `libmariadb3` 1:10.11.18),
//! the C client library that loses committed writes under diesel: a replica with that library on
//! the loader's path refuses to start and says which library and what to do, and the same
//! replica with the machine's own library starts and serves. `scripts/install-deps.sh` unpacks
//! the package from Debian's archive into target/tools (never installed).
use std::{path::PathBuf, process::Stdio, time::Duration};

use sessionlab::lab::{Logs, StoreKind, StoreServer};

use crate::harness::{Client, username};

fn broken_library_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/tools/libmariadb3-10.11.18/usr/lib/x86_64-linux-gnu"
    ));
    assert!(
        dir.join("libmariadb.so.3").exists(),
        "{} is missing: run scripts/install-deps.sh, which unpacks libmariadb3 1:10.11.18-0+deb12u1 from \
         Debian's archive (if Debian no longer offers that version, this test cannot run as written)",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

/// A `mysql` replica of a cluster on `url`, with `library_path` first on the loader's path.
fn replica(url: &str, library_path: Option<&PathBuf>) -> tokio::process::Command {
    let data = tempfile::tempdir().unwrap().keep();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionlab"));
    cmd.arg("serve")
        .env_clear()
        .env("SESSION_BACKEND", "mysql")
        .env("SESSION_DATABASE_URL", url)
        .env("REPLICA_ID", "app1")
        .env("SESSION_KEY", "k".repeat(64))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}/app.sqlite3", data.display()))
        .env("SEED_DEMO_USERS", "false")
        .current_dir(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = library_path {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    cmd
}

#[tokio::test]
async fn a_replica_refuses_the_client_library_that_loses_writes_and_names_it() {
    let broken = broken_library_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut mariadb = StoreServer::start(StoreKind::Mariadb, dir.path(), Logs::Files).await.unwrap();
    let url = mariadb.url();

    let refused = tokio::time::timeout(Duration::from_secs(60), replica(&url, Some(&broken)).output())
        .await
        .expect("a replica on the broken library neither refused nor failed within a minute")
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "it ran on the broken library: {stderr}");
    assert!(stderr.contains("lost a committed write"), "{stderr}");
    assert!(stderr.contains(&format!("{}/libmariadb.so.3", broken.display())), "the library's path: {stderr}");
    assert!(stderr.contains("1:10.11.19 or later"), "the fix: {stderr}");

    // The machine's own library: the same replica starts, and a session it writes is read back.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut good = replica(&url, None).env("LISTEN_ADDR", format!("127.0.0.1:{port}")).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(good.try_wait().unwrap().is_none(), "the replica on the machine's library exited");
        assert!(std::time::Instant::now() < deadline, "the replica on the machine's library never got ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = Client::new(&base);
    client.register_and_login(&username("lib")).await;
    client.add(3, 2).await;
    assert_eq!(client.cart().await.1, vec![(3, 2)], "a session write was lost");
    good.kill().await.unwrap();
    mariadb.stop().await;
}
