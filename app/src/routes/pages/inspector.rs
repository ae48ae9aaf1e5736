use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;

use super::{Layout, html};
use crate::{
    error::AppError,
    routes::{
        csrf::CsrfToken,
        inspect::{Inspection, inspect},
    },
    session::Session,
    startup::AppInfo,
};

#[derive(Template)]
#[template(path = "session.html")]
struct SessionPage {
    layout: Layout,
    about: Inspection,
}

pub async fn page(info: web::Data<AppInfo>, session: Session, csrf: CsrfToken) -> Result<HttpResponse, AppError> {
    let about = inspect(&session, &info).await?;
    html(StatusCode::OK, &SessionPage { layout: Layout::new(&info, &session, &csrf), about })
}
