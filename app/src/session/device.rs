//! "Your devices": what a logged-in session remembers about where it is used, and how the list of
//! a user's sessions is shown.
//!
//! The record lives in the session itself ([`super::SessionData::device`]), written at log-in and
//! refreshed by a normal session write when it is older than [`touch_interval`] — never on every
//! request, so a read stays one store round trip with no write. "Last seen" is therefore accurate
//! to that interval, and "replica" is the one that served the request which refreshed it.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{SessionData, unix_now};

/// How much of a User-Agent header is kept: enough for any real browser, bounded for garbage.
const MAX_USER_AGENT: usize = 512;
/// The longest "last seen" may lag behind.
const MAX_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// "Firefox 133 on Linux", from the User-Agent.
    pub label: String,
    pub ip: String,
    pub replica: String,
    /// Unix seconds of the last refresh.
    pub seen: i64,
}

/// How often an active session's device record is refreshed: a minute, or half the idle timeout
/// when that is shorter, so the record (and the per-user index entries that expire with it) never
/// lapses while the session is in use.
pub fn touch_interval(idle: Duration) -> Duration {
    MAX_TOUCH_INTERVAL.min(idle / 2).max(Duration::from_secs(1))
}

/// The request's side of a device record: who is asking, from where, served by whom.
#[derive(Debug, Clone, Default)]
pub struct Client {
    user_agent: String,
    ip: String,
    replica: String,
}

impl Client {
    pub fn new(user_agent: Option<&str>, ip: String, replica: String) -> Self {
        let user_agent = user_agent.unwrap_or_default();
        let mut cut = user_agent.len().min(MAX_USER_AGENT);
        while !user_agent.is_char_boundary(cut) {
            cut -= 1;
        }
        Self { user_agent: user_agent[..cut].to_owned(), ip, replica }
    }

    pub fn device(&self) -> Device {
        Device { label: label(&self.user_agent), ip: self.ip.clone(), replica: self.replica.clone(), seen: unix_now() }
    }
}

/// Whether `data`'s device record should be refreshed now.
pub fn touch_due(data: &SessionData, idle: Duration) -> bool {
    data.user.is_some()
        && data.device.as_ref().is_none_or(|d| unix_now() - d.seen >= touch_interval(idle).as_secs() as i64)
}

/// A human label for a User-Agent: "Chrome 131 on Linux", "curl 8.11", or "Unknown device".
/// Parsing is woothee's (the project's maintained UA database), not a regex of our own.
pub fn label(user_agent: &str) -> String {
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let Some(ua) = parsed.filter(|ua| matches!(ua.category, "pc" | "smartphone" | "mobilephone" | "appliance")) else {
        // Tools and bots: their product token as they sent it ("curl 8.11.1") reads best.
        return user_agent
            .split_whitespace()
            .next()
            .filter(|product| product.chars().all(|c| c.is_ascii_graphic()))
            .map(|product| product.replace('/', " ").chars().take(40).collect())
            .unwrap_or_else(|| "Unknown device".into());
    };
    let major = ua.version.split('.').next().unwrap_or_default();
    let browser = if major.is_empty() || ua.version == woothee::woothee::VALUE_UNKNOWN {
        ua.name.to_owned()
    } else {
        format!("{} {major}", ua.name)
    };
    if ua.os == woothee::woothee::VALUE_UNKNOWN { browser } else { format!("{browser} on {}", ua.os) }
}

/// One of a user's sessions, as a store lists it. `key` is its storage key
/// ([`super::SessionId::storage_key`]): the public handle of a session, which cannot be turned
/// back into its cookie.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub created_at: i64,
    pub device: Option<Device>,
}

impl Listed {
    pub fn new(key: String, data: SessionData) -> Self {
        Self { key, created_at: data.created_at, device: data.device }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_tools_and_garbage_get_labels() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(label(firefox), "Firefox 133 on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(label(chrome), "Chrome 131 on Windows 10");
        assert_eq!(label("curl/8.11.1"), "curl 8.11.1");
        assert_eq!(label(""), "Unknown device");
        assert_eq!(label("\u{1}\u{2}"), "Unknown device");
    }

    #[test]
    fn long_user_agents_are_cut_on_a_character_boundary() {
        let client = Client::new(Some(&"é".repeat(400)), "1.2.3.4".into(), "app1".into());
        assert!(client.user_agent.len() <= MAX_USER_AGENT);
    }

    #[test]
    fn the_touch_interval_is_a_minute_or_half_the_idle_timeout() {
        assert_eq!(touch_interval(Duration::from_secs(1800)), Duration::from_secs(60));
        assert_eq!(touch_interval(Duration::from_secs(10)), Duration::from_secs(5));
        assert_eq!(touch_interval(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
