//! Signing in to the pages and out again.
//!
//! In the browser where a person allowed an app on the consent page they are signed in
//! already (the same cookie). Elsewhere they sign in with a personal token, or, where the
//! server lets anyone in (or they know its passphrase), as someone new. Both forms are bound to
//! a nonce cookie, so another site cannot sign this browser in as someone else; the attempts
//! count against the per-address allowance of the consent page.

use std::net::{IpAddr, Ipv4Addr};

use auth::oauth::{Endpoint, PassphraseCheck};
use auth::{ApprovalMode, OAuthServer};
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::session::Visitor;
use super::{PageError, Shared, check_form, layout, respond};
use crate::client_address::ClientAddress;
use crate::cookies;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    form_token: String,
    /// `token` or `new`.
    #[serde(default)]
    how: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    display_name: String,
    passphrase: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SignOutForm {
    #[serde(default)]
    form_token: String,
}

/// `GET /signin`.
pub(super) async fn page(
    State(state): Shared,
    visitor: Visitor,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    let Some(oauth) = &state.oauth else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No sign-in under development authentication",
            "This server runs with --auth dev, where each bearer token is its own user and \
             nobody signs in to pages. Run it with --auth oauth (the default) for the pages.",
        ));
    };
    Ok(render(
        oauth,
        &visitor,
        next.next.as_deref(),
        None,
        StatusCode::OK,
    ))
}

fn render(
    oauth: &OAuthServer,
    visitor: &Visitor,
    next: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let (nonce, form_token) = oauth.sign_in_form();
    let ask_passphrase = matches!(oauth.config().approval, ApprovalMode::Passphrase(_));
    let next = safe_next(next);
    let body = html! {
        h1 { "Sign in" }
        @if let Some(person) = &visitor.signed_in {
            p.lead { "You are signed in as " strong { (person.name()) } ". Signing in again \
                switches this browser to another person." }
        } @else {
            p.lead { "In the browser where you allowed Claude, ChatGPT or another app to play as \
                you, you are signed in already." }
        }
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        div.columns {
            section.card aria-labelledby="with-token" {
                h2 #with-token { "With a personal token" }
                form method="post" action="/signin" {
                    input type="hidden" name="form_token" value=(form_token);
                    input type="hidden" name="how" value="token";
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Personal token" }
                    input #token name="token" type="password" required autocomplete="off"
                        placeholder="mcp_pat_…";
                    p.note { "The operator issues these with " code { "mcp-multiplayer token create" } "." }
                    button.primary type="submit" { "Sign in" }
                }
            }
            section.card aria-labelledby="as-new" {
                h2 #as-new { "New here" }
                form method="post" action="/signin" {
                    input type="hidden" name="form_token" value=(form_token);
                    input type="hidden" name="how" value="new";
                    input type="hidden" name="next" value=(next);
                    label for="display_name" { "Your name for other players" }
                    input #display_name name="display_name" maxlength="64" required
                        autocomplete="nickname" placeholder="e.g. Ada";
                    @if ask_passphrase {
                        label for="passphrase" { "Server passphrase" }
                        input #passphrase name="passphrase" type="password" required
                            autocomplete="current-password";
                    }
                    button.primary type="submit" { "Continue as someone new" }
                }
            }
        }
    };
    let mut response = respond(status, layout::page("Sign in", visitor, &[], body));
    if let Ok(cookie) = HeaderValue::from_str(&cookies::sign_in_nonce(oauth, &nonce)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /signin`.
pub(super) async fn submit(
    State(state): Shared,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    visitor: Visitor,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    let oauth = state.oauth.as_ref().ok_or_else(PageError::sign_in_needed)?;
    let from = address.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ClientAddress(ip))| ip,
    );
    if let Err(refused) = oauth.admit(Endpoint::Authorize, from) {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            format!(
                "Too many sign-in attempts from your network. Try again in {} s.",
                refused.retry_after_secs()
            ),
        ));
    }
    let nonce = cookies::read(&headers, cookies::SIGN_IN_COOKIE).unwrap_or_default();
    if !oauth.check_sign_in_form(nonce, &form.form_token) {
        return Err(PageError::expired_form());
    }
    let again = |problem: &str, status| {
        Ok(render(
            oauth,
            &visitor,
            form.next.as_deref(),
            Some(problem),
            status,
        ))
    };
    let (person, via_token) = match form.how.as_str() {
        "token" => match oauth.person_of_personal_token(&form.token).await {
            Ok(Some((person, family))) => (person, Some(family)),
            Ok(None) => {
                return again(
                    "That token is not a live personal token of this server. Check it, or ask \
                     the operator for a new one.",
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(error) => return Err(service::ServiceError::internal(error.description).into()),
        },
        "new" => {
            match oauth.check_passphrase(form.passphrase.as_deref(), from) {
                PassphraseCheck::Right => {}
                PassphraseCheck::Wrong => {
                    tracing::warn!(%from, "wrong passphrase on the sign-in page");
                    return again(
                        "That passphrase is not right. Ask the person who runs this server.",
                        StatusCode::UNAUTHORIZED,
                    );
                }
                PassphraseCheck::TooManyAttempts { wait } => {
                    let minutes = wait.as_secs().div_ceil(60).max(1);
                    return again(
                        &format!(
                            "Too many passphrase attempts from your network. Try again in \
                             {minutes} minute(s)."
                        ),
                        StatusCode::TOO_MANY_REQUESTS,
                    );
                }
            }
            match oauth.create_person(&form.display_name).await {
                Ok(person) => (person, None),
                Err(error) if error.error == "invalid_request" => {
                    return again(&error.description, StatusCode::BAD_REQUEST);
                }
                Err(error) => {
                    return Err(service::ServiceError::internal(error.description).into());
                }
            }
        }
        _ => return again("Choose one of the two ways in.", StatusCode::BAD_REQUEST),
    };
    tracing::info!(person = %person.id, how = %form.how, "signed in to the pages");
    let mut response = see_other(safe_next(form.next.as_deref()));
    let headers = response.headers_mut();
    let session = match &via_token {
        Some(family) => cookies::person_via_token(oauth, &person.id, family),
        None => cookies::person(oauth, &person.id),
    };
    for cookie in [session, cookies::cleared(oauth, cookies::SIGN_IN_COOKIE)] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// `POST /signout`: forgets the person in this browser (their apps stay connected).
pub(super) async fn sign_out(
    State(state): Shared,
    visitor: Visitor,
    Form(form): Form<SignOutForm>,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    check_form(&state, person, &form.form_token)?;
    let oauth = state.oauth.as_ref().ok_or_else(PageError::sign_in_needed)?;
    let mut response = see_other("/");
    if let Ok(value) = HeaderValue::from_str(&cookies::cleared(oauth, cookies::PERSON_COOKIE)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// 303 to a path of ours.
pub(super) fn see_other(path: &str) -> Response {
    let location = HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Where to go after signing in: a path on this server, never another site (`//evil`,
/// `/\evil` and absolute URLs all become `/`).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.chars().all(|c| c.is_ascii_graphic()) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_of_ours_come_back_after_sign_in() {
        assert_eq!(safe_next(Some("/channels/ch_1")), "/channels/ch_1");
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/a b",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
