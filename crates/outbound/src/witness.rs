//! The witness's fetch: one HTTPS GET for a bot, recorded as an [`Attestation`].
//!
//! The fetch goes one step at a time (resolve, connect, TLS, request, body) against one
//! deadline, and each step adds what it learned to the record, so a fetch cut short still says
//! how far it got. Nothing is retried and no redirect is followed: a 3xx is recorded with its
//! `location`. The host's addresses are checked here, where the connection is made, and only a
//! checked address is connected to, so a name that answers differently the second time (DNS
//! rebinding) cannot reach a private address.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::Timestamp;
use domain::attestation::{
    Attestation, BodyRecord, Certificate, FetchFailure, FetchFailureCode, MAX_RECORDED_BODY_BYTES,
    MAX_RECORDED_CERTIFICATES, RECORDED_HEADERS, TlsRecord,
};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use url::Url;

use crate::addresses;

/// Most bytes of one recorded header value.
const MAX_HEADER_VALUE_BYTES: usize = 512;

/// A host the operator lists: `example.com` (that name only) or `*.example.com` (any name
/// under it, not the name itself). IP literals are written as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().to_ascii_lowercase();
        let (pattern, name) = match raw.strip_prefix("*.") {
            Some(rest) => (HostPattern::Subdomains(rest.to_owned()), rest.to_owned()),
            None => (HostPattern::Exact(raw.clone()), raw.clone()),
        };
        if name.is_empty()
            || name.len() > 253
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(format!(
                "{raw:?} is not a host pattern (a name such as example.com, or *.example.com)"
            ));
        }
        Ok(pattern)
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.ends_with('.')),
        }
    }
}

/// What the operator allows the witness to do.
#[derive(Debug, Clone)]
pub struct WitnessPolicy {
    /// Most body bytes read; a longer body is cut there and recorded as `TOO_LARGE`.
    pub max_body_bytes: u64,
    /// The whole fetch, from resolving the name to the body's last byte.
    pub timeout: Duration,
    /// When not empty, only these hosts are fetched.
    pub allow: Vec<HostPattern>,
    /// Never fetched, whatever `allow` says.
    pub deny: Vec<HostPattern>,
    /// Certificate authorities trusted besides the public roots (PEM), e.g. a test CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Loopback addresses may be fetched: for tests against a local server only, off unless the
    /// operator sets it.
    pub allow_loopback: bool,
}

impl Default for WitnessPolicy {
    fn default() -> Self {
        WitnessPolicy {
            max_body_bytes: 1024 * 1024,
            timeout: Duration::from_secs(10),
            allow: Vec::new(),
            deny: Vec::new(),
            extra_roots: Vec::new(),
            allow_loopback: false,
        }
    }
}

/// How names become addresses; the system's resolver in the server, a fixed table in tests.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// The certificates of a PEM file, for [`WitnessPolicy::extra_roots`].
pub fn read_pem_certificates(
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    if certificates.is_empty() {
        return Err("no certificate in the file".to_owned());
    }
    Ok(certificates)
}

/// Makes fetches under one policy.
pub struct Witness {
    policy: WitnessPolicy,
    tls: tokio_rustls::TlsConnector,
    resolver: Arc<dyn Resolve>,
}

impl Witness {
    pub fn new(policy: WitnessPolicy, resolver: Arc<dyn Resolve>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for root in &policy.extra_roots {
            roots
                .add(root.clone())
                .map_err(|error| format!("a trusted certificate is not usable: {error}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS settings: {error}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Witness {
            policy,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            resolver,
        })
    }

    pub fn policy(&self) -> &WitnessPolicy {
        &self.policy
    }

    /// Fetches `url` and records what happened; `fetched_at` is the caller's clock.
    pub async fn fetch(&self, url: &str, fetched_at: Timestamp) -> Attestation {
        let mut record = Attestation {
            url: url.to_owned(),
            fetched_at,
            address: None,
            tls: None,
            status: None,
            headers: BTreeMap::new(),
            body: None,
            error: None,
        };
        let deadline = Instant::now() + self.policy.timeout;
        if let Err(failure) = self.fetch_into(url, deadline, &mut record).await {
            record.error = Some(failure);
        }
        record
    }

    async fn fetch_into(
        &self,
        raw: &str,
        deadline: Instant,
        record: &mut Attestation,
    ) -> Result<(), FetchFailure> {
        let url = Url::parse(raw).map_err(|error| fail(FetchFailureCode::BadUrl, error))?;
        if url.scheme() != "https" {
            return Err(fail(
                FetchFailureCode::BadUrl,
                "only https:// URLs are fetched",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail(
                FetchFailureCode::BadUrl,
                "a URL with credentials is not fetched",
            ));
        }
        let (host, literal) = match url.host() {
            Some(url::Host::Domain(name)) => (name.to_ascii_lowercase(), None),
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            None => return Err(fail(FetchFailureCode::BadUrl, "the URL names no host")),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        self.check_host(&host)?;

        let candidates = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => timeout_at(deadline, self.resolver.resolve(&host, port))
                .await
                .map_err(|_| timed_out("resolving the name"))?
                .map_err(|error| {
                    fail(
                        FetchFailureCode::Connect,
                        format!("{host} does not resolve: {error}"),
                    )
                })?,
        };
        let address = self.first_allowed(&host, &candidates)?;
        record.address = Some(address.to_string());

        let tcp = timeout_at(deadline, TcpStream::connect(address))
            .await
            .map_err(|_| timed_out("connecting"))?
            .map_err(|error| fail(FetchFailureCode::Connect, format!("{address}: {error}")))?;
        let server_name = match literal {
            Some(ip) => ServerName::IpAddress(ip.into()),
            None => ServerName::try_from(host.clone())
                .map_err(|error| fail(FetchFailureCode::BadUrl, error))?,
        };
        let tls = timeout_at(deadline, self.tls.connect(server_name, tcp))
            .await
            .map_err(|_| timed_out("the TLS handshake"))?
            .map_err(|error| fail(FetchFailureCode::Tls, error))?;
        record.tls = Some(tls_record(&tls, &host));

        let (mut sender, connection) = timeout_at(
            deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(tls)),
        )
        .await
        .map_err(|_| timed_out("starting HTTP"))?
        .map_err(|error| fail(FetchFailureCode::Http, error))?;
        // The connection task ends with the response (Connection: close) or with this fetch.
        let driver = tokio::spawn(connection);
        let _abort = AbortOnDrop(driver);
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_owned(),
        };
        let request = http::Request::get(target)
            .header(http::header::HOST, authority)
            .header(
                http::header::USER_AGENT,
                concat!("mcp-multiplayer-witness/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::ACCEPT, "*/*")
            .header(http::header::CONNECTION, "close")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .map_err(|error| fail(FetchFailureCode::BadUrl, error))?;
        let response = timeout_at(deadline, sender.send_request(request))
            .await
            .map_err(|_| timed_out("waiting for the response"))?
            .map_err(|error| fail(FetchFailureCode::Http, error))?;
        record.status = Some(response.status().as_u16());
        for name in RECORDED_HEADERS {
            if let Some(value) = response.headers().get(name) {
                let value = String::from_utf8_lossy(value.as_bytes());
                record.headers.insert(
                    name.to_owned(),
                    clip(&value, MAX_HEADER_VALUE_BYTES).to_owned(),
                );
            }
        }

        let mut body = BodyReader::default();
        let mut incoming = response.into_body();
        let outcome = loop {
            let frame = match timeout_at(deadline, incoming.frame()).await {
                Err(_) => break Err(timed_out("reading the body")),
                Ok(None) => break Ok(()),
                Ok(Some(Err(error))) => break Err(fail(FetchFailureCode::Http, error)),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if !body.take(&data, self.policy.max_body_bytes) {
                break Err(fail(
                    FetchFailureCode::TooLarge,
                    format!(
                        "the body is longer than {} bytes; the record has its first bytes",
                        self.policy.max_body_bytes
                    ),
                ));
            }
        };
        record.body = Some(body.finish());
        outcome
    }

    fn check_host(&self, host: &str) -> Result<(), FetchFailure> {
        if self.policy.deny.iter().any(|pattern| pattern.matches(host)) {
            return Err(fail(
                FetchFailureCode::NotAllowed,
                format!("the operator does not allow fetching from {host}"),
            ));
        }
        if !self.policy.allow.is_empty()
            && !self
                .policy
                .allow
                .iter()
                .any(|pattern| pattern.matches(host))
        {
            return Err(fail(
                FetchFailureCode::NotAllowed,
                format!("{host} is not on the operator's list of hosts to fetch from"),
            ));
        }
        Ok(())
    }

    /// The first address the policy lets the fetch connect to; the refusal names the first
    /// refused one.
    fn first_allowed(
        &self,
        host: &str,
        candidates: &[SocketAddr],
    ) -> Result<SocketAddr, FetchFailure> {
        let allowed = |ip: IpAddr| {
            addresses::is_public(ip) || (self.policy.allow_loopback && ip.is_loopback())
        };
        if let Some(address) = candidates.iter().find(|address| allowed(address.ip())) {
            return Ok(*address);
        }
        let message = match candidates.first() {
            Some(address) => format!(
                "{host} resolves to {}, which is not a public address ({})",
                address.ip(),
                addresses::refusal(address.ip()).unwrap_or("loopback")
            ),
            None => format!("{host} resolves to no address"),
        };
        Err(fail(FetchFailureCode::AddressRefused, message))
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The body as it arrives: every byte hashed and counted, the first ones kept.
#[derive(Default)]
struct BodyReader {
    hasher: Sha256,
    bytes: u64,
    kept: Vec<u8>,
}

impl BodyReader {
    /// Takes `data`, up to `max` bytes in all; false once the body went past `max`.
    fn take(&mut self, data: &[u8], max: u64) -> bool {
        let room = usize::try_from(max.saturating_sub(self.bytes)).unwrap_or(usize::MAX);
        let accepted = &data[..data.len().min(room)];
        self.hasher.update(accepted);
        self.bytes += accepted.len() as u64;
        let keep = MAX_RECORDED_BODY_BYTES.saturating_sub(self.kept.len());
        self.kept
            .extend_from_slice(&accepted[..accepted.len().min(keep)]);
        accepted.len() == data.len()
    }

    fn finish(self) -> BodyRecord {
        let truncated = (self.kept.len() as u64) < self.bytes;
        let (text, base64) = match std::str::from_utf8(&self.kept) {
            Ok(text) => (Some(text.to_owned()), None),
            // A cut in the middle of a character: the text before it.
            Err(error) if truncated && error.error_len().is_none() => {
                let valid = &self.kept[..error.valid_up_to()];
                (Some(String::from_utf8_lossy(valid).into_owned()), None)
            }
            Err(_) => (None, Some(STANDARD.encode(&self.kept))),
        };
        BodyRecord {
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
            truncated: truncated
                || text
                    .as_ref()
                    .is_some_and(|text| (text.len() as u64) < self.bytes),
            text,
            base64,
        }
    }
}

fn tls_record(tls: &tokio_rustls::client::TlsStream<TcpStream>, host: &str) -> TlsRecord {
    let (_, session) = tls.get_ref();
    let version = session
        .protocol_version()
        .map(|version| format!("{version:?}"))
        .unwrap_or_default();
    let cipher = session
        .negotiated_cipher_suite()
        .map(|suite| format!("{:?}", suite.suite()))
        .unwrap_or_default();
    let chain = session
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .take(MAX_RECORDED_CERTIFICATES)
        .map(|der| Certificate {
            sha256: hex::encode(Sha256::digest(der.as_ref())),
            der: STANDARD.encode(der.as_ref()),
        })
        .collect();
    TlsRecord {
        version,
        cipher,
        server_name: host.to_owned(),
        chain,
    }
}

fn fail(code: FetchFailureCode, why: impl std::fmt::Display) -> FetchFailure {
    FetchFailure {
        code,
        message: clip(&why.to_string(), 300).to_owned(),
    }
}

fn timed_out(step: &str) -> FetchFailure {
    fail(
        FetchFailureCode::Timeout,
        format!("the fetch ran out of time while {step}"),
    )
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
