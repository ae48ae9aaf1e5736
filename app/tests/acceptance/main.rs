//! Acceptance tests through the native lab: real replicas, real HAProxy, real stores.
mod app_database;
mod browser;
mod compare;
mod compose;
mod dashboard;
mod decoding;
mod docker;
mod harness;
mod jwt;
mod lab;
mod metrics;
mod ops;
mod redis_store;
mod security;
mod store_contract;
mod strategies;
mod suite;
