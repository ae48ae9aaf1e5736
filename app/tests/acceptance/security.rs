//! Throttling across replicas (log-ins per username and per client address, sign-ups per address),
//! the bound on concurrent password hashes, cookie names behind HTTPS, and forms no other origin
//! can forge.
use std::{collections::BTreeSet, net::IpAddr};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sessionlab::{
    lab::LabConfig,
    session::Backend,
    throttle::{MAX_PER_ADDRESS, MAX_PER_USER, MAX_PER_USER_AND_ADDRESS},
};

use crate::harness::{Client, Reply, reply, spawn_lab, spawn_lab_with, username};

fn address(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

fn password_of(name: &str) -> Value {
    json!({"username": name, "password": format!("pw-{name}-long")})
}

async fn guess(client: &Client, name: &str) -> Reply {
    client.post("/api/login", json!({"username": name, "password": "wrong-password"})).await
}

/// The three counts, each from the addresses it is about (HAProxy passes on the client's
/// address, and the test clients leave from 127.0.0.2, 127.0.0.3…).
#[tokio::test]
async fn failed_logins_are_throttled_per_username_and_address_with_ceilings_for_each() {
    let lab = spawn_lab(Backend::Cookie).await;
    let (victim, other) = (username("victim"), username("other"));
    for name in [&victim, &other] {
        Client::new(lab.url()).register_and_login(name).await;
    }
    let at = |n: u8| Client::from_address(lab.url(), address(n));

    // A guesser at one address: its failures, spread over every replica, lock that address out
    // of that username, with a Retry-After and a form that says why...
    let guesser = at(2);
    let mut replicas = BTreeSet::new();
    for _ in 0..MAX_PER_USER_AND_ADDRESS {
        let r = guess(&guesser, &victim).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        replicas.insert(r.replica);
    }
    assert_eq!(replicas.len(), 3, "the failures were spread over every replica");
    let locked = at(2).post("/api/login", password_of(&victim)).await;
    assert_eq!(
        (locked.status, locked.body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    let retry_after: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After {retry_after}");
    let page = at(2);
    let csrf = page.form_token("/login").await;
    let form = page.post_form("/login", &[("csrf", &csrf), ("username", &victim), ("password", "whatever-long")]).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(form.text.contains("too many failed log-ins"), "the form says why");
    // ...and nothing else: the victim logs in from its own address, and the guesser's address
    // logs in to another account.
    assert_eq!(at(3).post("/api/login", password_of(&victim)).await.status, StatusCode::OK, "locked out by a stranger");
    assert_eq!(at(2).post("/api/login", password_of(&other)).await.status, StatusCode::OK);

    // A guesser spread over many addresses meets the ceiling for the username.
    let mut failures = MAX_PER_USER_AND_ADDRESS;
    for n in 10.. {
        if failures == MAX_PER_USER {
            break;
        }
        let spread = at(n);
        for _ in 0..MAX_PER_USER_AND_ADDRESS {
            assert_eq!(guess(&spread, &victim).await.status, StatusCode::UNAUTHORIZED, "failure {failures}");
            failures += 1;
        }
    }
    assert_eq!(at(4).post("/api/login", password_of(&victim)).await.status, StatusCode::TOO_MANY_REQUESTS);

    // One address trying many usernames meets the ceiling for the address, and only that address.
    let sprayer = at(5);
    for n in 0..MAX_PER_ADDRESS {
        assert_eq!(guess(&sprayer, &format!("guess_{n}")).await.status, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    assert_eq!(at(5).post("/api/login", password_of(&other)).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(at(6).post("/api/login", password_of(&other)).await.status, StatusCode::OK);
    lab.shutdown().await;
}

/// `X-Forwarded-For` names the client only when HAProxy wrote it (`TRUSTED_PROXIES`). A client
/// that reaches a replica directly and writes a new address into the header for every guess is
/// counted at its real address; so is one that writes it through HAProxy, which appends the
/// address it saw.
#[tokio::test]
async fn a_forged_forwarded_for_escapes_no_count() {
    let lab = spawn_lab(Backend::Cookie).await;
    let victim = username("forged");
    Client::new(lab.url()).register_and_login(&victim).await;
    let replica = lab.state().replicas[0].url.clone();
    for (base, source) in [(replica.as_str(), address(7)), (lab.url(), address(8))] {
        let client = Client::from_address(base, source);
        let forging = |n: usize| {
            let request = client.http().post(format!("{base}/api/login"));
            let body = json!({"username": victim, "password": "wrong-password"});
            async move {
                reply(request.header("x-forwarded-for", format!("198.51.100.{n}")).json(&body).send().await.unwrap())
                    .await
            }
        };
        for n in 0..MAX_PER_USER_AND_ADDRESS as usize {
            assert_eq!(forging(n).await.status, StatusCode::UNAUTHORIZED, "{base}: guess {n}");
        }
        let refused = forging(99).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{base}: a forged address is a fresh count");
    }
    // The device list shows the real address too.
    let me = Client::from_address(lab.url(), address(9));
    me.post("/api/login", password_of(&victim)).await;
    let forged = me.http().get(format!("{}/api/sessions", lab.url())).header("x-forwarded-for", "198.51.100.1");
    let list = reply(forged.send().await.unwrap()).await;
    let current = list.body["sessions"].as_array().unwrap().iter().find(|s| s["current"] == json!(true)).cloned();
    assert_eq!(current.unwrap()["ip"], "127.0.0.9", "{}", list.text);
    lab.shutdown().await;
}

/// The demo accounts are shared by everyone using a lab: when one is locked, the log-in form says
/// so and points to the other one, or to signing up.
#[tokio::test]
async fn a_locked_demo_account_says_it_is_shared_and_points_elsewhere() {
    let lab = spawn_lab(Backend::Cookie).await;
    let typist = Client::new(lab.url());
    for _ in 0..MAX_PER_USER_AND_ADDRESS {
        let r = typist.post("/api/login", json!({"username": "alice", "password": "wrong-password"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let classmate = Client::new(lab.url());
    let csrf = classmate.form_token("/login").await;
    let form =
        classmate.post_form("/login", &[("csrf", &csrf), ("username", "alice"), ("password", "whatever-long")]).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        form.text.contains("everyone using this lab shares") && form.text.contains("log in as bob"),
        "{}",
        form.text
    );
    lab.shutdown().await;
}

/// Runs every request at once, and their answers in order.
async fn all_at_once<T: Send + 'static>(
    requests: impl Iterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let running: Vec<_> = requests.map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for request in running {
        answers.push(request.await.expect("the request task ran"));
    }
    answers
}

fn lab_with(env: &[(&str, &str)]) -> LabConfig {
    let mut config = LabConfig::new(Backend::Cookie, env!("CARGO_BIN_EXE_sessionlab").into());
    config.extra_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    config
}

/// A wave of parallel guesses for one username: each attempt takes its place in the count before
/// the password is checked, so exactly five are checked (401) and the rest are refused (429)
/// without a hash. Checking the count first and recording failures after the hash let every
/// guess of the wave through.
#[tokio::test]
async fn sixty_parallel_wrong_passwords_get_five_password_checks() {
    // Room for every hash at once, so that no attempt is turned away as "busy" instead.
    let lab = spawn_lab_with(lab_with(&[("PASSWORD_HASH_CONCURRENCY", "64")])).await;
    let victim = username("wave");
    Client::new(lab.url()).register_and_login(&victim).await;
    let guesses = (0..60).map(|n| {
        let client = Client::new(lab.url());
        let body = json!({"username": victim, "password": format!("wrong-guess-{n}")});
        async move { client.post("/api/login", body).await.status }
    });
    let statuses = all_at_once(guesses).await;
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count(StatusCode::UNAUTHORIZED), MAX_PER_USER_AND_ADDRESS as usize, "password checks: {statuses:?}");
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 60 - MAX_PER_USER_AND_ADDRESS as usize, "{statuses:?}");
    let right = json!({"username": victim, "password": format!("pw-{victim}-long")});
    assert_eq!(Client::new(lab.url()).post("/api/login", right).await.status, StatusCode::TOO_MANY_REQUESTS);
    lab.shutdown().await;
}

/// Password hashing is bounded: with room for one hash at a time, a burst of sign-ups at one
/// replica gets a fast 503 with `Retry-After: 1` for each one beyond it, never a queue or a 500,
/// and the ones that got a hash succeed.
#[tokio::test]
async fn a_burst_of_sign_ups_beyond_the_hashing_bound_gets_503_busy() {
    let lab = spawn_lab_with(lab_with(&[("PASSWORD_HASH_CONCURRENCY", "1")])).await;
    let replica = lab.state().replicas[0].url.clone();
    let sign_ups =
        (0..30).map(|n| {
            let client = Client::new(&replica);
            let name = username(&format!("burst{n}"));
            async move {
                client.post("/api/register", json!({"username": name, "password": format!("pw-{name}-long")})).await
            }
        });
    let replies = all_at_once(sign_ups).await;
    let busy: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(replies.iter().all(|r| [StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE].contains(&r.status)));
    assert!(replies.iter().any(|r| r.status == StatusCode::CREATED), "no sign-up got a hash");
    assert!(!busy.is_empty(), "30 sign-ups at once never met the bound of one hash");
    for reply in busy {
        assert_eq!(reply.body["error"], json!("busy"), "{}", reply.text);
        assert_eq!(reply.headers["retry-after"], "1");
    }
    lab.shutdown().await;
}

/// Sign-ups are throttled per address (each costs a hash): the fourth of three allowed gets 429
/// with `Retry-After`, through the API and the form alike.
#[tokio::test]
async fn sign_ups_are_throttled_per_address() {
    let lab = spawn_lab_with(lab_with(&[("SIGN_UPS_PER_ADDRESS", "3")])).await;
    for n in 0..3 {
        Client::new(lab.url()).register_and_login(&username(&format!("signup{n}"))).await;
    }
    let name = username("signup3");
    let refused = Client::new(lab.url())
        .post("/api/register", json!({"username": name, "password": format!("pw-{name}-long")}))
        .await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_sign_ups"))
    );
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After {retry_after}");
    let page = Client::new(lab.url());
    let csrf = page.form_token("/register").await;
    let form =
        page.post_form("/register", &[("csrf", &csrf), ("username", &name), ("password", "long-enough-pw")]).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(form.text.contains("too many sign-ups") && form.headers.contains_key("retry-after"), "{}", form.text);
    lab.shutdown().await;
}

/// The `Set-Cookie` headers of a response: (name, the attributes after the value).
fn set_cookies(res: &reqwest::Response) -> Vec<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            (pair.split('=').next().unwrap().to_owned(), attributes.to_owned())
        })
        .collect()
}

/// The `name=value` pair of the cookie `name` a response sets.
fn set_cookie_pair(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
}

/// Behind HTTPS (`COOKIE_SECURE=true`) every cookie the app sets carries the prefix browsers
/// enforce, so no sibling subdomain or plain-http page can plant one: `__Host-` (Secure, Path=/,
/// no Domain) for the site-wide ones, `__Secure-` for the dashboard's. A cookie under the bare
/// name is not read. Over http (the lab) a browser would drop them, so this client sends them by
/// hand.
#[tokio::test]
async fn behind_https_every_cookie_is_prefixed_and_secure() {
    for backend in [Backend::Jwt, Backend::ActixCookie] {
        let mut config = LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into());
        config.extra_env.push(("COOKIE_SECURE".into(), "true".into()));
        let lab = spawn_lab_with(config).await;
        let http = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = |path: &str| format!("{}{path}", lab.url());
        let mut seen = Vec::new();

        let form = http.get(url("/login")).send().await.unwrap();
        seen.extend(set_cookies(&form));
        let name = username("https");
        let body = json!({"username": name, "password": format!("pw-{name}-long")});
        let registered = http.post(url("/api/register")).json(&body).send().await.unwrap();
        assert!(registered.status().is_success(), "{backend}: {}", registered.status());
        let cookies = set_cookies(&registered);
        let session = set_cookie_pair(&registered, "__Host-sl_session")
            .unwrap_or_else(|| panic!("{backend}: no __Host-sl_session in {cookies:?}"));
        seen.extend(cookies);
        let me = |cookie: String| http.get(url("/api/me")).header("cookie", cookie).send();
        assert_eq!(me(session.clone()).await.unwrap().status(), StatusCode::OK, "{backend}");
        let bare = session.trim_start_matches("__Host-").to_owned();
        assert_eq!(me(bare).await.unwrap().status(), StatusCode::UNAUTHORIZED, "{backend}: the bare name was read");

        let page = http.get(url("/lab")).send().await.unwrap();
        let nonce = set_cookie_pair(&page, "__Host-sl_csrf").unwrap_or_else(|| panic!("{backend}: no __Host-sl_csrf"));
        seen.extend(set_cookies(&page));
        let field = crate::harness::csrf_field(&page.text().await.unwrap()).expect("a CSRF field on /lab");
        let token = lab.admin_token().to_owned();
        let unlocked = http
            .post(url("/lab/unlock"))
            .header("cookie", nonce)
            .form(&[("csrf", field.as_str()), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(unlocked.status(), StatusCode::SEE_OTHER, "{backend}");
        seen.extend(set_cookies(&unlocked));

        let names: Vec<&str> = seen.iter().map(|(name, _)| name.as_str()).collect();
        for wanted in ["__Host-sl_csrf", "__Host-sl_session", "__Secure-sl_admin"] {
            assert!(names.contains(&wanted), "{backend}: {wanted} never set: {seen:?}");
        }
        for (name, attributes) in &seen {
            let lower = attributes.to_ascii_lowercase();
            assert!(lower.contains("; secure") || lower.starts_with(" secure"), "{backend}: {name} without Secure");
            assert!(!lower.contains("domain="), "{backend}: {name} with a Domain");
            match name.as_str() {
                n if n.starts_with("__Host-") => {
                    assert!(lower.contains("path=/;") || lower.ends_with("path=/"), "{n}: {attributes}")
                }
                n if n.starts_with("__Secure-") => {}
                other => panic!("{backend}: {other} has no prefix"),
            }
        }
        lab.shutdown().await;
    }
}

/// An origin that can set this site's cookies (another port on the same host: cookies ignore
/// ports; or a sibling subdomain) plants a CSRF cookie of its choosing in a logged-in victim's
/// browser, then posts a form. The plain double-submit pattern (field == cookie) lets it through;
/// bound to the user under the server's key, no pair the attacker can make or fetch passes.
#[tokio::test]
async fn a_planted_csrf_cookie_forges_no_form() {
    let lab = spawn_lab(Backend::Cookie).await;
    let victim_name = username("victim");
    let victim = Client::new(lab.url());
    victim.register_and_login(&victim_name).await;
    let other_device = Client::new(lab.url());
    other_device.post("/api/login", password_of(&victim_name)).await;
    assert_eq!(other_device.get("/api/me").await.status, StatusCode::OK);
    let session = victim.session_cookie().unwrap();

    let attacker = Client::new(lab.url());
    let guest_pair = (attacker.form_token("/").await, attacker.cookie("sl_csrf").unwrap());
    attacker.register_and_login(&username("attacker")).await;
    let own_pair = (attacker.form_token("/").await, attacker.cookie("sl_csrf").unwrap());
    let planted = sessionlab::session::SessionId::generate().expose().to_owned();
    let forge = |field: String, nonce: String| {
        let http = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = format!("{}/devices/revoke-others", lab.url());
        let cookie = format!("sl_session={session}; sl_csrf={nonce}");
        async move { http.post(url).header("cookie", cookie).form(&[("csrf", field)]).send().await.unwrap().status() }
    };
    for (what, (field, nonce)) in [
        ("the plain double submit", (planted.clone(), planted)),
        ("a guest's pair", guest_pair),
        ("its own pair", own_pair),
    ] {
        assert_eq!(forge(field, nonce).await, StatusCode::FORBIDDEN, "{what} passed");
    }
    assert_eq!(other_device.get("/api/me").await.status, StatusCode::OK, "a forged form ended a session");
    // The victim's own page, with its own cookie, does pass: the refusals above were the binding.
    let field = victim.form_token("/devices").await;
    assert_eq!(forge(field, victim.cookie("sl_csrf").unwrap()).await, StatusCode::SEE_OTHER);
    assert_eq!(other_device.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    lab.shutdown().await;
}
