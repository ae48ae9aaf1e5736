//! Test harness: a real lab (replicas, HAProxy, stores) per test, and a cookie-keeping client.
use std::{sync::Arc, time::Duration};

use reqwest::{
    Method, StatusCode, Url,
    cookie::{CookieStore, Jar},
    header::{CONTENT_TYPE, COOKIE, HeaderMap},
};
use serde_json::{Value, json};
use sessionlab::{
    lab::{Affinity, Lab, LabConfig},
    session::{Backend, COOKIE_NAME},
};

/// What a strategy can do by design; the shared scenarios branch on these, never on names.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Every replica sees every session (false: sessions are pinned to one replica).
    pub shared: bool,
    /// A guest's replaced session stops working (false: a guest's state lives only in its cookie
    /// or token, and guests are never checked against the server). Logged-in sessions are revocable on
    /// every strategy.
    pub guests_revocable: bool,
    /// The whole state must fit in a 4 KB cookie.
    pub cookie_wall: bool,
    /// A store outside the replicas: `Some(true)` if it keeps sessions across a restart as the
    /// lab runs it (Redis with its append-only file, as in compose).
    pub durable_store: Option<bool>,
    /// Concurrent writes to one session are compare-and-set, so none is lost (false: the state
    /// travels with the client, and the last response's copy wins; or, for the stock actix
    /// stack, the store overwrites whatever is there).
    pub lossless: bool,
    /// After a log-out, a copy of the old cookie no longer works (false: `actix-cookie`, and
    /// `cookie` or `jwt` without their revocation list, where nothing on the server knows the
    /// session ended).
    pub logout_revokes_copies: bool,
    /// "Your devices" lists and ends a user's sessions (false: the stock stack keeps no index,
    /// and the stateless strategies without their revocation layer keep nothing at all).
    pub lists_sessions: bool,
}

/// sessionlab's own layer on a shared store that forgets on restart (`memcached`): the others say
/// how they differ.
const OWN: Caps = Caps {
    shared: true,
    guests_revocable: true,
    cookie_wall: false,
    durable_store: Some(false),
    lossless: true,
    logout_revokes_copies: true,
    lists_sessions: true,
};

/// A strategy as the suite runs it: `SESSION_BACKEND`, for the stateless strategies whether their
/// revocation layer is on (`SESSION_REVOCATION`), and for `sticky` how HAProxy pins a client
/// (`STICKY_AFFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub backend: Backend,
    pub revocation: bool,
    pub affinity: Affinity,
}

impl Mode {
    /// The strategy without its revocation layer: `SESSION_REVOCATION=off`.
    pub const fn pure(backend: Backend) -> Self {
        Self { backend, revocation: false, affinity: Affinity::Cookie }
    }

    /// Pinned by the client's address (`balance source`) instead of HAProxy's cookie; HAProxy
    /// pins only `sticky`.
    pub const fn by_address(backend: Backend) -> Self {
        Self { backend, revocation: true, affinity: Affinity::Source }
    }

    pub fn config(self) -> LabConfig {
        let mut config = LabConfig::new(self.backend, env!("CARGO_BIN_EXE_sessionlab").into());
        config.revocation = self.revocation;
        config.affinity = self.affinity;
        config
    }

    /// What the dashboard says about how HAProxy picks a replica, from HAProxy's own `show stat`.
    pub fn balancing_says(self) -> &'static str {
        match (self.backend, self.affinity) {
            (Backend::Sticky, Affinity::Cookie) => "pins with its SERVERID cookie",
            (Backend::Sticky, Affinity::Source) => "by client address (balance source)",
            _ => "round robin, no affinity",
        }
    }
}

impl From<Backend> for Mode {
    fn from(backend: Backend) -> Self {
        Self { backend, revocation: true, affinity: Affinity::Cookie }
    }
}

/// The backend's name, as pages and the API show it; assertions name the mode.
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend.as_str())
    }
}

pub fn caps(mode: impl Into<Mode>) -> Caps {
    let mode = mode.into();
    let caps = backend_caps(mode.backend);
    if mode.revocation || !mode.backend.revocation_is_a_layer() {
        return caps;
    }
    // Without the revocation layer nothing on the server lists sessions; only a session kept in a
    // replica's memory (sticky) can still be ended, by the replica that holds it.
    Caps { lists_sessions: false, logout_revokes_copies: !mode.backend.keeps_state_in_client(), ..caps }
}

fn backend_caps(backend: Backend) -> Caps {
    match backend {
        Backend::Memory | Backend::Sticky => Caps { shared: false, durable_store: None, ..OWN },
        Backend::Cookie => {
            Caps { guests_revocable: false, cookie_wall: true, durable_store: None, lossless: false, ..OWN }
        }
        Backend::Memcached => OWN,
        Backend::Redis | Backend::Postgres | Backend::Mysql => Caps { durable_store: Some(true), ..OWN },
        Backend::Jwt => {
            Caps { guests_revocable: false, cookie_wall: true, durable_store: None, lossless: false, ..OWN }
        }
        Backend::ActixRedis => Caps { lossless: false, durable_store: Some(true), lists_sessions: false, ..OWN },
        Backend::ActixCookie => Caps {
            guests_revocable: false,
            durable_store: None,
            lossless: false,
            logout_revokes_copies: false,
            lists_sessions: false,
            ..OWN
        },
    }
}

/// Replicas behind a load balancer that a test can crash: the native lab, or compose where a
/// Docker engine runs (`compose.rs`). Scenarios that take one run unchanged on both.
#[async_trait::async_trait(?Send)]
pub trait Cluster {
    fn url(&self) -> &str;
    /// `kill -9` the replica; returns once it is gone.
    async fn kill(&self, id: &str);
    /// Whether a new process of the killed replica may already be serving by the time the
    /// scenario looks (Docker restarts a crashed container at once). Its memory is new either way.
    fn restarts_at_once(&self) -> bool {
        false
    }
}

#[async_trait::async_trait(?Send)]
impl Cluster for Lab {
    fn url(&self) -> &str {
        Lab::url(self)
    }

    async fn kill(&self, id: &str) {
        self.kill_replica(id).await.unwrap();
    }
}

pub async fn spawn_lab(mode: impl Into<Mode>) -> Lab {
    spawn_lab_with(mode.into().config()).await
}

pub async fn spawn_lab_with(config: LabConfig) -> Lab {
    Lab::start(config).await.expect("the lab starts")
}

/// One browser-like client: its own cookie jar.
pub struct Client {
    base: Url,
    http: reqwest::Client,
    jar: Arc<Jar>,
}

pub struct Reply {
    pub status: StatusCode,
    pub replica: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self::with_user_agent(base, None)
    }

    /// A client that introduces itself as `user_agent` (a browser, for "your devices").
    pub fn with_user_agent(base: &str, user_agent: Option<&str>) -> Self {
        Self::build(base, user_agent, None)
    }

    /// A client whose connections leave from `source`, another loopback address (127.0.0.2,
    /// 127.0.0.3…): to HAProxy and the replicas, a client at another address.
    pub fn from_address(base: &str, source: std::net::IpAddr) -> Self {
        Self::build(base, None, Some(source))
    }

    fn build(base: &str, user_agent: Option<&str>, source: Option<std::net::IpAddr>) -> Self {
        let jar = Arc::new(Jar::default());
        let mut http = reqwest::Client::builder().local_address(source);
        if let Some(agent) = user_agent {
            http = http.user_agent(agent);
        }
        let http = http
            .no_proxy()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            // Below HAProxy's `timeout http-keep-alive` (10 s): a connection idle that long may be
            // closed by HAProxy just as a request goes out on it, and a POST is not retried.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self { base: Url::parse(base).unwrap(), http, jar }
    }

    /// The client's HTTP agent, cookie jar included, for requests the helpers do not cover.
    pub fn http(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.base.join(path).unwrap());
        if let Some(body) = body {
            req = req.json(&body);
        }
        reply(req.send().await.expect("the lab answers")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        reply(self.http.post(self.base.join(path).unwrap()).form(form).send().await.unwrap()).await
    }

    /// The CSRF token the forms on page `path` carry, as this client sees the page now: the
    /// token is bound to the client's CSRF cookie and to who is logged in.
    pub async fn form_token(&self, path: &str) -> String {
        let page = self.get(path).await;
        csrf_field(&page.text).unwrap_or_else(|| panic!("no CSRF field on {path}: {}", page.text))
    }

    /// Sends `path` with exactly this Cookie header, bypassing the jar.
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Reply {
        let bare = reqwest::Client::builder().no_proxy().build().unwrap();
        reply(bare.get(self.base.join(path).unwrap()).header(COOKIE, cookie).send().await.unwrap()).await
    }

    /// A cookie this client holds, by name.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        header.to_str().ok()?.split("; ").find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// A cookie this client would send to `path` (cookies scoped to a path, like /lab's).
    pub fn cookie_at(&self, path: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base.join(path).ok()?)?;
        header.to_str().ok()?.split("; ").find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookie(COOKIE_NAME)
    }

    pub async fn register_and_login(&self, name: &str) {
        let password = format!("pw-{name}-long");
        let r = self.post("/api/register", json!({"username": name, "password": password})).await;
        assert_eq!(r.status, StatusCode::CREATED, "register {name}: {}", r.text);
    }

    pub async fn add(&self, product_id: i64, qty: i64) -> Reply {
        self.post("/api/cart/items", json!({"product_id": product_id, "qty": qty})).await
    }

    /// The cart as {product_id: qty}.
    pub async fn cart(&self) -> (Reply, Vec<(i64, i64)>) {
        let r = self.get("/api/cart").await;
        let items = cart_items(&r.body);
        (r, items)
    }
}

pub fn cart_items(body: &Value) -> Vec<(i64, i64)> {
    body["items"]
        .as_array()
        .map(|items| items.iter().map(|i| (i["product_id"].as_i64().unwrap(), i["qty"].as_i64().unwrap())).collect())
        .unwrap_or_default()
}

pub async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status();
    let headers = res.headers().clone();
    let replica = headers.get("x-replica").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let is_json =
        headers.get(CONTENT_TYPE).is_some_and(|v| v.to_str().unwrap_or_default().starts_with("application/json"));
    let text = res.text().await.unwrap_or_default();
    let body = if is_json { serde_json::from_str(&text).unwrap_or(Value::Null) } else { Value::Null };
    Reply { status, replica, headers, body, text }
}

/// A fresh username for this test run.
pub fn username(prefix: &str) -> String {
    format!("{prefix}_{}", &hex::encode(rand::random::<[u8; 6]>()))
}

/// Pauses HAProxy's health checks, whose `/readyz` costs each replica a store round trip a
/// second, so that a count of store commands holds only what the requests cost.
pub async fn pause_health_checks(lab: &Lab) {
    lab.haproxy_admin().set_checks(false).await.unwrap();
    // A check already sent finishes in milliseconds.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

/// Total commands a Redis server has executed, excluding the INFO that asks.
pub async fn redis_commands(conn: &mut redis::aio::MultiplexedConnection) -> std::collections::BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            (name != "info").then(|| (name.to_owned(), calls))
        })
        .collect()
}

/// The value of the first hidden `csrf` field in an HTML page.
pub fn csrf_field(html: &str) -> Option<String> {
    let (_, rest) = html.split_once(r#"name="csrf" value=""#)?;
    rest.split('"').next().map(str::to_owned)
}
