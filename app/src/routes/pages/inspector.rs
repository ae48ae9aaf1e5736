use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::{Layout, html};
use crate::{
    error::AppError,
    routes::{
        csrf::CsrfToken,
        inspect::{Inspection, inspect},
    },
    session::{Session, middleware::carries_credential},
    startup::AppInfo,
};

#[derive(Template)]
#[template(path = "session.html")]
struct SessionPage {
    layout: Layout,
    about: Inspection,
    /// The decoded credential (a JWT's header and claims), pretty-printed.
    token: Option<String>,
}

pub async fn page(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let about = inspect(&session, &info, carries_credential(&req)).await?;
    let token = about.token.as_ref().and_then(|t| serde_json::to_string_pretty(t).ok());
    html(StatusCode::OK, &SessionPage { layout: Layout::new(&info, &session, &csrf), about, token })
}
