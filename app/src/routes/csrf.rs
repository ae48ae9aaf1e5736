//! CSRF protection for HTML forms: the double-submit pattern. A random token lives in its own
//! HttpOnly, SameSite=Strict cookie and in a hidden field of every form; a POST must carry both,
//! equal. Another site can make a browser send the cookie but cannot read it to fill the field.
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
use subtle::ConstantTimeEq;

use crate::{cookies::CookieNames, error::AppError, session::SessionId, startup::AppInfo};

#[derive(Clone)]
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Checks the token a form sent back.
    pub fn verify(&self, submitted: &str) -> Result<(), AppError> {
        if bool::from(self.0.as_bytes().ct_eq(submitted.as_bytes())) { Ok(()) } else { Err(AppError::CsrfMismatch) }
    }
}

/// Makes sure the browser holds a token, and hands it to handlers.
pub async fn ensure_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let secure = req.app_data::<web::Data<AppInfo>>().is_some_and(|i| i.cookie_secure);
    let name = CookieNames::new(secure).csrf;
    // Same shape as a session ID: 256 random bits; anything else is replaced.
    let existing = req.cookie(name).and_then(|c| SessionId::parse(c.value())).map(|t| t.expose().to_owned());
    let fresh = existing.is_none();
    let token = existing.unwrap_or_else(|| SessionId::generate().expose().to_owned());
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut res = next.call(req).await?;
    if fresh {
        let cookie =
            Cookie::build(name, token).path("/").http_only(true).same_site(SameSite::Strict).secure(secure).finish();
        res.response_mut().add_cookie(&cookie)?;
    }
    Ok(res)
}

impl FromRequest for CsrfToken {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.extensions().get::<CsrfToken>().cloned();
        std::future::ready(token.ok_or_else(|| actix_web::error::ErrorInternalServerError("CSRF middleware missing")))
    }
}
