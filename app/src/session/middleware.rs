//! Loads the session before the handler; sets, keeps or clears the cookies after it.
//!
//! The credential is the `sl_session` cookie (`__Host-sl_session` behind HTTPS), or
//! `Authorization: Bearer <credential>` for API clients (the header wins). When a request carries
//! no valid session but a refresh token (`sl_refresh`, strategies that have them), the session is restored from it here, so browsers
//! stay logged in past an access token's short life.
use std::sync::Arc;

use actix_web::{
    HttpMessage,
    body::{BoxBody, MessageBody},
    cookie::{Cookie, SameSite},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{AUTHORIZATION, HeaderValue, USER_AGENT},
    middleware::Next,
    web,
};

use super::{
    Session, SessionStore, StoreError,
    device::Client,
    handle::{Context, CookieChange, Own},
};
use crate::{cookies::CookieNames, error::AppError, startup::AppInfo};

/// Response header carrying a re-issued credential to a client that authenticated with a bearer.
pub const TOKEN_HEADER: &str = "X-Session-Token";

pub async fn load_and_persist(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let store: Arc<dyn SessionStore> = req
        .app_data::<web::Data<dyn SessionStore>>()
        .expect("session store registered as app data")
        .clone()
        .into_inner();
    let info = req.app_data::<web::Data<AppInfo>>();
    let secure = info.is_some_and(|info| info.cookie_secure);
    let names = CookieNames::new(secure);
    let absolute = info.map_or(std::time::Duration::MAX, |info| info.absolute_timeout);
    let user_agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok());
    let client = Client::new(
        user_agent,
        crate::routes::client_ip(req.request()),
        info.map(|info| info.replica.clone()).unwrap_or_default(),
    );
    let cx = Context { store, client, idle: info.map_or(std::time::Duration::MAX, |info| info.idle_timeout) };

    let bearer = bearer(&req);
    let incoming = bearer.clone().or_else(|| req.cookie(names.session).map(|c| c.value().to_owned()));
    let refresh_cookie = req.cookie(names.refresh).map(|c| c.value().to_owned());
    let session = match restore(cx.clone(), incoming.as_deref(), refresh_cookie.as_deref(), absolute).await {
        Ok(session) => session,
        Err(StoreError::Unavailable(err)) if works_without_the_store(&req) => {
            tracing::warn!(error = %err, "session store unavailable: serving the page without the session");
            Own::unreadable(cx)
        }
        Err(err) => return Ok(req.error_response(AppError::from(err)).map_into_boxed_body()),
    };
    req.extensions_mut().insert(Session::from(session.clone()));

    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Err(err) = session.refresh_if_due().await {
        // The answer is already made; an expiry refresh that failed only shortens the session.
        tracing::warn!(error = %err, "could not refresh the session's expiry");
    }
    match session.cookie_change() {
        CookieChange::Keep => {}
        CookieChange::Set(value) if incoming.as_deref() == Some(value.as_str()) => {}
        CookieChange::Set(value) => {
            if bearer.is_some()
                && let Ok(header) = HeaderValue::from_str(&value)
            {
                res.response_mut().headers_mut().insert(TOKEN_HEADER.try_into().expect("valid name"), header);
            }
            res.response_mut().add_cookie(&cookie(names.session, value, SameSite::Lax, secure))?;
        }
        CookieChange::Remove => res.response_mut().add_cookie(&removal(names.session, secure))?,
    }
    match session.refresh_change() {
        CookieChange::Keep => {}
        CookieChange::Set(value) => {
            res.response_mut().add_cookie(&cookie(names.refresh, value, SameSite::Strict, secure))?
        }
        CookieChange::Remove if refresh_cookie.is_some() => {
            res.response_mut().add_cookie(&removal(names.refresh, secure))?
        }
        CookieChange::Remove => {}
    }
    Ok(res)
}

/// Pages that must stay up when the session store is down, because they are where a person goes
/// to understand the outage: the dashboard (and what its script polls) and the strategy docs.
/// They draw the session as unknown instead of answering 503.
fn works_without_the_store(req: &ServiceRequest) -> bool {
    let path = req.path();
    req.method() == actix_web::http::Method::GET
        && (path == "/lab" || path == "/lab/state" || path.starts_with("/docs/"))
}

/// The session the request carries, or the one its refresh token restores. A session past its
/// absolute lifetime is ended here, for every strategy alike.
async fn restore(
    cx: Context,
    incoming: Option<&str>,
    refresh: Option<&str>,
    absolute: std::time::Duration,
) -> Result<Own, StoreError> {
    let store = cx.store.clone();
    let mut loaded = match incoming {
        Some(value) => store.load(value).await?,
        None => None,
    };
    if let Some(old) = loaded.take_if(|l| l.data.outlived(absolute)) {
        store.end(&old.id, &old.data).await?;
        return Ok(Own::ended(cx));
    }
    match (refresh, store.refresh_tokens().filter(|_| loaded.is_none())) {
        (Some(refresh), Some(tokens)) => match tokens.refresh(refresh, incoming).await? {
            Some(refreshed) if refreshed.loaded.data.outlived(absolute) => {
                store.end(&refreshed.loaded.id, &refreshed.loaded.data).await?;
                Ok(Own::ended(cx))
            }
            Some(refreshed) => Ok(Own::refreshed(cx, refreshed)),
            None => {
                let session = Own::new(cx, None, None);
                session.drop_refresh_cookie();
                Ok(session)
            }
        },
        _ => Ok(Own::new(cx, loaded, incoming.map(str::to_owned))),
    }
}

/// Whether the request carries a session credential at all, whether or not it opened a session:
/// pages use it to tell "you have no session" from "your session was not found here".
pub fn carries_credential(req: &actix_web::HttpRequest) -> bool {
    req.cookie(CookieNames::of(req).session).is_some_and(|c| !c.value().is_empty())
        || req.headers().contains_key(AUTHORIZATION)
}

fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A browser-session cookie (no Max-Age): the store, not the browser, decides when it expires.
fn cookie(name: &'static str, value: String, same_site: SameSite, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value).path("/").http_only(true).same_site(same_site).secure(secure).finish()
}

fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut gone = cookie(name, String::new(), SameSite::Lax, secure);
    gone.make_removal();
    gone
}
