//! What the witness saw: the record of one HTTPS fetch the server made because a bot asked
//! (`ctx.request_fetch`), as it is kept in the transcript and handed to the bot's `on_fetch`.
//!
//! The record says what this server saw, where and when: the address it connected to, the TLS
//! session (version, cipher, the certificate chain the peer sent), the status, a few headers,
//! the body's SHA-256 and the body itself up to a cap. The server signs it (the signature is in
//! the `fetch_attested` notice beside it, `transcript::signing`), binding it to the channel, the
//! bot slot and the event that asked, so a record cannot be moved to another channel. It proves
//! what this server saw, under its key; it is not a TLS notarization of the source.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::Timestamp;

/// Most bytes of a response body the record keeps; the SHA-256 covers the whole body.
pub const MAX_RECORDED_BODY_BYTES: usize = 8 * 1024;

/// Most certificates of the peer's chain the record keeps, leaf first.
pub const MAX_RECORDED_CERTIFICATES: usize = 5;

/// The response headers a record keeps, by their lowercase names; the rest are dropped, since
/// they vary per request (cookies, trace ids) and would make two witnesses disagree. Redirects
/// are not followed: a 3xx is recorded with its `location`, which the bot may ask for next.
pub const RECORDED_HEADERS: [&str; 8] = [
    "cache-control",
    "content-length",
    "content-type",
    "date",
    "etag",
    "last-modified",
    "location",
    "server",
];

/// One fetch, as the server saw it: a response, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The URL the bot asked for.
    pub url: String,
    /// When the request was sent, in ms since the epoch.
    pub fetched_at: Timestamp,
    /// The address connected to, `ip:port`; `None` when no connection was made.
    pub address: Option<String>,
    pub tls: Option<TlsRecord>,
    /// The HTTP status; `None` when no response came.
    pub status: Option<u16>,
    /// The [`RECORDED_HEADERS`] the response had, each as received (the first of repeats).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<BodyRecord>,
    /// Why there is no (whole) response; `None` for a response read in full.
    pub error: Option<FetchFailure>,
}

impl Attestation {
    /// Whether the fetch got a response and read its body (up to the size cap the failure
    /// would name).
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The TLS session of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsRecord {
    /// As the TLS library names it: `TLSv1_3`, `TLSv1_2`.
    pub version: String,
    /// As the TLS library names it: `TLS13_AES_128_GCM_SHA256`.
    pub cipher: String,
    /// The server name the certificate was checked against.
    pub server_name: String,
    /// The chain the peer sent, leaf first, at most [`MAX_RECORDED_CERTIFICATES`].
    pub chain: Vec<Certificate>,
}

/// One certificate: its DER bytes in standard base64 and their SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Lowercase hex SHA-256 of the DER bytes.
    pub sha256: String,
    pub der: String,
}

/// A response body: its digest and size, and its first bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyRecord {
    /// Lowercase hex SHA-256 of every byte received (the whole body unless the fetch was cut
    /// at its size cap, which `error` then says).
    pub sha256: String,
    /// How many bytes were received.
    pub bytes: u64,
    /// Whether the record keeps fewer bytes than were received.
    pub truncated: bool,
    /// The kept bytes as text, when they are UTF-8 (a cut that splits a character keeps the
    /// bytes before it).
    pub text: Option<String>,
    /// The kept bytes in standard base64, when they are not UTF-8.
    pub base64: Option<String>,
}

/// Why a fetch has no whole response, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchFailure {
    pub code: FetchFailureCode,
    /// Written by the server, for people; never the peer's words.
    pub message: String,
}

/// The stable codes of [`FetchFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FetchFailureCode {
    /// Not an `https://` URL this server can fetch.
    BadUrl,
    /// The name resolved to an address that is not public (loopback, private, link-local,
    /// metadata), or to nothing.
    AddressRefused,
    /// The operator's allowlist or denylist refuses the host.
    NotAllowed,
    /// Over the per-channel or per-owner fetch rate.
    RateLimited,
    /// No TCP connection.
    Connect,
    /// The TLS handshake failed (certificate, name, protocol).
    Tls,
    /// The peer's answer was not HTTP this client reads.
    Http,
    /// The whole fetch took longer than its time cap.
    Timeout,
    /// The body was longer than the size cap: `body` has what was read.
    TooLarge,
    /// The request was never made: the channel closed or the bot stopped first.
    Cancelled,
}

impl FetchFailureCode {
    /// The code as it is written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchFailureCode::BadUrl => "BAD_URL",
            FetchFailureCode::AddressRefused => "ADDRESS_REFUSED",
            FetchFailureCode::NotAllowed => "NOT_ALLOWED",
            FetchFailureCode::RateLimited => "RATE_LIMITED",
            FetchFailureCode::Connect => "CONNECT",
            FetchFailureCode::Tls => "TLS",
            FetchFailureCode::Http => "HTTP",
            FetchFailureCode::Timeout => "TIMEOUT",
            FetchFailureCode::TooLarge => "TOO_LARGE",
            FetchFailureCode::Cancelled => "CANCELLED",
        }
    }
}

/// The server's signature over an attestation: the key (`ed25519:…`, published at
/// `/.well-known/mcp-multiplayer-keys` and in every export) and the base64url signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSignature {
    pub key_id: String,
    pub signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_their_names() {
        for code in [
            FetchFailureCode::BadUrl,
            FetchFailureCode::AddressRefused,
            FetchFailureCode::NotAllowed,
            FetchFailureCode::RateLimited,
            FetchFailureCode::Connect,
            FetchFailureCode::Tls,
            FetchFailureCode::Http,
            FetchFailureCode::Timeout,
            FetchFailureCode::TooLarge,
            FetchFailureCode::Cancelled,
        ] {
            assert_eq!(
                serde_json::to_value(code).expect("json"),
                serde_json::Value::String(code.as_str().to_owned())
            );
        }
    }
}
