//! Static files compiled into the binary: the lab works offline and the image needs no asset path.
use actix_web::{HttpResponse, http::header, web};

use crate::error::AppError;

const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../../static/app.css")),
    (
        "vendor/pico-2.1.1.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/vendor/pico-2.1.1.min.css"),
    ),
    ("favicon.svg", "image/svg+xml", include_bytes!("../../../static/favicon.svg")),
    ("lab.js", "text/javascript; charset=utf-8", include_bytes!("../../../static/lab.js")),
    // `make compare`'s charts, for the strategy pages at /docs/<strategy>.
    ("charts/cookie-size.svg", "image/svg+xml", include_bytes!("../../../docs/img/cookie-size.svg")),
    ("charts/latency.svg", "image/svg+xml", include_bytes!("../../../docs/img/latency.svg")),
    ("charts/ops-per-request.svg", "image/svg+xml", include_bytes!("../../../docs/img/ops-per-request.svg")),
    ("charts/survival.svg", "image/svg+xml", include_bytes!("../../../docs/img/survival.svg")),
];

/// Whether `docs/img/<name>` is one of the charts served under `/static/charts/`.
pub fn is_chart(name: &str) -> bool {
    ASSETS.iter().any(|(path, ..)| path.strip_prefix("charts/") == Some(name))
}

pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, body) = ASSETS.iter().find(|(name, ..)| *name == path.as_str()).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(*body))
}
