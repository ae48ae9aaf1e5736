//! "Your devices", shared by the JSON API and the `/devices` page: the user's sessions as they
//! are shown, and the checks on a session handle that arrives in a URL.
use serde::Serialize;

use crate::{
    error::AppError,
    session::{Session, StoreError, device::Listed, unix_now},
};

/// One session as the user sees it. `id` is the session's storage key, not its cookie.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub replica: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_seen: i64,
    pub current: bool,
}

impl DeviceView {
    /// "3 min ago", for the page.
    pub fn last_seen_ago(&self) -> String {
        ago(unix_now() - self.last_seen)
    }

    pub fn created_ago(&self) -> String {
        ago(unix_now() - self.created_at)
    }
}

/// The logged-in user's sessions, the current one first; 401 for a guest.
pub async fn list(session: &Session) -> Result<Vec<DeviceView>, AppError> {
    let listed = session.devices().await?.ok_or(AppError::NotLoggedIn)?;
    let current = session.key();
    let mut views: Vec<DeviceView> = listed.into_iter().map(|l| view(l, current.as_deref())).collect();
    views.sort_by_key(|v| (!v.current, std::cmp::Reverse(v.last_seen)));
    Ok(views)
}

/// Revokes session `id` of the logged-in user: 401 for a guest, 404 if the user has no such
/// session (a malformed id included: it cannot name one).
pub async fn revoke(session: &Session, id: &str) -> Result<(), AppError> {
    if !session.read(|d| d.user.is_some()) {
        return Err(AppError::NotLoggedIn);
    }
    let well_formed = id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed || !session.revoke_device(id).await? {
        return Err(AppError::UnknownSession);
    }
    Ok(())
}

/// Revokes every session of the logged-in user but this one; how many.
pub async fn revoke_others(session: &Session) -> Result<usize, AppError> {
    if !session.read(|d| d.user.is_some()) {
        return Err(AppError::NotLoggedIn);
    }
    Ok(session.revoke_other_devices().await?)
}

fn view(listed: Listed, current: Option<&str>) -> DeviceView {
    let device = listed.device.unwrap_or_else(|| crate::session::device::Device {
        label: "Unknown device".into(),
        ip: "unknown".into(),
        replica: "unknown".into(),
        seen: listed.created_at,
    });
    DeviceView {
        current: current == Some(listed.key.as_str()),
        id: listed.key,
        device: device.label,
        ip: device.ip,
        replica: device.replica,
        created_at: listed.created_at,
        last_seen: device.seen,
    }
}

fn ago(secs: i64) -> String {
    match secs.max(0) {
        0..60 => "just now".into(),
        s @ 60..3600 => format!("{} min ago", s / 60),
        s @ 3600..86400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}

/// Changes the logged-in user's password; every other session of the user ends, and this one
/// moves to a new ID (whoever copied the old cookie holds nothing). How many sessions ended.
pub async fn change_password(
    session: &Session,
    db: &crate::db::Db,
    throttle: &crate::throttle::Throttle,
    ip: &str,
    current: &str,
    new: &str,
) -> Result<usize, AppError> {
    let user = session.read(|d| d.user.clone()).ok_or(AppError::NotLoggedIn)?;
    crate::users::change_password(db, throttle, &user, current, new, ip).await?;
    let ended = match session.revoke_other_devices().await {
        // The stock actix stack cannot find the user's other sessions: they live on, and its
        // strategy page says so. The password itself has changed.
        Err(StoreError::Unsupported(_)) => 0,
        other => other?,
    };
    session.renew::<AppError>(|_| {}).await?;
    Ok(ended)
}
