//! Integration tests for tessera: one binary, the real server on port 0 per test,
//! on SQLite always and on PostgreSQL when `TEST_DATABASE_URL` is set.

#[macro_use]
mod helpers;

mod config;
mod cookies;
mod cors;
mod errors;
mod health;
mod login;
mod logout;
mod me;
mod register;
mod storage;
