//! Passwords: 8-256 characters, never printed.

use std::fmt;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

/// A password that obeys the length rules. Its `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks the length, counted in characters.
    pub fn parse(raw: String) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(format!(
                "password must be {MIN_LEN} to {MAX_LEN} characters long (got {len})."
            ));
        }
        Ok(Self(raw))
    }

    /// Wraps a password offered at login, which is only ever compared, never stored.
    pub fn offered(raw: String) -> Self {
        Self(raw)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("ééééééé".into()).is_err());
        assert!(Password::parse("éééééééé".into()).is_ok());
        assert!(Password::parse("x".repeat(256)).is_ok());
        assert!(Password::parse("x".repeat(257)).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
