//! tessera: a JSON REST auth API whose login sessions live in a database table.
//!
//! The binary (`src/main.rs`) only reads the configuration and runs [`startup::Application`];
//! everything else lives here so the integration tests can start the real server on port 0.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod csrf;
pub mod db;
pub mod domain;
pub mod error;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod purge;
pub mod redact;
pub mod request_span;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
