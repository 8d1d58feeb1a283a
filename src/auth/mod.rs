//! Authentication: password hashing, the session cookie, and the extractor that turns a cookie into
//! the current user.

pub mod client;
pub mod cookie;
pub mod password;
pub mod session;

pub use session::CurrentSession;
