//! One error type for the whole app. It answers JSON (`{"error", "message"}`); the HTML error
//! pages in `routes::error_pages` are rendered from the same value for non-API paths.
use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

use crate::{
    cart::CartError,
    session::{StoreError, idempotency::KeyError},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("you are not logged in")]
    NotLoggedIn,
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("the username {0:?} is taken")]
    UsernameTaken(String),
    #[error("there is no product with id {0}")]
    UnknownProduct(i64),
    #[error("there is nothing at this address")]
    NotFound,
    #[error("you have no session with that id (it may have ended already)")]
    UnknownSession,
    #[error("the {0} strategy has no refresh tokens")]
    NoRefreshTokens(String),
    #[error("the refresh token is invalid, expired, revoked or was already used")]
    InvalidRefreshToken,
    #[error("this form has expired; reload the page and try again")]
    CsrfMismatch,
    #[error(
        "the lab's chaos controls are off: start the replicas with ADMIN_TOKEN set (compose and `sessionlab lab` do)"
    )]
    LabControlsOff,
    #[error("enter the admin token on /lab first (ADMIN_TOKEN; `sessionlab lab` prints it)")]
    AdminTokenNeeded,
    #[error("{0}")]
    LabControlFailed(String),
    #[error("too many failed log-ins; try again in {retry_after} seconds")]
    TooManyAttempts { retry_after: u64 },
    #[error("too many sign-ups from your address; try again in {retry_after} seconds")]
    TooManySignUps { retry_after: u64 },
    #[error("too many wrong admin tokens from your address; try again in {retry_after} seconds")]
    TooManyTokenGuesses { retry_after: u64 },
    #[error("the server is checking too many passwords at once; try again in a second")]
    HashingBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Idempotency(#[from] KeyError),
    /// The app database (users and passwords) did not answer ([`crate::db::Unavailable`]).
    #[error("the app database is unavailable")]
    DatabaseUnavailable(#[source] anyhow::Error),
    #[error("something went wrong on our side")]
    Internal(#[source] anyhow::Error),
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        if err.chain().any(|cause| cause.is::<crate::db::Unavailable>()) {
            AppError::DatabaseUnavailable(err)
        } else {
            AppError::Internal(err)
        }
    }
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: String,
}

impl AppError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid { code, message: message.into() }
    }

    /// The stable machine-readable code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid { code, .. } => code,
            AppError::BadRequest(_) => "bad_request",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::BodyTooLarge(_) => "body_too_large",
            AppError::NotLoggedIn => "not_logged_in",
            AppError::WrongCredentials => "wrong_credentials",
            AppError::UsernameTaken(_) => "username_taken",
            AppError::UnknownProduct(_) => "unknown_product",
            AppError::NotFound => "not_found",
            AppError::UnknownSession => "unknown_session",
            AppError::NoRefreshTokens(_) => "no_refresh_tokens",
            AppError::InvalidRefreshToken => "invalid_refresh_token",
            AppError::CsrfMismatch => "csrf_mismatch",
            AppError::LabControlsOff => "lab_controls_off",
            AppError::AdminTokenNeeded => "admin_token_needed",
            AppError::LabControlFailed(_) => "lab_control_failed",
            AppError::TooManyAttempts { .. } => "too_many_attempts",
            AppError::TooManySignUps { .. } => "too_many_sign_ups",
            AppError::TooManyTokenGuesses { .. } => "too_many_token_guesses",
            AppError::HashingBusy => "busy",
            AppError::Store(StoreError::Unavailable(_)) => "session_store_unavailable",
            AppError::Store(StoreError::TooLarge { .. }) => "session_too_large",
            AppError::Store(StoreError::Conflict) => "session_conflict",
            AppError::Store(StoreError::Unsupported(_)) => "not_supported_by_strategy",
            AppError::Idempotency(KeyError::Malformed) => "invalid_idempotency_key",
            AppError::Idempotency(KeyError::Reused) => "idempotency_key_reused",
            AppError::DatabaseUnavailable(_) => "database_unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// A title for the HTML error page.
    pub fn title(&self) -> &'static str {
        match self {
            AppError::Store(StoreError::Unavailable(_)) => "Session store unavailable",
            AppError::DatabaseUnavailable(_) => "Database unavailable",
            AppError::Store(StoreError::TooLarge { .. }) => "Your session is full",
            AppError::NotFound | AppError::UnknownProduct(_) | AppError::UnknownSession => "Not found",
            AppError::NotLoggedIn | AppError::WrongCredentials => "Please log in",
            AppError::Internal(_) => "Something went wrong",
            _ => "That did not work",
        }
    }

    /// What the person can do about it, for the HTML page.
    pub fn hint(&self) -> &'static str {
        match self {
            AppError::Store(StoreError::Unavailable(_)) => {
                "This replica cannot reach the place where sessions live, so it cannot tell who you are; \
                 nothing was changed. Pages work again once the store is back: with compose, Docker restarts \
                 a store that crashed (one stopped by hand needs `docker compose start`); with `sessionlab \
                 lab`, the dashboard's Start button starts it. The dashboard (/lab) keeps working meanwhile. \
                 A shared session store is a single point of failure unless it is replicated."
            }
            AppError::DatabaseUnavailable(_) => {
                "This replica cannot reach the app database, where accounts and passwords live, so it cannot \
                 check a password or create an account right now. Every replica uses the same database, so \
                 try again once it is back."
            }
            AppError::Store(StoreError::TooLarge { .. }) => {
                "This strategy keeps the whole session in a cookie, and browsers refuse cookies over 4 KB. \
                 Your cart is unchanged; remove something first. Server-side stores have no such wall."
            }
            _ => "",
        }
    }

    /// Seconds after which trying again can work, for the `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::Store(StoreError::Unavailable(_)) | AppError::DatabaseUnavailable(_) => Some(2),
            AppError::TooManyAttempts { retry_after }
            | AppError::TooManySignUps { retry_after }
            | AppError::TooManyTokenGuesses { retry_after } => Some(*retry_after),
            AppError::HashingBusy => Some(1),
            _ => None,
        }
    }

    pub fn json_body(&self) -> ErrorBody<'static> {
        ErrorBody { error: self.code(), message: self.to_string() }
    }
}

impl From<CartError> for AppError {
    fn from(err: CartError) -> Self {
        AppError::invalid("invalid_quantity", err.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        AppError::Internal(err.into())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::NotLoggedIn | AppError::WrongCredentials => StatusCode::UNAUTHORIZED,
            AppError::UsernameTaken(_) => StatusCode::CONFLICT,
            AppError::UnknownProduct(_)
            | AppError::NotFound
            | AppError::UnknownSession
            | AppError::NoRefreshTokens(_) => StatusCode::NOT_FOUND,
            AppError::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            AppError::CsrfMismatch | AppError::LabControlsOff | AppError::AdminTokenNeeded => StatusCode::FORBIDDEN,
            AppError::LabControlFailed(_) => StatusCode::CONFLICT,
            AppError::TooManyAttempts { .. }
            | AppError::TooManySignUps { .. }
            | AppError::TooManyTokenGuesses { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::HashingBusy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(StoreError::Unavailable(_)) | AppError::DatabaseUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Store(StoreError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Store(StoreError::Conflict) => StatusCode::CONFLICT,
            AppError::Store(StoreError::Unsupported(_)) => StatusCode::NOT_FOUND,
            AppError::Idempotency(KeyError::Malformed) => StatusCode::BAD_REQUEST,
            AppError::Idempotency(KeyError::Reused) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The cause chain goes to the log (with the request's span); the client gets the summary.
        match self {
            AppError::Internal(err) => tracing::error!(error = ?err, "request failed"),
            AppError::Store(StoreError::Unavailable(err)) => {
                tracing::warn!(error = %format!("{err:#}"), "session store unavailable")
            }
            AppError::DatabaseUnavailable(err) => {
                tracing::warn!(error = %format!("{err:#}"), "app database unavailable")
            }
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after() {
            res.insert_header(("Retry-After", seconds.to_string()));
        }
        res.json(self.json_body())
    }
}
