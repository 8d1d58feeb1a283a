//! One HTTP connection's worth of client, and what one request came to.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE, COOKIE, SET_COOKIE, USER_AGENT};
use reqwest::Method;

use crate::stats::Stats;

/// What one request came to.
pub enum Outcome {
    /// The server answered (status and the whole body were read).
    Response {
        status: u16,
        body: Vec<u8>,
        /// `name=value` of the first `Set-Cookie` that sets a non-empty cookie.
        cookie: Option<String>,
    },
    /// No complete answer within the per-request timeout.
    Timeout,
    /// Connection refused or reset, malformed answer, ...: what went wrong.
    Transport(String),
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The outcome of a state-changing request is unknown: the server may or may not have done it.
    pub fn uncertain(&self) -> bool {
        match self {
            Self::Response { status, .. } => *status >= 500,
            Self::Timeout | Self::Transport(_) => true,
        }
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        match self {
            Self::Response { body, .. } => serde_json::from_slice(body).ok(),
            _ => None,
        }
    }
}

/// A client that keeps (at most) one keep-alive connection: a worker sends one request at a time,
/// so each worker is one connection to the server.
pub struct Conn {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
    user_agent: HeaderValue,
}

impl Conn {
    pub fn new(base: &str, timeout: Duration, user_agent: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let user_agent = HeaderValue::from_str(user_agent)
            .map_err(|_| format!("--user-agent {user_agent:?} is not a valid header value"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
            user_agent,
        })
    }

    /// Sends one request and records it in `stats` under `label`.
    pub async fn call(
        &self,
        stats: &mut Stats,
        label: &'static str,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Outcome {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header(USER_AGENT, self.user_agent.clone())
            .timeout(self.timeout);
        if let Some(cookie) = cookie {
            req = req.header(COOKIE, cookie);
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let started = Instant::now();
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let cookie = session_cookie(resp.headers().get_all(SET_COOKIE).iter());
                match resp.bytes().await {
                    Ok(body) => Outcome::Response {
                        status,
                        body: body.to_vec(),
                        cookie,
                    },
                    Err(e) if e.is_timeout() => Outcome::Timeout,
                    Err(e) => Outcome::Transport(format!("reading the body: {}", error_chain(&e))),
                }
            }
            Err(e) if e.is_timeout() => Outcome::Timeout,
            Err(e) => Outcome::Transport(error_chain(&e)),
        };
        stats.record(label, started.elapsed(), &outcome);
        if matches!(outcome, Outcome::Transport(_)) {
            // The server is probably gone (killed, restarting): do not spin on refused connections.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        outcome
    }
}

/// reqwest's top-level message ("error sending request") hides the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `name=value` of the first cookie that is set (non-empty value, no `Max-Age=0`).
pub fn session_cookie<'a>(headers: impl Iterator<Item = &'a HeaderValue>) -> Option<String> {
    for value in headers {
        let Ok(text) = value.to_str() else { continue };
        let mut parts = text.split(';').map(str::trim);
        let Some(pair) = parts.next() else { continue };
        let Some((name, val)) = pair.split_once('=') else {
            continue;
        };
        let cleared = parts.any(|attr| attr.eq_ignore_ascii_case("max-age=0"));
        if !name.is_empty() && !val.is_empty() && !cleared {
            return Some(pair.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_set_cookie_and_skips_cleared_ones() {
        let cleared = HeaderValue::from_static("access_token=; Max-Age=0; Path=/");
        let set =
            HeaderValue::from_static("access_token=abc.def; HttpOnly; Path=/; Max-Age=604800");
        assert_eq!(
            session_cookie([&cleared, &set].into_iter()),
            Some("access_token=abc.def".to_owned())
        );
        assert_eq!(session_cookie([&cleared].into_iter()), None);
        let zero = HeaderValue::from_static("access_token=x; max-age=0");
        assert_eq!(session_cookie([&zero].into_iter()), None);
    }
}
