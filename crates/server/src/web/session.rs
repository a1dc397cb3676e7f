//! Who is looking at a page: a person signed in by the person cookie, or a visitor.
//!
//! The cookie is the one the consent page sets (signed by the authorization server, a year
//! long); the sign-in page sets the same one for someone new, and for someone signing in with a
//! personal token one that also names the token, so that revoking the token ends the session. A signed-in person acts with full access, as they
//! would through an app they approved, and their page loads count against the same
//! per-principal rate limit as their apps' calls.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use service::{Caller, Principal};

use super::{PageError, WebState};
use crate::cookies;

/// The visitor of a page; [`Visitor::signed_in`] is `None` for someone not signed in.
pub struct Visitor {
    pub signed_in: Option<SignedIn>,
}

/// A signed-in person.
pub struct SignedIn {
    pub caller: Caller,
    /// The token this person's forms carry.
    pub form_token: String,
}

impl SignedIn {
    pub fn name(&self) -> &str {
        &self.caller.principal.display_name
    }
}

impl Visitor {
    /// The signed-in person, or the page that asks them to sign in.
    pub fn require(&self) -> Result<&SignedIn, PageError> {
        self.signed_in
            .as_ref()
            .ok_or_else(PageError::sign_in_needed)
    }
}

impl FromRequestParts<Arc<WebState>> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Self, Self::Rejection> {
        let anonymous = Visitor { signed_in: None };
        let Some(oauth) = &state.oauth else {
            return Ok(anonymous);
        };
        let Some(value) = cookies::read(&parts.headers, cookies::PERSON_COOKIE) else {
            return Ok(anonymous);
        };
        let id = match oauth.session_from_cookie(value).await {
            Ok(Some(id)) => id,
            Ok(None) => return Ok(anonymous),
            Err(error) => return Err(service::ServiceError::internal(error.description).into()),
        };
        // A person swept away (they held nothing for a day) leaves a cookie naming nobody.
        let person = match oauth.person(&id).await {
            Ok(Some(person)) => person,
            Ok(None) => return Ok(anonymous),
            Err(error) => return Err(service::ServiceError::internal(error.description).into()),
        };
        state.service.admit_request(&person.id)?;
        let form_token = oauth.page_form_token(&person.id);
        Ok(Visitor {
            signed_in: Some(SignedIn {
                caller: Caller::writer(Principal {
                    id: person.id,
                    display_name: person.display_name,
                }),
                form_token,
            }),
        })
    }
}
