//! tessera: a JSON REST auth API whose login sessions live in a database table.
//!
//! The binary (`src/main.rs`) only reads the configuration and runs [`startup::Application`];
//! everything else lives here so the integration tests can start the real server on port 0.

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
