//! `/lab`: the experiment in the browser. Which replicas HAProxy has up, down or draining (its
//! runtime API, polled by `static/lab.js`), which replica answered each of this browser's last
//! requests, where the session lives, and the chaos buttons: **Kill** (the replica that the
//! button names crashes — HAProxy routes `/lab/replicas/<id>/…` to that replica), **Drain** and
//! **Ready** (HAProxy's server states).
//!
//! The buttons exist only when `ADMIN_TOKEN` is set, and each one checks both the token (kept in
//! an HttpOnly `sl_admin` cookie once entered) and the form's CSRF token.
mod controls;
mod page;

use actix_web::{HttpRequest, web};
use subtle::ConstantTimeEq;

use crate::{config::Secret, error::AppError, haproxy_admin::HaproxyAdmin};

/// The cookie that holds the admin token once the browser has entered it.
const ADMIN_COOKIE: &str = "sl_admin";
/// The cookie that remembers who this browser was on its last /lab view, so the page can tell
/// when a session was lost in between.
const LAST_SEEN_COOKIE: &str = "sl_lab";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/lab", web::get().to(page::page))
        .route("/lab/state", web::get().to(page::state))
        .route("/lab/unlock", web::post().to(controls::unlock))
        .route("/lab/replicas/{id}/kill", web::post().to(controls::kill))
        // drain or ready; any other word is a 404.
        .route("/lab/replicas/{id}/{state}", web::post().to(controls::set_state));
}

/// What the dashboard may touch, from `ADMIN_TOKEN` and `HAPROXY_ADMIN_ADDR`.
pub struct LabControls {
    pub admin_token: Option<Secret>,
    pub haproxy: Option<HaproxyAdmin>,
}

impl LabControls {
    pub fn enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Whether this request carries the admin token (in its `sl_admin` cookie).
    fn unlocked(&self, req: &HttpRequest) -> bool {
        let presented = req.cookie(ADMIN_COOKIE);
        match (&self.admin_token, presented) {
            (Some(token), Some(cookie)) => token_matches(token, cookie.value()),
            _ => false,
        }
    }

    /// The gate in front of every control: on, and unlocked by this browser.
    fn require_admin(&self, req: &HttpRequest) -> Result<(), AppError> {
        if !self.enabled() {
            return Err(AppError::LabControlsOff);
        }
        if !self.unlocked(req) {
            return Err(AppError::AdminTokenNeeded);
        }
        Ok(())
    }
}

fn token_matches(token: &Secret, presented: &str) -> bool {
    bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes()))
}
