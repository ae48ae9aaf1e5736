//! Checks of the compose stack that are not about sessions: what it publishes, which secrets it
//! runs with, and that a store's health check means what the replicas need.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use super::Stack;

/// `docker <args>`; its output, once it succeeded.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A container the test started, removed however the test ends (a container left on the
/// project's network would keep `docker compose down` from removing it).
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "--force", &self.0]).output();
    }
}

fn docker_succeeds(args: &[&str]) -> bool {
    Command::new("docker").args(args).output().is_ok_and(|o| o.status.success())
}

/// The replicas run with no secret from the compose file: SESSION_KEY, JWT_KEYS and ADMIN_TOKEN
/// are empty in their environment and come from the files the `secrets` service generated, the
/// same files for all three. Every published port listens on 127.0.0.1 only.
pub fn no_public_secret_and_nothing_published_beyond_this_machine(stack: &Stack) {
    let secrets = ["session_key", "jwt_keys", "admin_token"];
    let read = |replica: &str| -> Vec<String> {
        secrets.iter().map(|s| stack.exec(replica, &["cat", &format!("/var/lib/sessionlab/secrets/{s}")])).collect()
    };
    let first = read("app1");
    for replica in ["app1", "app2", "app3", "app4"] {
        let env: Vec<String> = serde_json::from_str(&stack.inspect(replica, "{{json .Config.Env}}")).unwrap();
        for var in ["SESSION_KEY", "JWT_KEYS", "ADMIN_TOKEN"] {
            assert!(env.contains(&format!("{var}=")), "{replica}: {var} is set in compose's environment");
            assert!(env.iter().any(|e| e.starts_with(&format!("{var}_FILE=/"))), "{replica}: no {var}_FILE");
        }
        // Compared, never printed.
        assert!(read(replica) == first, "{replica} reads other secrets than app1");
    }
    assert!(first[0].len() >= 64 && first[2].len() >= 32, "generated secrets too short");

    let ports: serde_json::Value =
        serde_json::from_str(&stack.inspect("haproxy", "{{json .NetworkSettings.Ports}}")).unwrap();
    let bindings: Vec<_> = ports.as_object().unwrap().values().filter_map(|b| b.as_array()).flatten().collect();
    assert!(!bindings.is_empty(), "HAProxy publishes nothing: {ports}");
    for binding in bindings {
        assert_eq!(binding["HostIp"], "127.0.0.1", "published beyond this machine: {ports}");
    }
}

/// HAProxy's runtime API (admin level) answers the replicas, and nothing else on any network:
/// a store's container cannot even open a connection to it.
pub fn only_the_replicas_reach_haproxys_runtime_api(stack: &Stack) {
    let connect = ["bash", "-c", "exec 3<>/dev/tcp/haproxy/9999"];
    assert!(stack.exec_succeeds("app1", &connect), "a replica cannot reach HAProxy's runtime API");
    for store in ["redis", "memcached", "postgres", "mariadb"] {
        assert!(!stack.exec_succeeds(store, &connect), "{store} reaches HAProxy's runtime API");
    }
}

/// The replicas take the client's address from HAProxy (TRUSTED_PROXIES names its fixed
/// address): a forged `X-Forwarded-For` sent through it is not believed, and the address a
/// session lists is neither the forged one nor HAProxy's own.
pub async fn the_client_address_is_the_one_haproxy_saw(url: &str) {
    const FORGED: &str = "198.51.100.77";
    let client = crate::harness::Client::new(url);
    let name = crate::harness::username("addr");
    let http = client.http();
    let forged = |request: reqwest::RequestBuilder| request.header("x-forwarded-for", FORGED);
    let body = serde_json::json!({"username": name, "password": format!("pw-{name}-long")});
    let registered = forged(http.post(format!("{url}/api/register"))).json(&body).send().await.unwrap();
    assert!(registered.status().is_success(), "{}", registered.text().await.unwrap());
    let logged_in = forged(http.post(format!("{url}/api/login"))).json(&body).send().await.unwrap();
    assert!(logged_in.status().is_success(), "{}", logged_in.text().await.unwrap());
    let list: serde_json::Value =
        forged(http.get(format!("{url}/api/sessions"))).send().await.unwrap().json().await.unwrap();
    let ip = list["sessions"][0]["ip"].as_str().unwrap_or_default().to_owned();
    let haproxy = crate::docker::compose()["services"]["haproxy"]["networks"]["edge"]["ipv4_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip.parse::<std::net::IpAddr>().is_ok() && ip != FORGED && ip != haproxy, "listed as {ip}: {list}");
}

/// On a fresh volume the PostgreSQL image initialises the database through a server that listens
/// on its Unix socket only. compose's health check must not pass then (the replicas would start,
/// fail their migrations and restart-loop): it asks over TCP. A slow init script holds the
/// initialisation open long enough to look.
#[tokio::test]
#[ignore = "needs a Docker engine: make test runs it through scripts/compose-suite.sh"]
async fn a_fresh_postgres_is_healthy_only_once_it_answers_over_tcp() {
    let compose = crate::docker::compose();
    let postgres = &compose["services"]["postgres"];
    let image = postgres["image"].as_str().unwrap();
    let check: Vec<&str> =
        postgres["healthcheck"]["test"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(check[0], "CMD");

    let init = tempfile::tempdir().unwrap();
    std::fs::write(init.path().join("10-slow.sh"), "sleep 10\n").unwrap();
    // Readable by the image's postgres user.
    std::fs::set_permissions(init.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mount = format!("{}:/docker-entrypoint-initdb.d:ro", init.path().display());
    let mut run = vec!["run", "--detach", "--rm", "-v", &mount];
    for var in ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"] {
        run.extend(["-e", var]);
    }
    let container = Container({
        let out = Command::new("docker")
            .args(&run)
            .arg(image)
            .envs([("POSTGRES_USER", "sessionlab"), ("POSTGRES_PASSWORD", "sessionlab"), ("POSTGRES_DB", "sessionlab")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    });
    let id = &container.0;
    let exec = |args: &[&str]| docker_succeeds(&[&["exec", id.as_str()][..], args].concat());

    let deadline = Instant::now() + Duration::from_secs(60);
    let logs = || {
        let out = Command::new("docker").args(["logs", id]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    while !logs().contains("10-slow.sh") {
        assert!(Instant::now() < deadline, "the init script never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Initialising: the socket answers, so the old check would say healthy; compose's must not.
    assert!(exec(&["pg_isready", "-U", "sessionlab", "-d", "sessionlab"]), "the socket should answer during init");
    assert!(!exec(&check[1..]), "compose's health check passed while TCP was still off");

    let deadline = Instant::now() + Duration::from_secs(60);
    while !exec(&check[1..]) {
        assert!(Instant::now() < deadline, "PostgreSQL never became healthy");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
