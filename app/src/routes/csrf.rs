//! CSRF protection for HTML forms: a double-submit token, signed and bound to who is logged in.
//!
//! A random nonce lives in its own HttpOnly, SameSite=Strict cookie. Every form carries, in a
//! hidden field, HMAC(key, nonce, user) — the key derived from `SESSION_KEY`, the user being the
//! logged-in user's id or "guest" — and a POST must carry the field that its cookie's nonce and
//! its session give. Another site can make a browser send the cookie, but cannot read the page to
//! copy the field.
//!
//! Why signed, and bound: in the plain double-submit pattern (field == cookie), an origin that
//! can *set* this site's cookies (another port on the same host — cookies ignore ports — or a
//! sibling subdomain) plants a nonce of its choosing and posts it in the field too. Here it can
//! plant a nonce, but cannot compute the field for a logged-in user: that takes the key.
//!
//! What it leaves: a guest's token is bound to "guest", so such an origin can fetch a guest form
//! with its planted nonce and replay that pair (log-in CSRF: logging the visitor into the
//! attacker's account). An origin that sets cookies could plant a session cookie outright anyway;
//! behind HTTPS, the `__Host-` names ([`CookieNames`]) shut both out.
//!
//! It is kept out of the session on purpose: a guest who only browses must not create a session
//! (that would be a store write on every first visit).
use std::future::Ready;

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    body::MessageBody,
    cookie::{Cookie, SameSite},
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{
    config::Settings,
    cookies::CookieNames,
    error::AppError,
    session::{Session, SessionId},
    startup::AppInfo,
};

/// The key form tokens are signed with. Every replica needs the same one: a form one replica
/// served is posted to whichever HAProxy picks.
#[derive(Clone)]
pub struct CsrfKey(Hmac<Sha256>);

impl CsrfKey {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let secret = match &settings.session_key {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None if settings.part_of_cluster => anyhow::bail!(
                "SESSION_KEY is unset (at least 64 bytes, the same on every replica): it signs every form's CSRF \
                 token, so replica {} would otherwise refuse the forms the other replicas served. Make one with \
                 `openssl rand -base64 64`.",
                settings.replica_id
            ),
            // A lone `cargo run`: the forms live as long as the process.
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        // A key of its own, so a CSRF token can never stand in for anything else SESSION_KEY signs.
        let mut derive = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes keys of any length");
        derive.update(b"sessionlab csrf v1");
        let key = derive.finalize().into_bytes();
        Ok(Self(Hmac::new_from_slice(&key).expect("HMAC takes keys of any length")))
    }

    /// The form token for cookie nonce `nonce` and the user `subject`.
    fn sign(&self, nonce: &str, subject: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(subject.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The nonce in this request's CSRF cookie (a new one if it had none).
#[derive(Clone)]
struct Nonce(String);

/// The token this request's forms carry, and the one a POST must send back.
#[derive(Clone)]
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn value(&self) -> &str {
        &self.0
    }

    /// The token for `req`'s nonce and its session's user; `None` outside [`ensure_token`].
    pub fn of(req: &HttpRequest) -> Option<Self> {
        let Nonce(nonce) = req.extensions().get::<Nonce>().cloned()?;
        let key = req.app_data::<web::Data<CsrfKey>>()?;
        let user = Session::of(req).and_then(|s| s.read(|d| d.user.as_ref().map(|u| u.id)));
        let subject = user.map_or_else(|| "guest".to_owned(), |id| id.to_string());
        Some(CsrfToken(key.sign(&nonce, &subject)))
    }

    /// Checks the token a form sent back.
    pub fn verify(&self, submitted: &str) -> Result<(), AppError> {
        if bool::from(self.0.as_bytes().ct_eq(submitted.as_bytes())) { Ok(()) } else { Err(AppError::CsrfMismatch) }
    }
}

/// Makes sure the browser holds a nonce, and hands it to [`CsrfToken`].
pub async fn ensure_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let secure = req.app_data::<web::Data<AppInfo>>().is_some_and(|i| i.cookie_secure);
    let name = CookieNames::new(secure).csrf;
    // Same shape as a session ID: 256 random bits; anything else is replaced.
    let existing = req.cookie(name).and_then(|c| SessionId::parse(c.value())).map(|t| t.expose().to_owned());
    let fresh = existing.is_none();
    let nonce = existing.unwrap_or_else(|| SessionId::generate().expose().to_owned());
    req.extensions_mut().insert(Nonce(nonce.clone()));
    let mut res = next.call(req).await?;
    if fresh {
        let cookie =
            Cookie::build(name, nonce).path("/").http_only(true).same_site(SameSite::Strict).secure(secure).finish();
        res.response_mut().add_cookie(&cookie)?;
    }
    Ok(res)
}

/// Computed when a handler asks for it, after the session middleware ran: the token is bound to
/// the user the request's session holds at that moment.
impl FromRequest for CsrfToken {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = CsrfToken::of(req)
            .ok_or_else(|| actix_web::error::ErrorInternalServerError("CSRF middleware or key missing"));
        std::future::ready(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> CsrfKey {
        let mut settings = Settings::from_lookup(|_| None).unwrap();
        settings.session_key = Some(crate::config::Secret::new(secret.repeat(64)));
        CsrfKey::from_settings(&settings).unwrap()
    }

    #[test]
    fn a_token_belongs_to_one_nonce_one_user_and_one_key() {
        let (ours, theirs) = (key("a"), key("b"));
        let token = ours.sign("nonce", "42");
        assert_eq!(token, key("a").sign("nonce", "42"), "every replica with the key agrees");
        assert_ne!(token, ours.sign("nonce", "43"), "another user");
        assert_ne!(token, ours.sign("other", "42"), "another nonce");
        assert_ne!(token, theirs.sign("nonce", "42"), "another key");
        assert_ne!(ours.sign("nonce4", "2"), ours.sign("nonce", "42"), "the boundary is unambiguous");
    }

    #[test]
    fn a_replica_of_a_cluster_without_session_key_refuses_to_start() {
        let mut settings = Settings::from_lookup(|_| None).unwrap();
        settings.part_of_cluster = true;
        let err = CsrfKey::from_settings(&settings).err().unwrap().to_string();
        assert!(err.contains("SESSION_KEY") && err.contains("same on every replica"), "{err}");
    }
}
