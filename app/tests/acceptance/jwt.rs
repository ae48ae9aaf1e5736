//! What only the JWT strategy promises: its tokens are checked strictly, keys rotate, logout and
//! refresh-token reuse revoke across replicas at once, and refresh keeps browsers logged in.
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessionlab::{
    lab::{LabConfig, Logs, StoreKind, StoreServer},
    session::{Backend, SessionId, revocation::REFRESH_GRACE},
};

use crate::harness::{Client, spawn_lab_with, username};

const NEW: (&str, &str) = ("k2", "the-new-signing-secret-of-at-least-32-bytes");
const OLD: (&str, &str) = ("k1", "the-old-verifying-secret-of-at-least-32-bytes");

fn config(extra: &[(&str, &str)]) -> LabConfig {
    let mut cfg = LabConfig::new(Backend::Jwt, env!("CARGO_BIN_EXE_sessionlab").into());
    cfg.extra_env.push(("JWT_KEYS".into(), format!("{}:{},{}:{}", NEW.0, NEW.1, OLD.0, OLD.1)));
    cfg.extra_env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    cfg
}

fn now() -> i64 {
    sessionlab::session::unix_now()
}

fn claims(exp: i64, token_use: &str) -> Value {
    json!({
        "sub": "1", "sid": SessionId::generate().expose(), "jti": SessionId::generate().expose(),
        "iat": now(), "exp": exp, "use": token_use, "user": {"id": 1, "username": "alice"},
    })
}

fn mint(alg: Algorithm, kid: &str, secret: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
}

async fn me_with(client: &Client, token: &str) -> StatusCode {
    let res = reqwest::Client::builder().no_proxy().build().unwrap();
    res.get(format!("{}/api/me", client_base(client))).bearer_auth(token).send().await.unwrap().status()
}

fn client_base(client: &Client) -> String {
    client.base_url().trim_end_matches('/').to_owned()
}

#[tokio::test]
async fn only_tokens_signed_by_a_configured_key_with_hs256_and_in_date_are_accepted() {
    let lab = spawn_lab_with(config(&[])).await;
    let c = Client::new(lab.url());
    let fresh = now() + 600;
    assert_eq!(me_with(&c, &mint(Algorithm::HS256, NEW.0, NEW.1, &claims(fresh, "access"))).await, StatusCode::OK);
    assert_eq!(
        me_with(&c, &mint(Algorithm::HS256, OLD.0, OLD.1, &claims(fresh, "access"))).await,
        StatusCode::OK,
        "a token signed with the previous key still verifies"
    );
    let unsigned = {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k2","typ":"JWT"}"#);
        format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims(fresh, "access").to_string()))
    };
    let rejected = [
        ("forged", mint(Algorithm::HS256, NEW.0, "a-secret-nobody-configured-anywhere-xx", &claims(fresh, "access"))),
        ("expired", mint(Algorithm::HS256, NEW.0, NEW.1, &claims(now() - 5, "access"))),
        ("unknown kid", mint(Algorithm::HS256, "k9", NEW.1, &claims(fresh, "access"))),
        ("HS512", mint(Algorithm::HS512, NEW.0, NEW.1, &claims(fresh, "access"))),
        ("alg none", unsigned),
        ("a refresh token", mint(Algorithm::HS256, NEW.0, NEW.1, &claims(fresh, "refresh"))),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in rejected {
        assert_eq!(me_with(&c, &token).await, StatusCode::UNAUTHORIZED, "{what} token accepted");
    }
    // The app signs with the first key, and the inspector shows the token's claims.
    c.register_and_login(&username("kid")).await;
    let before = c.get("/api/session").await.body;
    assert_eq!(before["token"]["header"]["kid"], NEW.0);
    assert_eq!(before["token"]["header"]["alg"], "HS256");
    c.add(1, 1).await;
    c.add(2, 1).await;
    let after = c.get("/api/session").await.body;
    assert_eq!(after["token"]["claims"]["cart"].as_array().unwrap().len(), 2, "the cart rides in the token");
    assert!(after["token"]["bytes"].as_u64() > before["token"]["bytes"].as_u64(), "the token grows with the cart");
    lab.shutdown().await;
}

async fn logout_on_one_replica_is_refused_by_all_within_a_second(cfg: LabConfig) {
    let lab = spawn_lab_with(cfg).await;
    let c = Client::new(lab.url());
    let name = username("revoke");
    let login = c.post("/api/register", json!({"username": name, "password": "long-enough-pw", "token": true})).await;
    let token = login.body["token"].as_str().expect("a token in the body").to_owned();
    assert!(login.body["refresh_token"].is_string());
    let bearer = |method: Method, path: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .request(method, format!("{}{path}", lab.url()))
            .bearer_auth(&token)
    };
    let mut replicas = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let res = bearer(Method::GET, "/api/me").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        replicas.insert(res.headers()["x-replica"].to_str().unwrap().to_owned());
    }
    assert_eq!(replicas.len(), 3);

    let out = bearer(Method::POST, "/api/logout").send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let logged_out_at = Instant::now();
    let mut refused_by = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let res = bearer(Method::GET, "/api/me").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a revoked token was accepted");
        refused_by.insert(res.headers()["x-replica"].to_str().unwrap().to_owned());
    }
    assert_eq!(refused_by.len(), 3, "every replica refused it");
    assert!(logged_out_at.elapsed() < Duration::from_secs(1));
    lab.shutdown().await;
}

#[tokio::test]
async fn logout_is_refused_by_every_replica_with_the_revocation_list_in_the_app_database() {
    logout_on_one_replica_is_refused_by_all_within_a_second(config(&[])).await;
}

#[tokio::test]
async fn logout_is_refused_by_every_replica_with_the_revocation_list_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = StoreServer::start(StoreKind::Redis, dir.path(), Logs::Files).await.unwrap();
    let url = redis.url();
    logout_on_one_replica_is_refused_by_all_within_a_second(config(&[("REDIS_URL", &url)])).await;
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("sessionlab:revoked:*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 1, "the revocation went to Redis");
    redis.stop().await;
}

/// Rotation with reuse detection, and its grace: two refreshes with one token at once (two tabs,
/// a retried request) both get the same successor; the same token presented after the grace
/// period is a replay, and ends the whole session.
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_whole_session(config: LabConfig) {
    let lab = spawn_lab_with(config).await;
    let c = Client::new(lab.url());
    let name = username("reuse");
    let login = c.post("/api/register", json!({"username": name, "password": "long-enough-pw", "token": true})).await;
    let (token, first) =
        (login.body["token"].as_str().unwrap().to_owned(), login.body["refresh_token"].as_str().unwrap().to_owned());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let refresh = |refresh: String, bearer: String| {
        let http = http.clone();
        let url = format!("{}/api/token/refresh", lab.url());
        async move {
            let res = http.post(url).bearer_auth(bearer).json(&json!({"refresh_token": refresh})).send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let ((status, rotated), (other_status, other)) =
        tokio::join!(refresh(first.clone(), token.clone()), refresh(first.clone(), token.clone()));
    assert_eq!((status, other_status), (StatusCode::OK, StatusCode::OK), "{rotated} {other}");
    assert_eq!(rotated["refresh_token"], other["refresh_token"], "two refreshes at once get one successor");
    let (second_token, second) =
        (rotated["token"].as_str().unwrap().to_owned(), rotated["refresh_token"].as_str().unwrap().to_owned());
    assert_ne!(second, first, "the refresh token rotates");
    assert_eq!(me_with(&c, &second_token).await, StatusCode::OK);

    tokio::time::sleep(REFRESH_GRACE + Duration::from_secs(1)).await;
    let (status, body) = refresh(first, token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token")), "reuse");
    assert_eq!(refresh(second, second_token.clone()).await.0, StatusCode::UNAUTHORIZED, "the family survived reuse");
    assert_eq!(me_with(&c, &second_token).await, StatusCode::UNAUTHORIZED, "the session survived reuse");
    lab.shutdown().await;
}

#[tokio::test]
async fn refresh_rotation_with_the_families_in_the_app_database() {
    a_refresh_token_works_once_and_its_reuse_revokes_the_whole_session(config(&[])).await;
}

#[tokio::test]
async fn refresh_rotation_with_the_families_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = StoreServer::start(StoreKind::Redis, dir.path(), Logs::Files).await.unwrap();
    a_refresh_token_works_once_and_its_reuse_revokes_the_whole_session(config(&[("REDIS_URL", &redis.url())])).await;
    redis.stop().await;
}

/// How the other session is ended.
#[derive(Clone, Copy)]
enum EndOthers {
    PasswordChange,
    LogOutEverywhereElse,
}

/// A registry row can be gone (swept after the absolute lifetime, or lost with the app database)
/// while a copy of the token is still out there. "Your devices" no longer lists that session, and
/// ending the listed ones would miss it: the user's cutoff ends it too, token and refresh token.
async fn sessions_no_list_remembers_end_too(config: LabConfig, how: EndOthers) {
    let lab = spawn_lab_with(config).await;
    let name = username("unlisted");
    let password = "long-enough-pw";
    let stolen = Client::new(lab.url())
        .post("/api/register", json!({"username": name, "password": password, "token": true}))
        .await;
    let token = stolen.body["token"].as_str().unwrap().to_owned();
    let refresh = stolen.body["refresh_token"].as_str().unwrap().to_owned();
    let db = sessionlab::db::Db::open(&format!("sqlite://{}", lab.dir().join("app.sqlite3").display())).unwrap();
    db.run(|conn| Ok(diesel::RunQueryDsl::execute(diesel::sql_query("DELETE FROM session_registry"), conn)?))
        .await
        .unwrap();
    // A row goes only when its session has outlived it, so an unlisted session is never from
    // the very second of the cutoff (which would spare it; see revocation.rs's `Cutoff`).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let me = Client::new(lab.url());
    let login = me.post("/api/login", json!({"username": name, "password": password})).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let listed = me.get("/api/sessions").await;
    assert_eq!(
        listed.body["sessions"].as_array().map(Vec::len),
        Some(1),
        "the stolen token is listed: {}",
        listed.text
    );
    assert_eq!(me_with(&me, &token).await, StatusCode::OK, "unlisted, but still valid");

    let ended = match how {
        EndOthers::PasswordChange => {
            let new = json!({"current_password": password, "new_password": "a-brand-new-password"});
            let changed = me.post("/api/password", new).await;
            assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
            changed.body["other_sessions_ended"].clone()
        }
        EndOthers::LogOutEverywhereElse => {
            me.send(Method::DELETE, "/api/sessions/others", None).await.body["revoked"].clone()
        }
    };
    assert_eq!(ended, json!(0), "no other session was listed");
    for _ in 0..3 {
        assert_eq!(me_with(&me, &token).await, StatusCode::UNAUTHORIZED, "an unlisted session survived");
    }
    let refreshed = Client::new(lab.url()).post("/api/token/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED, "its refresh token still works: {}", refreshed.text);
    assert_eq!(me.get("/api/me").await.status, StatusCode::OK, "the session that asked was ended too");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_password_change_ends_unlisted_sessions_with_the_revocations_in_the_app_database() {
    sessions_no_list_remembers_end_too(config(&[]), EndOthers::PasswordChange).await;
}

#[tokio::test]
async fn logging_out_everywhere_else_ends_unlisted_sessions_with_the_revocations_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = StoreServer::start(StoreKind::Redis, dir.path(), Logs::Files).await.unwrap();
    sessions_no_list_remembers_end_too(config(&[("REDIS_URL", &redis.url())]), EndOthers::LogOutEverywhereElse).await;
    redis.stop().await;
}

/// The absolute lifetime counts from the log-in, across refreshes: a refresh token (which lives
/// a week) presented after it, with or without the old access token, gets nothing.
#[tokio::test]
async fn a_refresh_never_extends_a_session_past_its_absolute_lifetime() {
    let lab = spawn_lab_with(config(&[("SESSION_ABSOLUTE_TIMEOUT_SECS", "4"), ("JWT_ACCESS_TTL_SECS", "2")])).await;
    let c = Client::new(lab.url());
    let login = c
        .post("/api/register", json!({"username": username("lifetime"), "password": "long-enough-pw", "token": true}))
        .await;
    let started = Instant::now();
    let mut refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    // Within the lifetime, a refresh without the old access token works (and rotates).
    let early = Client::new(lab.url()).post("/api/token/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(early.status, StatusCode::OK, "{}", early.text);
    refresh = early.body["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep_until(tokio::time::Instant::from_std(started + Duration::from_millis(5200))).await;
    let late = Client::new(lab.url()).post("/api/token/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "refreshed past the absolute lifetime: {}", late.text);
    lab.shutdown().await;
}

/// Without the revocation layer (`SESSION_REVOCATION=off`) nothing remembers which refresh token
/// a session used last, so one works again and again until it expires (a stolen one too): RFC
/// 9700's reuse detection needs the server-side state.
#[tokio::test]
async fn without_revocation_a_refresh_token_works_again_and_again() {
    let mut cfg = config(&[]);
    cfg.revocation = false;
    let lab = spawn_lab_with(cfg).await;
    let c = Client::new(lab.url());
    let login = c
        .post("/api/register", json!({"username": username("reuse"), "password": "long-enough-pw", "token": true}))
        .await;
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let reply = Client::new(lab.url()).post("/api/token/refresh", json!({"refresh_token": refresh})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert!(reply.body["token"].is_string(), "{}", reply.text);
    }
    lab.shutdown().await;
}

#[tokio::test]
async fn a_browser_stays_logged_in_with_its_cart_after_the_access_token_expires() {
    let lab = spawn_lab_with(config(&[("JWT_ACCESS_TTL_SECS", "2")])).await;
    let c = Client::new(lab.url());
    c.register_and_login(&username("expiry")).await;
    c.add(5, 2).await;
    let (token, refresh) = (c.session_cookie().unwrap(), c.cookie("sl_refresh").expect("a refresh cookie"));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(me_with(&c, &token).await, StatusCode::UNAUTHORIZED, "the access token expired");

    let me = c.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "the refresh cookie did not restore the session: {}", me.text);
    assert_eq!(c.cart().await.1, vec![(5, 2)], "the cart came over from the expired token");
    assert_ne!(c.session_cookie().unwrap(), token);
    assert_ne!(c.cookie("sl_refresh").unwrap(), refresh, "the refresh token rotated");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_bearer_client_gets_each_new_token_in_a_header() {
    let lab = spawn_lab_with(config(&[])).await;
    let c = Client::new(lab.url());
    let login = c
        .post("/api/register", json!({"username": username("bearer"), "password": "long-enough-pw", "token": true}))
        .await;
    let token = login.body["token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = http
        .post(format!("{}/api/cart/items", lab.url()))
        .bearer_auth(&token)
        .json(&json!({"product_id": 3, "qty": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let next = res.headers()["x-session-token"].to_str().unwrap().to_owned();
    let cart: Value =
        http.get(format!("{}/api/cart", lab.url())).bearer_auth(&next).send().await.unwrap().json().await.unwrap();
    assert_eq!(cart["items"][0]["product_id"], 3);
    lab.shutdown().await;
}
