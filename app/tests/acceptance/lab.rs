//! The lab itself: its state file, its refusal of a broken HAProxy config, and a clean exit.
use std::process::Command;

use nix::{sys::signal::kill, unistd::Pid};
use sessionlab::{lab::LabConfig, session::Backend};

use crate::harness::spawn_lab_with;

fn config(backend: Backend) -> LabConfig {
    LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into())
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test]
async fn the_state_file_says_what_runs_where_and_shutdown_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut cfg = config(Backend::Redis);
    cfg.state_file = Some(path.clone());
    let lab = spawn_lab_with(cfg).await;

    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(state["backend"], "redis");
    assert_eq!(state["url"], lab.url());
    assert!(state["haproxy"]["stats_url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let ids: Vec<_> =
        state["replicas"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["app1", "app2", "app3"]);
    assert_eq!(state["stores"][0]["kind"], "redis");
    // The admin token stays findable after the log has scrolled, in a file only its owner reads.
    assert_eq!(state["admin_token"], lab.admin_token());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    // HAProxy checks each replica every second; passing checks are not logged.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let log = std::fs::read_to_string(lab.dir().join("app1.log")).unwrap();
    assert!(!log.contains("/healthz"), "health checks fill the log:\n{log}");

    let stats = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(state["haproxy"]["stats_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200, "HAProxy's stats page");

    let victim = lab.replica_pid("app2").unwrap();
    lab.kill_replica("app2").await.unwrap();
    let restarted = lab.wait_for_restart("app2", victim, std::time::Duration::from_secs(30)).await.unwrap();
    let rewritten: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(rewritten["replicas"][1]["pid"], restarted, "the state file follows restarts");

    let mut pids: Vec<u32> =
        rewritten["replicas"].as_array().unwrap().iter().filter_map(|r| r["pid"].as_u64()).map(|p| p as u32).collect();
    pids.push(rewritten["haproxy"]["pid"].as_u64().unwrap() as u32);
    pids.push(rewritten["stores"][0]["pid"].as_u64().unwrap() as u32);
    lab.shutdown().await;
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the lab");
    }
    assert!(!path.exists(), "the state file is removed on exit");
}

#[tokio::test]
async fn the_lab_refuses_a_broken_haproxy_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("haproxy.cfg");
    let original = std::fs::read_to_string(config(Backend::Cookie).haproxy_cfg).unwrap();
    std::fs::write(&broken, original.replace("balance roundrobin", "balance round-robin-typo")).unwrap();
    let mut cfg = config(Backend::Cookie);
    cfg.haproxy_cfg = broken;
    let err = sessionlab::lab::Lab::start(cfg).await.err().expect("a broken haproxy.cfg must stop the lab");
    assert!(format!("{err:#}").contains("not a valid HAProxy configuration"), "{err:#}");
}

#[tokio::test]
async fn the_lab_refuses_more_replicas_than_haproxy_cfg_names() {
    let mut cfg = config(Backend::Cookie);
    cfg.replicas = 4;
    let err = sessionlab::lab::Lab::start(cfg).await.err().unwrap();
    assert!(err.to_string().contains("1 to 3"), "{err}");
}

/// Every strategy: SESSION_KEY signs the forms' CSRF tokens (and encrypts `cookie`'s cookies).
#[test]
fn a_replica_without_session_key_refuses_to_start_and_says_why() {
    for backend in ["cookie", "sticky"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sessionlab"))
            .arg("serve")
            .env_clear()
            .env("SESSION_BACKEND", backend)
            .env("REPLICA_ID", "app2")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", format!("sqlite://{}/db.sqlite3", tempfile::tempdir().unwrap().keep().display()))
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{backend}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("SESSION_KEY") && stderr.contains("same on every replica"), "{backend}: {stderr}");
    }
}

/// The CLI, as a person runs it: the dashboard's buttons stop and start its store, SIGTERM stops
/// every child, and `--no-restart` leaves a dead replica dead.
#[tokio::test]
async fn the_lab_command_stops_every_child_on_sigterm_and_honours_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let mut lab = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionlab"))
        .args(["lab", "--backend", "redis", "--port", "0", "--stats-port", "0", "--no-restart", "--state-file"])
        .arg(&state_file)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let read_state = || -> Option<serde_json::Value> { serde_json::from_slice(&std::fs::read(&state_file).ok()?).ok() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let state = loop {
        if let Some(state) = read_state() {
            break state;
        }
        assert!(std::time::Instant::now() < deadline, "the lab wrote no state file");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let pid_of = |v: &serde_json::Value| v["pid"].as_u64().map(|p| p as u32);
    let mut pids: Vec<u32> = state["replicas"].as_array().unwrap().iter().filter_map(pid_of).collect();
    pids.extend(pid_of(&state["haproxy"]));
    pids.extend(pid_of(&state["stores"][0]));
    assert_eq!(pids.len(), 6, "3 replicas, the spare, HAProxy and Redis: {state}");
    assert_eq!(state["replicas"][3]["id"], "app4", "the spare runs too: {state}");

    // The dashboard's store buttons: the replica that takes the click asks the lab (its parent),
    // which stops and starts Redis. The token comes from the state file, as a person would get it.
    let url = state["url"].as_str().unwrap().to_owned();
    let admin = crate::dashboard::unlocked(&url, state["admin_token"].as_str().unwrap()).await;
    let csrf = admin.form_token("/lab").await;
    assert!(admin.get("/lab").await.text.contains("data-testid=\"store-stop\""), "no Stop button in the lab");
    let stop = admin.post_form("/lab/store/stop", &[("csrf", &csrf)]).await;
    assert_eq!(stop.status, reqwest::StatusCode::SEE_OTHER, "{}", stop.text);
    let stopped = wait_for(|| async {
        admin.get("/readyz").await.status == 503 && read_state().is_some_and(|s| s["stores"][0]["pid"].is_null())
    })
    .await;
    assert!(stopped, "Stop did not stop the store: {:?}", read_state());
    let page = admin.get("/lab").await;
    assert_eq!(page.status, reqwest::StatusCode::OK, "the dashboard went dark with the store");
    assert!(page.text.contains("data-testid=\"store-state\"") && page.text.contains(">down<"), "{}", page.text);
    let start = admin.post_form("/lab/store/start", &[("csrf", &csrf)]).await;
    assert_eq!(start.status, reqwest::StatusCode::SEE_OTHER, "{}", start.text);
    let started = wait_for(|| async { admin.get("/readyz").await.status == 200 }).await;
    assert!(started, "Start did not start the store");
    let state = read_state().unwrap();
    pids.extend(pid_of(&state["stores"][0]));

    let victim = pid_of(&state["replicas"][0]).unwrap();
    kill(Pid::from_raw(victim as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let after = read_state().unwrap();
    assert!(after["replicas"][0]["pid"].is_null(), "--no-restart restarted the replica: {after}");

    kill(Pid::from_raw(lab.id().unwrap() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), lab.wait()).await.unwrap().unwrap();
    assert!(status.success(), "lab exited with {status}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the lab");
    }
}

/// Whether `check` holds within 30 seconds.
async fn wait_for<F: std::future::Future<Output = bool>>(check: impl Fn() -> F) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn cookies_are_httponly_lax_and_secure_when_asked() {
    let mut cfg = config(Backend::Redis);
    cfg.extra_env.push(("COOKIE_SECURE".into(), "true".into()));
    let lab = spawn_lab_with(cfg).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = http
        .post(format!("{}/api/cart/items", lab.url()))
        .json(&serde_json::json!({"product_id": 1, "qty": 1}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    lab.shutdown().await;
}
