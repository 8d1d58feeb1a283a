//! Usernames: 3-64 ASCII letters, digits and `_ . - @`, unique regardless of case.

use std::fmt;

/// A username that obeys the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 64;

impl Username {
    /// Checks `raw` against the rules; the error says what is wrong in words a user understands.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(format!(
                "username must be {MIN_LEN} to {MAX_LEN} characters long (got {len})."
            ));
        }
        if let Some(bad) = raw.chars().find(|c| !is_allowed(*c)) {
            return Err(format!(
                "username may contain only letters, digits and _ . - @ (found {bad:?})."
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key stored in `users.username_key`.
    pub fn key(&self) -> String {
        key_of(&self.0)
    }
}

/// The lookup key of any string, valid or not: login uses it without validating, so that an
/// invalid name simply finds no user.
pub fn key_of(raw: &str) -> String {
    raw.to_ascii_lowercase()
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet_and_lengths() {
        for ok in ["abc", "Alice_1", "a.b-c@d", &"x".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_lengths_and_characters() {
        for bad in [
            "",
            "ab",
            &"x".repeat(65),
            "has space",
            "émile",
            "a/b",
            "semi;colon",
            "tab\tx",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_ignores_case() {
        assert_eq!(
            Username::parse("Alice").unwrap().key(),
            Username::parse("aLICE").unwrap().key()
        );
    }
}
