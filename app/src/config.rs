//! Typed settings read once from the environment (and `.env` through dotenvy).
//!
//! Every variable the app reads is listed in [`ENV_VARS`]; `docs/configuration.md` and `.env.example`
//! document the same list, and a test keeps the three in step.
use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use crate::session::{Backend, redis_client::names_several_servers};

/// Every environment variable the app reads: (name, default, meaning).
pub const ENV_VARS: &[(&str, &str, &str)] = &[
    (
        "SESSION_BACKEND",
        "cookie",
        "where session state lives: memory, sticky, cookie, redis, memcached, postgres, mysql, jwt, actix-redis, actix-cookie",
    ),
    (
        "REPLICA_ID",
        "(unset: a lone dev replica called app1)",
        "this replica's name, shown in the footer and the X-Replica header",
    ),
    ("LISTEN_ADDR", "127.0.0.1:8000", "address and port to serve HTTP on"),
    (
        "HTTP_WORKERS",
        "(unset: one per CPU core)",
        "actix worker threads of this replica; the lab and compose set 1, as their replicas share one machine's cores",
    ),
    ("DATABASE_URL", "sqlite://sessionlab.sqlite3", "app database (users, products): sqlite://PATH or postgres://…"),
    (
        "REDIS_URL",
        "redis://127.0.0.1:6379",
        "Redis for SESSION_BACKEND=redis or actix-redis; with jwt, cookie, sticky or memory it holds the revocation list. \
         redis-sentinel://host:port,host:port,…/service asks Redis Sentinel for the primary; redis-cluster://host:port,… \
         is a Redis Cluster (neither for actix-redis)",
    ),
    (
        "REDIS_WAIT_REPLICAS",
        "0",
        "with Sentinel or Cluster: every session write waits (WAIT, up to 500 ms) until this many replicas of its server \
         have it, so a failover loses no acknowledged write; a write they do not confirm gets 503",
    ),
    ("MEMCACHED_URL", "127.0.0.1:11211", "memcached server(s) for SESSION_BACKEND=memcached, comma-separated"),
    (
        "SESSION_DATABASE_URL",
        "(DATABASE_URL when it is the same engine)",
        "postgres://… or mysql://… for SESSION_BACKEND=postgres or mysql",
    ),
    (
        "SESSION_SWEEP_INTERVAL_SECS",
        "60",
        "how often expired rows are deleted: a SQL store's sessions, and the app database's throttle, device and revocation rows",
    ),
    (
        "JWT_KEYS",
        "(unset: random, single dev replica only)",
        "kid:secret pairs (secrets of 32+ bytes), comma-separated; the first signs, all verify",
    ),
    (
        "JWT_KEYS_FILE",
        "(unset)",
        "a file holding JWT_KEYS, read when JWT_KEYS is unset or empty (compose generates it)",
    ),
    (
        "SESSION_REVOCATION",
        "on",
        "memory, sticky, cookie and jwt: on checks every logged-in request against a revocation list (logout sticks, \
         \"your devices\" works); off is the pure strategy: no lookup, and a copy of a logged-out cookie works until it expires",
    ),
    ("JWT_ACCESS_TTL_SECS", "900", "lifetime of a JWT access token"),
    ("JWT_REFRESH_TTL_SECS", "604800", "lifetime of a JWT refresh token (rotated on every use)"),
    (
        "SESSION_KEY",
        "(unset: random, single dev replica only)",
        "secret of at least 64 bytes: encrypts the cookie strategy's cookies and signs every form's CSRF token; identical on every replica",
    ),
    (
        "SESSION_KEY_FILE",
        "(unset)",
        "a file holding SESSION_KEY, read when SESSION_KEY is unset or empty (compose generates it)",
    ),
    ("SESSION_IDLE_TIMEOUT_SECS", "1800", "a session unused this long expires"),
    ("SESSION_ABSOLUTE_TIMEOUT_SECS", "43200", "a session ends this long after log-in (or creation), however active"),
    (
        "COOKIE_SECURE",
        "false",
        "set it behind HTTPS: cookies are Secure and named with the __Host- (or, for /lab's, __Secure-) prefix",
    ),
    (
        "PASSWORD_HASH_CONCURRENCY",
        "(unset: two per CPU core)",
        "argon2 hashes one replica runs at once; one more gets 503 with Retry-After: 1",
    ),
    (
        "SIGN_UPS_PER_ADDRESS",
        "20",
        "sign-ups one client address may make per 15 minutes (each costs a hash); beyond, 429",
    ),
    (
        "TRUSTED_PROXIES",
        "(unset: X-Forwarded-For is ignored, the connection's address is the client's)",
        "comma-separated addresses or networks of the proxies in front (HAProxy) whose X-Forwarded-For entries name the client; the lab and compose set it",
    ),
    ("SEED_DEMO_USERS", "false", "create the demo users alice and bob (password: sessionlab-demo)"),
    (
        "ADMIN_TOKEN",
        "(unset: the /lab dashboard's Kill, Drain, Ready and Remove buttons are off)",
        "the token that unlocks the /lab chaos controls; compose and `sessionlab lab` generate one",
    ),
    (
        "ADMIN_TOKEN_FILE",
        "(unset)",
        "a file holding ADMIN_TOKEN, read when ADMIN_TOKEN is unset or empty (compose generates it)",
    ),
    (
        "HAPROXY_ADMIN_ADDR",
        "(unset: /lab cannot show or change the replicas' states)",
        "host:port of HAProxy's runtime API (its `stats socket`), for the /lab dashboard",
    ),
    (
        "LAB_SUPERVISOR_PID",
        "(unset: the dashboard has no Stop / Start store buttons)",
        "set by `sessionlab lab` for its replicas: the dashboard's store buttons ask that process (the replica's parent) to stop or start the store",
    ),
    ("LOG_FORMAT", "text", "text or json"),
    ("RUST_LOG", "info", "log filter (tracing-subscriber EnvFilter syntax)"),
];

/// A value that must never reach a log line.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    pub replica_id: String,
    /// False when REPLICA_ID is unset: a lone `cargo run`, allowed to invent its own SESSION_KEY.
    pub part_of_cluster: bool,
    pub listen_addr: SocketAddr,
    /// `None`: actix's default, one worker per core.
    pub http_workers: Option<usize>,
    pub database_url: Secret,
    pub redis_url: Secret,
    /// Replicas every Redis write waits for (`WAIT`); 0: none.
    pub redis_wait_replicas: u32,
    pub memcached_url: Secret,
    pub session_database_url: Option<Secret>,
    pub mysql_url: Option<Secret>,
    pub sweep_interval: Duration,
    pub jwt_keys: Option<Secret>,
    pub jwt_access_ttl: Duration,
    pub jwt_refresh_ttl: Duration,
    /// Redis for the revocation list of the stateless strategies: REDIS_URL when it is set
    /// explicitly.
    pub revocation_redis: Option<Secret>,
    /// The stateless strategies (`memory`, `sticky`, `cookie`, `jwt`) run with their revocation
    /// layer: `SESSION_REVOCATION=on`, the default.
    pub revocation: bool,
    pub session_key: Option<Secret>,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub cookie_secure: bool,
    pub seed_demo_users: bool,
    pub password_hash_concurrency: usize,
    pub sign_ups_per_address: u32,
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    pub admin_token: Option<Secret>,
    pub haproxy_admin_addr: Option<String>,
    /// `sessionlab lab`'s PID, when it started this replica: it stops and starts the store.
    pub lab_supervisor_pid: Option<u32>,
    pub log_json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
    #[error("{name}={path:?} cannot be read: {reason}")]
    SecretFile { name: &'static str, path: String, reason: String },
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can build settings without touching the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let replica = get("REPLICA_ID");
        let session_key = secret(&get, "SESSION_KEY", "SESSION_KEY_FILE")?;
        if let Some(key) = &session_key
            && key.expose().len() < 64
        {
            return Err(invalid("SESSION_KEY", "(hidden)", "it must be at least 64 bytes long"));
        }
        let backend = parse("SESSION_BACKEND", get("SESSION_BACKEND"), Backend::Cookie)?;
        if backend == Backend::ActixRedis && get("REDIS_URL").is_some_and(|url| names_several_servers(&url)) {
            // Not the URL itself: it may hold a password.
            return Err(invalid(
                "REDIS_URL",
                "(a Sentinel or Cluster URL)",
                "actix-redis is the stock stack, measured against one Redis server: give it redis://host:port \
                 (Sentinel and Cluster are sessionlab's own layer, SESSION_BACKEND=redis)",
            ));
        }
        Ok(Self {
            backend,
            part_of_cluster: replica.is_some(),
            replica_id: replica.unwrap_or_else(|| "app1".into()),
            listen_addr: parse("LISTEN_ADDR", get("LISTEN_ADDR"), SocketAddr::from(([127, 0, 0, 1], 8000)))?,
            http_workers: match get("HTTP_WORKERS") {
                None => None,
                Some(n) => match n.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => return Err(invalid("HTTP_WORKERS", &n, "use a whole number of threads, 1 or more")),
                },
            },
            database_url: Secret::new(get("DATABASE_URL").unwrap_or_else(|| "sqlite://sessionlab.sqlite3".into())),
            redis_url: Secret::new(get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into())),
            redis_wait_replicas: match parse("REDIS_WAIT_REPLICAS", get("REDIS_WAIT_REPLICAS"), 0_u32)? {
                n if n > 0 && !get("REDIS_URL").is_some_and(|url| names_several_servers(&url)) => {
                    return Err(invalid(
                        "REDIS_WAIT_REPLICAS",
                        &n.to_string(),
                        "it needs replicas to wait for: a redis-sentinel:// or redis-cluster:// REDIS_URL \
                         (with one server every write would wait in vain and get 503)",
                    ));
                }
                n => n,
            },
            memcached_url: Secret::new(get("MEMCACHED_URL").unwrap_or_else(|| "127.0.0.1:11211".into())),
            session_database_url: get("SESSION_DATABASE_URL").map(Secret::new),
            mysql_url: get("MYSQL_URL").map(Secret::new),
            sweep_interval: Duration::from_secs(
                parse("SESSION_SWEEP_INTERVAL_SECS", get("SESSION_SWEEP_INTERVAL_SECS"), 60_u64)?.max(1),
            ),
            session_key,
            jwt_keys: secret(&get, "JWT_KEYS", "JWT_KEYS_FILE")?,
            jwt_access_ttl: Duration::from_secs(
                parse("JWT_ACCESS_TTL_SECS", get("JWT_ACCESS_TTL_SECS"), 900_u64)?.max(1),
            ),
            jwt_refresh_ttl: Duration::from_secs(
                parse("JWT_REFRESH_TTL_SECS", get("JWT_REFRESH_TTL_SECS"), 604_800_u64)?.max(1),
            ),
            revocation_redis: get("REDIS_URL").map(Secret::new),
            revocation: revocation(&backend, get("SESSION_REVOCATION"))?,
            idle_timeout: Duration::from_secs(parse(
                "SESSION_IDLE_TIMEOUT_SECS",
                get("SESSION_IDLE_TIMEOUT_SECS"),
                1800,
            )?),
            absolute_timeout: Duration::from_secs(
                parse("SESSION_ABSOLUTE_TIMEOUT_SECS", get("SESSION_ABSOLUTE_TIMEOUT_SECS"), 43_200_u64)?.max(1),
            ),
            cookie_secure: parse_bool("COOKIE_SECURE", get("COOKIE_SECURE"))?,
            seed_demo_users: parse_bool("SEED_DEMO_USERS", get("SEED_DEMO_USERS"))?,
            password_hash_concurrency: match get("PASSWORD_HASH_CONCURRENCY") {
                None => crate::users::default_hash_concurrency(),
                Some(n) => match n.trim().parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(invalid("PASSWORD_HASH_CONCURRENCY", &n, "use a whole number, 1 or more")),
                },
            },
            sign_ups_per_address: parse("SIGN_UPS_PER_ADDRESS", get("SIGN_UPS_PER_ADDRESS"), 20_u32)?,
            trusted_proxies: {
                let list = get("TRUSTED_PROXIES").unwrap_or_default();
                crate::client_addr::TrustedProxies::parse(&list)
                    .map_err(|why| invalid("TRUSTED_PROXIES", &list, &why))?
            },
            admin_token: secret(&get, "ADMIN_TOKEN", "ADMIN_TOKEN_FILE")?,
            haproxy_admin_addr: get("HAPROXY_ADMIN_ADDR"),
            lab_supervisor_pid: get("LAB_SUPERVISOR_PID")
                .map(|raw| parse("LAB_SUPERVISOR_PID", Some(raw), 0u32))
                .transpose()?,
            log_json: match get("LOG_FORMAT").as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => return Err(invalid("LOG_FORMAT", other, "use text or json")),
            },
        })
    }
}

impl Settings {
    /// The database of the SQL session stores: `SESSION_DATABASE_URL`; else, for `mysql`,
    /// `MYSQL_URL`; else `DATABASE_URL` when it is the engine the backend names. (Compose sets
    /// `MYSQL_URL` so that one `SESSION_BACKEND` switches between every strategy.)
    pub fn session_database_url(&self) -> Result<Secret, ConfigError> {
        if let Some(url) = &self.session_database_url {
            return Ok(url.clone());
        }
        if self.backend == Backend::Mysql
            && let Some(url) = &self.mysql_url
        {
            return Ok(url.clone());
        }
        let app = self.database_url.expose();
        let same_engine = match self.backend {
            Backend::Postgres => app.starts_with("postgres://") || app.starts_with("postgresql://"),
            Backend::Mysql => app.starts_with("mysql://") || app.starts_with("mariadb://"),
            _ => false,
        };
        if same_engine {
            Ok(self.database_url.clone())
        } else {
            Err(invalid(
                "SESSION_DATABASE_URL",
                "(unset)",
                format!(
                    "SESSION_BACKEND={} needs a {} URL here (DATABASE_URL is another engine)",
                    self.backend, self.backend
                ),
            ))
        }
    }
}

/// A secret from its variable or, when that is unset or empty, from the file `<NAME>_FILE` names
/// (how compose hands the replicas the keys its `secrets` service generated). An empty variable
/// never means "use a default": there is no default secret.
fn secret(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    file_var: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(value) = get(name) {
        return Ok(Some(Secret::new(value)));
    }
    let Some(path) = get(file_var) else { return Ok(None) };
    let unreadable = |reason: String| ConfigError::SecretFile { name: file_var, path: path.clone(), reason };
    let text = std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(unreadable("the file is empty".into()));
    }
    Ok(Some(Secret::new(value)))
}

/// `SESSION_REVOCATION`: on unless `off`; only the strategies that keep no shared list of
/// sessions can run without one (the others revoke by deleting the stored session).
fn revocation(backend: &Backend, raw: Option<String>) -> Result<bool, ConfigError> {
    let on = match raw.as_deref().map(str::trim) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(invalid("SESSION_REVOCATION", other, "use on or off")),
    };
    if !on && !backend.revocation_is_a_layer() {
        return Err(invalid(
            "SESSION_REVOCATION",
            "off",
            format!(
                "SESSION_BACKEND={backend} keeps its sessions in a shared store and ends one by deleting it: there is \
                 no revocation list to turn off (it applies to memory, sticky, cookie and jwt)"
            ),
        ));
    }
    Ok(on)
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { name, value: value.into(), reason: reason.into() }
}

fn parse<T: FromStr>(name: &'static str, raw: Option<String>, default: T) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match raw {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| invalid(name, &raw, e.to_string())),
    }
}

fn parse_bool(name: &'static str, raw: Option<String>) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::trim) {
        None => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(invalid(name, other, "use true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_configured_means_a_lone_cookie_replica_on_sqlite() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.backend, Backend::Cookie);
        assert!(!s.part_of_cluster);
        assert!(s.database_url.expose().starts_with("sqlite://"));
    }

    #[test]
    fn a_short_session_key_is_refused_without_echoing_it() {
        let err = settings(&[("SESSION_KEY", "short-secret")]).unwrap_err().to_string();
        assert!(err.contains("64 bytes"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
    }

    #[test]
    fn an_unknown_backend_is_a_clear_error() {
        let err = settings(&[("SESSION_BACKEND", "floppy")]).unwrap_err().to_string();
        assert!(err.contains("SESSION_BACKEND") && err.contains("sticky"), "{err}");
    }

    #[test]
    fn sentinel_and_cluster_are_for_sessionlabs_own_layer_and_a_password_is_not_echoed() {
        let sentinel = ("REDIS_URL", "redis-sentinel://:hunter2@127.0.0.1:26379/sessionlab");
        let own = settings(&[("SESSION_BACKEND", "redis"), sentinel, ("REDIS_WAIT_REPLICAS", "1")]).unwrap();
        assert_eq!(own.redis_wait_replicas, 1);
        let err = settings(&[("SESSION_BACKEND", "actix-redis"), sentinel]).unwrap_err().to_string();
        assert!(err.contains("one Redis server") && !err.contains("hunter2"), "{err}");
        let cluster = ("REDIS_URL", "redis-cluster://127.0.0.1:7000,127.0.0.1:7001");
        assert!(settings(&[("SESSION_BACKEND", "actix-redis"), cluster]).is_err());
        assert!(settings(&[("SESSION_BACKEND", "redis"), cluster]).is_ok());
        let err = settings(&[("REDIS_WAIT_REPLICAS", "one")]).unwrap_err().to_string();
        assert!(err.contains("REDIS_WAIT_REPLICAS"), "{err}");
        let err = settings(&[("REDIS_URL", "redis://127.0.0.1:6379"), ("REDIS_WAIT_REPLICAS", "1")]).unwrap_err();
        assert!(err.to_string().contains("needs replicas"), "{err}");
    }

    #[test]
    fn revocation_is_on_by_default_and_off_only_where_it_is_a_layer() {
        assert!(settings(&[("SESSION_BACKEND", "jwt")]).unwrap().revocation);
        assert!(!settings(&[("SESSION_BACKEND", "jwt"), ("SESSION_REVOCATION", "off")]).unwrap().revocation);
        let err = settings(&[("SESSION_BACKEND", "redis"), ("SESSION_REVOCATION", "off")]).unwrap_err().to_string();
        assert!(err.contains("no revocation list to turn off"), "{err}");
        let err = settings(&[("SESSION_REVOCATION", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("use on or off"), "{err}");
    }

    #[test]
    fn every_variable_is_documented_in_docs_configuration_and_env_example() {
        let table = include_str!("../../docs/configuration.md");
        let example = include_str!("../../.env.example");
        for (name, ..) in ENV_VARS {
            assert!(table.contains(&format!("| `{name}` |")), "docs/configuration.md's table lacks {name}");
            assert!(example.contains(name), ".env.example lacks {name}");
        }
    }

    #[test]
    fn an_empty_secret_variable_falls_back_to_its_file_never_to_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("session_key");
        std::fs::write(&file, format!("{}\n", "f".repeat(64))).unwrap();
        let path = file.to_str().unwrap();
        let s = settings(&[("SESSION_KEY", ""), ("SESSION_KEY_FILE", path), ("REPLICA_ID", "app1")]).unwrap();
        assert_eq!(s.session_key.unwrap().expose(), "f".repeat(64), "read from the file, newline trimmed");
        let s = settings(&[("SESSION_KEY", &"v".repeat(64)), ("SESSION_KEY_FILE", path)]).unwrap();
        assert_eq!(s.session_key.unwrap().expose(), "v".repeat(64), "the variable wins over the file");
        let s = settings(&[("ADMIN_TOKEN", " "), ("JWT_KEYS", "")]).unwrap();
        assert!(s.admin_token.is_none() && s.jwt_keys.is_none(), "empty means unset, not a public default");
    }

    #[test]
    fn a_missing_or_empty_secret_file_is_a_clear_error() {
        let err = settings(&[("JWT_KEYS_FILE", "/nonexistent/jwt_keys")]).unwrap_err().to_string();
        assert!(err.contains("JWT_KEYS_FILE") && err.contains("/nonexistent/jwt_keys"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin_token");
        std::fs::write(&file, "\n").unwrap();
        let err = settings(&[("ADMIN_TOKEN_FILE", file.to_str().unwrap())]).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = settings(&[("SESSION_KEY", &"k".repeat(64))]).unwrap();
        assert!(!format!("{s:?}").contains("kkkk"));
    }
}
