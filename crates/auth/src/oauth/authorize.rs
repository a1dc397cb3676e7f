//! The authorization endpoint's rules: which requests are valid, what is shown to the person,
//! and the redirect that carries the code (or the refusal) back to the client.
//!
//! Until the client and its redirect URI are known to match, nothing is sent to the redirect
//! URI: such errors are shown to the person instead (RFC 6749 §4.1.2.1). Nor is anything sent
//! there before a person has approved the client once: anyone can register a client, so its
//! redirect URI proves nothing, and redirecting its errors would make us an open redirector
//! (RFC 9700 §4.11.2).

use std::net::IpAddr;

use domain::{PrincipalId, SecretHash};
use serde::{Deserialize, Serialize};
use store::oauth::AuthorizationCode;

use super::redirect::with_params;
use super::{ApprovalMode, OAuthError, OAuthServer, after, same_resource};
use crate::scope::Scopes;
use crate::secrets;

/// How long an authorization code may wait for its exchange.
pub const CODE_TTL: std::time::Duration = std::time::Duration::from_secs(120);
/// Longest `state` echoed back, in bytes.
const MAX_STATE_BYTES: usize = 2048;

/// The query (or form) of an authorization request, as received.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
}

/// Why an authorization request cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: tell the person, not the client.
    Page { title: String, detail: String },
    /// Tell the client, through its redirect URI (this is the full URL to redirect to).
    Redirect(String),
}

/// A valid authorization request, ready for consent.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The parameters as received, to carry through the consent form.
    pub params: AuthorizeParams,
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scopes: Scopes,
    pub resource: String,
}

/// The person's answer on the consent page.
#[derive(Debug, Clone)]
pub enum Consent {
    Approve(PrincipalId),
    Deny,
}

impl OAuthServer {
    /// Validates an authorization request.
    pub async fn check_authorize(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        let page = |title: &str, detail: String| AuthorizeError::Page {
            title: title.to_owned(),
            detail,
        };
        let client_id = params
            .client_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                page(
                    "The app did not say who it is",
                    "The request has no client_id. Start again from your app.".into(),
                )
            })?;
        let client = self.client(client_id).await.map_err(|error| {
            page(
                "This app is not known here",
                format!(
                    "{} Remove and add the connector again in your app.",
                    error.description
                ),
            )
        })?;
        let redirect_uri = match params.redirect_uri.as_deref() {
            Some(uri) if client.redirect_uris.iter().any(|known| known == uri) => uri.to_owned(),
            Some(_) => {
                return Err(page(
                    "The return address does not match",
                    "The app asked to send you back to an address it did not register. \
                     Nothing was shared. Start again from your app."
                        .into(),
                ));
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => {
                return Err(page(
                    "The return address is missing",
                    "The app registered several return addresses and did not say which one \
                     to use. Start again from your app."
                        .into(),
                ));
            }
        };
        let approved = self
            .store
            .client_approved(&client.client_id)
            .await
            .map_err(|error| {
                page(
                    "Something went wrong on our side",
                    format!(
                        "{} Try again in a moment.",
                        OAuthError::from(error).description
                    ),
                )
            })?;
        let state = params.state.clone();
        let refuse = |error: &str, description: &str| {
            if approved {
                AuthorizeError::Redirect(self.error_redirect(
                    &redirect_uri,
                    state.as_deref(),
                    error,
                    description,
                ))
            } else {
                page(
                    "This sign-in request is not valid",
                    format!(
                        "{description} ({error}). Nothing was shared, and you were not sent \
                         on to the app. Start again from your app."
                    ),
                )
            }
        };
        if state
            .as_ref()
            .is_some_and(|state| state.len() > MAX_STATE_BYTES)
        {
            return Err(refuse("invalid_request", "state is too long"));
        }
        if params.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let Some(challenge) = params.code_challenge.as_deref() else {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        };
        if params.code_challenge_method.as_deref() != Some("S256") {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        if !is_s256_challenge(challenge) {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be the 43-character base64url SHA-256 of the verifier",
            ));
        }
        let scopes = Scopes::parse_request(params.scope.as_deref()).map_err(|unknown| {
            refuse(
                "invalid_scope",
                &format!("unknown scope {unknown:?}; this server offers mcp:read and mcp:write"),
            )
        })?;
        let resource = match params.resource.as_deref() {
            None => self.resource(),
            Some(asked) if self.serves(asked) => self.resource(),
            Some(_) => {
                return Err(refuse(
                    "invalid_target",
                    &format!("this server only issues tokens for {}", self.resource()),
                ));
            }
        };
        Ok(AuthorizeRequest {
            params: params.clone(),
            client_id: client.client_id,
            client_name: client.name,
            redirect_uri,
            state,
            code_challenge: challenge.to_owned(),
            scopes,
            resource,
        })
    }

    /// Whether `resource` names this server's protected resource: the MCP endpoint, or the
    /// server's base URL, with or without a trailing slash.
    pub(crate) fn serves(&self, resource: &str) -> bool {
        same_resource(resource, &self.resource()) || same_resource(resource, self.issuer())
    }

    /// Records the person's answer and returns where to send their browser.
    pub async fn decide(
        &self,
        request: &AuthorizeRequest,
        consent: Consent,
    ) -> Result<String, OAuthError> {
        let person = match consent {
            Consent::Deny => {
                return Ok(self.error_redirect(
                    &request.redirect_uri,
                    request.state.as_deref(),
                    "access_denied",
                    "the person declined to connect",
                ));
            }
            Consent::Approve(person) => person,
        };
        let code = secrets::secret(secrets::AUTHORIZATION_CODE);
        self.store
            .insert_code(AuthorizationCode {
                code_hash: SecretHash::of(&code),
                client_id: request.client_id.clone(),
                person: person.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                resource: request.resource.clone(),
                scope: request.scopes.to_string(),
                expires_at: after(self.now(), CODE_TTL),
            })
            .await?;
        tracing::info!(client = %request.client_id, person = %person, "authorization granted");
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = request.state.as_deref() {
            params.push(("state", state));
        }
        params.push(("iss", self.issuer()));
        Ok(with_params(&request.redirect_uri, &params))
    }

    /// Approves at once for a fresh person (the `auto` approval mode).
    pub async fn approve_automatically(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<String, OAuthError> {
        let suffix = &secrets::id("")[..6];
        let person = self.create_person(&format!("guest-{suffix}")).await?;
        self.decide(request, Consent::Approve(person.id)).await
    }

    /// The token that ties a consent form to this request, so a submitted form cannot swap
    /// the client, the redirect URI or the scopes.
    pub fn form_token(&self, request: &AuthorizeRequest) -> String {
        self.signer.sign_form(&form_fields(request), self.now())
    }

    /// Accepts a submitted consent form's token once: it must be ours, for this very request,
    /// unexpired and never submitted before. A spent token is remembered until it expires.
    pub async fn spend_form_token(
        &self,
        request: &AuthorizeRequest,
        token: &str,
    ) -> Result<bool, OAuthError> {
        let Some(expires_at) = self
            .signer
            .verify_form(&form_fields(request), token, self.now())
        else {
            return Ok(false);
        };
        Ok(self
            .store
            .spend_form(&SecretHash::of(token), expires_at)
            .await?)
    }

    /// Whether the typed passphrase opens this server (always yes outside passphrase mode).
    ///
    /// Each client address gets [`super::PASSPHRASE_ATTEMPTS`] attempts, then one a minute,
    /// right or wrong: guessing takes years instead of hours. `from` is the address the HTTP
    /// layer determined (behind a trusted proxy, the forwarded one).
    pub fn check_passphrase(&self, typed: Option<&str>, from: IpAddr) -> PassphraseCheck {
        let ApprovalMode::Passphrase(configured) = &self.config.approval else {
            return PassphraseCheck::Right;
        };
        if let Err(wait) = self.throttle.check_passphrase(from) {
            return PassphraseCheck::TooManyAttempts { wait };
        }
        if self
            .signer
            .same_passphrase(typed.unwrap_or_default(), configured)
        {
            PassphraseCheck::Right
        } else {
            PassphraseCheck::Wrong
        }
    }

    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &str,
        description: &str,
    ) -> String {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(state) = state {
            params.push(("state", state));
        }
        params.push(("iss", self.issuer()));
        with_params(redirect_uri, &params)
    }
}

fn form_fields(request: &AuthorizeRequest) -> [&str; 6] {
    [
        &request.client_id,
        &request.redirect_uri,
        request.state.as_deref().unwrap_or(""),
        &request.code_challenge,
        &request.resource,
        request.params.scope.as_deref().unwrap_or(""),
    ]
}

/// A base64url SHA-256 digest without padding is exactly 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The outcome of a passphrase on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphraseCheck {
    Right,
    Wrong,
    /// This address used up its attempts; the next one is allowed after `wait`.
    TooManyAttempts {
        wait: std::time::Duration,
    },
}
