//! `/docs/<strategy>`: the strategy pages of `docs/strategies/`, built into the binary and
//! rendered here, so the dashboard's "how it works" link works offline and in compose.
use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd, html::push_html};

use super::{Layout, diagram, html};
use crate::routes::assets;
use crate::{error::AppError, routes::csrf::CsrfToken, session::Session, startup::AppInfo};

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    layout: Layout,
    title: String,
    body: String,
}

pub(super) fn source(name: &str) -> Option<&'static str> {
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

/// Markdown to HTML. Raw HTML in the source is shown as text, never passed through. Sequence
/// diagrams are drawn as SVG ([`diagram`]); charts (`../img/*.svg`) are served from `/static/charts/`,
/// and any other image shows as its description. Tables and diagrams scroll sideways inside the
/// page on a phone, and the keyboard can reach them to scroll.
fn render(markdown: &str) -> String {
    let mut events = Vec::new();
    let mut mermaid: Option<String> = None;
    let mut image_shown = false;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))) if &*lang == "mermaid" => {
                mermaid = Some(String::new());
            }
            Event::Text(text) if mermaid.is_some() => mermaid.as_mut().unwrap().push_str(&text),
            Event::End(TagEnd::CodeBlock) if mermaid.is_some() => {
                let source = mermaid.take().unwrap();
                match diagram::to_svg(&source) {
                    Some(svg) => events.push(Event::Html(scrolls(&svg).into())),
                    None => {
                        events.push(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced("mermaid".into()))));
                        events.push(Event::Text(source.into()));
                        events.push(Event::End(TagEnd::CodeBlock));
                    }
                }
            }
            Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                match dest_url.strip_prefix("../img/").filter(|chart| assets::is_chart(chart)) {
                    Some(chart) => {
                        let dest_url = format!("/static/charts/{chart}").into();
                        events.push(Event::Start(Tag::Image { link_type, dest_url, title, id }));
                        image_shown = true;
                    }
                    None => events.push(Event::Start(Tag::Emphasis)),
                }
            }
            Event::End(TagEnd::Image) if image_shown => {
                events.push(Event::End(TagEnd::Image));
                image_shown = false;
            }
            Event::End(TagEnd::Image) => events.push(Event::End(TagEnd::Emphasis)),
            Event::Start(table @ Tag::Table(_)) => {
                events.push(Event::Html(r#"<div class="overflow-auto" tabindex="0">"#.into()));
                events.push(Event::Start(table));
            }
            Event::End(TagEnd::Table) => {
                events.push(Event::End(TagEnd::Table));
                events.push(Event::Html("</div>".into()));
            }
            other => events.push(other),
        }
    }
    let mut out = String::new();
    push_html(&mut out, events.into_iter());
    out
}

fn scrolls(inner: &str) -> String {
    format!(r#"<div class="overflow-auto" tabindex="0">{inner}</div>"#)
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
        assert!(!html.contains("<img") && html.contains("<em>A chart</em>"), "an unknown image: {html}");
    }

    #[test]
    fn charts_are_served_and_diagrams_drawn() {
        let html =
            render("![Latency](../img/latency.svg)\n\n```mermaid\nsequenceDiagram\nparticipant A\nA->>A: x\n```\n");
        assert!(html.contains(r#"<img src="/static/charts/latency.svg" alt="Latency""#), "{html}");
        assert!(html.contains(r#"<div class="overflow-auto" tabindex="0"><svg class="diagram""#), "{html}");
        assert!(!html.contains("sequenceDiagram"), "{html}");
        let unknown = render("```mermaid\ngraph TD\nA-->B\n```\n");
        assert!(unknown.contains("<code class=\"language-mermaid\">graph TD"), "shown as source: {unknown}");
    }
}
