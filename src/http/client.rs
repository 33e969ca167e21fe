//! Who a request comes from, for the per-client limits.
//!
//! The accept loop puts each connection's peer address on its requests (as axum's
//! `ConnectInfo`). Behind a reverse proxy every peer is the proxy, so with `--trust-proxy` the
//! client is instead the address the proxy forwarded: the last entry of `Forwarded` or, if
//! there is none, of `X-Forwarded-For`, the one our own proxy appended. Entries before it come
//! from the client and could be anything, so they are never used. Without `--trust-proxy`
//! those headers are ignored, so a client cannot make itself look like many.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;

/// The client a request comes from, as an extractor; `None` when unknown.
#[derive(Debug, Clone, Copy)]
pub struct Client(pub Option<IpAddr>);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(client_ip(parts, state.config.trust_proxy)))
    }
}

/// The address a request comes from, if known (requests built in tests have none).
pub fn client_ip(parts: &Parts, trust_proxy: bool) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if trust_proxy && let Some(forwarded) = forwarded_ip(&parts.headers) {
        return Some(forwarded);
    }
    peer
}

/// The client address the nearest proxy forwarded, if it forwarded one.
fn forwarded_ip(headers: &HeaderMap) -> Option<IpAddr> {
    if let Some(last) = last_entry(headers, "forwarded") {
        return last
            .split(';')
            .find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then_some(value)
            })
            .and_then(parse_node);
    }
    last_entry(headers, "x-forwarded-for").and_then(parse_node)
}

/// The last comma-separated entry over every `name` header.
fn last_entry<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    value.rsplit(',').next()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, Request};

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        request.into_parts().0
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trust_the_peer_is_the_client_whatever_the_headers_say() {
        let parts = parts("10.0.0.1:5000", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(&parts, false), ip("10.0.0.1"));
    }

    #[test]
    fn with_trust_the_last_forwarded_entry_is_the_client() {
        let xff = parts("10.0.0.1:5000", &[("x-forwarded-for", "6.6.6.6, 1.2.3.4")]);
        assert_eq!(client_ip(&xff, true), ip("1.2.3.4"));
        let two = parts(
            "10.0.0.1:5000",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "1.2.3.4"),
            ],
        );
        assert_eq!(client_ip(&two, true), ip("1.2.3.4"));
        let forwarded = parts(
            "10.0.0.1:5000",
            &[
                (
                    "forwarded",
                    "for=6.6.6.6, for=\"[2001:db8::1]:4711\";proto=https",
                ),
                ("x-forwarded-for", "7.7.7.7"),
            ],
        );
        assert_eq!(client_ip(&forwarded, true), ip("2001:db8::1"));
        let with_port = parts("10.0.0.1:5000", &[("x-forwarded-for", "1.2.3.4:999")]);
        assert_eq!(client_ip(&with_port, true), ip("1.2.3.4"));
    }

    #[test]
    fn an_unreadable_or_missing_forward_falls_back_to_the_peer() {
        for headers in [
            &[][..],
            &[("x-forwarded-for", "unknown")][..],
            &[("forwarded", "for=_hidden")][..],
        ] {
            assert_eq!(
                client_ip(&parts("10.0.0.1:5000", headers), true),
                ip("10.0.0.1")
            );
        }
    }
}
