//! Client ID Metadata Documents: a `client_id` that is an HTTPS URL names a JSON document,
//! published by the client, that lists its name and redirect URIs.
//!
//! Fetching a URL chosen by a stranger is a server-side request forgery risk, so the fetch is
//! fenced: HTTPS only; every address the name resolves to must be public by the IANA
//! special-purpose registries (`special_addresses`), checked in the resolver the HTTP client
//! connects through, so a second DNS answer cannot swap in a private address; no redirects, no proxies; a time limit and a size limit; answers cached for a few
//! minutes so one client cannot make us fetch on every request. A test-only switch allows plain
//! HTTP on loopback addresses.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    cache: Mutex<HashMap<String, (Instant, Arc<DocumentClient>)>>,
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

    /// The client that `client_id` describes, from cache or freshly fetched.
    pub async fn resolve(&self, client_id: &str) -> Result<Arc<DocumentClient>, String> {
        if let Some(client) = self.cached(client_id) {
            return Ok(client);
        }
        let url = self.check_url(client_id)?;
        let client = Arc::new(self.fetch(url, client_id).await?);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, (fetched, _)| fetched.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), (Instant::now(), client.clone()));
        Ok(client)
    }

    fn cached(&self, client_id: &str) -> Option<Arc<DocumentClient>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache
            .get(client_id)
            .filter(|(fetched, _)| fetched.elapsed() < CACHE_TTL)
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
            .map_err(|error| format!("could not fetch the client metadata document: {error}"))?;
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
                return Err(format!("{host} does not resolve to a public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn names_resolving_to_private_addresses_are_refused() {
        let documents = MetadataDocuments::new(false).unwrap();
        let refused = documents
            .resolve("https://localhost/client.json")
            .await
            .unwrap_err();
        assert!(refused.contains("could not fetch"), "{refused}");
    }
}
