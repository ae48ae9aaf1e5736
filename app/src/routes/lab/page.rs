//! The dashboard page and the JSON its script polls.
use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    http::StatusCode,
    web,
};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::{LAST_SEEN_COOKIE, LabControls};
use crate::{
    error::AppError,
    haproxy_admin::{ServerStatus, Stat},
    routes::{
        csrf::CsrfToken,
        pages::{Layout, html},
    },
    session::{Outcomes, Session},
    startup::AppInfo,
};

#[derive(Template)]
#[template(path = "lab.html")]
struct LabPage {
    layout: Layout,
    replicas: Vec<ServerStatus>,
    /// Why the replica states are unknown, if they are.
    haproxy_error: Option<String>,
    /// How HAProxy picks a replica, in its own terms (`show stat`).
    balancing: Option<String>,
    /// What the revocation layer does here, for the strategies it wraps.
    revocation: Option<&'static str>,
    controls_enabled: bool,
    unlocked: bool,
    outcomes: Outcomes,
    session: Option<SessionPanel>,
    /// Set when this browser was logged in on its last visit and is not any more.
    lost: Option<LostSession>,
    /// The browser sent a session cookie and this replica found no session for it.
    unknown_cookie: bool,
    notice: Option<String>,
}

struct SessionPanel {
    location: String,
    state_bytes: usize,
    user: Option<String>,
    cart_count: u32,
}

struct LostSession {
    user: String,
    replica: String,
}

#[derive(Deserialize)]
pub struct Notice {
    killed: Option<String>,
    drained: Option<String>,
    readied: Option<String>,
    removed: Option<String>,
}

pub async fn page(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    controls: web::Data<LabControls>,
    session: Session,
    csrf: CsrfToken,
    query: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let (stat, haproxy_error) = stat(&controls).await;
    let user = session.read(|d| d.user.as_ref().map(|u| u.username.clone()));
    let panel = session.info().map(|about| SessionPanel {
        location: about.location,
        state_bytes: about.state_bytes,
        user: user.clone(),
        cart_count: session.read(|d| d.cart.count()),
    });
    // Lost, not left: the browser still sends a session cookie, and it no longer opens a session
    // of the user this page last showed. (A logout removes the cookie.)
    let stale_credential = crate::session::middleware::carries_credential(&req);
    let lost = match (req.cookie(LAST_SEEN_COOKIE), &user) {
        (Some(cookie), None) if stale_credential => cookie
            .value()
            .split_once('|')
            .map(|(user, replica)| LostSession { user: user.to_owned(), replica: replica.to_owned() }),
        _ => None,
    };
    let notice = match &query.0 {
        Notice { killed: Some(id), .. } => Some(format!(
            "{id} was killed (SIGKILL, as in a crash). HAProxy sends its requests elsewhere until it is back: \
             the native lab restarts it after about a second, and so does compose (restart: unless-stopped)."
        )),
        Notice { drained: Some(id), .. } => {
            Some(format!("{id} is draining: HAProxy sends it no new clients; pinned (sticky) ones still reach it."))
        }
        Notice { readied: Some(id), .. } => Some(format!(
            "{id} is in rotation: HAProxy sends it new clients. Clients already pinned elsewhere (sticky) stay \
             where they are; with a shared store, every replica serves every session anyway."
        )),
        Notice { removed: Some(id), .. } => Some(format!(
            "{id} is out of rotation, its pinned clients too: HAProxy sends them elsewhere. Sessions in {id}'s \
             memory (sticky) are lost to them; sessions in a shared store are not. Ready puts it back."
        )),
        _ => None,
    };
    let page = LabPage {
        layout: Layout::new(&info, &session, &csrf),
        replicas: stat.replicas,
        haproxy_error,
        balancing: stat.balancing.map(|b| b.describe()),
        revocation: revocation(&info),
        controls_enabled: controls.enabled(),
        unlocked: controls.unlocked(&req),
        outcomes: info.backend.outcomes(),
        session: panel,
        lost,
        unknown_cookie: stale_credential && !session.exists(),
        notice,
    };
    let mut res = html(StatusCode::OK, &page)?;
    // Remember who this browser is now, so the next view can say if the session was lost.
    let remembered = match &user {
        Some(name) => Cookie::build(LAST_SEEN_COOKIE, format!("{name}|{}", info.replica)),
        None => Cookie::build(LAST_SEEN_COOKIE, ""),
    };
    let mut remembered =
        remembered.path("/lab").http_only(true).same_site(SameSite::Lax).secure(info.cookie_secure).finish();
    if user.is_none() {
        remembered.make_removal();
    }
    res.add_cookie(&remembered).map_err(anyhow::Error::from)?;
    Ok(res)
}

/// `GET /lab/state`: what the page's script redraws every second. Reads nothing but the session
/// the middleware loaded already, and never writes it.
pub async fn state(
    info: web::Data<AppInfo>,
    controls: web::Data<LabControls>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let (stat, haproxy_error) = stat(&controls).await;
    let user = session.read(|d| d.user.as_ref().map(|u| u.username.clone()));
    let replicas = stat.replicas;
    Ok(HttpResponse::Ok().json(json!({
        "served_by": info.replica,
        "replicas": replicas,
        "haproxy_error": haproxy_error,
        "user": user,
        "cart_count": session.read(|d| d.cart.count()),
    })))
}

async fn stat(controls: &LabControls) -> (Stat, Option<String>) {
    match &controls.haproxy {
        None => (Stat::default(), Some("HAPROXY_ADMIN_ADDR is not set: this replica cannot ask HAProxy".into())),
        Some(haproxy) => match haproxy.stat().await {
            Ok(stat) => (stat, None),
            Err(err) => (Stat::default(), Some(format!("{err:#}"))),
        },
    }
}

/// The revocation layer in a sentence, for the strategies it wraps (`SESSION_REVOCATION`).
fn revocation(info: &AppInfo) -> Option<&'static str> {
    if !info.backend.revocation_is_a_layer() {
        return None;
    }
    Some(match (info.revocation, info.backend.keeps_state_in_client()) {
        (true, _) => {
            "on (SESSION_REVOCATION=on): every logged-in request is checked against a revocation list and \
             every session is listed, so a logout, \"your devices\" and a password change end every copy of a \
             session, at the cost of one lookup per logged-in request"
        }
        (false, true) => {
            "off (SESSION_REVOCATION=off), the strategy as the article describes it: no lookup per request, and \
             a copy of your session cookie or token keeps working after you log out, until it expires"
        }
        (false, false) => {
            "off (SESSION_REVOCATION=off): no lookup per request; a logout still ends the session in the \
             replica's memory, but nothing lists sessions, so \"your devices\" and a password change cannot \
             end the others"
        }
    })
}
