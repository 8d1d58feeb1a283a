//! Validated values: once a handler holds one of these, it no longer needs to check the raw input.

pub mod fingerprint;
pub mod password;
pub mod token;
pub mod username;

pub use fingerprint::client_fingerprint;
pub use password::Password;
pub use token::SessionToken;
pub use username::Username;
