//! Authentication: password hashing, the session cookie, and the extractor that turns a cookie into
//! the current user.

pub mod cache;
pub mod client;
pub mod cookie;
pub mod password;
pub mod session;
pub mod sync;

pub use session::CurrentSession;
