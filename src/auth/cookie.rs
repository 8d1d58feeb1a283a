//! Building, clearing and reading the session cookie with the configured attributes.

use std::fmt;

use actix_web::cookie::time::{Duration, OffsetDateTime};
use actix_web::cookie::Cookie;
use actix_web::http::header::{
    HeaderName, HeaderValue, InvalidHeaderValue, TryIntoHeaderPair, COOKIE, SET_COOKIE,
};
use actix_web::HttpRequest;

use crate::config::CookieSettings;
use crate::domain::SessionToken;

/// A `Set-Cookie` header for the session cookie. actix's cookie type predates CHIPS, so the
/// `Partitioned` attribute is appended here; responses add it with `append_header`.
#[derive(Clone, PartialEq)]
pub struct SetCookie {
    cookie: Cookie<'static>,
    partitioned: bool,
}

impl SetCookie {
    pub fn name(&self) -> &str {
        self.cookie.name()
    }

    pub fn header_value(&self) -> Result<HeaderValue, InvalidHeaderValue> {
        HeaderValue::from_str(&self.to_string())
    }
}

impl fmt::Display for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cookie)?;
        if self.partitioned {
            f.write_str("; Partitioned")?;
        }
        Ok(())
    }
}

/// Its value is a session token: never printed.
impl fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetCookie({}=[redacted])", self.cookie.name())
    }
}

impl TryIntoHeaderPair for SetCookie {
    type Error = InvalidHeaderValue;

    fn try_into_pair(self) -> Result<(HeaderName, HeaderValue), Self::Error> {
        Ok((SET_COOKIE, self.header_value()?))
    }
}

/// At most this many distinct values of the session cookie are tried per request, so that a
/// header stuffed with duplicates cannot make one request cost many database reads.
pub const MAX_CANDIDATES: usize = 4;

/// `name=value` of one cookie pair, with spaces and tabs trimmed around both and the value's
/// surrounding double quotes removed; `None` without `=` or with an empty name.
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = pair.iter().position(|&b| b == b'=')?;
    let key = trim_wsp(&pair[..at]);
    let mut value = trim_wsp(&pair[at + 1..]);
    if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
        value = &value[1..value.len() - 1];
    }
    (!key.is_empty()).then_some((key, value))
}

/// Trims SP and HTAB only (RFC 6265's WSP), never other whitespace.
fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let is_wsp = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_wsp(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_wsp(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// The session cookie as configured.
#[derive(Debug, Clone)]
pub struct SessionCookies {
    settings: CookieSettings,
}

impl SessionCookies {
    pub fn new(settings: CookieSettings) -> Self {
        Self { settings }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The cookie carrying `token`, living `max_age_seconds`.
    pub fn issue(&self, token: &SessionToken, max_age_seconds: i64) -> SetCookie {
        let mut cookie = self.base(token.expose().to_owned());
        cookie.set_max_age(Duration::seconds(max_age_seconds.max(0)));
        self.header(cookie)
    }

    /// A cookie with the same name and attributes that makes the browser drop it.
    pub fn clear(&self) -> SetCookie {
        let mut cookie = self.base(String::new());
        cookie.set_max_age(Duration::ZERO);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        self.header(cookie)
    }

    fn header(&self, cookie: Cookie<'static>) -> SetCookie {
        SetCookie {
            cookie,
            partitioned: self.settings.partitioned,
        }
    }

    /// The values of every cookie the request carries under the session cookie's name, in the
    /// order sent, without duplicates and at most [`MAX_CANDIDATES`] of them. Browsers send one
    /// cookie per matching (domain, path) pair, so a sibling subdomain can add a second
    /// `access_token` beside ours: each value is a candidate, to be tried in turn.
    ///
    /// Each `;`-separated pair is parsed on its own (RFC 6265 section 5.2): split at the first
    /// `=`, spaces and tabs trimmed around name and value, the value's surrounding double quotes
    /// removed. The name must equal the configured one **byte for byte**: it is not
    /// percent-decoded, and no other whitespace (U+00A0, U+2000, ...) is trimmed, so
    /// `access%5Ftoken` or `\u{a0}access_token` is another cookie, never ours. A pair that is not
    /// UTF-8 is skipped on its own (actix's `HttpRequest::cookie` drops every cookie of the
    /// request then: another site on the domain setting a Latin-1 cookie would log users out).
    pub fn candidates(&self, req: &HttpRequest) -> Vec<String> {
        let name = self.settings.name.as_bytes();
        let mut found: Vec<String> = Vec::new();
        let pairs = req
            .headers()
            .get_all(COOKIE)
            .flat_map(|header| header.as_bytes().split(|&b| b == b';'));
        for pair in pairs {
            let Some((key, value)) = split_pair(pair) else {
                continue;
            };
            if key != name {
                continue;
            }
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            if !found.iter().any(|seen| seen == value) {
                found.push(value.to_owned());
                if found.len() == MAX_CANDIDATES {
                    break;
                }
            }
        }
        found
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut builder = Cookie::build(self.settings.name.clone(), value)
            .path("/")
            .http_only(self.settings.http_only)
            .secure(self.settings.secure)
            .same_site(self.settings.same_site);
        if let Some(domain) = &self.settings.domain {
            builder = builder.domain(domain.clone());
        }
        builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::cookie::SameSite;

    fn cookies(domain: Option<&str>) -> SessionCookies {
        SessionCookies::new(CookieSettings {
            name: "access_token".into(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            domain: domain.map(str::to_owned),
            partitioned: false,
        })
    }

    #[test]
    fn issued_cookie_has_every_attribute() {
        let token = SessionToken::generate();
        let c = cookies(Some("example.com")).issue(&token, 60).cookie;
        assert_eq!(c.value(), token.expose());
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.max_age(), Some(Duration::seconds(60)));
        assert_eq!(c.domain(), Some("example.com"));
    }

    #[test]
    fn partitioned_is_appended_and_the_token_never_debug_printed() {
        let token = SessionToken::generate();
        let mut jar = cookies(None);
        jar.settings.partitioned = true;
        jar.settings.same_site = SameSite::None;
        let header = jar.issue(&token, 60).to_string();
        assert!(header.ends_with("; Partitioned"), "{header}");
        assert!(header.contains("SameSite=None"));
        assert!(!format!("{:?}", jar.issue(&token, 60)).contains(token.expose()));
        assert!(!cookies(None).clear().to_string().contains("Partitioned"));
    }

    fn request(cookie_headers: &[&[u8]]) -> HttpRequest {
        let mut req = actix_web::test::TestRequest::default();
        for value in cookie_headers {
            req = req.append_header((COOKIE, HeaderValue::from_bytes(value).unwrap()));
        }
        req.to_http_request()
    }

    /// Found by the `cookie_token` fuzz target: a cookie that is not UTF-8 hid the session cookie.
    #[test]
    fn another_cookie_that_is_not_utf8_does_not_hide_ours() {
        let token = SessionToken::generate();
        let ours = format!("access_token={}", token.expose());
        let jar = cookies(None);
        let joined = [&b"legacy=caf\xe9; "[..], ours.as_bytes()].concat();
        assert_eq!(jar.candidates(&request(&[&joined])), [token.expose()]);
        let separate = request(&[b"legacy=caf\xe9", ours.as_bytes()]);
        assert_eq!(jar.candidates(&separate), [token.expose()]);
    }

    #[test]
    fn every_well_formed_cookie_of_our_name_is_a_candidate() {
        let jar = cookies(None);
        let req = request(&[b"nameless; =empty; access_token=first; access_token=\"second\""]);
        assert_eq!(jar.candidates(&req), ["first", "second"]);
        assert!(jar.candidates(&request(&[b"other=1"])).is_empty());
        assert!(jar.candidates(&request(&[])).is_empty());
        let spaced = request(&[b"  access_token = value \t;x=y"]);
        assert_eq!(jar.candidates(&spaced), ["value"]);
        let repeated = request(&[b"access_token=a; access_token=a", b"access_token=b"]);
        assert_eq!(jar.candidates(&repeated), ["a", "b"]);
        let many: Vec<String> = (0..10).map(|i| format!("access_token=v{i}")).collect();
        let many = request(&[many.join("; ").as_bytes()]);
        assert_eq!(jar.candidates(&many).len(), MAX_CANDIDATES);
    }

    /// Issue 10, item 1: names were percent-decoded and Unicode-trimmed, so look-alike cookies
    /// were read as the session cookie.
    #[test]
    fn names_match_byte_for_byte() {
        let jar = cookies(None);
        for spoof in [
            "access%5Ftoken=x",
            "access_token%20=x",
            "%61ccess_token=x",
            "\u{a0}access_token=x",
            "\u{2000}access_token=x",
            "access_token\u{3000}=x",
            "Access_Token=x",
        ] {
            let req = request(&[spoof.as_bytes()]);
            assert!(
                jar.candidates(&req).is_empty(),
                "{spoof:?} was read as ours"
            );
        }
        let mut host = cookies(None);
        host.settings.name = "__Host-access_token".into();
        let req = request(&[b"__Host%2Daccess_token=x; __host-access_token=y"]);
        assert!(host.candidates(&req).is_empty());
        let req = request(&[b"__Host%2Daccess_token=x; __Host-access_token=real"]);
        assert_eq!(host.candidates(&req), ["real"]);
    }

    #[test]
    fn clearing_cookie_keeps_the_attributes_with_max_age_zero() {
        let c = cookies(None).clear().cookie;
        assert_eq!(c.value(), "");
        assert_eq!(c.max_age(), Some(Duration::ZERO));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.secure(), Some(true));
    }
}
