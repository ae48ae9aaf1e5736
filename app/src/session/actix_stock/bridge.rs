//! What sessionlab's [`crate::session::Session`] handle needs from the stock stack besides the
//! lesson's calls: whether a session exists, what the inspector may show, the names of things.
//! Machinery, kept out of the lesson; it reads the stock state and never changes how it is kept.
use actix_session::SessionExt;
use actix_web::{HttpRequest, web};
use sha2::{Digest, Sha256};

pub use super::{login, logout, read, renew, write};
use crate::{
    cookies::CookieNames,
    session::{Backend, SessionInfo, StoreError},
    startup::AppInfo,
};

fn app(req: &HttpRequest) -> Option<web::Data<AppInfo>> {
    req.app_data::<web::Data<AppInfo>>().cloned()
}

pub fn backend(req: &HttpRequest) -> Backend {
    app(req).map_or(Backend::ActixRedis, |info| info.backend)
}

/// A session exists once the client holds its cookie or this request put something in it.
pub fn exists(req: &HttpRequest) -> bool {
    let session = req.get_session();
    !session.entries().is_empty() || req.cookie(CookieNames::of(req).session).is_some()
}

/// "Your devices" needs an index of each user's sessions; actix-session keeps none.
pub fn no_index(req: &HttpRequest) -> StoreError {
    StoreError::Unsupported(format!(
        "{} is the stock actix-session stack: it keeps no list of a user's sessions, so it cannot show or end them",
        backend(req)
    ))
}

/// What the inspector shows. actix-session never tells the app its session key, so the
/// fingerprint is of the (encrypted) cookie, and the size is that of the session map as stored.
pub fn info(req: &HttpRequest) -> Option<SessionInfo> {
    if !exists(req) {
        return None;
    }
    let backend = backend(req);
    let name = CookieNames::of(req).session;
    let cookie = req.cookie(name).map(|c| c.value().to_owned()).unwrap_or_default();
    let state_bytes = serde_json::to_vec(&*req.get_session().entries()).map_or(0, |json| json.len());
    let location = match backend {
        Backend::ActixCookie => format!("in your browser's {name} cookie, encrypted by actix-session"),
        _ => "a Redis key named by the session key your cookie carries, encrypted (actix-session does not show it to the app)".to_owned(),
    };
    Some(SessionInfo {
        backend,
        fingerprint: hex::encode(&Sha256::digest(cookie.as_bytes())[..6]),
        location,
        state_bytes,
        ttl_seconds: app(req).map_or(0, |info| info.idle_timeout.as_secs()),
        token: None,
    })
}
