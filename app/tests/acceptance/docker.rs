//! What can be checked about the Docker files by reading them: the compose file gives every
//! replica every setting, agrees with haproxy.cfg, publishes nothing beyond this machine, carries
//! no secret, and HAProxy accepts the configuration compose hands it for every strategy.
//! (`make docker-check` adds the Compose Specification schema and hadolint; `compose/` runs the
//! real stack where a Docker engine runs.)
use std::{collections::BTreeMap, path::PathBuf, process::Command};

use serde_norway::Value;
use sessionlab::{config::ENV_VARS, session::Backend};

/// The three replicas and the spare (app4), one definition for all.
const REPLICAS: [&str; 4] = ["app1", "app2", "app3", "app4"];
const STORES: [&str; 4] = ["postgres", "redis", "memcached", "mariadb"];

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// docker-compose.yml with its YAML anchors merged, as compose reads it.
pub fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mut value: Value = serde_norway::from_str(&text).unwrap();
    // Until nothing changes: a merged anchor may carry a merge of its own
    // (x-sentinel-data: <<: *redis-lab), which one pass leaves in place.
    for _ in 0..8 {
        let before = value.clone();
        value.apply_merge().unwrap();
        if value == before {
            return value;
        }
    }
    panic!("docker-compose.yml's merges still change after 8 passes");
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
    assert!(images.windows(2).all(|w| w[0] == w[1]), "one definition for every replica");
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
    for n in 1..=REPLICAS.len() {
        assert!(cfg.contains(&format!("\"${{APP{n}_ADDR}}\"")), "haproxy.cfg does not use APP{n}_ADDR");
    }
    let mount = haproxy["volumes"][0].as_str().unwrap();
    assert!(mount.starts_with("./docker/haproxy/haproxy.cfg:"), "compose mounts another file: {mount}");
    let ports: Vec<_> = haproxy["ports"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let app_port = env["HAPROXY_BIND"].trim_start_matches(':');
    let stats_port = env["HAPROXY_STATS_BIND"].trim_start_matches(':');
    // This machine only, unless PUBLISH_ADDR says otherwise.
    let published = |vars: &BTreeMap<&str, &str>| ports.iter().map(|p| interpolate(p, vars)).collect::<Vec<_>>();
    for port in [app_port, stats_port] {
        assert!(published(&BTreeMap::new()).contains(&format!("127.0.0.1:{port}:{port}")), "{ports:?}");
        let open = published(&[("PUBLISH_ADDR", "0.0.0.0")].into());
        assert!(open.contains(&format!("0.0.0.0:{port}:{port}")), "{open:?}");
    }
    assert!(published(&BTreeMap::new()).iter().all(|p| p.starts_with("127.0.0.1:")), "{ports:?}");
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
    assert_eq!(image, format!("haproxy:{local_minor}"), "{image} vs local {local_minor}");
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

/// HAProxy's runtime API is at admin level (Drain and Ready need `set server`), so only the
/// replicas may share a network with HAProxy: no store, nor the secrets service, can reach it.
#[test]
fn only_the_replicas_share_a_network_with_haproxy() {
    let compose = compose();
    // A list of names, or a map from name to settings (HAProxy's fixed address).
    let networks = |name: &str| -> Vec<String> {
        let listed = &service(&compose, name)["networks"];
        let names: Vec<&serde_norway::Value> = match listed.as_mapping() {
            Some(map) => map.keys().collect(),
            None => listed.as_sequence().map(|n| n.iter().collect()).unwrap_or_default(),
        };
        names.into_iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    let haproxy = networks("haproxy");
    assert_eq!(haproxy, ["edge"], "HAProxy's networks");
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let shares = networks(name).iter().any(|n| haproxy.contains(n));
        assert_eq!(shares, name == "haproxy" || REPLICAS.contains(&name), "{name} and HAProxy's network");
        assert!(
            !svc["networks"].is_null() || svc["network_mode"].as_str() == Some("none"),
            "{name} on the default network"
        );
    }
}

/// The replicas believe `X-Forwarded-For` from HAProxy's address alone: its fixed address on
/// `edge`, outside the range Docker hands out there, and not the whole network, whose gateway is
/// where the host's own connections come from.
#[test]
fn the_replicas_trust_forwarded_for_from_haproxy_alone() {
    let compose = compose();
    let haproxy = service(&compose, "haproxy")["networks"]["edge"]["ipv4_address"].as_str().expect("a fixed address");
    let edge = &compose["networks"]["edge"]["ipam"]["config"][0];
    let (subnet, range) = (edge["subnet"].as_str().unwrap(), edge["ip_range"].as_str().unwrap());
    let within = |net: &str, addr: &str| {
        let net: ipnet::IpNet = net.parse().unwrap();
        net.contains(&addr.parse::<std::net::IpAddr>().unwrap())
    };
    assert!(within(subnet, haproxy) && !within(range, haproxy), "{haproxy} in {subnet}, outside {range}");
    for name in REPLICAS {
        assert_eq!(environment(service(&compose, name))["TRUSTED_PROXIES"], haproxy, "{name}");
    }
}

/// Pinned to a release line (`postgres:15`), never to a frozen build (`postgres:15.10`) nor to
/// whatever `latest` is today.
#[test]
fn every_image_is_pinned_to_a_release_line_and_stores_keep_their_data() {
    let compose = compose();
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        let image = svc["image"].as_str().unwrap();
        if image == "sessionlab:local" {
            continue;
        }
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        let parts: Vec<_> = tag.split('.').collect();
        assert!(
            (1..=2).contains(&parts.len()) && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "{name:?}: {image} is not a major or major.minor line"
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

/// Linux ignores a SIGKILL that PID 1 of a namespace sends to itself, so the replica must not be
/// PID 1 for the dashboard's Kill to work: tini is. And no `# syntax` line: it makes BuildKit
/// pull a frontend image on every build, for nothing.
#[test]
fn the_image_runs_the_app_under_an_init_and_pulls_nothing_extra() {
    let dockerfile = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains(r#"ENTRYPOINT ["tini", "--", "sessionlab"]"#), "the app would be PID 1");
    assert!(!dockerfile.lines().any(|l| l.trim_start().starts_with("# syntax")), "a # syntax line");
    let arg = |name: &str| {
        let line = dockerfile.lines().find(|l| l.starts_with(&format!("ARG {name}="))).unwrap();
        line.rsplit_once(':').unwrap().1.to_owned()
    };
    // Release lines: Debian by codename (not a point release like 12.12), Rust by minor version.
    assert!(arg("RUNTIME_IMAGE").starts_with(|c: char| c.is_ascii_lowercase()), "{}", arg("RUNTIME_IMAGE"));
    let rust = arg("RUST_IMAGE");
    assert_eq!(rust.split('-').next().unwrap().matches('.').count(), 1, "{rust}: a frozen patch release");
}

/// Each Redis topology's settings file (`docker compose --env-file docker/redis-<topology>.env up`)
/// turns on its profile and points the app at servers that profile runs, each with a health check.
#[test]
fn each_redis_topology_file_turns_on_its_profile_and_names_its_servers() {
    let compose = compose();
    for (file, scheme, profile) in [
        ("docker/redis-sentinel.env", "redis-sentinel", "sentinel"),
        ("docker/redis-cluster.env", "redis-cluster", "cluster"),
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let vars: BTreeMap<&str, &str> =
            text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('=')).collect();
        assert_eq!(vars["COMPOSE_PROFILES"], profile, "{file}");
        assert_eq!(vars["SESSION_BACKEND"], "redis", "{file}");
        assert_eq!(vars["STACK_REDIS_WAIT_REPLICAS"], "1", "{file}: a failover loses nothing acknowledged");
        let (url_scheme, rest) = vars["STACK_REDIS_URL"].split_once("://").unwrap();
        assert_eq!(url_scheme, scheme, "{file}");
        let servers = rest.split('/').next().unwrap().split(',');
        for server in servers {
            let (host, _) = server.split_once(':').unwrap();
            let svc = service(&compose, host);
            let profiles: Vec<_> = svc["profiles"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            assert_eq!(profiles, [profile], "{file}: {host}");
            assert!(svc["healthcheck"]["test"].is_sequence(), "{host} has no health check");
        }
        for (name, svc) in compose["services"].as_mapping().unwrap() {
            if svc["profiles"].is_null() {
                continue;
            }
            assert_eq!(svc["image"].as_str(), service(&compose, "redis")["image"].as_str(), "{name:?}: one Redis line");
        }
    }
}

/// Health checks that mean "ready for the replicas": PostgreSQL asked over TCP (its first-start
/// initialisation answers on the Unix socket with TCP off), and a grace period on every store so
/// that a slow first initialisation does not count as unhealthy.
#[test]
fn store_health_checks_wait_for_what_the_replicas_need() {
    let compose = compose();
    let pg: Vec<_> = service(&compose, "postgres")["healthcheck"]["test"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(pg.windows(2).any(|w| w == ["-h", "127.0.0.1"]), "pg_isready over the socket: {pg:?}");
    for store in STORES {
        let period = service(&compose, store)["healthcheck"]["start_period"].as_str().unwrap_or_default();
        let secs: u64 = period.trim_end_matches('s').parse().unwrap_or(0);
        assert!(secs >= 30, "{store}: start_period {period:?}");
    }
}

/// `docker compose up` after a `git pull` must run the new code: the app's services are built
/// on every up (compose v2's `pull_policy: build`; the suite's runs prove the image builds).
#[test]
fn the_app_image_is_rebuilt_on_every_up() {
    let compose = compose();
    for name in REPLICAS.iter().chain(["secrets"].iter()) {
        assert_eq!(service(&compose, name)["pull_policy"].as_str(), Some("build"), "{name}");
        assert!(service(&compose, name)["build"].is_mapping(), "{name}");
    }
}

/// No secret is in the compose file: unset or empty variables leave SESSION_KEY, JWT_KEYS and
/// ADMIN_TOKEN empty, and the replicas read the installation's own from the files the one-shot
/// `secrets` service writes before they start.
#[test]
fn compose_carries_no_secret_and_generates_them_per_installation() {
    let compose = compose();
    let secrets = service(&compose, "secrets");
    let dir = secrets["command"][1].as_str().unwrap();
    for name in REPLICAS {
        let app = service(&compose, name);
        let env = environment(app);
        for (var, file) in [("SESSION_KEY", "session_key"), ("JWT_KEYS", "jwt_keys"), ("ADMIN_TOKEN", "admin_token")] {
            assert_eq!(interpolate(&env[var], &BTreeMap::new()), "", "{name}: {var} has a default");
            assert_eq!(interpolate(&env[var], &[(var, "")].into()), "", "{name}: empty {var} falls back");
            assert_eq!(env[&format!("{var}_FILE")], format!("{dir}/{file}"));
        }
        assert_eq!(app["depends_on"]["secrets"]["condition"].as_str(), Some("service_completed_successfully"));
        let mounts: Vec<_> = app["volumes"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(mounts.contains(&format!("secrets:{dir}:ro").as_str()), "{name}: {mounts:?}");
    }
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    assert!(!text.contains("not-a-secret") && !text.contains("sessionlab-demo-admin"), "a public secret");
}

/// The image is built from the repository minus `.dockerignore`: nothing the binary embeds at
/// compile time (templates, static files, migrations, the strategy pages) may be left out.
#[test]
fn the_docker_context_keeps_every_file_the_binary_embeds() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for embedded in [
        "templates/lab.html",
        "static/lab.js",
        "migrations/postgres",
        "docs/strategies/redis.md",
        "docs/img/latency.svg",
    ] {
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
