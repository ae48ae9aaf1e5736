//! HTTP routes. Handlers use [`crate::session::Session`] and never name a backend.
mod access_log;
mod api;
mod assets;
mod cart_ops;
mod csrf;
mod error_pages;
mod health;
mod inspect;
mod pages;

use actix_web::{
    error::{JsonPayloadError, UrlencodedError},
    middleware::from_fn,
    web,
};

pub use access_log::AccessLog;
pub use error_pages::render_html_errors;

use crate::{error::AppError, session::middleware::load_and_persist};

/// JSON bodies of the API are small; anything larger is refused before it is parsed.
pub const JSON_BODY_LIMIT: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(form_config())
        .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/{file:.*}", web::get().to(assets::serve))
        .service(web::scope("/api").wrap(from_fn(load_and_persist)).configure(api::configure))
        .service(
            web::scope("")
                .wrap(from_fn(csrf::ensure_token))
                .wrap(from_fn(load_and_persist))
                .configure(pages::configure),
        )
        .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(AppError::NotFound) }));
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
            other => AppError::BadRequest(format!("the form could not be read: {other}")),
        }
        .into()
    })
}
