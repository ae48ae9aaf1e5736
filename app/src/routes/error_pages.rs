//! Errors on HTML paths become pages; the API keeps its JSON. One [`AppError`] serves both.
use actix_web::{
    HttpResponse,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};
use askama::Template;

use super::pages::Layout;
use crate::{error::AppError, session::StoreError, startup::AppInfo};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    title: String,
    message: String,
    hint: String,
}

pub async fn render_html_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let machine_path = ["/api", "/healthz", "/readyz", "/static"].iter().any(|p| req.path().starts_with(p));
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    let already_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("text/html"));
    if machine_path || already_html || !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let app_error = res.response().error().and_then(|e| e.as_error::<AppError>());
    let page = ErrorPage {
        layout: Layout::of_error(res.request()),
        status: status.as_u16(),
        title: app_error
            .map_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned(), |e| e.title().to_owned()),
        // Another layer's 5xx (the stock actix-session's, say) may carry internal details: the
        // log has them; the page does not.
        message: match app_error {
            Some(err) => err.to_string(),
            None if status.is_server_error() => "The server could not answer this request.".to_owned(),
            None => res.response().error().map(ToString::to_string).unwrap_or_default(),
        },
        hint: match app_error {
            // What a restart of the store costs depends on the strategy: say which, not "reload".
            Some(err @ AppError::Store(StoreError::Unavailable(_))) => {
                let restarted =
                    res.request().app_data::<web::Data<AppInfo>>().map(|i| i.backend.outcomes().store_restarted);
                format!("{} When it is back: {}", err.hint(), restarted.unwrap_or_default())
            }
            Some(err) => err.hint().to_owned(),
            None => String::new(),
        },
    };
    let Ok(body) = page.render() else {
        return Ok(res);
    };
    let mut html = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            html.append_header((name.clone(), value.clone()));
        }
    }
    let html = html.content_type("text/html; charset=utf-8").body(body);
    Ok(res.into_response(html))
}
