//! sessionlab: a login + shopping-cart app whose session state can live in seven different places
//! (and, as the baseline, in the stock actix-session stack), built to be run as three replicas
//! behind HAProxy and compared.
//!
//! Where things are:
//! - [`session`]: the whole session story: the store abstraction, one file per strategy, the
//!   middleware and the typed [`session::Session`] handlers use.
//! - [`routes`]: HTML pages and the JSON API; they never name a backend.
//! - [`lab`]: the native topology (replicas, HAProxy, private stores) used by `sessionlab lab`,
//!   the integration tests and the benchmarks alike.
pub mod cart;
pub mod catalog;
pub mod client_addr;
pub mod compare;
pub mod config;
pub mod cookies;
pub mod db;
pub mod error;
pub mod haproxy_admin;
pub mod lab;
pub mod metrics;
pub mod routes;
pub mod secrets;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod throttle;
pub mod users;
