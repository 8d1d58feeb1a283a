//! Fuzz target `cookie_token`: the session cookie as the server reads it, and the token inside.
//!
//! Every request that needs a user goes through `SessionCookies::read` (the `Cookie` header) and
//! `SessionToken::parse` and `SessionToken::hash`, with bytes the client chooses. This target feeds
//! them arbitrary input and checks:
//!
//! - a value `SessionToken::parse` accepts is exactly 43 characters of canonical base64url for 32
//!   bytes (it re-encodes to itself), and its hash is the hex SHA-256 of the text;
//! - every 32-byte token parses;
//! - the cookie `SessionCookies::issue` sets for a token, sent back by a client in a `Cookie` header
//!   among any other cookies (in the same header or in headers of their own, as HTTP/2 sends them),
//!   is read back as that token, unless another cookie could itself carry our cookie's name;
//! - the cookie name may be any `COOKIE_NAME` the real configuration accepts.
#![no_main]

use actix_web::cookie::time::Duration;
use actix_web::cookie::Cookie;
use actix_web::http::header::HeaderValue;
use actix_web::test::TestRequest;
use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tessera::auth::cookie::SessionCookies;
use tessera::config::Settings;
use tessera::domain::SessionToken;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Tried as a token on its own.
    raw: &'a str,
    /// A token the server could have issued.
    token_bytes: [u8; 32],
    /// Other cookies sent before and after ours: any bytes.
    before: Vec<&'a [u8]>,
    after: Vec<&'a [u8]>,
    /// Each element of `before` and `after` in a `Cookie` header of its own, instead of one
    /// header joined with `; `.
    separate_headers: bool,
    /// `COOKIE_NAME`, through the real configuration; `None` (or a refused name) is the default.
    cookie_name: Option<&'a str>,
    max_age_seconds: i64,
}

fn check_token(token: &SessionToken) {
    let text = token.expose();
    assert_eq!(text.len(), 43, "{text:?}");
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .expect("an accepted token is base64url");
    assert_eq!(bytes.len(), 32);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&bytes),
        text,
        "an accepted token is the canonical encoding of its bytes"
    );
    let hash = token.hash();
    assert_eq!(hash, hex::encode(Sha256::digest(text.as_bytes())));
    assert!(
        !format!("{token:?}").contains(text),
        "Debug shows the token"
    );
}

fn cookies_for(name: Option<&str>) -> SessionCookies {
    let configured = name.and_then(|name| {
        Settings::from_lookup(|var| (var == "COOKIE_NAME").then(|| name.to_owned())).ok()
    });
    let settings = match configured {
        Some(settings) => settings,
        None => Settings::from_lookup(|_| None).expect("the defaults are valid"),
    };
    SessionCookies::new(settings.cookie)
}

fn header(value: &[u8]) -> Option<HeaderValue> {
    // A value HeaderValue refuses (control characters) never reaches the server.
    HeaderValue::from_bytes(value).ok()
}

fuzz_target!(|input: Input<'_>| {
    if let Some(token) = SessionToken::parse(input.raw) {
        assert_eq!(token.expose(), input.raw);
        check_token(&token);
    }

    let issued = URL_SAFE_NO_PAD.encode(input.token_bytes);
    let token = SessionToken::parse(&issued).expect("every 32-byte token parses");
    check_token(&token);

    let cookies = cookies_for(input.cookie_name);
    let name = cookies.name().to_owned();

    // What the server sends.
    let set_cookie = cookies.issue(&token, input.max_age_seconds);
    assert!(set_cookie.header_value().is_ok(), "{set_cookie:?}");
    // Debug shows the name and never the value (a configured name may itself look like a token:
    // found by this target, so the whole text is compared rather than searched).
    assert_eq!(
        format!("{set_cookie:?}"),
        format!("SetCookie({name}=[redacted])")
    );
    let sent = Cookie::parse(set_cookie.to_string()).expect("Set-Cookie parses");
    assert_eq!(sent.name(), name);
    assert_eq!(sent.value(), token.expose());
    assert_eq!(
        sent.max_age(),
        Some(Duration::seconds(input.max_age_seconds.max(0)))
    );
    let cleared = Cookie::parse(cookies.clear().to_string()).expect("the clearing cookie parses");
    assert_eq!((cleared.name(), cleared.value()), (name.as_str(), ""));
    assert_eq!(cleared.max_age(), Some(Duration::ZERO));

    // What the client sends back, among other cookies.
    let ours = format!("{name}={issued}");
    let mut headers: Vec<Vec<u8>> = Vec::new();
    if input.separate_headers {
        headers.extend(input.before.iter().map(|c| c.to_vec()));
        headers.push(ours.clone().into_bytes());
        headers.extend(input.after.iter().map(|c| c.to_vec()));
    } else {
        let mut all: Vec<&[u8]> = input.before.clone();
        all.push(ours.as_bytes());
        all.extend(input.after.iter().copied());
        headers.push(all.join(&b"; "[..]));
    }
    let mut req = TestRequest::default();
    for value in &headers {
        let Some(value) = header(value) else {
            return;
        };
        req = req.append_header(("cookie", value));
    }
    let req = req.to_http_request();

    // The server's reading of it: cookie, then token, then hash.
    let read = cookies.candidates(&req);
    for raw in &read {
        if let Some(token) = SessionToken::parse(raw) {
            check_token(&token);
        }
    }

    // An earlier cookie can only come before ours if it carries our exact name (names are
    // matched byte for byte, never decoded); ours is then one of the candidates tried.
    let could_shadow = |other: &&[u8]| other.windows(name.len()).any(|w| w == name.as_bytes());
    if !input.before.iter().any(could_shadow) {
        assert_eq!(
            read.first().map(String::as_str),
            Some(issued.as_str()),
            "our cookie was not read from {headers:?}"
        );
    }
});
