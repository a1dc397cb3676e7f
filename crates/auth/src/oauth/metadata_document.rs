//! Client ID Metadata Documents: a `client_id` that is an HTTPS URL names a JSON document,
//! published by the client, that lists its name and redirect URIs.
//!
//! Fetching a URL chosen by a stranger is a server-side request forgery risk, so the fetch is
//! fenced: HTTPS only; every address the name resolves to must be public by the IANA
//! special-purpose registries (`special_addresses`), checked in the resolver the HTTP client
//! connects through, so a second DNS answer cannot swap in a private address; no redirects, no
//! proxies; a time limit and a size limit; answers cached for a few minutes so one client
//! cannot make us fetch on every request. A test-only switch allows plain HTTP on loopback
//! addresses. The cache reads the time its caller gives, so tests can age it without waiting.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::Timestamp;

use serde::Deserialize;
use url::Url;

use super::redirect;
use super::special_addresses::is_public;

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// How long one fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is trusted before it is fetched again.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_CAPACITY: usize = 1024;
const MAX_CLIENT_NAME_CHARS: usize = 100;

/// A client described by its metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// Fetches and caches metadata documents.
pub struct MetadataDocuments {
    http: reqwest::Client,
    allow_loopback_http: bool,
    /// Each document with when it was fetched.
    cache: Mutex<HashMap<String, (Timestamp, Arc<DocumentClient>)>>,
}

/// Whether `client_id` names a metadata document rather than a registered client.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

impl MetadataDocuments {
    /// `allow_loopback_http` is for tests only: it accepts `http://127.0.0.1…` documents.
    pub fn new(allow_loopback_http: bool) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("mcp-multiplayer/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicOnly {
                allow_loopback_http,
            }))
            .build()
            .map_err(|error| format!("cannot build the metadata document client: {error}"))?;
        Ok(MetadataDocuments {
            http,
            allow_loopback_http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The client that `client_id` describes at `now`, from cache or freshly fetched.
    pub async fn resolve(
        &self,
        client_id: &str,
        now: Timestamp,
    ) -> Result<Arc<DocumentClient>, String> {
        if let Some(client) = self.cached(client_id, now) {
            return Ok(client);
        }
        let url = self.check_url(client_id)?;
        let client = Arc::new(self.fetch(url, client_id).await?);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, (fetched, _)| is_fresh(*fetched, now));
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), (now, client.clone()));
        Ok(client)
    }

    fn cached(&self, client_id: &str, now: Timestamp) -> Option<Arc<DocumentClient>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache
            .get(client_id)
            .filter(|(fetched, _)| is_fresh(*fetched, now))
            .map(|(_, client)| client.clone())
    }

    /// The document URL rules of the CIMD draft: HTTPS, a path, no fragment, no credentials,
    /// no dot segments.
    fn check_url(&self, client_id: &str) -> Result<Url, String> {
        if client_id.len() > redirect::MAX_REDIRECT_URI_BYTES {
            return Err("client_id URL is too long".into());
        }
        let url = Url::parse(client_id).map_err(|error| format!("client_id URL: {error}"))?;
        let insecure_allowed = self.allow_loopback_http && redirect::is_loopback_host(&url);
        if url.scheme() != "https" && !(url.scheme() == "http" && insecure_allowed) {
            return Err("a client_id URL must use https".into());
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err("a client_id URL must not carry a fragment or credentials".into());
        }
        if url.path() == "/" || client_id.contains("/./") || client_id.contains("/../") {
            return Err("a client_id URL must have a path without dot segments".into());
        }
        if let Some(host) = url.host() {
            let literal = match host {
                url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            // The resolver never sees IP literals, so they are checked here.
            if let Some(ip) = literal
                && !(is_public(ip) || (self.allow_loopback_http && ip.is_loopback()))
            {
                return Err("a client_id URL must point to a public address".into());
            }
        }
        Ok(url)
    }

    async fn fetch(&self, url: Url, client_id: &str) -> Result<DocumentClient, String> {
        let mut response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|error| match refused_address(&error) {
                Some(refused) => refused.to_string(),
                None => format!("could not fetch the client metadata document: {error}"),
            })?;
        if !response.status().is_success() {
            return Err(format!(
                "the client metadata document answered HTTP {}",
                response.status().as_u16()
            ));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(format!(
                "the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| format!("reading the client metadata document: {error}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
        }
        let document: Document = serde_json::from_slice(&body)
            .map_err(|error| format!("the client metadata document is not valid: {error}"))?;
        if document.client_id != client_id {
            return Err("the client metadata document names a different client_id".into());
        }
        if let Some(method) = &document.token_endpoint_auth_method
            && method != "none"
        {
            return Err(format!(
                "token_endpoint_auth_method {method:?} is not supported for metadata documents; use \"none\""
            ));
        }
        if document.redirect_uris.is_empty()
            || document.redirect_uris.len() > redirect::MAX_REDIRECT_URIS
        {
            return Err(format!(
                "the client metadata document must list 1 to {} redirect_uris",
                redirect::MAX_REDIRECT_URIS
            ));
        }
        for uri in &document.redirect_uris {
            redirect::check_registrable(uri)?;
        }
        let name = document
            .client_name
            .map(|name| name.chars().take(MAX_CLIENT_NAME_CHARS).collect::<String>())
            // A name that could read as another client's is not shown; the host is.
            .filter(|name| {
                !name.trim().is_empty() && domain::names::hidden_character(name).is_none()
            })
            .unwrap_or_else(|| redirect::display_host(client_id));
        Ok(DocumentClient {
            client_id: document.client_id,
            name,
            redirect_uris: document.redirect_uris,
        })
    }
}

/// Whether a document fetched at `fetched` may still be used at `now`.
fn is_fresh(fetched: Timestamp, now: Timestamp) -> bool {
    let age = now.0.saturating_sub(fetched.0);
    (0..i64::try_from(CACHE_TTL.as_millis()).unwrap_or(i64::MAX)).contains(&age)
}

/// The resolver's refusal of a name with no public address. The HTTP client wraps it in its
/// own connection error, whose message names neither the guard nor the host, so the fetch
/// looks for it in the error's causes to say why.
#[derive(Debug, thiserror::Error)]
#[error("a client_id URL must point to a public address; {host} resolves to none")]
struct NoPublicAddress {
    host: String,
}

fn refused_address(error: &reqwest::Error) -> Option<&NoPublicAddress> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<NoPublicAddress>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

/// Resolves names like the system resolver, then keeps only public addresses.
struct PublicOnly {
    allow_loopback_http: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback_http;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|addr| is_public(addr.ip()) || (allow_loopback && addr.ip().is_loopback()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(NoPublicAddress { host }) as Box<_>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000);

    #[test]
    fn document_urls_are_checked_before_any_fetch() {
        let documents = MetadataDocuments::new(false).unwrap();
        for bad in [
            "http://example.com/client.json",
            "https://example.com/",
            "https://example.com/a/../b.json",
            "https://user:pw@example.com/c.json",
            "https://example.com/c.json#x",
            "https://127.0.0.1/c.json",
            "https://[::1]/c.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[fec0::1]/c.json",
        ] {
            assert!(documents.check_url(bad).is_err(), "{bad}");
        }
        assert!(
            documents
                .check_url("https://claude.ai/oauth/client.json")
                .is_ok()
        );
        let testing = MetadataDocuments::new(true).unwrap();
        assert!(
            testing
                .check_url("http://127.0.0.1:9999/client.json")
                .is_ok()
        );
        assert!(testing.check_url("http://example.com/client.json").is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_by_the_resolver() {
        let documents = MetadataDocuments::new(false).unwrap();
        let refused = documents
            .resolve("https://localhost/client.json", NOW)
            .await
            .unwrap_err();
        // Without the guard the fetch would fail too (nothing listens on localhost:443), but
        // as "could not fetch": only the guard names the host and the rule.
        assert_eq!(
            refused,
            "a client_id URL must point to a public address; localhost resolves to none"
        );
    }

    /// What the document host answers on one path.
    #[derive(Clone)]
    enum Answer {
        /// A 200 with this body, with or without a `Content-Length` (without, the body ends
        /// when the connection closes, so only the bytes read can tell its size).
        Body {
            bytes: Vec<u8>,
            declare_length: bool,
        },
        /// A 302 to this location.
        Redirect(String),
    }

    /// A plain HTTP server on loopback that answers each path as told and counts requests per
    /// path, so a test can tell whether a document was fetched at all.
    struct DocumentHost {
        base: String,
        answers: Arc<Mutex<HashMap<String, Answer>>>,
        hits: Arc<Mutex<HashMap<String, usize>>>,
    }

    impl DocumentHost {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("address"));
            let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
            let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
            let (served_answers, served_hits) = (answers.clone(), hits.clone());
            // Lives as long as the test process; a request is answered before `resolve`
            // returns, so the counts are settled whenever the test reads them.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let Some(path) = request_path(&stream) else {
                        continue;
                    };
                    *served_hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let answer = served_answers.lock().unwrap().get(&path).cloned();
                    // The client may have given up already; nothing to do about it here.
                    let _ = stream.write_all(&response(answer));
                }
            });
            DocumentHost {
                base,
                answers,
                hits,
            }
        }

        /// Serves `answer` at `path`; returns the path's URL.
        fn publish(&self, path: &str, answer: Answer) -> String {
            self.answers.lock().unwrap().insert(path.to_owned(), answer);
            format!("{}{path}", self.base)
        }

        fn hits(&self, path: &str) -> usize {
            self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
        }
    }

    /// Reads a request's head; returns its path.
    fn request_path(stream: &std::net::TcpStream) -> Option<String> {
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
                break;
            }
        }
        request_line.split(' ').nth(1).map(str::to_owned)
    }

    fn response(answer: Option<Answer>) -> Vec<u8> {
        let (head, body) = match answer {
            None => (
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n".to_owned(),
                Vec::new(),
            ),
            Some(Answer::Redirect(location)) => (
                format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n"),
                Vec::new(),
            ),
            Some(Answer::Body {
                bytes,
                declare_length,
            }) => {
                let length = if declare_length {
                    format!("content-length: {}\r\n", bytes.len())
                } else {
                    String::new()
                };
                (
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}"),
                    bytes,
                )
            }
        };
        let mut bytes = format!("{head}connection: close\r\n\r\n").into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }

    /// A valid document for `client_id`, padded with an ignored field to exactly `size` bytes.
    fn document_of_size(client_id: &str, size: usize) -> Vec<u8> {
        let with_padding = |padding: &str| {
            serde_json::to_vec(&serde_json::json!({
                "client_id": client_id,
                "client_name": "Doc client",
                "redirect_uris": ["http://127.0.0.1:9/callback"],
                "padding": padding,
            }))
            .expect("json")
        };
        let bare = with_padding("").len();
        let bytes = with_padding(&"x".repeat(size.checked_sub(bare).expect("room to pad")));
        assert_eq!(bytes.len(), size);
        bytes
    }

    fn document(client_id: &str) -> Answer {
        Answer::Body {
            bytes: document_of_size(client_id, 200),
            declare_length: true,
        }
    }

    #[tokio::test]
    async fn documents_past_16_kib_are_refused_whether_or_not_their_length_is_declared() {
        let host = DocumentHost::start();
        let documents = MetadataDocuments::new(true).unwrap();
        for declare_length in [true, false] {
            let at_cap = format!("/at-cap-{declare_length}.json");
            let url = format!("{}{at_cap}", host.base);
            let bytes = document_of_size(&url, MAX_DOCUMENT_BYTES);
            host.publish(
                &at_cap,
                Answer::Body {
                    bytes,
                    declare_length,
                },
            );
            let accepted = documents.resolve(&url, NOW).await;
            assert_eq!(
                accepted.map(|client| client.name.clone()),
                Ok("Doc client".to_owned()),
                "a document of exactly {MAX_DOCUMENT_BYTES} bytes (length declared: {declare_length})"
            );

            let over_cap = format!("/over-cap-{declare_length}.json");
            let url = format!("{}{over_cap}", host.base);
            let bytes = document_of_size(&url, MAX_DOCUMENT_BYTES + 1);
            host.publish(
                &over_cap,
                Answer::Body {
                    bytes,
                    declare_length,
                },
            );
            let refused = documents.resolve(&url, NOW).await.unwrap_err();
            assert_eq!(
                refused, "the client metadata document is larger than 16384 bytes",
                "length declared: {declare_length}"
            );
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let host = DocumentHost::start();
        let documents = MetadataDocuments::new(true).unwrap();
        // The target would be accepted if it were fetched: it names the URL that redirected.
        let moved = format!("{}/moved.json", host.base);
        let target = host.publish("/target.json", document(&moved));
        host.publish("/moved.json", Answer::Redirect(target));
        let refused = documents.resolve(&moved, NOW).await.unwrap_err();
        assert_eq!(refused, "the client metadata document answered HTTP 302");
        assert_eq!(host.hits("/moved.json"), 1);
        assert_eq!(host.hits("/target.json"), 0, "the redirect was followed");
    }

    #[tokio::test]
    async fn a_document_is_fetched_again_only_after_five_minutes() {
        let host = DocumentHost::start();
        let documents = MetadataDocuments::new(true).unwrap();
        let url = format!("{}/client.json", host.base);
        host.publish("/client.json", document(&url));
        let five_minutes = Duration::from_secs(5 * 60);
        let at = |later: Duration| Timestamp(NOW.0 + i64::try_from(later.as_millis()).unwrap());

        documents.resolve(&url, NOW).await.expect("fetched");
        assert_eq!(host.hits("/client.json"), 1);
        let just_before = at(five_minutes - Duration::from_millis(1));
        documents.resolve(&url, just_before).await.expect("cached");
        assert_eq!(
            host.hits("/client.json"),
            1,
            "fetched again within 5 minutes"
        );
        documents
            .resolve(&url, at(five_minutes))
            .await
            .expect("fetched");
        assert_eq!(
            host.hits("/client.json"),
            2,
            "not fetched again after 5 minutes"
        );
    }
}
