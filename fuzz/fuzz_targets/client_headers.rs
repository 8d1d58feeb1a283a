//! Fuzz target `client_headers`: who the server thinks the client is.
//!
//! `ClientInfo::of` (the client IP through `X-Forwarded-For` and `TRUSTED_PROXIES`, and the
//! User-Agent), `ClientInfo::throttle_key` and `client_fingerprint` run on every login and every
//! authenticated request, on headers the client writes. Checks:
//!
//! - addresses are canonical: an IPv4-mapped IPv6 peer or entry (`::ffff:a.b.c.d`) is `a.b.c.d`;
//! - a peer that is not a trusted proxy is the client, whatever the headers say;
//! - the client IP is the peer or one of the `X-Forwarded-For` entries, and never one written to
//!   the left of an entry that is not a trusted proxy's address (that part is the client's own
//!   say-so);
//! - when the peer is trusted and the last entry of the last `X-Forwarded-For` header (the one the
//!   proxy appends) is an untrusted address, that address is the client, whatever the client wrote
//!   before it: otherwise a client could make itself count as the proxy, which every user behind
//!   it shares, and lock them all out;
//! - the User-Agent is kept to 256 characters; the IPv6 throttle key is the client's /64;
//! - the fingerprint is the SHA-256 that README documents, and ignores Accept-Language in
//!   `user-agent` mode.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::test::TestRequest;
use arbitrary::Arbitrary;
use ipnet::{IpNet, Ipv6Net};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tessera::auth::client::{ClientInfo, MAX_USER_AGENT_CHARS};
use tessera::config::FingerprintMode;
use tessera::domain::client_fingerprint;

#[derive(Arbitrary, Debug)]
enum Hop<'a> {
    Ip(IpAddr),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    peer: Option<SocketAddr>,
    /// A prefix length: the peer's own network is trusted (the peer is a proxy).
    trust_peer: Option<u8>,
    trusted: Vec<(IpAddr, u8)>,
    /// `X-Forwarded-For` headers, each a list of entries joined with `, `, or raw bytes.
    forwarded_for: Vec<Result<Vec<Hop<'a>>, &'a [u8]>>,
    user_agent: Option<&'a [u8]>,
    accept_language: Option<&'a [u8]>,
}

fn forwarded_value(header: &Result<Vec<Hop<'_>>, &[u8]>) -> Vec<u8> {
    match header {
        Ok(hops) => hops
            .iter()
            .map(|hop| match hop {
                Hop::Ip(ip) => ip.to_string(),
                Hop::Raw(raw) => (*raw).to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
            .into_bytes(),
        Err(raw) => raw.to_vec(),
    }
}

/// An `X-Forwarded-For` entry: an address (IPv4-mapped IPv6 as IPv4), or `None` when it is not one.
fn entry(bytes: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(bytes)
        .ok()?
        .trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

fuzz_target!(|input: Input<'_>| {
    let mut trusted: Vec<IpNet> = input
        .trusted
        .iter()
        .filter_map(|(ip, prefix)| IpNet::new(*ip, *prefix).ok())
        .map(|net| net.trunc())
        .collect();
    if let (Some(peer), Some(prefix)) = (input.peer, input.trust_peer) {
        if let Ok(net) = IpNet::new(peer.ip(), prefix) {
            trusted.push(net.trunc());
        }
    }
    // Addresses are compared in canonical form (`::ffff:a.b.c.d` is `a.b.c.d`); an IPv4 address
    // also matches an IPv6 network written around the mapped range.
    let is_trusted = |ip: &IpAddr| {
        trusted.iter().any(|net| {
            net.contains(ip)
                || matches!(ip, IpAddr::V4(v4) if net.contains(&IpAddr::V6(v4.to_ipv6_mapped())))
        })
    };

    let mut req = TestRequest::default();
    if let Some(peer) = input.peer {
        req = req.peer_addr(peer);
    }
    // Header values HeaderValue refuses (control characters) never reach the server.
    let mut forwarded: Vec<Vec<u8>> = Vec::new();
    for header in &input.forwarded_for {
        let value = forwarded_value(header);
        let Ok(header_value) = HeaderValue::from_bytes(&value) else {
            return;
        };
        req = req.append_header(("x-forwarded-for", header_value));
        forwarded.push(value);
    }
    for (name, value) in [
        ("user-agent", input.user_agent),
        ("accept-language", input.accept_language),
    ] {
        if let Some(value) = value {
            let Ok(value) = HeaderValue::from_bytes(value) else {
                return;
            };
            req = req.insert_header((name, value));
        }
    }
    let req = req.to_http_request();

    let client = ClientInfo::of(&req, &trusted);

    // The client IP.
    match input.peer {
        None => assert_eq!(client.ip, "unknown"),
        Some(peer) => {
            let ip: IpAddr = client.ip.parse().expect("the client IP is an address");
            assert_eq!(ip, ip.to_canonical(), "the client IP is canonical");
            let peer_ip = peer.ip().to_canonical();
            let entries: Vec<&[u8]> = forwarded
                .iter()
                .flat_map(|value| value.split(|b| *b == b','))
                .collect();
            if !is_trusted(&peer_ip) {
                assert_eq!(ip, peer_ip, "an untrusted peer is the client");
            } else if ip != peer_ip {
                // Some entry, with only trusted proxies' addresses to its right.
                let believable = entries.iter().enumerate().any(|(i, e)| {
                    entry(e) == Some(ip)
                        && entries[i + 1..]
                            .iter()
                            .all(|right| entry(right).is_some_and(|r| is_trusted(&r)))
                });
                assert!(believable, "{ip} is not believable in {forwarded:?}");
            }
            let appended = forwarded
                .last()
                .and_then(|value| value.split(|b| *b == b',').next_back())
                .and_then(entry);
            if let Some(appended) = appended {
                if is_trusted(&peer_ip) && !is_trusted(&appended) {
                    assert_eq!(
                        ip, appended,
                        "the entry the trusted proxy appended was ignored in {forwarded:?}"
                    );
                }
            }
        }
    }

    // The throttle key.
    let key = client.throttle_key();
    match client.ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let net: Ipv6Net = key.parse().expect("an IPv6 throttle key is a network");
            assert_eq!(net.prefix_len(), 64);
            assert!(net.contains(&v6));
        }
        _ => assert_eq!(key, client.ip),
    }

    // The User-Agent.
    match (input.user_agent, &client.user_agent) {
        (None, None) => {}
        (Some(raw), Some(kept)) => {
            let full = String::from_utf8_lossy(raw);
            assert!(kept.chars().count() <= MAX_USER_AGENT_CHARS);
            assert!(full.starts_with(kept.as_str()));
            if full.chars().count() <= MAX_USER_AGENT_CHARS {
                assert_eq!(kept, &full);
            }
        }
        (sent, kept) => panic!("User-Agent {sent:?} kept as {kept:?}"),
    }

    // The fingerprint.
    let headers: &HeaderMap = req.headers();
    let ua = input.user_agent.unwrap_or(b"unknown");
    let lang = input.accept_language.unwrap_or(b"unknown");
    let full = client_fingerprint(FingerprintMode::Full, headers);
    assert_eq!(full, sha256_hex(&[ua, b"-", lang]));
    assert_eq!(client_fingerprint(FingerprintMode::Off, headers), full);
    assert_eq!(
        client_fingerprint(FingerprintMode::UserAgent, headers),
        sha256_hex(&[ua])
    );
});
