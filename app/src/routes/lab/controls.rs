//! The dashboard's buttons. Each checks the admin token and the form's CSRF token first.
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    web,
};
use serde::Deserialize;

use super::{LabControls, token_matches};
use crate::{
    error::AppError,
    haproxy_admin::Admin,
    routes::{csrf::CsrfToken, pages::see_other},
    startup::AppInfo,
    throttle::Throttle,
};

/// How long a killed replica lives on after answering, so that its answer leaves the socket.
const LAST_WORDS: Duration = Duration::from_millis(100);

/// Set once this process has been told to die. The browser follows Kill's redirect within those
/// last words, often to this very replica (with `sticky`, always): the page it gets must not pass
/// for what the kill did.
static DYING: AtomicBool = AtomicBool::new(false);

/// Whether this replica is a killed one, answering on its way down.
pub fn dying() -> bool {
    DYING.load(Ordering::Relaxed)
}

#[derive(Deserialize)]
pub struct ControlForm {
    csrf: String,
}

impl ControlForm {
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Deserialize)]
pub struct UnlockForm {
    csrf: String,
    token: String,
}

/// Checks the admin token once and keeps it in an HttpOnly cookie scoped to /lab.
pub async fn unlock(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    controls: web::Data<LabControls>,
    throttle: web::Data<Throttle>,
    csrf: CsrfToken,
    form: web::Form<UnlockForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    let Some(token) = &controls.admin_token else { return Err(AppError::LabControlsOff) };
    let ip = crate::routes::client_ip(&req);
    if !throttle.admin_token(&ip, || token_matches(token, form.token.trim())).await? {
        // Back to the dashboard, whose form says where the token is: a mistyped token is
        // something to try again, not a dead end.
        return Ok(see_other("/lab?wrong_token=1"));
    }
    let cookie = Cookie::build(crate::cookies::CookieNames::new(info.cookie_secure).admin, super::admin_proof(token))
        .path("/lab")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(info.cookie_secure)
        .finish();
    let mut res = see_other("/lab");
    res.add_cookie(&cookie).map_err(anyhow::Error::from)?;
    Ok(res)
}

/// Crashes this replica, if it is the one the button names: HAProxy routes the button's path to
/// that replica, and only sends it elsewhere when it is down already.
pub async fn kill(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    controls: web::Data<LabControls>,
    csrf: CsrfToken,
    path: web::Path<String>,
    form: web::Form<ControlForm>,
) -> Result<HttpResponse, AppError> {
    controls.require_admin(&req)?;
    csrf.verify(&form.csrf)?;
    let id = path.into_inner();
    if id != info.replica {
        return Err(AppError::LabControlFailed(format!(
            "{id} is not up, so HAProxy sent this to {} instead; there is nothing to kill",
            info.replica
        )));
    }
    tracing::warn!(replica = %info.replica, "killed from the /lab dashboard: exiting as if it crashed");
    DYING.store(true, Ordering::Relaxed);
    tokio::spawn(async {
        tokio::time::sleep(LAST_WORDS).await;
        // SIGKILL to ourselves: no destructors, no graceful shutdown — exactly `kill -9`.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    });
    Ok(see_other(&format!("/lab?killed={id}")))
}

/// Drain, Ready or Remove: HAProxy's `set server` for the replica the path names.
pub async fn set_state(
    req: HttpRequest,
    controls: web::Data<LabControls>,
    csrf: CsrfToken,
    path: web::Path<(String, Admin)>,
    form: web::Form<ControlForm>,
) -> Result<HttpResponse, AppError> {
    let (id, admin) = path.into_inner();
    controls.require_admin(&req)?;
    csrf.verify(&form.csrf)?;
    let haproxy = controls
        .haproxy
        .as_ref()
        .ok_or_else(|| AppError::LabControlFailed("HAPROXY_ADMIN_ADDR is not set: cannot reach HAProxy".into()))?;
    haproxy.set(&id, admin).await.map_err(|err| AppError::LabControlFailed(format!("{err:#}")))?;
    let notice = match admin {
        Admin::Drain => "drained",
        Admin::Ready => "readied",
        Admin::Remove => "removed",
    };
    Ok(see_other(&format!("/lab?{notice}={id}")))
}
