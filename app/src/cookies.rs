//! The names of the cookies the app sets.
//!
//! Behind HTTPS (`COOKIE_SECURE=true`) each name carries the prefix browsers enforce, so that a
//! page on a sibling subdomain or on plain http cannot plant or overwrite it (cookie tossing,
//! which would otherwise let another origin fix a session or a CSRF token):
//! - `__Host-` for the ones scoped to the whole site: the browser accepts them only with
//!   `Secure`, `Path=/` and no `Domain`;
//! - `__Secure-` for the dashboard's, scoped to `/lab`, which `__Host-` does not allow.
//!
//! Over plain http the prefixes would make browsers drop the cookies, so the names stay bare.
use actix_web::{HttpRequest, web};

use crate::startup::AppInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieNames {
    /// The session: an ID, or the whole state for `cookie`, or a JWT.
    pub session: &'static str,
    /// A refresh token, for strategies that have them (`jwt`).
    pub refresh: &'static str,
    /// The double-submit CSRF token.
    pub csrf: &'static str,
    /// The proof that this browser entered the admin token (`/lab` only).
    pub admin: &'static str,
    /// Who this browser was on its last `/lab` view (`/lab` only).
    pub last_seen: &'static str,
}

impl CookieNames {
    const PLAIN: Self =
        Self { session: "sl_session", refresh: "sl_refresh", csrf: "sl_csrf", admin: "sl_admin", last_seen: "sl_lab" };
    const SECURE: Self = Self {
        session: "__Host-sl_session",
        refresh: "__Host-sl_refresh",
        csrf: "__Host-sl_csrf",
        admin: "__Secure-sl_admin",
        last_seen: "__Secure-sl_lab",
    };

    pub const fn new(secure: bool) -> Self {
        if secure { Self::SECURE } else { Self::PLAIN }
    }

    /// The names this replica uses (`COOKIE_SECURE`), for a request.
    pub fn of(req: &HttpRequest) -> Self {
        Self::new(req.app_data::<web::Data<AppInfo>>().is_some_and(|info| info.cookie_secure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_names_carry_the_prefix_their_path_allows() {
        let secure = CookieNames::new(true);
        for name in [secure.session, secure.refresh, secure.csrf] {
            assert!(name.starts_with("__Host-"), "{name}");
        }
        for name in [secure.admin, secure.last_seen] {
            assert!(name.starts_with("__Secure-"), "{name}: scoped to /lab, which __Host- forbids");
        }
        let plain = CookieNames::new(false);
        assert!(!plain.session.starts_with("__"));
        assert!(secure.session.ends_with(plain.session) && secure.admin.ends_with(plain.admin));
    }
}
