//! Fuzz target for the headers read before any handler: `Authorization` (a bearer token, the
//! scheme in any case), `Host` (an allow-list by name, any port, IPv6 literals in brackets) and
//! `Origin` (exact, or any port where the list says `:*`). Arbitrary bytes, case changes,
//! whitespace, ports, trailing dots and repeated headers never make a 5xx, and each decision
//! agrees with an oracle written from the documented rules.

use axum::http::{HeaderValue, Request};
use proptest::prelude::*;

use crate::config::fuzz_config;
use crate::harness::{ALLOWED_HOSTS, ALLOWED_ORIGINS, harness};

/// Longest bearer token accepted (`auth::MAX_TOKEN_BYTES`).
const MAX_TOKEN_BYTES: usize = 4096;

/// Header bytes near the allowed names: their pieces, ports, brackets, dots, case changes,
/// whitespace and bytes that are not UTF-8.
fn header_bytes(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => proptest::sample::select(seeds).prop_map(|s| s.as_bytes().to_vec()),
        2 => proptest::sample::select(seeds).prop_map(|s| s.to_ascii_uppercase().into_bytes()),
        3 => proptest::sample::select(&[":", ":8100", ":0", ":99999", ":x", ".", "[", "]", " ", "\t", "*", "/", "http://", "https://", "::1", "evil.com", "é", "bearer", "Bearer ", "BEARER"][..])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
}

/// What the documented Host rule decides: the name before an all-digit port, or an IPv6
/// literal in brackets before an optional port, is on the list, case aside.
fn host_allowed(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, "")) => name,
            Some((name, port))
                if port
                    .strip_prefix(':')
                    .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit())) =>
            {
                name
            }
            _ => host,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
                name
            }
            _ => host,
        },
    };
    ALLOWED_HOSTS
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// What the documented Origin rule decides: equal to an entry (case aside), or to an entry's
/// `scheme://host` plus `:` and digits where the entry ends in `:*`.
fn origin_allowed(origin: &str) -> bool {
    ALLOWED_ORIGINS
        .iter()
        .any(|allowed| match allowed.strip_suffix(":*") {
            Some(base) => {
                let lower = origin.to_ascii_lowercase();
                lower == base
                    || lower
                        .strip_prefix(base)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .is_some_and(|port| {
                            !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
                        })
            }
            None => allowed.eq_ignore_ascii_case(origin),
        })
}

/// What the documented bearer rule decides: `Bearer` in any case, one space, then a token of
/// printable ASCII (surrounding blanks trimmed), at most 4096 bytes.
fn bearer_allowed(value: &str) -> bool {
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    let token = token.trim_matches(|c: char| c.is_whitespace());
    scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A header value as `http` takes it, or `None` for bytes no request could carry.
fn value(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}

proptest! {
    #![proptest_config(fuzz_config(2_000))]

    #[test]
    fn fuzz_host_origin_and_authorization(
        hosts in proptest::collection::vec(header_bytes(ALLOWED_HOSTS), 0..3),
        origin in proptest::option::of(header_bytes(&["http://localhost", "https://mcp.example.com", "http://mcp.example.com"])),
        authorization in proptest::option::of(header_bytes(&["Bearer alice", "bearer bob", "Bearer", " ", "Basic YWxpY2U=", "alice:secret"])),
        on_mcp in any::<bool>(),
    ) {
        let hosts: Vec<HeaderValue> = hosts.iter().filter_map(|h| value(h)).collect();
        let origin = origin.as_deref().and_then(value);
        let authorization = authorization.as_deref().and_then(value);
        let path = if on_mcp { "/mcp" } else { "/api/bots" };
        let mut request = Request::builder().method(if on_mcp { "POST" } else { "GET" }).uri(path);
        for host in &hosts { request = request.header("host", host); }
        if let Some(origin) = &origin { request = request.header("origin", origin); }
        if let Some(authorization) = &authorization { request = request.header("authorization", authorization); }
        let mut request = request.body(axum::body::Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)).expect("a request");
        request.headers_mut().insert("accept", HeaderValue::from_static("application/json, text/event-stream"));
        request.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        let answer = harness().send(request);
        prop_assert!(answer.check_contract().is_ok(), "{}", answer.check_contract().unwrap_err());

        // The documented order: two Hosts, then Host, then Origin, then the token.
        let text = |v: &HeaderValue| v.to_str().ok().map(str::to_owned);
        let host_refused = !hosts.first().and_then(text).is_some_and(|h| host_allowed(&h));
        let origin_refused = origin.as_ref().is_some_and(|o| !text(o).is_some_and(|o| origin_allowed(&o)));
        let expected = if hosts.len() > 1 {
            400
        } else if host_refused || origin_refused {
            403
        } else if !authorization.as_ref().and_then(text).is_some_and(|a| bearer_allowed(&a)) {
            401
        } else {
            200
        };
        prop_assert_eq!(answer.status.as_u16(), expected, "hosts {:?} origin {:?} authorization {:?}: {}", hosts, origin, authorization, answer.body);
    }
}

#[test]
fn bearer_scheme_is_case_insensitive_and_the_token_printable() {
    for (value, allowed) in [
        ("Bearer alice", true),
        ("bEaReR alice", true),
        ("Bearer  alice ", true),
        ("Bearer a b", false),
        ("Bearer\talice", false),
        ("Bearer é", false),
        ("Basic alice", false),
    ] {
        assert_eq!(bearer_allowed(value), allowed, "{value:?}");
    }
    let request = Request::builder()
        .uri("/api/bots")
        .header("host", "[::1]:8100")
        .header("authorization", "BEARER alice")
        .body(axum::body::Body::empty())
        .expect("a request");
    assert_eq!(harness().send(request).status.as_u16(), 200);
}
