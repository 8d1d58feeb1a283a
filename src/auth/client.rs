//! Who is on the other end: the client IP (the socket peer, or `X-Forwarded-For` read right to
//! left only through trusted proxies, so a client cannot forge its address) and the User-Agent.

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, USER_AGENT};
use actix_web::{web, FromRequest, HttpRequest};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest User-Agent kept with a session or an event.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// The request's client, as far as it can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The address throttles count by: the IP itself, or its /64 for IPv6, since one IPv6
    /// client usually holds a whole /64 and could otherwise change address per attempt.
    pub fn throttle_key(&self) -> String {
        match self.ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => ipnet::Ipv6Net::new(v6, 64)
                .map(|net| net.trunc().to_string())
                .unwrap_or_else(|_| self.ip.clone()),
            _ => self.ip.clone(),
        }
    }

    pub fn of(req: &HttpRequest, trusted: &[IpNet]) -> Self {
        let ip = req
            .peer_addr()
            .map(|peer| client_ip(peer.ip(), req.headers(), trusted).to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let user_agent = req.headers().get(USER_AGENT).map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(MAX_USER_AGENT_CHARS)
                .collect()
        });
        Self { ip, user_agent }
    }
}

impl FromRequest for ClientInfo {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.settings.trusted_proxies.as_slice())
            .unwrap_or_default();
        ready(Ok(Self::of(req, trusted)))
    }
}

/// The peer, unless it is a trusted proxy: then the rightmost `X-Forwarded-For` entry that is not
/// itself trusted. An unparsable entry ends the walk at the last address known good.
///
/// The header is split into entries as bytes: an entry that is not text (a client may send any
/// byte, and proxies append their entry to the same header) is one more unparsable entry. Skipping
/// the whole header instead would ignore the address the proxy appended, so that a client could
/// pass itself off as an address written further left, or as the proxy that all its users share.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|hop| std::str::from_utf8(hop).ok().map(str::trim))
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop.and_then(|hop| hop.parse::<IpAddr>().ok()) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for".parse().unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            client_ip(peer, &xff("1.2.3.4"), &nets(&["10.0.0.0/8"])),
            peer
        );
    }

    #[test]
    fn trusted_hops_are_skipped_right_to_left() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let h = xff("6.6.6.6, 198.51.100.7, 10.0.0.2");
        assert_eq!(
            client_ip(peer, &h, &nets(&["10.0.0.0/8"])).to_string(),
            "198.51.100.7"
        );
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        let client = |ip: &str| ClientInfo {
            ip: ip.into(),
            user_agent: None,
        };
        assert_eq!(
            client("2001:db8:1:2:aaaa::1").throttle_key(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client("2001:db8:1:2:bbbb::9").throttle_key(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(client("192.0.2.1").throttle_key(), "192.0.2.1");
    }

    /// Found by the `client_headers` fuzz target: a header that was not all ASCII was skipped.
    #[test]
    fn bytes_that_are_not_text_are_an_unparsable_entry() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let mut h = xff("6.6.6.6");
        h.append(
            "x-forwarded-for".parse().unwrap(),
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert_eq!(client_ip(peer, &h, &trusted), peer);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for".parse().unwrap(),
            HeaderValue::from_bytes(b"caf\xe9, 198.51.100.7").unwrap(),
        );
        assert_eq!(client_ip(peer, &h, &trusted).to_string(), "198.51.100.7");
    }

    #[test]
    fn garbage_stops_the_walk() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(peer, &xff("1.2.3.4, junk"), &nets(&["10.0.0.0/8"])),
            peer
        );
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &nets(&["10.0.0.0/8"])),
            peer
        );
    }
}
