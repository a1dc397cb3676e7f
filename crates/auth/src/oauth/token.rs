//! The token endpoint (authorization code with PKCE, refresh with rotation) and revocation.
//!
//! Refresh tokens rotate on every use. Presenting a refresh token that was already used means
//! two parties hold it, so the whole family (every token of that grant) is revoked. A replayed
//! authorization code revokes what it was exchanged for, for the same reason.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::SecretHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::oauth::{CodeExchange, Rotation, TokenKind, TokenRecord};

use super::{Client, OAuthError, OAuthServer, after};
use crate::scope::Scopes;
use crate::secrets;

/// The form of a token or revocation request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    /// Revocation only (RFC 7009).
    pub token: Option<String>,
}

/// Client credentials from an `Authorization: Basic` header.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub scope: String,
}

impl OAuthServer {
    /// Answers a token request.
    pub async fn token(
        &self,
        params: TokenParams,
        basic: Option<ClientCredentials>,
    ) -> Result<TokenResponse, OAuthError> {
        match params.grant_type.as_deref() {
            Some("authorization_code") => {
                let client = self.authenticate_client(&params, basic).await?;
                self.exchange_code(&params, &client).await
            }
            Some("refresh_token") => {
                let client = self.authenticate_client(&params, basic).await?;
                self.refresh(&params, &client).await
            }
            Some(other) => Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type {other:?} is not supported; use authorization_code or refresh_token"
                ),
            )),
            None => Err(OAuthError::invalid_request("grant_type is missing")),
        }
    }

    /// RFC 7009: revokes a refresh token's family, or a single access token. Unknown tokens
    /// and tokens of other clients are ignored, as the RFC asks.
    pub async fn revoke(
        &self,
        params: TokenParams,
        basic: Option<ClientCredentials>,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate_client(&params, basic).await?;
        let Some(token) = params.token.as_deref() else {
            return Err(OAuthError::invalid_request("token is missing"));
        };
        let Some(stored) = self.store.token(&SecretHash::of(token)).await? else {
            return Ok(());
        };
        if stored.record.client_id.as_deref() != Some(client.client_id.as_str()) {
            return Ok(());
        }
        self.store
            .revoke_family(&stored.record.family, self.now())
            .await?;
        self.forget_checks();
        tracing::info!(client = %client.client_id, "grant revoked by its client");
        Ok(())
    }

    /// Identifies the client: public clients by `client_id`; confidential ones by their
    /// secret, in the form or in an `Authorization: Basic` header.
    async fn authenticate_client(
        &self,
        params: &TokenParams,
        basic: Option<ClientCredentials>,
    ) -> Result<Client, OAuthError> {
        let (client_id, secret) = match (&basic, &params.client_id) {
            (Some(basic), Some(form)) if *form != basic.client_id => {
                return Err(OAuthError::invalid_request(
                    "client_id in the form and in the Authorization header differ",
                ));
            }
            (Some(basic), _) => (basic.client_id.clone(), Some(basic.client_secret.clone())),
            (None, Some(form)) => (form.clone(), params.client_secret.clone()),
            (None, None) => {
                return Err(OAuthError::invalid_client(
                    "client_id is missing; public clients send it in the form",
                ));
            }
        };
        // A metadata-document client is public and was checked when it asked for the code:
        // the code (or refresh token) it presents must name the same client_id.
        if super::metadata_document::is_document_url(&client_id) {
            return Ok(Client {
                client_id,
                name: String::new(),
                redirect_uris: Vec::new(),
                secret_hash: None,
            });
        }
        let client = self.client(&client_id).await?;
        match (&client.secret_hash, secret) {
            (None, _) => Ok(client),
            (Some(expected), Some(secret)) if SecretHash::of(&secret) == *expected => Ok(client),
            (Some(_), _) => Err(OAuthError::invalid_client(
                "client authentication failed: wrong or missing client_secret",
            )),
        }
    }

    async fn exchange_code(
        &self,
        params: &TokenParams,
        client: &Client,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params
            .code
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let hash = SecretHash::of(code);
        let now = self.now();
        let Some((stored, spent)) = self.store.code(&hash).await? else {
            return Err(OAuthError::invalid_grant("unknown authorization code"));
        };
        if spent {
            // Exchanging it again revokes what the first exchange gave.
            self.store.exchange_code(&hash, now, Vec::new()).await?;
            self.forget_checks();
            tracing::warn!(client = %client.client_id, "authorization code replayed; its tokens are revoked");
            return Err(OAuthError::invalid_grant(
                "authorization code already used; the tokens issued for it are revoked",
            ));
        }
        if stored.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if stored.expires_at <= now {
            return Err(OAuthError::invalid_grant(
                "the authorization code expired; authorize again",
            ));
        }
        if params.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the one of the authorization request",
            ));
        }
        let verifier = params.code_verifier.as_deref().ok_or_else(|| {
            OAuthError::invalid_request("code_verifier is missing (PKCE is required)")
        })?;
        if !verifier_matches(verifier, &stored.code_challenge) {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        if let Some(resource) = params.resource.as_deref()
            && !self.serves(resource)
        {
            return Err(OAuthError::new(
                "invalid_target",
                format!("this server only issues tokens for {}", self.resource()),
            ));
        }
        let family = secrets::id(secrets::FAMILY_ID);
        let scopes = Scopes::from_stored(&stored.scope);
        let (response, records) = self.mint(
            &family,
            &stored.person,
            &client.client_id,
            &stored.resource,
            scopes,
        );
        match self.store.exchange_code(&hash, now, records).await? {
            CodeExchange::Issued => Ok(response),
            CodeExchange::Replayed | CodeExchange::Unknown => {
                self.forget_checks();
                Err(OAuthError::invalid_grant("authorization code already used"))
            }
        }
    }

    async fn refresh(
        &self,
        params: &TokenParams,
        client: &Client,
    ) -> Result<TokenResponse, OAuthError> {
        let token = params
            .refresh_token
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let hash = SecretHash::of(token);
        let now = self.now();
        let stored = self
            .store
            .token(&hash)
            .await?
            .filter(|stored| stored.record.kind == TokenKind::Refresh)
            .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
        let record = &stored.record;
        if record.client_id.as_deref() != Some(client.client_id.as_str()) {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if stored.revoked {
            return Err(OAuthError::invalid_grant(
                "the refresh token was revoked; authorize again",
            ));
        }
        if record.expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(OAuthError::invalid_grant(
                "the refresh token expired; authorize again",
            ));
        }
        let granted = Scopes::from_stored(&record.scope);
        let scopes = match params.scope.as_deref() {
            None => granted,
            Some(asked) => {
                let asked = Scopes::parse_request(Some(asked)).map_err(|unknown| {
                    OAuthError::new("invalid_scope", format!("unknown scope {unknown:?}"))
                })?;
                if !asked.is_subset_of(granted) {
                    return Err(OAuthError::new(
                        "invalid_scope",
                        "a refresh cannot widen the scope of the grant",
                    ));
                }
                asked
            }
        };
        if let Some(resource) = params.resource.as_deref()
            && !self.serves(resource)
        {
            return Err(OAuthError::new(
                "invalid_target",
                format!("this server only issues tokens for {}", self.resource()),
            ));
        }
        let (response, records) = self.mint(
            &record.family,
            &record.person,
            &client.client_id,
            &record.resource,
            scopes,
        );
        match self.store.rotate_refresh(&hash, now, records).await? {
            Rotation::Rotated => Ok(response),
            Rotation::Reused => {
                self.forget_checks();
                tracing::warn!(client = %client.client_id, "refresh token reused; its family is revoked");
                Err(OAuthError::invalid_grant(
                    "refresh token already used; every token of this grant is now revoked — authorize again",
                ))
            }
            Rotation::Unknown => Err(OAuthError::invalid_grant("unknown refresh token")),
        }
    }

    /// A new access and refresh token for one grant.
    fn mint(
        &self,
        family: &str,
        person: &domain::PrincipalId,
        client_id: &str,
        resource: &str,
        scopes: Scopes,
    ) -> (TokenResponse, Vec<TokenRecord>) {
        let now = self.now();
        let access = secrets::secret(secrets::ACCESS_TOKEN);
        let refresh = secrets::secret(secrets::REFRESH_TOKEN);
        let record = |token: &str, kind, ttl| TokenRecord {
            token_hash: SecretHash::of(token),
            kind,
            family: family.to_owned(),
            person: person.clone(),
            client_id: Some(client_id.to_owned()),
            resource: resource.to_owned(),
            scope: scopes.to_string(),
            name: None,
            created_at: now,
            expires_at: Some(after(now, ttl)),
        };
        let records = vec![
            record(&access, TokenKind::Access, self.config.access_token_ttl),
            record(&refresh, TokenKind::Refresh, self.config.refresh_token_ttl),
        ];
        let response = TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl.as_secs(),
            refresh_token: refresh,
            scope: scopes.to_string(),
        };
        (response, records)
    }
}

/// PKCE S256: `BASE64URL(SHA256(verifier)) == challenge`, with the verifier's shape checked
/// (43 to 128 unreserved characters, RFC 7636 §4.1).
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    shaped && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
    }
}
