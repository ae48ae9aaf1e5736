//! `/lab`: the experiment in the browser. Which replicas HAProxy has up, down or draining (its
//! runtime API, polled by `static/lab.js`), which replica answered each of this browser's last
//! requests, where the session lives, and the chaos buttons: **Kill** (the replica that the
//! button names crashes — HAProxy routes `/lab/replicas/<id>/…` to that replica), **Drain**,
//! **Ready** and **Remove** (HAProxy's server states), and the store's **Stop** and **Start**
//! (`store.rs`).
//!
//! The buttons exist only when `ADMIN_TOKEN` is set, and each one checks both the token (proven by
//! an HttpOnly `sl_admin` cookie once entered, `__Secure-sl_admin` behind HTTPS) and the form's
//! CSRF token.
mod controls;
mod page;
mod store;

use actix_web::{HttpRequest, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{config::Secret, error::AppError, haproxy_admin::HaproxyAdmin};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/lab", web::get().to(page::page))
        .route("/lab/state", web::get().to(page::state))
        .route("/lab/unlock", web::post().to(controls::unlock))
        .route("/lab/store/{action}", web::post().to(store::control))
        .route("/lab/replicas/{id}/kill", web::post().to(controls::kill))
        // drain or ready; any other word is a 404.
        .route("/lab/replicas/{id}/{state}", web::post().to(controls::set_state));
}

/// What the dashboard may touch, from `ADMIN_TOKEN`, `HAPROXY_ADMIN_ADDR` and
/// `LAB_SUPERVISOR_PID`.
pub struct LabControls {
    pub admin_token: Option<Secret>,
    pub haproxy: Option<HaproxyAdmin>,
    /// The `sessionlab lab` process that started this replica and runs its store.
    pub lab_supervisor: Option<u32>,
}

impl LabControls {
    pub fn enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Whether this request carries the admin token (in its `sl_admin` cookie).
    fn unlocked(&self, req: &HttpRequest) -> bool {
        // The proof that the browser entered the admin token: a MAC of it, never the token.
        let presented = req.cookie(crate::cookies::CookieNames::of(req).admin);
        match (&self.admin_token, presented) {
            (Some(token), Some(cookie)) => bool::from(admin_proof(token).as_bytes().ct_eq(cookie.value().as_bytes())),
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

/// What the `sl_admin` cookie holds: an HMAC of a fixed label under the admin token. A cookie that
/// leaks (a proxy's log, a shared browser profile) unlocks the controls until the token changes,
/// but never reveals the token itself, which may be reused elsewhere.
fn admin_proof(token: &Secret) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"sessionlab: /lab admin cookie, v1");
    hex::encode(mac.finalize().into_bytes())
}

fn token_matches(token: &Secret, presented: &str) -> bool {
    bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes()))
}
