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

    /// The raw value of the session cookie the request carries, if any: the first cookie of that
    /// name in the `Cookie` header(s), percent-decoded. Each `;`-separated cookie is parsed on its
    /// own and one that cannot be (no `=`, an empty name, bytes that are not UTF-8) is skipped.
    /// actix's `HttpRequest::cookie` skips them too, except that bytes that are not UTF-8 make it
    /// drop every cookie of the request: another site on the domain setting a Latin-1 cookie would
    /// log its users out here.
    pub fn read(&self, req: &HttpRequest) -> Option<String> {
        req.headers()
            .get_all(COOKIE)
            .flat_map(|header| header.as_bytes().split(|&b| b == b';'))
            .filter_map(|pair| std::str::from_utf8(pair).ok())
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| Cookie::parse_encoded(pair).ok())
            .find(|cookie| cookie.name() == self.settings.name)
            .map(|cookie| cookie.value().to_owned())
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
        assert_eq!(
            jar.read(&request(&[&joined])).as_deref(),
            Some(token.expose())
        );
        let separate = request(&[b"legacy=caf\xe9", ours.as_bytes()]);
        assert_eq!(jar.read(&separate).as_deref(), Some(token.expose()));
    }

    #[test]
    fn the_first_well_formed_cookie_of_our_name_is_read() {
        let jar = cookies(None);
        let req = request(&[b"nameless; =empty; access_token=%41b; access_token=second"]);
        assert_eq!(jar.read(&req).as_deref(), Some("Ab"));
        assert_eq!(jar.read(&request(&[b"other=1"])), None);
        assert_eq!(jar.read(&request(&[])), None);
        let spaced = request(&[b"  access_token = value  ;x=y"]);
        assert_eq!(jar.read(&spaced).as_deref(), Some("value"));
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
