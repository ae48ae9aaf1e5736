use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{db::Db, session::Layer};

/// The process runs. HAProxy's fallback check (backend `alive`): it must not depend on the store,
/// so that while no replica is ready, the ones that run still show the app's 503 pages.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Less than HAProxy's `timeout check` (2 s), so that a store that went quiet gets this replica's
/// own 503 rather than a timed-out check.
const READY_WITHIN: Duration = Duration::from_millis(1500);

/// The session store and the database answer: HAProxy's rotation check (backend `replicas`).
pub async fn readyz(store: web::Data<Layer>, db: web::Data<Db>) -> HttpResponse {
    let store_ping = tokio::time::timeout(READY_WITHIN, store.ping());
    let db_ping = tokio::time::timeout(READY_WITHIN, db.run(|conn| Ok(crate::db::queries::ping(conn)?)));
    let (store_ok, db_ok) = tokio::join!(store_ping, db_ping);
    let (store_ok, db_ok) = (store_ok.is_ok_and(|r| r.is_ok()), db_ok.is_ok_and(|r| r.is_ok()));
    let body = json!({
        "session_store": if store_ok { "ok" } else { "unavailable" },
        "database": if db_ok { "ok" } else { "unavailable" },
    });
    if store_ok && db_ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}
