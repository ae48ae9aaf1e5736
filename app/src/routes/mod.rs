//! HTTP routes. Handlers use [`crate::session::Session`] and never name a backend.
mod access_log;
mod api;
mod assets;
mod cart_ops;
mod csrf;
mod devices;
mod error_pages;
mod health;
mod inspect;
pub mod lab;
mod pages;

pub use csrf::CsrfKey;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::{JsonPayloadError, UrlencodedError},
    http::{Method, header},
    middleware::{DefaultHeaders, Next, from_fn},
    web,
};

pub use access_log::AccessLog;
pub use error_pages::render_html_errors;

use crate::{
    error::AppError,
    session::{Layer, actix_stock, middleware::load_and_persist},
};

/// The client's address: the peer's, or, when the peer is a trusted proxy (`TRUSTED_PROXIES`:
/// our HAProxy, with `option forwardfor`), the address it appended to `X-Forwarded-For`.
pub fn client_ip(req: &actix_web::HttpRequest) -> String {
    let Some(peer) = req.peer_addr() else { return "unknown".into() };
    let Some(info) = req.app_data::<web::Data<crate::startup::AppInfo>>() else { return peer.ip().to_string() };
    let forwarded_for: Vec<&str> =
        req.headers().get_all("x-forwarded-for").filter_map(|value| value.to_str().ok()).collect();
    info.trusted_proxies.client(peer.ip(), &forwarded_for).to_string()
}

/// JSON bodies of the API are small; anything larger is refused before it is parsed.
pub const JSON_BODY_LIMIT: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig, layer: &Layer) {
    cfg.app_data(json_config())
        .app_data(form_config())
        .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(crate::metrics::endpoint))
        .route("/static/{file:.*}", web::get().to(assets::serve));
    let api = || web::scope("/api").configure(api::configure);
    let site = || web::scope("").configure(lab::configure).configure(pages::configure);
    // The session middleware wraps the API and the site; which one is the strategy's business.
    // (Middleware types differ, hence one arm each.) In actix, the last `wrap` runs first.
    match layer {
        Layer::Own(_) => {
            cfg.service(api().wrap(from_fn(load_and_persist)).wrap(from_fn(json_only)));
            cfg.service(site().wrap(from_fn(csrf::ensure_token)).wrap(from_fn(load_and_persist)));
        }
        Layer::Stock(stack) => match &stack.store {
            actix_stock::Store::Redis { sessions, .. } => {
                let sessions = || stack.sessions(sessions.clone());
                cfg.service(api().wrap(stack.identity()).wrap(sessions()).wrap(from_fn(json_only)));
                cfg.service(site().wrap(from_fn(csrf::ensure_token)).wrap(stack.identity()).wrap(sessions()));
            }
            actix_stock::Store::Cookie => {
                let sessions = || stack.cookie_sessions();
                cfg.service(api().wrap(stack.identity()).wrap(sessions()).wrap(from_fn(json_only)));
                cfg.service(site().wrap(from_fn(csrf::ensure_token)).wrap(stack.identity()).wrap(sessions()));
            }
        },
    }
    cfg.default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(AppError::NotFound) }));
}

/// Headers on every response: who served it, and what a browser may do with a page. The CSP
/// allows no inline script or style at all; the one script (the /lab dashboard's poller) is a
/// file of this site.
pub fn security_headers(replica: &str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Replica", replica.to_owned()))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        // Pages and API answers carry the user, the cart or a token: no cache, shared or private,
        // may keep them. Static assets set their own, public, policy (a default never overrides).
        .add((header::CACHE_CONTROL, "no-store"))
}

/// An API `POST` must say `Content-Type: application/json` — a cross-site HTML form cannot, and
/// forms can only GET or POST — unless it carries a bearer credential, which browsers never
/// attach on their own. With SameSite cookies, this is the API's CSRF protection.
async fn json_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let form_capable = *req.method() == Method::POST;
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if form_capable && !is_json && !bearer {
        return Err(AppError::UnsupportedMediaType("API POSTs must send Content-Type: application/json".into()).into());
    }
    next.call(req).await
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(JSON_BODY_LIMIT).error_handler(|err, _| {
        let app = match &err {
            JsonPayloadError::ContentType => {
                AppError::UnsupportedMediaType("send the body as JSON with Content-Type: application/json".into())
            }
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                AppError::BodyTooLarge(JSON_BODY_LIMIT)
            }
            JsonPayloadError::Deserialize(e) if e.is_data() => AppError::invalid("invalid_body", e.to_string()),
            other => AppError::BadRequest(format!("the body is not valid JSON: {other}")),
        };
        app.into()
    })
}

fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(JSON_BODY_LIMIT).error_handler(|err, _| {
        match err {
            UrlencodedError::Overflow { .. } => AppError::BodyTooLarge(JSON_BODY_LIMIT),
            // The field's own words (`shop::quantity`), without actix's "Parse error:" before them.
            UrlencodedError::Parse(err) => AppError::BadRequest(format!("the form could not be read: {err}")),
            other => AppError::BadRequest(format!("the form could not be read: {other}")),
        }
        .into()
    })
}
