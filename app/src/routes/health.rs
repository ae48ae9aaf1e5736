use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{db::Db, session::Layer};

/// The process runs. HAProxy's health check: it must not depend on the store, or a store outage
/// would take every replica out of rotation and hide the 503 pages the lab wants to show.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The session store and the database answer.
pub async fn readyz(store: web::Data<Layer>, db: web::Data<Db>) -> HttpResponse {
    let store_ok = store.ping().await.is_ok();
    let db_ok = db.run(|conn| Ok(crate::db::queries::ping(conn)?)).await.is_ok();
    let body = json!({
        "session_store": if store_ok { "ok" } else { "unavailable" },
        "database": if db_ok { "ok" } else { "unavailable" },
    });
    if store_ok && db_ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}
