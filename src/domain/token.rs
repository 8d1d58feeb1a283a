//! Session tokens: 256 bits from the OS CSPRNG, sent as URL-safe base64, stored only as SHA-256.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 32;
/// Length of the base64url (unpadded) text of [`TOKEN_BYTES`] bytes.
const TOKEN_TEXT_LEN: usize = 43;

/// The secret a client holds in its cookie. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh token from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a cookie value only if it has the exact shape of a token; anything else cannot
    /// match a session and is refused without a database query.
    pub fn parse(raw: &str) -> Option<Self> {
        let well_formed = raw.len() == TOKEN_TEXT_LEN
            && URL_SAFE_NO_PAD
                .decode(raw)
                .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
        well_formed.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the token text: what `sessions.token_hash` holds.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_distinct_and_parse_back() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_TEXT_LEN);
        assert_eq!(SessionToken::parse(a.expose()), Some(a));
    }

    #[test]
    fn malformed_values_are_refused() {
        let good = SessionToken::generate();
        let mut tampered = good.expose().to_owned();
        tampered.replace_range(0..1, "*");
        for bad in [
            "",
            "short",
            &tampered,
            &format!("{}A", good.expose()),
            &"=".repeat(43),
        ] {
            assert!(SessionToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hash_is_hex_sha256_and_debug_is_redacted() {
        let t = SessionToken::generate();
        assert_eq!(t.hash().len(), 64);
        assert!(t.hash().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
