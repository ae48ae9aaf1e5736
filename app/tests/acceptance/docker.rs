//! Everything this machine can check about the Docker path without an engine: the compose file
//! gives every replica every setting, agrees with haproxy.cfg, and HAProxy accepts the
//! configuration compose hands it for every strategy. (`make docker-check` adds the Compose
//! Specification schema and hadolint; `make docker-smoke` runs the real thing where Docker runs.)
use std::{collections::BTreeMap, path::PathBuf, process::Command};

use serde_norway::Value;
use sessionlab::{config::ENV_VARS, session::Backend};

const REPLICAS: [&str; 3] = ["app1", "app2", "app3"];
const STORES: [&str; 4] = ["postgres", "redis", "memcached", "mariadb"];

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// docker-compose.yml with its YAML anchors merged, as compose reads it.
fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mut value: Value = serde_norway::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"].get(name).unwrap_or_else(|| panic!("no service {name}"))
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .expect("environment as a mapping")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                other => panic!("unexpected value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// Compose's `${VAR}` / `${VAR:-default}` interpolation, with `vars` as the shell's environment.
fn interpolate(value: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        let expr = &rest[start + 2..end];
        let (name, default) = expr.split_once(":-").unwrap_or((expr, ""));
        out.push_str(vars.get(name).copied().filter(|v| !v.is_empty()).unwrap_or(default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_replica_gets_every_setting_the_app_reads_and_waits_for_healthy_stores() {
    let compose = compose();
    for name in REPLICAS {
        let app = service(&compose, name);
        let env = environment(app);
        for (var, ..) in ENV_VARS {
            assert!(env.contains_key(*var), "{name} does not set {var}");
        }
        assert_eq!(env["REPLICA_ID"], name);
        assert_eq!(app["restart"].as_str(), Some("unless-stopped"));
        assert!(app["healthcheck"]["test"].is_sequence(), "{name} has no healthcheck");
        for store in STORES {
            assert_eq!(app["depends_on"][store]["condition"].as_str(), Some("service_healthy"), "{name} → {store}");
        }
        assert!(env["DATABASE_URL"].starts_with("postgres://"), "the app database is PostgreSQL in compose");
        assert_eq!(interpolate(&env["SESSION_BACKEND"], &BTreeMap::new()), "cookie", "default strategy");
        assert_eq!(interpolate(&env["SESSION_BACKEND"], &[("SESSION_BACKEND", "redis")].into()), "redis");
    }
    let images: Vec<_> = REPLICAS.iter().map(|n| service(&compose, n)["image"].as_str().unwrap()).collect();
    assert!(images.windows(2).all(|w| w[0] == w[1]), "one definition for all three replicas");
}

#[test]
fn compose_and_haproxy_cfg_name_the_same_replicas_ports_and_file() {
    let compose = compose();
    let haproxy = service(&compose, "haproxy");
    let env = environment(haproxy);
    for (n, name) in REPLICAS.iter().enumerate() {
        let listen = environment(service(&compose, name))["LISTEN_ADDR"].clone();
        let port = listen.rsplit(':').next().unwrap();
        assert_eq!(env[&format!("APP{}_ADDR", n + 1)], format!("{name}:{port}"));
    }
    let cfg = std::fs::read_to_string(root().join("docker/haproxy/haproxy.cfg")).unwrap();
    for n in 1..=3 {
        assert!(cfg.contains(&format!("\"${{APP{n}_ADDR}}\"")), "haproxy.cfg does not use APP{n}_ADDR");
    }
    let mount = haproxy["volumes"][0].as_str().unwrap();
    assert!(mount.starts_with("./docker/haproxy/haproxy.cfg:"), "compose mounts another file: {mount}");
    let ports: Vec<_> = haproxy["ports"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let app_port = env["HAPROXY_BIND"].trim_start_matches(':');
    let stats_port = env["HAPROXY_STATS_BIND"].trim_start_matches(':');
    assert!(ports.contains(&format!("{app_port}:{app_port}").as_str()), "{ports:?}");
    assert!(
        ports.contains(&format!("127.0.0.1:{stats_port}:{stats_port}").as_str()),
        "stats must stay local: {ports:?}"
    );
    // The runtime API is admin-level: reachable by the replicas on the compose network, published
    // nowhere, and it is where the replicas look for it.
    let admin_port = env["HAPROXY_ADMIN_BIND"].trim_start_matches(':');
    assert!(ports.iter().all(|p| !p.split(':').any(|part| part == admin_port)), "{ports:?}");
    for name in REPLICAS {
        let app = environment(service(&compose, name));
        assert_eq!(app["HAPROXY_ADMIN_ADDR"], format!("haproxy:{admin_port}"));
    }

    // The image's HAProxy speaks the same configuration dialect as the lab's.
    let image = haproxy["image"].as_str().unwrap();
    let local = String::from_utf8(Command::new("haproxy").arg("-v").output().unwrap().stdout).unwrap();
    let local_minor: String = local.split_whitespace().nth(2).unwrap().split('.').take(2).collect::<Vec<_>>().join(".");
    assert!(image.starts_with(&format!("haproxy:{local_minor}.")), "{image} vs local {local_minor}");
}

#[test]
fn haproxy_accepts_what_compose_gives_it_for_every_strategy() {
    let compose = compose();
    let env = environment(service(&compose, "haproxy"));
    for backend in Backend::ALL {
        let vars = [("SESSION_BACKEND", backend.as_str())].into();
        let out = Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(root().join("docker/haproxy/haproxy.cfg"))
            .envs(env.iter().map(|(k, v)| (k.clone(), interpolate(v, &vars))))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {text}");
        // Compose's names resolve only inside Docker: HAProxy must start anyway and follow them.
        assert!(!text.contains("[ALERT]"), "{backend}: {text}");
    }
}

#[test]
fn every_image_is_pinned_and_stores_keep_their_data() {
    let compose = compose();
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        let image = svc["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        assert!(
            tag.chars().next().is_some_and(|c| c.is_ascii_digit()) || image == "sessionlab:local",
            "{name:?}: {image}"
        );
    }
    let redis_cmd: Vec<_> =
        service(&compose, "redis")["command"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(redis_cmd.windows(2).any(|w| w == ["--appendonly", "yes"]), "Redis in compose must survive a restart");
    for (store, path) in [("redis", "/data"), ("postgres", "/var/lib/postgresql/data"), ("mariadb", "/var/lib/mysql")] {
        let volumes = service(&compose, store)["volumes"].as_sequence().unwrap();
        assert!(
            volumes.iter().any(|v| v.as_str().unwrap().ends_with(&format!(":{path}"))),
            "{store} has no named volume"
        );
    }
    let dockerfile = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    for needle in ["cargo chef cook", "USER 10001:10001", "HEALTHCHECK", "bookworm", "--bin sessionlab"] {
        assert!(dockerfile.contains(needle), "the Dockerfile lacks {needle}");
    }
}

/// The image is built from the repository minus `.dockerignore`: nothing the binary embeds at
/// compile time (templates, static files, migrations, the strategy pages) may be left out.
#[test]
fn the_docker_context_keeps_every_file_the_binary_embeds() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for embedded in ["templates/lab.html", "static/lab.js", "migrations/postgres", "docs/strategies/redis.md"] {
        assert!(root().join(embedded).exists(), "{embedded} moved: update this test");
        for pattern in &patterns {
            let dir = pattern.trim_end_matches('/');
            assert!(
                !(embedded == dir || embedded.starts_with(&format!("{dir}/"))),
                ".dockerignore's {pattern} leaves out {embedded}"
            );
        }
    }
}
