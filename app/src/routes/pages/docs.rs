//! `/docs/<strategy>`: the strategy pages of `docs/strategies/`, built into the binary and
//! rendered here, so the dashboard's "how it works" link works offline and in compose.
use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html::push_html};

use super::{Layout, html};
use crate::{error::AppError, routes::csrf::CsrfToken, session::Session, startup::AppInfo};

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    layout: Layout,
    title: String,
    body: String,
}

fn source(name: &str) -> Option<&'static str> {
    Some(match name {
        "memory" => include_str!("../../../../docs/strategies/memory.md"),
        "sticky" => include_str!("../../../../docs/strategies/sticky.md"),
        "cookie" => include_str!("../../../../docs/strategies/cookie.md"),
        "redis" => include_str!("../../../../docs/strategies/redis.md"),
        "memcached" => include_str!("../../../../docs/strategies/memcached.md"),
        "postgres" => include_str!("../../../../docs/strategies/postgres.md"),
        "mysql" => include_str!("../../../../docs/strategies/mysql.md"),
        "jwt" => include_str!("../../../../docs/strategies/jwt.md"),
        "actix-redis" | "actix-cookie" => include_str!("../../../../docs/strategies/actix-session.md"),
        _ => return None,
    })
}

pub async fn page(
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let markdown = source(&path).ok_or(AppError::NotFound)?;
    let title = markdown.lines().next().unwrap_or_default().trim_start_matches("# ").replace('`', "");
    html(StatusCode::OK, &DocsPage { layout: Layout::new(&info, &session, &csrf), title, body: render(markdown) })
}

/// Markdown to HTML. Raw HTML in the source is shown as text, never passed through; charts
/// (images under docs/img, not served here) show as their description. Tables scroll sideways
/// inside the page on a phone, and the keyboard can reach them to scroll.
fn render(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).flat_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => vec![Event::Text(raw)],
        Event::Start(Tag::Image { .. }) => vec![Event::Start(Tag::Emphasis)],
        Event::End(TagEnd::Image) => vec![Event::End(TagEnd::Emphasis)],
        Event::Start(table @ Tag::Table(_)) => {
            vec![Event::Html(r#"<div class="overflow-auto" tabindex="0">"#.into()), Event::Start(table)]
        }
        Event::End(TagEnd::Table) => vec![Event::End(TagEnd::Table), Event::Html("</div>".into())],
        other => vec![other],
    });
    let mut out = String::new();
    push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_has_a_page_and_raw_html_stays_text() {
        for backend in crate::session::Backend::ALL {
            assert!(source(backend.as_str()).is_some_and(|md| md.contains("## Limitations")), "{backend}");
        }
        let html = render("# T\n\n<script>alert(1)</script>\n\n| a |\n|---|\n| b |\n\n![A chart](../img/x.svg)\n");
        assert!(
            !html.contains("<script>")
                && html.contains("&lt;script&gt;")
                && html.contains("<div class=\"overflow-auto\" tabindex=\"0\"><table>"),
            "{html}"
        );
        assert!(!html.contains("<img") && html.contains("<em>A chart</em>"), "{html}");
    }
}
