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

use super::{
    LabControls,
    store::{self, StoreStatus},
};
use crate::{
    error::AppError,
    haproxy_admin::{ServerState, ServerStatus, Stat},
    routes::{
        csrf::CsrfToken,
        pages::{Layout, html},
    },
    session::{Layer, Outcomes, Session, unix_now},
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
    /// The store the sessions depend on, and whether it answers; `None` when there is none.
    store: Option<StoreStatus>,
    /// `sessionlab lab` runs the store, so the Stop and Start buttons can work.
    store_buttons: bool,
    /// The store did not answer when this request's session was loaded.
    session_unknown: bool,
    /// This replica was killed and answers on its way down: the page reloads itself in a second,
    /// when another process (a survivor, or this one restarted) answers and shows the effect.
    dying: bool,
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
    /// Why, from what can be known: whether that replica went down since.
    why: String,
}

/// What the `sl_lab` cookie remembers of the last view: who, which replica served it, how many
/// times HAProxy had seen that replica go down by then, and when (`user|replica|downs|at`).
struct LastSeen {
    user: String,
    replica: String,
    downs: Option<u64>,
    /// Unix seconds.
    at: i64,
}

impl LastSeen {
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split('|');
        let (user, replica) = (parts.next()?, parts.next()?);
        let downs = parts.next().and_then(|n| n.parse().ok());
        let at = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        Some(Self { user: user.to_owned(), replica: replica.to_owned(), downs, at })
    }

    /// The session is gone: say why from what can be known. The replica that served the last view
    /// went down since if HAProxy counted it going down, has it down now, or it is this replica
    /// and this process started after that view. Otherwise the session was not lost with a
    /// replica, and the strategy says what else ends one. (Blaming a kill after a store restart
    /// teaches the wrong lesson.)
    fn lost(self, now: Option<&ServerStatus>, info: &AppInfo) -> LostSession {
        let outcomes = info.backend.outcomes();
        let counted_down = matches!((self.downs, now), (Some(before), Some(now)) if now.downs > before);
        // Not ready is not down: out of rotation while its store is out of reach, it kept its memory.
        let down_now = now.is_some_and(|now| !matches!(now.state, ServerState::Up | ServerState::NotReady));
        let restarted_here = self.replica == info.replica && info.started_at > self.at;
        let why = if counted_down || down_now || restarted_here {
            format!("{} went down since your last look. {}", self.replica, outcomes.replica_killed)
        } else if now.is_some() {
            format!(
                "{} has not gone down since your last look, so the session was not lost with a replica. With {}: {}",
                self.replica, info.backend, outcomes.not_found
            )
        } else {
            format!("With {}: {}", info.backend, outcomes.not_found)
        };
        LostSession { user: self.user, replica: self.replica, why }
    }
}

impl std::fmt::Display for LastSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let downs = self.downs.map(|d| d.to_string()).unwrap_or_default();
        write!(f, "{}|{}|{downs}|{}", self.user, self.replica, self.at)
    }
}

#[derive(Deserialize)]
pub struct Notice {
    killed: Option<String>,
    drained: Option<String>,
    readied: Option<String>,
    removed: Option<String>,
    wrong_token: Option<String>,
    store: Option<String>,
}

impl Notice {
    /// Keeps only the replica names `known` accepts: a crafted link must not put words of its
    /// own on the dashboard ("/lab?killed=Your account is locked, call…").
    fn naming_only(self, known: impl Fn(&str) -> bool) -> Self {
        let keep = |id: Option<String>| id.filter(|id| known(id));
        Self {
            killed: keep(self.killed),
            drained: keep(self.drained),
            readied: keep(self.readied),
            removed: keep(self.removed),
            ..self
        }
    }
}

pub async fn page(
    req: HttpRequest,
    info: web::Data<AppInfo>,
    controls: web::Data<LabControls>,
    layer: web::Data<Layer>,
    session: Session,
    csrf: CsrfToken,
    query: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let (stat, haproxy_error) = stat(&controls).await;
    let store = store::status(&info, &layer).await;
    let session_unknown = session.unknown();
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
    let server = |id: &str| stat.replicas.iter().find(|r| r.id == id);
    // Who this browser was on its last view, so the page can tell a session lost in between.
    let last_seen = crate::cookies::CookieNames::new(info.cookie_secure).last_seen;
    let lost = match (req.cookie(last_seen), &user) {
        (Some(cookie), None) if stale_credential && !session_unknown => LastSeen::parse(cookie.value()).map(|seen| {
            let now = server(&seen.replica);
            seen.lost(now, &info)
        }),
        _ => None,
    };
    let my_downs = server(&info.replica).map(|r| r.downs);
    let dying = super::controls::dying();
    let query = query.into_inner().naming_only(|id| id == info.replica || server(id).is_some());
    let notice = match &query {
        Notice { killed: Some(id), .. } if dying => Some(format!(
            "{id} was killed and answered this page on its way down, so it does not show the effect yet. \
             It reloads in a second, from whichever replica HAProxy sends you to then."
        )),
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
        Notice { store: Some(change), .. } => Some(match change.as_str() {
            "stopping" => "The lab is stopping the session store, the way its operator would. Pages that need a \
                           session answer 503 until it is back; this dashboard keeps working."
                .to_owned(),
            _ => "The lab is starting the session store again. Whether your session survived depends on what the \
                  store keeps across a restart: see below."
                .to_owned(),
        }),
        Notice { wrong_token: Some(_), .. } => {
            Some("That is not the admin token. Look it up as the form below says, and try again.".to_owned())
        }
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
        unknown_cookie: stale_credential && !session.exists() && !session_unknown,
        notice,
        store,
        store_buttons: controls.store_supervisor().is_some(),
        session_unknown,
        dying,
    };
    let mut res = html(StatusCode::OK, &page)?;
    if session_unknown {
        // Who this browser is cannot be told now: keep what the last view remembered.
        return Ok(res);
    }
    // Remember who this browser is now, so the next view can say if the session was lost.
    let remembered = match &user {
        Some(name) => Cookie::build(
            last_seen,
            LastSeen { user: name.clone(), replica: info.replica.clone(), downs: my_downs, at: unix_now() }.to_string(),
        ),
        None => Cookie::build(last_seen, ""),
    };
    let mut remembered =
        remembered.path("/lab").http_only(true).same_site(SameSite::Lax).secure(info.cookie_secure).finish();
    if user.is_none() {
        remembered.make_removal();
    }
    res.add_cookie(&remembered).map_err(anyhow::Error::from)?;
    Ok(res)
}

/// `GET /lab/state`: what the page's script redraws every second. Reads the session the
/// middleware loaded already and never writes it; asks HAProxy, and pings the store.
pub async fn state(
    info: web::Data<AppInfo>,
    controls: web::Data<LabControls>,
    layer: web::Data<Layer>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let (stat, haproxy_error) = stat(&controls).await;
    let user = session.read(|d| d.user.as_ref().map(|u| u.username.clone()));
    let replicas = stat.replicas;
    Ok(HttpResponse::Ok().json(json!({
        "served_by": info.replica,
        "replicas": replicas,
        "haproxy_error": haproxy_error,
        "store": store::status(&info, &layer).await,
        "session_unknown": session.unknown(),
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
            "off (SESSION_REVOCATION=off), the strategy without its revocation layer: no lookup per request, and \
             a copy of your session cookie or token keeps working after you log out, until it expires"
        }
        (false, false) => {
            "off (SESSION_REVOCATION=off): no lookup per request; a logout still ends the session in the \
             replica's memory, but nothing lists sessions, so \"your devices\" and a password change cannot \
             end the others"
        }
    })
}
