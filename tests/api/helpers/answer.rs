//! A response read to the end, and assertions on its status, error shape, headers and cookies.

use super::*;

/// A response read to the end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    /// Sends `request` and reads the whole response; a transport error fails the test.
    pub async fn send(request: RequestBuilder) -> Answer {
        Answer::read(request.send().await.expect("request failed")).await
    }

    pub async fn read(response: Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading the response body");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// Panics (showing the body) unless the status is `code`.
    #[track_caller]
    pub fn expect(self, code: u16) -> Answer {
        assert_eq!(
            self.status.as_u16(),
            code,
            "expected HTTP {code}, got {} with body {:?}",
            self.status,
            self.text
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is visible ASCII"))
    }

    /// All `Set-Cookie` headers, parsed.
    pub fn set_cookies(&self) -> Vec<Cookie<'static>> {
        set_cookies(&self.headers)
    }

    /// The `Set-Cookie` for `name`; panics if absent or repeated.
    #[track_caller]
    pub fn cookie(&self, name: &str) -> Cookie<'static> {
        let found: Vec<_> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.name() == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one Set-Cookie named {name}, got {:?}",
            self.headers.get_all(SET_COOKIE)
        );
        found.into_iter().next().unwrap()
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.set_cookies().iter().any(|c| c.name() == name)
    }

    #[track_caller]
    pub fn assert_no_store(&self) {
        let value = self
            .header("cache-control")
            .unwrap_or_else(|| panic!("no Cache-Control header in {:?}", self.headers));
        assert!(
            value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-store")),
            "Cache-Control is {value:?}, expected no-store"
        );
    }

    /// Asserts the contract's JSON error shape and returns the body.
    #[track_caller]
    pub fn problem(&self, code: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            code,
            "expected HTTP {code}, got {} with body {:?}",
            self.status,
            self.text
        );
        assert_problem_shape(self)
    }
}

/// The error shape without the status check: `Content-Type: application/json`,
/// `type`, `title` (reason phrase), `status` (number) and a non-empty `detail`.
#[track_caller]
pub fn assert_problem_shape(answer: &Answer) -> Value {
    let content_type = answer.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "error Content-Type is {content_type:?} (status {}, body {:?})",
        answer.status,
        answer.text
    );
    let body = answer.json();
    let detail = body["detail"].as_str().unwrap_or_else(|| {
        panic!(
            "error body has no string detail: {body} (status {})",
            answer.status
        )
    });
    assert!(!detail.trim().is_empty(), "empty detail in {body}");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(answer.status.as_u16())),
        "status field of {body}"
    );
    assert_eq!(body["type"], json!("about:blank"), "type field of {body}");
    assert_eq!(
        body["title"].as_str(),
        answer.status.canonical_reason(),
        "title field of {body}"
    );
    body
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<Cookie<'static>> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().expect("Set-Cookie is visible ASCII").to_owned();
            Cookie::parse(text.clone())
                .unwrap_or_else(|e| panic!("unparsable Set-Cookie {text:?}: {e}"))
        })
        .collect()
}

/// Max-Age in whole seconds.
#[track_caller]
pub fn max_age_secs(cookie: &Cookie<'_>) -> i64 {
    cookie
        .max_age()
        .unwrap_or_else(|| panic!("cookie {cookie} has no Max-Age"))
        .whole_seconds()
}

/// A clearing cookie: right name, empty value, Max-Age=0, Path=/.
#[track_caller]
pub fn assert_clearing_cookie(cookie: &Cookie<'_>, name: &str) {
    assert_eq!(cookie.name(), name);
    assert_eq!(
        cookie.value(),
        "",
        "clearing cookie must be empty: {cookie}"
    );
    assert_eq!(max_age_secs(cookie), 0, "clearing cookie Max-Age: {cookie}");
    assert_eq!(cookie.path(), Some("/"), "clearing cookie Path: {cookie}");
}

/// The attributes a browser matches a cookie by, and the security flags.
#[track_caller]
pub fn assert_same_attributes(a: &Cookie<'_>, b: &Cookie<'_>) {
    assert_eq!(a.name(), b.name(), "name: {a} vs {b}");
    assert_eq!(a.path(), b.path(), "Path: {a} vs {b}");
    assert_eq!(a.domain(), b.domain(), "Domain: {a} vs {b}");
    assert_eq!(a.same_site(), b.same_site(), "SameSite: {a} vs {b}");
    assert_eq!(
        a.secure().unwrap_or(false),
        b.secure().unwrap_or(false),
        "Secure: {a} vs {b}"
    );
    assert_eq!(
        a.http_only().unwrap_or(false),
        b.http_only().unwrap_or(false),
        "HttpOnly: {a} vs {b}"
    );
}

pub fn with_headers(mut request: RequestBuilder, headers: &[(&str, &str)]) -> RequestBuilder {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

pub fn credentials(username: &str, password: &str) -> Value {
    json!({ "username": username, "password": password })
}
