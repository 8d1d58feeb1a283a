//! The client fingerprint bound to a session at login and compared on every use.

use actix_web::http::header::{HeaderMap, ACCEPT_LANGUAGE, USER_AGENT};
use sha2::{Digest, Sha256};

use crate::config::FingerprintMode;

/// Hex SHA-256 of `"{user_agent}-{accept_language}"` (or of the User-Agent alone), a missing header
/// counting as the literal `unknown`. With [`FingerprintMode::Off`] the full formula is still
/// recorded, so that turning the check on later has something to compare.
pub fn client_fingerprint(mode: FingerprintMode, headers: &HeaderMap) -> String {
    let header = |name| {
        headers.get(name).map_or(
            &b"unknown"[..],
            |v: &actix_web::http::header::HeaderValue| v.as_bytes(),
        )
    };
    let mut hasher = Sha256::new();
    hasher.update(header(USER_AGENT));
    if mode != FingerprintMode::UserAgent {
        hasher.update(b"-");
        hasher.update(header(ACCEPT_LANGUAGE));
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(ua: Option<&str>, lang: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ua) = ua {
            h.insert(USER_AGENT, HeaderValue::from_str(ua).unwrap());
        }
        if let Some(lang) = lang {
            h.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(lang).unwrap());
        }
        h
    }

    #[test]
    fn full_mode_uses_the_replaced_designs_formula() {
        let expected = hex::encode(Sha256::digest(b"curl/8-en"));
        assert_eq!(
            client_fingerprint(FingerprintMode::Full, &headers(Some("curl/8"), Some("en"))),
            expected
        );
        let unknown = hex::encode(Sha256::digest(b"unknown-unknown"));
        assert_eq!(
            client_fingerprint(FingerprintMode::Full, &headers(None, None)),
            unknown
        );
    }

    #[test]
    fn user_agent_mode_ignores_the_language() {
        let a = client_fingerprint(FingerprintMode::UserAgent, &headers(Some("ua"), Some("en")));
        let b = client_fingerprint(FingerprintMode::UserAgent, &headers(Some("ua"), Some("fr")));
        assert_eq!(a, b);
        assert_eq!(a, hex::encode(Sha256::digest(b"ua")));
    }
}
