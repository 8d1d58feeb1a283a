//! Integration tests for tessera: one binary, the real server on port 0 per test,
//! on SQLite always and on PostgreSQL when `TEST_DATABASE_URL` is set.

#[macro_use]
mod helpers;

mod account;
mod config;
mod cookie_names;
mod cookies;
mod cors;
mod csrf;
mod edges;
mod errors;
mod events;
mod hardening_logs_net;
mod health;
mod health_probes;
mod login;
mod logout;
mod me;
mod metrics_exposure;
mod multi_instance;
mod observability;
mod openapi;
mod outage;
mod password_change;
mod proxy;
mod purge;
mod register;
mod revocation;
mod session_cache;
mod sessions;
mod storage;
mod sync_channel;
mod throttle;
mod throttle_bursts;
