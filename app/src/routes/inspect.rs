//! The session inspector's data, shared by `/session` and `/api/session`.
use serde::Serialize;

use crate::{
    error::AppError,
    session::{Session, StoreError, Visit, unix_now},
    startup::AppInfo,
};

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub backend: String,
    pub replica: String,
    /// A fingerprint (12 hex digits of the ID's SHA-256), never the secret ID; `None` for a guest
    /// with no session yet.
    pub session_id: Option<String>,
    pub user: Option<String>,
    pub cart_count: u32,
    pub visits: Vec<Visit>,
    pub state_bytes: usize,
    pub ttl_seconds: u64,
    pub location: String,
    /// Why this replica found no session for the credential the request carried, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_found: Option<&'static str>,
    /// The decoded credential, for strategies whose credential is readable (a JWT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<serde_json::Value>,
}

/// Describes the session, after recording this replica in its `visits` — the only write a look
/// makes, and only into a session that exists: a guest who only looks creates nothing in any
/// store (or anyone could fill it, and with memcached evict real users' sessions). A look never
/// fails on the size limit either: visits give way to the cart (`Own::update` drops them when the
/// state would not fit), and a session too full even then is shown without this visit.
///
/// `carried_credential`: the request sent a session cookie or token (found or not), so a missing
/// session is explained (with `memory`, it is the point of the lesson).
pub async fn inspect(session: &Session, info: &AppInfo, carried_credential: bool) -> Result<Inspection, AppError> {
    if session.exists() {
        let recorded = session
            .update::<_, StoreError>(|data| {
                data.record_visit(&info.replica, unix_now());
                Ok(())
            })
            .await;
        match recorded {
            Ok(()) | Err(StoreError::TooLarge { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let about = session.info();
    let not_found = (carried_credential && about.is_none()).then(|| info.backend.outcomes().not_found);
    Ok(session.read(|data| Inspection {
        backend: info.backend.to_string(),
        replica: info.replica.clone(),
        session_id: about.as_ref().map(|a| a.fingerprint.clone()),
        user: data.user.as_ref().map(|u| u.username.clone()),
        cart_count: data.cart.count(),
        visits: data.visits.clone(),
        state_bytes: about.as_ref().map_or(0, |a| a.state_bytes),
        ttl_seconds: about.as_ref().map_or(0, |a| a.ttl_seconds),
        location: match (&about, not_found) {
            (Some(a), _) => a.location.clone(),
            (None, Some(_)) => "not found by this replica".to_owned(),
            (None, None) => "nowhere yet: a session is stored when you add to the cart or log in".to_owned(),
        },
        not_found,
        token: about.and_then(|a| a.token),
    }))
}
