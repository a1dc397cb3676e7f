//! What a person has connected, for the connections page: each grant an app holds (one
//! authorization, a family of access and refresh tokens) and each personal token, and how the
//! person disconnects one. Also the token a signed-in person's page forms carry, and signing in
//! on a new browser with a personal token.

use std::collections::BTreeMap;

use domain::{PrincipalId, SecretHash, Timestamp};
use store::oauth::{Person, StoredToken, TokenKind};

use super::metadata_document::is_document_url;
use super::redirect::display_host;
use super::{OAuthError, OAuthServer};
use crate::secrets;

/// One live grant or personal token of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The token family: what disconnecting revokes.
    pub family: String,
    pub holder: Holder,
    /// Space-separated scopes.
    pub scope: String,
    /// When the grant was made.
    pub since: Timestamp,
    /// When its last live token expires; `None` for a personal token without expiry.
    pub expires_at: Option<Timestamp>,
}

/// Who holds a connection's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// An OAuth client: its registered name, or the host of its metadata document.
    App { client_id: String, name: String },
    /// A personal token the operator issued, by its name.
    Personal { name: String },
}

impl OAuthServer {
    /// The person's live connections, oldest first. A family counts while one of its tokens is
    /// unexpired and not spent by a rotation.
    pub async fn connections(&self, person: &PrincipalId) -> Result<Vec<Connection>, OAuthError> {
        let now = self.now();
        let mut families: BTreeMap<String, Vec<StoredToken>> = BTreeMap::new();
        for token in self.store.tokens_of(person).await? {
            families
                .entry(token.record.family.clone())
                .or_default()
                .push(token);
        }
        let mut connections = Vec::new();
        for (family, tokens) in families {
            let live: Vec<&StoredToken> = tokens
                .iter()
                .filter(|token| {
                    !token.rotated && token.record.expires_at.is_none_or(|expiry| expiry > now)
                })
                .collect();
            let Some(first) = tokens.first() else {
                continue;
            };
            if live.is_empty() {
                continue;
            }
            let expires_at = if live.iter().any(|token| token.record.expires_at.is_none()) {
                None
            } else {
                live.iter()
                    .filter_map(|token| token.record.expires_at)
                    .max()
            };
            let holder = match (&first.record.kind, &first.record.client_id) {
                (TokenKind::Personal, _) | (_, None) => Holder::Personal {
                    name: first.record.name.clone().unwrap_or_default(),
                },
                (_, Some(client_id)) => Holder::App {
                    client_id: client_id.clone(),
                    name: self.client_name(client_id).await?,
                },
            };
            connections.push(Connection {
                family,
                holder,
                scope: first.record.scope.clone(),
                since: first.record.created_at,
                expires_at,
            });
        }
        connections.sort_by_key(|connection| connection.since);
        Ok(connections)
    }

    /// Revokes one of the person's connections. `false` when the family is not theirs (or is
    /// already gone): nobody revokes another person's grant by guessing its id.
    pub async fn disconnect(&self, person: &PrincipalId, family: &str) -> Result<bool, OAuthError> {
        let theirs = self
            .store
            .tokens_of(person)
            .await?
            .iter()
            .any(|token| token.record.family == family);
        if !theirs {
            return Ok(false);
        }
        self.store.revoke_family(family, self.now()).await?;
        self.forget_checks();
        Ok(true)
    }

    /// The token every form of `person`'s signed-in pages carries (against cross-site requests).
    pub fn page_form_token(&self, person: &PrincipalId) -> String {
        self.signer.sign_page_form(person, self.now())
    }

    /// Whether a submitted page form's token is `person`'s and live.
    pub fn check_page_form_token(&self, person: &PrincipalId, token: &str) -> bool {
        self.signer.verify_page_form(person, token, self.now())
    }

    /// A fresh nonce for a sign-in form, to keep in a cookie, and the form token bound to it:
    /// a page elsewhere cannot sign this browser in as someone else, since it can neither read
    /// nor set the cookie.
    pub fn sign_in_form(&self) -> (String, String) {
        let nonce = hex::encode(secrets::random_bytes::<16>());
        let token = self
            .signer
            .sign_page_form(&sign_in_subject(&nonce), self.now());
        (nonce, token)
    }

    /// Whether a submitted sign-in form's token belongs to the nonce this browser holds.
    pub fn check_sign_in_form(&self, nonce: &str, token: &str) -> bool {
        !nonce.is_empty()
            && self
                .signer
                .verify_page_form(&sign_in_subject(nonce), token, self.now())
    }

    /// The person a live personal token names, and the token's family: how someone signs in on
    /// a browser that never approved an app. Access tokens are refused: they belong to an app,
    /// not to a browser.
    pub async fn person_of_personal_token(
        &self,
        token: &str,
    ) -> Result<Option<(Person, String)>, OAuthError> {
        let token = token.trim();
        if !token.starts_with(secrets::PERSONAL_TOKEN) {
            return Ok(None);
        }
        let Some(stored) = self.store.token(&SecretHash::of(token)).await? else {
            return Ok(None);
        };
        let record = &stored.record;
        let live = record.kind == TokenKind::Personal
            && !stored.revoked
            && record.expires_at.is_none_or(|expiry| expiry > self.now());
        if !live {
            return Ok(None);
        }
        let family = record.family.clone();
        Ok(self
            .store
            .person(&record.person)
            .await?
            .map(|person| (person, family)))
    }

    /// The cookie value of a session signed in with the personal token of `family`: it names
    /// the person only while that token lives ([`Self::session_from_cookie`]).
    pub fn person_cookie_via(&self, person: &PrincipalId, family: &str) -> String {
        self.signer.sign_person_via(person, family, self.now())
    }

    /// The person a pages session cookie names: a consent page's cookie, or one from signing in
    /// with a personal token that is still live (revoking the token ends the session).
    pub async fn session_from_cookie(
        &self,
        value: &str,
    ) -> Result<Option<PrincipalId>, OAuthError> {
        if let Some(person) = self.person_from_cookie(value) {
            return Ok(Some(person));
        }
        let Some((person, family)) = self.signer.verify_person_via(value, self.now()) else {
            return Ok(None);
        };
        let now = self.now();
        let live = self.store.tokens_of(&person).await?.iter().any(|token| {
            token.record.family == family
                && token.record.kind == TokenKind::Personal
                && token.record.expires_at.is_none_or(|expiry| expiry > now)
        });
        Ok(live.then_some(person))
    }

    /// A client's name for people: the registered name, or its metadata document's host (never
    /// fetched here: a page load must not make outbound requests).
    async fn client_name(&self, client_id: &str) -> Result<String, OAuthError> {
        if is_document_url(client_id) {
            return Ok(display_host(client_id));
        }
        Ok(self.store.registered_client(client_id).await?.map_or_else(
            || "an app that was deleted".to_owned(),
            |client| client.name,
        ))
    }
}

/// What a sign-in form's token is bound to: never a person's id (those start `usr_`).
fn sign_in_subject(nonce: &str) -> PrincipalId {
    PrincipalId::new(format!("sign-in:{nonce}"))
}
