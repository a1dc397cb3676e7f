//! OAuth clients: registered through RFC 7591, or described by a client ID metadata document.

use serde::Deserialize;
use serde_json::{Value, json};
use store::oauth::RegisteredClient;

use super::metadata_document::is_document_url;
use super::{OAuthError, OAuthServer, redirect};
use crate::secrets;
use domain::SecretHash;

const MAX_CLIENT_NAME_CHARS: usize = 100;
/// Largest registration request read, in bytes: room for every field we keep at its cap, and
/// for the RFC 7591 fields we ignore, but not for padding.
pub const MAX_REGISTRATION_BYTES: usize = 8 * 1024;

/// A client as the authorization endpoint needs it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// The stored secret's hash, for confidential registered clients.
    pub secret_hash: Option<SecretHash>,
}

/// The fields of an RFC 7591 registration request that we act on; others are ignored.
#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<String>,
}

fn invalid_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client_metadata", description)
}

impl OAuthServer {
    /// Registers a client and answers with its RFC 7591 client information.
    pub async fn register(&self, request: RegistrationRequest) -> Result<Value, OAuthError> {
        if request.redirect_uris.is_empty() {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                "register at least one redirect_uri",
            ));
        }
        if request.redirect_uris.len() > redirect::MAX_REDIRECT_URIS {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                format!(
                    "at most {} redirect_uris per client",
                    redirect::MAX_REDIRECT_URIS
                ),
            ));
        }
        for uri in &request.redirect_uris {
            redirect::check_registrable(uri)
                .map_err(|problem| OAuthError::new("invalid_redirect_uri", problem))?;
        }
        let auth_method = request
            .token_endpoint_auth_method
            .clone()
            .unwrap_or_else(|| "client_secret_basic".to_owned());
        if !matches!(
            auth_method.as_str(),
            "none" | "client_secret_post" | "client_secret_basic"
        ) {
            return Err(invalid_metadata(format!(
                "token_endpoint_auth_method {auth_method:?} is not supported; use none, client_secret_post or client_secret_basic"
            )));
        }
        if let Some(grants) = &request.grant_types
            && let Some(other) = grants
                .iter()
                .find(|grant| !matches!(grant.as_str(), "authorization_code" | "refresh_token"))
        {
            return Err(invalid_metadata(format!(
                "grant type {other:?} is not supported; use authorization_code and refresh_token"
            )));
        }
        if let Some(types) = &request.response_types
            && types.iter().any(|kind| kind != "code")
        {
            return Err(invalid_metadata(
                "only the \"code\" response type is supported",
            ));
        }
        if let Some(scope) = &request.scope {
            crate::Scopes::parse_request(Some(scope))
                .map_err(|unknown| invalid_metadata(format!("unknown scope {unknown:?}")))?;
        }
        let name = match request.client_name.as_deref().map(str::trim) {
            Some(name) if name.chars().count() > MAX_CLIENT_NAME_CHARS => {
                return Err(invalid_metadata(format!(
                    "client_name has at most {MAX_CLIENT_NAME_CHARS} characters"
                )));
            }
            // The consent page shows this name to a person deciding whom to trust: no bidi
            // override or invisible character may make it read as another client's.
            Some(name) if let Some(hidden) = domain::names::hidden_character(name) => {
                return Err(invalid_metadata(format!(
                    "client_name contains U+{:04X}; control and invisible formatting \
                     characters are not allowed",
                    u32::from(hidden)
                )));
            }
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => redirect::display_host(&request.redirect_uris[0]),
        };
        let secret = (auth_method != "none").then(|| secrets::secret(secrets::CLIENT_SECRET));
        let now = self.now();
        let client = RegisteredClient {
            client_id: secrets::id(secrets::CLIENT_ID),
            secret_hash: secret.as_deref().map(SecretHash::of),
            name,
            redirect_uris: request.redirect_uris,
            auth_method,
            created_at: now,
        };
        self.store.register_client(client.clone()).await?;
        tracing::info!(client = %client.client_id, name = %client.name, "client registered");
        let mut answer = json!({
            "client_id": client.client_id,
            "client_id_issued_at": now.0 / 1000,
            "client_name": client.name,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": client.auth_method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        });
        if let Some(secret) = secret {
            answer["client_secret"] = json!(secret);
            answer["client_secret_expires_at"] = json!(0);
        }
        Ok(answer)
    }

    /// Finds a client by id: registered, or fetched from its metadata document.
    pub async fn client(&self, client_id: &str) -> Result<Client, OAuthError> {
        if is_document_url(client_id) {
            let document = self
                .documents
                .resolve(client_id, self.now())
                .await
                .map_err(OAuthError::invalid_client)?;
            return Ok(Client {
                client_id: document.client_id.clone(),
                name: document.name.clone(),
                redirect_uris: document.redirect_uris.clone(),
                secret_hash: None,
            });
        }
        let registered = self
            .store
            .registered_client(client_id)
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_client(
                    "unknown client_id; register the client again (POST /register)",
                )
            })?;
        Ok(Client {
            client_id: registered.client_id,
            name: registered.name,
            redirect_uris: registered.redirect_uris,
            secret_hash: registered.secret_hash,
        })
    }
}
