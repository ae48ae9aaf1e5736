//! HTML pages: one askama template struct per page, forms that post and redirect (303).
mod account;
mod devices;
mod diagram;
mod docs;
mod inspector;
mod shop;

use actix_web::{HttpResponse, http::StatusCode, http::header, web};
use askama::Template;

use super::csrf::CsrfToken;
use crate::{error::AppError, session::Session, startup::AppInfo};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(shop::catalog))
        .route("/cart", web::get().to(shop::cart))
        .route("/cart/add", web::post().to(shop::add))
        .route("/cart/update", web::post().to(shop::update))
        .route("/cart/remove", web::post().to(shop::remove))
        .route("/login", web::get().to(account::login_form))
        .route("/login", web::post().to(account::login))
        .route("/register", web::get().to(account::register_form))
        .route("/register", web::post().to(account::register))
        .route("/logout", web::post().to(account::logout))
        .route("/session", web::get().to(inspector::page))
        .route("/docs/{strategy}", web::get().to(docs::page))
        .route("/devices", web::get().to(devices::page))
        .route("/devices/revoke", web::post().to(devices::revoke))
        .route("/devices/revoke-others", web::post().to(devices::revoke_others))
        .route("/account/password", web::post().to(devices::change_password));
}

/// What the frame of every page shows: who is logged in, the cart badge, and who served it.
pub struct Layout {
    pub replica: String,
    pub backend: String,
    pub user: Option<String>,
    pub cart_count: u32,
    pub csrf: String,
    /// The request carried a session this replica could not read (its store did not answer):
    /// the frame says so instead of drawing a guest.
    pub session_unknown: bool,
}

impl Layout {
    pub fn new(info: &AppInfo, session: &Session, csrf: &CsrfToken) -> Self {
        let (user, cart_count) = session.read(|d| (d.user.as_ref().map(|u| u.username.clone()), d.cart.count()));
        Self {
            replica: info.replica.clone(),
            backend: info.backend.to_string(),
            user,
            cart_count,
            csrf: csrf.value().to_owned(),
            session_unknown: session.unknown(),
        }
    }

    /// A new `Idempotency-Key` for one form of the page.
    pub fn fresh_key(&self) -> String {
        crate::session::idempotency::IdempotencyKey::generate().as_str().to_owned()
    }

    /// For an error page: the session the request really had, as every other page draws it. When
    /// the session middleware did not get as far as loading it (the store is down), a request
    /// that carried a session credential is shown as unknown, never as a guest.
    pub fn of_error(req: &actix_web::HttpRequest) -> Self {
        let info = req.app_data::<web::Data<AppInfo>>().map(|d| d.get_ref());
        let csrf = CsrfToken::of(req);
        match (info, Session::of(req), csrf) {
            (Some(info), Some(session), Some(csrf)) => Self::new(info, &session, &csrf),
            _ => Self {
                replica: info.map_or_else(|| "?".into(), |i| i.replica.clone()),
                backend: info.map_or_else(|| "?".into(), |i| i.backend.to_string()),
                user: None,
                cart_count: 0,
                csrf: String::new(),
                session_unknown: crate::session::middleware::carries_credential(req),
            },
        }
    }
}

/// Renders `page` with `status`; a template error is a 500, never a panic.
pub fn html(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page.render().map_err(|e| anyhow::anyhow!("template failed: {e}"))?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// "$1.29" from 129.
pub fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}
