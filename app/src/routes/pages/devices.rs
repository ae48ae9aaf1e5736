//! `/devices`: the user's sessions, with a log-out button for each, "log out everywhere else",
//! and the password change (which ends every other session too).
use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, html, see_other};
use crate::{
    db::Db,
    error::AppError,
    routes::{
        csrf::CsrfToken,
        devices::{self, DeviceView},
    },
    session::Session,
    startup::AppInfo,
    throttle::Throttle,
};

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    layout: Layout,
    devices: Vec<DeviceView>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Notice {
    ended: Option<usize>,
    password: Option<String>,
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    id: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

pub async fn page(
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
    query: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    if !session.read(|d| d.user.is_some()) {
        return Ok(see_other("/login"));
    }
    let notice = match (query.ended, query.password.is_some()) {
        (Some(n), true) => Some(format!("Password changed. {} ended; this one has a new session ID.", sessions(n))),
        (Some(n), false) => Some(format!("{} ended. The next request with any of them is logged out.", sessions(n))),
        _ => None,
    };
    render(&info, &session, &csrf, StatusCode::OK, notice, None).await
}

pub async fn revoke(session: Session, csrf: CsrfToken, form: web::Form<RevokeForm>) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    let current = session.key().as_deref() == Some(form.id.as_str());
    devices::revoke(&session, &form.id).await?;
    Ok(see_other(if current { "/" } else { "/devices?ended=1" }))
}

pub async fn revoke_others(
    session: Session,
    csrf: CsrfToken,
    form: web::Form<super::account::CsrfForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(form.csrf())?;
    let ended = devices::revoke_others(&session).await?;
    Ok(see_other(&format!("/devices?ended={ended}")))
}

pub async fn change_password(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    db: web::Data<Db>,
    throttle: web::Data<Throttle>,
    session: Session,
    csrf: CsrfToken,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    let ip = crate::routes::client_ip(&req);
    match devices::change_password(&session, &db, &throttle, &ip, &form.current_password, &form.new_password).await {
        Ok(ended) => Ok(see_other(&format!("/devices?ended={ended}&password=changed"))),
        Err(err @ (AppError::Invalid { .. } | AppError::TooManyAttempts { .. })) => {
            render(&info, &session, &csrf, err.status_code(), None, Some(err.to_string())).await
        }
        Err(other) => Err(other),
    }
}

async fn render(
    info: &AppInfo,
    session: &Session,
    csrf: &CsrfToken,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let devices = devices::list(session).await?;
    html(status, &DevicesPage { layout: Layout::new(info, session, csrf), devices, notice, error })
}

fn sessions(n: usize) -> String {
    if n == 1 { "1 other session".into() } else { format!("{n} other sessions") }
}
