//! The session inspector's data, shared by `/session` and `/api/session`.
use serde::Serialize;

use crate::{
    error::AppError,
    session::{Session, Visit, unix_now},
    startup::AppInfo,
};

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub backend: String,
    pub replica: String,
    /// A fingerprint (12 hex digits of the ID's SHA-256), never the secret ID.
    pub session_id: String,
    pub user: Option<String>,
    pub cart_count: u32,
    pub visits: Vec<Visit>,
    pub state_bytes: usize,
    pub ttl_seconds: u64,
    pub location: String,
    /// The decoded credential, for strategies whose credential is readable (a JWT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<serde_json::Value>,
}

/// Records this replica in the session's `visits` (the only write a look at the inspector makes)
/// and describes the session.
pub async fn inspect(session: &Session, info: &AppInfo) -> Result<Inspection, AppError> {
    session
        .update::<_, AppError>(|data| {
            data.record_visit(&info.replica, unix_now());
            Ok(())
        })
        .await?;
    let about = session.info().ok_or_else(|| anyhow::anyhow!("a session exists after a successful write"))?;
    Ok(session.read(|data| Inspection {
        backend: info.backend.to_string(),
        replica: info.replica.clone(),
        session_id: about.fingerprint,
        user: data.user.as_ref().map(|u| u.username.clone()),
        cart_count: data.cart.count(),
        visits: data.visits.clone(),
        state_bytes: about.state_bytes,
        ttl_seconds: about.ttl_seconds,
        location: about.location,
        token: about.token,
    }))
}
