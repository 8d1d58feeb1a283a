//! Who is on the other end: the client IP (the socket peer, or `X-Forwarded-For` read right to
//! left only through trusted proxies, so a client cannot forge its address) and the User-Agent.
//!
//! Every address is canonical: an IPv4 peer of a dual-stack (`[::]`) listener arrives as
//! `::ffff:a.b.c.d`, and is compared, counted and stored as `a.b.c.d`.

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
        match self.ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(IpAddr::V6(v6)) => ipnet::Ipv6Net::new(v6, 64)
                .map(|net| net.trunc().to_string())
                .unwrap_or_else(|_| self.ip.clone()),
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            Err(_) => self.ip.clone(),
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
/// itself trusted. An unparsable entry ends the walk at the last address known good. The answer
/// is canonical (an IPv4-mapped IPv6 address is the IPv4 address).
///
/// The header is split into entries as bytes: an entry that is not text (a client may send any
/// byte, and proxies append their entry to the same header) is one more unparsable entry. Skipping
/// the whole header instead would ignore the address the proxy appended, so that a client could
/// pass itself off as an address written further left, or as the proxy that all its users share.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| contains(net, *ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|hop| std::str::from_utf8(hop).ok().map(str::trim))
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop.and_then(|hop| hop.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())) {
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

/// Whether `net` holds the canonical address `ip`, however either is written: an IPv4 address is
/// also looked for as `::ffff:a.b.c.d`, for an IPv6 network written around the mapped range.
fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip)
        || match ip {
            IpAddr::V4(v4) => net.contains(&IpAddr::V6(v4.to_ipv6_mapped())),
            IpAddr::V6(_) => false,
        }
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

    /// An IPv4 proxy behind a dual-stack listener is the peer `::ffff:a.b.c.d`.
    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let h = xff("::ffff:198.51.100.7, ::ffff:10.0.0.2");
        assert_eq!(client_ip(mapped, &h, &trusted).to_string(), "198.51.100.7");
        assert_eq!(
            client_ip(mapped, &HeaderMap::new(), &trusted).to_string(),
            "10.0.0.1"
        );
        let untrusted: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(
            client_ip(untrusted, &h, &trusted).to_string(),
            "203.0.113.9"
        );
        let plain: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(plain, &h, &nets(&["::ffff:10.0.0.0/104"])).to_string(),
            "198.51.100.7"
        );
        let client = |ip: &str| ClientInfo {
            ip: ip.into(),
            user_agent: None,
        };
        assert_eq!(client("::ffff:192.0.2.1").throttle_key(), "192.0.2.1");
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
