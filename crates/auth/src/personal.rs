//! Personal tokens: long-lived bearer tokens for scripts and curl, issued by the operator
//! with `mcp-multiplayer token create`. They work like access tokens, name a person, and can
//! be listed and revoked.

use domain::{PrincipalId, SecretHash, Timestamp};
use store::Store;
use store::oauth::{StoredToken, TokenKind, TokenRecord};

use crate::oauth::{OAuthError, check_display_name, create_person, system_now};
use crate::scope::Scopes;
use crate::secrets;

/// What `token create` asks for.
#[derive(Debug, Clone)]
pub struct PersonalTokenRequest {
    /// Unique among live personal tokens; how `list` and `revoke` refer to it.
    pub name: String,
    /// The person the token acts as; `None` creates a new person named `display_name`.
    pub person: Option<PrincipalId>,
    pub display_name: Option<String>,
    pub scopes: Scopes,
    /// `None` for a token that never expires.
    pub expires_in: Option<std::time::Duration>,
}

/// A token just issued: the only time its value exists outside the caller's hands.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub person: PrincipalId,
    pub display_name: String,
    pub expires_at: Option<Timestamp>,
}

/// Issues a personal token.
pub async fn create(store: &Store, request: PersonalTokenRequest) -> Result<IssuedToken, String> {
    let name = check_token_name(&request.name)?;
    if store
        .personal_tokens()
        .await
        .map_err(|error| error.to_string())?
        .iter()
        .any(|token| !token.revoked && token.record.name.as_deref() == Some(name.as_str()))
    {
        return Err(format!(
            "a live personal token is already named {name:?}; revoke it or pick another name"
        ));
    }
    let now = system_now();
    let person = match &request.person {
        Some(id) => store
            .person(id)
            .await
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("no person {id}; see `token list` for known people"))?,
        None => {
            let display_name =
                check_display_name(request.display_name.as_deref().unwrap_or(&name))?;
            create_person(store, display_name, now)
                .await
                .map_err(|error: OAuthError| error.description)?
        }
    };
    let token = secrets::secret(secrets::PERSONAL_TOKEN);
    let expires_at = request.expires_in.map(|ttl| {
        Timestamp(
            now.0
                .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        )
    });
    store
        .insert_token(TokenRecord {
            token_hash: SecretHash::of(&token),
            kind: TokenKind::Personal,
            family: secrets::id(secrets::FAMILY_ID),
            person: person.id.clone(),
            client_id: None,
            resource: String::new(),
            scope: request.scopes.to_string(),
            name: Some(name),
            created_at: now,
            expires_at,
        })
        .await
        .map_err(|error| error.to_string())?;
    Ok(IssuedToken {
        token,
        person: person.id,
        display_name: person.display_name,
        expires_at,
    })
}

/// Every personal token, live ones first.
pub async fn list(store: &Store) -> Result<Vec<StoredToken>, String> {
    store
        .personal_tokens()
        .await
        .map_err(|error| error.to_string())
}

/// Revokes the live personal token called `name`.
pub async fn revoke(store: &Store, name: &str) -> Result<(), String> {
    let tokens = list(store).await?;
    let token = tokens
        .iter()
        .find(|token| !token.revoked && token.record.name.as_deref() == Some(name))
        .ok_or_else(|| format!("no live personal token named {name:?}; see `token list`"))?;
    store
        .revoke_family(&token.record.family, system_now())
        .await
        .map_err(|error| error.to_string())?;
    Ok(())
}

fn check_token_name(raw: &str) -> Result<String, String> {
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err("a token name is 1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}
