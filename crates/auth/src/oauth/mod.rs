//! The OAuth 2.1 authorization server and the check of the tokens it issues.
//!
//! One [`OAuthServer`] serves the metadata documents (RFC 8414, RFC 9728), dynamic client
//! registration (RFC 7591), client ID metadata documents, the authorization endpoint's rules
//! (PKCE S256 only, exact redirect URIs, resource indicators per RFC 8707, `iss` per RFC 9207),
//! the token endpoint (code exchange, refresh rotation with reuse detection) and revocation
//! (RFC 7009). The HTTP layer (`server::oauth`) only parses requests and renders answers.
//!
//! Issuer and resource come from the configured public base URL, never from a request's Host.

mod authorize;
mod clients;
mod connections;
mod error;
pub mod metadata_document;
pub mod redirect;
mod signing;
pub use outbound::addresses as special_addresses;
mod throttle;
mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::{Principal, PrincipalId, SecretHash, Timestamp};
use serde_json::{Value, json};
use store::Store;
use store::oauth::{Person, Swept, TokenKind};

pub use authorize::{AuthorizeError, AuthorizeParams, AuthorizeRequest, Consent, PassphraseCheck};
pub use clients::{Client, MAX_REGISTRATION_BYTES, RegistrationRequest};
pub use connections::{Connection, Holder};
pub use error::OAuthError;
pub use metadata_document::MetadataDocuments;
pub use throttle::{Endpoint, EndpointLimits, PASSPHRASE_ATTEMPTS};
pub use token::{ClientCredentials, TokenParams, TokenResponse};

use crate::scope::{Scope, Scopes};
use crate::secrets;
use crate::{AuthError, Caller};
use signing::Signer;
use throttle::Throttle;

/// How a grant is approved on the consent page.
#[derive(Clone, PartialEq, Eq)]
pub enum ApprovalMode {
    /// A person approves or denies each grant (the default).
    Prompt,
    /// As `Prompt`, and the person must also know the operator's passphrase: a private server.
    Passphrase(String),
    /// Every request is approved at once for a fresh principal: tests and local development.
    Auto,
}

impl std::fmt::Debug for ApprovalMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApprovalMode::Prompt => "prompt",
            ApprovalMode::Passphrase(_) => "passphrase",
            ApprovalMode::Auto => "auto",
        })
    }
}

/// Settings of the authorization server.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The public base URL, without a trailing slash: the issuer, and the root of every
    /// endpoint URL we publish.
    pub issuer: String,
    pub approval: ApprovalMode,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Test-only: accept client metadata documents served over plain HTTP on loopback.
    pub allow_loopback_metadata_documents: bool,
    /// Requests one client address may make to the unauthenticated endpoints.
    pub limits: EndpointLimits,
    /// How long a registered client may go without obtaining a token, and a person without
    /// holding anything, before the sweep deletes them.
    pub unused_registration_ttl: Duration,
}

impl OAuthConfig {
    /// Defaults for `issuer`: prompt approval, 1-hour access tokens, 30-day refresh tokens,
    /// the default per-address limits, unused registrations forgotten after a day.
    pub fn new(issuer: &str) -> Self {
        OAuthConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            approval: ApprovalMode::Prompt,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            allow_loopback_metadata_documents: false,
            limits: EndpointLimits::default(),
            unused_registration_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// How long a validated token is trusted without looking at the store again. Revocations
/// made through this server clear the memory at once; one made by another process (the
/// `token revoke` command) takes effect within this time.
pub const TOKEN_MEMORY: Duration = Duration::from_secs(5);
const TOKEN_MEMORY_CAPACITY: usize = 100_000;

/// The authorization server. Cheap to share behind an `Arc`.
pub struct OAuthServer {
    config: OAuthConfig,
    store: Store,
    signer: Signer,
    documents: MetadataDocuments,
    checked: RwLock<HashMap<SecretHash, Checked>>,
    /// Per-address limits on the endpoints and on passphrase attempts.
    throttle: Throttle,
    clock: Clock,
}

/// Where the server reads the time: the wall clock, or a test's own clock (each test holds
/// its own, so one test moving time cannot expire another's tokens).
type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Why a bearer token was refused. Callers only ever see [`AuthError::Invalid`] (a client
/// learns nothing from the difference); tests see the reason, so a refusal for one reason
/// cannot pass for another.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BearerRefusal {
    /// Not an access or personal token (a refresh token, a code, garbage).
    NotABearerToken,
    Unknown,
    Revoked,
    Expired,
    /// Issued for another resource: the same database served under another public URL.
    ForAnotherResource,
    /// Storage failed while checking.
    Unavailable(String),
}

impl From<BearerRefusal> for AuthError {
    fn from(refusal: BearerRefusal) -> Self {
        match refusal {
            BearerRefusal::Unavailable(cause) => AuthError::Unavailable(cause),
            _ => AuthError::Invalid,
        }
    }
}

/// A request refused because its address used up its allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRequests {
    pub endpoint: Endpoint,
    /// When the next request from this address will be allowed.
    pub retry_after: Duration,
}

impl TooManyRequests {
    /// The OAuth-shaped error to answer with (status 429).
    pub fn error(&self) -> OAuthError {
        OAuthError::new(
            "too_many_requests",
            format!(
                "too many requests to {} from your address; try again in {} s",
                self.endpoint.path(),
                self.retry_after_secs()
            ),
        )
    }

    /// `retry_after` in whole seconds, rounded up, at least one (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let started_second = u64::from(self.retry_after.subsec_nanos() > 0);
        (self.retry_after.as_secs() + started_second).max(1)
    }
}

/// A token found valid, remembered for [`TOKEN_MEMORY`].
#[derive(Clone)]
struct Checked {
    caller: Caller,
    expires_at: Option<Timestamp>,
    at: Instant,
}

impl OAuthServer {
    pub async fn new(config: OAuthConfig, store: Store) -> Result<Self, String> {
        let key = store
            .setting_or_insert("signing_key", hex::encode(secrets::random_bytes::<32>()))
            .await
            .map_err(|error| format!("cannot load the signing key: {error}"))?;
        let documents = MetadataDocuments::new(config.allow_loopback_metadata_documents)?;
        Ok(OAuthServer {
            signer: Signer::new(&key),
            throttle: Throttle::new(config.limits),
            config,
            store,
            documents,
            checked: RwLock::new(HashMap::new()),
            clock: Arc::new(system_now),
        })
    }

    /// Replaces the clock, for tests of expiry and of the metadata document cache.
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The protected resource's identifier: the MCP endpoint's URL.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.config.issuer)
    }

    /// Where the protected resource metadata lives (for `WWW-Authenticate`).
    pub fn resource_metadata_url(&self) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            self.config.issuer
        )
    }

    /// Whether cookies must be marked `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.config.issuer.starts_with("https://")
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// RFC 9728 protected resource metadata.
    pub fn resource_metadata(&self) -> Value {
        json!({
            "resource": self.resource(),
            "authorization_servers": [self.config.issuer],
            "scopes_supported": scope_names(),
            "bearer_methods_supported": ["header"],
            "resource_name": "MCP Multiplayer",
            "resource_documentation": format!("{}/", self.config.issuer),
        })
    }

    /// RFC 8414 authorization server metadata.
    pub fn server_metadata(&self) -> Value {
        let issuer = &self.config.issuer;
        let auth_methods = ["none", "client_secret_post", "client_secret_basic"];
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "registration_endpoint": format!("{issuer}/register"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "scopes_supported": scope_names(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "service_documentation": format!("{issuer}/"),
        })
    }

    /// Checks a bearer token presented to the protected resource: known, of a kind that
    /// grants access, not revoked, not expired, issued for this resource.
    pub async fn check_bearer(&self, token: &str) -> Result<Caller, AuthError> {
        self.bearer_check(token).await.map_err(AuthError::from)
    }

    /// [`Self::check_bearer`], saying why a token is refused.
    async fn bearer_check(&self, token: &str) -> Result<Caller, BearerRefusal> {
        if !(token.starts_with(secrets::ACCESS_TOKEN) || token.starts_with(secrets::PERSONAL_TOKEN))
        {
            return Err(BearerRefusal::NotABearerToken);
        }
        let hash = SecretHash::of(token);
        let now = self.now();
        let remembered = self
            .checked
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&hash)
            .filter(|checked| checked.at.elapsed() < TOKEN_MEMORY)
            .cloned();
        if let Some(checked) = remembered {
            return match checked.expires_at {
                Some(expiry) if expiry <= now => Err(BearerRefusal::Expired),
                _ => Ok(checked.caller),
            };
        }
        let stored = self
            .store
            .token(&hash)
            .await
            .map_err(|error| BearerRefusal::Unavailable(error.to_string()))?
            .ok_or(BearerRefusal::Unknown)?;
        let record = &stored.record;
        // Personal tokens are minted by this server's operator for this server, so they carry
        // no audience; everything else must have been issued for this very resource.
        let audience_ok =
            record.kind == TokenKind::Personal || same_resource(&record.resource, &self.resource());
        if !matches!(record.kind, TokenKind::Access | TokenKind::Personal) {
            return Err(BearerRefusal::NotABearerToken);
        }
        if stored.revoked {
            return Err(BearerRefusal::Revoked);
        }
        if record.expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(BearerRefusal::Expired);
        }
        if !audience_ok {
            return Err(BearerRefusal::ForAnotherResource);
        }
        let caller = Caller {
            principal: Principal {
                id: record.person.clone(),
                display_name: stored.display_name.clone(),
            },
            scopes: Scopes::from_stored(&record.scope),
        };
        let mut checked = self
            .checked
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if checked.len() >= TOKEN_MEMORY_CAPACITY {
            checked.clear();
        }
        checked.insert(
            hash,
            Checked {
                caller: caller.clone(),
                expires_at: record.expires_at,
                at: Instant::now(),
            },
        );
        Ok(caller)
    }

    /// Forgets every remembered token check, after a revocation.
    fn forget_checks(&self) {
        self.checked
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .clear();
    }

    /// Creates a person with a checked display name.
    pub async fn create_person(&self, display_name: &str) -> Result<Person, OAuthError> {
        let display_name = check_display_name(display_name).map_err(OAuthError::invalid_request)?;
        create_person(&self.store, display_name, self.now()).await
    }

    pub async fn person(&self, id: &PrincipalId) -> Result<Option<Person>, OAuthError> {
        Ok(self.store.person(id).await?)
    }

    /// The value of the cookie that remembers `person` in this browser.
    pub fn person_cookie(&self, person: &PrincipalId) -> String {
        self.signer.sign_person(person, self.now())
    }

    /// The person a cookie value names, if the signature holds and it has not expired.
    pub fn person_from_cookie(&self, value: &str) -> Option<PrincipalId> {
        self.signer.verify_person(value, self.now())
    }

    /// Counts a request from `from` to `endpoint` against that address's allowance.
    pub fn admit(&self, endpoint: Endpoint, from: IpAddr) -> Result<(), TooManyRequests> {
        self.throttle
            .check(endpoint, from)
            .map_err(|retry_after| TooManyRequests {
                endpoint,
                retry_after,
            })
    }

    /// Removes tokens and codes that expired more than a day ago.
    pub async fn purge_expired(&self) -> Result<u64, OAuthError> {
        let day = 24 * 3600 * 1000;
        Ok(self
            .store
            .purge_expired(Timestamp(self.now().0 - day))
            .await?)
    }

    /// Forgets what strangers left behind: registered clients that never obtained a token
    /// and people who hold nothing, once older than `unused_registration_ttl`; spent consent
    /// forms past their expiry; the rate-limit buckets of addresses gone quiet.
    pub async fn sweep_unused(&self) -> Result<Swept, OAuthError> {
        self.throttle.forget_idle();
        let now = self.now();
        let before = Timestamp(now.0.saturating_sub(
            i64::try_from(self.config.unused_registration_ttl.as_millis()).unwrap_or(i64::MAX),
        ));
        Ok(self.store.sweep_unused(before, now).await?)
    }
}

/// Creates a person; shared with the personal-token command.
pub(crate) async fn create_person(
    store: &Store,
    display_name: String,
    now: Timestamp,
) -> Result<Person, OAuthError> {
    let person = Person {
        id: PrincipalId::new(secrets::id(secrets::PERSON_ID)),
        display_name,
        created_at: now,
    };
    store.create_person(person.clone()).await?;
    Ok(person)
}

/// A display name as people type it, checked by the one rule every entry point shares
/// ([`domain::names::check_display_name`]: trimmed, 1 to `MAX_DISPLAY_NAME_CHARS` characters,
/// no control, format or invisible characters).
pub fn check_display_name(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("choose a display name: it is how other players will see you".into());
    }
    domain::names::check_display_name(raw).map_err(|error| error.to_string())
}

/// Resource identifiers compare equal with or without one trailing slash (Claude sends both).
pub fn same_resource(a: &str, b: &str) -> bool {
    a.strip_suffix('/').unwrap_or(a) == b.strip_suffix('/').unwrap_or(b)
}

fn scope_names() -> Vec<&'static str> {
    Scope::ALL.iter().map(|scope| scope.as_str()).collect()
}

/// The wall clock; also used by the `token` commands.
pub(crate) fn system_now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    Timestamp(i64::try_from(millis).unwrap_or(i64::MAX))
}

fn after(now: Timestamp, ttl: Duration) -> Timestamp {
    Timestamp(
        now.0
            .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    )
}

#[cfg(test)]
mod tests;
