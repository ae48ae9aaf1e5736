//! The load generator: closed-loop clients, each a browser with its own cookie jar and its own
//! logged-in session, sending the next request as soon as the last one is answered. Latencies
//! go into an HDR histogram (`hdrhistogram`), so percentiles are exact to 3 significant digits.
//!
//! Why not wrk or oha: wrk's Lua cannot give each connection its own session (and would share
//! one session between connections, turning the write test into a contention test), oha is not
//! packaged in Debian, and goose takes minutes to build on two cores. Here every client is one
//! user, and the harness knows which writes were acknowledged — which the correctness
//! experiments need. wrk still runs once per lab, on `/healthz`, as the yardstick that shows
//! whether this generator is the bottleneck.
//!
//! The generator must cost little, or it measures itself: it shares two cores with HAProxy, the
//! replicas and the store. So a timed run is built the way wrk is: one thread (a current-thread
//! tokio runtime of its own; a work-stealing one spends its time waking threads on the other
//! core), one kept-alive connection per client, driven by hyper with nothing on top. Each
//! client sends its user's cookies and takes the ones the server sets, as a browser does.
//! Setting up users (sign-up, the cart) goes through reqwest, where convenience wins.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::{
    Method, StatusCode,
    cookie::{CookieStore, Jar},
    header::{CONTENT_TYPE, COOKIE, HOST, HeaderValue, SET_COOKIE},
};
use serde::Serialize;
use serde_json::json;

/// One simulated browser.
#[derive(Clone)]
pub struct User {
    pub http: reqwest::Client,
    pub name: String,
    jar: Arc<Jar>,
}

impl User {
    pub fn new(name: String) -> anyhow::Result<Self> {
        Self::with_jar(name, Arc::new(Jar::default()))
    }

    fn with_jar(name: String, jar: Arc<Jar>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(4)
            .build()?;
        Ok(Self { http, name, jar })
    }

    /// The `Cookie` header this browser sends to `base`.
    pub fn cookie_header(&self, base: &str) -> Option<String> {
        let url = reqwest::Url::parse(base).ok()?;
        self.jar.cookies(&url)?.to_str().ok().map(str::to_owned)
    }

    /// Registers (and so logs in); also returns the replica that served the log-in.
    pub async fn sign_up(base: &str, name: String) -> anyhow::Result<(Self, String)> {
        let user = Self::new(name)?;
        let password = format!("pw-{}-long", user.name);
        let res = user
            .http
            .post(format!("{base}/api/register"))
            .json(&json!({"username": user.name, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(res.status() == StatusCode::CREATED, "register {}: {}", user.name, res.status());
        let replica = replica(&res);
        Ok((user, replica))
    }

    /// Registers (and so logs in) and fills the cart with products 1, 2 and 3.
    pub async fn sign_up_with_three_items(base: &str, name: String) -> anyhow::Result<Self> {
        let (user, _) = Self::sign_up(base, name).await?;
        for product in 1..=3 {
            user.add(base, product).await?;
        }
        Ok(user)
    }

    /// Adds one of `product`, with a fresh `Idempotency-Key`: where the strategy records keys,
    /// HAProxy may replay the request on another replica if the first one died, and the
    /// change still happens once.
    pub async fn add(&self, base: &str, product: i64) -> anyhow::Result<StatusCode> {
        Ok(self.add_on(base, product).await?.0)
    }

    /// [`User::add`], and the replica that answered.
    pub async fn add_on(&self, base: &str, product: i64) -> anyhow::Result<(StatusCode, String)> {
        let key = crate::session::idempotency::IdempotencyKey::generate();
        let res = self
            .http
            .post(format!("{base}/api/cart/items"))
            .header(crate::session::idempotency::HEADER, format!("\"{}\"", key.as_str()))
            .json(&json!({"product_id": product, "qty": 1}))
            .send()
            .await?;
        Ok((res.status(), replica(&res)))
    }
}

/// The replica that answered (its `X-Replica` header), or `?`.
pub fn replica(res: &reqwest::Response) -> String {
    res.headers().get("x-replica").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned()
}

/// What one request of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `GET /healthz`: no session at all, the ceiling of the setup.
    Healthz,
    /// `GET /api/cart`.
    Read,
    /// `POST /api/cart/items` adding product 4, then `DELETE` of it: the cart stays at 3 lines.
    Write,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs `users` as closed-loop clients for `duration`, on a thread of their own.
pub async fn run(base: &str, users: &[User], op: Op, duration: Duration) -> LoadResult {
    let (base, users) = (base.to_owned(), users.to_vec());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let result = runtime.map(|rt| rt.block_on(run_here(&base, &users, op, duration)));
        let _ = tx.send(result);
    });
    match rx.await {
        Ok(Ok(result)) => result,
        Ok(Err(err)) => panic!("could not start the load generator's runtime: {err}"),
        Err(_) => panic!("the load generator's thread panicked"),
    }
}

async fn run_here(base: &str, users: &[User], op: Op, duration: Duration) -> LoadResult {
    let base = reqwest::Url::parse(base).expect("the lab's URL parses");
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|user| {
            let mut client = Client::new(&base, user.jar.clone());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
                let (mut requests, mut errors, mut step) = (0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let ok = client.send(op, step).await.is_ok_and(|status| status.is_success());
                    let micros = sent.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                    histogram.record(micros).expect("within bounds");
                    requests += 1;
                    errors += u64::from(!ok);
                    step += 1;
                }
                (histogram, requests, errors)
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut requests, mut errors) = (0, 0);
    for task in tasks {
        let (histogram, r, e) = task.await.expect("a load client panicked");
        total.add(histogram).expect("same bounds");
        requests += r;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    LoadResult {
        requests,
        errors,
        seconds,
        rps: requests as f64 / seconds,
        p50_ms: total.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: total.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

/// One simulated browser during a timed run: one kept-alive connection (reopened if it fails),
/// the user's cookies.
struct Client {
    url: reqwest::Url,
    addr: String,
    host: HeaderValue,
    jar: Arc<Jar>,
    cookie: Option<HeaderValue>,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    fn new(base: &reqwest::Url, jar: Arc<Jar>) -> Self {
        let addr = format!("{}:{}", base.host_str().unwrap_or("127.0.0.1"), base.port_or_known_default().unwrap_or(80));
        let host = HeaderValue::from_str(&addr).expect("host:port is a valid header");
        let cookie = jar.cookies(base);
        Self { url: base.clone(), addr, host, jar, cookie, connection: None }
    }

    async fn send(&mut self, op: Op, step: u64) -> anyhow::Result<StatusCode> {
        let (method, path, body) = match op {
            Op::Healthz => (Method::GET, "/healthz", None),
            Op::Read => (Method::GET, "/api/cart", None),
            Op::Write if step.is_multiple_of(2) => {
                (Method::POST, "/api/cart/items", Some(r#"{"product_id":4,"qty":1}"#))
            }
            Op::Write => (Method::DELETE, "/api/cart/items/4", None),
        };
        let mut request = hyper::Request::builder().method(method).uri(path).header(HOST, self.host.clone());
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie.clone());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from_static(body.unwrap_or("").as_bytes())))?;
        let outcome = tokio::time::timeout(Duration::from_secs(10), self.exchange(request)).await;
        match outcome {
            Ok(Ok(status)) => Ok(status),
            // A failed or stuck connection is not reused: the next request opens another.
            Ok(Err(err)) => {
                self.connection = None;
                Err(err)
            }
            Err(_) => {
                self.connection = None;
                anyhow::bail!("no answer within 10 s")
            }
        }
    }

    async fn exchange(&mut self, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<StatusCode> {
        let connection = match &mut self.connection {
            Some(open) if !open.is_closed() => open,
            _ => self.connection.insert(connect(&self.addr).await?),
        };
        connection.ready().await?;
        let response = connection.send_request(request).await?;
        let mut set_cookies = response.headers().get_all(SET_COOKIE).iter().peekable();
        if set_cookies.peek().is_some() {
            self.jar.set_cookies(&mut set_cookies, &self.url);
            self.cookie = self.jar.cookies(&self.url);
        }
        let status = response.status();
        // Read the whole body, as a browser would, before the connection takes the next request.
        response.into_body().collect().await?;
        Ok(status)
    }
}

async fn connect(addr: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection's I/O runs as its own task on this run's thread; it ends when `sender` goes.
    tokio::spawn(connection);
    Ok(sender)
}
