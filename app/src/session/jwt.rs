//! `jwt`: the session is a signed JSON Web Token that carries the cart itself. Any replica that
//! knows the key verifies it; no session store is read for the state.
//!
//! - Browsers get the token in the HttpOnly `sl_session` cookie; API clients may send it as
//!   `Authorization: Bearer <token>` instead (log in with `{"token": true}` to receive it).
//! - Claims: `sub` (user id, or `guest`), `sid` (the session), `jti` (this token), `iat`, `exp`,
//!   `use` (`access` or `refresh`), and the session itself (`user`, `cart`, `visits`). The token
//!   grows with the cart; one over the 4 KB cookie limit is refused with 413.
//! - Keys: `JWT_KEYS=kid:secret,…` — the first key signs, every key verifies, so a new key is
//!   rolled out first in the list while the old one keeps verifying until its tokens expire.
//! - Algorithm: HS256 only, fixed in configuration, never read from the token: the replicas both
//!   sign and verify, so a shared secret is all they need (EdDSA's public-key verification pays
//!   off when third parties verify). `none`, another `alg`, an unknown `kid`, a bad signature or
//!   a past `exp` are all "no session" (401 where a login is needed, never a 5xx).
//! - Access tokens live [`JwtStore::access_ttl`] (15 min by default) and are re-issued when half
//!   of that is gone; a refresh token (7 days), rotated on every use, gets a new one after that.
//!   Presenting an already-used refresh token revokes the whole session (RFC 9700 reuse detection).
//!
//! - A refresh token carries `auth_time`, when its session logged in: no refresh extends a
//!   session past `SESSION_ABSOLUTE_TIMEOUT_SECS`, however often it is refreshed.
//!
//! This file is the pure strategy (`SESSION_REVOCATION=off`): verifying a token asks no one.
//!
//! # Limitations
//! - Revocation needs state. On its own, a logged-out token stays valid until `exp`, a refresh
//!   token can be used again and again until it expires (a stolen one too), and there is no list
//!   of a user's sessions. By default the strategy therefore runs inside the
//!   [`Revocable`](super::revocable::Revocable) layer: a list of revoked sessions (Redis, or the
//!   app database) read on every logged-in request, a registry for "your devices", and each
//!   session's current refresh token. That is exactly the server-side state JWTs are said to avoid.
//! - Revocation is by session (`sid`): revoking only the last token's `jti` would leave the
//!   earlier tokens of the same session valid until they expire.
//! - The claims are signed, not encrypted: anyone holding the token can read the cart.
//! - Size: the whole state rides in every request and must stay under 4 KB.
//! - Last writer wins between concurrent requests, as with the `cookie` strategy.
use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use super::{
    Backend, COOKIE_NAME, Describe, Loaded, MAX_COOKIE_BYTES, RefreshToken, RefreshTokens, Refreshed, Saved,
    SessionData, SessionId, SessionStore, SessionUser, StoreError, unix_now,
};
use crate::config::Settings;

pub const OUTCOMES: super::Outcomes = super::Outcomes {
    replica_killed: "Nothing happens: your session is a signed token that every replica can verify.",
    store_restarted: "There is no session store. Unless SESSION_REVOCATION=off, the revocation list (Redis or the app database) must answer for every logged-in request: while it is down, those get a 503 page.",
    not_found: "Every replica can verify your token, so a replica refuses it only when it has expired and no refresh token renewed it, was altered, or its session was revoked.",
};

const ALGORITHM: Algorithm = Algorithm::HS256;
/// HS256 keys shorter than the hash give away security for nothing.
const MIN_SECRET_BYTES: usize = 32;

pub struct JwtStore {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// No refresh extends a session past this long after its log-in.
    absolute: Duration,
    /// The cookie the token travels in: its name counts towards the browser's 4 KB.
    cookie_name: &'static str,
}

/// The claims every token of this strategy carries.
#[derive(Debug, Serialize, Deserialize)]
struct Registered {
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    exp: i64,
    /// `access` or `refresh`: one kind of token is never accepted as the other.
    #[serde(rename = "use")]
    token_use: String,
}

impl Registered {
    fn new(sub: String, sid: &SessionId, jti: String, token_use: &str, ttl: Duration) -> Self {
        let iat = unix_now();
        Self {
            sub,
            sid: sid.expose().to_owned(),
            jti,
            iat,
            exp: iat + ttl.as_secs() as i64,
            token_use: token_use.into(),
        }
    }

    /// The session, if this is a token of kind `token_use`.
    fn session(&self, token_use: &str) -> Option<SessionId> {
        SessionId::parse(&self.sid).filter(|_| self.token_use == token_use)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    #[serde(flatten)]
    registered: Registered,
    #[serde(flatten)]
    state: SessionData,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefreshClaims {
    #[serde(flatten)]
    registered: Registered,
    name: String,
    /// When the session logged in (OpenID Connect's name for it): its absolute lifetime counts
    /// from here, across every refresh.
    auth_time: i64,
}

/// Parses `JWT_KEYS`: `kid:secret` pairs, comma-separated, the signing key first.
pub fn parse_keys(raw: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let keys: Vec<_> = raw
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|pair| {
            let (kid, secret) = pair.split_once(':').context("JWT_KEYS entries look like kid:secret")?;
            anyhow::ensure!(!kid.is_empty(), "JWT_KEYS has an entry without a kid");
            anyhow::ensure!(
                secret.len() >= MIN_SECRET_BYTES,
                "JWT_KEYS: the secret of kid {kid} must be at least {MIN_SECRET_BYTES} bytes"
            );
            Ok((kid.to_owned(), secret.as_bytes().to_vec()))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!keys.is_empty(), "JWT_KEYS names no key");
    Ok(keys)
}

impl JwtStore {
    pub fn new(
        keys: Vec<(String, Vec<u8>)>,
        access_ttl: Duration,
        refresh_ttl: Duration,
        absolute: Duration,
    ) -> anyhow::Result<Self> {
        let (signing_kid, signing_secret) = keys.first().context("no JWT key")?;
        let verifying = keys
            .iter()
            .map(|(kid, secret)| Ok((kid.clone(), DecodingKey::from_secret(secret)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            signing_kid: signing_kid.clone(),
            signing: EncodingKey::from_secret(signing_secret)?,
            verifying,
            access_ttl,
            refresh_ttl,
            absolute,
            cookie_name: COOKIE_NAME,
        })
    }

    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let keys = match &settings.jwt_keys {
            Some(raw) => parse_keys(raw.expose())?,
            None if settings.part_of_cluster => anyhow::bail!(
                "SESSION_BACKEND=jwt needs JWT_KEYS (kid:secret of at least {MIN_SECRET_BYTES} bytes, the same on every \
                 replica): replica {} would otherwise sign with a key the others reject",
                settings.replica_id
            ),
            None => {
                tracing::warn!("JWT_KEYS is unset: signing with a random key; tokens die with this process");
                vec![("dev".to_owned(), hex::encode(rand::random::<[u8; 32]>()).into_bytes())]
            }
        };
        let store = Self::new(keys, settings.jwt_access_ttl, settings.jwt_refresh_ttl, settings.absolute_timeout)?;
        Ok(Self { cookie_name: crate::cookies::CookieNames::new(settings.cookie_secure).session, ..store })
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, StoreError> {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        encode(&header, claims, &self.signing)
            .map_err(|e| StoreError::unavailable(anyhow::anyhow!("signing failed: {e}")))
    }

    /// Verifies signature, algorithm and key; `check_exp: false` only to carry the cart of an
    /// expired access token over a refresh.
    fn verify<T: for<'de> Deserialize<'de>>(&self, token: &str, check_exp: bool) -> Option<T> {
        if token.len() > MAX_COOKIE_BYTES {
            return None;
        }
        let kid = decode_header(token).ok()?.kid?;
        let key = self.verifying.get(&kid)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = 0;
        validation.validate_exp = check_exp;
        validation.set_required_spec_claims(&["exp", "sub"]);
        decode::<T>(token, key, &validation).ok().map(|data| data.claims)
    }

    fn access_token(&self, id: &SessionId, data: &SessionData) -> Result<(String, i64), StoreError> {
        let sub = data.user.as_ref().map_or_else(|| "guest".to_owned(), |u| u.id.to_string());
        let jti = SessionId::generate().expose().to_owned();
        let registered = Registered::new(sub, id, jti, "access", self.access_ttl);
        let exp = registered.exp;
        let token = self.sign(&AccessClaims { registered, state: data.clone() })?;
        let bytes = self.cookie_name.len() + 1 + token.len();
        if bytes > MAX_COOKIE_BYTES {
            return Err(StoreError::TooLarge { bytes, limit: MAX_COOKIE_BYTES });
        }
        Ok((token, exp))
    }

    fn refresh_token(&self, id: &SessionId, user: &SessionUser, auth_time: i64) -> Result<RefreshToken, StoreError> {
        let jti = SessionId::generate().expose().to_owned();
        let token = self.sign(&RefreshClaims {
            registered: Registered::new(user.id.to_string(), id, jti.clone(), "refresh", self.refresh_ttl),
            name: user.username.clone(),
            auth_time,
        })?;
        Ok(RefreshToken { token, jti, ttl: self.refresh_ttl })
    }

    fn loaded(&self, id: SessionId, state: SessionData, token: &str, exp: i64) -> Loaded {
        let ttl = Duration::from_secs((exp - unix_now()).max(0) as u64);
        Loaded { id, data: state, state_bytes: token.len(), ttl, refresh_due: ttl < self.access_ttl / 2, version: None }
    }
}

#[async_trait]
impl SessionStore for JwtStore {
    fn backend(&self) -> Backend {
        Backend::Jwt
    }

    async fn load(&self, cookie: &str) -> Result<Option<Loaded>, StoreError> {
        let Some(claims) = self.verify::<AccessClaims>(cookie, true) else { return Ok(None) };
        let Some(id) = claims.registered.session("access") else { return Ok(None) };
        Ok(Some(self.loaded(id, claims.state, cookie, claims.registered.exp)))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, _expected: Option<u64>) -> Result<Saved, StoreError> {
        let (token, exp) = self.access_token(id, data)?;
        let ttl = Duration::from_secs((exp - unix_now()).max(0) as u64);
        Ok(Saved { state_bytes: token.len(), cookie: token, ttl, version: None })
    }

    /// Nothing to delete: the client drops its tokens. Copies stay valid unless the revocation
    /// layer lists the session as ended.
    async fn delete(&self, _id: &SessionId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn refresh_tokens(&self) -> Option<&dyn RefreshTokens> {
        Some(self)
    }
}

#[async_trait]
impl RefreshTokens for JwtStore {
    async fn issue(&self, id: &SessionId, data: &SessionData) -> Result<Option<RefreshToken>, StoreError> {
        let Some(user) = &data.user else { return Ok(None) };
        Ok(Some(self.refresh_token(id, user, data.created_at)?))
    }

    /// Checks the refresh token and mints the next pair. Whether this token was used before is
    /// not something a signature can tell: the revocation layer decides that.
    async fn refresh(&self, refresh_token: &str, previous: Option<&str>) -> Result<Option<Refreshed>, StoreError> {
        let Some(claims) = self.verify::<RefreshClaims>(refresh_token, true) else { return Ok(None) };
        let Some(id) = claims.registered.session("refresh") else { return Ok(None) };
        let Ok(user_id) = claims.registered.sub.parse() else { return Ok(None) };
        if unix_now() - claims.auth_time >= self.absolute.as_secs() as i64 {
            return Ok(None);
        }
        let user = SessionUser { id: user_id, username: claims.name };
        // The cart travels in the access token: take it from the expired one if it is ours.
        let state = previous
            .and_then(|token| self.verify::<AccessClaims>(token, false))
            .filter(|old| old.registered.session("access").is_some_and(|sid| sid == id))
            .map(|old| old.state)
            .unwrap_or_else(|| SessionData { user: Some(user.clone()), ..SessionData::default() });
        // The lifetime counts from the log-in, whatever the access token said.
        let state = SessionData { created_at: claims.auth_time, ..state };
        let (token, exp) = self.access_token(&id, &state)?;
        let next = self.refresh_token(&id, &user, claims.auth_time)?;
        let loaded = self.loaded(id, state, &token, exp);
        let saved = Saved { state_bytes: token.len(), ttl: loaded.ttl, cookie: token, version: None };
        Ok(Some(Refreshed { loaded, saved, refresh_token: next, presented_jti: claims.registered.jti }))
    }
}

impl Describe for JwtStore {
    fn location(&self, _id: &SessionId) -> String {
        format!(
            "the {} cookie (or an Authorization header): a JWT signed with HS256, key {}",
            self.cookie_name, self.signing_kid
        )
    }

    fn inspect_cookie(&self, cookie: &str) -> Option<serde_json::Value> {
        let mut parts = cookie.split('.');
        let mut part = || -> Option<serde_json::Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()
        };
        let header = part()?;
        let claims = part()?;
        Some(serde_json::json!({ "header": header, "claims": claims, "bytes": cookie.len() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_need_a_kid_and_a_long_secret() {
        assert!(parse_keys("k1:short").is_err());
        assert!(parse_keys(&format!(":{}", "s".repeat(32))).is_err());
        assert!(parse_keys("").is_err());
        let keys = parse_keys(&format!("new:{}, old:{}", "n".repeat(32), "o".repeat(40))).unwrap();
        assert_eq!(keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["new", "old"]);
    }
}
