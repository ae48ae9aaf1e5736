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
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use reqwest::{
    Method, StatusCode,
    cookie::{CookieStore, Jar},
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
        let jar = Arc::new(Jar::default());
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

    /// Registers (and so logs in) and fills the cart with products 1, 2 and 3.
    pub async fn sign_up_with_three_items(base: &str, name: String) -> anyhow::Result<Self> {
        let user = Self::new(name)?;
        let password = format!("pw-{}-long", user.name);
        let res = user
            .http
            .post(format!("{base}/api/register"))
            .json(&json!({"username": user.name, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(res.status() == StatusCode::CREATED, "register {}: {}", user.name, res.status());
        for product in 1..=3 {
            user.add(base, product).await?;
        }
        Ok(user)
    }

    /// Adds one of `product`, with a fresh `Idempotency-Key`: where the strategy records keys,
    /// HAProxy may replay the request on another replica if the first one died, and the
    /// change still happens once.
    pub async fn add(&self, base: &str, product: i64) -> anyhow::Result<StatusCode> {
        let key = crate::session::idempotency::IdempotencyKey::generate();
        let res = self
            .http
            .post(format!("{base}/api/cart/items"))
            .header(crate::session::idempotency::HEADER, format!("\"{}\"", key.as_str()))
            .json(&json!({"product_id": product, "qty": 1}))
            .send()
            .await?;
        Ok(res.status())
    }
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

/// Runs `users` as closed-loop clients for `duration`.
pub async fn run(base: &str, users: &[User], op: Op, duration: Duration) -> LoadResult {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let base: Arc<str> = base.into();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| {
            let base = base.clone();
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
                let (mut requests, mut errors, mut step) = (0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let ok = send(&user, &base, op, step).await;
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

async fn send(user: &User, base: &str, op: Op, step: u64) -> bool {
    let request = match op {
        Op::Healthz => user.http.get(format!("{base}/healthz")),
        Op::Read => user.http.get(format!("{base}/api/cart")),
        Op::Write if step.is_multiple_of(2) => {
            user.http.post(format!("{base}/api/cart/items")).json(&json!({"product_id": 4, "qty": 1}))
        }
        Op::Write => user.http.request(Method::DELETE, format!("{base}/api/cart/items/4")),
    };
    match request.send().await {
        Ok(res) => {
            let ok = res.status().is_success();
            // Read the body: the connection goes back to the pool only once it is drained.
            let _ = res.bytes().await;
            ok
        }
        Err(_) => false,
    }
}
