//! The JSON API: a stable contract for tests, benchmarks and outside tools (see docs/api.md).
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{cart_ops, devices, inspect::inspect};
use crate::{
    catalog::Catalog,
    db::Db,
    error::AppError,
    session::{
        Session,
        idempotency::{self, IdempotencyKey, KeyError},
        middleware::carries_credential,
    },
    startup::AppInfo,
    throttle::Throttle,
    users,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::post().to(register))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/token/refresh", web::post().to(refresh))
        .route("/me", web::get().to(me))
        .route("/products", web::get().to(products))
        .route("/cart", web::get().to(cart))
        .route("/cart/items", web::post().to(add_item))
        .route("/cart/items/{product_id}", web::delete().to(remove_item))
        .route("/session", web::get().to(session_info))
        .route("/sessions", web::get().to(list_sessions))
        .route("/sessions/others", web::delete().to(revoke_other_sessions))
        .route("/sessions/{id}", web::delete().to(revoke_session))
        .route("/password", web::post().to(change_password));
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    /// Also return the session credential (and a refresh token, where the strategy has them)
    /// in the body, for clients that send `Authorization: Bearer` instead of cookies.
    #[serde(default)]
    token: bool,
}

/// `{"user"}`, plus `token` and `refresh_token` when the client asked for them.
fn logged_in(session: &Session, name: &str, with_token: bool) -> serde_json::Value {
    let mut body = json!({ "user": name });
    if with_token {
        body["token"] = json!(session.credential());
        if let Some(refresh) = session.issued_refresh_token() {
            body["refresh_token"] = json!(refresh);
        }
    }
    body
}

async fn register(
    req: actix_web::HttpRequest,
    db: web::Data<Db>,
    throttle: web::Data<Throttle>,
    session: Session,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, AppError> {
    let user = users::register(&db, &throttle, &body.username, &body.password, &super::client_ip(&req)).await?;
    let name = user.username.clone();
    session.renew::<AppError>(|data| data.user = Some(user)).await?;
    Ok(HttpResponse::Created().json(logged_in(&session, &name, body.token)))
}

async fn login(
    req: actix_web::HttpRequest,
    db: web::Data<Db>,
    throttle: web::Data<Throttle>,
    session: Session,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, AppError> {
    let user = users::log_in(&db, &throttle, &body.username, &body.password, &super::client_ip(&req)).await?;
    let name = user.username.clone();
    session.renew::<AppError>(|data| data.user = Some(user)).await?;
    Ok(HttpResponse::Ok().json(logged_in(&session, &name, body.token)))
}

async fn logout(session: Session) -> Result<HttpResponse, AppError> {
    session.purge().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

/// Trades a refresh token (rotated on every use) for a new credential. The expired credential,
/// sent as a bearer or cookie, lets the state it carried come along.
async fn refresh(
    req: actix_web::HttpRequest,
    session: Session,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, AppError> {
    if let (false, backend) = session.issues_refresh_tokens() {
        return Err(AppError::NoRefreshTokens(backend.to_string()));
    }
    let previous = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| req.cookie(crate::cookies::CookieNames::of(&req).session).map(|c| c.value().to_owned()));
    if !session.exchange_refresh(&body.refresh_token, previous.as_deref()).await? {
        return Err(AppError::InvalidRefreshToken);
    }
    Ok(HttpResponse::Ok().json(json!({
        "token": session.credential(),
        "refresh_token": session.issued_refresh_token(),
    })))
}

async fn me(session: Session, info: web::Data<AppInfo>) -> Result<HttpResponse, AppError> {
    let user = session.read(|data| data.user.as_ref().map(|u| u.username.clone())).ok_or(AppError::NotLoggedIn)?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "replica": info.replica, "backend": info.backend.as_str() })))
}

async fn products(catalog: web::Data<Catalog>) -> HttpResponse {
    HttpResponse::Ok().json(catalog.all().collect::<Vec<_>>())
}

async fn cart(session: Session) -> HttpResponse {
    HttpResponse::Ok().json(cart_ops::view(&session))
}

#[derive(Deserialize)]
struct AddItem {
    product_id: i64,
    qty: i64,
}

async fn add_item(
    req: actix_web::HttpRequest,
    session: Session,
    catalog: web::Data<Catalog>,
    body: web::Json<AddItem>,
) -> Result<HttpResponse, AppError> {
    let key = idempotency_key(&req)?;
    Ok(answer(cart_ops::add(&session, &catalog, body.product_id, body.qty, key.as_ref()).await?))
}

async fn remove_item(
    req: actix_web::HttpRequest,
    session: Session,
    catalog: web::Data<Catalog>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let key = idempotency_key(&req)?;
    Ok(answer(cart_ops::remove(&session, &catalog, path.into_inner(), key.as_ref()).await?))
}

/// The request's `Idempotency-Key`, if it sent one; a malformed one is a 400.
fn idempotency_key(req: &actix_web::HttpRequest) -> Result<Option<IdempotencyKey>, AppError> {
    let Some(value) = req.headers().get(idempotency::HEADER) else { return Ok(None) };
    let value = value.to_str().map_err(|_| KeyError::Malformed)?;
    Ok(Some(IdempotencyKey::parse(value)?))
}

/// The cart after a change; a replayed answer says so.
fn answer(answer: cart_ops::Answer) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    if answer.replayed {
        res.insert_header((REPLAYED_HEADER, "true"));
    }
    res.json(answer.cart)
}

/// Marks the recorded answer to an earlier request with the same `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

async fn session_info(
    req: actix_web::HttpRequest,
    session: Session,
    info: web::Data<AppInfo>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(inspect(&session, &info, carries_credential(&req)).await?))
}

async fn list_sessions(session: Session) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(json!({ "sessions": devices::list(&session).await? })))
}

async fn revoke_session(session: Session, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    devices::revoke(&session, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn revoke_other_sessions(session: Session) -> Result<HttpResponse, AppError> {
    let revoked = devices::revoke_others(&session).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// 200 with how many other sessions ended; the session's credential changes (a new cookie, or
/// `X-Session-Token` for a bearer client).
async fn change_password(
    req: actix_web::HttpRequest,
    db: web::Data<Db>,
    throttle: web::Data<Throttle>,
    session: Session,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    let ip = super::client_ip(&req);
    let ended =
        devices::change_password(&session, &db, &throttle, &ip, &body.current_password, &body.new_password).await?;
    let mut body = json!({ "other_sessions_ended": ended });
    if let Some(refresh) = session.issued_refresh_token() {
        body["refresh_token"] = json!(refresh);
    }
    Ok(HttpResponse::Ok().json(body))
}
