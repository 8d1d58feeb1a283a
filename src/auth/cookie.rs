//! Building, clearing and reading the session cookie with the configured attributes.

use actix_web::cookie::time::{Duration, OffsetDateTime};
use actix_web::cookie::Cookie;
use actix_web::HttpRequest;

use crate::config::CookieSettings;
use crate::domain::SessionToken;

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
    pub fn issue(&self, token: &SessionToken, max_age_seconds: i64) -> Cookie<'static> {
        let mut cookie = self.base(token.expose().to_owned());
        cookie.set_max_age(Duration::seconds(max_age_seconds.max(0)));
        cookie
    }

    /// A cookie with the same name and attributes that makes the browser drop it.
    pub fn clear(&self) -> Cookie<'static> {
        let mut cookie = self.base(String::new());
        cookie.set_max_age(Duration::ZERO);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        cookie
    }

    /// The raw value of the session cookie the request carries, if any.
    pub fn read(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(&self.settings.name)
            .map(|c| c.value().to_owned())
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
        })
    }

    #[test]
    fn issued_cookie_has_every_attribute() {
        let token = SessionToken::generate();
        let c = cookies(Some("example.com")).issue(&token, 60);
        assert_eq!(c.value(), token.expose());
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.max_age(), Some(Duration::seconds(60)));
        assert_eq!(c.domain(), Some("example.com"));
    }

    #[test]
    fn clearing_cookie_keeps_the_attributes_with_max_age_zero() {
        let c = cookies(None).clear();
        assert_eq!(c.value(), "");
        assert_eq!(c.max_age(), Some(Duration::ZERO));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.secure(), Some(true));
    }
}
