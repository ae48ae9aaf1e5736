//! Loads the session before the handler; sets, keeps or clears the cookie after it.
use std::sync::Arc;

use actix_web::{
    HttpMessage,
    body::{BoxBody, MessageBody},
    cookie::{Cookie, SameSite},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use super::{COOKIE_NAME, Session, SessionStore, handle::CookieChange};
use crate::{error::AppError, startup::AppInfo};

pub async fn load_and_persist(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let store: Arc<dyn SessionStore> = req
        .app_data::<web::Data<dyn SessionStore>>()
        .expect("session store registered as app data")
        .clone()
        .into_inner();
    let secure = req.app_data::<web::Data<AppInfo>>().is_some_and(|info| info.cookie_secure);

    let incoming = req.cookie(COOKIE_NAME).map(|c| c.value().to_owned());
    let loaded = match &incoming {
        Some(value) => match store.load(value).await {
            Ok(loaded) => loaded,
            Err(err) => {
                return Ok(req.error_response(AppError::from(err)).map_into_boxed_body());
            }
        },
        None => None,
    };
    let session = Session::new(store, loaded);
    req.extensions_mut().insert(session.clone());

    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Err(err) = session.refresh_if_due().await {
        // The answer is already made; an expiry refresh that failed only shortens the session.
        tracing::warn!(error = %err, "could not refresh the session's expiry");
    }
    match session.cookie_change() {
        CookieChange::Keep => {}
        CookieChange::Set(value) if incoming.as_deref() == Some(value.as_str()) => {}
        CookieChange::Set(value) => res.response_mut().add_cookie(&session_cookie(value, secure))?,
        CookieChange::Remove => {
            let mut gone = session_cookie(String::new(), secure);
            gone.make_removal();
            res.response_mut().add_cookie(&gone)?;
        }
    }
    Ok(res)
}

/// A browser-session cookie (no Max-Age): the store, not the browser, decides when it expires.
fn session_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, value).path("/").http_only(true).same_site(SameSite::Lax).secure(secure).finish()
}
