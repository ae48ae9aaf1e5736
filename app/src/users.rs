//! Accounts: validation, argon2id password hashing, register and log in.
//!
//! Each argon2 run takes 19 MiB and tens of milliseconds of a core, so a flood of sign-ups or
//! log-ins could exhaust a replica's memory and blocking threads. At most
//! `PASSWORD_HASH_CONCURRENCY` hashes run at once per replica (a small multiple of the cores);
//! one more is refused at once with 503 and `Retry-After: 1` rather than queued, and the
//! throttles ([`Throttle`]) bound how many a username or an address can ask for.
use std::sync::{LazyLock, OnceLock};

use tokio::sync::Semaphore;

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

use crate::{
    db::{Db, queries},
    error::AppError,
    session::{SessionUser, unix_now},
    throttle::Throttle,
};

pub const DEMO_USERS: [&str; 2] = ["alice", "bob"];
pub const DEMO_PASSWORD: &str = "sessionlab-demo";
pub const MIN_PASSWORD_LEN: usize = 8;
/// Argon2 cost grows with input; nobody needs a longer password than this.
pub const MAX_PASSWORD_LEN: usize = 256;

/// OWASP's recommended argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid params"))
}

static HASHING: OnceLock<Semaphore> = OnceLock::new();

/// Two hashes per core: enough to keep the cores busy while a few wait on the database.
pub fn default_hash_concurrency() -> usize {
    2 * std::thread::available_parallelism().map_or(1, usize::from)
}

/// Sets how many hashes may run at once in this process; the first call wins (at start-up).
pub fn limit_concurrent_hashes(permits: usize) {
    let _ = HASHING.set(Semaphore::new(permits.max(1)));
}

/// Runs `work` (a hash or a verification) on the blocking pool, or refuses at once with
/// [`AppError::HashingBusy`] when as many are already running as allowed.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    let permits = HASHING.get_or_init(|| Semaphore::new(default_hash_concurrency()));
    let _permit = permits.try_acquire().map_err(|_| AppError::HashingBusy)?;
    Ok(tokio::task::spawn_blocking(work).await.map_err(anyhow::Error::from)?)
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(argon2().hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Checked against when the username does not exist, so both failures take the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("not-a-real-password").expect("hashing works"));

/// A username as stored: what a person typed, without surrounding spaces and in lower case. Phones
/// capitalise the first letter of a field, so "Alice" must be alice, not a rejected form. Only
/// ASCII letters are folded: Unicode case folding would map other characters (the Kelvin sign)
/// onto a-z.
pub fn typed_username(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

pub fn validate_username(username: &str) -> Result<(), AppError> {
    let ok = (3..=32).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid("invalid_username", "username must be 3 to 32 characters of a-z, 0-9 and _"))
    }
}

pub fn validate_password(password: &str) -> Result<(), AppError> {
    match password.chars().count() {
        n if n < MIN_PASSWORD_LEN => Err(AppError::invalid(
            "password_too_short",
            format!("password must be at least {MIN_PASSWORD_LEN} characters"),
        )),
        _ if password.len() > MAX_PASSWORD_LEN => {
            Err(AppError::invalid("password_too_long", format!("password must be at most {MAX_PASSWORD_LEN} bytes")))
        }
        _ => Ok(()),
    }
}

/// Creates an account: throttled per address, since each sign-up costs a hash.
pub async fn register(
    db: &Db,
    throttle: &Throttle,
    username: &str,
    password: &str,
    ip: &str,
) -> Result<SessionUser, AppError> {
    let username = &typed_username(username);
    validate_username(username)?;
    validate_password(password)?;
    throttle.sign_up(ip).await?;
    let password = password.to_owned();
    let hash = hashing(move || hash_password(&password)).await??;
    let name = username.to_owned();
    let row = db.run(move |conn| Ok(queries::insert_user(conn, &name, &hash, unix_now())?)).await?;
    let row = row.ok_or_else(|| AppError::UsernameTaken(username.to_owned()))?;
    Ok(SessionUser { id: row.id, username: row.username })
}

pub async fn authenticate(db: &Db, username: &str, password: &str) -> Result<SessionUser, AppError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AppError::WrongCredentials);
    }
    let name = username.to_owned();
    let row = db.run(move |conn| Ok(queries::find_user(conn, &name)?)).await?;
    let password = password.to_owned();
    let hash = row.as_ref().map_or_else(|| DUMMY_HASH.clone(), |r| r.password_hash.clone());
    let matches = hashing(move || verify_password(&password, &hash)).await?;
    match row {
        Some(row) if matches => Ok(SessionUser { id: row.id, username: row.username }),
        _ => Err(AppError::WrongCredentials),
    }
}

/// Logs a user in, throttled: refused with 429 while the username or the address has too many
/// recent failures. The attempt is counted before the password is checked ([`Throttle::attempt`]);
/// a success clears the username's count, a wrong password stays counted.
pub async fn log_in(
    db: &Db,
    throttle: &Throttle,
    username: &str,
    password: &str,
    ip: &str,
) -> Result<SessionUser, AppError> {
    // One throttle bucket per account, however it was capitalised.
    let username = &typed_username(username);
    let key: String = username.chars().take(64).collect();
    let attempt = throttle.attempt(&key, ip).await?;
    match authenticate(db, username, password).await {
        Ok(user) => {
            throttle.succeeded(attempt).await?;
            Ok(user)
        }
        Err(AppError::WrongCredentials) => {
            throttle.failed(attempt);
            Err(AppError::WrongCredentials)
        }
        Err(other) => {
            throttle.abandoned(attempt).await?;
            Err(other)
        }
    }
}

/// Replaces `user`'s password after checking the current one (throttled like a log-in: a stolen
/// session must not become a way to guess the password). Ending the user's other sessions is
/// the caller's part: it holds the session.
pub async fn change_password(
    db: &Db,
    throttle: &Throttle,
    user: &SessionUser,
    current: &str,
    new: &str,
    ip: &str,
) -> Result<(), AppError> {
    validate_password(new)?;
    match log_in(db, throttle, &user.username, current, ip).await {
        Ok(checked) if checked.id == user.id => {}
        Ok(_) | Err(AppError::WrongCredentials) => {
            return Err(AppError::invalid("wrong_password", "your current password is not right"));
        }
        Err(other) => return Err(other),
    }
    let new = new.to_owned();
    let hash = hashing(move || hash_password(&new)).await??;
    let user_id = user.id;
    db.run(move |conn| Ok(queries::set_password_hash(conn, user_id, &hash)?)).await?;
    Ok(())
}

/// (username, argon2 hash) pairs for the demo accounts.
pub fn demo_accounts() -> anyhow::Result<Vec<(String, String)>> {
    DEMO_USERS.iter().map(|name| Ok(((*name).to_owned(), hash_password(DEMO_PASSWORD)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_rule() {
        for good in ["bob", "alice_2", &"a".repeat(32)] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        assert_eq!(typed_username(" Alice_2 "), "alice_2");
        assert_eq!(typed_username("\u{212A}elvin"), "\u{212A}elvin", "no Unicode folding onto a-z");
        for bad in ["ab", "Alice", "al ice", "al-ice", "ålice", &"a".repeat(33), "x'; DROP TABLE users;--"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(validate_password("short").is_err());
    }
}
