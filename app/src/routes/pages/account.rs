use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, html, see_other};
use crate::{
    db::Db,
    error::AppError,
    routes::csrf::CsrfToken,
    session::{Session, middleware::carries_credential},
    startup::AppInfo,
    throttle::Throttle,
    users,
};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    /// "login" or "register".
    mode: &'static str,
    username: String,
    error: Option<String>,
    /// Why a browser that still sends a session credential is logged out.
    ended: Option<String>,
}

#[derive(Deserialize)]
pub struct AccountForm {
    csrf: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

impl CsrfForm {
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The log-in form. A browser that still sends a session credential this replica finds no
/// session for (logged out from another device, timed out, lost with a replica) is told so,
/// in the strategy's words, instead of landing here without a word.
pub async fn login_form(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let ended = (carries_credential(&req) && !session.exists()).then(|| {
        format!(
            "You are logged out: {} finds no valid session for this browser. {}",
            info.replica,
            info.backend.outcomes().not_found
        )
    });
    let page = AccountPage {
        layout: Layout::new(&info, &session, &csrf),
        mode: "login",
        username: String::new(),
        error: None,
        ended,
    };
    html(StatusCode::OK, &page)
}

pub async fn register_form(
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    form_page(&info, &session, &csrf, "register", String::new(), None)
}

pub async fn login(
    req: actix_web::HttpRequest,
    info: web::Data<AppInfo>,
    db: web::Data<Db>,
    throttle: web::Data<Throttle>,
    session: Session,
    csrf: CsrfToken,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    let ip = crate::routes::client_ip(&req);
    let outcome = users::log_in(&db, &throttle, &form.username, &form.password, &ip).await;
    finish(&info, &session, &csrf, "login", &users::typed_username(&form.username), outcome).await
}

pub async fn register(
    req: actix_web::HttpRequest,
    info: web::Data<AppInfo>,
    db: web::Data<Db>,
    throttle: web::Data<Throttle>,
    session: Session,
    csrf: CsrfToken,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    let ip = crate::routes::client_ip(&req);
    let outcome = users::register(&db, &throttle, &form.username, &form.password, &ip).await;
    finish(&info, &session, &csrf, "register", &users::typed_username(&form.username), outcome).await
}

pub async fn logout(session: Session, csrf: CsrfToken, form: web::Form<CsrfForm>) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    session.purge().await?;
    Ok(see_other("/"))
}

/// Logged in: renew the session and go to the catalog. A user mistake: the form again, with the
/// message and the matching status. Anything else (store down): the error page.
async fn finish(
    info: &AppInfo,
    session: &Session,
    csrf: &CsrfToken,
    mode: &'static str,
    username: &str,
    outcome: Result<crate::session::SessionUser, AppError>,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Ok(user) => {
            session.renew::<AppError>(|data| data.user = Some(user)).await?;
            Ok(see_other("/"))
        }
        Err(
            err @ (AppError::Invalid { .. }
            | AppError::WrongCredentials
            | AppError::UsernameTaken(_)
            | AppError::TooManyAttempts { .. }
            | AppError::TooManySignUps { .. }
            | AppError::HashingBusy),
        ) => {
            let status = err.status_code();
            let mut message = err.to_string();
            if matches!(err, AppError::TooManyAttempts { .. })
                && let Some(other) = users::DEMO_USERS.iter().find(|demo| **demo != username)
                && users::DEMO_USERS.contains(&username)
            {
                // In a classroom, one person's typos lock the demo account for everyone.
                message.push_str(&format!(
                    ". {username} is a demo account that everyone using this lab shares, and wrong passwords \
                     from your network count for everyone on it (a classroom is one address): log in as \
                     {other}, or sign up for an account of your own"
                ));
            }
            let mut res = form_page(info, session, csrf, mode, username.to_owned(), Some(message))?;
            *res.status_mut() = status;
            if let Some(seconds) = err.retry_after() {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(seconds));
            }
            Ok(res)
        }
        Err(other) => Err(other),
    }
}

fn form_page(
    info: &AppInfo,
    session: &Session,
    csrf: &CsrfToken,
    mode: &'static str,
    username: String,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    html(StatusCode::OK, &AccountPage { layout: Layout::new(info, session, csrf), mode, username, error, ended: None })
}
