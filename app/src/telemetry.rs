//! Structured logs: one line per request (see `routes::access_log`), never a session ID or password.
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::Settings;

pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // try_init: tests may build several apps in one process; the first subscriber wins.
    let _ = if settings.log_json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}
