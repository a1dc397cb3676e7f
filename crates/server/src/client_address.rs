//! Who is on the other end of a request, for per-address limits: the TCP peer, or, when the
//! peer is one of the operator's trusted proxies (`--trusted-proxies`), the right-most address
//! in `X-Forwarded-For` that is not itself a trusted proxy. Addresses to the left of that one
//! were written by the client and prove nothing.
//!
//! [`resolve`] is a middleware that puts the answer in the request as a [`ClientAddress`];
//! the OAuth endpoint limits and the consent page's passphrase limit both read it there.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client's address as far as limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The networks whose `X-Forwarded-For` is believed. Empty by default: the header is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of networks (`10.0.0.0/8`) or single addresses (`127.0.0.1`).
    fn from_str(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!("{item:?} is neither a network (10.0.0.0/8) nor an address")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

/// The client address of a request that came from `peer` with `headers`.
pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> IpAddr {
    // Without a peer (a request built in a test), all such requests share one address.
    let mut client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| {
        peer.ip().to_canonical()
    });
    if !trusted.trusts(client) {
        return client;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        // An entry we cannot read ends the chain: the hop that wrote it is the last we know.
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !trusted.trusts(ip) {
            return client;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[::1]:443`, `1.2.3.4:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .map(|ip| ip.to_canonical())
}

/// Middleware: determines the request's [`ClientAddress`] and adds it to its extensions.
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let address = client_address(peer, request.headers(), &trusted);
    request.extensions_mut().insert(ClientAddress(address));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("address"), 40000))
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("address")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let headers = forwarded(&["198.51.100.1"]);
        let none = TrustedProxies::default();
        assert_eq!(
            client_address(peer("203.0.113.9"), &headers, &none),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_forward() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().expect("list");
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(
            client_address(peer("203.0.113.9"), &headers, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().expect("list");
        // The client wrote the first entry itself; our proxies appended the rest.
        let headers = forwarded(&["6.6.6.6, 198.51.100.1", "10.1.1.1"]);
        assert_eq!(
            client_address(peer("127.0.0.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_chain_of_trusted_hops_ends_at_the_left_most() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().expect("list");
        let headers = forwarded(&["10.0.0.2, 10.0.0.3"]);
        assert_eq!(
            client_address(peer("10.0.0.4"), &headers, &trusted),
            ip("10.0.0.2")
        );
        // No header at all: the proxy itself.
        assert_eq!(
            client_address(peer("10.0.0.4"), &HeaderMap::new(), &trusted),
            ip("10.0.0.4")
        );
    }

    #[test]
    fn an_unreadable_entry_stops_the_walk() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().expect("list");
        let headers = forwarded(&["198.51.100.1, unknown, 10.0.0.2"]);
        assert_eq!(
            client_address(peer("10.0.0.4"), &headers, &trusted),
            ip("10.0.0.2")
        );
        let headers = forwarded(&["[2001:db8::1]:443, 192.0.2.1:8080"]);
        assert_eq!(
            client_address(peer("10.0.0.4"), &headers, &trusted),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let trusted: TrustedProxies = "127.0.0.1".parse().expect("list");
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(
            client_address(peer("::ffff:127.0.0.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn lists_parse_networks_and_addresses() {
        let trusted: TrustedProxies = "10.0.0.0/8,::1, 192.168.1.7/24".parse().expect("list");
        assert!(trusted.trusts(ip("10.200.0.1")));
        assert!(trusted.trusts(ip("::1")));
        assert!(trusted.trusts(ip("192.168.1.200")));
        assert!(!trusted.trusts(ip("192.168.2.1")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().expect("empty").is_empty());
    }
}
